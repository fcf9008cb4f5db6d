"""How fast the closed loop runs: simulated seconds per wall second on `dense_traffic` (24 NPCs,
IDM + MOBIL) with ground-truth perception, at the default rates (physics 120 Hz, control 20 Hz):

  (a) kinematic ego, no camera     (b) physics ego, no camera     (c) physics ego, camera at 10 Hz

and on `town_route` (a procedural town per seed: 40 NPC vehicles, 20 pedestrians, lights and stop
signs; its first 60 s): (d) kinematic ego, (e) physics ego, no camera;

and, when highway-env is installed (`pip install -e .[bench]`), its `highway-fast-v0` (20 vehicles)
measured side by side: each round drives every seed of a configuration, then steps highway-fast-v0
for 100 s of its simulated time (a few seconds; episodes seeded 1000 r, 1000 r + 1, ... in round
r, so the rounds together cover many of its episodes), and the ratio is taken within the round.
The machine's speed drifts by tens of percent over seconds here, so the figure is the median of
the per-round ratios (their range is recorded too). A cProfile of each configuration's loop shows
where the time goes.

    .venv/bin/python benchmarks/sim_speed.py [--seeds 1 2 3 4 5] [--rounds 7] [--out benchmarks/results/sim_speed.json]

Notes: what the closed loop's hot paths cost (this is where the code's speed choices are argued,
so that the code itself can say what it does). Measured on the 2-core x86_64 development machine,
min of repeated timeit runs or replays of recorded calls, Python 3.11, numpy 2.

- A numpy call on a few dozen numbers costs 0.2-1.5 us whatever its size, so the per-tick code
  (traffic step, planner, controller: ~150 us a tick in (a)) is designed around the number of
  calls, not their length: work arrays and views are made once per episode, work that only some
  ticks need is skipped by scalar tests, and what concerns a few rows is done in plain floats.
- Idioms kept where they measured cheaper on ~26 values: `a.item(a.argmin())` 0.22 us vs
  `a.min()` 0.66 us (a NaN is the minimum either way); `np.count_nonzero(mask)` 0.19 us vs
  `mask.any()` 0.56 us; a flat index into a raveled view 0.16 us to set / 0.34 us to read vs 2-D
  fancy indexing 0.58 / 0.63 us (sim/traffic/traffic.py, control/lateral.py). Python's min / max
  of a list beat numpy's reductions on a few dozen points (decision/route.py). Dataclasses built
  every tick are plain, not frozen (decision/situation.py); positional arguments build one in
  0.20 us, keywords in 0.57 us (the code uses keywords).
- IDM (decision/idm.py) on plain floats uses the builtin max (0.09 us) rather than np.maximum
  (1.3 us on two floats, and it returns numpy scalars): 0.6 us a call. A separate float-only copy
  of the formula measured 0.4 us a call; in replays of a dense_traffic drive it saved 0.2 us of a
  56 us planner call and 2 us of a 27 us lane-change decision, so it was not kept.
- Traffic lane changes (sim/traffic/lane_changes.py), about 6 vehicles deciding every fifth tick
  among 26 rows; replays of 480 recorded decisions of dense_traffic seeds 1-3, per decision: the
  former hand-inlined plain-float MOBIL 20 us; the same search calling decision/idm.py's IDM and
  MOBIL on floats, room checked first, 27 us (kept); the search in plain floats with IDM and MOBIL
  over all candidates as arrays 37-43 us; everything as (m, 2, R) arrays 47 us. Whole closed loop
  (a), interleaved A/B (CPU time of the loop, dense_traffic seeds 1-3), median of 8-12 rounds
  against the pre-split code: all-array 0.89, arrays over the candidates 0.93, plain floats 0.95.
- Town traffic (sim/traffic/town_traffic.py `DECIDE_S`): the NPCs' leaders, junction rules and the
  pedestrians' look for vehicles across their way every 0.1 s instead of every 50 ms step (positions
  still every step). Interleaved A/B on town_route seeds 1-3, 60 s each, 4 rounds, loop wall time:
  4.41 s -> 3.29 s, 1.34x; the ratio (d) went 0.74 -> 0.89 x highway-fast-v0, (e) 0.57 -> 0.64. The
  rest of a town tick: the planner ~20 %, criteria ~12 %, controller ~7 % (cProfile below).
- After issue 11's one-IDM / one-MOBIL rewrite, the same A/B: (a) 0.954 (12 rounds), (b) 0.976
  (6 rounds). What the 4.6 % of (a) is, per tick of ~155 us: the traffic's IDM over every row
  as arrays with its clamps +1.6 us (17 numpy calls where the former traffic-only copy took 12),
  lane-change decisions +1.5 us, the planner +1.3 us (IDM on floats 0.6 us a call, not 0.4),
  the step's named parts +1 us.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import re
import statistics
import time
from pathlib import Path

from perception.files import write_json
from sim import loop
from sim.app import drive as drive_module
from sim.app.drive import drive

HIGHWAY = ["scenario=dense_traffic"]
# A procedural town (a new one per seed): 40 NPC vehicles, 20 pedestrians, lights and stop signs;
# the first 60 s of a long route.
TOWN = ["scenario=town_route", "scenario.duration_s=60"]
CONFIGS = {
    "a_kinematic_no_camera": [*HIGHWAY, "sim.ego_model=kinematic", "sim.camera.enabled=false"],
    "b_physics_no_camera": [*HIGHWAY, "sim.ego_model=physics", "sim.camera.enabled=false"],
    "c_physics_camera_10hz": [
        *HIGHWAY,
        "sim.ego_model=physics",
        "sim.camera.enabled=true",
        "sim.camera_hz=10",
        "sim/rig=front",  # one camera, as its target was set (the six-camera loop: detector_speed.py)
    ],
    "d_town_kinematic_no_camera": [*TOWN, "sim.ego_model=kinematic", "sim.camera.enabled=false"],
    "e_town_physics_no_camera": [*TOWN, "sim.ego_model=physics", "sim.camera.enabled=false"],
}
TARGETS = {  # from the issues: multiples of highway-fast-v0, or of real time
    "a_kinematic_no_camera": ("x highway-fast-v0", 5.0),
    "b_physics_no_camera": ("x highway-fast-v0", 2.0),
    "c_physics_camera_10hz": ("x real time", 5.0),
    "d_town_kinematic_no_camera": ("x highway-fast-v0", 3.0),
    "e_town_physics_no_camera": ("x highway-fast-v0", 1.5),
}
STAGES = {  # profile rows (function name substrings) -> stage name
    "loop.py:.*run_closed_loop": "total loop",
    "simulation.py:.*step": "sim step (traffic, physics, criteria)",
    "traffic.py:.*step": "  traffic (IDM/MOBIL, scripted actors)",
    "town_traffic.py:.*step": "  town traffic (paths, junction rules, pedestrians)",
    r"vehicle.py:\d+\(advance\)": "  physics ego (pybullet stepSimulation)",
    "criteria.py:.*update": "  criteria (collisions, off-road, TTC)",
    "ego_frenet.py:.*locate": "  ego Frenet pose",
    r"simulation.py:\d+\(render\)": "camera render",
    r"camera.py:\d+\(render_from\)": "  getCameraImage + ground shading + noise",
    "planner.py:.*plan": "planner",
    "controller.py:.*update": "controller",
    "ground_truth.py:.*perceive": "perception (ground truth)",
}


def run_once(name: str, seed: int, on_frame=None) -> dict:
    overrides = [f"seed={seed}", "video=false", "plot=false", *CONFIGS[name]]
    if "camera.enabled=true" in " ".join(CONFIGS[name]) and on_frame is None:
        on_frame = _discard  # render at camera_hz, as a camera perceiver would, without a video
    wall0 = time.perf_counter()
    result, _ = drive(overrides, write=False, on_frame=on_frame)
    total = time.perf_counter() - wall0
    sim_s = float(result.ticks["t_s"][-1])
    return {"sim_s": sim_s, "loop_wall_s": result.wall_s, "total_wall_s": total}


def _discard(*_) -> None:
    pass


def highway_fast(steps: int, first_seed: int = 0) -> float | None:
    """highway-fast-v0 simulated seconds per wall second over `steps` policy steps of the episodes
    seeded first_seed, first_seed + 1, ... (None when highway-env is missing). Its ego keeps its
    lane (IDLE); its resets count, as our runs' setup does not (a few percent of its time: the
    comparison favours highway-env slightly)."""
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make("highway-fast-v0")
    dt = 1.0 / env.unwrapped.config["policy_frequency"]
    episode = first_seed
    env.reset(seed=episode)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(1)  # IDLE: keep lane
        if terminated or truncated:
            episode += 1
            env.reset(seed=episode)
    rate = steps * dt / (time.perf_counter() - t0)
    env.close()
    return rate


def profile(name: str, seed: int) -> dict:
    """cProfile of one run's closed loop (setup excluded): each stage's share of the loop, and the
    functions with the most own time."""
    prof = cProfile.Profile()
    original = loop.run_closed_loop

    def profiled_loop(*args, **kwargs):
        prof.enable()
        try:
            return original(*args, **kwargs)
        finally:
            prof.disable()

    drive_module.run_closed_loop = profiled_loop
    try:
        run_once(name, seed)
    finally:
        drive_module.run_closed_loop = original
    stats = pstats.Stats(prof)
    rows = {}
    for (file, line, func), (_, _, tottime, cumtime, _) in stats.stats.items():
        rows[f"{Path(file).name}:{line}({func})"] = (tottime, cumtime)

    total = next(cum for key, (_, cum) in rows.items() if re.search("loop.py:.*run_closed_loop", key))
    stages = {}
    for pattern, label in STAGES.items():
        cum = sum(c for key, (_, c) in rows.items() if re.search(pattern, key))
        if cum > 0:
            stages[label] = round(100 * cum / total, 1)
    top = sorted(rows.items(), key=lambda kv: -kv[1][0])[:12]
    return {
        "stage_share_of_loop_pct": stages,
        "top_functions_by_own_time_pct": {k: round(100 * t / total, 1) for k, (t, _) in top},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--highway-steps", type=int, default=100, help="highway-fast-v0 policy steps per round")
    ap.add_argument("--out", default="benchmarks/results/sim_speed.json")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()

    run_once("a_kinematic_no_camera", args.seeds[0])  # warm up (imports, caches)
    runs, rounds = measure(args.seeds, args.rounds, args.highway_steps)
    results = summarise(runs, rounds)
    hw_rates = [
        row["highway_fast_v0"] for rows in rounds.values() for row in rows if "highway_fast_v0" in row
    ]
    out = {
        "scenario": "a-c: dense_traffic (24 NPCs); d-e: town_route (a procedural town per seed, 40 NPC "
        "vehicles, 20 pedestrians, lights), its first 60 s; ground-truth perception, physics 120 Hz, control 20 Hz",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "seeds": args.seeds,
        "rounds": args.rounds,
        "method": f"per round: every seed of a configuration, then {args.highway_steps} policy steps of "
        "highway-fast-v0 (episodes seeded 1000 r, 1000 r + 1, ... in round r); "
        "ratio = median over rounds of the per-round ratios",
        "highway_fast_v0_sim_seconds_per_wall_second": round(statistics.median(hw_rates), 1)
        if hw_rates
        else None,
        "results": results,
    }
    if not args.no_profile:
        out["profile"] = {name: profile(name, args.seeds[0]) for name in CONFIGS}
    write_json(args.out, out)
    for name, r in results.items():
        print(
            f"{name:24s} {r['sim_seconds_per_wall_second']:7.1f} sim-s/s  ratio {r['ratio']} {r['ratio_unit']} "
            f"(rounds {r['ratio_range']}, target {r['target']})"
        )
    print(f"wrote {args.out}")


def measure(seeds: list[int], n_rounds: int, highway_steps: int) -> tuple[dict, dict]:
    """Every configuration over all seeds, `n_rounds` times, each round followed by highway-fast-v0
    where the target is a multiple of it. Returns the runs and the per-round rows per configuration."""
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    rounds: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for r in range(n_rounds):
        for name in CONFIGS:
            rs = [run_once(name, seed) for seed in seeds]
            runs[name] += rs
            sim_s, wall_s = sum(x["sim_s"] for x in rs), sum(x["loop_wall_s"] for x in rs)
            row = {"sim_seconds_per_wall_second": round(sim_s / wall_s, 1)}
            if TARGETS[name][0].endswith("highway-fast-v0"):
                hw = highway_fast(highway_steps, first_seed=1000 * r)
                if hw is not None:
                    row |= {"highway_fast_v0": round(hw, 1), "ratio": round(sim_s / wall_s / hw, 2)}
            rounds[name].append(row)
            print(f"round {r + 1} {name}: {row}", flush=True)
    return runs, rounds


def summarise(runs: dict[str, list[dict]], rounds: dict[str, list[dict]]) -> dict:
    """Per configuration: the median rate and ratio over the rounds, their range, the target."""
    results = {}
    for name, rs in runs.items():
        per_round = rounds[name]
        unit, target = TARGETS[name]
        rates = [row["sim_seconds_per_wall_second"] for row in per_round]
        if unit.endswith("highway-fast-v0"):
            ratios = [row["ratio"] for row in per_round if "ratio" in row]
        else:
            ratios = rates
        ratio = statistics.median(ratios) if ratios else None
        results[name] = {
            "sim_seconds_per_wall_second": round(statistics.median(rates), 1),
            "including_setup": round(sum(x["sim_s"] for x in rs) / sum(x["total_wall_s"] for x in rs), 1),
            "ratio": None if ratio is None else round(ratio, 2),
            "ratio_range": [min(ratios), max(ratios)] if ratios else None,
            "ratio_unit": unit,
            "target": target,
            "meets_target": None if ratio is None else ratio >= target,
            "rounds": per_round,
        }
    return results


if __name__ == "__main__":
    main()

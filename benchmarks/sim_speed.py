"""How fast the closed loop runs: simulated seconds per wall second on `dense_traffic` (24 NPCs,
IDM + MOBIL) with ground-truth perception, at the default rates (physics 120 Hz, control 20 Hz):

  (a) kinematic ego, no camera     (b) physics ego, no camera     (c) physics ego, camera at 10 Hz

and, when highway-env is installed (`pip install -e .[bench]`), its `highway-fast-v0` (20 vehicles)
measured in the same run, interleaved, so the ratios compare like with like on a noisy machine.
A cProfile of (b) and (c) shows where the time goes.

    .venv/bin/python benchmarks/sim_speed.py [--seeds 1 2 3] [--out benchmarks/results/sim_speed.json]
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import re
import statistics
import time
from pathlib import Path

from perception import atomic
from sim.drive import drive

CONFIGS = {
    "a_kinematic_no_camera": ["sim.ego_model=kinematic", "sim.camera.enabled=false"],
    "b_physics_no_camera": ["sim.ego_model=physics", "sim.camera.enabled=false"],
    "c_physics_camera_10hz": ["sim.ego_model=physics", "sim.camera.enabled=true", "sim.camera_hz=10"],
}
TARGETS = {  # from the issue: multiples of highway-fast-v0, or of real time
    "a_kinematic_no_camera": ("x highway-fast-v0", 5.0),
    "b_physics_no_camera": ("x highway-fast-v0", 2.0),
    "c_physics_camera_10hz": ("x real time", 5.0),
}
STAGES = {  # profile rows (function name substrings) -> stage name
    "runner.py:.*run_closed_loop": "total loop",
    "simulation.py:.*step": "sim step (traffic, physics, criteria)",
    "traffic.py:.*step": "  traffic (IDM/MOBIL, scripted actors)",
    "vehicle.py:.*advance": "  physics ego (pybullet stepSimulation)",
    "criteria.py:.*update": "  criteria (collisions, off-road, TTC)",
    r"simulation.py:\d+\(render\)": "camera render",
    r"camera.py:\d+\(render_from\)": "  getCameraImage + ground shading + noise",
    "planner.py:.*plan": "planner",
    "controller.py:.*update": "controller",
    "ground_truth.py:.*perceive": "perception (ground truth)",
}


def run_once(name: str, seed: int, on_frame=None) -> dict:
    overrides = ["scenario=dense_traffic", f"seed={seed}", "video=false", "plot=false", *CONFIGS[name]]
    if "camera.enabled=true" in " ".join(CONFIGS[name]) and on_frame is None:
        on_frame = _discard  # render at camera_hz, as a camera perceiver would, without a video
    wall0 = time.perf_counter()
    result, _ = drive(overrides, write=False, on_frame=on_frame)
    total = time.perf_counter() - wall0
    sim_s = float(result.ticks["t_s"][-1])
    return {"sim_s": sim_s, "loop_wall_s": result.wall_s, "total_wall_s": total}


def _discard(*_) -> None:
    pass


def highway_fast(wall_budget_s: float) -> float | None:
    """highway-fast-v0 simulated seconds per wall second (None when highway-env is missing)."""
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make("highway-fast-v0")
    dt = 1.0 / env.unwrapped.config["policy_frequency"]
    env.reset(seed=0)
    sim_s, t0 = 0.0, time.perf_counter()
    while time.perf_counter() - t0 < wall_budget_s:
        _, _, terminated, truncated, _ = env.step(1)  # IDLE: keep lane
        sim_s += dt
        if terminated or truncated:
            env.reset()
    rate = sim_s / (time.perf_counter() - t0)
    env.close()
    return rate


def profile(name: str, seed: int) -> dict:
    prof = cProfile.Profile()
    prof.enable()
    run_once(name, seed)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = {}
    for (file, line, func), (_, _, tottime, cumtime, _) in stats.stats.items():
        rows[f"{Path(file).name}:{line}({func})"] = (tottime, cumtime)

    loop = next(cum for key, (_, cum) in rows.items() if re.search("runner.py:.*run_closed_loop", key))
    stages = {}
    for pattern, label in STAGES.items():
        cum = sum(c for key, (_, c) in rows.items() if re.search(pattern, key))
        if cum > 0:
            stages[label] = round(100 * cum / loop, 1)
    top = sorted(rows.items(), key=lambda kv: -kv[1][0])[:12]
    return {
        "stage_share_of_loop_pct": stages,
        "top_functions_by_own_time_pct": {k: round(100 * t / loop, 1) for k, (t, _) in top},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", default="benchmarks/results/sim_speed.json")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()

    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    highway: list[float] = []
    for seed in args.seeds:  # interleave: each round measures every config once
        for name in CONFIGS:
            runs[name].append(run_once(name, seed))
            print(
                f"{name} seed {seed}: {runs[name][-1]['sim_s'] / runs[name][-1]['loop_wall_s']:.1f} sim-s/s"
            )
        rate = highway_fast(wall_budget_s=8.0)
        if rate is not None:
            highway.append(rate)
            print(f"highway-fast-v0: {rate:.1f} sim-s/s")

    hw = statistics.median(highway) if highway else None
    results = {}
    for name, rs in runs.items():
        rate = statistics.median(r["sim_s"] / r["loop_wall_s"] for r in rs)
        with_setup = statistics.median(r["sim_s"] / r["total_wall_s"] for r in rs)
        unit, target = TARGETS[name]
        ratio = (
            rate / hw
            if unit.endswith("highway-fast-v0") and hw
            else (rate if unit.endswith("time") else None)
        )
        results[name] = {
            "sim_seconds_per_wall_second": round(rate, 1),
            "including_setup": round(with_setup, 1),
            "ratio": None if ratio is None else round(ratio, 2),
            "ratio_unit": unit,
            "target": target,
            "meets_target": None if ratio is None else ratio >= target,
            "runs": rs,
        }
    out = {
        "scenario": "dense_traffic (24 NPCs), ground-truth perception, physics 120 Hz, control 20 Hz",
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
        "seeds": args.seeds,
        "highway_fast_v0_sim_seconds_per_wall_second": None if hw is None else round(hw, 1),
        "highway_fast_v0_runs": [round(h, 1) for h in highway],
        "results": results,
    }
    if not args.no_profile:
        out["profile"] = {
            name: profile(name, args.seeds[0]) for name in ("b_physics_no_camera", "c_physics_camera_10hz")
        }
    atomic.write_json(args.out, out)
    for name, r in results.items():
        print(
            f"{name:24s} {r['sim_seconds_per_wall_second']:7.1f} sim-s/s  ratio {r['ratio']} {r['ratio_unit']} (target {r['target']})"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

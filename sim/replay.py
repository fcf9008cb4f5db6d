"""Replays of finished runs from their folders, without simulating again: scores recomputed from the
log (sim/runlog.py), a bird's-eye video re-rendered from the logged states, and the failure
attribution of the evaluator (what perception got wrong in the seconds before each infraction).

The route comes from the run's saved config (RUN_DIR/.hydra/config.yaml): the scenario is parsed
again from its seed (no physics, no rendering), which gives the same map and route as the run had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from perception import atomic
from perception.types import CLASSES
from sim import runlog, scores, viz
from sim.criteria import BLOCKED, COLLISION_KINDS, OFF_ROAD, TIMEOUT
from sim.scenario import ScenarioError, ScenarioSpec, parse_scenario
from sim.simulation import seeds

WALL_CLOCK_KEYS = ("sim_seconds_per_wall_second",)  # metrics that depend on the machine, not the run
RUN_KEYS = ("scenario", "seed", "perception", "ego_model")  # metrics that name the run
INFRACTION_KINDS = (*COLLISION_KINDS, OFF_ROAD)  # penalised events (lane changes invade lanes on purpose)
FAILURE_KINDS = (BLOCKED, TIMEOUT)  # runs that ended without completing the route
ATTRIBUTION_WINDOW_S = 3.0  # perception is examined over this long before an infraction
MATCH_RADIUS_M = 2.5  # a perceived object within this of an actor (same class) is that actor
SENSING_RANGE_M = 50.0  # actors farther than this from the ego are not expected to be perceived
LOCALISATION_BLAME_M = 1.5  # a mean position error above this is blamed on perception
LATENCY_BLAME_S = 0.5  # so is a track that came this late after the actor was in range
MISS_BLAME = 0.5  # so is an actor missed on more than this fraction of the window's ticks
PHANTOM_RANGE_M = 40.0  # a perceived object this close to the ego that matches no actor is a phantom
PHANTOM_BLAME = 0.5  # phantoms on more than this fraction of the window's ticks are blamed


@dataclass
class Run:
    """A finished run folder: its resolved config, metrics and log."""

    run_dir: Path
    config: dict
    metrics: dict
    log: runlog.RunLog

    @property
    def spec(self) -> ScenarioSpec:
        try:
            return parse_scenario(self.config["scenario"], seeds(int(self.config["seed"]))[0])
        except (KeyError, TypeError, ScenarioError) as err:
            raise runlog.RunLogError(
                f"{self.run_dir}: the saved config has no usable scenario ({err})"
            ) from None


def load_run(run_dir: str | Path) -> Run:
    """Read RUN_DIR/{.hydra/config.yaml, metrics.json, log.npz}; RunLogError if one is missing or bad."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise runlog.RunLogError(f"{run_dir}: no such run folder")
    paths = {"config": run_dir / ".hydra" / "config.yaml", "metrics": run_dir / "metrics.json"}
    loaded = {}
    for name, path in paths.items():
        if not path.is_file():
            raise runlog.RunLogError(f"{run_dir}: not a finished run folder ({path.name} is missing)")
        try:
            loaded[name] = yaml.safe_load(path.read_text())  # JSON is YAML
        except yaml.YAMLError:
            raise runlog.RunLogError(f"{path}: not readable") from None
    return Run(run_dir, loaded["config"], loaded["metrics"], runlog.read(run_dir / "log.npz"))


def rescore(run: Run) -> dict:
    """The run's metrics recomputed from its log by the pure scoring functions (sim/scores.py)."""
    log = run.log
    summary = scores.summarize(
        log.ticks,
        log.events,
        run.spec.route,
        log.meta["off_road_distance_m"],
        log.meta["driven_distance_m"],
    )
    head = {k: run.metrics.get(k) for k in RUN_KEYS}
    wall = {k: run.metrics[k] for k in WALL_CLOCK_KEYS if k in run.metrics}
    return {**head, **summary, **wall}


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys (dotted paths) whose values differ between two metric dicts, wall-clock keys aside."""
    out = []
    for key in sorted(set(a) | set(b)):
        if key in WALL_CLOCK_KEYS:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, f"{prefix}{key}.")
        elif va != vb and not (
            isinstance(va, float) and isinstance(vb, float) and math.isclose(va, vb, rel_tol=1e-9)
        ):
            out.append(f"{prefix}{key}")
    return out


# ------------------------------------------------------------------------------ rendering
def render(run: Run, path: Path, t0_s: float = -math.inf, t1_s: float = math.inf, fps: float = 10.0) -> int:
    """A bird's-eye video of the logged run between t0_s and t1_s, written atomically: true actors
    filled in their class colours, what perception reported as white outlines, a HUD with time,
    speed and the latest event. Returns the number of frames."""
    log, road = run.log, run.spec.road
    t = log.ticks["t_s"]
    every = max(1, round(log.meta["control_hz"] / fps))
    ticks = [k for k in range(0, len(t), every) if t0_s <= t[k] <= t1_s]
    ego_size = tuple(log.meta["ego_size_m"])
    size = 480
    with viz.VideoWriter(path, fps, (size, size)) as video:
        for k in ticks:
            seen = log.perceived_at(k)
            img = viz.bev_inset(
                road,
                (log.ticks["x_m"][k], log.ticks["y_m"][k]),
                float(log.ticks["yaw_rad"][k]),
                log.actor_xy_m[k],
                log.actor_yaw_rad[k],
                log.actor_size_m,
                log.actor_class_ids,
                size_px=size,
                range_m=80.0,
                ego_size_m=ego_size,
                outlines=(seen[:, 3:5], seen[:, 7], seen[:, 8:10]),
            )
            past = [e for e in log.events if e.t_s <= t[k]]
            lines = [
                f"t {t[k]:5.1f} s  v {log.ticks['speed_mps'][k] * 3.6:5.1f} km/h  (outlines: perception)"
            ]
            if past:
                lines.append(f"{past[-1].kind} at {past[-1].t_s:.1f} s")
            for i, line in enumerate(lines):
                cv2.putText(
                    img,
                    line,
                    (8, 20 + 20 * i),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.5,
                    (235, 235, 235),
                    1,
                    cv2.LINE_AA,
                )
            video.write(img)
    return len(ticks)


# ------------------------------------------------------------------------------ attribution
def attribute(run: Run, window_s: float = ATTRIBUTION_WINDOW_S) -> list[dict]:
    """For every infraction (collision, off road) and failure (blocked, timeout) of the run, the
    perception errors in the `window_s` before it and the likely cause. The actors examined: the
    one hit (collisions), else those within 30 m of the ego.

    missed_fraction: share of the window's ticks (actor within SENSING_RANGE_M) with no perceived
    object of its class within MATCH_RADIUS_M; localisation_error_m: mean distance to the matched
    object; track_latency_s: from the actor coming into range (this run) to its first match;
    phantom_fraction: share of the window's ticks with a perceived object within PHANTOM_RANGE_M
    of the ego that matches no actor (what makes an ego stop for nothing).
    """
    log = run.log
    t = log.ticks["t_s"]
    ego_xy = np.stack([log.ticks["x_m"], log.ticks["y_m"]], axis=1)  # (T, 2)
    in_range = np.linalg.norm(log.actor_xy_m - ego_xy[:, None], axis=2) <= SENSING_RANGE_M  # (T, N)
    error, matched, phantom = _match(log, ego_xy)  # (T, N) metres, (T, N) bool, (T,) bool
    out = []
    for e in log.events:
        if e.kind not in INFRACTION_KINDS + FAILURE_KINDS:
            continue
        k_end = int(np.searchsorted(t, e.t_s, side="right"))
        window = slice(int(np.searchsorted(t, e.t_s - window_s)), k_end)
        if e.actor_id >= 0 and e.actor_id in log.actor_ids:
            actors = [int(np.flatnonzero(log.actor_ids == e.actor_id)[0])]
        else:
            k = max(k_end - 1, 0)
            near = np.linalg.norm(log.actor_xy_m[k] - ego_xy[k], axis=1) <= 30.0
            actors = list(np.flatnonzero(near))
        missed, loc, latency = [], [], []
        for j in actors:
            expect = in_range[window, j]
            if expect.any():
                missed.append(1.0 - matched[window, j][expect].mean())
            hits = matched[window, j] & expect
            if hits.any():
                loc.append(float(error[window, j][hits].mean()))
            first_in = np.flatnonzero(in_range[:k_end, j])
            first_hit = np.flatnonzero(matched[:k_end, j])
            if first_in.size and first_hit.size:
                latency.append(max(0.0, float(t[first_hit[0]] - t[first_in[0]])))
            elif first_in.size:
                latency.append(float(t[k_end - 1] - t[first_in[0]]))  # never tracked: at least this late
        row = {
            "t_s": float(e.t_s),
            "kind": e.kind,
            "actor_id": int(e.actor_id),
            "actor_class": CLASSES[int(log.actor_class_ids[actors[0]])] if len(actors) == 1 else None,
            "missed_fraction": max(missed) if missed else None,
            "localisation_error_m": max(loc) if loc else None,
            "track_latency_s": max(latency) if latency else None,
            "phantom_fraction": float(phantom[window].mean()) if k_end > 0 else None,
        }
        row["cause"] = _cause(row)
        out.append(row)
    return out


def _match(log: runlog.RunLog, ego_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over the ticks, comparing what perception reported with the true actors (same
    class only): error (T, N) distance from each actor to the nearest perceived object (inf when
    none), matched (T, N) = error <= MATCH_RADIUS_M, and phantom (T,): a perceived object within
    PHANTOM_RANGE_M of the ego matches no actor."""
    T, N = log.actor_xy_m.shape[:2]
    error = np.full((T, N), np.inf)
    phantom = np.zeros(T, dtype=bool)
    for k in range(T):
        seen = log.perceived_at(k)
        if not len(seen):
            continue
        d = np.linalg.norm(log.actor_xy_m[k][:, None] - seen[None, :, 3:5], axis=2)  # (N, K)
        d[log.actor_class_ids[:, None] != seen[None, :, 2]] = np.inf
        error[k] = d.min(axis=1, initial=np.inf)
        near = np.linalg.norm(seen[:, 3:5] - ego_xy[k], axis=1) <= PHANTOM_RANGE_M
        phantom[k] = bool((near & (d.min(axis=0, initial=np.inf) > MATCH_RADIUS_M)).any())
    return error, error <= MATCH_RADIUS_M, phantom


def _cause(row: dict) -> str:
    missed, loc, latency = row["missed_fraction"], row["localisation_error_m"], row["track_latency_s"]
    phantom = row["phantom_fraction"]
    if row["kind"] in FAILURE_KINDS and phantom is not None and phantom > PHANTOM_BLAME:
        return f"perception: phantom object ahead on {100 * phantom:.0f}% of the last ticks"
    if missed is not None and missed > MISS_BLAME:
        return f"perception: missed the actor on {100 * missed:.0f}% of the last ticks"
    if loc is not None and loc > LOCALISATION_BLAME_M:
        return f"perception: localisation error {loc:.1f} m"
    if latency is not None and latency > LATENCY_BLAME_S:
        return f"perception: tracked {latency:.1f} s after coming into range"
    if missed is None:
        return "planning/control: no actor in range"
    return "planning/control: the actor was perceived in time"


def write_json(path: Path, obj) -> None:
    atomic.write_json(path, scores.json_safe(obj))

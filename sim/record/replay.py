"""Replays of finished runs from their folders, without simulating again: scores recomputed from the
log (sim/record/runlog.py) and a bird's-eye video re-rendered from the logged states. The failure
attribution of the evaluator (sim/evaluation/attribution.py) reads runs through `load_run` too.

The route comes from the run's saved config (RUN_DIR/.hydra/config.yaml): the scenario is parsed
again from its seed (no physics, no rendering), which gives the same map and route as the run had.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import yaml

from sim.metrics import scores
from sim.record import runlog, viz
from sim.scenario.parse import parse_scenario
from sim.scenario.spec import ScenarioError, ScenarioSpec
from sim.simulation import RandomStreams

WALL_CLOCK_KEYS = ("sim_seconds_per_wall_second",)  # metrics that depend on the machine, not the run
RUN_KEYS = ("scenario", "seed", "perception", "ego_model")  # metrics that name the run


@dataclass
class Run:
    """A finished run folder: its resolved config, metrics and log."""

    run_dir: Path
    config: dict
    metrics: dict
    log: runlog.RunLog

    @cached_property
    def spec(self) -> ScenarioSpec:
        """The run's scenario, parsed again from the saved config and seed (no physics)."""
        try:
            scenario_rng = RandomStreams.from_seed(int(self.config["seed"])).scenario
            return parse_scenario(self.config["scenario"], scenario_rng)
        except (KeyError, TypeError, ValueError, ScenarioError) as err:
            raise runlog.RunLogError(
                f"{self.run_dir}: the saved config has no usable scenario ({err})"
            ) from None


def load_run(run_dir: str | Path) -> Run:
    """Read RUN_DIR/{.hydra/config.yaml, metrics.json, log.npz} and parse the scenario again.

    RunLogError, one line naming the file, if one is missing, unreadable (binary, malformed), not
    a mapping, or a config without a scenario mapping and a seed (an integer >= 0).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise runlog.RunLogError(f"{run_dir}: no such run folder")
    config = _read_mapping(run_dir, run_dir / ".hydra" / "config.yaml", yaml.safe_load)
    metrics = _read_mapping(run_dir, run_dir / "metrics.json", json.loads)
    _check_config(run_dir / ".hydra" / "config.yaml", config)
    run = Run(run_dir, config, metrics, runlog.read(run_dir / "log.npz"))
    _ = run.spec  # a bad scenario fails here, before anything is computed or written
    return run


def _read_mapping(run_dir: Path, path: Path, parse: Callable[[str], object]) -> dict:
    """The mapping in the text file at `path`, parsed by `parse` (yaml.safe_load, json.loads)."""
    if not path.is_file():
        raise runlog.RunLogError(f"{run_dir}: not a finished run folder ({path.name} is missing)")
    try:
        value = parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        raise runlog.RunLogError(f"{path}: not readable ({type(err).__name__})") from None
    if not isinstance(value, dict):
        raise runlog.RunLogError(f"{path}: expected a mapping, found a {type(value).__name__}")
    return value


def _check_config(path: Path, config: dict) -> None:
    """The two keys a replay reads from a run's saved config: the scenario and the seed."""
    if not isinstance(config.get("scenario"), dict):
        raise runlog.RunLogError(f"{path}: 'scenario' is {config.get('scenario')!r}, expected a mapping")
    seed = config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise runlog.RunLogError(f"{path}: 'seed' is {seed!r}, expected an integer >= 0")


def rescore(run: Run) -> dict:
    """The run's metrics recomputed from its log by the pure scoring functions (sim/metrics/scores.py)."""
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

"""The closed loop: sim -> perception -> decision -> control -> sim, at the configured rates.

`run_closed_loop` steps one `sim.simulation.Simulation` to its end with a perceiver
(`perception`), a planner (`decision`) and a controller (`control`), and scores the run
(`sim.metrics.scores`). The drive command (`sim.app.drive`) builds the parts from the config and
writes the result with the video, the bird's-eye plot and the per-tick log into the run folder
(`sim.record`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from perception.perceiver import Perceiver
from sim.metrics import scores
from sim.record import runlog
from sim.simulation import RandomStreams, Simulation


@dataclass
class RunResult:
    """What one closed-loop run gives: its scores and everything recorded on the way."""

    summary: dict  # the scores and the run's figures (metrics.json)
    ticks: dict[str, np.ndarray]  # per-tick states, each (T,): Simulation.ticks()
    events: list = field(default_factory=list)  # the criteria's events, in time order
    wall_s: float = 0.0  # wall-clock time of the loop [s]
    perception: dict[str, np.ndarray] = field(default_factory=dict)  # runlog.PerceptionRecorder.arrays()


def run_closed_loop(
    sim: Simulation, perceiver: Perceiver, planner, controller, seed: int, on_frame=None
) -> RunResult:
    """Drive `sim` until its criteria end the run; `seed` is the run's (it seeds the perceiver).

    Every control tick the controller tracks the latest plan; perception and the planner run at the
    decision rate and on every camera frame (a real stack plans at ~10 Hz and controls faster).
    The rig's camera frames are rendered at the camera rate when the perceiver needs them or
    `on_frame` is given; `on_frame(sim, frames, world_model, plan)` then sees each tick's frames,
    one per camera in the rig's order (e.g. `VideoRecorder`).

    The planner has `reset()` and `plan(world_model, route) -> Plan` (`decision.planner.Planner`),
    the controller `reset()` and `update(ego, plan, dt_s) -> (ControlCommand, log)`
    (`control.controller.VehicleController`); the config may swap either for another.
    """
    perceiver.reset(RandomStreams.from_seed(seed).perception, sim.mapped_lights())
    planner.reset()
    controller.reset()
    route = sim.spec.route
    recorder = runlog.PerceptionRecorder()
    wall0 = time.perf_counter()
    world_model = plan = None  # what perception reported last, and the plan made from it
    while not sim.done:
        frames = None
        if sim.camera_due() and (perceiver.needs_camera or on_frame is not None):
            frames = sim.render_rig()
        if plan is None or frames is not None or sim.decision_due():
            truth = sim.truth() if perceiver.needs_truth else None
            world_model = perceiver.perceive(frames, sim.ego_state, truth, sim.sirens())
            plan = planner.plan(world_model, route)
        recorder.add(sim.tick, world_model, frames is not None)  # what the planner knows at this tick
        cmd, _ = controller.update(sim.ego_state, plan, sim.dt_s)
        if frames is not None and on_frame is not None:
            on_frame(sim, frames, world_model, plan)
        sim.step(cmd)
    wall_s = time.perf_counter() - wall0
    ticks = sim.ticks()
    summary = scores.summarize(ticks, sim.events, route, sim.criteria.off_road_distance_m, distance_m(ticks))
    summary["sim_seconds_per_wall_second"] = round(float(ticks["t_s"][-1]) / max(wall_s, 1e-9), 2)
    return RunResult(summary, ticks, list(sim.events), wall_s, recorder.arrays())


def distance_m(ticks: dict[str, np.ndarray]) -> float:
    """Length [m] of the ego's path: the sum of its steps between ticks."""
    return float(np.hypot(np.diff(ticks["x_m"]), np.diff(ticks["y_m"])).sum())

"""A perceiver built from the simulator's truth, with an optional error model.

The error model (all off at zero): Gaussian position and velocity noise, a per-tick probability
of missing each object, a latency (the planner sees the world as it was `latency_s` ago), and a
sensor range. It lets a study ask how much each kind of perception error costs the driving.
`visibility="rig"` limits the truth to what the rig's cameras could see (`views`,
perception/visibility.py `visible_objects`, the drive command passes the rig's: in a camera's view
and not hidden behind a vehicle): the gap between it and the camera perceiver on the same rig is
then the detector's alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from perception.types import CameraFrame, EgoState, WorldModel
from perception.visibility import CameraView, visible_objects


class GroundTruthPerceiver:
    needs_camera = False
    needs_truth = True

    def __init__(
        self,
        position_noise_m: float,
        velocity_noise_mps: float,
        miss_probability: float,
        latency_s: float,
        max_range_m: float,
        visibility: str = "all",
        views: tuple[CameraView, ...] | None = None,
    ):
        for name, value in (
            ("position_noise_m", position_noise_m),
            ("velocity_noise_mps", velocity_noise_mps),
            ("latency_s", latency_s),
        ):
            if not value >= 0:
                raise ValueError(f"perception.{name}={value} is out of range: >= 0")
        if not 0 <= miss_probability <= 1:
            raise ValueError(f"perception.miss_probability={miss_probability} is out of range: [0, 1]")
        if not max_range_m > 0:
            raise ValueError(f"perception.max_range_m={max_range_m} is out of range: > 0")
        if visibility not in ("all", "rig"):
            raise ValueError(f"perception.visibility={visibility!r} is not one of all, rig")
        if visibility == "rig" and not views:
            raise ValueError("perception.visibility=rig needs the rig's camera views")
        # (views may come as mappings: hydra's instantiate turns dataclasses into them)
        views = [v if isinstance(v, CameraView) else CameraView(**v) for v in views or ()]
        self.views = tuple(views) if visibility == "rig" else None
        self.position_noise_m = position_noise_m
        self.velocity_noise_mps = velocity_noise_mps
        self.miss_probability = miss_probability
        self.latency_s = latency_s
        self.max_range_m = max_range_m
        self._history: deque[WorldModel] = deque()
        self._rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator, lights=()) -> None:
        self._history.clear()  # (the truth holds every signal's state: no use for the map's lights)
        self._rng = rng

    def perceive(
        self,
        frames: Sequence[CameraFrame] | None,
        ego: EgoState,
        truth: WorldModel | None,
        sirens: Sequence[float] = (),
    ) -> WorldModel:
        """(`sirens` unused: the truth says which vehicles are emergency vehicles.)"""
        if truth is None:
            raise ValueError("GroundTruthPerceiver needs the simulator's truth")
        seen = self._delayed(truth)
        near = np.hypot(seen.xy_m[:, 0] - ego.x_m, seen.xy_m[:, 1] - ego.y_m) <= self.max_range_m
        if self.views is not None:
            near[near] = visible_objects(
                self.views,
                (ego.x_m, ego.y_m),
                ego.yaw_rad,
                seen.xy_m[near],
                seen.yaw_rad[near],
                seen.size_m[near],
            )
        if self.miss_probability > 0:
            near &= self._rng.random(len(near)) >= self.miss_probability
        xy, v = seen.xy_m[near], seen.v_mps[near]
        if self.position_noise_m > 0:
            xy = xy + self._rng.normal(0.0, self.position_noise_m, xy.shape)
        if self.velocity_noise_mps > 0:
            v = v + self._rng.normal(0.0, self.velocity_noise_mps, v.shape)
        return WorldModel(
            ego=ego,
            t_s=ego.t_s,
            ids=seen.ids[near],
            class_ids=seen.class_ids[near],
            xy_m=xy,
            v_mps=v,
            yaw_rad=seen.yaw_rad[near],
            size_m=seen.size_m[near],
            scores=seen.scores[near],
            signals=seen.signals,
            emergency=None if seen.emergency is None else seen.emergency[near],
            views=self.views,
        )

    def _delayed(self, truth: WorldModel) -> WorldModel:
        """The newest truth at least `latency_s` old (the oldest one kept at the start)."""
        if self.latency_s == 0:
            return truth
        self._history.append(truth)
        while len(self._history) > 1 and self._history[1].t_s <= truth.t_s - self.latency_s:
            self._history.popleft()
        return replace(self._history[0], ego=truth.ego)

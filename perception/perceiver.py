"""The one interface every perceiver implements, so a scenario can be driven by any of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from perception.lights import MappedLight
from perception.types import CameraFrame, EgoState, WorldModel


class Perceiver(Protocol):
    needs_camera: bool  # the closed loop renders camera frames only for perceivers that use them
    needs_truth: bool  # ... and copies the simulator's truth only for perceivers built on it

    def reset(self, rng: np.random.Generator, lights: Sequence[MappedLight] = ()) -> None:
        """Forget all state (tracks, buffers), take a new generator for any randomness and the map's
        traffic lights (the HD map's prior a camera perceiver ties light boxes to signal groups by)."""

    def perceive(
        self,
        frames: Sequence[CameraFrame] | None,
        ego: EgoState,
        truth: WorldModel | None,
        sirens: Sequence[float] = (),
    ) -> WorldModel:
        """One tick: the rig's camera frames, one per camera (None between camera frames),
        odometry, the bearings [rad, ego frame] of the sirens the microphones hear, and, for
        perceivers built on the simulator's truth, the exact world. Returns what the planner may
        know."""

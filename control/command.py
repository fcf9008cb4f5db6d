"""The controller's output: what the sim applies to the ego vehicle."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """Front-wheel steering angle [rad] (left positive) and longitudinal acceleration [m/s^2]."""

    steer_rad: float
    accel_mps2: float

    def __post_init__(self):
        if not (math.isfinite(self.steer_rad) and math.isfinite(self.accel_mps2)):
            raise ValueError(
                f"control command is not finite: steer={self.steer_rad}, accel={self.accel_mps2}"
            )

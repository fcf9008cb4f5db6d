"""What the planner hands to the controller."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Behaviour(str, Enum):
    CRUISE = "cruise"
    FOLLOW = "follow"
    STOP = "stop"  # for a pedestrian or an obstacle in the lane
    CHANGE_LANE = "change_lane"  # also used to go around a blocking obstacle
    EMERGENCY_BRAKE = "emergency_brake"
    STOP_AT_LINE = "stop_at_line"  # a red or yellow light, or a stop sign: wait at the stop line
    YIELD = "yield"  # give way at the stop line (a gap in the traffic, a crosswalk, a clear box)
    CREEP = "creep"  # edge towards the junction box until the cameras see the lanes coming in


@dataclass(frozen=True, slots=True)
class Plan:
    """A path and how fast to drive along it.

    path_xy_m: (N, 2) world-frame polyline starting near the ego, spaced about 1 m.
    speeds_mps: (N,) target speed at each path point.
    target_accel_mps2: the acceleration the planner wants now (feed-forward for the controller).
    """

    path_xy_m: np.ndarray
    speeds_mps: np.ndarray
    target_accel_mps2: float
    behaviour: Behaviour
    reason: str
    target_lane: int = 0

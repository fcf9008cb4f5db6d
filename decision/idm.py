"""Intelligent Driver Model and MOBIL lane changes: the one implementation, for the ego's planner
and for the simulated traffic alike.

IDM (Treiber et al. 2000): a = a_max [1 - (v/v0)^delta - (s*/s)^2],
s* = s0 + max(0, v T + v dv / (2 sqrt(a_max b))), dv = v - v_lead, s = bumper-to-bumper gap.
MOBIL (Kesting et al. 2007), as in highway-env's behavior.py: a lane change is safe when neither
the new follower nor the vehicle itself has to brake harder than `max_braking_imposed_mps2`, and
worth it when the vehicle's gain plus politeness times its followers' gains exceeds
`min_accel_gain_mps2`.

Every function takes plain floats (the planner: a few leaders per tick) or numpy arrays (the
traffic: every vehicle at once) and works elementwise with broadcasting. Parameters live in the
YAML (conf/decision, conf/sim); these functions take them as arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_GAP_M = 0.1  # gaps are clamped here: a touching leader brakes hard rather than divide by zero
MIN_DESIRED_SPEED_MPS = 0.1  # desired speeds are clamped here (v0 = 0 would divide by zero)


@dataclass(frozen=True, slots=True)
class IDMParams:
    accel_max_mps2: float  # a: comfortable acceleration
    decel_comfort_mps2: float  # b: comfortable deceleration (positive)
    time_headway_s: float  # T
    min_gap_m: float  # s0, bumper to bumper
    delta: float  # acceleration exponent


@dataclass(frozen=True, slots=True)
class MOBILParams:
    politeness: float
    min_accel_gain_mps2: float
    max_braking_imposed_mps2: float  # positive


def idm_accel(v_mps, v0_mps, gap_m, v_lead_mps, p: IDMParams):
    """IDM acceleration [m/s^2] of a vehicle at speed `v_mps` with desired speed `v0_mps`, `gap_m`
    behind a leader at `v_lead_mps`. A gap of inf (with any leader speed) is a free road.

    Floats give a float; arrays (any broadcastable shapes) give an array. A negative speed counts
    as 0 in the free-road term; the gap is clamped at MIN_GAP_M and v0 at MIN_DESIRED_SPEED_MPS.
    """
    # The maximum: the builtin on plain floats, numpy's elementwise one otherwise (on floats it would
    # cost ten times as much and return numpy scalars).
    floats = type(v_mps) is float and type(v0_mps) is float and type(gap_m) is float
    maximum = max if floats and type(v_lead_mps) is float else np.maximum
    closing_term_s = (v_mps - v_lead_mps) / (2.0 * math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2))
    desired_gap_m = p.min_gap_m + maximum(v_mps * (p.time_headway_s + closing_term_s), 0.0)  # s*
    free_road = (maximum(v_mps, 0.0) / maximum(v0_mps, MIN_DESIRED_SPEED_MPS)) ** p.delta
    gap_ratio = desired_gap_m / maximum(gap_m, MIN_GAP_M)
    return p.accel_max_mps2 * (1.0 - free_road - gap_ratio * gap_ratio)


def mobil_safe(accel_after_mps2, p: MOBILParams):
    """MOBIL's safety criterion: a vehicle's acceleration after the lane change (the new follower's,
    or the changing vehicle's own) asks for no harder braking than `max_braking_imposed_mps2`."""
    return accel_after_mps2 >= -p.max_braking_imposed_mps2


def mobil(
    self_now_mps2,
    self_after_mps2,
    new_follower_now_mps2,
    new_follower_after_mps2,
    old_follower_now_mps2,
    old_follower_after_mps2,
    p: MOBILParams,
):
    """MOBIL for a lane change, from the IDM accelerations now and after it of the vehicle, its new
    follower (in the target lane) and its old follower (in its lane). Returns (incentive [m/s^2],
    safe): change when safe and incentive > 0.

    incentive = own gain + politeness x (both followers' gains) - min_accel_gain_mps2;
    safe: `mobil_safe` for the new follower and for the vehicle itself. A missing follower is
    passed as 0 now and 0 after (no gain, safe).
    """
    own_gain = self_after_mps2 - self_now_mps2
    followers_gain = (new_follower_after_mps2 - new_follower_now_mps2) + (
        old_follower_after_mps2 - old_follower_now_mps2
    )
    incentive = own_gain + p.politeness * followers_gain - p.min_accel_gain_mps2
    safe = mobil_safe(new_follower_after_mps2, p) & mobil_safe(self_after_mps2, p)
    return incentive, safe

"""Intelligent Driver Model and MOBIL lane-change criteria, on scalars or arrays alike.

IDM (Treiber et al. 2000): a = a_max [1 - (v/v0)^delta - (s*/s)^2],
s* = s0 + v T + v dv / (2 sqrt(a_max b)), dv = v - v_lead, s = bumper-to-bumper gap.
MOBIL (Kesting et al. 2007), as in highway-env's behavior.py: change lane if the new follower is not
made to brake harder than `max_braking_imposed_mps2` and the ego's gain minus politeness times the
followers' losses exceeds `min_accel_gain_mps2`.

Parameters live in the YAML (conf/decision, conf/sim); these functions take them as arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class IDMParams:
    accel_max_mps2: float  # a: comfortable acceleration
    decel_comfort_mps2: float  # b: comfortable deceleration (positive)
    time_headway_s: float  # T
    min_gap_m: float  # s0, bumper to bumper
    delta: float = 4.0  # acceleration exponent


@dataclass(frozen=True, slots=True)
class MOBILParams:
    politeness: float
    min_accel_gain_mps2: float
    max_braking_imposed_mps2: float  # positive


def idm_accel(v_mps, v0_mps, gap_m, v_lead_mps, p: IDMParams):
    """IDM acceleration [m/s^2]. `gap_m` = inf (and any v_lead) means a free road.

    Works elementwise on numpy arrays; plain floats take a plain-Python path (a planner calls this
    a few times per tick, where numpy's per-call cost would dominate). The gap is clamped at 0.1 m
    so that a touching or overlapping leader gives a very large deceleration rather than a division
    by zero.
    """
    if (
        isinstance(v_mps, float)
        and isinstance(v0_mps, float)
        and isinstance(gap_m, float)
        and isinstance(v_lead_mps, float)
    ):
        return _idm_accel_float(v_mps, v0_mps, gap_m, v_lead_mps, p)
    v = np.asarray(v_mps, dtype=float)
    v0 = np.maximum(np.asarray(v0_mps, dtype=float), 0.1)
    free = 1.0 - (np.maximum(v, 0.0) / v0) ** p.delta
    dv = v - np.asarray(v_lead_mps, dtype=float)
    s_star = p.min_gap_m + np.maximum(
        0.0, v * p.time_headway_s + v * dv / (2.0 * np.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2))
    )
    gap = np.maximum(np.asarray(gap_m, dtype=float), 0.1)
    interaction = np.where(np.isinf(gap), 0.0, (s_star / gap) ** 2)
    a = p.accel_max_mps2 * (free - interaction)
    return a if a.ndim else float(a)


def _idm_accel_float(v: float, v0: float, gap: float, v_lead: float, p: IDMParams) -> float:
    """`idm_accel` on plain floats, the same formula step by step."""
    free = 1.0 - ((v if v > 0.0 else 0.0) / (v0 if v0 > 0.1 else 0.1)) ** p.delta
    if gap == math.inf:
        return p.accel_max_mps2 * free
    s_star = v * p.time_headway_s + v * (v - v_lead) / (
        2.0 * math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2)
    )
    s_star = p.min_gap_m + (s_star if s_star > 0.0 else 0.0)
    ratio = s_star / (gap if gap > 0.1 else 0.1)
    return p.accel_max_mps2 * (free - ratio * ratio)


def mobil_gain(
    accel_self_now,
    accel_self_after,
    accel_new_follower_now,
    accel_new_follower_after,
    accel_old_follower_now,
    accel_old_follower_after,
    p: MOBILParams,
):
    """Return (incentive [m/s^2], safe [bool]) of a lane change, elementwise.

    safe: the new follower's acceleration after the change >= -max_braking_imposed.
    incentive: self gain + politeness * (both followers' gains) - min_accel_gain; change if > 0.
    """
    self_gain = np.asarray(accel_self_after) - np.asarray(accel_self_now)
    others = (np.asarray(accel_new_follower_after) - np.asarray(accel_new_follower_now)) + (
        np.asarray(accel_old_follower_after) - np.asarray(accel_old_follower_now)
    )
    incentive = self_gain + p.politeness * others - p.min_accel_gain_mps2
    safe = np.asarray(accel_new_follower_after) >= -p.max_braking_imposed_mps2
    return incentive, safe

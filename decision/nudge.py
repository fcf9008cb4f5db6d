"""Keeping clear of an oncoming vehicle that cuts into the ego's lane (CARLA's InvadingTurn): the
ego shifts its path to the right, as far as the road's paved edge allows, and slows down while it
is shifted more than half a metre (decision/planner.py NUDGE_SLOW_M). A pure function of the
tracks, and the state that moves the shift at a limited rate. The same shift, to the left (the
ego's side `peek_over_line_m` over the lane line), edges the ego out to look past a stopped vehicle
that it waits to pass through the oncoming lane (decision/behaviour.py `wants_to_look`), where that
vehicle hides the lane from the cameras.

The shift a track asks for: how far its near side (its centre's d less half its lateral extent,
where its predicted drift towards the ego's lane takes it, as the situation's corridor test
predicts it) comes within `clearance_m` (the situation's lateral margin, and a little more, so that
the shifted corridor no longer holds it) of the ego's left side in the centre of its lane. Only
vehicles coming the other way (against s), from the left of the lane's centre, between alongside
the ego and `look_ahead_m` ahead, ask for one; the largest ask counts, limited by the room between
the ego's right side and the paved edge (less `edge_margin_m`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decision.route import Road
from decision.situation import F_AHEAD, F_D, F_DRIFT, F_LAT2, TracksFrenet, lane_offset_m
from perception.types import VEHICLE

ONCOMING_MPS = 1.0  # a vehicle this fast against s is coming the other way


@dataclass(frozen=True, slots=True)
class NudgeParams:
    """How the ego keeps clear of oncoming vehicles in its lane (conf/decision/default.yaml `nudge`)."""

    look_ahead_m: float  # oncoming vehicles this near ahead (down to alongside) are kept clear of
    edge_margin_m: float  # clearance kept to the paved edge
    rate_mps: float  # the shift moves sideways at most this fast
    speed_mps: float  # the ego drives no faster than this while shifted more than NUDGE_SLOW_M
    # Behind a stopped object that it would pass through the oncoming lane, which that object hides,
    # the ego edges out left to see past it (behaviour.wants_to_look), until its left side is this
    # far over the lane line (as a driver's nose; < 0: short of it).
    peek_over_line_m: float

    def __post_init__(self):
        if not (
            self.look_ahead_m > 0 and self.edge_margin_m >= 0 and self.rate_mps > 0 and self.speed_mps > 0
        ):
            raise ValueError("nudge: look_ahead_m, rate_mps and speed_mps must be > 0, edge_margin_m >= 0")


def wanted_shift_m(
    t: TracksFrenet | None,
    road: Road,
    lane: int,
    ego_width_m: float,
    ego_length_m: float,
    clearance_m: float,
    p: NudgeParams,
    predict: bool = True,
) -> float:
    """The shift [m] of the ego's path from lane `lane`'s centre (<= 0: to the right) that keeps it
    clear of the oncoming vehicles cutting into the lane; 0 when none does. predict=False: where
    they are, not where their drift takes them."""
    if t is None or len(t.ids) == 0:
        return 0.0
    f = t.features
    d_lane, half = lane_offset_m(road, lane), 0.5 * ego_width_m
    coming = (
        (t.class_ids == VEHICLE)
        & (t.speed_s_mps < -ONCOMING_MPS)
        & (f[F_AHEAD] > -ego_length_m)
        & (f[F_AHEAD] < p.look_ahead_m)
        & (f[F_D] > d_lane)
    )
    if not np.count_nonzero(coming):
        return 0.0
    near_side = f[F_D] - 0.5 * f[F_LAT2]
    if predict:
        near_side = near_side + np.minimum(f[F_DRIFT], 0.0)  # where it is coming to
    ask = float(np.max(d_lane + half + clearance_m - near_side[coming]))
    room = d_lane - half - p.edge_margin_m + road.half_width_m + road.shoulder_m
    return -min(ask, max(room, 0.0)) if ask > 0.0 else 0.0


def step_shift_m(current_m: float, wanted_m: float, dt_s: float, p: NudgeParams) -> float:
    """The shift after `dt_s` [s] moving towards `wanted_m` at no more than `rate_mps`."""
    step = p.rate_mps * max(dt_s, 0.0)
    return current_m + min(max(wanted_m - current_m, -step), step)


def peek_shift_m(road: Road, ego_width_m: float, p: NudgeParams) -> float:
    """The shift [m] (> 0: to the left) that edges the ego out to look: its left side
    `peek_over_line_m` over its lane's left line."""
    return max(0.5 * (road.lane_width_m - ego_width_m) + p.peek_over_line_m, 0.0)

"""Lane changes of the simulated traffic: which vehicles change lanes (MOBIL, decision/idm.py, over
the traffic's rows) and how a change in progress moves sideways (the quintic blend,
decision/geometry.py).

Rows are those of `sim.traffic.traffic.Traffic`: R = N actors, the ego, the road-end wall. A
vehicle's new leader in a lane is the nearest row ahead that takes up that lane; its new follower
the nearest driver (a vehicle or the ego) behind or alongside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decision.geometry import quintic_blend, quintic_blend_slope
from decision.idm import IDMParams, MOBILParams, idm_accel, mobil, mobil_safe

LANE_CHANGE_FULL_RATE_MPS = 3.0  # slower vehicles progress through a lane change proportionally slower,
LANE_CHANGE_MIN_RATE = 0.5  # but at least at this fraction of the full rate (a stopped car pulls out)
SIDES = np.array([1, -1])  # the lanes looked at, relative to a vehicle's own: left, then right


@dataclass(frozen=True, slots=True)
class RowState:
    """The traffic's (R,) row arrays that lane-change decisions read (views, updated in place)."""

    s_m: np.ndarray
    speed_mps: np.ndarray
    desired_speed_mps: np.ndarray
    half_length_m: np.ndarray
    lane: np.ndarray  # int
    is_driver: np.ndarray  # bool: rows whose IDM acceleration counts (vehicles and the ego)


@dataclass(frozen=True, slots=True)
class Leaders:
    """Each row's current leader: `row` (R,) int, `gap_m` (R,) bumper to bumper, inf for none (row
    0 then stands in), and `accel_mps2` (R,) the IDM acceleration behind it."""

    row: np.ndarray
    gap_m: np.ndarray
    accel_mps2: np.ndarray


def choose_lane_changes(
    deciding: np.ndarray,
    rows: RowState,
    leaders: Leaders,
    lane_members: np.ndarray,
    idm: IDMParams,
    mobil_params: MOBILParams,
) -> tuple[np.ndarray, np.ndarray]:
    """MOBIL to the left and to the right for the vehicles `deciding` (m,) (row indices, sorted,
    none changing lanes now); returns the rows that change and their new lanes, both (m',).

    A lane is a candidate when it exists, MOBIL finds the change safe and worth it, and there is
    more than `idm.min_gap_m` to the new leader and to anything behind or alongside; the candidate
    with the larger incentive wins (left on a tie). Vehicles merging into one lane at once are then
    checked against each other (`_merges_that_fit`).

    lane_members: (lanes + 2, R) bool, the rows that take up each lane as a leader of others, with
    an empty lane on either side of the road (row 0: lane -1, row k + 1: lane k).
    """
    lane_count = len(lane_members) - 2
    i = deciding[:, None]  # (m, 1): each deciding row, against its two candidate lanes (m, 2)
    lanes = rows.lane[i] + SIDES
    members = lane_members[lanes + 1]  # (m, 2, R)
    members[np.arange(deciding.size), :, deciding] = False  # a vehicle is not its own neighbour
    new_lead, lead_gap, new_follower, follower_gap, back_gap = _neighbours(deciding, members, rows)

    v, v0 = rows.speed_mps, rows.desired_speed_mps
    self_after = idm_accel(v[i], v0[i], lead_gap, v[new_lead], idm)
    has_follower = follower_gap < math.inf
    follower_after = idm_accel(v[new_follower], v0[new_follower], follower_gap, v[i], idm)
    follower_after = np.where(has_follower, follower_after, 0.0)
    follower_now = np.where(has_follower, leaders.accel_mps2[new_follower], 0.0)
    old_now, old_after = 0.0, 0.0
    if mobil_params.politeness != 0.0:
        old_now, old_after = _old_followers(deciding, rows, leaders, idm)
    incentive, safe = mobil(
        leaders.accel_mps2[i], self_after, follower_now, follower_after, old_now, old_after, mobil_params
    )
    room = (lead_gap > idm.min_gap_m) & (back_gap > idm.min_gap_m)
    exists = (lanes >= 0) & (lanes < lane_count)
    incentive[~(exists & safe & room & (incentive > 0.0))] = -math.inf
    goes = np.flatnonzero(incentive.max(axis=1) > -math.inf)
    if goes.size == 0:
        return deciding[:0], lanes[:0, 0]
    side = (incentive[goes, 1] > incentive[goes, 0]).astype(np.int64)  # 0: left, 1: right
    chosen, new_lanes = deciding[goes], lanes[goes, side]
    keep = _merges_that_fit(chosen, new_lanes, rows, idm, mobil_params)
    return chosen[keep], new_lanes[keep]


def _neighbours(deciding: np.ndarray, members: np.ndarray, rows: RowState) -> tuple[np.ndarray, ...]:
    """For each deciding row and candidate lane (m, 2): the new leader (the nearest member ahead)
    and its gap, the new follower (the nearest driver behind or alongside) and its gap, and the
    least gap to any member behind or alongside. Gaps are bumper to bumper [m], inf for nobody
    (row 0 then stands in); on a tie the lower row wins.

    members: (m, 2, R) bool, the rows that take up each candidate lane.
    """
    s, half_length = rows.s_m, rows.half_length_m
    ahead_m = s - s[deciding][:, None, None]  # (m, 1, R): centre to centre along the road
    half_lengths_m = half_length + half_length[deciding][:, None, None]
    is_ahead = ahead_m > 0.0
    lead_gaps = np.where(members & is_ahead, ahead_m - half_lengths_m, math.inf)  # (m, 2, R)
    back_gaps = np.where(members & ~is_ahead, -(ahead_m + half_lengths_m), math.inf)
    follower_gaps = np.where(rows.is_driver, back_gaps, math.inf)
    new_lead, new_follower = lead_gaps.argmin(axis=2), follower_gaps.argmin(axis=2)
    m, side = np.ogrid[: deciding.size, :2]
    lead_gap, follower_gap = lead_gaps[m, side, new_lead], follower_gaps[m, side, new_follower]
    return new_lead, lead_gap, new_follower, follower_gap, back_gaps.min(axis=2)


def _old_followers(
    deciding: np.ndarray, rows: RowState, leaders: Leaders, idm: IDMParams
) -> tuple[np.ndarray, np.ndarray]:
    """IDM acceleration now and after the change (m, 1) of each deciding vehicle's old follower,
    the nearest driver whose leader it is (0 and 0 where there is none): once the vehicle has
    left, that follower follows the vehicle's own leader."""
    i = deciding[:, None]
    follows = (leaders.row == i) & rows.is_driver & (leaders.gap_m < math.inf)  # (m, R)
    gaps = np.where(follows, leaders.gap_m, math.inf)
    old = gaps.argmin(axis=1)[:, None]  # the nearest (the lower row on a tie)
    has_old = np.take_along_axis(gaps, old, axis=1) < math.inf
    s, half_length, v = rows.s_m, rows.half_length_m, rows.speed_mps
    my_lead = leaders.row[i]
    gap_after = np.where(
        leaders.gap_m[i] < math.inf,
        s[my_lead] - s[old] - half_length[my_lead] - half_length[old],
        math.inf,
    )
    after = idm_accel(v[old], rows.desired_speed_mps[old], gap_after, v[my_lead], idm)
    return np.where(has_old, leaders.accel_mps2[old], 0.0), np.where(has_old, after, 0.0)


def _merges_that_fit(
    chosen: np.ndarray, new_lanes: np.ndarray, rows: RowState, idm: IDMParams, mobil_params: MOBILParams
) -> np.ndarray:
    """(m',) bool: the chosen changes that stay when vehicles merge into one lane at once: a rear
    one must have more than `min_gap_m` to, and not brake harder than MOBIL allows behind, every
    front one (ahead along the road, or level with it and of a lower row)."""
    if chosen.size <= 1:
        return np.ones(chosen.size, bool)
    s, half_length, v = rows.s_m[chosen], rows.half_length_m[chosen], rows.speed_mps[chosen]
    gap = s - s[:, None] - half_length - half_length[:, None]  # (m', m'): row k behind column j
    in_front = (new_lanes == new_lanes[:, None]) & (
        (s > s[:, None]) | ((s == s[:, None]) & (chosen < chosen[:, None]))
    )
    accel = idm_accel(v[:, None], rows.desired_speed_mps[chosen][:, None], gap, v, idm)
    fits = mobil_safe(accel, mobil_params) & (gap > idm.min_gap_m)
    return ~(in_front & ~fits).any(axis=1)


@dataclass(slots=True)
class _LaneChange:
    """One vehicle's lane change: d blends from `from_m` to `to_m` as `fraction` goes 0 -> 1."""

    from_m: float
    to_m: float
    duration_s: float  # at full rate
    fraction: float = 0.0


class LaneChangesInProgress:
    """The lane changes under way (a few rows at a time), stepped one row at a time.

    A change moves the row's lateral offset d along the quintic blend from where it started to the
    target lane's centre, over its duration at full rate; a vehicle slower than
    LANE_CHANGE_FULL_RATE_MPS progresses proportionally slower (at least at LANE_CHANGE_MIN_RATE).
    """

    def __init__(self):
        self._changes: dict[int, _LaneChange] = {}
        self.rows: list[int] = []  # the rows changing lanes, sorted

    def __bool__(self) -> bool:
        return bool(self._changes)

    def __contains__(self, row: int) -> bool:
        return row in self._changes

    def start(self, rows: list[int], from_m: list[float], to_m: list[float], duration_s: list[float]) -> None:
        """Start (or restart) the changes of `rows` from offsets `from_m` to `to_m` [m]."""
        for row, start, end, duration in zip(rows, from_m, to_m, duration_s, strict=True):
            self._changes[row] = _LaneChange(start, end, duration)
        self.rows = sorted(self._changes)

    def step(self, dt_s: float, speed_mps: np.ndarray, d_m: np.ndarray, d_rate_mps: np.ndarray) -> list[int]:
        """Advance every change by `dt_s` [s]: writes d_m and d_rate_mps (R,) of the rows changing
        lanes, from their speed_mps (R,). Returns the rows whose change finished (d at the target)."""
        finished = []
        for row, change in self._changes.items():
            rate = min(max(speed_mps.item(row) / LANE_CHANGE_FULL_RATE_MPS, LANE_CHANGE_MIN_RATE), 1.0)
            rate /= change.duration_s  # fraction of the change per second
            change.fraction = fraction = min(change.fraction + rate * dt_s, 1.0)
            if fraction >= 1.0:
                d_m[row], d_rate_mps[row] = change.to_m, 0.0
                finished.append(row)
                continue
            span = change.to_m - change.from_m
            d_m[row] = change.from_m + span * quintic_blend(fraction)
            d_rate_mps[row] = span * quintic_blend_slope(fraction) * rate
        for row in finished:
            del self._changes[row]
        if finished:
            self.rows = sorted(self._changes)
        return finished

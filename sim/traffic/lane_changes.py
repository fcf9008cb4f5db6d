"""Lane changes of the simulated traffic: which vehicles change lanes (MOBIL, decision/idm.py) and
how a change in progress moves sideways (the quintic blend, decision/geometry.py).

Rows are those of `sim.traffic.traffic.Traffic`: R = N actors, the ego, the road-end wall. A
vehicle's new leader in a lane is the row that takes up that lane with the least bumper gap ahead
of it; its new follower the driver (a vehicle or the ego) with the least gap behind or alongside.

A few vehicles decide at a time (about 6 among a few dozen rows, every fifth tick), each looking at
the rows of two lanes: this is done in plain floats, calling decision/idm.py's IDM and MOBIL on
floats. An all-array version (IDM and MOBIL over every candidate at once) made the whole closed
loop several percent slower: benchmarks/sim_speed.py has the measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from decision.geometry import quintic_blend, quintic_blend_slope
from decision.idm import IDMParams, MOBILParams, idm_accel, mobil, mobil_safe

LANE_CHANGE_FULL_RATE_MPS = 3.0  # slower vehicles progress through a lane change proportionally slower,
LANE_CHANGE_MIN_RATE = 0.5  # but at least at this fraction of the full rate (a stopped car pulls out)


@dataclass(frozen=True, slots=True)
class RowState:
    """The traffic's (R,) row arrays that lane-change decisions read (views, updated in place)."""

    s_m: np.ndarray
    speed_mps: np.ndarray
    desired_speed_mps: np.ndarray
    half_length_m: np.ndarray
    lane: np.ndarray  # int
    is_driver: np.ndarray  # bool: rows whose IDM acceleration counts (vehicles and the ego)


class Leaders(NamedTuple):
    """Each row's current leader: `row` (R,) int, `gap_m` (R,) bumper to bumper, inf for none (row
    0 then stands in), and `accel_mps2` (R,) the IDM acceleration behind it."""

    row: np.ndarray
    gap_m: np.ndarray
    accel_mps2: np.ndarray


class _Rows(NamedTuple):
    """The row arrays as lists, for the plain-float decisions of one tick."""

    s: list[float]
    half_length: list[float]
    speed: list[float]
    desired_speed: list[float]
    is_driver: list[bool]
    accel: list[float]  # IDM acceleration now, behind the current leader


def choose_lane_changes(
    deciding: np.ndarray,
    rows: RowState,
    leaders: Leaders,
    lane_occupancy: np.ndarray,
    idm: IDMParams,
    mobil_params: MOBILParams,
) -> tuple[np.ndarray, np.ndarray]:
    """MOBIL to the left and to the right for the vehicles `deciding` (m,) (row indices, sorted,
    none changing lanes now); returns the rows that change and their new lanes, both (m',).

    A lane is a candidate when it exists, there is more than `idm.min_gap_m` to the new leader and
    to anything behind or alongside, and MOBIL finds the change safe and worth it; the candidate
    with the larger incentive wins (left on a tie). Vehicles merging into one lane at once are then
    checked against each other (`_merges_that_fit`).

    lane_occupancy: (R, lanes) 0/1, the lanes each row takes up as a leader of others.
    """
    lane_count = lane_occupancy.shape[1]
    members = _lane_members(lane_occupancy)
    state = _Rows(
        rows.s_m.tolist(),
        rows.half_length_m.tolist(),
        rows.speed_mps.tolist(),
        rows.desired_speed_mps.tolist(),
        rows.is_driver.tolist(),
        leaders.accel_mps2.tolist(),
    )
    polite = mobil_params.politeness != 0.0
    old_followers = _old_followers(deciding, leaders, state, idm) if polite else {}
    chosen, new_lanes = [], []
    for row, own_lane in zip(deciding.tolist(), rows.lane[deciding].tolist(), strict=True):
        best, best_lane = 0.0, -1  # a change must have a positive incentive
        for lane in (own_lane + 1, own_lane - 1):  # left, then right
            if not 0 <= lane < lane_count:
                continue
            leader, leader_gap, follower, follower_gap, back_gap = _neighbours(row, members[lane], state)
            if leader_gap <= idm.min_gap_m or back_gap <= idm.min_gap_m:
                continue  # no room
            old_follower = old_followers.get(row, (0.0, 0.0))
            incentive = _incentive(
                row, leader, leader_gap, follower, follower_gap, old_follower, state, idm, mobil_params, best
            )
            if incentive > best:
                best, best_lane = incentive, lane
        if best_lane >= 0:
            chosen.append(row)
            new_lanes.append(best_lane)
    chosen, new_lanes = np.array(chosen, np.int64), np.array(new_lanes, np.int64)
    keep = _merges_that_fit(chosen, new_lanes, rows, idm, mobil_params)
    return chosen[keep], new_lanes[keep]


def _lane_members(lane_occupancy: np.ndarray) -> list[list[int]]:
    """The rows that take up each lane, in row order."""
    members: list[list[int]] = [[] for _ in range(lane_occupancy.shape[1])]
    lane_of, row_of = np.nonzero(lane_occupancy.T > 0.0)  # lane by lane, rows in order
    for lane, row in zip(lane_of.tolist(), row_of.tolist(), strict=True):
        members[lane].append(row)
    return members


def _neighbours(row: int, members: list[int], state: _Rows) -> tuple[int, float, int, float, float]:
    """The neighbours `row` would have among the rows `members` of a lane: (new leader, its bumper
    gap [m], new follower (the nearest driver behind or alongside), its gap, the least gap to any
    member behind or alongside). inf (and row 0) for nobody; on a tie the lower row wins."""
    s, half_length = state.s, state.half_length
    leader = follower = 0
    leader_gap = follower_gap = back_gap = math.inf
    for other in members:
        if other == row:
            continue
        ahead_m, half_lengths_m = s[other] - s[row], half_length[other] + half_length[row]
        if ahead_m > 0.0:
            if ahead_m - half_lengths_m < leader_gap:
                leader, leader_gap = other, ahead_m - half_lengths_m
        else:
            gap = -(ahead_m + half_lengths_m)
            back_gap = min(back_gap, gap)
            if state.is_driver[other] and gap < follower_gap:
                follower, follower_gap = other, gap
    return leader, leader_gap, follower, follower_gap, back_gap


def _incentive(
    row: int,
    leader: int,
    leader_gap_m: float,
    follower: int,
    follower_gap_m: float,
    old_follower: tuple[float, float],
    state: _Rows,
    idm: IDMParams,
    mobil_params: MOBILParams,
    to_beat: float,
) -> float:
    """MOBIL's incentive [m/s^2] for `row` to change into a lane where it has this new leader and
    follower (gaps inf: none), -inf when unsafe. old_follower: the IDM accelerations now and after
    of its old follower. `to_beat`: the incentive of the best lane so far; when only the own gain
    counts (politeness 0) and it cannot beat that, the followers are not asked (-inf)."""
    v, v0, accel = state.speed, state.desired_speed, state.accel
    self_after = idm_accel(v[row], v0[row], leader_gap_m, v[leader], idm)
    if (
        mobil_params.politeness == 0.0
        and self_after - accel[row] - mobil_params.min_accel_gain_mps2 <= to_beat
    ):
        return -math.inf
    follower_now = follower_after = 0.0  # nobody behind: no gain, safe
    if follower_gap_m < math.inf:
        follower_now = accel[follower]
        follower_after = idm_accel(v[follower], v0[follower], follower_gap_m, v[row], idm)
    incentive, safe = mobil(accel[row], self_after, follower_now, follower_after, *old_follower, mobil_params)
    return incentive if safe else -math.inf


def _old_followers(
    deciding: np.ndarray, leaders: Leaders, state: _Rows, idm: IDMParams
) -> dict[int, tuple[float, float]]:
    """For each deciding row that is someone's leader: the IDM acceleration now and after the change
    of its old follower, the nearest driver whose leader it is. Once the vehicle has left, that
    follower follows the vehicle's own leader."""
    lead, lead_gap = leaders.row.tolist(), leaders.gap_m.tolist()
    nearest: dict[int, tuple[float, int]] = {}  # leader row -> (gap, its nearest following driver)
    for row, (leader, gap) in enumerate(zip(lead, lead_gap, strict=True)):
        if state.is_driver[row] and gap < nearest.get(leader, (math.inf, 0))[0]:
            nearest[leader] = gap, row
    s, half_length, v = state.s, state.half_length, state.speed
    result = {}
    for row in deciding.tolist():
        if row not in nearest:
            continue
        old, my_leader = nearest[row][1], lead[row]
        gap = math.inf
        if lead_gap[row] < math.inf:
            gap = s[my_leader] - s[old] - half_length[my_leader] - half_length[old]
        result[row] = state.accel[old], idm_accel(v[old], state.desired_speed[old], gap, v[my_leader], idm)
    return result


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

"""The traffic's lane-change choice and lane changes in progress (sim/traffic/lane_changes.py), on
hand-made rows: who the new neighbours are, when MOBIL lets a vehicle go, and how it moves across."""

import math

import numpy as np
import pytest

from decision.geometry import quintic_blend
from decision.idm import IDMParams, MOBILParams, idm_accel
from sim.traffic.lane_changes import (
    LANE_CHANGE_FULL_RATE_MPS,
    LANE_CHANGE_MIN_RATE,
    LaneChangesInProgress,
    Leaders,
    RowState,
    choose_lane_changes,
)

IDM = IDMParams(accel_max_mps2=3.0, decel_comfort_mps2=5.0, time_headway_s=1.5, min_gap_m=5.0, delta=4.0)
MOBIL = MOBILParams(politeness=0.0, min_accel_gain_mps2=0.2, max_braking_imposed_mps2=2.0)
LANES = 3
HALF_LENGTH_M = 2.25


def road_rows(cars: list[tuple[float, int, float, float]]):
    """Rows of cars (s [m], lane, speed [m/s], desired speed [m/s]), all 4.5 m long drivers, in
    their lanes; returns the RowState, each row's Leaders (nearest row ahead in its lane, its IDM
    acceleration) and the (R, lanes) occupancy."""
    s, lane, v, v0 = (np.array(column, float) for column in zip(*cars, strict=True))
    lane = lane.astype(np.int64)
    r = len(cars)
    rows = RowState(s, v, v0, np.full(r, HALF_LENGTH_M), lane, np.ones(r, bool))
    occupancy = np.zeros((r, LANES))
    occupancy[np.arange(r), lane] = 1.0
    gap = s[None, :] - s[:, None] - 2 * HALF_LENGTH_M
    gap[(lane[None, :] != lane[:, None]) | (s[None, :] <= s[:, None])] = np.inf
    lead = gap.argmin(axis=1)
    lead_gap = gap[np.arange(r), lead]
    leaders = Leaders(lead, lead_gap, idm_accel(v, v0, lead_gap, v[lead], IDM))
    return rows, leaders, occupancy


def choose(cars, deciding, mobil=MOBIL):
    rows, leaders, occupancy = road_rows(cars)
    chosen, lanes = choose_lane_changes(np.array(deciding), rows, leaders, occupancy, IDM, mobil)
    return dict(zip(chosen.tolist(), lanes.tolist(), strict=True))


# A car (row 0) at 20 m/s wanting 30 m/s, 25 m behind a slow car (row 1) in the middle lane.
STUCK = [(100.0, 1, 20.0, 30.0), (125.0, 1, 10.0, 10.0)]


def test_a_blocked_car_changes_to_a_free_lane_and_prefers_the_left_on_a_tie():
    assert choose(STUCK, [0]) == {0: 2}  # both neighbours free: the same incentive, left wins
    right_free = STUCK + [(100.0, 2, 20.0, 20.0)]  # a car alongside on the left
    assert choose(right_free, [0]) == {0: 0}
    # A slow car just ahead on the left: the right lane gives more.
    assert choose(STUCK + [(140.0, 2, 12.0, 12.0)], [0]) == {0: 0}


def test_no_change_without_room_safety_or_gain():
    both_taken = STUCK + [(98.0, 2, 20.0, 20.0), (104.0, 0, 20.0, 20.0)]  # alongside, both sides
    assert choose(both_taken, [0]) == {}
    # A fast car 12 m behind on the left and on the right: it would have to brake too hard.
    fast_behind = STUCK + [(83.5, 2, 32.0, 32.0), (83.5, 0, 32.0, 32.0)]
    imposed = idm_accel(32.0, 32.0, 100.0 - 83.5 - 4.5, 20.0, IDM)
    assert imposed < -MOBIL.max_braking_imposed_mps2  # (what MOBIL's safety criterion rejects)
    assert choose(fast_behind, [0]) == {}
    # A car already at its desired speed with nothing near gains nothing.
    assert choose([(100.0, 1, 20.0, 20.0)], [0]) == {}


def test_an_edge_lane_looks_one_way_and_only_deciding_vehicles_move():
    cars = [(100.0, 0, 20.0, 30.0), (125.0, 0, 10.0, 10.0), (300.0, 2, 20.0, 30.0), (325.0, 2, 10.0, 10.0)]
    assert choose(cars, [0, 2]) == {0: 1, 2: 1}
    assert choose(cars, [2]) == {2: 1}


def test_vehicles_merging_into_one_lane_check_each_other():
    # Two blocked cars side by side in lanes 0 and 2, 3 m apart along the road: both want lane 1.
    cars = [(100.0, 0, 20.0, 30.0), (125.0, 0, 10.0, 10.0), (103.0, 2, 20.0, 30.0), (128.0, 2, 10.0, 10.0)]
    assert choose(cars, [0]) == {0: 1} and choose(cars, [2]) == {2: 1}
    assert choose(cars, [0, 2]) == {2: 1}  # the rear one would have no room behind the front one


def test_politeness_weighs_the_old_follower():
    # Row 0 is held back a little by row 1; row 2 follows row 0 far too closely and gains much when
    # row 0 leaves: polite drivers count that gain.
    cars = [(100.0, 1, 15.0, 17.0), (150.0, 1, 15.0, 15.0), (85.0, 1, 15.0, 17.0)]
    _, leaders, _ = road_rows(cars)
    barely = MOBILParams(politeness=0.0, min_accel_gain_mps2=2.0, max_braking_imposed_mps2=2.0)
    polite = MOBILParams(politeness=1.0, min_accel_gain_mps2=2.0, max_braking_imposed_mps2=2.0)
    gain = idm_accel(15.0, 17.0, math.inf, 0.0, IDM) - leaders.accel_mps2[0]
    assert 0.5 < gain < 2.0  # not enough for an impolite driver ...
    assert choose(cars, [0], barely) == {}
    assert choose(cars, [0], polite) == {0: 2}  # ... enough with the follower's gain


def test_a_lane_change_follows_the_quintic_blend_and_slow_cars_progress_slower():
    changes = LaneChangesInProgress()
    # Row 0 at full rate (faster than LANE_CHANGE_FULL_RATE_MPS), row 1 stopped.
    d, d_rate, speed = np.array([-3.5, 0.0]), np.zeros(2), np.array([2 * LANE_CHANGE_FULL_RATE_MPS, 0.0])
    changes.start([0, 1], [-3.5, 0.0], [0.0, 3.5], [3.0, 3.0])
    assert 0 in changes and changes.rows == [0, 1]
    for _ in range(20):  # 1 s
        finished = changes.step(0.05, speed, d, d_rate)
    assert not finished
    assert d[0] == pytest.approx(-3.5 + 3.5 * quintic_blend(1.0 / 3.0))
    # A stopped car moves at the minimum rate.
    assert d[1] == pytest.approx(3.5 * quintic_blend(LANE_CHANGE_MIN_RATE / 3.0))
    assert d_rate[0] > 0.0
    for _ in range(40):  # 2 s more: the full-rate change is done, the other is not
        finished = changes.step(0.05, speed, d, d_rate) or finished
    assert finished == [0] and d[0] == 0.0 and d_rate[0] == 0.0 and changes.rows == [1]

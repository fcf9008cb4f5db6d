"""IDM and MOBIL (decision/idm.py), the one implementation the planner and the traffic share:
the physics they promise, stepped for a fixed simulated time, on floats and on arrays alike."""

import math

import numpy as np
import pytest

from decision.idm import IDMParams, MOBILParams, idm_accel, mobil, mobil_safe

IDM = IDMParams(accel_max_mps2=1.8, decel_comfort_mps2=3.0, time_headway_s=1.5, min_gap_m=2.5, delta=4.0)
MOBIL = MOBILParams(politeness=0.0, min_accel_gain_mps2=0.2, max_braking_imposed_mps2=2.0)
DT_S = 0.05


def drive_behind(gap_m: float, v_mps: float, v_lead_mps: float, v0_mps: float, duration_s: float):
    """One IDM follower behind a leader at constant speed (semi-implicit Euler, no reversing).
    Returns the gap, speed and the smallest gap seen."""
    min_gap = gap_m
    for _ in range(int(round(duration_s / DT_S))):
        a = idm_accel(v_mps, v0_mps, gap_m, v_lead_mps, IDM)
        v_mps = max(v_mps + a * DT_S, 0.0)
        gap_m += (v_lead_mps - v_mps) * DT_S
        min_gap = min(min_gap, gap_m)
    return gap_m, v_mps, min_gap


def test_stops_the_wanted_gap_behind_a_stopped_car():
    gap, v, min_gap = drive_behind(gap_m=150.0, v_mps=20.0, v_lead_mps=0.0, v0_mps=20.0, duration_s=60.0)
    assert gap == pytest.approx(IDM.min_gap_m, abs=0.3)
    assert min_gap > 0.8 * IDM.min_gap_m  # never closer than the min gap, let alone a collision
    assert v == pytest.approx(0.0, abs=0.05)


def test_follows_at_the_equilibrium_gap():
    # Steady state behind a leader at v < v0: gap = s*(v) / sqrt(1 - (v/v0)^delta), dv = 0.
    v_lead, v0 = 12.0, 20.0
    gap, v, _ = drive_behind(gap_m=60.0, v_mps=18.0, v_lead_mps=v_lead, v0_mps=v0, duration_s=90.0)
    expected = (IDM.min_gap_m + v_lead * IDM.time_headway_s) / np.sqrt(1.0 - (v_lead / v0) ** IDM.delta)
    assert v == pytest.approx(v_lead, abs=0.05)
    assert gap == pytest.approx(expected, rel=0.02)


def test_free_road_converges_to_the_desired_speed():
    v = 0.0
    for _ in range(int(60.0 / DT_S)):
        v += idm_accel(v, 15.0, math.inf, 0.0, IDM) * DT_S
    assert v == pytest.approx(15.0, abs=0.05)
    assert idm_accel(0.0, 15.0, math.inf, 0.0, IDM) == IDM.accel_max_mps2
    assert idm_accel(20.0, 15.0, math.inf, 0.0, IDM) < -IDM.accel_max_mps2  # too fast: slows down
    # An infinite gap is a free road whatever the leader does.
    assert idm_accel(10.0, 15.0, math.inf, 30.0, IDM) == idm_accel(10.0, 15.0, math.inf, 0.0, IDM)


def test_matches_the_textbook_formula():
    v, v0, gap, v_lead = 14.0, 20.0, 25.0, 10.0
    s_star = IDM.min_gap_m + v * IDM.time_headway_s + v * (v - v_lead) / (2 * math.sqrt(1.8 * 3.0))
    expected = 1.8 * (1 - (v / v0) ** 4 - (s_star / gap) ** 2)
    assert idm_accel(v, v0, gap, v_lead, IDM) == pytest.approx(expected, rel=1e-12)
    # A fast leader does not shrink the desired gap below s0 (the dynamic term is clamped at 0).
    assert idm_accel(5.0, 20.0, 10.0, 40.0, IDM) == pytest.approx(1.8 * (1 - (5 / 20) ** 4 - (2.5 / 10) ** 2))


def test_floats_give_floats_and_arrays_give_the_same_numbers_elementwise():
    rng = np.random.default_rng(0)
    v = rng.uniform(0, 30, 50)
    v0 = rng.uniform(5, 30, 50)
    gap = np.where(rng.random(50) < 0.2, np.inf, rng.uniform(0.0, 100, 50))
    v_lead = rng.uniform(0, 30, 50)
    together = idm_accel(v, v0, gap, v_lead, IDM)
    one_by_one = [
        idm_accel(float(a), float(b), float(c), float(d), IDM)
        for a, b, c, d in zip(v, v0, gap, v_lead, strict=True)
    ]
    assert together.shape == (50,)
    assert together == pytest.approx(np.array(one_by_one), rel=1e-12)
    assert all(type(a) is float for a in one_by_one)


def test_arrays_broadcast():
    # (3, 1) followers against (1, 4) leaders, a scalar desired speed: a (3, 4) table.
    v = np.array([[5.0], [10.0], [20.0]])
    gap = np.array([[5.0, 10.0, 40.0, np.inf]])
    table = idm_accel(v, 20.0, gap, 10.0, IDM)
    assert table.shape == (3, 4)
    assert table[1, 2] == pytest.approx(idm_accel(10.0, 20.0, 40.0, 10.0, IDM), rel=1e-12)
    assert np.all(np.diff(table, axis=1) > 0.0)  # more room: more acceleration
    assert np.all(np.diff(table[:, :3], axis=0) < 0.0)  # faster behind the same leader: less


def test_degenerate_inputs_stay_finite():
    # Touching or overlapping leader: clamped gap, a very hard (finite) braking; v0 = 0 and a
    # negative speed count as the clamps say.
    assert -1e6 < idm_accel(10.0, 20.0, 0.0, 10.0, IDM) < -100.0
    assert idm_accel(10.0, 20.0, -3.0, 10.0, IDM) == idm_accel(10.0, 20.0, 0.1, 10.0, IDM)
    assert math.isfinite(idm_accel(0.0, 0.0, math.inf, 0.0, IDM))
    assert idm_accel(-1.0, 20.0, math.inf, 0.0, IDM) == IDM.accel_max_mps2
    a = idm_accel(np.array([10.0, 0.0]), np.array([20.0, 0.0]), np.array([0.0, np.inf]), 10.0, IDM)
    assert np.all(np.isfinite(a))


def test_mobil_is_unsafe_when_the_new_follower_would_brake_too_hard():
    v_ego = 12.0
    # A fast follower 6 m behind the ego in the target lane vs. one 60 m behind at the ego's speed.
    near_fast = idm_accel(20.0, 20.0, 6.0, v_ego, IDM)
    far_same = idm_accel(v_ego, v_ego, 60.0, v_ego, IDM)
    assert near_fast < -MOBIL.max_braking_imposed_mps2 < far_same
    assert not mobil_safe(near_fast, MOBIL) and mobil_safe(far_same, MOBIL)
    follower_now = np.array([0.5, 0.5])
    follower_after = np.array([near_fast, far_same])
    incentive, safe = mobil(0.0, 1.0, follower_now, follower_after, 0.0, 0.0, MOBIL)
    assert safe.tolist() == [False, True]
    # Politeness 0: the incentive is the ego's own gain minus the threshold.
    assert incentive == pytest.approx(np.array([0.8, 0.8]))
    # With politeness, making the new follower brake lowers the incentive.
    polite = MOBILParams(politeness=0.5, min_accel_gain_mps2=0.2, max_braking_imposed_mps2=2.0)
    incentive, _ = mobil(0.0, 1.0, follower_now, follower_after, 0.0, 0.0, polite)
    assert incentive[0] < 0.0 < incentive[1]


def test_mobil_on_floats_counts_the_vehicle_itself_and_the_old_follower():
    # Safe only if the vehicle itself need not brake harder than allowed behind its new leader.
    _, safe = mobil(0.0, -2.5, 0.0, 0.0, 0.0, 0.0, MOBIL)
    assert safe is False
    # The old follower's gain counts with politeness: it can tip a marginal change.
    polite = MOBILParams(politeness=0.5, min_accel_gain_mps2=0.2, max_braking_imposed_mps2=2.0)
    incentive, safe = mobil(0.0, 0.1, 0.0, 0.0, -1.0, 0.0, polite)  # own gain 0.1, old follower +1.0
    assert safe is True and incentive == pytest.approx(0.1 + 0.5 * 1.0 - 0.2)
    incentive, _ = mobil(0.0, 0.1, 0.0, 0.0, -1.0, 0.0, MOBIL)  # politeness 0: below the threshold
    assert incentive == pytest.approx(-0.1)

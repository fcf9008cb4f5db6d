"""IDM and MOBIL (decision/idm.py): the physics they promise, stepped for a fixed simulated time."""

import numpy as np
import pytest

from decision.idm import IDMParams, MOBILParams, idm_accel, mobil_gain

IDM = IDMParams(accel_max_mps2=1.8, decel_comfort_mps2=3.0, time_headway_s=1.5, min_gap_m=2.5)
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
        v += idm_accel(v, 15.0, np.inf, 0.0, IDM) * DT_S
    assert v == pytest.approx(15.0, abs=0.05)
    assert idm_accel(0.0, 15.0, np.inf, 0.0, IDM) == pytest.approx(IDM.accel_max_mps2)
    assert idm_accel(20.0, 15.0, np.inf, 0.0, IDM) < -IDM.accel_max_mps2  # too fast: slows down


def test_vectorised_call_equals_per_element_calls():
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
    assert isinstance(one_by_one[0], float)


def test_mobil_is_unsafe_when_the_new_follower_would_brake_too_hard():
    v_ego = 12.0
    # A fast follower 6 m behind the ego in the target lane vs. one 60 m behind at the ego's speed.
    near_fast = idm_accel(20.0, 20.0, 6.0, v_ego, IDM)
    far_same = idm_accel(v_ego, v_ego, 60.0, v_ego, IDM)
    assert near_fast < -MOBIL.max_braking_imposed_mps2 < far_same
    follower_now = np.array([0.5, 0.5])
    follower_after = np.array([near_fast, far_same])
    incentive, safe = mobil_gain(0.0, 1.0, follower_now, follower_after, 0.0, 0.0, MOBIL)
    assert safe.tolist() == [False, True]
    # Politeness 0: the incentive is the ego's own gain minus the threshold.
    assert incentive == pytest.approx(np.array([0.8, 0.8]))
    # With politeness, making the new follower brake lowers the incentive.
    polite = MOBILParams(politeness=0.5, min_accel_gain_mps2=0.2, max_braking_imposed_mps2=2.0)
    incentive, _ = mobil_gain(0.0, 1.0, follower_now, follower_after, 0.0, 0.0, polite)
    assert incentive[0] < 0.0 < incentive[1]

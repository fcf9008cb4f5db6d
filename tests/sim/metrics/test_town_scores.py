"""Every scorer sees the town events; the Bench2Drive metrics of a run."""

import json
import math

import numpy as np
import pytest

from decision.route import JunctionCrossing, Road, Route, Segment
from perception.files import json_safe
from sim.metrics import bench2drive as b2d
from sim.metrics.events import Event, EventKind
from sim.metrics.scores import (
    carla_driving_score_v2_0,
    carla_driving_score_v2_1,
    driving_direction_compliance,
    nuplan_score,
    outcome,
    summarize,
)

RED = Event(3.0, EventKind.RED_LIGHT, detail="junction 1, signal 2", speed_mps=8.0)
STOP = Event(4.0, EventKind.STOP_SIGN, detail="junction 2", speed_mps=6.0)
SLOW = Event(5.0, EventKind.MIN_SPEED, speed_mps=3.0, value=60.0)
EMERGENCY = Event(6.0, EventKind.YIELD_EMERGENCY_VEHICLE, actor_id=0, speed_mps=12.0)
CHECKPOINT = Event(5.0, EventKind.SPEED_CHECKPOINT, speed_mps=3.0, value=60.0)
INFORMATIONAL = [Event(1.0, EventKind.WRONG_WAY), CHECKPOINT, Event(2.0, EventKind.LANE_INVASION)]


def two_way_route(junctions=()) -> Route:
    road = Road([Segment("straight", 300.0)], 2, 3.5, 15.0, oncoming_lanes=1)
    return Route(road, 0.0, 200.0, 0, 12.0, junctions=tuple(junctions))


def test_carla_v2_0_red_light_stop_sign_and_min_speed():
    r = carla_driving_score_v2_0(1.0, [RED, STOP, SLOW], 0.0)
    assert r["infraction_penalty"] == pytest.approx(0.7 * 0.8 * (1 - 0.3 * 0.4))
    assert carla_driving_score_v2_0(1.0, [EMERGENCY], 0.0)["infraction_penalty"] == pytest.approx(0.7)
    assert r["counts"][EventKind.RED_LIGHT] == 1 and r["counts"][EventKind.STOP_SIGN] == 1
    assert r["counts"][EventKind.MIN_SPEED] == 1
    assert carla_driving_score_v2_0(1.0, INFORMATIONAL, 0.0)["driving_score"] == 100.0


def test_carla_v2_1_red_light_stop_sign_and_min_speed():
    r = carla_driving_score_v2_1(1.0, [RED, STOP, SLOW], 0.0)
    assert r["infraction_penalty"] == pytest.approx(1 / (1 + 0.4 + 0.25 + 0.4 * 0.4))
    assert carla_driving_score_v2_1(1.0, [EMERGENCY], 0.0)["infraction_penalty"] == pytest.approx(1 / 1.4)
    assert carla_driving_score_v2_1(1.0, INFORMATIONAL, 0.0)["driving_score"] == 100.0


def test_min_speed_percentages_outside_0_100_are_clamped():
    fast = Event(1.0, EventKind.MIN_SPEED, value=130.0)
    stopped = Event(1.0, EventKind.MIN_SPEED, value=-5.0)
    assert carla_driving_score_v2_0(1.0, [fast], 0.0)["infraction_penalty"] == 1.0
    assert carla_driving_score_v2_0(1.0, [stopped], 0.0)["infraction_penalty"] == pytest.approx(0.7)
    assert carla_driving_score_v2_1(1.0, [stopped], 0.0)["infraction_penalty"] == pytest.approx(1 / 1.4)


@pytest.mark.parametrize("event", [RED, STOP, EMERGENCY])
def test_nuplan_traffic_rule_compliance(event):
    clean = nuplan_score(1.0, INFORMATIONAL, True, 1.0, True)
    assert clean["score"] == pytest.approx(100.0) and clean["multipliers"]["traffic_rule_compliance"] == 1.0
    r = nuplan_score(1.0, [event], True, 1.0, True)
    assert r["multipliers"]["traffic_rule_compliance"] == 0.0 and r["score"] == 0.0


def test_nuplan_driving_direction_multiplier():
    assert nuplan_score(1.0, [], True, 1.0, True, 0.5)["score"] == pytest.approx(50.0)


def direction_ticks(d_of_s, speed_mps=10.0, dt=0.05, length_m=100.0):
    s = np.arange(0.0, length_m, speed_mps * dt)
    return {"t_s": np.arange(len(s)) * dt, "s_m": s, "d_m": d_of_s(s), "x_m": s, "y_m": d_of_s(s)}


@pytest.mark.parametrize(
    ("against_m", "expected"),
    [(0.0, 1.0), (1.5, 1.0), (4.0, 0.5), (30.0, 0.0)],
)
def test_driving_direction_compliance_thresholds(against_m, expected):
    ticks = direction_ticks(lambda s: np.where((s > 40) & (s <= 40 + against_m), 1.75, -1.75))
    assert driving_direction_compliance(ticks, two_way_route()) == expected


def test_driving_direction_ignores_junction_boxes_and_one_way_roads():
    box = JunctionCrossing(1, 36.0, 38.0, 80.0, "straight", "priority", -1, (59.0, 0.0), 21.0, 0.0)
    ticks = direction_ticks(lambda s: np.where((s > 40) & (s <= 70), 1.75, -1.75))
    assert driving_direction_compliance(ticks, two_way_route([box])) == 1.0
    one_way = Route(Road([Segment("straight", 300.0)], 2, 3.5, 15.0), 0.0, 200.0, 0, 12.0)
    assert driving_direction_compliance(ticks, one_way) == 1.0


def test_outcome_route_deviation():
    assert outcome([RED, Event(9.0, EventKind.ROUTE_DEVIATION)]) == "route_deviation"


# ---------------------------------------------------------------------------- summarize
def run_ticks(route_len_m=200.0, speed=10.0, dt=0.05, d=-1.75):
    s = np.arange(0.0, route_len_m + 0.01, speed * dt)
    n = len(s)
    d = np.broadcast_to(d, s.shape).astype(float) if callable(d) is False else d(s)
    return {
        "t_s": np.arange(n) * dt,
        "x_m": s,
        "y_m": d,
        "yaw_rad": np.zeros(n),
        "speed_mps": np.full(n, speed),
        "accel_mps2": np.zeros(n),
        "yaw_rate_radps": np.zeros(n),
        "s_m": s,
        "d_m": d,
        "ttc_s": np.full(n, np.inf),
        "speed_limit_mps": np.full(n, 15.0),
    }


def test_summarize_counts_the_oncoming_lane_as_outside_route_lanes():
    route = two_way_route()
    ticks = run_ticks(d=lambda s: np.where((s > 50) & (s <= 70), 1.75, -1.75))  # a 20 m overtaking pass
    events = [Event(5.0, EventKind.WRONG_WAY), Event(20.0, EventKind.ROUTE_COMPLETED)]
    driven = float(np.hypot(np.diff(ticks["x_m"]), np.diff(ticks["y_m"])).sum())
    r = summarize(ticks, events, route, 0.0, driven)
    assert r["wrong_lane_distance_m"] == pytest.approx(20.0 + np.hypot(0.5, 3.5) - 0.5)
    assert r["outside_lanes_pct"] == pytest.approx(100 * r["wrong_lane_distance_m"] / driven)
    assert r["driving_score"] == pytest.approx(100 - r["outside_lanes_pct"])
    assert r["nuplan"]["multipliers"]["driving_direction_compliance"] == 0.0  # 10 m against traffic in 1 s
    assert r["bench2drive"]["success"] is False  # completed, but outside the route lanes
    assert r["infractions"][EventKind.WRONG_WAY] == 1
    json.dumps(r)


def test_summarize_scorers_all_see_a_red_light():
    route = two_way_route()
    ticks = run_ticks()
    events = [RED, CHECKPOINT, SLOW, Event(20.0, EventKind.ROUTE_COMPLETED)]
    r = summarize(ticks, events, route, 0.0, 200.0)
    assert r["driving_score"] == pytest.approx(100 * 0.7 * (1 - 0.3 * 0.4))
    assert r["carla_v2_1"]["driving_score"] == pytest.approx(100 / (1 + 0.4 + 0.16))
    assert r["nuplan"]["score"] == 0.0
    assert r["infractions_per_km"][EventKind.RED_LIGHT] == pytest.approx(5.0)
    b = r["bench2drive"]
    assert b["success"] is False and b["efficiency_pct"] == pytest.approx(60.0) and b["smoothness"] == 1.0
    assert r["outcome"] == "completed"


def test_summarize_success_ignores_min_speed():
    r = summarize(
        run_ticks(), [CHECKPOINT, SLOW, Event(20.0, EventKind.ROUTE_COMPLETED)], two_way_route(), 0.0, 200.0
    )
    assert r["bench2drive"]["success"] is True and r["bench2drive"]["traffic_signs_success"] is True


def test_summarize_without_towns_has_no_efficiency(make_route):
    ticks = run_ticks()
    r = json_safe(summarize(ticks, [Event(20.0, EventKind.ROUTE_COMPLETED)], make_route(), 0.0, 200.0))
    assert r["wrong_lane_distance_m"] == 0.0 and r["driving_score"] == 100.0
    assert r["bench2drive"]["efficiency_pct"] is None and r["bench2drive"]["success"] is True
    assert r["nuplan"]["multipliers"]["driving_direction_compliance"] == 1.0


# ---------------------------------------------------------------------------- Bench2Drive
def test_success_fails_on_every_infraction_but_min_speed():
    for kind in b2d.FAILING_KINDS:
        assert not b2d.success(True, [Event(1.0, kind)], 0.0), kind
    assert b2d.success(True, [SLOW, *INFORMATIONAL], 0.0)
    assert not b2d.success(False, [], 0.0) and not b2d.success(True, [], 0.5)


def test_traffic_signs_success_past_the_junction():
    box = JunctionCrossing(1, 96.0, 100.0, 120.0, "left", "signal", 3, (110.0, 0.0), 10.0, 0.0)
    route = two_way_route([box])
    crash = [Event(9.0, EventKind.COLLISION_VEHICLE, 4)]
    assert b2d.traffic_signs_success(False, crash, 110.0, route)  # past entry + 8 m
    assert not b2d.traffic_signs_success(False, crash, 105.0, route)
    assert not b2d.traffic_signs_success(False, [*crash, RED], 150.0, route)
    assert not b2d.traffic_signs_success(False, crash, 150.0, two_way_route())  # no junction: the run's
    assert b2d.traffic_signs_success(True, [], 0.0, route)


def test_efficiency_averages_checkpoints_and_drops_outliers():
    values = [80.0, 120.0, 5000.0]
    events = [Event(1.0, EventKind.SPEED_CHECKPOINT, value=v) for v in values] + [SLOW]
    assert b2d.efficiency_pct(events) == pytest.approx(100.0)
    assert math.isnan(b2d.efficiency_pct([SLOW]))


def test_smoothness_counts_two_second_segments():
    dt = 0.05  # the control rate: taken every 2nd tick to make 10 Hz
    t = np.arange(0.0, 8.0, dt)  # 4 segments of 2 s
    accel = np.where((t >= 2.0) & (t < 4.0), -6.0, 0.0)  # hard braking in the second segment
    r = b2d.smoothness(t, accel, np.full(len(t), 10.0), np.zeros(len(t)))
    assert r == 0.75  # each segment is filtered on its own, as Bench2Drive's chunks are
    shifted = b2d.smoothness(t, np.roll(accel, 10), np.full(len(t), 10.0), np.zeros(len(t)))
    assert shifted == 0.5  # braking from 2.5 s to 4.5 s spoils the second and the third
    smooth = b2d.smoothness(t, np.zeros(len(t)), np.full(len(t), 10.0), np.full(len(t), 0.1))
    assert smooth == 1.0
    swerving = b2d.smoothness(
        t, np.zeros(len(t)), np.full(len(t), 10.0), np.full(len(t), 0.6)
    )  # 6 m/s^2 lateral
    assert swerving == 0.0


def test_smoothness_short_runs_are_one_segment_and_no_ticks_is_nan():
    t = np.arange(0.0, 1.0, 0.1)
    assert b2d.smoothness(t, np.zeros(10), np.zeros(10), np.zeros(10)) == 1.0
    assert b2d.smoothness(t, np.full(10, -5.0), np.zeros(10), np.zeros(10)) == 0.0
    assert math.isnan(b2d.smoothness([], [], [], []))
    assert b2d.smoothness([0.0, 0.1], [np.nan, 0.0], [1.0, 1.0], [0.0, 0.0]) == 1.0

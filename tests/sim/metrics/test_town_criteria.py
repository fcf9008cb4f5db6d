"""The criteria of town routes on crafted ticks: a straight two-way road (one lane each way, s = x,
d = y, lane 0 at d = -1.75 along s, lane 1 at d = +1.75 against it) with junction crossings."""

import numpy as np
import pytest

from decision.route import JunctionCrossing, Road, Route, Segment
from perception.types import PEDESTRIAN, VEHICLE, EgoState
from sim.metrics.criteria import Criteria
from sim.metrics.events import EventKind
from sim.metrics.town_criteria import (
    STOP_PROXIMITY_M,
    InRouteTest,
    MinimumSpeedRouteTest,
    RunningRedLightTest,
    RunningStopTest,
    WrongLaneTest,
    against_traffic,
    junction_spans,
    wrong_lane_distance_m,
)
from sim.traffic.actors import Actors

DT = 0.05
OWN, ONCOMING = -1.75, 1.75
EGO_LENGTH_M, EGO_WIDTH_M = 4.5, 1.8
STOP_S = 100.0  # the stop line of the junction crossing; the box spans [104, 124]


def crossing(control: str, signal_id: int = -1, stop_s: float = STOP_S) -> JunctionCrossing:
    return JunctionCrossing(
        junction_id=7, stop_s_m=stop_s, entry_s_m=stop_s + 4.0, exit_s_m=stop_s + 24.0, turn="straight",
        control=control, signal_id=signal_id, centre_xy_m=(stop_s + 14.0, 0.0), half_size_m=10.0,
        heading_rad=0.0,
    )  # fmt: skip


def two_way_route(*junctions, goal_s_m: float = 250.0, length_m: float = 300.0) -> Route:
    road = Road([Segment("straight", length_m)], 2, 3.5, 15.0, oncoming_lanes=1)
    return Route(road, 0.0, goal_s_m, 0, 12.0, junctions=tuple(junctions))


def make_actors(xy, speeds, class_ids=None) -> Actors:
    n = len(xy)
    speeds = np.asarray(speeds, float)
    return Actors(
        ids=np.arange(n),
        class_ids=np.full(n, VEHICLE) if class_ids is None else np.asarray(class_ids),
        models=["car"] * n,
        size_m=np.tile([4.5, 1.8, 1.5], (n, 1)),
        xy_m=np.asarray(xy, float).reshape(n, 2),
        yaw_rad=np.zeros(n),
        speed_mps=speeds,
        v_mps=np.stack([speeds, np.zeros(n)], axis=1),
        accel_mps2=np.zeros(n),
        rgba=np.ones((n, 4)),
    )


def drive(crit: Criteria, xs, speeds, d=OWN, t0=0.0, actors=None):
    """Step the criteria along s = xs at lateral d; returns all events."""
    actors = actors or Actors.empty()
    out, t = [], t0
    for x, v in zip(xs, np.broadcast_to(speeds, np.shape(xs)), strict=True):
        ego = EgoState(float(x), d, 0.0, float(v), t_s=t)
        out += crit.update(t, ego, float(x), d, actors, actors.xy_m[:, 0].copy(), actors.xy_m[:, 1].copy())
        t = round(t + DT, 9)
    return out


def kinds(events):
    return [e.kind for e in events]


def criteria(route, **kw) -> Criteria:
    return Criteria(route, EGO_LENGTH_M, EGO_WIDTH_M, blocked_timeout_s=30.0, duration_s=100.0, **kw)


def constant(state):
    return lambda signal_id, t_s: state


# ---------------------------------------------------------------------------- red light
@pytest.mark.parametrize(("state", "expected"), [("red", 1), ("yellow", 0), ("green", 0)])
def test_red_light_only_on_red(state, expected):
    crit = criteria(two_way_route(crossing("signal", 3)), signal_state=constant(state))
    events = drive(crit, np.arange(80.0, 140.0, 0.5), 10.0)
    red = [e for e in events if e.kind == EventKind.RED_LIGHT]
    assert len(red) == expected
    if expected:  # the tail (0.8 half lengths behind the centre) passes the line
        assert red[0].t_s == pytest.approx((STOP_S + 0.8 * EGO_LENGTH_M / 2 - 80.0) / 0.5 * DT, abs=DT)
        assert "signal 3" in red[0].detail


def test_red_light_stopping_with_the_front_over_the_line_is_no_infraction():
    """CARLA tests the tail: a car stopped with its nose 1 m past the line has not run the light."""
    crit = criteria(two_way_route(crossing("signal", 3)), signal_state=constant("red"))
    front_past_m = 1.0
    xs = np.linspace(80.0, STOP_S + front_past_m - EGO_LENGTH_M / 2, 60)
    assert EventKind.RED_LIGHT not in kinds(drive(crit, xs, 5.0))


def test_red_light_once_per_crossing_and_state_read_at_the_line():
    seen = []

    def signal_state(signal_id, t_s):
        seen.append(signal_id)
        return "red"

    crit = criteria(
        two_way_route(crossing("signal", 3), crossing("signal", 5, 180.0)), signal_state=signal_state
    )
    events = drive(crit, np.arange(80.0, 230.0, 0.5), 10.0)
    assert [e.detail for e in events if e.kind == EventKind.RED_LIGHT] == [
        "junction 7, signal 3",
        "junction 7, signal 5",
    ]
    assert set(seen) == {3, 5} and len(seen) == 2  # read only when a tail meets a line


def test_red_light_a_line_stepped_over_between_two_ticks_counts():
    test = RunningRedLightTest(two_way_route(crossing("signal", 3)), EGO_LENGTH_M, constant("red"))

    class T:
        t_s, speed_mps, cos_rel = 0.0, 30.0, 1.0

    T.s_m = 90.0
    assert not test.update(T)
    T.s_m = 110.0  # tail from 86.7..88.2 to 108.2: the line at 100 lies between
    assert kinds(test.update(T)) == [EventKind.RED_LIGHT]


def test_red_light_off_without_signals_or_signal_crossings():
    assert EventKind.RED_LIGHT not in kinds(
        drive(criteria(two_way_route(crossing("signal", 3))), np.arange(80, 140, 0.5), 10.0)
    )
    crit = criteria(two_way_route(crossing("stop")), signal_state=constant("red"))
    assert EventKind.RED_LIGHT not in kinds(drive(crit, np.arange(80, 140, 0.5), 10.0))


# ---------------------------------------------------------------------------- stop sign
def approach(stop_at_s: float | None, end_s: float = 140.0):
    """s and speed of an approach at 8 m/s that stops (one tick at 0) with its centre at stop_at_s."""
    xs = list(np.arange(60.0, end_s, 0.4))
    speeds = [8.0] * len(xs)
    if stop_at_s is not None:
        i = int(np.searchsorted(xs, stop_at_s))
        xs.insert(i, stop_at_s)
        speeds.insert(i, 0.0)
    return xs, speeds


def test_stop_sign_without_a_stop_is_an_infraction_on_entering_the_junction():
    crit = criteria(two_way_route(crossing("stop")))
    events = drive(crit, *approach(None))
    stops = [e for e in events if e.kind == EventKind.STOP_SIGN]
    assert len(stops) == 1
    # emitted when the front reaches the junction box's entry (s + half length >= 104)
    x_at = 60.0 + stops[0].t_s / DT * 0.4
    assert x_at + EGO_LENGTH_M / 2 == pytest.approx(STOP_S + 4.0, abs=0.4)


def test_stop_sign_with_a_stop_near_the_line_is_fine():
    crit = criteria(two_way_route(crossing("stop")))
    assert EventKind.STOP_SIGN not in kinds(drive(crit, *approach(STOP_S - 3.0)))


def test_stop_sign_a_stop_too_far_before_the_line_does_not_count():
    crit = criteria(two_way_route(crossing("stop")))
    assert kinds(drive(crit, *approach(STOP_S - 10.0))).count(EventKind.STOP_SIGN) == 1


def test_stop_sign_each_crossing_needs_its_own_stop():
    crit = criteria(two_way_route(crossing("stop"), crossing("stop", stop_s=180.0)))
    xs, speeds = approach(STOP_S - 2.0, end_s=230.0)
    assert kinds(drive(crit, xs, speeds)).count(EventKind.STOP_SIGN) == 1  # the second one


def test_the_planners_full_stop_is_one_the_stop_sign_test_counts(conf_values):
    """The planner (conf/decision/default.yaml) takes a standstill with the front within stop_zone_m
    of the line as the full stop; the criterion wants the centre within STOP_PROXIMITY_M of it."""
    zone = conf_values("decision/default.yaml")["junction"]["stop_zone_m"]
    half_length = 0.5 * conf_values("sim/default.yaml")["vehicle"]["length_m"]
    assert zone + half_length <= STOP_PROXIMITY_M
    crit = criteria(two_way_route(crossing("stop")))  # (and a stop that far out passes the test)
    assert EventKind.STOP_SIGN not in kinds(drive(crit, *approach(STOP_S - zone - EGO_LENGTH_M / 2)))


def test_stop_sign_ignores_other_controls():
    test = RunningStopTest(two_way_route(crossing("yield"), crossing("priority", stop_s=180)), EGO_LENGTH_M)
    assert test._crossings == []


# ---------------------------------------------------------------------------- wrong lane
def test_against_traffic_is_the_oncoming_lane_outside_junction_boxes():
    route = two_way_route(crossing("priority"))
    spans = junction_spans(route)
    s = np.array([50.0, 50.0, 110.0, 50.0, 50.0])
    d = np.array([OWN, ONCOMING, ONCOMING, 3.6, -3.6])  # own, oncoming, in the box, off the road x2
    assert against_traffic(route.road, spans, s, d).tolist() == [False, True, False, False, False]
    one_way = Route(Road([Segment("straight", 100.0)], 2, 3.5, 15.0), 0.0, 90.0, 0, 10.0)
    assert not against_traffic(one_way.road, junction_spans(one_way), 50.0, ONCOMING)


def test_wrong_way_event_on_entering_and_the_distance_driven_there():
    crit = criteria(two_way_route())
    events = drive(crit, np.arange(0.0, 20.0, 0.5), 10.0, d=OWN)
    events += drive(crit, np.arange(20.0, 50.0, 0.5), 10.0, d=ONCOMING, t0=2.0)  # an overtaking pass
    events += drive(crit, np.arange(50.0, 60.0, 0.5), 10.0, d=OWN, t0=5.0)
    assert kinds(events).count(EventKind.WRONG_WAY) == 1
    # the step into the lane (hypot(0.5, 3.5)) and 59 steps of 0.5 m along it
    assert crit.wrong_lane_distance_m == pytest.approx(np.hypot(0.5, 3.5) + 59 * 0.5)


def test_wrong_lane_distance_from_ticks_matches_the_criterion():
    route = two_way_route(crossing("priority"))
    crit = criteria(route)
    xs = np.arange(0.0, 140.0, 0.5)
    ds = np.where(
        (xs > 30) & (xs < 60) | (xs > 100) & (xs < 130), ONCOMING, OWN
    )  # the second pass crosses the box
    for k, (x, d) in enumerate(zip(xs, ds, strict=True)):
        drive(crit, [x], 10.0, d=float(d), t0=k * DT)
    ticks = {"x_m": xs, "y_m": ds, "s_m": xs, "d_m": ds}
    assert wrong_lane_distance_m(ticks, route) == pytest.approx(crit.wrong_lane_distance_m)
    assert 0 < crit.wrong_lane_distance_m < 60.0


def test_wrong_lane_off_the_road_counts_once():
    test = WrongLaneTest(two_way_route())

    class T:
        s_m, d_m, step_m, t_s, speed_mps = 10.0, ONCOMING, 1.0, 0.0, 5.0

    test.update(T, off_road=True)
    assert test.distance_m == 0.0 and test.against


# ---------------------------------------------------------------------------- route deviation
def test_route_deviation_beyond_30_m_ends_the_run():
    crit = criteria(two_way_route())
    drive(crit, np.arange(0.0, 50.0, 0.5), 10.0)
    assert not crit.done
    out = []
    for k, d in enumerate(np.arange(0.0, 40.0, 1.0)):  # drifting away sideways
        out += drive(crit, [50.0], 10.0, d=float(d), t0=5.0 + k * DT)
    assert kinds(out)[-1] == EventKind.ROUTE_DEVIATION and crit.done
    assert kinds(out).count(EventKind.ROUTE_DEVIATION) == 1


def test_route_deviation_by_progress_far_from_the_route():
    route = two_way_route(goal_s_m=100.0)
    test = InRouteTest(route)

    class T:
        t_s, speed_mps = 0.0, 5.0

    fired = None
    for s in np.arange(0.0, 60.0, 1.0):  # 20 m to the side: beyond 15 m, within 30 m
        T.s_m, T.d_m = float(s), 20.0
        if test.update(T):
            fired = s
            break
    assert fired == pytest.approx(31.0)  # 31 m of progress > 30 % of 100 m


@pytest.mark.parametrize(("d_m", "deviates"), [(-5.25, False), (-1.75, True)])
def test_a_turn_entered_from_another_lane_than_the_routes_misses_the_route(d_m, deviates):
    """Two lanes each way, a right turn: entered from lane 1 (d = -1.75) it misses the route, even
    when s runs faster than the ego (inside a turn, off the reference line)."""
    road = Road([Segment("straight", 300.0)], 4, 3.5, 15.0, oncoming_lanes=2)
    turn = JunctionCrossing(
        junction_id=7, stop_s_m=100.0, entry_s_m=104.0, exit_s_m=124.0, turn="right", control="priority",
        signal_id=-1, centre_xy_m=(114.0, 0.0), half_size_m=10.0, heading_rad=0.0,
    )  # fmt: skip
    test = InRouteTest(Route(road, 0.0, 250.0, 0, 12.0, junctions=(turn,)))

    class T:
        t_s, speed_mps, step_m = 0.0, 5.0, 0.2  # the ego moves 0.2 m a tick, s 0.5 m

    fired = []
    for s in np.arange(90.3, 110.0, 0.5):
        T.s_m, T.d_m = float(s), d_m
        fired += test.update(T)
    assert bool(fired) == deviates
    assert not fired or "turned from lane 1" in fired[0].detail


def test_in_route_measures_past_the_corridor_ends():
    test = InRouteTest(two_way_route())
    assert test.distance_m(-30.0, OWN) == pytest.approx(30.0)
    assert test.distance_m(310.0, OWN) == pytest.approx(10.0)


# ---------------------------------------------------------------------------- minimum speed
def test_min_speed_checkpoints_on_a_slow_run():
    """Traffic at 10 m/s around an ego at 5 m/s: every checkpoint at 50 %, a min_speed event each."""
    route = two_way_route(goal_s_m=200.0)
    crit = criteria(route)
    xs = np.arange(0.0, 200.5, 0.25)  # 0.25 m per 0.05 s tick = 5 m/s
    events = []
    for k, x in enumerate(xs):
        traffic = make_actors([[x + 20.0, OWN], [x - 30.0, ONCOMING]], [10.0, -10.0])
        events += drive(crit, [x], 5.0, actors=traffic, t0=k * DT)
    assert crit.done
    slow = [e for e in events if e.kind == EventKind.MIN_SPEED]
    assert crit.min_speed_pcts == [50.0] * 4
    assert [e.value for e in slow] == [50.0] * 4
    assert kinds(events).count(EventKind.SPEED_CHECKPOINT) == 4
    assert kinds(events)[-1] == EventKind.ROUTE_COMPLETED


def test_min_speed_faster_than_traffic_is_no_infraction_and_far_traffic_is_not_surrounding():
    route = two_way_route(goal_s_m=100.0)
    test = MinimumSpeedRouteTest(route, checkpoints=2)

    class T:
        t_s = 0.0

    far_and_people = make_actors([[0.0, 500.0], [0.0, 1.0]], [1.0, 1.0], class_ids=[VEHICLE, PEDESTRIAN])
    near = make_actors([[0.0, 5.0]], [8.0])
    out = []
    for s in np.arange(0.0, 101.0, 1.0):
        T.s_m, T.speed_mps, T.actors = float(s), 10.0, (near if s < 50 else far_and_people)
        T.ego = EgoState(float(s), 0.0, 0.0, 10.0)
        near.xy_m[0, 0] = s
        far_and_people.xy_m[:, 0] = s
        out += test.update(T)
    out += test.finish(T)
    assert test.pcts == [125.0, 100.0]  # the second stretch had no surrounding traffic
    assert EventKind.MIN_SPEED not in kinds(out)


def test_min_speed_is_off_on_one_way_roads_without_junctions(make_route):
    crit = Criteria(make_route(), EGO_LENGTH_M, EGO_WIDTH_M, 30.0, 100.0)
    assert crit.min_speed is None and crit.min_speed_pcts == []
    assert criteria(two_way_route()).min_speed is not None
    assert criteria(two_way_route(), min_speed=False).min_speed is None


# ---------------------------------------------------------------------------- YieldToEmergencyVehicleTest
def emergency_run(ev_x, ego_x, ev_d=OWN, crit_kw=None, end=False):
    """Step a Criteria along the ticks of (ev_x, ego_x) [m]: actor 0 an ambulance at (ev_x, ev_d)
    heading +x, the ego at (ego_x, OWN). Returns its YieldToEmergencyVehicleTest's events, and those
    of `finish` at the last tick when `end`."""
    actors = make_actors([(ev_x[0], ev_d)], [15.0])
    actors.models[0] = "ambulance"
    crit = criteria(
        two_way_route(goal_s_m=5_000.0, length_m=6_000.0), emergency=actors.emergency, **(crit_kw or {})
    )
    out, t = [], 0.0
    for xe, xg in zip(ev_x, ego_x, strict=True):
        actors.xy_m[0, 0] = xe
        ego = EgoState(float(xg), OWN, 0.0, 10.0, t_s=t)
        out += crit.update(t, ego, float(xg), OWN, actors, actors.xy_m[:, 0].copy(), actors.xy_m[:, 1].copy())
        t = round(t + DT, 9)
    if end:
        tick = crit._tick(t, ego, float(ego_x[-1]), OWN, actors, actors.xy_m[:, 0], actors.xy_m[:, 1])
        out += crit.yield_emergency.finish(tick)
    return [e for e in out if e.kind == EventKind.YIELD_EMERGENCY_VEHICLE]


def test_an_emergency_vehicle_held_up_behind_the_ego_for_10_s_is_one_infraction():
    n = int(20.0 / DT)  # 20 s: the ambulance 30 m behind the ego all along
    ego_x = 100.0 + 10.0 * DT * np.arange(n)
    events = emergency_run(ego_x - 30.0, ego_x)
    assert len(events) == 1 and events[0].actor_id == 0
    assert events[0].t_s == pytest.approx(10.0, abs=2 * DT)  # its 10 s ran from the first tick within 50 m


def test_an_emergency_vehicle_let_by_in_time_is_no_infraction_and_the_clock_waits_for_50_m():
    n = int(30.0 / DT)
    t = DT * np.arange(n)
    ego_x = 100.0 + 10.0 * t
    ev_x = ego_x - 120.0 + 8.0 * t  # closes in at 8 m/s: within 50 m after 8.75 s, past after 15 s
    assert emergency_run(ev_x, ego_x) == []
    # One that stays between 50 and 120 m behind never starts the clock.
    assert emergency_run(ego_x - 60.0, ego_x) == []


def test_an_emergency_vehicle_still_behind_when_the_run_ends_counts():
    n = int(5.0 / DT)
    ego_x = 100.0 + 10.0 * DT * np.arange(n)
    events = emergency_run(ego_x - 20.0, ego_x, end=True)
    assert len(events) == 1 and "run ended" in events[0].detail
    # Beside the ego in the next lane, passing, it was let by: nothing at the end.
    assert emergency_run(ego_x + 3.0, ego_x, ev_d=ONCOMING, end=True) == []

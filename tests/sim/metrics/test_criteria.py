import json
import math

import numpy as np
import pytest

from decision.route import Road, Segment
from perception.files import json_safe
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, EgoState
from sim.metrics.criteria import (
    BlockedTest,
    CollisionTest,
    Criteria,
    LaneInvasionTest,
    OffRoadTest,
    RoadHeading,
    RouteCompletionTest,
    Tick,
    TimeoutTest,
    TimeToCollision,
)
from sim.metrics.events import Event, EventKind
from sim.traffic.actors import Actors

DT = 0.05
LANE0_D = -1.75  # centre of the right lane of a 2 x 3.5 m road


@pytest.fixture
def make_criteria(make_route):
    """make_criteria(route=None, blocked_timeout_s=30.0, duration_s=100.0) -> Criteria of a 4.5 x 1.8 m
    ego on `route` (make_route's by default)."""

    def make(route=None, blocked_timeout_s=30.0, duration_s=100.0) -> Criteria:
        return Criteria(route or make_route(), 4.5, 1.8, blocked_timeout_s, duration_s)

    return make


def make_actors(xy, class_ids, speeds=None, sizes=None):
    n = len(xy)
    speeds = np.zeros(n) if speeds is None else np.asarray(speeds, float)
    sizes = np.tile([4.5, 1.8, 1.5], (n, 1)) if sizes is None else np.asarray(sizes, float)
    return Actors(
        ids=np.arange(10, 10 + n),
        class_ids=np.asarray(class_ids, np.int64),
        models=["thing"] * n,
        size_m=sizes,
        xy_m=np.asarray(xy, float).reshape(n, 2),
        yaw_rad=np.zeros(n),
        speed_mps=speeds,
        v_mps=np.stack([speeds, np.zeros(n)], axis=1),
        accel_mps2=np.zeros(n),
        rgba=np.ones((n, 4)),
    )


def tick(crit, t, x, y, speed=10.0, yaw=0.0, actors=None):
    """On the straight road starting at the origin heading east, s = x and d = y."""
    actors = actors or Actors.empty()
    ego = EgoState(x, y, yaw, speed, t_s=t)
    return crit.update(t, ego, x, y, actors, actors.xy_m[:, 0].copy(), actors.xy_m[:, 1].copy())


def kinds(events):
    return [e.kind for e in events]


def test_collision_once_per_contact_and_again_after_a_second_apart(make_criteria):
    crit = make_criteria()
    car = make_actors([[20.0, LANE0_D]], [VEHICLE])
    far = make_actors([[80.0, LANE0_D]], [VEHICLE])
    out = []
    t = 0.0
    for _ in range(10):  # 0.5 s of continuous contact
        out += tick(crit, t, 17.0, LANE0_D, 0.0, actors=car)
        t += DT
    for _ in range(10):  # 0.5 s apart: the same contact
        out += tick(crit, t, 17.0, LANE0_D, 0.0, actors=far)
        t += DT
    out += tick(crit, t, 17.0, LANE0_D, 0.0, actors=car)
    t += DT
    assert kinds(out) == [EventKind.COLLISION_VEHICLE]
    assert out[0].actor_id == 10
    for _ in range(25):  # 1.25 s apart: a new contact
        out += tick(crit, t, 17.0, LANE0_D, 0.0, actors=far)
        t += DT
    out += tick(crit, t, 17.0, LANE0_D, 0.0, actors=car)
    assert kinds(out) == [EventKind.COLLISION_VEHICLE, EventKind.COLLISION_VEHICLE]


@pytest.mark.parametrize(
    "class_id, speed, kind",
    [
        (VEHICLE, 0.0, EventKind.COLLISION_VEHICLE),
        (VEHICLE, 5.0, EventKind.COLLISION_VEHICLE),
        (PEDESTRIAN, 1.0, EventKind.COLLISION_PEDESTRIAN),
        (OBSTACLE, 0.0, EventKind.COLLISION_STATIC),
    ],
)
def test_collision_kind_follows_the_class(class_id, speed, kind, make_criteria):
    crit = make_criteria()
    actor = make_actors([[10.0, LANE0_D + 0.5]], [class_id], speeds=[speed], sizes=[[0.6, 0.6, 1.7]])
    events = tick(crit, 0.0, 8.0, LANE0_D, 3.0, actors=actor)
    assert kinds(events) == [kind]
    assert events[0].speed_mps == 3.0


def test_no_collision_beside_or_far(make_criteria):
    crit = make_criteria()
    actors = make_actors([[10.0, -LANE0_D], [30.0, LANE0_D]], [VEHICLE, VEHICLE])  # next lane; 30 m ahead
    assert tick(crit, 0.0, 10.0, LANE0_D, actors=actors) == []


def test_off_road_event_on_entering_and_distance_while_off(make_criteria):
    tolerant = make_criteria()
    assert tick(tolerant, 0.0, 0.0, -2.8, 10.0) == []  # far corner 0.2 m beyond the edge: tolerated
    assert not tolerant.off_road
    crit = make_criteria()
    out = tick(crit, 0.0, 0.0, -2.8, 10.0)
    out += tick(crit, DT, 0.0, -3.0, 0.0)  # 0.4 m beyond, then driven for 5 m
    x, t = 0.0, DT
    for _ in range(10):
        x, t = x + 0.5, t + DT
        out += tick(crit, t, x, -3.0, 10.0)
    assert kinds(out) == [EventKind.OFF_ROAD] and "right" in out[0].detail
    x, t = x + 0.5, t + DT
    out += tick(crit, t, x, LANE0_D, 10.0)  # back on the road
    assert crit.off_road_distance_m == pytest.approx(0.2 + 5.0)
    assert crit.driven_distance_m == pytest.approx(0.2 + 5.0 + math.hypot(0.5, 1.25))
    out += tick(crit, t + DT, x + 0.5, 3.0, 10.0)  # off again, left side (passes a lane change too)
    assert kinds(out).count(EventKind.OFF_ROAD) == 2


def test_off_road_uses_the_heading_of_the_car(make_criteria):
    straight, turned = make_criteria(), make_criteria()
    assert tick(straight, 0.0, 0.0, -2.3, yaw=0.0) == []
    # turned 30 deg: a front corner reaches 2.3 + 2.25 sin 30 + 0.9 cos 30 = 4.2 m, 0.7 m beyond
    assert kinds(tick(turned, 0.0, 0.0, -2.3, yaw=-math.radians(30))) == [EventKind.OFF_ROAD]


def test_lane_invasion(make_criteria):
    crit = make_criteria()
    out = tick(crit, 0.0, 0.0, LANE0_D) + tick(crit, DT, 0.5, -0.3) + tick(crit, 2 * DT, 1.0, 0.3)
    assert kinds(out) == [EventKind.LANE_INVASION]
    assert out[0].detail == "lane 0 -> 1"


def test_blocked_after_the_timeout_only(make_criteria):
    crit = make_criteria(blocked_timeout_s=2.0)
    out = []
    for i in range(40):  # t = 0 .. 1.95 s standing still
        out += tick(crit, i * DT, 5.0, LANE0_D, 0.05)
    assert out == [] and not crit.done
    out += tick(crit, 40 * DT, 5.0, LANE0_D, 0.0)
    assert kinds(out) == [EventKind.BLOCKED] and crit.done
    assert tick(crit, 41 * DT, 5.0, LANE0_D, 0.0) == []  # nothing after the end


def test_moving_resets_the_blocked_clock(make_criteria):
    crit = make_criteria(blocked_timeout_s=1.0)
    out = []
    for i in range(60):
        out += tick(crit, i * DT, 5.0, LANE0_D, 0.0 if i % 15 else 1.0)  # moves every 0.75 s
    assert out == []


def test_timeout_when_not_completed(make_criteria):
    crit = make_criteria(duration_s=1.0)
    out = []
    for i in range(21):
        out += tick(crit, i * DT, i * 0.5, LANE0_D, 10.0)
    assert kinds(out) == [EventKind.TIMEOUT] and out[0].t_s == pytest.approx(1.0) and crit.done


def test_route_completion_ends_the_run(make_criteria, make_route):
    crit = make_criteria(route=make_route(goal_s_m=5.0), duration_s=1.0)
    out = []
    for i in range(12):
        out += tick(crit, i * DT, i * 0.5, LANE0_D, 10.0)
    assert kinds(out) == [EventKind.ROUTE_COMPLETED] and crit.done
    assert out[0].t_s == pytest.approx(0.5)
    assert crit.max_s_m == pytest.approx(5.0)


def test_ttc_of_a_closing_leader_is_gap_over_closing_speed(make_criteria):
    crit = make_criteria()
    # leader 30 m ahead at 10 m/s, a car in the other lane, one behind, and a faster one far ahead
    actors = make_actors(
        [[30.0, LANE0_D + 0.4], [12.0, -LANE0_D], [-10.0, LANE0_D], [90.0, LANE0_D]],
        [VEHICLE] * 4,
        speeds=[10.0, 0.0, 0.0, 30.0],
    )
    tick(crit, 0.0, 0.0, LANE0_D, 20.0, actors=actors)
    assert crit.ttc_s == pytest.approx((30.0 - 4.5) / (20.0 - 10.0))
    # nothing closing: inf this tick, the run minimum is kept
    actors.v_mps[0] = (25.0, 0.0)
    tick(crit, DT, 0.0, LANE0_D, 20.0, actors=actors)
    assert crit.ttc_s == math.inf
    assert crit.min_ttc_s == pytest.approx(2.55)


def test_ttc_is_sampled_every_ttc_period(make_route):
    """With ttc_period_s = 0.1 and ticks of 0.05 s, TTC is worked out on every other tick."""
    crit = Criteria(make_route(), 4.5, 1.8, 30.0, 60.0, ttc_period_s=0.1)
    seen = []
    for k in range(6):
        t = DT * k  # 0.05 s ticks
        actors = make_actors([[30.0 + 10.0 * t, LANE0_D]], [VEHICLE], speeds=[10.0])  # 10 m/s slower
        tick(crit, t, 20.0 * t, LANE0_D, 20.0, actors=actors)
        seen.append(crit.ttc_s)
    assert seen[0] == seen[1] and seen[2] == seen[3] and seen[4] == seen[5]  # held between samples
    assert seen[0] > seen[2] > seen[4]  # each sample closer
    assert crit.min_ttc_s == seen[4]


def test_ttc_projects_the_ego_speed_on_the_road(make_criteria):
    crit = make_criteria()
    actors = make_actors([[20.0, LANE0_D]], [OBSTACLE], sizes=[[0.5, 0.5, 1.0]])
    yaw = math.radians(20)
    tick(crit, 0.0, 0.0, LANE0_D, 10.0, yaw=yaw, actors=actors)
    assert crit.ttc_s == pytest.approx((20.0 - 2.5) / (10.0 * math.cos(yaw)))


def test_event_to_dict_is_plain():
    d = Event(1.5, EventKind.COLLISION_VEHICLE, np.int64(3), "car", np.float64(2.0)).to_dict()
    assert d == {
        "t_s": 1.5,
        "kind": EventKind.COLLISION_VEHICLE,
        "actor_id": 3,
        "detail": "car",
        "speed_mps": 2.0,
    }
    assert type(d["actor_id"]) is int and type(d["speed_mps"]) is float


def test_new_actor_arrays_are_seen(make_criteria):
    crit = make_criteria()
    actors = make_actors([[40.0, LANE0_D]], [VEHICLE])
    assert tick(crit, 0.0, 10.0, LANE0_D, actors=actors) == []
    actors.xy_m = np.asfortranarray([[12.0, LANE0_D]])  # a new array, and not C-contiguous
    assert kinds(tick(crit, DT, 10.0, LANE0_D, actors=actors)) == [EventKind.COLLISION_VEHICLE]
    actors.size_m = np.array([[0.5, 0.5, 1.0]])  # a new size: a cone 0.5 m past the ego's bumper
    actors.xy_m = np.array([[13.0, LANE0_D]])
    tick(crit, 2 * DT, 10.0, LANE0_D, actors=actors)
    assert crit.ttc_s == pytest.approx((3.0 - 0.25 - 2.25) / 10.0)


# ---------------------------------------------------------------------------- each criterion alone
def crafted(t=0.0, s=10.0, d=LANE0_D, speed=10.0, yaw=0.0, step=0.5, actors=None):
    """A Tick on the straight road of make_route (road heading 0: yaw is relative to the road)."""
    actors = actors or Actors.empty()
    ego = EgoState(s, d, yaw, speed, t_s=t)
    return Tick(
        t,
        ego,
        speed,
        s,
        d,
        step,
        math.cos(yaw),
        math.sin(yaw),
        actors,
        actors.xy_m[:, 0].copy(),
        actors.xy_m[:, 1].copy(),
    )


def test_collision_test_alone():
    test = CollisionTest(4.5, 1.8, contact_reset_s=1.0)
    ped = make_actors([[11.0, LANE0_D]], [PEDESTRIAN], sizes=[[0.6, 0.6, 1.7]])
    (event,) = test.update(crafted(t=2.0, speed=4.0, actors=ped))
    assert event == Event(2.0, EventKind.COLLISION_PEDESTRIAN, 10, "thing", 4.0)
    assert not test.update(crafted(t=2.5, actors=ped))  # the same contact
    assert not test.update(crafted(t=2.0, actors=make_actors([[16.0, LANE0_D]], [VEHICLE])))  # 1.5 m gap
    test.reset()
    assert len(test.update(crafted(t=2.6, actors=ped))) == 1  # forgotten by reset


def test_off_road_test_alone(make_route):
    test = OffRoadTest(make_route().road, 4.5, 1.8, tolerance_m=0.3)
    assert test.update(crafted(d=-2.6)) == () and not test.off_road  # corner 0.0 m beyond the edge
    (event,) = test.update(crafted(t=1.0, d=-3.0, step=0.5))
    assert event.kind == EventKind.OFF_ROAD and event.detail == "right edge, 0.40 m beyond"
    assert test.update(crafted(t=1.1, d=-3.0, step=0.7)) == () and test.distance_m == pytest.approx(1.2)
    assert (
        test.update(crafted(d=0.0, step=0.5)) == ()
        and not test.off_road
        and test.distance_m == pytest.approx(1.2)
    )


def test_lane_invasion_test_alone(make_route):
    test = LaneInvasionTest(make_route().road)
    assert test.update(crafted(d=LANE0_D)) == ()  # the first tick sets the lane
    assert test.update(crafted(d=-0.1)) == ()
    (event,) = test.update(crafted(t=3.0, d=0.1))
    assert (event.kind, event.detail, event.t_s) == (EventKind.LANE_INVASION, "lane 0 -> 1", 3.0)
    assert test.update(crafted(d=9.0)) == ()  # beyond the road: still the outer lane


def test_route_completion_test_alone(make_route):
    test = RouteCompletionTest(make_route(goal_s_m=50.0))
    assert test.update(crafted(s=30.0)) == () and test.update(crafted(s=20.0)) == ()
    assert test.max_s_m == 30.0 and test.completion() == pytest.approx(0.6)
    (event,) = test.update(crafted(t=7.0, s=50.0))
    assert event.kind == EventKind.ROUTE_COMPLETED and event.t_s == 7.0


def test_blocked_test_alone():
    test = BlockedTest(timeout_s=1.0, still_speed_mps=0.1)
    assert test.update(crafted(t=0.0, speed=0.05)) == () and test.still_since_s == 0.0
    assert test.update(crafted(t=0.9, speed=0.0)) == ()
    (event,) = test.update(crafted(t=1.0, speed=0.0))
    assert event.kind == EventKind.BLOCKED and event.detail == "still for 1.0 s"
    assert test.update(crafted(t=1.1, speed=0.2)) == () and test.still_since_s is None  # moving again


def test_timeout_test_alone(make_route):
    progress = RouteCompletionTest(make_route(goal_s_m=200.0))
    progress.update(crafted(s=50.0))
    test = TimeoutTest(duration_s=5.0, progress=progress)
    assert test.update(crafted(t=4.95)) == ()
    (event,) = test.update(crafted(t=5.0))
    assert event.kind == EventKind.TIMEOUT and event.detail == "0.250 of the route"


def test_time_to_collision_alone(make_route):
    road = make_route().road
    ttc = TimeToCollision(RoadHeading(road), 4.5, 1.8, period_s=0.1)
    lead = make_actors([[40.0, LANE0_D]], [VEHICLE], speeds=[5.0])
    ttc.update(crafted(t=0.0, s=10.0, speed=15.0, actors=lead))
    assert ttc.ttc_s == pytest.approx((30.0 - 4.5) / 10.0) and ttc.min_ttc_s == ttc.ttc_s
    ttc.update(crafted(t=0.05, s=30.0, speed=15.0, actors=lead))  # between samples: held
    assert ttc.ttc_s == pytest.approx(2.55)
    ttc.update(crafted(t=0.1, s=36.0, speed=15.0, actors=lead))  # bumpers touch
    assert ttc.ttc_s == 0.0 and ttc.min_ttc_s == 0.0
    ttc.update(crafted(t=0.2, actors=Actors.empty()))
    assert ttc.ttc_s == math.inf and ttc.min_ttc_s == 0.0


def test_road_heading_interpolates_and_clamps():
    road = Road(
        [Segment("straight", 20.0), Segment("arc", 30.0, 20.0)],
        lane_count=1,
        lane_width_m=3.5,
        speed_limit_mps=10,
    )
    heading = RoadHeading(road)
    s = np.linspace(-5.0, road.length_m + 5.0, 301)
    expected = np.interp(s, road.s_m, road.heading_rad)  # linear between samples, the end values beyond
    assert [heading(v) for v in s] == pytest.approx(expected.tolist(), abs=1e-12)
    assert heading(35.0) == pytest.approx(0.75, abs=0.03)  # 15 m into a 20 m radius arc


# ---------------------------------------------------------------------------- the event kinds
def test_event_kinds_are_their_strings():
    kind = EventKind.COLLISION_VEHICLE
    assert kind == "collision_vehicle" and hash(kind) == hash("collision_vehicle")
    assert str(kind) == f"{kind}" == "collision_vehicle"
    assert {"collision_vehicle": 1}[kind] == 1 and {kind: 1}["collision_vehicle"] == 1
    assert json.dumps({kind: kind}) == '{"collision_vehicle": "collision_vehicle"}'
    assert json_safe({kind: 1}) == {"collision_vehicle": 1}
    # New kinds go last, so that the counts of metrics.json keep their order.
    assert [k.value for k in EventKind] == [
        "collision_vehicle", "collision_pedestrian", "collision_static", "off_road",
        "lane_invasion", "route_completed", "timeout", "blocked",
        "red_light", "stop_sign", "wrong_way", "route_deviation", "min_speed", "speed_checkpoint",
        "yield_emergency_vehicle",
    ]  # fmt: skip


def test_event_round_trip_through_json():
    events = [Event(1.5, kind, 3, "x", 2.0) for kind in EventKind]
    text = json.dumps([e.to_dict() for e in events])
    assert '"kind": "off_road"' in text and "EventKind" not in text
    again = [Event.from_dict(d) for d in json.loads(text)]
    assert again == events and all(type(e.kind) is EventKind for e in again)


@pytest.mark.parametrize(
    "d, words",
    [
        ({"t_s": 1.0, "kind": "explosion"}, "unknown event kind"),
        ({"kind": "timeout"}, "fields"),
        ({"t_s": 1.0, "kind": "timeout", "colour": "red"}, "fields"),
        ({"t_s": "soon", "kind": "timeout"}, "wrong type"),
        (["timeout"], "mapping"),
    ],
)
def test_event_from_dict_refuses_what_to_dict_never_writes(d, words):
    with pytest.raises(ValueError, match=words):
        Event.from_dict(d)

import math

import numpy as np
import pytest

from decision.route import Road, Route, Segment
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, EgoState
from sim.metrics.criteria import Criteria
from sim.metrics.events import Event, EventKind
from sim.traffic.actors import Actors

DT = 0.05
LANE0_D = -1.75  # centre of the right lane of a 2 x 3.5 m road


def make_route(goal_s_m=200.0):
    road = Road([Segment("straight", 300.0)], lane_count=2, lane_width_m=3.5, speed_limit_mps=20)
    return Route(road, start_s_m=0.0, goal_s_m=goal_s_m, lane=0, cruise_speed_mps=15.0)


def make_criteria(route=None, blocked_timeout_s=30.0, duration_s=100.0):
    return Criteria(route or make_route(), 4.5, 1.8, blocked_timeout_s, duration_s)


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


def test_collision_once_per_contact_and_again_after_a_second_apart():
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
def test_collision_kind_follows_the_class(class_id, speed, kind):
    crit = make_criteria()
    actor = make_actors([[10.0, LANE0_D + 0.5]], [class_id], speeds=[speed], sizes=[[0.6, 0.6, 1.7]])
    events = tick(crit, 0.0, 8.0, LANE0_D, 3.0, actors=actor)
    assert kinds(events) == [kind]
    assert events[0].speed_mps == 3.0


def test_no_collision_beside_or_far():
    crit = make_criteria()
    actors = make_actors([[10.0, -LANE0_D], [30.0, LANE0_D]], [VEHICLE, VEHICLE])  # next lane; 30 m ahead
    assert tick(crit, 0.0, 10.0, LANE0_D, actors=actors) == []


def test_off_road_event_on_entering_and_distance_while_off():
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


def test_off_road_uses_the_heading_of_the_car():
    straight, turned = make_criteria(), make_criteria()
    assert tick(straight, 0.0, 0.0, -2.3, yaw=0.0) == []
    # turned 30 deg: a front corner reaches 2.3 + 2.25 sin 30 + 0.9 cos 30 = 4.2 m, 0.7 m beyond
    assert kinds(tick(turned, 0.0, 0.0, -2.3, yaw=-math.radians(30))) == [EventKind.OFF_ROAD]


def test_lane_invasion():
    crit = make_criteria()
    out = tick(crit, 0.0, 0.0, LANE0_D) + tick(crit, DT, 0.5, -0.3) + tick(crit, 2 * DT, 1.0, 0.3)
    assert kinds(out) == [EventKind.LANE_INVASION]
    assert out[0].detail == "lane 0 -> 1"


def test_blocked_after_the_timeout_only():
    crit = make_criteria(blocked_timeout_s=2.0)
    out = []
    for i in range(40):  # t = 0 .. 1.95 s standing still
        out += tick(crit, i * DT, 5.0, LANE0_D, 0.05)
    assert out == [] and not crit.done
    out += tick(crit, 40 * DT, 5.0, LANE0_D, 0.0)
    assert kinds(out) == [EventKind.BLOCKED] and crit.done
    assert tick(crit, 41 * DT, 5.0, LANE0_D, 0.0) == []  # nothing after the end


def test_moving_resets_the_blocked_clock():
    crit = make_criteria(blocked_timeout_s=1.0)
    out = []
    for i in range(60):
        out += tick(crit, i * DT, 5.0, LANE0_D, 0.0 if i % 15 else 1.0)  # moves every 0.75 s
    assert out == []


def test_timeout_when_not_completed():
    crit = make_criteria(duration_s=1.0)
    out = []
    for i in range(21):
        out += tick(crit, i * DT, i * 0.5, LANE0_D, 10.0)
    assert kinds(out) == [EventKind.TIMEOUT] and out[0].t_s == pytest.approx(1.0) and crit.done


def test_route_completion_ends_the_run():
    crit = make_criteria(route=make_route(goal_s_m=5.0), duration_s=1.0)
    out = []
    for i in range(12):
        out += tick(crit, i * DT, i * 0.5, LANE0_D, 10.0)
    assert kinds(out) == [EventKind.ROUTE_COMPLETED] and crit.done
    assert out[0].t_s == pytest.approx(0.5)
    assert crit.max_s_m == pytest.approx(5.0)


def test_ttc_of_a_closing_leader_is_gap_over_closing_speed():
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


def test_ttc_is_sampled_every_ttc_period():
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


def test_ttc_projects_the_ego_speed_on_the_road():
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


def test_new_actor_arrays_are_seen():
    crit = make_criteria()
    actors = make_actors([[40.0, LANE0_D]], [VEHICLE])
    assert tick(crit, 0.0, 10.0, LANE0_D, actors=actors) == []
    actors.xy_m = np.asfortranarray([[12.0, LANE0_D]])  # a new array, and not C-contiguous
    assert kinds(tick(crit, DT, 10.0, LANE0_D, actors=actors)) == [EventKind.COLLISION_VEHICLE]
    actors.size_m = np.array([[0.5, 0.5, 1.0]])  # a new size: a cone 0.5 m past the ego's bumper
    actors.xy_m = np.array([[13.0, LANE0_D]])
    tick(crit, 2 * DT, 10.0, LANE0_D, actors=actors)
    assert crit.ttc_s == pytest.approx((3.0 - 0.25 - 2.25) / 10.0)

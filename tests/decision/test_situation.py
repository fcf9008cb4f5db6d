"""The situation's seven nearest objects (decision/situation.py), on random worlds, against a plain
per-track reference written from the definitions (corridor overlap, lane membership, ranges)."""

import dataclasses
import math

import numpy as np
import pytest

from decision.behaviour import Behaviour, BehaviourState, next_behaviour
from decision.planner import Planner
from decision.route import Road, Route, Segment
from decision.situation import (
    LaneChange,
    extract_situation,
    lane_change_offset_m,
    project,
    row_tests,
    siren_behind,
)
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, EgoState, WorldModel

EGO_LENGTH_M, EGO_WIDTH_M = 4.5, 1.8
DEADBAND_MPS, OVERLAP_M, NEIGHBOUR_EXTRA_M = 0.2, 0.3, 30.0


@pytest.fixture(scope="module")
def planner(conf_values):
    """The planner of conf/decision/default.yaml."""
    cfg = {k: v for k, v in conf_values("decision/default.yaml").items() if not k.startswith("_")}
    return Planner(**cfg, ego_length_m=EGO_LENGTH_M, ego_width_m=EGO_WIDTH_M, max_decel_mps2=8.0)


@pytest.fixture(scope="module")
def params(planner):
    """The SituationParams of the planner of conf/decision/default.yaml."""
    return planner.situation_params


def random_world(road: Road, ego_s: float, ego_d: float, rng: np.random.Generator, n: int = 14):
    """Tracks scattered around the ego: on and beside the road, ahead and behind, some drifting
    sideways, some turned across the road, a few pedestrians and obstacles."""
    s = ego_s + rng.uniform(-70.0, 140.0, n)
    d = rng.uniform(-8.0, 8.0, n)
    x, y, h = road.to_world(s, d)
    classes = rng.choice([VEHICLE, PEDESTRIAN, OBSTACLE], n, p=[0.7, 0.2, 0.1])
    yaw = h + np.where(rng.random(n) < 0.3, rng.uniform(-np.pi, np.pi, n), rng.normal(0.0, 0.05, n))
    speed = np.where(classes == OBSTACLE, 0.0, rng.uniform(0.0, 20.0, n))
    across = rng.uniform(-1.5, 1.5, n)  # sideways speed, some below the deadband
    vx = speed * np.cos(h) - across * np.sin(h)
    vy = speed * np.sin(h) + across * np.cos(h)
    size = np.where(classes[:, None] == PEDESTRIAN, 0.6, rng.uniform([3.5, 1.6], [6.0, 2.2], (n, 2)))
    ex, ey, eh = (float(a) for a in road.to_world(ego_s, ego_d))
    return WorldModel(
        ego=EgoState(ex, ey, eh, 12.0),
        t_s=0.0,
        ids=np.arange(100, 100 + n),
        class_ids=classes.astype(np.int64),
        xy_m=np.stack([x, y], axis=1),
        v_mps=np.stack([vx, vy], axis=1),
        yaw_rad=yaw,
        size_m=size,
        scores=np.ones(n),
    )


def reference(world: WorldModel, road: Road, lane: int, change: LaneChange | None, p) -> dict:
    """{row: (track id, gap [m], speed along the road [m/s])} of the nearest object of each row."""
    ego = world.ego
    ego_s, ego_d = road.to_frenet(np.array([ego.x_m, ego.y_m]))
    d_lane, width = road.lanes[lane].offset_m, road.lane_width_m
    horizon = {VEHICLE: p.cut_in_horizon_s, PEDESTRIAN: p.pedestrian_horizon_s, OBSTACLE: 0.0}
    margin = {VEHICLE: p.lateral_margin_m, PEDESTRIAN: p.pedestrian_margin_m, OBSTACLE: p.lateral_margin_m}
    best = {}
    for k, track in enumerate(world.tracks()):
        if math.hypot(track.x_m - ego.x_m, track.y_m - ego.y_m) >= p.look_ahead_m + NEIGHBOUR_EXTRA_M:
            continue
        s, d = road.to_frenet(np.array([track.x_m, track.y_m]))
        h = float(np.interp(s, road.s_m, road.heading_rad))
        along = track.vx_mps * math.cos(h) + track.vy_mps * math.sin(h)
        across = track.vy_mps * math.cos(h) - track.vx_mps * math.sin(h)
        if (
            track.class_id == PEDESTRIAN
            and abs(d) > road.half_width_m + road.shoulder_m
            and abs(across) < abs(along)
        ):
            across = 0.0  # on the sidewalk, walking along it
        across = 0.0 if abs(across) < DEADBAND_MPS else across
        c, sn = abs(math.cos(track.yaw_rad - h)), abs(math.sin(track.yaw_rad - h))
        half_lon = 0.5 * (track.length_m * c + track.width_m * sn)
        half_lat = 0.5 * (track.length_m * sn + track.width_m * c)
        drifted = d + across * horizon[track.class_id]
        clearance = half_lat + margin[track.class_id] + 0.5 * EGO_WIDTH_M
        ahead = s > ego_s
        gap_ahead = s - half_lon - (ego_s + 0.5 * EGO_LENGTH_M)
        gap_behind = (ego_s - 0.5 * EGO_LENGTH_M) - (s + half_lon)
        d_path = (
            d_lane if change is None else lane_change_offset_m(ego_s + max(gap_ahead, 0.0), change, d_lane)
        )
        miss = max(min(d, drifted) - d_path, d_path - max(d, drifted))
        corridor = ahead and miss < clearance and s < ego_s + p.look_ahead_m
        in_lane = 0.5 * width - OVERLAP_M + half_lat
        lanes = {}
        if lane + 1 < road.lane_count:
            lanes["left"] = abs(d - (d_lane + width)) < in_lane
        if lane >= 1:
            lanes["right"] = abs(d - (d_lane - width)) < in_lane
        rows = {
            "lead": corridor and track.class_id != PEDESTRIAN,
            "pedestrian": corridor and track.class_id == PEDESTRIAN,
            "uncleared": change is not None and ahead and abs(d - ego_d) < clearance and not corridor,
        }
        for side, inside in lanes.items():
            rows[f"{side}_lead"] = inside and ahead and s < ego_s + p.look_ahead_m + NEIGHBOUR_EXTRA_M
            rows[f"{side}_follower"] = inside and not ahead and gap_behind < p.rear_range_m
        for row, passes in rows.items():
            gap = gap_behind if row.endswith("follower") else gap_ahead
            if passes and gap < best.get(row, (0, math.inf))[1]:
                best[row] = (int(world.ids[k]), gap, along)
    return best


def facts(sit) -> dict:
    """The same rows from a Situation."""
    out = {}
    for row, obj in (("lead", sit.lead), ("pedestrian", sit.pedestrian), ("uncleared", sit.uncleared)):
        if obj is not None:
            out[row] = (obj.track_id, obj.gap_m, obj.speed_mps)
    for side, gaps in (("left", sit.left), ("right", sit.right)):
        if gaps is not None and gaps.lead_gap_m < math.inf:
            out[f"{side}_lead"] = (None, gaps.lead_gap_m, gaps.lead_speed_mps)
        if gaps is not None and gaps.follower_gap_m < math.inf:
            out[f"{side}_follower"] = (None, gaps.follower_gap_m, gaps.follower_speed_mps)
    return out


ROADS = {
    "straight": Road([Segment("straight", 600.0)], 3, 3.5, 25.0),
    "bends": Road(
        [Segment("straight", 150.0), Segment("arc", 120.0, 90.0), Segment("arc", 150.0, -150.0)],
        3,
        3.5,
        25.0,
        (10.0, -5.0, 0.3),
    ),
}


@pytest.mark.parametrize("road_name", list(ROADS))
@pytest.mark.parametrize("lane", [0, 1, 2])
@pytest.mark.parametrize("changing", [False, True])
def test_nearest_objects_match_the_per_track_reference(road_name, lane, changing, params):
    road, p = ROADS[road_name], params
    route = Route(road, 0.0, road.length_m, lane=1, cruise_speed_mps=15.0)
    rng = np.random.default_rng(lane + 3 * changing + 10 * len(road_name))
    ego_s, ego_d = 200.0, road.lanes[1].offset_m + 0.4
    change = LaneChange(ego_s - 5.0, ego_d, 40.0) if changing else None
    for _ in range(15):
        world = random_world(road, ego_s, ego_d, rng)
        s, d, tracks = project(world, road, ego_s - 1.0, p)
        assert (s, d) == pytest.approx(road.to_frenet(np.array([world.ego.x_m, world.ego.y_m])), abs=1e-9)
        sit = extract_situation(tracks, route, s, d, 12.0, lane, change, p, row_tests(road, lane, p))
        assert (sit.left is None) == (lane == 2) and (sit.right is None) == (lane == 0)
        want, got = reference(world, road, lane, change, p), facts(sit)
        assert got.keys() == want.keys()
        for row, (track_id, gap, speed) in want.items():
            if got[row][0] is not None:
                assert got[row][0] == track_id, row
            # An object's gap is clipped at 0 (a box alongside); lane gaps keep their sign.
            assert got[row][1] == pytest.approx(max(gap, 0.0) if got[row][0] else gap, abs=1e-9), row
            assert got[row][2] == pytest.approx(speed, abs=1e-9), row


def test_a_pedestrian_walking_along_the_sidewalk_is_not_predicted_onto_the_road(params):
    """Beside the ego on the sidewalk, a camera track's sideways speed (0.7 m/s, walking along at
    1 m/s) is no walk into the corridor; walking across, or on the road, it is."""
    road, p = ROADS["straight"], params
    route = Route(road, 0.0, road.length_m, lane=0, cruise_speed_mps=15.0)
    ego_d = road.lanes[0].offset_m
    edge = road.half_width_m + road.shoulder_m

    def pedestrian(d, along, across):
        x, y, _ = road.to_world(204.0, d)
        world = WorldModel(ego=EgoState(*(float(a) for a in road.to_world(200.0, ego_d)), 0.0), t_s=0.0,
                           ids=np.array([7]), class_ids=np.array([PEDESTRIAN]), xy_m=np.array([[x, y]]),
                           v_mps=np.array([[along, across]]), yaw_rad=np.zeros(1), size_m=np.full((1, 2), 0.5),
                           scores=np.ones(1))  # fmt: skip
        s, d_ego, tracks = project(world, road, 200.0, p)
        return extract_situation(tracks, route, s, d_ego, 0.0, 0, None, p).pedestrian

    assert pedestrian(-edge - 1.2, 1.0, 0.7) is None  # on the sidewalk, walking along it
    assert pedestrian(-edge - 1.2, 0.5, 1.2) is not None  # on the sidewalk, walking towards the road
    assert pedestrian(-edge + 0.3, 1.0, 0.7) is not None  # on the road, drifting into the lane


def test_no_track_within_reach_gives_an_empty_situation(params):
    road, p = ROADS["straight"], params
    world = random_world(road, 200.0, -1.75, np.random.default_rng(0))
    far = WorldModel(ego=world.ego, t_s=0.0, ids=world.ids[:2], class_ids=world.class_ids[:2],
                     xy_m=world.xy_m[:2] + [300.0, 0.0], v_mps=world.v_mps[:2], yaw_rad=world.yaw_rad[:2],
                     size_m=world.size_m[:2], scores=world.scores[:2])  # fmt: skip
    s, d, tracks = project(far, road, None, p)
    assert tracks is None and s == pytest.approx(200.0) and d == pytest.approx(-1.75)
    route = Route(road, 0.0, 600.0, lane=0, cruise_speed_mps=15.0)
    sit = extract_situation(tracks, route, s, d, 12.0, 0, None, p)
    assert sit.lead is None and sit.left.lead_gap_m == math.inf and sit.right is None


def test_emergency_vehicles_coming_from_behind(params):
    """The nearest emergency vehicle behind in the ego's lane, within emergency_rear_m; the
    neighbouring lanes marked when one comes along them; ordinary cars and ones ahead ignored."""
    road, p = ROADS["straight"], params
    ego_s = 300.0
    # Emergency vehicles: behind in lane 1 (the ego's) at 30 and 60 m, behind in lane 2, ahead in
    # lane 1; and an ordinary car behind in lane 1 at 15 m.
    s = np.array([ego_s - 30.0, ego_s - 60.0, ego_s - 20.0, ego_s + 30.0, ego_s - 15.0])
    lane = np.array([1, 1, 2, 1, 1])
    emergency = np.array([True, True, True, True, False])
    offsets = np.array([road.lanes[k].offset_m for k in lane])
    x, y, h = road.to_world(s, offsets)
    n = len(s)
    ex, ey, eh = (float(a) for a in road.to_world(ego_s, road.lanes[1].offset_m))
    world = WorldModel(
        ego=EgoState(ex, ey, eh, 12.0), t_s=0.0, ids=np.arange(n), class_ids=np.zeros(n, np.int64),
        xy_m=np.stack([x, y], axis=1), v_mps=np.stack([20 * np.cos(h), 20 * np.sin(h)], axis=1),
        yaw_rad=h, size_m=np.tile([5.6, 2.1], (n, 1)), scores=np.ones(n), emergency=emergency,
    )  # fmt: skip
    route = Route(road, 0.0, road.length_m, lane=1, cruise_speed_mps=15.0)

    def situation_of(w):
        s0, d0, tracks = project(w, road, ego_s, p)
        return extract_situation(tracks, route, s0, d0, 12.0, 1, None, p)

    sit = situation_of(world)
    ev = sit.emergency_behind
    assert ev.track_id == 0 and ev.gap_m == pytest.approx(30.0 - 0.5 * (5.6 + EGO_LENGTH_M))
    assert ev.speed_mps == pytest.approx(20.0)
    assert sit.left.emergency_behind and not sit.right.emergency_behind
    # Farther back than emergency_rear_m: not looked for; without the flags: none known.
    far = s.copy()
    far[:3] -= p.emergency_rear_m
    fx, fy, _ = road.to_world(far, offsets)
    sit = situation_of(dataclasses.replace(world, xy_m=np.stack([fx, fy], axis=1)))
    assert sit.emergency_behind is None and not sit.left.emergency_behind
    sit = situation_of(dataclasses.replace(world, emergency=None))
    assert sit.emergency_behind is None and not sit.left.emergency_behind


def test_a_neighbouring_lane_vehicle_of_unknown_speed_counts_at_its_worst(planner, params):
    """A car just tracked in the oncoming lane (its speed still uncertain) counts as coming fast,
    one behind in the next lane as closing fast; the ego's own lead keeps its tracked speed."""
    from decision.behaviour import overtake_clear

    road = Road([Segment("straight", 600.0)], 2, 3.5, 14.0, oncoming_lanes=1)
    p = params
    ego_s = 100.0
    s = np.array([ego_s + 12.0, ego_s + 46.0])  # a parked car ahead, a car in the oncoming lane
    d = np.array([road.lanes[0].offset_m, road.lanes[1].offset_m])
    x, y, h = road.to_world(s, d)
    ex, ey, eh = (float(a) for a in road.to_world(ego_s, road.lanes[0].offset_m))
    world = WorldModel(
        ego=EgoState(ex, ey, eh, 2.0), t_s=0.0, ids=np.arange(2), class_ids=np.zeros(2, np.int64),
        xy_m=np.stack([x, y], axis=1), v_mps=np.array([[0.0, 0.0], [-1.3, 0.0]]), yaw_rad=np.array([0.0, np.pi]),
        size_m=np.tile([4.5, 1.8], (2, 1)), scores=np.ones(2),
    )  # fmt: skip
    route = Route(road, 0.0, road.length_m, lane=0, cruise_speed_mps=10.0)

    def situation_of(w):
        s0, d0, tracks = project(w, road, ego_s, p)
        return extract_situation(tracks, route, s0, d0, 2.0, 0, None, p)

    known = situation_of(world)  # ground truth, or a track whose speed has settled
    assert known.left.lead_speed_mps == pytest.approx(-1.3)
    young = situation_of(dataclasses.replace(world, v_std_mps=np.array([0.0, 6.0])))
    assert young.left.lead_speed_mps == pytest.approx(-1.3 - 2 * 6.0)
    assert young.lead.speed_mps == known.lead.speed_mps == 0.0
    behaviour = planner.behaviour_params
    assert overtake_clear(known.left, known.lead, known, behaviour)[0]  # a slow car 46 m off: go
    ok, why = overtake_clear(young.left, young.lead, young, behaviour)
    assert not ok and "oncoming traffic" in why  # it may be coming at 13 m/s: wait to know
    # A camera track's speed along the road is not trusted there even once settled: a car tracked
    # as slow, or as driving away, counts as coming at the speed cap (10 m/s); one standing, as standing.
    for vx in (-1.3, 3.0, 0.0):
        moving = dataclasses.replace(
            world, v_mps=np.array([[0.0, 0.0], [vx, 0.0]]), v_std_mps=np.array([0.0, 0.2])
        )
        s0, d0, tracks = project(moving, road, ego_s, p)
        left = extract_situation(tracks, route, s0, d0, 2.0, 0, None, p, stationary_mps=0.5).left
        assert left.lead_speed_mps == pytest.approx(vx - 0.4 if vx == 0.0 else -10.0)
    # A follower in the next lane (a one-way road) is taken as closing faster.
    one_way = Road([Segment("straight", 600.0)], 2, 3.5, 14.0)
    bx, by, bh = one_way.to_world(np.array([ego_s - 20.0]), np.array([one_way.lanes[1].offset_m]))
    behind = WorldModel(
        ego=EgoState(ex, ey, eh, 2.0), t_s=0.0, ids=np.arange(1), class_ids=np.zeros(1, np.int64),
        xy_m=np.stack([bx, by], axis=1), v_mps=np.array([[10.0, 0.0]]), yaw_rad=np.zeros(1),
        size_m=np.array([[4.5, 1.8]]), scores=np.ones(1), v_std_mps=np.array([3.0]),
    )  # fmt: skip
    s0, d0, tracks = project(behind, one_way, ego_s, p)
    route = Route(one_way, 0.0, one_way.length_m, lane=0, cruise_speed_mps=10.0)
    follower = extract_situation(tracks, route, s0, d0, 2.0, 0, None, p).left
    assert follower.follower_speed_mps == pytest.approx(10.0 + 2 * 3.0)


def test_a_vehicle_whose_heading_was_not_measured_lies_along_the_road(params):
    """A van parked 1.2 m clear of the ego's corridor, its box turned 12 degrees: the turn reaches
    into the corridor. Where the heading is a camera track's guess (never seen moving: the ego's
    heading when it was born, across the street where the ego turned), the van lies along the road
    and is passed; where it was measured (or is the truth), it is braked for."""
    road, p = ROADS["straight"], params
    route = Route(road, 0.0, road.length_m, lane=0, cruise_speed_mps=10.0)
    ego_d, length, width = road.lanes[0].offset_m, 5.0, 2.0
    d = ego_d - (0.5 * width + p.lateral_margin_m + 0.5 * EGO_WIDTH_M + 0.2)
    (x, y, h), ego = road.to_world(230.0, d), road.to_world(200.0, ego_d)

    def lead(turn_deg, heading_seen):
        world = WorldModel(
            ego=EgoState(*(float(a) for a in ego), 8.0), t_s=0.0, ids=np.array([3]),
            class_ids=np.array([VEHICLE]), xy_m=np.array([[x, y]], float), v_mps=np.zeros((1, 2)),
            yaw_rad=np.array([h + math.radians(turn_deg)], float), size_m=np.array([[length, width]]),
            scores=np.ones(1), v_std_mps=None if heading_seen is None else np.array([0.1]),
            heading_seen=None if heading_seen is None else np.array([heading_seen]),
        )  # fmt: skip
        s, d_ego, tracks = project(world, road, 200.0, p)
        return extract_situation(tracks, route, s, d_ego, 8.0, 0, None, p).lead

    assert lead(0.0, None) is None and lead(0.0, False) is None  # along the road: clear
    assert lead(12.0, None) is not None  # the truth: turned into the corridor
    assert lead(12.0, True) is not None  # a heading seen (it drove there)
    assert lead(12.0, False) is None and lead(-168.0, False) is None  # a guess: along the road
    assert lead(80.0, False) is None and lead(80.0, True) is not None  # across the road


def test_lanes_outside_the_cameras_views_are_unobserved(params):
    from decision.situation import mark_unobserved
    from perception.visibility import CameraView

    road, p = ROADS["straight"], params
    route = Route(road, 0.0, road.length_m, lane=1, cruise_speed_mps=15.0)
    ex, ey, eh = (float(a) for a in road.to_world(300.0, road.lanes[1].offset_m))
    ego = EgoState(ex, ey, eh, 12.0)
    front = CameraView("front", 0.8, 0.0, 0.0, 75.0, 80.0)
    sides = [
        CameraView(n, x, y, yaw, 75.0 if abs(yaw) < 150 else 110.0, 80.0)
        for n, x, y, yaw in [("fl", 0.5, 0.8, 55), ("fr", 0.5, -0.8, -55), ("rl", -0.9, 0.8, 110),
                             ("rr", -0.9, -0.8, -110), ("rear", -1.6, 0.0, 180)]
    ]  # fmt: skip
    for views, observed in (((front,), False), ((front, *sides), True), (None, True)):
        world = WorldModel(ego=ego, t_s=0.0, views=views)
        sit = extract_situation(None, route, 300.0, road.lanes[1].offset_m, 12.0, 1, None, p)
        mark_unobserved(sit, road, world, p.rear_range_m, p.look_ahead_m)
        assert sit.left.observed == observed and sit.right.observed == observed, views


def test_a_car_ahead_hides_the_oncoming_lane_beyond_it_and_edging_out_shows_it(params):
    """A two-way road, the ego in lane 0 with a nuScenes-like rig: a van stopped 10 m ahead in its
    lane, 0.3 m left of the centre, hides the oncoming lane from about 16 m on; the same van in the
    oncoming lane (that lane's own traffic: its gaps say where it is) or a pedestrian hides none of
    it; from 1.05 m left of the lane's centre (its side 0.2 m over the line) the cameras see past
    a van in the lane's centre."""
    from decision.situation import mark_unobserved
    from perception.visibility import CameraView

    p = params
    road = Road([Segment("straight", 600.0)], 2, 3.5, 14.0, oncoming_lanes=1)
    route = Route(road, 0.0, road.length_m, lane=0, cruise_speed_mps=14.0)
    views = tuple(
        CameraView(n, x, y, yaw, 110.0 if n == "rear" else 75.0, 150.0)
        for n, x, y, yaw in [("front", 0.8, 0.0, 0), ("fl", 0.5, 0.8, 55), ("fr", 0.5, -0.8, -55),
                             ("rl", -0.9, 0.8, 110), ("rr", -0.9, -0.8, -110), ("rear", -1.6, 0.0, 180)]
    )  # fmt: skip
    lane0 = road.lanes[0].offset_m

    def oncoming_lane(ego_d, obj_d=None, size=(6.0, 2.1)):
        """The oncoming lane's (seen_ahead_m, observed) for the ego at (300, ego_d) and an object
        10 m ahead at obj_d (None: nothing)."""
        ex, ey, eh = (float(a) for a in road.to_world(300.0, ego_d))
        n = 0 if obj_d is None else 1
        ox, oy, oh = road.to_world(np.full(n, 310.0), np.full(n, obj_d if n else 0.0))
        world = WorldModel(
            ego=EgoState(ex, ey, eh, 0.0), t_s=0.0, ids=np.arange(n), class_ids=np.zeros(n, np.int64),
            xy_m=np.stack([ox, oy], axis=1).reshape(n, 2), v_mps=np.zeros((n, 2)), yaw_rad=np.asarray(oh).reshape(n),
            size_m=np.tile(size, (n, 1)), scores=np.ones(n), views=views,
        )  # fmt: skip
        sit = extract_situation(None, route, 300.0, ego_d, 0.0, 0, None, p)
        mark_unobserved(sit, road, world, p.rear_range_m, p.oncoming_look_ahead_m)
        return sit.left.seen_ahead_m, sit.left.observed

    assert oncoming_lane(lane0) == (math.inf, True)
    seen, observed = oncoming_lane(lane0, lane0 + 0.3)
    assert 8.0 <= seen <= 24.0 and not observed
    assert oncoming_lane(lane0, road.lanes[1].offset_m) == (math.inf, True)
    assert oncoming_lane(lane0, lane0 + 0.3, size=(0.6, 0.6)) == (math.inf, True)  # a pedestrian
    assert oncoming_lane(lane0, lane0)[0] < 30.0
    assert oncoming_lane(lane0 + 1.05, lane0) == (math.inf, True)


def test_the_run_behind_a_stationary_lead_counts_a_queue_head_moving_off(params):
    """A car standing 20 m ahead and one 7 m beyond it: the lane stays blocked 7 m farther than the
    first car's end, whether the second stands or has started to move (a queue leaves no room to
    get back in); one 40 m beyond leaves room."""
    road, p = ROADS["straight"], params
    ego_s, lane = 300.0, 1
    route = Route(road, 0.0, road.length_m, lane=lane, cruise_speed_mps=15.0)
    ex, ey, eh = (float(a) for a in road.to_world(ego_s, road.lanes[lane].offset_m))

    def run_extra(second_s, second_speed):
        s = np.array([ego_s + 20.0, ego_s + second_s])
        x, y, h = road.to_world(s, np.full(2, road.lanes[lane].offset_m))
        v = np.array([0.0, second_speed])
        w = WorldModel(
            ego=EgoState(ex, ey, eh, 0.0), t_s=0.0, ids=np.arange(2), class_ids=np.zeros(2, np.int64),
            xy_m=np.stack([x, y], axis=1), v_mps=np.stack([v * np.cos(h), v * np.sin(h)], axis=1),
            yaw_rad=h, size_m=np.tile([4.5, 1.8], (2, 1)), scores=np.ones(2),
        )  # fmt: skip
        s0, d0, tracks = project(w, road, ego_s, p)
        sit = extract_situation(tracks, route, s0, d0, 0.0, lane, None, p, stationary_mps=0.5)
        assert sit.lead.track_id == 0
        return sit.lead_run_extra_m

    assert run_extra(27.0, 0.0) == pytest.approx(7.0, abs=0.3)
    assert run_extra(27.0, 1.5) == pytest.approx(7.0, abs=0.3)
    assert run_extra(60.0, 0.0) == 0.0


def test_a_siren_heard_behind_and_not_seen_is_made_way_for_in_the_routes_lane(planner, params):
    """An emergency vehicle heard behind (a bearing no track accounts for) comes along the route's
    lane: the ego in it moves over; moved over, it does not move back while the siren is behind."""
    road, p = ROADS["straight"], params
    route = Route(road, 0.0, 600.0, lane=1, cruise_speed_mps=15.0)

    def situation(lane: int, sirens: tuple[float, ...]):
        sit = extract_situation(None, route, 200.0, road.lanes[lane].offset_m, 12.0, lane, None, p)
        siren_behind(sit, sirens, p.emergency_rear_m)
        return sit

    sit = situation(1, (math.pi - 0.2,))  # heard 11 degrees off straight back
    assert sit.emergency_behind.track_id == -1 and sit.emergency_behind.gap_m == p.emergency_rear_m
    state, why = next_behaviour(BehaviourState(Behaviour.CRUISE, 1), sit, planner.behaviour_params)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 0, why
    assert why == "making way for an emergency vehicle heard behind: to lane 0"
    # Heard ahead or beside: not one coming from behind; nothing heard: nothing.
    for sirens in ((0.3,), (math.pi / 2,), ()):
        sit = situation(1, sirens)
        assert (
            sit.emergency_behind is None and not sit.left.emergency_behind and not sit.right.emergency_behind
        )
    # One seen coming along the lane beside: that one is the siren's, the ego stays.
    sit = extract_situation(None, route, 200.0, road.lanes[1].offset_m, 12.0, 1, None, p)
    sit.left.emergency_behind = True
    siren_behind(sit, (math.pi,), p.emergency_rear_m)
    assert sit.emergency_behind is None and not sit.right.emergency_behind
    # Moved over into lane 0: the route's lane beside is the emergency vehicle's; no way back yet.
    sit = situation(0, (-math.pi + 0.1,))
    assert sit.emergency_behind is None and sit.left.emergency_behind
    state, why = next_behaviour(BehaviourState(Behaviour.CRUISE, 0), sit, planner.behaviour_params)
    assert state.lane == 0 and state.behaviour == Behaviour.CRUISE, why
    state, why = next_behaviour(
        BehaviourState(Behaviour.CRUISE, 0), situation(0, ()), planner.behaviour_params
    )
    assert state.lane == 1 and why == "returning to lane 1"

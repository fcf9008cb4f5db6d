"""NPC traffic and scripted actors: IDM following, MOBIL lane changes, triggers, determinism."""

import copy
import dataclasses
import math
import pickle

import numpy as np
import pytest

from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE
from sim.config import TrafficConfig
from sim.scenario.parse import parse_scenario
from sim.traffic.spawn import BARRIER_SIZE_M, END_MARGIN_M, PEDESTRIAN_SIZE_M
from sim.traffic.traffic import Traffic

DT = 0.05
CAR = (4.5, 1.8, 1.5)


@pytest.fixture(scope="module")
def cfg(conf_values) -> TrafficConfig:
    return TrafficConfig(**conf_values("sim/default.yaml")["traffic"])


def make_spec(actors=(), lanes=3, length_m=2000.0, ego_lane=0, ego_s=10.0, traffic=None, seed=0, arc_m=0.0):
    segments = [{"type": "straight", "length_m": length_m}]
    if arc_m:
        segments = [
            {"type": "straight", "length_m": 50.0},
            {"type": "arc", "length_m": length_m, "radius_m": arc_m},
        ]
    data = {
        "name": "test",
        "duration_s": 60,
        "road": {"lanes": lanes, "lane_width_m": 3.5, "speed_limit_mps": 30, "segments": segments},
        "ego": {"lane": ego_lane, "s_m": ego_s, "route_length_m": 20, "speed_mps": 0, "target_speed_mps": 15},
        "actors": list(actors),
    }
    if traffic is not None:
        data["traffic"] = traffic
    return parse_scenario(data, np.random.default_rng(seed))


def drive(tr, seconds, ego_s, ego_d, ego_speed=0.0, t0=0.0, each=None):
    """Step the traffic for `seconds` with an ego moving at constant speed; returns (t, ego_s)."""
    t = t0
    for _ in range(round(seconds / DT)):
        if each is not None:
            each(t, ego_s)
        tr.step(DT, t, ego_s, ego_d, ego_speed, CAR[0])
        t += DT
        ego_s += ego_speed * DT
    return t, ego_s


def bumper_gap(s_rear, s_front, len_rear, len_front):
    return s_front - s_rear - 0.5 * (len_rear + len_front)


# ---------------------------------------------------------------------------- construction
def test_actors_sizes_classes_ids_and_placement(cfg):
    actors = [
        {"kind": "vehicle", "model": "van", "lane": 0, "ds_m": 30, "speed_mps": 10},
        {"kind": "pedestrian", "side": "left", "ds_m": 60, "speed_mps": 1.4, "trigger_distance_m": 20},
        {"kind": "obstacle", "model": "barrier", "lane": 1, "ds_m": 80},
        {"kind": "obstacle", "model": "car", "lane": 2, "ds_m": 90},
    ]
    traffic = {"count": 15, "ds_min_m": -30, "ds_max_m": 300, "min_spacing_m": 14}
    spec = make_spec(actors, ego_lane=1, ego_s=100.0, traffic=traffic)
    tr = Traffic(spec, cfg, CAR, np.random.default_rng(1), rgba_fn=lambda rng: np.array([0.1, 0.2, 0.3, 1.0]))
    a = tr.actors
    assert len(a) == 4 + 15
    np.testing.assert_array_equal(a.ids, np.arange(1, 20))
    assert a.models[:4] == ["van", "pedestrian", "barrier", "car"]
    assert a.class_ids[:4].tolist() == [VEHICLE, PEDESTRIAN, OBSTACLE, VEHICLE]
    assert np.all(a.size_m[0] > CAR)
    assert tuple(a.size_m[1]) == PEDESTRIAN_SIZE_M and tuple(a.size_m[2]) == BARRIER_SIZE_M
    np.testing.assert_allclose(a.rgba[4:], [[0.1, 0.2, 0.3, 1.0]] * 15)
    s, d = tr.frenet()
    assert s[1] == pytest.approx(160.0) and d[1] > spec.road.half_width_m  # on the left sidewalk
    assert tr.lane_of_actors()[1] == -1
    npc_s, npc_lane = s[4:], tr.lane[4:]
    assert np.all((npc_s >= 70.0) & (npc_s <= 400.0))
    for lane in range(3):  # spacing between NPCs and scripted actors in a lane, and the ego clear zone
        others = list(npc_s[npc_lane == lane]) + [s[i] for i in (0, 2, 3) if tr.lane[i] == lane]
        others += [100.0] if lane == 1 else []
        gaps = np.diff(np.sort(others))
        assert np.all(gaps >= 14.0 - 1e-9)


def test_no_actors_at_all(cfg):
    tr = Traffic(make_spec(), cfg, CAR, np.random.default_rng(0), None)
    tr.step(DT, 0.0, 10.0, -3.5, 5.0, CAR[0])
    assert len(tr.actors) == 0 and tr.actors.xy_m.shape == (0, 2) and tr.frenet()[0].shape == (0,)


def test_poses_follow_the_road_on_a_curve(cfg):
    actors = [{"kind": "vehicle", "behaviour": "keep_lane", "lane": 2, "ds_m": 60, "speed_mps": 12}]
    spec = make_spec(actors, arc_m=150.0, length_m=300.0)
    tr = Traffic(spec, cfg, CAR, np.random.default_rng(0), None)
    drive(tr, 2.0, 10.0, -3.5)
    xy0 = tr.actors.xy_m[0].copy()
    s, d = tr.frenet()
    x, y, heading = spec.road.to_world(s[0], d[0])
    np.testing.assert_allclose(xy0, [x, y], atol=1e-9)
    assert tr.actors.yaw_rad[0] == pytest.approx(float(heading), abs=1e-9)
    v = tr.actors.v_mps[0].copy()
    drive(tr, DT, 10.0, -3.5)
    np.testing.assert_allclose((tr.actors.xy_m[0] - xy0) / DT, v, rtol=0.01)  # world velocity


# ---------------------------------------------------------------------------- IDM following
@pytest.mark.parametrize(
    "blocker, length_m",
    [
        ({"kind": "obstacle", "model": "cone"}, 0.4),
        ({"kind": "vehicle", "behaviour": "static"}, 4.5),
        ({"kind": "pedestrian", "behaviour": "static"}, 0.5),
    ],
)
def test_idm_vehicle_stops_min_gap_behind_a_stopped_obstacle(cfg, blocker, length_m):
    actors = [
        {"kind": "vehicle", "lane": 0, "ds_m": 20, "speed_mps": 15},
        {**blocker, "lane": 0, "ds_m": 150},
    ]
    tr = Traffic(make_spec(actors, lanes=1), cfg, CAR, np.random.default_rng(0), None)
    drive(tr, 40.0, 10.0, 0.0)
    s, _ = tr.frenet()
    assert bumper_gap(s[0], s[1], 4.5, length_m) == pytest.approx(cfg.min_gap_m, abs=0.5)
    assert tr.speed_along_road_mps[0] == pytest.approx(0.0, abs=0.05)
    assert tr.actors.speed_mps[1] == 0.0


def test_npc_stops_behind_a_stopped_ego(cfg):
    actors = [{"kind": "vehicle", "lane": 0, "ds_m": -150, "speed_mps": 15}]
    tr = Traffic(make_spec(actors, lanes=1, ego_s=200.0), cfg, CAR, np.random.default_rng(0), None)
    drive(tr, 40.0, 200.0, 0.0)
    s, _ = tr.frenet()
    assert bumper_gap(s[0], 200.0, 4.5, CAR[0]) == pytest.approx(cfg.min_gap_m, abs=0.5)


def test_vehicles_stop_at_the_end_of_the_road(cfg):
    actors = [{"kind": "vehicle", "lane": 0, "ds_m": ds, "speed_mps": 15} for ds in (150, 120)]
    spec = make_spec(actors, lanes=1, length_m=300.0)
    tr = Traffic(spec, cfg, CAR, np.random.default_rng(0), None)
    lowest = []
    drive(tr, 40.0, 10.0, 0.0, each=lambda t, s: lowest.append(tr.actors.accel_mps2.min()))
    s, _ = tr.frenet()
    assert min(lowest) >= -cfg.max_decel_mps2 - 1e-9  # braked for the end, did not crash into it
    assert s[0] <= 300.0 - END_MARGIN_M
    assert 300.0 - s[0] - 2.25 == pytest.approx(cfg.min_gap_m, abs=0.5)  # stops before the road's end
    assert bumper_gap(s[1], s[0], 4.5, 4.5) == pytest.approx(cfg.min_gap_m, abs=0.5)
    assert len(tr.actors) == 2 and np.all(tr.actors.speed_mps < 0.05)


@pytest.mark.parametrize("politeness, slots", [(0.0, 4), (0.5, 1)])
def test_dense_traffic_never_overlaps_in_60_s(cfg, politeness, slots):
    cfg = dataclasses.replace(cfg, politeness=politeness)
    traffic = {"count": 20, "ds_min_m": 20, "ds_max_m": 400, "speed_min_mps": 8, "speed_max_mps": 22}
    actors = [{"kind": "obstacle", "model": "cone", "lane": 1, "ds_m": 600}]  # forces merging
    spec = make_spec(actors, traffic=traffic, length_m=2500.0)
    # decision_slots=1: every vehicle decides at the same ticks (vehicles merging at once)
    tr = Traffic(spec, cfg, CAR, np.random.default_rng(2), None, decision_slots=slots)
    half_len = tr.actors.size_m[:, 0] / 2
    half_width = tr.actors.size_m[:, 1] / 2
    changes = [0]
    last_target = tr.target_lane

    def check(t, ego_s):
        s, d = tr.frenet()
        ds = np.abs(s[:, None] - s[None, :]) < half_len[:, None] + half_len[None, :]
        dd = np.abs(d[:, None] - d[None, :]) < half_width[:, None] + half_width[None, :]
        overlap = ds & dd
        np.fill_diagonal(overlap, False)
        assert not overlap.any(), f"overlap at t={t:.2f}: {np.argwhere(overlap)}"
        changes[0] += int(np.count_nonzero(tr.target_lane != last_target))
        last_target[:] = tr.target_lane

    drive(tr, 60.0, 10.0, -3.5, each=check)
    assert changes[0] >= 3  # MOBIL did change lanes
    s, _ = tr.frenet()
    assert np.all(tr.speed_along_road_mps >= 0.0) and np.all(s[1:] > 30.0)


# ---------------------------------------------------------------------------- MOBIL
def mobil_spec(with_neighbour: bool):
    actors = [
        {"kind": "vehicle", "lane": 0, "ds_m": 30, "speed_mps": 15, "target_speed_mps": 20},
        {"kind": "vehicle", "behaviour": "keep_lane", "lane": 0, "ds_m": 50, "speed_mps": 5},
    ]
    if with_neighbour:  # right beside the idm vehicle (its front half), same speed
        actors.append({"kind": "vehicle", "behaviour": "keep_lane", "lane": 1, "ds_m": 28, "speed_mps": 15})
    return make_spec(actors, ego_lane=2)


@pytest.mark.parametrize("politeness", [0.0, 0.5])
def test_mobil_changes_lane_around_a_slow_vehicle(cfg, politeness):
    cfg = dataclasses.replace(cfg, politeness=politeness)
    tr = Traffic(mobil_spec(False), cfg, CAR, np.random.default_rng(0), None)
    drive(tr, cfg.lane_change_period_s, 10.0, 3.5)
    assert tr.target_lane[0] == 1 and tr.lane[0] == 0  # decided within one period, moving now
    drive(tr, cfg.lane_change_duration_s + 2.0, 10.0, 3.5, t0=cfg.lane_change_period_s)
    _, d = tr.frenet()
    assert tr.lane[0] == 1 and d[0] == pytest.approx(0.0, abs=1e-6)  # centre of the middle lane
    drive(tr, 5.0, 10.0, 3.5, t0=cfg.lane_change_period_s + cfg.lane_change_duration_s + 2.0)
    s, _ = tr.frenet()
    assert s[0] > s[1] + 10.0  # overtook


def test_mobil_does_not_change_into_an_occupied_lane(cfg):
    tr = Traffic(mobil_spec(True), cfg, CAR, np.random.default_rng(0), None)
    seen = []
    drive(tr, cfg.lane_change_period_s + DT, 10.0, 3.5, each=lambda t, s: seen.append(tr.target_lane[0]))
    assert seen and all(lane == 0 for lane in seen)
    assert tr.lane[0] == 0 and tr.frenet()[1][0] == pytest.approx(-3.5)


def test_stopped_vehicle_pulls_out_around_an_obstacle(cfg):
    actors = [
        {"kind": "obstacle", "model": "barrier", "lane": 0, "ds_m": 80},
        {"kind": "vehicle", "lane": 0, "ds_m": 20, "speed_mps": 10},
    ]
    tr = Traffic(make_spec(actors, lanes=2, ego_lane=1, ego_s=10.0), cfg, CAR, np.random.default_rng(0), None)
    drive(tr, 30.0, 10.0, 1.75)
    s, _ = tr.frenet()
    assert s[1] > s[0] + 20.0 and tr.lane[1] == 1


# ---------------------------------------------------------------------------- scripted behaviours
def test_cut_in_triggers_at_the_gap_and_ends_in_the_target_lane(cfg):
    actor = {"kind": "vehicle", "behaviour": "cut_in", "lane": 1, "ds_m": 40, "speed_mps": 8}
    actor |= {"trigger_gap_m": 15, "target_lane": 0, "manoeuvre_s": 2.0}
    tr = Traffic(make_spec([actor], lanes=2), cfg, CAR, np.random.default_rng(0), None)
    ego_speed, fired = 10.0, []

    def watch(t, ego_s):
        if not fired and tr.triggered[0]:
            s, _ = tr.frenet()
            fired.append(bumper_gap(ego_s - ego_speed * DT, s[0] - 8.0 * DT, 4.5, 4.5))

    t, ego_s = drive(tr, 12.0, 10.0, -1.75, ego_speed, each=watch)
    assert fired, "the cut-in never triggered"
    closing = (ego_speed - 8.0) * DT
    assert 15.0 - closing - 1e-6 <= fired[0] <= 15.0 + 1e-6  # first tick with gap <= trigger_gap
    drive(tr, 2.5, ego_s, -1.75, ego_speed, t0=t)
    _, d = tr.frenet()
    assert tr.lane[0] == 0 and d[0] == pytest.approx(-1.75)
    assert tr.speed_along_road_mps[0] == pytest.approx(8.0, abs=0.01)  # kept its speed


def test_brake_starts_at_trigger_time_and_stops_in_v2_over_2a(cfg):
    actor = {"kind": "vehicle", "behaviour": "brake", "lane": 0, "ds_m": 50, "speed_mps": 15}
    actor |= {"trigger_time_s": 2.0, "decel_mps2": 4.0}
    tr = Traffic(make_spec([actor], lanes=1), cfg, CAR, np.random.default_rng(0), None)
    t, _ = drive(tr, 2.0, 10.0, 0.0)
    assert not tr.triggered[0] and tr.speed_along_road_mps[0] == pytest.approx(15.0, abs=0.01)
    s_trigger = tr.frenet()[0][0]
    drive(tr, 1.0, 10.0, 0.0, t0=t)
    assert tr.triggered[0] and tr.actors.accel_mps2[0] == pytest.approx(-4.0)
    drive(tr, 10.0, 10.0, 0.0, t0=t + 1.0)
    assert tr.speed_along_road_mps[0] == 0.0
    assert tr.frenet()[0][0] - s_trigger == pytest.approx(15.0**2 / (2 * 4.0), rel=1e-3)


def test_pedestrian_crosses_when_the_ego_comes_within_trigger_distance(cfg):
    ped = {"kind": "pedestrian", "behaviour": "cross", "side": "right", "lateral_offset_m": 1.5}
    ped |= {"ds_m": 60, "speed_mps": 1.4, "trigger_distance_m": 20}
    tr = Traffic(make_spec([ped], lanes=2), cfg, CAR, np.random.default_rng(0), None)
    ped_s, d0 = (float(x[0]) for x in tr.frenet())
    assert d0 == pytest.approx(-(3.5 + 1.5))
    ego_speed, fired_at, waiting = 5.0, [], []

    def watch(t, ego_s):
        if not tr.triggered[0]:
            waiting.append(tr.frenet()[1][0])
        elif not fired_at:
            fired_at.append(ego_s - ego_speed * DT)  # the ego position of the step that fired

    t, ego_s = drive(tr, 10.0, 10.0, -1.75, ego_speed, each=watch)
    assert fired_at and ped_s - ego_speed * DT < fired_at[0] + 20.0 <= ped_s + 1e-9
    assert np.all(np.array(waiting) == d0)  # stood still until then
    assert tr.actors.speed_mps[0] == pytest.approx(1.4)
    assert tr.actors.yaw_rad[0] == pytest.approx(math.pi / 2)  # walks left, across the road
    np.testing.assert_allclose(tr.actors.v_mps[0], [0.0, 1.4], atol=1e-9)
    drive(tr, 10.0, ego_s, -1.75, ego_speed, t0=t)
    assert tr.frenet()[1][0] == pytest.approx(3.5 + 1.5)  # 1.5 m beyond the far edge
    assert tr.actors.speed_mps[0] == 0.0


def test_vehicles_wait_for_a_crossing_pedestrian(cfg):
    ped = {"kind": "pedestrian", "behaviour": "cross", "side": "right", "ds_m": 100, "speed_mps": 1.0}
    ped |= {"trigger_distance_m": 200}  # walks at once
    npc = {"kind": "vehicle", "behaviour": "keep_lane", "lane": 1, "ds_m": 60, "speed_mps": 12}
    tr = Traffic(make_spec([ped, npc], lanes=2), cfg, CAR, np.random.default_rng(0), None)
    size = tr.actors.size_m
    touching = []

    def watch(t, ego_s):
        s, d = tr.frenet()
        overlap_s = abs(s[1] - s[0]) < (size[0, 0] + size[1, 0]) / 2
        overlap_d = abs(d[1] - d[0]) < (size[0, 1] + size[1, 1]) / 2
        touching.append(overlap_s and overlap_d)

    drive(tr, 6.0, 10.0, -1.75, each=watch)
    s, d = tr.frenet()
    assert (
        bumper_gap(s[1], s[0], 4.5, 0.5) > 0.5 * cfg.min_gap_m and tr.speed_along_road_mps[1] < 1.0
    )  # waits
    drive(tr, 20.0, 10.0, -1.75, t0=6.0, each=watch)
    s, d = tr.frenet()
    assert not any(touching)
    assert s[1] > s[0] + 10.0 and d[0] == pytest.approx(3.5 + 1.5)  # crossed, then the car drove on


def test_pedestrian_waits_for_a_car_in_its_way_which_drives_on(cfg):
    ped = {"kind": "pedestrian", "behaviour": "cross", "side": "right", "ds_m": 100, "speed_mps": 1.4}
    ped |= {"trigger_distance_m": 200}  # walks at once
    parked = {"kind": "obstacle", "model": "car", "lane": 0, "ds_m": 60}
    npc = {
        "kind": "vehicle",
        "behaviour": "keep_lane",
        "lane": 0,
        "ds_m": 99,
        "speed_mps": 3,
    }  # over the path
    tr = Traffic(make_spec([ped, npc, parked], lanes=2), cfg, CAR, np.random.default_rng(0), None)
    touching = []

    def watch(t, ego_s):
        s, d = tr.frenet()
        touching.append(abs(s[1] - s[0]) < 2.5 and abs(d[1] - d[0]) < 1.15)

    drive(tr, 15.0, 10.0, 1.75, each=watch)
    s, d = tr.frenet()
    assert not any(touching) and s[1] > s[0] + 20.0  # the car drove on, the pedestrian let it
    assert d[0] == pytest.approx(3.5 + 1.5)  # and then crossed


def test_pedestrian_does_not_walk_into_a_parked_car(cfg):
    ped = {"kind": "pedestrian", "behaviour": "cross", "side": "right", "ds_m": 100, "speed_mps": 1.4}
    ped |= {"trigger_distance_m": 200}
    parked = {"kind": "vehicle", "behaviour": "static", "lane": 0, "ds_m": 101}
    tr = Traffic(make_spec([ped, parked], lanes=2), cfg, CAR, np.random.default_rng(0), None)
    drive(tr, 10.0, 10.0, 1.75)
    _, d = tr.frenet()
    assert tr.triggered[0] and d[0] > -5.0  # set off
    assert d[1] - 0.9 - 0.25 - d[0] == pytest.approx(0.3, abs=1.4 * DT)  # waits by the car's side
    assert tr.actors.speed_mps[0] == 0.0


# ---------------------------------------------------------------------------- determinism
def run_traffic(cfg, seed):
    traffic = {"count": 12, "ds_min_m": -40, "ds_max_m": 300}
    tr = Traffic(make_spec(traffic=traffic), cfg, CAR, np.random.default_rng(seed), None)
    initial = tr.frenet()[0]
    drive(tr, 10.0, 10.0, -3.5, 8.0)
    return initial, tr.actors


def test_same_seed_same_traffic_other_seed_other_traffic(cfg):
    (s_a, a), (s_b, b), (s_c, _) = run_traffic(cfg, 7), run_traffic(cfg, 7), run_traffic(cfg, 8)
    for key in ("xy_m", "yaw_rad", "speed_mps", "v_mps", "accel_mps2", "rgba"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    np.testing.assert_array_equal(s_a, s_b)
    assert not np.array_equal(s_a, s_c)


def test_copies_and_pickles_go_on_like_the_original(cfg):
    traffic = {"count": 20, "ds_min_m": 20, "ds_max_m": 400, "speed_min_mps": 8, "speed_max_mps": 22}
    actors = [{"kind": "obstacle", "model": "cone", "lane": 1, "ds_m": 300}]  # lane changes under way
    tr = Traffic(make_spec(actors, traffic=traffic), cfg, CAR, np.random.default_rng(2), None)
    t, ego_s = drive(tr, 20.0, 10.0, -3.5, 5.0)
    copies = [copy.deepcopy(tr), pickle.loads(pickle.dumps(tr))]
    for other in [tr, *copies]:
        drive(other, 10.0, ego_s, -3.5, 5.0, t0=t)
    for other in copies:
        np.testing.assert_array_equal(other.actors.xy_m, tr.actors.xy_m)
        np.testing.assert_array_equal(other.target_lane, tr.target_lane)
        assert other.actors is not tr.actors

"""Town traffic: NPCs at lights, stop signs and crossings, oncoming traffic, runners, cut-ins,
pedestrians at their walk signal, random spawning, no collisions in a generated town, determinism."""

import math

import numpy as np
import pytest

from decision.town import Leg
from decision.town_maps import generate_town, parse_town
from sim.config import TrafficConfig
from sim.scenario.spec import FLOW_SOURCE_S_M, TownActorSpec, TownSpec
from sim.traffic.town_spawn import EGO_CLEARANCE_M, VEHICLE_SPACING_M, sidewalk_loop
from sim.traffic.town_traffic import COMMIT_M, MAX_WAIT_S, TownTraffic

DT = 0.05
CAR = (4.5, 1.8, 1.5)
FAR = (-1000.0, -1000.0)  # an ego out of everyone's way


@pytest.fixture(scope="module")
def cfg(conf_values) -> TrafficConfig:
    return TrafficConfig(**conf_values("sim/default.yaml")["traffic"])


def grid_town(control: str = "none", major=(), signals=None, lanes: int = 1):
    """3 x 3 nodes 100 m apart, node id 3 i + j at (100 i, 100 j); node 4 at (100, 100) is the 4-way
    junction under test. Street ids: horizontal ones first (arms of node 4: west 1, east 4), then
    vertical ones (arms of node 4: south 8, north 9)."""
    nodes = [{"id": 3 * i + j, "xy": [100 * i, 100 * j]} for i in range(3) for j in range(3)]
    nodes[4]["control"] = control
    nodes[4]["major"] = list(major)
    streets = [(3 * i + j, 3 * (i + 1) + j) for i in range(2) for j in range(3)]
    streets += [(3 * i + j, 3 * i + j + 1) for i in range(3) for j in range(2)]
    data = {
        "lanes": lanes,
        "nodes": nodes,
        "streets": [{"id": k, "from": a, "to": b} for k, (a, b) in enumerate(streets)],
    }
    if signals:
        data["signals"] = signals
    return parse_town(data)


def leg(town, a: int, b: int) -> Leg:
    st = next(s for s in town.streets.values() if {s.a, s.b} == {a, b})
    return Leg(st.id, st.a == a)


def vehicle(town, nodes, s_m, speed, behaviour="route", lane=0, d_m=None, **kw) -> TownActorSpec:
    legs = [leg(town, a, b) for a, b in zip(nodes, nodes[1:], strict=False)]
    path, crossings = town.corridor(legs)
    d = float(path.lane_offset_m(lane)) if d_m is None else d_m
    return TownActorSpec(
        "vehicle", "car", behaviour, path, s_m, lane, d, speed, kw.pop("target", 0.0), tuple(crossings), **kw
    )


def make(town, actors, cfg, vehicles=0, pedestrians=0, seed=0):
    """The traffic of `town`; the ego's route: east along y = 0 from node 0 (grid_town), or a random
    one (a generated town)."""
    if (
        3 in town.streets
        and {town.streets[0].a, town.streets[0].b} == {0, 3}
        and town.nodes[3].xy_m == (100.0, 0.0)
    ):
        legs = [leg(town, 0, 3)]
    else:
        first = min(town.graph.nodes, key=lambda lg: (lg.street, not lg.forward))
        legs = town.random_legs(np.random.default_rng(0), first, 300.0)
    route = town.route(legs, 5.0, town.leg_free_m(legs[-1]) - 5.0, 10.0)
    return TownTraffic(
        TownSpec(town, tuple(actors), vehicles, pedestrians), route, cfg, CAR, np.random.default_rng(seed)
    )


def run(tr, seconds, t0=0.0, ego=FAR, ego_yaw=0.0, ego_speed=0.0, each=None):
    t = t0
    for _ in range(round(seconds / DT)):
        tr.step(DT, t, ego, ego_yaw, ego_speed, CAR[0], CAR[1])
        t += DT
        if each is not None:
            each(t)
    return t


def overlapping(xy, yaw, size) -> np.ndarray:
    """(n, n) bool: oriented boxes that overlap (separating axis test)."""
    axes = np.stack([np.stack([np.cos(yaw), np.sin(yaw)], 1), np.stack([-np.sin(yaw), np.cos(yaw)], 1)], 1)
    half = size[:, :2] / 2
    d = xy[None, :, :] - xy[:, None, :]
    out = np.ones((len(xy), len(xy)), bool)
    for axis in (axes[:, None, :, :], axes[None, :, :, :]):  # the axes of box i, then of box j
        for k in range(2):
            a = np.broadcast_to(axis[:, :, k, :], d.shape)
            reach_i = (half[:, None, :] * np.abs(np.einsum("ikc,ijc->ijk", axes, a))).sum(-1)
            reach_j = (half[None, :, :] * np.abs(np.einsum("jkc,ijc->ijk", axes, a))).sum(-1)
            out &= np.abs((d * a).sum(-1)) < reach_i + reach_j
    np.fill_diagonal(out, False)
    return out


def test_the_traffic_sees_the_towns_signal_states(cfg):
    town = generate_town(np.random.default_rng(4))  # two signalised junctions
    assert town.signals
    tr = make(town, [], cfg)
    seen = set()
    for k in range(480):
        t = k * 0.25
        tr.step(0.25, t, (-500.0, -500.0), 0.0, 0.0, 4.5, 1.8)
        for sid, state in town.signal_states(t):
            assert tr.signal_state(sid) == state
            seen.add(state)
    assert seen == {"green", "yellow", "red"}


LIGHTS = [
    {"node": 4, "phases": [{"green": [8, 9], "green_s": 10}, {"green": [1, 4], "green_s": 10}]}
]  # x red < 14 s


def test_npc_stops_at_red_and_goes_on_green(cfg):
    town = grid_town("signal", signals=LIGHTS)
    tr = make(town, [vehicle(town, [1, 4, 7], 30.0, 10.0)], cfg)
    stop_s = tr._specs[0].junctions[0].stop_s_m
    run(tr, 13.0)
    assert tr._s[0] + CAR[0] / 2 <= stop_s
    assert tr._s[0] + CAR[0] / 2 > stop_s - 3.0  # at the line, not far before it
    assert tr.actors.speed_mps[0] < 0.1
    run(tr, 15.0, t0=13.0)
    assert tr._s[0] - CAR[0] / 2 > tr._specs[0].junctions[0].exit_s_m


def test_runner_does_not_stop_at_red(cfg):
    town = grid_town("signal", signals=LIGHTS)
    tr = make(town, [vehicle(town, [1, 4, 7], 30.0, 10.0, behaviour="runner", target=10.0)], cfg)
    speeds = []
    run(tr, 8.0, each=lambda t: speeds.append(tr.actors.speed_mps[0]))
    assert tr._s[0] - CAR[0] / 2 > tr._specs[0].junctions[0].exit_s_m  # through on red (t < 14 s)
    assert min(speeds) > 8.0


def test_npc_stops_at_a_stop_sign_then_goes(cfg):
    town = grid_town("stop")
    tr = make(town, [vehicle(town, [1, 4, 7], 30.0, 10.0)], cfg)
    stop_s = tr._specs[0].junctions[0].stop_s_m
    stopped = []
    run(tr, 20.0, each=lambda t: stopped.append(tr.actors.speed_mps[0] < 0.1 and tr._s[0] + 2.25 <= stop_s))
    assert any(stopped)
    assert tr._s[0] - CAR[0] / 2 > tr._specs[0].junctions[0].exit_s_m


def test_npc_waits_for_a_vehicle_crossing_the_box(cfg):
    """Node 4 gives priority to the east-west street, but a runner crosses it north to south:
    the NPC with priority waits for it, and no boxes ever overlap."""
    town = grid_town("stop", major=(1, 4))
    npc = vehicle(town, [1, 4, 7], 40.0, 10.0)
    runner = vehicle(town, [5, 4, 3], 45.0, 10.0, behaviour="runner", target=10.0)
    tr = make(town, [npc, runner], cfg)
    overlaps, slowest = [], []

    def check(t):
        a = tr.actors
        overlaps.append(overlapping(a.xy_m, a.yaw_rad, a.size_m).any())
        slowest.append(a.speed_mps[0])

    run(tr, 20.0, each=check)
    assert not any(overlaps)
    assert min(slowest) < 5.0  # it gave way ...
    assert tr._s[0] - CAR[0] / 2 > npc.junctions[0].exit_s_m  # ... then went on
    assert tr._s[1] - CAR[0] / 2 > runner.junctions[0].exit_s_m


def test_oncoming_npc_passes_the_ego(cfg):
    """The ego drives east in its lane of the street y = 0; an NPC comes west in the other lane."""
    town = grid_town()
    npc = vehicle(town, [6, 3, 0, 1], 10.0, 10.0)
    tr = make(town, [npc], cfg)
    ego_y = float(tr.route.road.lane_offset_m(0))  # the route runs east along y = 0: lane 0 at y < 0
    ego_x, dx, speeds = [30.0], [], []

    def follow(t):
        ego_x[0] += 8.0 * DT
        a = tr.actors
        xy = np.vstack([a.xy_m[:1], [[ego_x[0], ego_y]]])
        box = overlapping(xy, np.array([a.yaw_rad[0], 0.0]), np.vstack([a.size_m[:1], [CAR]]))
        assert not box.any()
        dx.append(a.xy_m[0, 0] - ego_x[0])
        speeds.append(a.speed_mps[0])

    t = 0.0
    for _ in range(round(12.0 / DT)):
        tr.step(DT, t, (ego_x[0], ego_y), 0.0, 8.0, CAR[0], CAR[1])
        t += DT
        follow(t)
    assert dx[0] > 0 > dx[-1]  # it passed the ego
    assert min(speeds[: round(8.0 / DT)]) > 5.0  # without stopping for it


@pytest.mark.parametrize("into_m, passes", [(0.2, True), (0.5, False)])
def test_an_oncoming_npc_drives_past_a_car_just_over_the_line_and_stops_for_one_farther_in(
    cfg, into_m, passes
):
    """The ego stands in its lane of the street y = 0 edged out, its left side `into_m` over the
    centre line: an NPC coming west drives past it 0.2 m in (INTRUSION_TOLERANCE_M), and stops
    before it 0.5 m in."""
    town = grid_town()
    tr = make(town, [vehicle(town, [6, 3, 0, 1], 10.0, 10.0)], cfg)
    ego = (30.0, into_m - CAR[1] / 2)  # lane 0 lies at y < 0
    dx, speeds = [], []

    def record(t):
        a = tr.actors
        xy = np.vstack([a.xy_m[:1], [ego]])
        assert not overlapping(xy, np.array([a.yaw_rad[0], 0.0]), np.vstack([a.size_m[:1], [CAR]])).any()
        dx.append(a.xy_m[0, 0] - ego[0])
        speeds.append(a.speed_mps[0])

    run(tr, 20.0, ego=ego, each=record)
    near = [v for x, v in zip(dx, speeds, strict=True) if -5.0 < x < 40.0]
    if passes:
        assert dx[-1] < 0.0 and min(near) > 5.0  # went by without slowing for it
    else:
        assert 0.0 < dx[-1] < 15.0 and speeds[-1] < 0.1  # waits before it


def test_cut_in_merges_when_triggered(cfg):
    town = grid_town()
    parked = vehicle(
        town, [0, 3, 6], 40.0, 0.0, behaviour="cut_in", d_m=-4.0, target=8.0,
        trigger_xy_m=(45.0, -1.75), trigger_distance_m=20.0, manoeuvre_s=3.0,
    )  # fmt: skip
    tr = make(town, [parked], cfg)
    run(tr, 5.0)
    assert tr.actors.xy_m[0, 1] == pytest.approx(-4.0, abs=1e-6)
    assert tr.actors.speed_mps[0] == 0.0
    run(tr, 6.0, t0=5.0, ego=(30.0, -1.75))
    assert tr._d[0] == pytest.approx(-1.75)
    assert tr.actors.speed_mps[0] > 1.0


def test_pedestrian_crosses_only_on_its_walk_signal(cfg):
    """A pedestrian walks round the street west of node 4 (lights: that arm green first); it steps
    onto the road near node 4 only while that arm has red."""
    lights = [{"node": 4, "phases": [{"green": [1, 4], "green_s": 10}, {"green": [8, 9], "green_s": 10}]}]
    town = grid_town("signal", signals=lights)
    path = sidewalk_loop(town, 1)  # anticlockwise: east along the south side first, to node 4
    walker = TownActorSpec(
        "pedestrian", "pedestrian", "walk", path, path.segments[0].length_m - 6.0, 0, 0.0, 1.4, 1.4
    )
    tr = make(town, [walker], cfg)
    signal = town.approach_control(4, 1)[1]
    entries, on_road = [], [False]

    def watch(t):
        xy = tr.actors.xy_m[0]
        now = bool(town.drivable(xy[None])[0])
        if now and not on_road[0] and np.hypot(*(xy - (100.0, 100.0))) < 20.0:
            entries.append((t, town.signal_state(signal, t - DT)))
        on_road[0] = now

    run(tr, 40.0, each=watch)
    assert entries, "it never crossed at node 4"
    assert entries[0][0] > 13.0  # it waited through the green and yellow
    assert all(state == "red" for _, state in entries)


def test_random_spawn_keeps_apart(cfg):
    town = generate_town(np.random.default_rng(0))
    tr = make(town, [], cfg, vehicles=40, pedestrians=20, seed=1)
    cars = np.array([m == "car" for m in tr.actors.models])
    assert cars.sum() == 40 and (~cars).sum() == 20
    xy = tr.actors.xy_m[cars]
    gaps = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) + np.eye(40) * 1e9
    assert gaps.min() >= VEHICLE_SPACING_M
    route = tr.route
    ex, ey, _ = route.road.to_world(route.start_s_m, route.road.lane_offset_m(route.lane))
    assert np.hypot(xy[:, 0] - ex, xy[:, 1] - ey).min() >= EGO_CLEARANCE_M
    assert not town.drivable(tr.actors.xy_m[~cars]).any()  # pedestrians start on the sidewalks


def test_random_vehicles_turn_only_from_a_lane_that_suits_the_turn(cfg):
    """An NPC keeps its lane along its path, so on streets of two lanes each way every turn of it at
    a junction suits that lane: right turns from the rightmost (0), left turns from the leftmost (1).
    (Turning right from the left lane cuts across a car passing on the right.) The grid's corners
    are bends, not junctions: there the one way on is taken from either lane."""
    town = grid_town(lanes=2)
    tr = make(town, [], cfg, vehicles=30, seed=3)
    turns = {0: set(), 1: set()}
    for spec in tr._specs:
        turns[spec.lane] |= {c.turn for c in spec.junctions if len(town.arms[c.junction_id]) >= 3}
    assert turns[0] <= {"straight", "right"} and turns[1] <= {"straight", "left"}
    assert "right" in turns[0] and "left" in turns[1]  # both lanes are used, and both kinds of turn


def test_no_vehicles_overlap_in_a_generated_town(cfg):
    town = generate_town(np.random.default_rng(0))
    tr = make(town, [], cfg, vehicles=40, pedestrians=20, seed=1)
    cars = np.array([m == "car" for m in tr.actors.models])
    ex, ey, eh = tr.route.road.to_world(tr.route.start_s_m, tr.route.road.lane_offset_m(0))
    ego = (float(ex), float(ey))
    bad, moved = [], []

    def check(t):
        a = tr.actors
        xy = np.vstack([a.xy_m[cars], [ego]])
        box = overlapping(xy, np.append(a.yaw_rad[cars], eh), np.vstack([a.size_m[cars], [CAR]]))
        if box.any():
            bad.append(t)
        moved.append(a.speed_mps[cars].mean())

    run(tr, 60.0, ego=ego, ego_yaw=float(eh), each=check)
    assert not bad
    assert np.mean(moved) > 2.0  # the traffic flows


def test_same_seed_same_trajectories(cfg):
    town = generate_town(np.random.default_rng(5))
    runs = []
    for _ in range(2):
        tr = make(town, [], cfg, vehicles=20, pedestrians=10, seed=7)
        run(tr, 10.0)
        runs.append(
            (tr.actors.xy_m.copy(), tr.actors.yaw_rad.copy(), tr.actors.rgba.copy(), tr.frenet()[0].copy())
        )
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert math.isfinite(runs[0][0].sum())


def test_a_continuous_flow_keeps_coming_its_gaps_kept(cfg):
    """Three vehicles of one flow east through node 4: each one 30 m past the box comes back to the
    source, a gap in [20, 40] m behind the flow's last one; the flow never runs dry nor overlaps."""
    town = grid_town()
    first = vehicle(town, [1, 4, 7], 60.0, 10.0)
    recycle_s = first.junctions[0].exit_s_m + 30.0
    flow = dict(flow=0, recycle_s_m=recycle_s, flow_gap_m=(20.0, 40.0))
    rows = [vehicle(town, [1, 4, 7], s, 10.0, **flow) for s in (60.0, 35.0, 12.0)]
    tr = make(town, rows, cfg)
    comebacks, overlaps = [], []
    last_s = tr._s[:3].copy()

    def check(t):
        a = tr.actors
        overlaps.append(overlapping(a.xy_m, a.yaw_rad, a.size_m).any())
        for i in np.flatnonzero(tr._s[:3] < last_s):  # gone back to the source
            others = np.delete(tr._s[:3], i)
            comebacks.append(others.min() - tr._s[i])
        last_s[:] = tr._s[:3]

    run(tr, 60.0, each=check)
    assert len(comebacks) >= 6  # each vehicle came back at least twice in a minute
    assert all(19.9 <= gap <= 40.1 + 10.0 * DT for gap in comebacks)
    assert not any(overlaps)
    assert (tr._s[:3] < recycle_s).all()


def test_a_continuous_flow_of_one_vehicle_goes_back_to_its_source(cfg):
    """A flow whose cycle held only one of its vehicles (the scenario's others left out): past its
    recycle point it starts again at the flow's source, as often as it gets there."""
    town = grid_town()
    first = vehicle(town, [1, 4, 7], 60.0, 10.0)
    recycle_s = first.junctions[0].exit_s_m + 30.0
    tr = make(
        town,
        [vehicle(town, [1, 4, 7], 60.0, 10.0, flow=0, recycle_s_m=recycle_s, flow_gap_m=(20.0, 40.0))],
        cfg,
    )
    starts = []
    last = [tr._s[0]]

    def check(t):
        if tr._s[0] < last[0]:
            starts.append(tr._s[0])
        last[0] = tr._s[0]

    run(tr, 60.0, each=check)
    assert len(starts) >= 2  # (each seen one step on from the source)
    assert all(FLOW_SOURCE_S_M <= s <= FLOW_SOURCE_S_M + 11.0 * DT for s in starts)


@pytest.mark.parametrize("yields", [True, False])
def test_a_vehicle_keeping_its_right_of_way_does_not_brake_for_an_ego_cutting_across(cfg, yields):
    """The ego stands across the east-west street at node 4, heading north: an NPC that yields stops
    for it; one that keeps its right of way (a scenario flow) drives on. Both stop for an ego standing
    in their lane, heading their way."""
    town = grid_town()
    npc = vehicle(town, [1, 4, 7], 40.0, 10.0, yields=yields)
    tr = make(town, [npc], cfg)
    run(tr, 8.0, ego=(100.0, 100.0), ego_yaw=math.pi / 2)
    assert (tr.actors.speed_mps[0] < 0.5) == yields
    tr = make(town, [npc], cfg)
    run(tr, 12.0, ego=(100.0, 100.0 - 1.75), ego_yaw=0.0)
    assert tr.actors.speed_mps[0] < 0.5 and tr.actors.xy_m[0, 0] < 100.0 - CAR[0]


def test_a_pedestrian_does_not_walk_into_a_car_standing_on_its_crosswalk(cfg):
    """The ego stands across the crossing a pedestrian takes at its walk signal: the pedestrian
    stops short of the car's side, and crosses once the car has gone."""
    lights = [{"node": 4, "phases": [{"green": [1, 4], "green_s": 10}, {"green": [8, 9], "green_s": 10}]}]
    town = grid_town("signal", signals=lights)
    path = sidewalk_loop(town, 1)
    walker = TownActorSpec(
        "pedestrian", "pedestrian", "walk", path, path.segments[0].length_m - 6.0, 0, 0.0, 1.4, 1.4
    )
    tr = make(town, [walker], cfg)
    start, end, _, centre = tr.walkers._next_crossing()
    heading = float(path.to_world(0.5 * (start[0] + end[0]), 0.0)[2])
    ego, ego_yaw = (centre[0].real, centre[0].imag), heading + math.pi / 2  # across its way
    inside, waited = [], []

    def watch(t):
        rel = (complex(*tr.actors.xy_m[0]) - complex(*ego)) * np.exp(-1j * ego_yaw)
        inside.append(abs(rel.real) < CAR[0] / 2 and abs(rel.imag) < CAR[1] / 2)
        waited.append(tr.walkers.on_road[0] and tr.walkers.speed_mps[0] == 0.0)

    t = run(tr, 40.0, ego=ego, ego_yaw=ego_yaw, each=watch)
    assert any(waited) and not any(inside)  # it stepped onto the road, then stopped short of the car
    assert tr.walkers.s_m[0] < end[0]
    run(tr, 40.0, t0=t)
    assert tr.walkers._passed[0] > 0  # across, once the car had gone


def route_through_node_4(town, cfg, actors):
    """The traffic of `town` with the ego's route east through node 4 (from node 1 to node 7)."""
    legs = [leg(town, 1, 4), leg(town, 4, 7)]
    route = town.route(legs, 5.0, town.leg_free_m(legs[-1]) - 5.0, 10.0)
    return TownTraffic(TownSpec(town, tuple(actors), 0, 0), route, cfg, CAR, np.random.default_rng(0)), route


def test_at_an_all_way_stop_an_npc_lets_the_ego_go_first_however_long_it_stands(cfg):
    """The ego has stopped at its line of node 4 (all-way stop); an NPC from the south stops at
    its own after it, and waits for the ego past its impatience (MAX_WAIT_S), until the ego has gone."""
    town = grid_town("stop")
    npc = vehicle(town, [3, 4, 5], 40.0, 8.0)
    tr, route = route_through_node_4(town, cfg, [npc])
    j = route.junctions[0]
    x, y, yaw = (
        float(a) for a in route.road.to_world(j.stop_s_m - 1.0 - CAR[0] / 2, route.road.lane_offset_m(0))
    )
    stop_s = npc.junctions[0].stop_s_m
    fronts = []
    t = run(
        tr, MAX_WAIT_S + 15.0, ego=(x, y), ego_yaw=yaw, each=lambda t: fronts.append(tr._s[0] + CAR[0] / 2)
    )
    assert fronts[-1] > stop_s - 3.0  # at its line ...
    assert max(fronts) <= stop_s + COMMIT_M  # ... never into the box
    run(tr, 15.0, t0=t)  # the ego has gone
    assert tr._s[0] - CAR[0] / 2 > npc.junctions[0].exit_s_m


def test_a_left_turn_at_a_light_against_an_endless_oncoming_flow_goes_at_the_next_green(cfg):
    """North-south green first: an NPC from the south turning left (west) meets a continuous flow from
    the north with gaps of 2-3 s, shorter than it accepts. Its impatience clock runs on through the
    red, so at the next green it goes first; nobody overlaps."""
    town = grid_town("signal", signals=LIGHTS)
    turner = vehicle(town, [3, 4, 1], 60.0, 8.0)
    first = vehicle(town, [5, 4, 3], 70.0, 10.0)
    flow = dict(flow=0, recycle_s_m=first.junctions[0].exit_s_m + 30.0, flow_gap_m=(20.0, 30.0))
    oncoming = [vehicle(town, [5, 4, 3], s, 10.0, **flow) for s in (70.0, 45.0, 20.0)]
    tr = make(town, [turner, *oncoming], cfg)
    overlaps = []
    run(
        tr,
        45.0,
        each=lambda t: overlaps.append(
            overlapping(tr.actors.xy_m, tr.actors.yaw_rad, tr.actors.size_m).any()
        ),
    )
    assert tr._s[0] - CAR[0] / 2 > turner.junctions[0].exit_s_m  # turned within the second green
    assert not any(overlaps)


def test_a_cleared_ego_entry_starts_no_vehicle_between_the_ego_and_its_junction(cfg):
    """clear_ego_entry (CARLA's HandleJunctionScenario): no background car leads the ego into its
    first junction; the oncoming lane and the streets beyond still get theirs."""
    town = grid_town(lanes=2)
    legs = [leg(town, 0, 3), leg(town, 3, 6)]  # east along y = 0 through the T junction at node 3
    route = town.route(legs, 5.0, 50.0, 10.0)
    exit_s = route.junctions[0].exit_s_m

    def on_entry(clear: bool) -> tuple[int, int]:
        spec = TownSpec(town, (), 40, 0, clear_ego_entry=clear)
        tr = TownTraffic(spec, route, cfg, CAR, np.random.default_rng(2))
        s, d = route.road.to_frenet(tr.actors.xy_m)
        ahead = (s > route.start_s_m) & (s < exit_s)
        return int(np.count_nonzero(ahead & (d < 0.0))), int(np.count_nonzero(ahead & (d > 0.0)))

    own, oncoming = on_entry(clear=False)
    assert own > 0 and oncoming > 0  # (the seed places some there)
    own, oncoming = on_entry(clear=True)
    assert own == 0 and oncoming > 0


def test_vehicles_decide_ten_times_a_second_and_stop_where_deciding_every_step_stops_them(cfg, monkeypatch):
    """Leaders and junction rules are found every DECIDE_S; in between a vehicle's gap shrinks by its
    own travel less its leader's. A car at 12 m/s coming up on a stopped one and one behind a red
    light come to rest within 0.2 m of where deciding at every step brings them."""
    import sim.traffic.town_traffic as town_traffic

    town = grid_town("signal", signals=LIGHTS)
    rest = {}
    for every_step in (True, False):
        if every_step:
            monkeypatch.setattr(town_traffic, "DECIDE_S", DT)
        else:
            monkeypatch.undo()
        actors = [
            vehicle(town, [1, 4, 7], 60.0, 0.0, behaviour="static"),
            vehicle(town, [1, 4, 7], 5.0, 12.0),
            vehicle(town, [7, 4, 1], 20.0, 12.0),  # towards the red light from the other side
        ]
        tr = make(town, actors, cfg)
        calls = []

        def counted(leaders=tr._leaders, calls=calls):
            calls.append(1)
            return leaders()

        monkeypatch.setattr(tr, "_leaders", counted)
        run(tr, 12.0)
        assert len(calls) == (240 if every_step else 120)
        assert tr.actors.speed_mps[1:].max() < 0.05  # both at rest
        rest[every_step] = tr._s.copy()
    assert rest[False][1:] == pytest.approx(rest[True][1:], abs=0.2)
    assert CAR[0] < rest[True][0] - rest[True][1] < CAR[0] + 5.0  # just behind the stopped car
    stop_s = tr._specs[2].junctions[0].stop_s_m
    assert stop_s - 5.0 < rest[True][2] + CAR[0] / 2 < stop_s  # at the red light's line

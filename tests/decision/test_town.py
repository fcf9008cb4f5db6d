"""Towns: the street graph, routes as corridor roads, signals, bad maps, the generator."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from decision.town import Leg, MapError
from decision.town_maps import generate_town, parse_town

CROSSING = yaml.safe_load((Path(__file__).parents[2] / "conf/town/crossing.yaml").read_text())


def small_map(**changes) -> dict:
    """A 2 x 1 grid: nodes 0-1-2 along y = 0 and 3-4-5 along y = 100."""
    nodes = [{"id": i, "xy": [100 * (i % 3), 100 * (i // 3)]} for i in range(6)]
    nodes[1]["control"], nodes[4]["control"] = "signal", "stop"
    streets = [
        {"id": 0, "from": 0, "to": 1},
        {"id": 1, "from": 1, "to": 2},
        {"id": 2, "from": 3, "to": 4},
        {"id": 3, "from": 4, "to": 5},
        {"id": 4, "from": 0, "to": 3},
        {"id": 5, "from": 1, "to": 4},
        {"id": 6, "from": 2, "to": 5},
    ]
    data = {"lanes": 1, "nodes": nodes, "streets": streets}
    data.update(changes)
    return data


def test_corridor_follows_the_streets_through_turns():
    town = parse_town(CROSSING)
    # West arm towards the crossing, then left (north).
    legs = town.legs_through(Leg(2, False), ["left"])
    assert legs[-1] == Leg(1, True)
    route = town.route(legs, 20.0, 60.0, 12.0)
    road = route.road
    h = town.half_size_m[0]
    x, y, heading = road.pose(route.start_s_m)
    assert (x, y) == pytest.approx((-160 + town.half_size_m[3] + 20.0, 0.0))
    assert heading == pytest.approx(0.0)
    (crossing,) = route.junctions
    assert crossing.turn == "left" and crossing.control == "signal"
    # Entering the box on the street's centre line, leaving it heading north.
    assert road.pose(crossing.entry_s_m)[:2] == pytest.approx((-h, 0.0), abs=0.01)
    x, y, heading = road.pose(crossing.exit_s_m)
    assert (x, y) == pytest.approx((0.0, h), abs=0.01) and heading == pytest.approx(math.pi / 2, abs=0.01)
    # Lane 0 drives on the right: south of the centre line heading east; lane 1 is oncoming.
    assert road.to_world(50.0, road.lane_offset_m(0))[1] < 0 and road.is_oncoming(1)
    assert crossing.stop_s_m < crossing.entry_s_m


def test_a_crossing_lists_the_lanes_coming_in_from_the_other_arms():
    town = parse_town(CROSSING)
    (crossing,) = town.route(town.legs_through(Leg(2, False), ["left"]), 20.0, 60.0, 12.0).junctions
    h, w = town.half_size_m[0], town.lane_width_m
    by_side = {a.side: a for a in crossing.approaches}
    assert len(crossing.approaches) == 3 * town.lanes and set(by_side) == {"left", "right", "ahead"}
    # Driving east into the box at (0, 0): from the left (north) traffic heads south, keeping right
    # (west of the centre line); from the right it heads north east of it; ahead it heads west, north.
    left, right, ahead = by_side["left"], by_side["right"], by_side["ahead"]
    assert left.xy_m == pytest.approx((-w / 2, h)) and left.heading_rad == pytest.approx(-math.pi / 2)
    assert right.xy_m == pytest.approx((w / 2, -h)) and right.heading_rad == pytest.approx(math.pi / 2)
    assert ahead.xy_m == pytest.approx((h, w / 2)) and abs(ahead.heading_rad) == pytest.approx(math.pi)
    # Street 1 runs north to node 2: the lane runs back from the box to node 2's box.
    assert left.length_m == pytest.approx(160.0 - h - town.half_size_m[2])
    assert left.speed_limit_mps == town.streets[1].speed_limit_mps


def test_signal_phases_cycle_green_yellow_red():
    town = parse_town(CROSSING)
    east_west, north_south = 0, 1
    assert town.signal_state(east_west, 5.0) == "green" and town.signal_state(north_south, 5.0) == "red"
    assert town.signal_state(east_west, 15.0) == "yellow"
    assert town.signal_state(east_west, 17.5) == "red" and town.signal_state(north_south, 17.5) == "red"
    assert town.signal_state(north_south, 20.0) == "green"
    cycle = town.signals[0].cycle_s
    assert town.signal_state(north_south, 20.0 + cycle) == "green"


def test_routes_to_a_goal_and_reject_impossible_turns():
    town = parse_town(small_map())
    legs = town.legs_to(Leg(0, True), 6)
    assert legs[0] == Leg(0, True) and legs[-1].street == 6
    assert town.turns_of(legs) == ["straight", "left"]
    with pytest.raises(MapError, match="turn 0 .right. is not possible at node 1"):
        town.legs_through(Leg(0, True), ["right"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"streets": [{"id": 0, "from": 0, "to": 1}, {"id": 1, "from": 0, "to": 9}]}, "names node 9"),
        (
            {"streets": [{"id": 0, "from": 0, "to": 1}, {"id": 1, "from": 1, "to": 2}]},
            "node 3 is not on any street",
        ),
        ({"nodes": [{"id": i, "xy": [100 * i, 0]} for i in range(3)]}, "ends at node 0 with no way on"),
        ({"signals": [{"node": 1, "phases": [{"green": [0, 1, 7]}]}]}, "names approach street 7"),
        (
            {"signals": [{"node": 1, "phases": [{"green": [0, 1]}]}]},
            "no phase at node 1 gives green to street 5",
        ),
        ({"lanes": 5}, "lanes=5 is out of range"),
        ({"move": [18, 0]}, "street 0 is too short"),
        ({"bogus": 1}, "town.bogus is not a key"),
    ],
)
def test_bad_maps_get_one_line(change, message):
    data = small_map()
    if "nodes" in change:
        data = {"lanes": 1, "nodes": change["nodes"], "streets": data["streets"][:2]}
    elif "move" in change:  # nodes 1 and 4 moved near nodes 0 and 3
        data["nodes"][1]["xy"], data["nodes"][4]["xy"] = change["move"], [change["move"][0], 100]
    else:
        data.update(change)
    with pytest.raises(MapError, match=message) as err:
        parse_town(data)
    assert "\n" not in str(err.value)


def test_overlapping_streets_are_rejected():
    data = small_map()
    data["nodes"].append({"id": 6, "xy": [50, -50]})
    data["nodes"].append({"id": 7, "xy": [50, 50]})
    data["streets"].append({"id": 7, "from": 6, "to": 7})  # crosses street 0 away from a node
    with pytest.raises(MapError, match="cross away from a node"):
        parse_town(data)
    twice = small_map()
    twice["streets"].append({"id": 7, "from": 1, "to": 0})  # a second street between nodes 0 and 1
    with pytest.raises(MapError, match="streets 0 and 7 overlap at node 0"):
        parse_town(twice)


def test_generator_is_seeded_connected_and_varied():
    a, b = generate_town(np.random.default_rng(5)), generate_town(np.random.default_rng(5))
    assert a.streets == b.streets and a.nodes == b.nodes
    towns = [generate_town(np.random.default_rng(seed)) for seed in range(8)]
    assert len({t.lanes for t in towns}) == 2
    assert len({len(t.streets) for t in towns}) > 1  # some streets dropped: T junctions
    assert {"signal", "stop"} <= {n.control for t in towns for n in t.nodes.values()}
    for t in towns:  # every route stays on the drivable area
        legs = t.random_legs(np.random.default_rng(1), Leg(0, True), 400)
        road = t.route(legs, 5.0, 10.0, 10.0).road
        s = np.arange(0.0, road.length_m, 2.0)
        x, y, _ = road.to_world(s, road.lane_offset_m(0))
        assert t.drivable(np.stack([x, y], axis=1)).all()

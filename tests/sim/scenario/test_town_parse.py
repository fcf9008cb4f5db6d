"""Town scenarios: the route through the map, actors placed relative to it, bad keys."""

import numpy as np
import pytest

from sim.scenario.parse import parse_scenario
from sim.scenario.spec import ScenarioError
from sim.world.town_paint import roadside, town_paint


def scenario(**town) -> dict:
    base = {"map": "crossing", "route": {"street": 2, "start_from": 3, "turns": ["left"], "goal_m": 60}}
    base.update(town)
    return {
        "name": "t",
        "duration_s": 60,
        "abilities": ["traffic_signs"],
        "town": base,
        "ego": {"s_m": 20, "speed_mps": 6, "target_speed_mps": 12},
    }


def test_actors_are_placed_relative_to_the_route():
    actors = [
        {"kind": "vehicle", "place": "arm", "arm": "opposite", "distance_m": 40, "speed_mps": 10},
        {
            "kind": "vehicle",
            "place": "arm",
            "arm": "right",
            "turn": "left",
            "distance_m": 30,
            "behaviour": "runner",
        },
        {
            "kind": "pedestrian",
            "place": "crosswalk",
            "arm": "exit",
            "speed_mps": 1.4,
            "trigger_distance_m": 30,
        },
        {"kind": "obstacle", "model": "car", "place": "route", "ds_m": 50, "lateral_offset_m": 0.5},
        {"kind": "vehicle", "place": "oncoming", "ds_m": 120, "speed_mps": 8},
    ]
    spec = parse_scenario(scenario(actors=actors), np.random.default_rng(0))
    assert spec.abilities == ("traffic_signs",) and spec.route.junctions[0].turn == "left"
    h = spec.town.town.half_size_m[0]
    opposite, runner, walker, parked, oncoming = spec.town.actors
    x, y, heading = opposite.path.to_world(opposite.s_m, opposite.d_m)
    assert (x, y) == pytest.approx((h + 40, 1.75)) and heading == pytest.approx(np.pi)  # east arm, westbound
    x, y, heading = runner.path.to_world(runner.s_m, runner.d_m)
    assert (x, y) == pytest.approx((1.75, -h - 30)) and runner.trigger_xy_m == (0.0, 0.0)  # south arm
    assert walker.path.pose(0.0)[:2] == pytest.approx((5.0, h + 1.5))  # the north crosswalk, east kerb
    assert parked.path is spec.route.road and parked.d_m == pytest.approx(-1.25)
    x, y, heading = oncoming.path.to_world(oncoming.s_m, oncoming.d_m)
    ego_x = spec.route.road.pose(spec.route.start_s_m + 120)[0]
    assert x == pytest.approx(ego_x) and y == pytest.approx(1.75) and abs(heading) == pytest.approx(np.pi)


@pytest.mark.parametrize(
    "town, message",
    [
        ({"map": "nowhere"}, "town.map='nowhere' is not a town map"),
        (
            {"route": {"street": 2, "turns": ["left", "left", "sideways"]}},
            "turn 2 .sideways. is not possible",
        ),
        ({"actors": [{"kind": "vehicle", "place": "arm", "junction": 3}]}, "crosses 1 junction"),
        ({"actors": [{"kind": "vehicle", "model": "tank"}]}, "model='tank'"),
        ({"generate": {"blocks": [2, 2]}}, "needs one of map"),
    ],
)
def test_bad_town_scenarios_get_one_line(town, message):
    with pytest.raises(ScenarioError, match=message) as err:
        parse_scenario(scenario(**town), np.random.default_rng(0))
    assert "\n" not in str(err.value)


def test_a_continuous_flow_fills_its_cycle_spaced_and_the_lights_start_at_the_offset():
    flow = {"kind": "vehicle", "place": "arm", "arm": "opposite", "distance_m": 5, "speed_mps": 10}
    flow |= {"count": 8, "spacing_m": 30, "max_spacing_m": 60, "continuous": True}
    spec = parse_scenario(scenario(actors=[flow], signal_offset_s=7.5), np.random.default_rng(0))
    actors = spec.town.actors
    recycle = actors[0].junctions[0].exit_s_m + 60.0
    assert all(a.flow == 0 and a.recycle_s_m == recycle and a.flow_gap_m == (30.0, 60.0) for a in actors)
    s = np.sort([a.s_m for a in actors])
    # The cycle (source at 10 m to the recycle point) holds the vehicles that fit it, 30 m apart at least;
    # the ones beyond the arm have already gone through the junction.
    assert 3 <= len(actors) < 8 and np.diff(s).min() >= 30.0
    assert s[0] >= 10.0 and s[-1] < recycle and s[-1] > actors[0].junctions[0].stop_s_m
    assert {plan.offset_s for plan in spec.town.town.signals.values()} == {7.5}


def test_a_platoon_starts_close_and_only_the_vehicles_that_come_back_keep_the_drawn_gaps():
    flow = {"kind": "vehicle", "place": "arm", "arm": "opposite", "distance_m": 20, "speed_mps": 10}
    flow |= {"count": 4, "spacing_m": 22, "max_spacing_m": 150, "continuous": True}
    for platoon, gaps in ((True, {22.0}), (False, None)):
        actors = parse_scenario(
            scenario(actors=[flow | {"platoon": platoon}]), np.random.default_rng(0)
        ).town.actors
        s = np.sort([a.s_m for a in actors])
        assert all(a.flow_gap_m == (22.0, 150.0) for a in actors)
        if gaps:  # the four one behind the other, 22 m apart
            assert len(actors) == 4 and set(np.round(np.diff(s), 6)) == gaps
        else:  # drawn gaps: wider, and the cycle holds fewer of them
            assert np.diff(s).min() > 22.0


@pytest.mark.parametrize(
    "actor, message",
    [
        (
            {"place": "arm", "count": 3, "platoon": True},
            "platoon starts a continuous flow",
        ),
        (
            {"place": "route", "count": 3, "continuous": True},
            "continuous flow is of vehicles placed on an arm",
        ),
        (
            {"place": "arm", "count": 3, "spacing_m": 30, "max_spacing_m": 20},
            "max_spacing_m=20 is below spacing_m=30",
        ),
    ],
)
def test_bad_flows_get_one_line(actor, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(scenario(actors=[{"kind": "vehicle", **actor}]), np.random.default_rng(0))


def test_generated_town_scenario_is_seeded():
    data = scenario(generate={"blocks": [2, 2]}, route={"length_m": 400})
    del data["town"]["map"]
    a, b = (parse_scenario(data, np.random.default_rng(3)) for _ in range(2))
    assert a.town.town.streets == b.town.town.streets and a.route.road.length_m == b.route.road.length_m
    assert a.route.road.length_m >= 400


def test_town_paint_and_roadside_stay_off_the_streets():
    spec = parse_scenario(scenario(), np.random.default_rng(0))
    town = spec.town.town
    paint = town_paint(town)
    assert len(paint.asphalt) == len(town.streets) + len(town.nodes)
    assert paint.white and paint.yellow and paint.sidewalk
    buildings, trees = roadside(town, np.random.default_rng(0))
    assert buildings and trees
    centres = np.array([(b[0], b[1]) for b in buildings])
    assert not town.drivable(centres).any() and not town.drivable(np.array(trees)).any()


def test_highway_scenarios_carry_their_abilities(conf_values):
    data = conf_values("scenario/static_obstacle.yaml")
    assert parse_scenario(data, np.random.default_rng(0)).abilities == ("overtaking",)
    with pytest.raises(ScenarioError, match="'flying' is not one of merging"):
        parse_scenario({**data, "abilities": ["flying"]}, np.random.default_rng(0))

"""The scenario schema (sim/scenario/schema.py) as the parser reads it (sim/scenario/parse.py):
types, ranges, bounds, unknown keys, names, defaults, and the order of the seeded draws."""

import copy
import math

import numpy as np
import pytest

from sim.scenario.parse import parse_scenario
from sim.scenario.schema import MAX_ACTORS, MAX_DURATION_S, PAVEMENT_OFFSET_M, EgoEntry, RoadEntry
from sim.scenario.spec import ScenarioError, TrafficSpec

BASE = {
    "name": "mine",
    "duration_s": 30,
    "road": {"lanes": 2, "speed_limit_mps": 20, "segments": [{"type": "straight", "length_m": 400}]},
    "ego": {"route_length_m": 200, "target_speed_mps": 15},
}


def scenario(**changes) -> dict:
    """BASE with changes at dotted keys, e.g. scenario(**{"road.lanes": 3})."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def parse(data, seed: int = 0):
    return parse_scenario(data, np.random.default_rng(seed))


def test_the_smallest_scenario_takes_the_schema_defaults():
    spec = parse(BASE)
    assert spec.road.lane_width_m == RoadEntry.__dataclass_fields__["lane_width_m"].default == 3.5
    assert spec.route.start_s_m == EgoEntry.__dataclass_fields__["s_m"].default
    assert spec.route.lane == 0 and spec.ego_speed_mps == 0.0 and spec.description == ""
    assert spec.actors == () and spec.traffic == TrafficSpec()


@pytest.mark.parametrize(
    "key, value, word",
    [
        ("duration_s", 0, "duration_s"),
        ("duration_s", MAX_DURATION_S + 1, "duration_s"),
        ("duration_s", 1e12, "duration_s"),
        ("duration_s", math.inf, "duration_s"),
        ("duration_s", "long", "duration_s"),
        ("duration_s", True, "duration_s"),
        ("duration_s", [10, 1e12], "duration_s"),  # a range must lie within the bounds as a whole
        ("duration_s", [20, 10], "high < low"),
        ("duration_s", [1, 2, 3], "duration_s"),
        ("road.lanes", 0, "lanes"),
        ("road.lanes", 2.5, "integer"),
        ("road.lane_width_m", 1.0, "lane_width_m"),
        ("road.speed_limit_mps", 500, "speed_limit_mps"),
        ("road.segments", [], "segments"),
        ("road.segments", [{"type": "spiral", "length_m": 10}], "spiral"),
        ("road.segments", [{"type": "arc", "length_m": 100}], "radius_m"),
        ("road.segments", [{"type": "arc", "length_m": 400, "radius_m": 5}], "too tight"),
        ("road.segments", [{"type": "straight", "length_m": 400, "radius_m": 50}], "radius_m"),
        ("road.segments", [{"type": "straight", "length_m": 10_000}] * 3, "road"),
        ("ego.lane", 2, "ego.lane"),
        ("ego.route_length_m", 1000, "route_length_m"),
        ("ego.target_speed_mps", -5, "target_speed_mps"),
        ("traffic.count", 1_000_000, "count"),
        ("traffic.count", 1e6, "count"),
        ("traffic.ds_min_m", 300, "ds_max_m"),  # above ds_max_m
        ("traffic.min_spacing_m", 0, "min_spacing_m"),
        ("clutter.cones", 1000, "cones"),
        ("clutter.ds_m", 5, "ds_m"),
        ("clutter.cones_offset_m", [-1, 2], "cones_offset_m"),
        ("name", "../../x", "name"),
        ("name", "a b", "name"),
        ("name", "", "name"),
        ("name", 7, "name"),
    ],
)
def test_values_out_of_type_or_range_name_the_key(key, value, word):
    with pytest.raises(ScenarioError, match=word) as err:
        parse(scenario(**{key: value}))
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize(
    "key", ["no_such", "road.no_such", "ego.no_such", "traffic.no_such", "clutter.trees"]
)
def test_unknown_keys_are_named(key):
    with pytest.raises(ScenarioError, match=f"unknown config key 'scenario.{key}'"):
        parse(scenario(**{key: 1}))


@pytest.mark.parametrize("key", ["name", "duration_s", "road", "ego", "road.segments", "ego.route_length_m"])
def test_missing_keys_are_named(key):
    data = copy.deepcopy(BASE)
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node[part]
    del node[last]
    with pytest.raises(ScenarioError, match=f"scenario.{key} is missing"):
        parse(data)


@pytest.mark.parametrize(
    "actor, word",
    [
        ({"kind": "tank", "ds_m": 20}, "kind"),
        ({"kind": "vehicle", "model": "cone", "ds_m": 20}, "model"),
        ({"kind": "obstacle", "behaviour": "cut_in", "ds_m": 20}, "behaviour"),
        ({"kind": "vehicle", "lane": 5, "ds_m": 20}, "lane"),
        ({"kind": "vehicle", "ds_m": 5000}, "ds_m"),
        ({"kind": "vehicle"}, "ds_m is missing"),
        (
            {"kind": "vehicle", "behaviour": "cut_in", "ds_m": 20, "manoeuvre_s": 2, "target_lane": 0},
            "trigger_gap_m",
        ),
        (
            {"kind": "vehicle", "behaviour": "brake", "ds_m": 20, "trigger_time_s": 3, "decel_mps2": 0},
            "decel_mps2",
        ),
        ({"kind": "vehicle", "side": "left", "ds_m": 20}, "side"),
        ({"kind": "pedestrian", "side": "up", "ds_m": 20}, "side"),
        ({"kind": "vehicle", "ds_m": 20, "colour": "red"}, "colour"),
    ],
)
def test_bad_actors_name_the_key(actor, word):
    with pytest.raises(ScenarioError, match=word):
        parse(scenario(actors=[actor]))


def test_actor_defaults_follow_its_kind():
    car, cone, walker = parse(
        scenario(
            actors=[
                {"kind": "vehicle", "lane": 1, "ds_m": 30, "speed_mps": 9},
                {"kind": "obstacle", "ds_m": 40},
                {"kind": "pedestrian", "behaviour": "static", "side": "right", "ds_m": 50},
            ]
        )
    ).actors
    assert (car.model, car.behaviour, car.target_speed_mps, car.target_lane) == ("car", "idm", 9.0, -1)
    assert math.isnan(car.trigger_gap_m)
    assert (cone.model, cone.behaviour, cone.speed_mps) == ("cone", "static", 0.0)
    assert walker.d_m == pytest.approx(-(3.5 + PAVEMENT_OFFSET_M))


def test_too_many_actors_are_refused():
    actors = [{"kind": "obstacle", "lane": 0, "lateral_offset_m": -2.5, "ds_m": 1}] * MAX_ACTORS
    with pytest.raises(ScenarioError, match="actors"):
        parse(scenario(actors=actors, **{"traffic.count": 5}))


def test_ranges_are_drawn_in_the_schema_order():
    """Top-level keys, then road, ego, actors (each in its field order): the draws of a seed must
    not move, or every shipped run would change."""
    data = scenario(
        duration_s=[20.0, 40.0],
        **{
            "road.speed_limit_mps": [15, 25],
            "ego.speed_mps": [1.0, 2.0],
            "ego.target_speed_mps": [10.0, 12.0],
        },
        actors=[{"kind": "vehicle", "lane": [0, 1], "ds_m": [20.0, 30.0], "speed_mps": [5.0, 6.0]}],
    )
    rng = np.random.default_rng(7)
    want = [rng.uniform(20, 40), rng.integers(15, 26), rng.uniform(1, 2), rng.uniform(10, 12)]
    want += [rng.integers(0, 2), rng.uniform(20, 30), rng.uniform(5, 6)]
    spec = parse(data, seed=7)
    (actor,) = spec.actors
    got = [spec.duration_s, spec.road.speed_limit_mps, spec.ego_speed_mps, spec.route.cruise_speed_mps]
    got += [actor.lane, actor.s_m - spec.route.start_s_m, actor.speed_mps]
    assert got == pytest.approx([float(v) for v in want])
    assert isinstance(actor.lane, int)  # integer ranges stay integers

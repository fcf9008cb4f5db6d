"""Scenarios: read a scenario description (conf/scenario/*.yaml) against its schema
(sim/scenario/schema.py), sample its ranges from the seed, and build a `ScenarioSpec`.

Any number in a scenario may be written as a range `[low, high]`; it is drawn uniformly from the
seeded generator (integers stay integers). Positions of actors are given relative to the ego's
start (`ds_m` ahead along the road) and by lane; they are turned into absolute road coordinates
here. An optional `clutter` mapping adds static roadside pedestrians, cones, barriers and parked
cars at random along the route (`bulletdrive data` uses it to vary the camera data).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass

import numpy as np

from decision.route import Road, Route, Segment
from sim.config import Bounds, bounds_of, out_of_range
from sim.scenario.schema import (
    ACTOR_KINDS,
    BEHAVIOURS,
    CLUTTER_KINDS,
    MAX_ACTORS,
    MAX_ROAD_LENGTH_M,
    MAX_SEGMENTS,
    NEEDS,
    PAVEMENT_OFFSET_M,
    ActorEntry,
    ClutterEntry,
    ScenarioEntry,
)
from sim.scenario.spec import ActorSpec, ScenarioError, ScenarioSpec, TrafficSpec
from sim.scenario.town_schema import ABILITIES


def parse_scenario(data: dict, rng: np.random.Generator) -> ScenarioSpec:
    """Turn a scenario mapping (plain dict from the YAML) into a sampled ScenarioSpec."""
    if isinstance(data, dict) and "town" in data:
        from sim.scenario.town_parse import parse_town_scenario  # here: town_parse imports this module

        return parse_town_scenario(data, rng)
    entry = read(ScenarioEntry, data, "", rng)
    check_abilities(entry.abilities)
    road = _road(entry)
    ego = entry.ego
    if ego.lane >= road.lane_count:
        raise ScenarioError(
            f"scenario.ego.lane={ego.lane} is out of range: the road has {road.lane_count} lanes"
        )
    if ego.s_m + ego.route_length_m > road.length_m:
        raise ScenarioError(
            f"scenario.ego.route_length_m={ego.route_length_m}: the route ends past the road ({road.length_m:.0f} m)"
        )
    route = Route(
        road, float(ego.s_m), float(ego.s_m + ego.route_length_m), int(ego.lane), float(ego.target_speed_mps)
    )
    actors = [_actor(a, f"actors[{i}]", road, float(ego.s_m)) for i, a in enumerate(entry.actors)]
    _check_traffic(entry.traffic)
    if entry.clutter is not None:
        actors += _clutter(entry.clutter, road, route, rng)
    if len(actors) + entry.traffic.count > MAX_ACTORS:
        raise ScenarioError(
            f"scenario: {len(actors) + entry.traffic.count} actors (scripted, traffic and clutter) "
            f"is out of range: <= {MAX_ACTORS}"
        )
    return ScenarioSpec(
        name=entry.name,
        description=entry.description,
        duration_s=float(entry.duration_s),
        road=road,
        route=route,
        ego_speed_mps=float(ego.speed_mps),
        actors=tuple(actors),
        traffic=entry.traffic,
        abilities=tuple(entry.abilities),
    )


def check_abilities(names: list[str]) -> None:
    bad = sorted(set(names) - set(ABILITIES))
    if bad:
        raise ScenarioError(f"scenario.abilities: {bad[0]!r} is not one of {', '.join(ABILITIES)}")


# ---------------------------------------------------------------------------- reading
def read(schema: type, data, path: str, rng: np.random.Generator):
    """An instance of the schema dataclass from a mapping: unknown keys, types and bounds checked,
    numbers given as ranges drawn from `rng` in the schema's field order. Missing optional keys take
    the schema's defaults. `path`: where the mapping sits in the scenario, for messages."""
    where = f"scenario.{path}" if path else "scenario"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {data!r}")
    names = [f.name for f in fields(schema)]
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        raise ScenarioError(f"unknown config key '{where}.{unknown[0]}'; {where} takes: {', '.join(names)}")
    hints = typing.get_type_hints(schema)
    values = {}
    for f in fields(schema):
        key = f"{path}.{f.name}" if path else f.name
        if data.get(f.name) is None:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ScenarioError(f"scenario.{key} is missing")
            continue
        values[f.name] = _value(_required(hints[f.name]), f, data[f.name], key, rng)
    return schema(**values)


def _required(hint):
    """`X | None` -> X."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _value(hint, f, value, key: str, rng: np.random.Generator):
    bounds = bounds_of(f)
    if f.metadata.get("per_object") or f.metadata.get("span"):
        _check_range(value, key, bounds, ranged_only=bool(f.metadata.get("span")))
        return tuple(value) if isinstance(value, (list, tuple)) else value
    if is_dataclass(hint):
        return read(hint, value, key, rng)
    if typing.get_origin(hint) is list:
        if not isinstance(value, (list, tuple)):
            raise ScenarioError(f"scenario.{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        if not is_dataclass(item):  # a list of plain values, kept as written
            want = {str: (str,), int: (int,), float: (int, float)}[item]
            if not all(isinstance(v, want) and not isinstance(v, bool) for v in value):
                raise ScenarioError(f"scenario.{key}: expected a list of {item.__name__}, got {value!r}")
            return [item(v) for v in value]
        return [read(item, v, f"{key}[{i}]", rng) for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"scenario.{key}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ScenarioError(f"scenario.{key}: expected text, got {value!r}")
        if bounds is not None and not bounds.admits(value):
            raise ScenarioError(out_of_range(f"scenario.{key}", value, bounds))
        return value
    _check_range(value, key, bounds, integer=hint is int)
    return _sample(value, rng)


def _check_range(value, key: str, bounds: Bounds | None, integer: bool = False, ranged_only=False) -> None:
    """A number or a [low, high] range (only a range if `ranged_only`), all of it within `bounds`."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(_is_number(v) for v in value):
            raise ScenarioError(f"scenario.{key}: a range must be [low, high], got {list(value)}")
        if value[1] < value[0]:
            raise ScenarioError(f"scenario.{key}: range [{value[0]}, {value[1]}] has high < low")
        ends = list(value)
    elif ranged_only or not _is_number(value):
        want = "[low, high]" if ranged_only else "a number or [low, high]"
        raise ScenarioError(f"scenario.{key}: expected {want}, got {value!r}")
    else:
        ends = [value]
    if integer and not all(isinstance(v, int) for v in ends):
        raise ScenarioError(f"scenario.{key}={value!r}: expected an integer or [low, high] of integers")
    for v in ends:
        if not math.isfinite(v):
            raise ScenarioError(f"scenario.{key}: must be finite, got {value!r}")
        if bounds is not None and not bounds.admits(v):
            raise ScenarioError(out_of_range(f"scenario.{key}", value, bounds))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _sample(value, rng: np.random.Generator):
    """A number as it is, or a checked [low, high] range drawn uniformly (ints stay ints)."""
    if not isinstance(value, (list, tuple)):
        return value
    lo, hi = value
    if isinstance(lo, int) and isinstance(hi, int):
        return int(rng.integers(lo, hi + 1))
    return float(rng.uniform(lo, hi))


# ---------------------------------------------------------------------------- building
def _road(entry: ScenarioEntry) -> Road:
    rd = entry.road
    if not rd.segments or len(rd.segments) > MAX_SEGMENTS:
        raise ScenarioError(
            f"scenario.road.segments: expected 1 to {MAX_SEGMENTS} segments, got {len(rd.segments)}"
        )
    segments = []
    for i, seg in enumerate(rd.segments):
        radius = 0.0
        if seg.type == "arc":
            if seg.radius_m is None:
                raise ScenarioError(f"scenario.road.segments[{i}].radius_m is missing (needed by an arc)")
            radius = seg.radius_m
            if abs(radius) < 2 * rd.lanes * rd.lane_width_m:
                raise ScenarioError(
                    f"scenario.road.segments[{i}].radius_m={radius}: too tight for the road width"
                )
        elif seg.radius_m is not None:
            raise ScenarioError(f"scenario.road.segments[{i}].radius_m: a straight segment has no radius")
        segments.append(Segment(seg.type, float(seg.length_m), float(radius)))
    road = Road(segments, int(rd.lanes), float(rd.lane_width_m), float(rd.speed_limit_mps))
    if road.length_m > MAX_ROAD_LENGTH_M:
        raise ScenarioError(
            f"scenario.road: {road.length_m:.0f} m long is out of range: <= {MAX_ROAD_LENGTH_M:g} m"
        )
    return road


def model_and_behaviour(a, where: str, models: dict, behaviours: dict) -> tuple[str, str]:
    """An actor entry's model and behaviour: as written, or its kind's first (the default), each
    checked against its kind's choices (`models`, `behaviours`: kind -> choices)."""
    model = models[a.kind][0] if a.model is None else a.model
    if model not in models[a.kind]:
        raise ScenarioError(f"{where}.model={model!r} is not one of {', '.join(models[a.kind])}")
    behaviour = behaviours[a.kind][0] if a.behaviour is None else a.behaviour
    if behaviour not in behaviours[a.kind]:
        raise ScenarioError(f"{where}.behaviour={behaviour!r} is not one of {', '.join(behaviours[a.kind])}")
    return model, behaviour


def _actor(a: ActorEntry, path: str, road: Road, ego_s: float) -> ActorSpec:
    where = f"scenario.{path}"
    model, behaviour = model_and_behaviour(a, where, ACTOR_KINDS, BEHAVIOURS)
    if not 0 <= a.lane < road.lane_count and a.kind != "pedestrian":
        raise ScenarioError(f"{where}.lane={a.lane} is out of range: the road has {road.lane_count} lanes")
    s_m = ego_s + float(a.ds_m)
    if not 0 <= s_m <= road.length_m:
        raise ScenarioError(f"{where}.ds_m puts the actor off the road (s = {s_m:.0f} m)")
    for key in NEEDS.get(behaviour, ()):
        if getattr(a, key) is None:
            raise ScenarioError(f"{where}.{key} is missing (needed by behaviour {behaviour})")
    if behaviour == "cut_in" and not a.target_lane < road.lane_count:
        raise ScenarioError(f"{where}.target_lane={a.target_lane} is not a lane of the road")
    return ActorSpec(
        kind=a.kind,
        model=model,
        behaviour=behaviour,
        s_m=s_m,
        lane=int(a.lane),
        d_m=_lateral_m(a, where, road),
        speed_mps=float(a.speed_mps),
        target_speed_mps=float(a.speed_mps if a.target_speed_mps is None else a.target_speed_mps),
        trigger_gap_m=_or_nan(a.trigger_gap_m),
        trigger_time_s=_or_nan(a.trigger_time_s),
        trigger_distance_m=_or_nan(a.trigger_distance_m),
        target_lane=-1 if a.target_lane is None else int(a.target_lane),
        manoeuvre_s=_or_nan(a.manoeuvre_s),
        decel_mps2=_or_nan(a.decel_mps2),
    )


def _lateral_m(a: ActorEntry, where: str, road: Road) -> float:
    """The actor's offset from the reference line: from its lane, or for a pedestrian with `side`,
    `lateral_offset_m` beyond that edge of the road."""
    if a.side is None:
        return float(road.lane_offset_m(a.lane)) + float(a.lateral_offset_m or 0.0)
    if a.kind != "pedestrian":
        raise ScenarioError(f"{where}.side: only pedestrians stand beside the road")
    out = PAVEMENT_OFFSET_M if a.lateral_offset_m is None else float(a.lateral_offset_m)
    if out < 0:
        raise ScenarioError(f"{where}.lateral_offset_m={out} is out of range: >= 0 beside the road")
    return -(road.half_width_m + out) if a.side == "right" else road.half_width_m + out


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _check_traffic(tr: TrafficSpec) -> None:
    if tr.ds_max_m < tr.ds_min_m:
        raise ScenarioError(f"scenario.traffic.ds_max_m={tr.ds_max_m} is out of range: >= ds_min_m")
    if tr.speed_max_mps < tr.speed_min_mps:
        raise ScenarioError(
            f"scenario.traffic.speed_max_mps={tr.speed_max_mps} is out of range: >= speed_min_mps"
        )


def _clutter(c: ClutterEntry, road: Road, route: Route, rng: np.random.Generator) -> list[ActorSpec]:
    """Static objects beside the road along the route (domain randomisation for camera data): per
    kind, a Poisson count with mean density x span / 100 m, each at a uniform position on a random
    side, its offset beyond the road edge drawn per object."""
    lo, hi = c.ds_m if c.ds_m is not None else (5.0, route.length_m)
    actors = []
    for key, (kind, model) in CLUTTER_KINDS.items():
        density, offset_m = getattr(c, key), getattr(c, f"{key}_offset_m")
        for _ in range(int(rng.poisson(density * (hi - lo) / 100.0))):
            s_m = min(max(route.start_s_m + float(rng.uniform(lo, hi)), 0.0), road.length_m)
            out = float(_sample(offset_m, rng))
            side = 1.0 if rng.random() < 0.5 else -1.0
            lane = road.lane_count - 1 if side > 0 else 0
            actors.append(ActorSpec(kind, model, "static", s_m, lane, side * (road.half_width_m + out)))
            if len(actors) > MAX_ACTORS:
                raise ScenarioError(f"scenario.clutter: more than {MAX_ACTORS} objects; lower its densities")
    return actors

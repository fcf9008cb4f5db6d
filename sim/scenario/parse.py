"""Scenarios: read a scenario description (conf/scenario/*.yaml), sample its ranges from the seed.

Any number in a scenario may be written as a range `[low, high]`; it is drawn uniformly from the
seeded generator (integers stay integers). The result is a `ScenarioSpec` of plain values.

Positions of actors are given relative to the ego's start (`ds_m` ahead along the road) and by
lane; they are turned into absolute road coordinates here. An optional `clutter` mapping adds
static roadside pedestrians, cones, barriers and parked cars at random along the route (densities
per 100 m; `bulletdrive data` uses it to vary the camera data).
"""

from __future__ import annotations

import math

import numpy as np

from decision.route import Road, Route, Segment
from sim.scenario.spec import ACTOR_KINDS, BEHAVIOURS, ActorSpec, ScenarioError, ScenarioSpec, TrafficSpec


# ---------------------------------------------------------------------------- parsing
def _sample(value, key: str, rng: np.random.Generator):
    """A number, or a [low, high] range drawn uniformly (ints stay ints)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
            raise ScenarioError(f"scenario.{key}: a range must be [low, high], got {list(value)}")
        lo, hi = value
        if hi < lo:
            raise ScenarioError(f"scenario.{key}: range [{lo}, {hi}] has high < low")
        if isinstance(lo, int) and isinstance(hi, int):
            return int(rng.integers(lo, hi + 1))
        return float(rng.uniform(lo, hi))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"scenario.{key}: expected a number or [low, high], got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(f"scenario.{key}: must be finite, got {value}")
    return value


class _Reader:
    """Reads one mapping of the scenario, sampling numbers and rejecting unknown keys."""

    def __init__(self, data, path: str, rng: np.random.Generator):
        if not isinstance(data, dict):
            raise ScenarioError(f"scenario.{path}: expected a mapping, got {data!r}")
        self.data, self.path, self.rng, self.used = data, path, rng, set()

    def num(self, key: str, default=None, low: float | None = None, strict_low: bool = False):
        self.used.add(key)
        full = f"{self.path}.{key}" if self.path else key
        if key not in self.data:
            if default is None:
                raise ScenarioError(f"scenario.{full} is missing")
            return default
        value = _sample(self.data[key], full, self.rng)
        if low is not None and (value <= low if strict_low else value < low):
            raise ScenarioError(
                f"scenario.{full}={value} is out of range: {'>' if strict_low else '>='} {low}"
            )
        return value

    def text(self, key: str, default=None, choices=None) -> str:
        self.used.add(key)
        full = f"{self.path}.{key}" if self.path else key
        value = self.data.get(key, default)
        if value is None:
            raise ScenarioError(f"scenario.{full} is missing")
        if choices is not None and value not in choices:
            raise ScenarioError(f"scenario.{full}={value!r} is not one of {', '.join(choices)}")
        return str(value)

    def sub(self, key: str, default=None):
        self.used.add(key)
        return self.data.get(key, default)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            where = f"scenario.{self.path}" if self.path else "scenario"
            raise ScenarioError(f"unknown key {where}.{unknown[0]}")


def parse_scenario(data: dict, rng: np.random.Generator) -> ScenarioSpec:
    """Turn a scenario mapping (plain dict from the YAML) into a sampled ScenarioSpec."""
    top = _Reader(data, "", rng)
    name = top.text("name")
    description = top.text("description", "")
    duration_s = top.num("duration_s", low=0, strict_low=True)

    rd = _Reader(top.sub("road"), "road", rng)
    lane_count = rd.num("lanes", low=1)
    lane_width_m = rd.num("lane_width_m", 3.5, low=2.0)
    speed_limit = rd.num("speed_limit_mps", low=0, strict_low=True)
    segs = rd.sub("segments")
    if not isinstance(segs, list) or not segs:
        raise ScenarioError("scenario.road.segments: expected a non-empty list")
    segments = []
    for i, seg in enumerate(segs):
        sr = _Reader(seg, f"road.segments[{i}]", rng)
        kind = sr.text("type", choices=("straight", "arc"))
        length = sr.num("length_m", low=0, strict_low=True)
        radius = 0.0
        if kind == "arc":
            radius = sr.num("radius_m")
            if abs(radius) < 2 * lane_count * lane_width_m:
                raise ScenarioError(
                    f"scenario.road.segments[{i}].radius_m={radius}: too tight for the road width"
                )
        sr.done()
        segments.append(Segment(kind, float(length), float(radius)))
    rd.done()
    road = Road(segments, int(lane_count), float(lane_width_m), float(speed_limit))

    eg = _Reader(top.sub("ego"), "ego", rng)
    lane = eg.num("lane", 0, low=0)
    if lane >= lane_count:
        raise ScenarioError(f"scenario.ego.lane={lane} is out of range: the road has {lane_count} lanes")
    start_s = eg.num("s_m", 10.0, low=0)
    route_len = eg.num("route_length_m", low=0, strict_low=True)
    if start_s + route_len > road.length_m:
        raise ScenarioError(
            f"scenario.ego.route_length_m={route_len}: the route ends past the road ({road.length_m:.0f} m)"
        )
    ego_speed = eg.num("speed_mps", 0.0, low=0)
    ego_target = eg.num("target_speed_mps", low=0, strict_low=True)
    eg.done()
    route = Route(road, float(start_s), float(start_s + route_len), int(lane), float(ego_target))

    actors = []
    for i, a in enumerate(top.sub("actors", []) or []):
        actors.append(_parse_actor(_Reader(a, f"actors[{i}]", rng), road, float(start_s)))

    traffic = TrafficSpec()
    if top.sub("traffic") is not None:
        tr = _Reader(top.sub("traffic"), "traffic", rng)
        d = TrafficSpec()
        traffic = TrafficSpec(
            count=int(tr.num("count", d.count, low=0)),
            ds_min_m=float(tr.num("ds_min_m", d.ds_min_m)),
            ds_max_m=float(tr.num("ds_max_m", d.ds_max_m)),
            speed_min_mps=float(tr.num("speed_min_mps", d.speed_min_mps, low=0)),
            speed_max_mps=float(tr.num("speed_max_mps", d.speed_max_mps, low=0)),
            min_spacing_m=float(tr.num("min_spacing_m", d.min_spacing_m, low=0, strict_low=True)),
        )
        tr.done()
    if top.sub("clutter") is not None:
        actors += _clutter(_Reader(top.sub("clutter"), "clutter", rng), road, route)
    top.done()
    return ScenarioSpec(
        name=name,
        description=description,
        duration_s=float(duration_s),
        road=road,
        route=route,
        ego_speed_mps=float(ego_speed),
        actors=tuple(actors),
        traffic=traffic,
    )


def _parse_actor(r: _Reader, road: Road, ego_s: float) -> ActorSpec:
    kind = r.text("kind", choices=tuple(ACTOR_KINDS))
    model = r.text("model", ACTOR_KINDS[kind][0], choices=ACTOR_KINDS[kind])
    default_behaviour = {"vehicle": "idm", "pedestrian": "cross", "obstacle": "static"}[kind]
    behaviour = r.text("behaviour", default_behaviour, choices=BEHAVIOURS[kind])
    lane = int(r.num("lane", 0))
    if not 0 <= lane < road.lane_count and kind != "pedestrian":
        raise ScenarioError(
            f"scenario.{r.path}.lane={lane} is out of range: the road has {road.lane_count} lanes"
        )
    s_m = ego_s + float(r.num("ds_m"))
    if not 0 <= s_m <= road.length_m:
        raise ScenarioError(f"scenario.{r.path}.ds_m puts the actor off the road (s = {s_m:.0f} m)")
    if kind == "pedestrian" and "side" in r.data:
        # Pedestrians start beside the road: side "right" or "left", `lateral_offset_m` outside the edge.
        side = r.text("side", choices=("right", "left"))
        out = float(r.num("lateral_offset_m", 1.5, low=0))
        d_m = -(road.half_width_m + out) if side == "right" else road.half_width_m + out
    else:
        d_m = float(road.lane_offset_m(lane)) + float(r.num("lateral_offset_m", 0.0))
    nan = math.nan
    speed = float(r.num("speed_mps", 0.0, low=0))
    spec = ActorSpec(
        kind=kind,
        model=model,
        behaviour=behaviour,
        s_m=s_m,
        lane=lane,
        d_m=d_m,
        speed_mps=speed,
        target_speed_mps=float(r.num("target_speed_mps", speed, low=0)),
        trigger_gap_m=float(r.num("trigger_gap_m", nan)),
        trigger_time_s=float(r.num("trigger_time_s", nan)),
        trigger_distance_m=float(r.num("trigger_distance_m", nan)),
        target_lane=int(r.num("target_lane", -1)),
        manoeuvre_s=float(r.num("manoeuvre_s", nan)),
        decel_mps2=float(r.num("decel_mps2", nan)),
    )
    r.done()
    needs = {
        "cut_in": ("trigger_gap_m", "manoeuvre_s"),
        "brake": ("trigger_time_s", "decel_mps2"),
        "cross": ("trigger_distance_m", "speed_mps"),
    }.get(behaviour, ())
    for key in needs:
        if isinstance(getattr(spec, key), float) and math.isnan(getattr(spec, key)):
            raise ScenarioError(f"scenario.{r.path}.{key} is missing (needed by behaviour {behaviour})")
    if behaviour == "cut_in" and not 0 <= spec.target_lane < road.lane_count:
        raise ScenarioError(f"scenario.{r.path}.target_lane={spec.target_lane} is not a lane of the road")
    return spec


# Roadside clutter: kind, model, default distance of the object's centre beyond the road edge [m].
CLUTTER_KINDS = {
    "pedestrians": ("pedestrian", "pedestrian", (0.5, 4.0)),
    "cones": ("obstacle", "cone", (0.3, 2.5)),
    "barriers": ("obstacle", "barrier", (0.5, 2.5)),
    "parked_cars": ("obstacle", "car", (1.3, 2.5)),
}


def _clutter(r: _Reader, road: Road, route: Route) -> list[ActorSpec]:
    """Static objects beside the road along the route (domain randomisation for camera data).

    Per kind, a density per 100 m (a number or [low, high]); the count is Poisson with that mean
    over `ds_m` (ahead of the ego start, default [5, route length]). Each object stands at a uniform
    position on a random side, `<kind>_offset_m` (default CLUTTER_KINDS) beyond the road edge.
    """
    density = {key: float(r.num(key, 0.0, low=0)) for key in CLUTTER_KINDS}
    span = r.sub("ds_m", [5.0, route.length_m])
    if not (isinstance(span, (list, tuple)) and len(span) == 2 and span[0] <= span[1]):
        raise ScenarioError(f"scenario.clutter.ds_m: expected [low, high], got {span!r}")
    actors = []
    for key, (kind, model, offset) in CLUTTER_KINDS.items():
        offset_key = f"{key}_offset_m"
        offset_m = r.sub(offset_key, list(offset))  # a number or a range, drawn per object
        for _ in range(int(r.rng.poisson(density[key] * (span[1] - span[0]) / 100.0))):
            s_m = min(max(route.start_s_m + float(r.rng.uniform(*span)), 0.0), road.length_m)
            out = float(_sample(offset_m, f"clutter.{offset_key}", r.rng))
            side = 1.0 if r.rng.random() < 0.5 else -1.0
            lane = road.lane_count - 1 if side > 0 else 0
            actors.append(ActorSpec(kind, model, "static", s_m, lane, side * (road.half_width_m + out)))
    r.done()
    return actors

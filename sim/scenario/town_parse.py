"""Town scenarios: read a scenario with a `town:` entry (sim/scenario/town_schema.py), build or
generate its town, the ego's route through it and the scripted actors placed relative to that
route, into a `ScenarioSpec` whose road is the route's corridor (decision/town.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

import conf
from decision.route import Road, Route, Segment
from decision.town import CROSSWALK_WIDTH_M, SIDEWALK_WIDTH_M, Leg, MapError, Town
from decision.town_maps import generate_town, parse_town
from sim.config import bounded, identifier
from sim.scenario.parse import check_abilities, model_and_behaviour, read
from sim.scenario.spec import (
    FLOW_SOURCE_S_M,
    ScenarioError,
    ScenarioSpec,
    TownActorSpec,
    TownSpec,
    TrafficSpec,
)
from sim.scenario.town_schema import (
    MAX_TOWN_ACTORS,
    TOWN_BEHAVIOURS,
    TOWN_MODELS,
    TownActorEntry,
    TownEgoEntry,
    TownEntry,
)

TOWN_DIR = Path(conf.__file__).parent / "town"
ACTOR_PATH_M = 600.0  # an actor's path through the town runs at least this far
KERB_STEP_M = 1.5  # a crossing pedestrian starts and ends this far beyond the road edge
RUNNER_TRIGGER_M = 40.0  # default: a runner starts when the ego is this near the junction
FLOW_RECYCLE_M = 60.0  # a continuous flow's vehicle this far past its junction goes back to the source


@dataclass(frozen=True, kw_only=True)
class TownScenarioEntry:
    name: str = identifier()
    description: str = ""
    duration_s: float = bounded(0, 600, low_open=True)
    # Standing still this long ends the run as blocked (CARLA's leaderboard: 180 s): longer than on
    # one road, as lights, stop signs and queues in a town hold the ego for a while.
    blocked_timeout_s: float = bounded(1, 600, default=90.0)
    abilities: list[str] = field(default_factory=list)
    town: TownEntry
    ego: TownEgoEntry


def parse_town_scenario(data: dict, rng: np.random.Generator) -> ScenarioSpec:
    """A sampled ScenarioSpec of a town scenario mapping (the YAML as plain dicts)."""
    town_data = dict(data["town"]) if isinstance(data["town"], dict) else data["town"]
    if not isinstance(town_data, dict):
        raise ScenarioError(f"scenario.town: expected a mapping, got {town_data!r}")
    map_value = town_data.pop("map", None)
    entry = read(TownScenarioEntry, {**data, "town": town_data}, "", rng)
    check_abilities(entry.abilities)
    town = _town(map_value, entry.town, rng)
    if entry.town.signal_offset_s is not None:
        for n, plan in town.signals.items():
            town.signals[n] = replace(plan, offset_s=float(entry.town.signal_offset_s))
    legs = _route_legs(town, entry.town, rng)
    r = entry.town.route
    goal_m = town.leg_free_m(legs[-1]) / 2 if r.goal_m is None else float(r.goal_m)
    try:
        route = town.route(legs, float(entry.ego.s_m), goal_m, float(entry.ego.target_speed_mps))
    except MapError as err:
        raise ScenarioError(f"scenario.town.{err}") from None
    if sum(a.count for a in entry.town.actors) > MAX_TOWN_ACTORS:
        raise ScenarioError(f"scenario.town.actors: more than {MAX_TOWN_ACTORS} (flows counted in full)")
    actors = tuple(
        spec
        for i, a in enumerate(entry.town.actors)
        for spec in _spaced(
            [
                _actor(one, f"town.actors[{i}]", town, legs, route, rng, flow=i if a.continuous else -1)
                for one in _flow(a, f"scenario.town.actors[{i}]", rng)
            ],
            a,
        )
    )
    zone = entry.town.pass_zone_m
    if zone is not None:
        if len(zone) != 2 or zone[1] <= zone[0]:
            raise ScenarioError(f"scenario.town.pass_zone_m={zone}: expected [from, to] with to > from")
        route = replace(route, pass_zones=((route.start_s_m + zone[0], route.start_s_m + zone[1]),))
    return ScenarioSpec(
        name=entry.name,
        description=entry.description,
        duration_s=float(entry.duration_s),
        road=route.road,
        route=route,
        ego_speed_mps=float(entry.ego.speed_mps),
        actors=(),
        traffic=TrafficSpec(),
        town=TownSpec(
            town, actors, int(entry.town.vehicles), int(entry.town.pedestrians), entry.town.clear_ego_entry
        ),
        abilities=tuple(entry.abilities),
        ego_d_m=_ego_d_m(entry.ego, town, route),
        blocked_timeout_s=float(entry.blocked_timeout_s),
    )


def _ego_d_m(ego: TownEgoEntry, town: Town, route: Route) -> float | None:
    """The ego's start offset from the corridor's reference line (None: lane 0's centre)."""
    if ego.lane == 0 and ego.lateral_offset_m == 0.0:
        return None
    if ego.lane >= town.lanes:
        raise ScenarioError(
            f"scenario.ego.lane={ego.lane} is out of range: the town has {town.lanes} lane(s) each way"
        )
    return float(route.road.lane_offset_m(ego.lane)) + ego.lateral_offset_m


# ---------------------------------------------------------------------------- town and route
def _town(map_value, t: TownEntry, rng: np.random.Generator) -> Town:
    if (map_value is None) == (t.generate is None):
        raise ScenarioError("scenario.town needs one of map (a conf/town name or a map) and generate")
    if t.generate is not None:
        g = t.generate
        if len(g.blocks) != 2 or not all(1 <= b <= 8 for b in g.blocks):
            raise ScenarioError(f"scenario.town.generate.blocks={g.blocks}: expected [x, y], each 1 to 8")
        if len(g.block_m) != 2 or not 40 <= g.block_m[0] <= g.block_m[1] <= 400:
            raise ScenarioError(
                f"scenario.town.generate.block_m={g.block_m}: expected [low, high] within [40, 400]"
            )
        return generate_town(
            rng, tuple(g.blocks), tuple(g.block_m), g.lanes, g.drop_fraction, g.signal_p, g.stop_p
        )
    if isinstance(map_value, str):
        path = TOWN_DIR / f"{map_value}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in TOWN_DIR.glob("*.yaml")))
            raise ScenarioError(f"scenario.town.map={map_value!r} is not a town map ({known})")
        try:
            map_value = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ScenarioError(
                f"conf/town/{path.name} is not valid YAML: {str(err).splitlines()[0]}"
            ) from None
    return parse_town(map_value)


def _route_legs(town: Town, t: TownEntry, rng: np.random.Generator) -> list[Leg]:
    r = t.route
    if r.street is None:
        streets = sorted(town.streets)
        start = Leg(streets[int(rng.integers(len(streets)))], bool(rng.integers(2)))
    else:
        if r.street not in town.streets:
            raise ScenarioError(f"scenario.town.route.street={r.street} is not a street of the town")
        st = town.streets[r.street]
        if r.start_from is not None and r.start_from not in (st.a, st.b):
            raise ScenarioError(
                f"scenario.town.route.start_from={r.start_from} is not an end of street {r.street}"
            )
        start = Leg(st.id, r.start_from in (None, st.a))
    given = [k for k in ("turns", "goal_street", "length_m") if getattr(r, k) is not None]
    if len(given) > 1:
        raise ScenarioError(
            f"scenario.town.route: give one of turns, goal_street, length_m, not {' and '.join(given)}"
        )
    try:
        if r.turns is not None:
            return town.legs_through(start, list(r.turns))
        if r.goal_street is not None:
            return town.legs_to(start, r.goal_street)
        if r.length_m is not None:
            return town.random_legs(rng, start, float(r.length_m))
    except MapError as err:
        raise ScenarioError(f"scenario.town.{err}") from None
    return [start]


# ---------------------------------------------------------------------------- actors
def _actor(
    a: TownActorEntry, path: str, town: Town, legs: list[Leg], route: Route, rng, flow: int = -1
) -> TownActorSpec:
    where = f"scenario.{path}"
    model, behaviour = model_and_behaviour(a, where, TOWN_MODELS, TOWN_BEHAVIOURS)
    if a.lane >= town.lanes:
        raise ScenarioError(
            f"{where}.lane={a.lane} is out of range: the town has {town.lanes} lane(s) each way"
        )
    if a.kind == "pedestrian":
        road, s_m, trigger = _crossing_path(a, where, town, route)
        d_m, junctions = 0.0, ()
    else:
        road, s_m, junctions, trigger = _vehicle_path(a, where, town, legs, route, rng)
        d_m = float(road.lane_offset_m(a.lane)) + a.lateral_offset_m
    if a.trigger_distance_m is None and behaviour in ("cut_in",):
        raise ScenarioError(f"{where}.trigger_distance_m is missing (needed by behaviour {behaviour})")
    trigger_m = a.trigger_distance_m
    if trigger_m is None and behaviour == "runner" and a.place == "arm":
        trigger_m = RUNNER_TRIGGER_M
    target = a.speed_mps if a.target_speed_mps is None else a.target_speed_mps
    recycle_s = junctions[0].exit_s_m + FLOW_RECYCLE_M if flow >= 0 else math.inf
    return TownActorSpec(
        kind=a.kind,
        model=model,
        behaviour=behaviour,
        path=road,
        s_m=s_m,
        lane=int(a.lane),
        d_m=d_m,
        speed_mps=float(a.speed_mps),
        target_speed_mps=float(target),
        junctions=tuple(junctions),
        trigger_xy_m=trigger if trigger_m is not None else None,
        trigger_distance_m=math.nan if trigger_m is None else float(trigger_m),
        manoeuvre_s=math.nan if a.manoeuvre_s is None else float(a.manoeuvre_s),
        invade_m=float(a.invade_m),
        yields=bool(a.yields),
        flow=flow,
        recycle_s_m=recycle_s,
        flow_gap_m=(float(a.spacing_m), float(a.max_spacing_m or a.spacing_m)),
    )


def _vehicle_path(a: TownActorEntry, where: str, town: Town, legs: list[Leg], route: Route, rng):
    """(path road, s on it, its junction crossings, trigger point) of a vehicle or obstacle."""
    if a.place == "route":
        s_m = _route_s(a, where, route)
        return route.road, s_m, route.junctions, _xy(route.road, s_m)
    if a.place == "oncoming":
        back = [leg.reverse() for leg in reversed(legs)]
        road, crossings = town.corridor(back)
        s_m = road.length_m - _route_s(a, where, route)
        _check_on(s_m, road, where)
        return road, s_m, tuple(crossings), _xy(road, s_m)
    if a.place != "arm":
        raise ScenarioError(f"{where}.place={a.place!r}: a {a.kind} is placed on route, oncoming or arm")
    crossing = _junction(a, where, route)
    arm_street = _arm_street(a, where, town, route, crossing)
    st = town.streets[arm_street]
    start = Leg(arm_street, st.b == crossing.junction_id)  # driving towards the junction
    try:
        arm_legs = town.legs_through(start, [a.turn])
    except MapError:
        raise ScenarioError(f"{where}.turn={a.turn!r} is not possible from that arm") from None
    arm_legs += town.random_legs(rng, arm_legs[-1], ACTOR_PATH_M)[1:]
    road, crossings = town.corridor(arm_legs)
    s_m = town.leg_free_m(start) - a.distance_m
    if a.continuous:  # running since before the start: who would stand behind the source has gone by
        cycle = crossings[0].exit_s_m + FLOW_RECYCLE_M - FLOW_SOURCE_S_M
        s_m = FLOW_SOURCE_S_M + (s_m - FLOW_SOURCE_S_M) % cycle
    if s_m < 0:
        raise ScenarioError(
            f"{where}.distance_m={a.distance_m} is longer than the arm's street ({town.leg_free_m(start):.0f} m)"
        )
    return road, s_m, tuple(crossings), crossing.centre_xy_m


def _crossing_path(a: TownActorEntry, where: str, town: Town, route: Route):
    """(path road, 0, trigger point) of a pedestrian crossing the route or a crosswalk."""
    half = town.half_width_m + KERB_STEP_M
    sign = 1.0 if a.side == "right" else -1.0  # right: walks from the right kerb to the left
    if a.place == "route":
        s_m = _route_s(a, where, route)
        x, y, h = (float(v) for v in route.road.to_world(s_m, -sign * half))
        heading = h + sign * math.pi / 2
    elif a.place == "crosswalk":
        crossing = _junction(a, where, route)
        street = _arm_street(a, where, town, route, crossing)
        arm = next(arm for arm in town.arms[crossing.junction_id] if arm.street == street)
        along = crossing.half_size_m + CROSSWALK_WIDTH_M / 2
        cx, cy = crossing.centre_xy_m
        c, s = math.cos(arm.heading_rad), math.sin(arm.heading_rad)
        x, y = cx + along * c + sign * half * s, cy + along * s - sign * half * c
        heading = arm.heading_rad + sign * math.pi / 2
    else:
        raise ScenarioError(f"{where}.place={a.place!r}: a pedestrian crosses on route or crosswalk")
    length = 2 * half + SIDEWALK_WIDTH_M
    road = Road([Segment("straight", length)], 1, 1.0, 3.0, (x, y, heading))
    return road, 0.0, (x, y)


def _flow(a: TownActorEntry, where: str, rng: np.random.Generator) -> list[TownActorEntry]:
    """A flow's vehicles, `spacing_m` apart (or each gap drawn in [spacing_m, max_spacing_m], but
    for a platoon): the first as written, each next one farther back from its junction (place arm)
    or farther ahead (elsewhere)."""
    if a.max_spacing_m is not None and a.max_spacing_m < a.spacing_m:
        raise ScenarioError(f"{where}.max_spacing_m={a.max_spacing_m} is below spacing_m={a.spacing_m}")
    if a.continuous and (a.place != "arm" or a.kind != "vehicle" or a.count < 2):
        raise ScenarioError(
            f"{where}.continuous: a continuous flow is of vehicles placed on an arm, count >= 2"
        )
    if a.platoon and not a.continuous:
        raise ScenarioError(f"{where}.platoon: a platoon starts a continuous flow (continuous: true)")
    gaps = np.full(a.count - 1, float(a.spacing_m))
    if a.max_spacing_m is not None and not a.platoon:
        gaps = rng.uniform(a.spacing_m, a.max_spacing_m, a.count - 1)
    offsets = np.concatenate([[0.0], np.cumsum(gaps)])
    key = "distance_m" if a.place == "arm" else "ds_m"
    return [replace(a, **{key: getattr(a, key) + float(off)}) for off in offsets]


def _spaced(specs: list[TownActorSpec], a: TownActorEntry) -> list[TownActorSpec]:
    """A continuous flow's vehicles without those that its cycle (source to recycle point) could not
    hold: one that wrapped round to within `spacing_m` of another is left out."""
    if not a.continuous:
        return specs
    kept: list[TownActorSpec] = []
    for spec in specs:
        if all(abs(spec.s_m - other.s_m) >= a.spacing_m for other in kept):
            kept.append(spec)
    return kept


def _route_s(a: TownActorEntry, where: str, route: Route) -> float:
    """s on the route `ds_m` ahead of the ego's start, or of the exit of junction `after_junction`."""
    if a.after_junction is None:
        s_m = route.start_s_m + a.ds_m
    elif a.after_junction >= len(route.junctions):
        raise ScenarioError(
            f"{where}.after_junction={a.after_junction}: the route crosses {len(route.junctions)} junction(s)"
        )
    else:
        s_m = route.junctions[a.after_junction].exit_s_m + a.ds_m
    _check_on(s_m, route.road, where)
    return s_m


def _junction(a: TownActorEntry, where: str, route: Route):
    if a.junction >= len(route.junctions):
        raise ScenarioError(
            f"{where}.junction={a.junction}: the route crosses {len(route.junctions)} junction(s)"
        )
    return route.junctions[a.junction]


def _arm_street(a: TownActorEntry, where: str, town: Town, route: Route, crossing) -> int:
    """The street of arm `a.arm` of the crossing's junction, relative to the ego's approach."""
    if a.arm == "exit":
        x, y = _xy(route.road, crossing.exit_s_m + 1.0)
        return min(
            (arm for arm in town.arms[crossing.junction_id]),
            key=lambda arm: _distance_to_street(town, arm.street, (x, y)),
        ).street
    want = {"opposite": 0.0, "left": math.pi / 2, "right": -math.pi / 2}[a.arm]
    for arm in town.arms[crossing.junction_id]:
        rel = (arm.heading_rad - crossing.heading_rad - want + math.pi) % (2 * math.pi) - math.pi
        if abs(rel) < 0.1:
            return arm.street
    raise ScenarioError(f"{where}.arm={a.arm!r}: junction {crossing.junction_id} has no such arm")


def _distance_to_street(town: Town, street: int, xy) -> float:
    st = town.streets[street]
    a, b, p = np.array(town.nodes[st.a].xy_m), np.array(town.nodes[st.b].xy_m), np.array(xy)
    t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * (b - a))))


def _check_on(s_m: float, road: Road, where: str) -> None:
    if not 0 <= s_m <= road.length_m:
        raise ScenarioError(
            f"{where}.ds_m puts the actor off its path (s = {s_m:.0f} m of {road.length_m:.0f} m)"
        )


def _xy(road: Road, s_m: float) -> tuple[float, float]:
    x, y, _ = road.pose(s_m)
    return float(x), float(y)

"""The keys of a town scenario's `town:` entry (sim/scenario/town_parse.py reads them).

A town scenario drives the ego along a route through a town (decision/town.py) instead of one road:

    town:
      map: crossing                 # conf/town/crossing.yaml, or an inline map, or
      generate: {blocks: [3, 3]}    # a procedural town from the seed
      vehicles: [4, 8]              # random NPC vehicles, pedestrians
      pedestrians: 6
      route: {street: 0, from: 0, turns: [left], goal_m: 40}
      actors: [...]                 # scripted actors placed relative to the route
    ego: {s_m: 20, speed_mps: 6, target_speed_mps: 12}

Numbers may be ranges drawn from the seed, as everywhere in a scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.config import bounded, one_of

MAX_TOWN_ACTORS = 200
TOWN_BEHAVIOURS = {  # per kind; the first is the default
    "vehicle": ("route", "runner", "static", "cut_in", "invade"),
    "pedestrian": ("cross", "walk", "static"),
    "obstacle": ("static",),
}
TOWN_MODELS = {
    "vehicle": ("car", "van", "truck", "bus", "ambulance"),
    "pedestrian": ("pedestrian",),
    "obstacle": ("cone", "barrier", "car", "van", "truck"),
}
ABILITIES = ("merging", "overtaking", "emergency_brake", "give_way", "traffic_signs")


@dataclass(frozen=True, kw_only=True)
class GenerateEntry:
    """A procedural town (decision/town_maps.py generate_town)."""

    blocks: list[int] = field(default_factory=lambda: [3, 3])  # blocks along x and y
    block_m: list[float] = field(default_factory=lambda: [60.0, 110.0])  # side of a block, range
    lanes: int | None = bounded(1, 2, default=None)  # per direction; drawn when left out
    drop_fraction: float = bounded(0, 0.5, default=0.2)
    signal_p: float = bounded(0, 1, default=0.5)
    stop_p: float = bounded(0, 1, default=0.5)


@dataclass(frozen=True, kw_only=True)
class RouteEntry:
    """The ego's route: from `street` (driving away from node `from`), then `turns` at the
    junctions in order, or the shortest way to `goal_street`, or a random route of `length_m`;
    it ends `goal_m` into its last street (default: that street's middle)."""

    street: int | None = bounded(0, 10_000, default=None)  # default: drawn from the seed
    start_from: int | None = bounded(0, 10_000, default=None)
    turns: list[str] | None = None
    goal_street: int | None = bounded(0, 10_000, default=None)
    length_m: float | None = bounded(0, 20_000, low_open=True, default=None)
    goal_m: float | None = bounded(0, 5_000, low_open=True, default=None)


@dataclass(frozen=True, kw_only=True)
class TownActorEntry:
    """One scripted actor, placed relative to the ego's route (see sim/scenario/spec.py
    TownActorSpec for the behaviours).

    place: "route" on the ego's route `ds_m` ahead of its start (or of the exit of the route's junction
    `after_junction`) (lane from the right, or a
    `lateral_offset_m` from the lane centre: a parked car at the kerb); "oncoming" on the route driven
    the other way, `ds_m` ahead of the ego's start; "arm": on an arm (`arm`: left, right, opposite)
    of the route's junction `junction` (0 the first), `distance_m` before its box, then `turn`
    there. Pedestrians: "route" crosses the route `ds_m` ahead from `side`; "crosswalk" crosses on the
    crosswalk of arm `arm` ("exit": the street the route leaves by) of junction `junction`.
    """

    kind: str = one_of(*TOWN_BEHAVIOURS)
    model: str | None = None
    behaviour: str | None = None
    place: str = one_of("route", "oncoming", "arm", "crosswalk", default="route")
    ds_m: float = bounded(-5_000, 5_000, default=0.0)
    after_junction: int | None = bounded(0, 50, default=None)  # ds_m from that junction's exit instead
    lane: int = bounded(0, 2, default=0)
    lateral_offset_m: float = bounded(-10, 10, default=0.0)
    junction: int = bounded(0, 50, default=0)
    arm: str = one_of("left", "right", "opposite", "exit", default="opposite")
    turn: str = one_of("left", "straight", "right", default="straight")
    distance_m: float = bounded(0, 2_000, default=30.0)
    side: str = one_of("right", "left", default="right")
    speed_mps: float = bounded(0, 40, default=0.0)
    target_speed_mps: float | None = bounded(0, 40, default=None)
    trigger_distance_m: float | None = bounded(0, 500, default=None)
    manoeuvre_s: float | None = bounded(0, 30, low_open=True, default=None)
    invade_m: float = bounded(0, 3, default=0.0)
    yields: bool = True  # false: it keeps its right of way: does not brake for an ego cutting across or in
    count: int = bounded(1, 20, default=1)  # a flow (CARLA's ActorFlow): this many, one behind the other ...
    spacing_m: float = bounded(
        5, 200, default=25.0
    )  # ... this far apart (farther from the junction, or ahead)
    max_spacing_m: float | None = bounded(5, 400, default=None)  # each gap drawn in [spacing_m, this]
    # A flow that keeps coming for the whole run (place arm, as CARLA's ActorFlow): a vehicle well past
    # the junction comes back to the flow's source, a new gap behind its last vehicle.
    continuous: bool = False
    # The flow starts as a platoon, its vehicles `spacing_m` apart (the traffic the ego meets at the
    # junction); only the gaps of the vehicles that come back are drawn up to `max_spacing_m`.
    platoon: bool = False


@dataclass(frozen=True, kw_only=True)
class TownEntry:
    map: str | dict | None = None  # a conf/town name or an inline map
    generate: GenerateEntry | None = None
    vehicles: int = bounded(0, 100, default=0)
    pedestrians: int = bounded(0, 100, default=0)
    route: RouteEntry = field(default_factory=RouteEntry)
    actors: list[TownActorEntry] = field(default_factory=list)
    # [from, to] ahead of the ego's start [m]: where the oncoming lane may be used to pass an
    # obstruction without counting as driving against traffic (CARLA's TwoWays scenarios)
    pass_zone_m: list[float] | None = None
    # Every light's cycle starts this far in [s] (the map's own offsets otherwise): as CARLA's scenarios
    # set the lights, so that the ego meets the phase the scenario is about
    signal_offset_s: float | None = bounded(0, 600, default=None)
    # No random vehicle starts on the ego's way to its first junction, in its direction (CARLA's
    # HandleJunctionScenario clear_ego_entry): the ego meets the junction's situation itself, not
    # behind a vehicle that meets it first
    clear_ego_entry: bool = False


@dataclass(frozen=True, kw_only=True)
class TownEgoEntry:
    s_m: float = bounded(0, 5_000, default=10.0)  # into the route's first street
    lane: int = bounded(0, 2, default=0)  # the lane it starts in (the route's lane is 0, the rightmost)
    lateral_offset_m: float = bounded(-5, 5, default=0.0)  # from that lane's centre (parked: < 0)
    speed_mps: float = bounded(0, 40, default=0.0)
    target_speed_mps: float = bounded(0, 40, low_open=True)

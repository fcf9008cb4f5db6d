"""The scenario schema: every key a scenario file (conf/scenario/*.yaml) may hold, with its type, its
range and, where the key is optional, its default. This is the one place those defaults live.

A number may be written as a range `[low, high]`, drawn from the seed when the scenario is read
(sim/scenario/parse.py). The whole range must lie within the field's bounds, so a scenario is valid
for every seed or for none. Fields marked `per_object` keep their number or range unsampled: it is
drawn once per object placed. Bounds on durations, sizes and counts keep a run within memory and
time: a run stores one row per control tick and actor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.config import Bounds, bounded, identifier, one_of
from sim.scenario.spec import TrafficSpec

MAX_DURATION_S = 600.0
MAX_SPEED_MPS = 70.0
MAX_LANES = 8
MAX_ROAD_LENGTH_M = 20_000.0
MAX_SEGMENTS = 50
MAX_ACTORS = 300  # scripted, traffic and clutter together
MAX_CLUTTER_PER_100M = 20.0

ACTOR_KINDS = {
    "vehicle": ("car", "van", "truck", "bus", "ambulance"),
    "pedestrian": ("pedestrian",),
    "obstacle": ("cone", "barrier", "car", "van", "truck", "bus"),
}
BEHAVIOURS = {  # per kind; the first is the default
    "vehicle": ("idm", "keep_lane", "cut_in", "brake", "static"),
    "pedestrian": ("cross", "static"),
    "obstacle": ("static",),
}
NEEDS = {  # the keys a behaviour needs
    "cut_in": ("trigger_gap_m", "manoeuvre_s", "target_lane"),
    "brake": ("trigger_time_s", "decel_mps2"),
    "cross": ("trigger_distance_m", "speed_mps"),
}
PAVEMENT_OFFSET_M = 1.5  # a pedestrian placed by `side` stands this far beyond the road edge


def per_object(low: float, high: float, default: tuple[float, float]) -> tuple[float, float] | float:
    """A number or [low, high] range kept as written, drawn once per object (clutter offsets)."""
    return field(default=default, metadata={"bounds": Bounds(low, high), "per_object": True})


def span(low: float, high: float) -> tuple[float, float] | None:
    """A [low, high] interval kept as written (not drawn); None: the reader's own default."""
    return field(default=None, metadata={"bounds": Bounds(low, high), "span": True})


@dataclass(frozen=True, kw_only=True)
class SegmentEntry:
    type: str = one_of("straight", "arc")
    length_m: float = bounded(0, MAX_ROAD_LENGTH_M, low_open=True)
    radius_m: float | None = None  # arcs only: turns left when > 0; |radius| >= 2 x the road width


@dataclass(frozen=True, kw_only=True)
class RoadEntry:
    lanes: int = bounded(1, MAX_LANES)
    lane_width_m: float = bounded(2.0, 6.0, default=3.5)
    speed_limit_mps: float = bounded(0, MAX_SPEED_MPS, low_open=True)
    segments: list[SegmentEntry]  # at least one, at most MAX_SEGMENTS


@dataclass(frozen=True, kw_only=True)
class EgoEntry:
    lane: int = bounded(0, MAX_LANES - 1, default=0)  # lanes are numbered from the right, 0 first
    s_m: float = bounded(0, MAX_ROAD_LENGTH_M, default=10.0)  # start along the road
    route_length_m: float = bounded(0, MAX_ROAD_LENGTH_M, low_open=True)
    speed_mps: float = bounded(0, MAX_SPEED_MPS, default=0.0)  # at the start
    target_speed_mps: float = bounded(0, MAX_SPEED_MPS, low_open=True)


@dataclass(frozen=True, kw_only=True)
class ActorEntry:
    """One scripted actor; see sim/scenario/spec.py ActorSpec for the behaviours and their keys."""

    kind: str = one_of(*ACTOR_KINDS)
    model: str | None = None  # default: the kind's first model (ACTOR_KINDS)
    behaviour: str | None = None  # default: the kind's first behaviour (BEHAVIOURS)
    lane: int = bounded(-MAX_LANES, MAX_LANES, default=0)  # pedestrians may stand off the road
    ds_m: float = bounded(-MAX_ROAD_LENGTH_M, MAX_ROAD_LENGTH_M)  # ahead of the ego start, along the road
    side: str | None = one_of("right", "left", default=None)  # pedestrians: stand beside the road
    lateral_offset_m: float | None = bounded(-50, 50, default=None)  # from the lane centre [m]; with
    # `side`: beyond the road edge (>= 0, default PAVEMENT_OFFSET_M); else default 0
    speed_mps: float = bounded(0, MAX_SPEED_MPS, default=0.0)
    target_speed_mps: float | None = bounded(0, MAX_SPEED_MPS, default=None)  # default: speed_mps
    trigger_gap_m: float | None = bounded(0, 1000, default=None)
    trigger_time_s: float | None = bounded(0, MAX_DURATION_S, default=None)
    trigger_distance_m: float | None = bounded(0, 1000, default=None)
    target_lane: int | None = bounded(0, MAX_LANES - 1, default=None)
    manoeuvre_s: float | None = bounded(0, 60, low_open=True, default=None)
    decel_mps2: float | None = bounded(0, 20, low_open=True, default=None)


@dataclass(frozen=True, kw_only=True)
class ClutterEntry:
    """Static objects beside the road along the route, as densities per 100 m (a number or a range).

    Per kind the count is Poisson with that mean over `ds_m` (ahead of the ego start, default
    [5, route length]); each object stands at a uniform position on a random side,
    `<kind>_offset_m` (drawn per object) beyond the road edge.
    """

    pedestrians: float = bounded(0, MAX_CLUTTER_PER_100M, default=0.0)
    cones: float = bounded(0, MAX_CLUTTER_PER_100M, default=0.0)
    barriers: float = bounded(0, MAX_CLUTTER_PER_100M, default=0.0)
    parked_cars: float = bounded(0, MAX_CLUTTER_PER_100M, default=0.0)
    ds_m: tuple[float, float] | None = span(-MAX_ROAD_LENGTH_M, MAX_ROAD_LENGTH_M)
    pedestrians_offset_m: tuple[float, float] | float = per_object(0, 20, (0.5, 4.0))
    cones_offset_m: tuple[float, float] | float = per_object(0, 20, (0.3, 2.5))
    barriers_offset_m: tuple[float, float] | float = per_object(0, 20, (0.5, 2.5))
    parked_cars_offset_m: tuple[float, float] | float = per_object(0, 20, (1.3, 2.5))


CLUTTER_KINDS = {  # clutter key: actor kind and model
    "pedestrians": ("pedestrian", "pedestrian"),
    "cones": ("obstacle", "cone"),
    "barriers": ("obstacle", "barrier"),
    "parked_cars": ("obstacle", "car"),
}


@dataclass(frozen=True, kw_only=True)
class ScenarioEntry:
    """A scenario file. Keys are read in this order (and within each entry, in its field order):
    the order of the seeded draws, so it must not change."""

    name: str = identifier()  # also the name of the run's folder
    description: str = ""
    abilities: list[str] = field(default_factory=list)  # Bench2Drive abilities it tests (for reports)
    duration_s: float = bounded(0, MAX_DURATION_S, low_open=True)
    road: RoadEntry
    ego: EgoEntry
    actors: list[ActorEntry] = field(default_factory=list)
    traffic: TrafficSpec = field(default_factory=TrafficSpec)
    clutter: ClutterEntry | None = None

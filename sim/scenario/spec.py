"""A scenario after sampling: plain frozen values (sim/scenario/parse.py reads them from YAML).

A `ScenarioSpec` holds the road and the ego's route (decision's `Road` and `Route`), the scripted
actors with their behaviours and triggers, and the random NPC traffic to place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from decision.route import JunctionCrossing, Road, Route
from decision.town import Town
from perception.errors import InputError
from sim.config import bounded

MAX_TRAFFIC = 100  # NPC vehicles of `traffic`


class ScenarioError(InputError):
    """A scenario file or override that cannot be used; the message names the key."""


FLOW_SOURCE_S_M = 10.0  # a continuous flow's source: this far along its vehicles' paths


@dataclass(frozen=True)
class ActorSpec:
    """One scripted actor, sampled.

    Behaviours and the fields they use:
    - idm: IDM along its lane, MOBIL lane changes (target_speed_mps).
    - keep_lane: IDM along its lane, never changes lane.
    - cut_in: keep_lane until it is ahead of the ego by at most `trigger_gap_m` (bumper to bumper,
      measured along the road) and in the lane next to it, then moves into `target_lane` over
      `manoeuvre_s` and drives on by IDM.
    - brake: keep_lane until time `trigger_time_s`, then brakes at `decel_mps2` to a stop.
    - cross (pedestrian): waits at `d_m` beside the road until the ego is within
      `trigger_distance_m` (along the road), then walks across at `speed_mps` to the far side.
    - static: never moves (obstacles, parked cars, standing pedestrians).
    """

    kind: str
    model: str
    behaviour: str
    s_m: float  # absolute position along the road
    lane: int
    d_m: float  # lateral offset from the reference line (from lane + lateral_offset_m)
    speed_mps: float = 0.0
    target_speed_mps: float = 0.0
    trigger_gap_m: float = math.nan
    trigger_time_s: float = math.nan
    trigger_distance_m: float = math.nan
    target_lane: int = -1
    manoeuvre_s: float = math.nan
    decel_mps2: float = math.nan


@dataclass(frozen=True)
class TrafficSpec:
    """Random NPC vehicles placed around the ego (IDM + MOBIL). Also the schema of a scenario's
    `traffic` entry (sim/scenario/schema.py): these defaults apply to keys a scenario leaves out."""

    count: int = bounded(0, MAX_TRAFFIC, default=0)
    ds_min_m: float = bounded(-10_000, 10_000, default=-40.0)  # placement relative to the ego start
    ds_max_m: float = bounded(-10_000, 10_000, default=200.0)
    speed_min_mps: float = bounded(0, 70, default=10.0)
    speed_max_mps: float = bounded(0, 70, default=20.0)
    min_spacing_m: float = bounded(0, 1000, low_open=True, default=12.0)  # centre to centre, same lane


@dataclass(frozen=True)
class TownActorSpec:
    """One actor of a town scenario, on its own path through the town.

    path: a `Road` the actor moves along (for vehicles `Town.corridor` of its legs, lanes both
    ways; for pedestrians a sidewalk/crosswalk polyline with one lane), `s_m` its start along it,
    `d_m` its lateral offset from the path's reference line (a lane centre, a kerb for parked cars);
    junctions: the junction crossings of its path (stop lines, controls, signals).
    Behaviours:
    - route: drives its lane by IDM, obeys lights, stop signs and right of way (NPC traffic).
    - runner: drives its lane by IDM at `target_speed_mps` and ignores lights, stop signs and right
      of way (OppositeVehicleRunningRedLight, OppositeVehicleTakingPriority).
    - static: never moves (parked cars, accidents, cones, standing pedestrians).
    - walk (pedestrian): walks its path at `speed_mps`, waiting at crosswalks for the walk signal.
    - cross (pedestrian): stands until the ego is within `trigger_distance_m` of `trigger_xy_m`,
      then walks its path at `speed_mps` (jaywalkers, a pedestrian on the crosswalk of a turn).
    - cut_in (vehicle): parked (static) until the ego is within `trigger_distance_m` of
      `trigger_xy_m`, then merges from `d_m` into lane `lane` over `manoeuvre_s` and drives on.
    - invade (vehicle): drives its lane like route, shifted `invade_m` towards the ego's side while
      passing (InvadingTurn).
    Triggered behaviours (runner too, when `trigger_distance_m` is set) start moving then.
    `yields` False: a vehicle with right of way that does not brake for an ego cutting across or into
    its way until the ego drives along it (scenario flows at junctions: an ego that does not give way
    collides, as in CARLA's ActorFlow).
    """

    kind: str
    model: str
    behaviour: str
    path: Road
    s_m: float
    lane: int
    d_m: float
    speed_mps: float = 0.0
    target_speed_mps: float = 0.0
    junctions: tuple[JunctionCrossing, ...] = ()
    trigger_xy_m: tuple[float, float] | None = None
    trigger_distance_m: float = math.nan
    manoeuvre_s: float = math.nan
    invade_m: float = 0.0
    yields: bool = True  # False: does not brake for an ego cutting across or into its way (right of way)
    # A continuous flow's vehicle: its flow (an index; -1: none), where on its path it goes back to the
    # flow's source, and the range of the gaps [m] it keeps there behind the flow's last vehicle.
    flow: int = -1
    recycle_s_m: float = math.inf
    flow_gap_m: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class TownSpec:
    """What a town scenario adds: the map, its actors, and the random traffic and pedestrians."""

    town: Town
    actors: tuple[TownActorSpec, ...]
    vehicles: int = 0  # random NPC vehicles on random routes through the town
    pedestrians: int = 0  # random pedestrians on the sidewalks
    clear_ego_entry: bool = False  # no random vehicle starts on the ego's way to its first junction


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    description: str
    duration_s: float
    road: Road
    route: Route
    ego_speed_mps: float
    actors: tuple[ActorSpec, ...]
    traffic: TrafficSpec  # a scenario without `traffic` gets TrafficSpec() (sim/scenario/schema.py)
    town: TownSpec | None = None  # a town scenario: the route's road is its corridor through the town
    abilities: tuple[str, ...] = ()  # Bench2Drive abilities the scenario tests
    blocked_timeout_s: float | None = None  # standing still this long ends the run; None: the sim's
    ego_d_m: float | None = (
        None  # the ego's start offset from the reference line; None: the route lane's centre
    )

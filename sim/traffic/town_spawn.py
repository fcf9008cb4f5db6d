"""Who walks and drives in a town besides the scripted actors (construction time only).

`random_vehicles` places NPC vehicles on random legs of the town, each on its own long random path
(`Town.corridor` of a random walk through the street graph) in one of its own lanes;
`random_pedestrians` puts pedestrians on sidewalk loops around single streets: along one side of the
street, across it on the crosswalk at one end, back along the other side, across at the other end.
Both return `TownActorSpec`s, so `TownTraffic` treats them as it treats scripted actors. Same rng
state, same placement.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from decision.route import Road, Route, Segment
from decision.town import CROSSWALK_WIDTH_M, SIDEWALK_WIDTH_M, Leg, Town
from sim.scenario.spec import TownActorSpec

VEHICLE_PATH_M = 2000.0  # an NPC's path is at least this long: it never ends within a scenario
LEG_END_MARGIN_M = 6.0  # NPCs start at least this far from a junction box (not inside one)
EGO_CLEARANCE_M = 20.0  # no NPC starts nearer the ego's start than this
VEHICLE_SPACING_M = 12.0  # centre to centre, between any two placed vehicles
PEDESTRIAN_SPACING_M = 2.0
START_SPEED_FACTOR = (0.6, 0.9)  # initial speed = the street's limit times U(low, high)
DESIRED_SPEED_FACTOR = (0.85, 1.0)  # desired speed = the path's highest limit times U(low, high)
WALK_SPEED_MPS = (1.0, 1.6)
CORNER_RADIUS_M = 0.5  # of a pedestrian loop's corners
PLACEMENT_TRIES = 100  # per actor


def random_vehicles(
    town: Town,
    route: Route,
    count: int,
    rng: np.random.Generator,
    taken_xy_m: list[tuple[float, float]],
    clear_ego_entry: bool = False,
) -> list[TownActorSpec]:
    """`count` NPC vehicles (behaviour "route"), none within VEHICLE_SPACING_M of another or of a
    point of `taken_xy_m` (scripted actors), nor within EGO_CLEARANCE_M of the ego's start, nor, with
    `clear_ego_entry`, in the ego's direction between its start and its first junction's exit; warns
    when fewer fit. Appends the placed positions to `taken_xy_m`."""
    ex, ey, _ = route.road.to_world(route.start_s_m, route.road.lane_offset_m(route.lane))
    ego_xy = np.array([float(ex), float(ey)])
    clear_to_s = route.junctions[0].exit_s_m if clear_ego_entry and route.junctions else -math.inf
    road = route.road
    own_lanes_to_d = (road.lane_count - road.oncoming_lanes) * road.lane_width_m - road.half_width_m
    legs = sorted(town.graph.nodes, key=lambda lg: (lg.street, not lg.forward))
    placed: list[TownActorSpec] = []
    for _ in range(count * PLACEMENT_TRIES):
        if len(placed) == count:
            break
        leg = legs[int(rng.integers(len(legs)))]
        free = town.leg_free_m(leg)
        s = float(rng.uniform(LEG_END_MARGIN_M, free - LEG_END_MARGIN_M))
        # It keeps its lane, so every turn suits it: right from the rightmost, left from the leftmost
        # (on one lane, any turn; integers(1) draws no number from the generator).
        lane = int(rng.integers(town.lanes))
        turns = (
            {"straight"}
            | ({"right"} if lane == 0 else set())
            | ({"left"} if lane == town.lanes - 1 else set())
        )
        path, crossings = town.corridor(town.random_legs(rng, leg, VEHICLE_PATH_M, turns))
        xy = _leg_point(town, leg, s, lane)
        if np.hypot(*(xy - ego_xy)) < EGO_CLEARANCE_M or _crowded(xy, taken_xy_m, VEHICLE_SPACING_M):
            continue
        if clear_to_s > route.start_s_m:
            s_route, d_route = road.to_frenet(xy)
            if route.start_s_m < s_route < clear_to_s and -road.half_width_m < d_route < own_lanes_to_d:
                continue  # on the ego's way to its first junction, in a lane of its direction
        taken_xy_m.append((float(xy[0]), float(xy[1])))
        limit = town.streets[leg.street].speed_limit_mps
        speed = limit * float(rng.uniform(*START_SPEED_FACTOR))
        desired = max(v for _, v in path.speed_limits) * float(rng.uniform(*DESIRED_SPEED_FACTOR))
        d = float(path.lane_offset_m(lane))
        placed.append(
            TownActorSpec(
                "vehicle", "car", "route", path, s, lane, d, speed, desired, junctions=tuple(crossings)
            )
        )
    if len(placed) < count:
        warnings.warn(f"town traffic: placed {len(placed)} of {count} NPC vehicles (no room)", stacklevel=3)
    return placed


def random_pedestrians(
    town: Town, count: int, rng: np.random.Generator, taken_xy_m: list[tuple[float, float]]
) -> list[TownActorSpec]:
    """`count` pedestrians (behaviour "walk") on sidewalk loops of random streets, at random points
    of the sidewalk (never on the road), walking either way round."""
    streets = sorted(town.streets)
    placed: list[TownActorSpec] = []
    for _ in range(count * PLACEMENT_TRIES):
        if len(placed) == count:
            break
        street = streets[int(rng.integers(len(streets)))]
        path = sidewalk_loop(town, street, clockwise=bool(rng.random() < 0.5))
        side_m = path.segments[0].length_m  # the first straight runs along a sidewalk
        s = float(rng.uniform(0.0, side_m)) + (path.length_m / 2 if rng.random() < 0.5 else 0.0)
        x, y, _ = path.to_world(s, 0.0)
        if _crowded(np.array([float(x), float(y)]), taken_xy_m, PEDESTRIAN_SPACING_M):
            continue
        taken_xy_m.append((float(x), float(y)))
        speed = float(rng.uniform(*WALK_SPEED_MPS))
        placed.append(TownActorSpec("pedestrian", "pedestrian", "walk", path, s, 0, 0.0, speed, speed))
    if len(placed) < count:
        warnings.warn(f"town traffic: placed {len(placed)} of {count} pedestrians (no room)", stacklevel=3)
    return placed


def sidewalk_loop(town: Town, street: int, clockwise: bool = False) -> Road:
    """A closed walking path (a one-lane `Road` whose end meets its start) around `street`: along
    the middle of its right sidewalk (left when `clockwise`), across the crosswalk at the far end,
    back along the other sidewalk and across the crosswalk at the near end. Corners are arcs of
    CORNER_RADIUS_M."""
    st = town.streets[street]
    (ax, ay), (bx, by) = town.nodes[st.a].xy_m, town.nodes[st.b].xy_m
    heading = math.atan2(by - ay, bx - ax)
    length = town.street_length_m(street)
    x0 = town.half_size_m[st.a] + CROSSWALK_WIDTH_M / 2  # the crosswalks' middle lines
    x1 = length - town.half_size_m[st.b] - CROSSWALK_WIDTH_M / 2
    side = town.half_width_m + SIDEWALK_WIDTH_M / 2  # sidewalk middle from the centre line
    r = CORNER_RADIUS_M
    along, across = x1 - x0 - 2 * r, 2 * side - 2 * r
    turn = -r if clockwise else r
    quarter = 0.5 * math.pi * r
    segments = [
        Segment("straight", along),
        Segment("arc", quarter, turn),
        Segment("straight", across),
        Segment("arc", quarter, turn),
    ] * 2
    y0 = side if clockwise else -side
    c, s = math.cos(heading), math.sin(heading)
    origin = (ax + (x0 + r) * c - y0 * s, ay + (x0 + r) * s + y0 * c, heading)
    return Road(segments, 1, 1.0, max(WALK_SPEED_MPS), origin)


def _leg_point(town: Town, leg: Leg, s_m: float, lane: int) -> np.ndarray:
    """World point of lane `lane`'s centre `s_m` into `leg` (from its start box)."""
    start = town.leg_start(leg)
    heading = town.leg_heading(leg)
    c, s = math.cos(heading), math.sin(heading)
    along = town.half_size_m[start] + s_m
    right = (town.lanes - lane - 0.5) * town.lane_width_m  # lane 0 is the rightmost own lane
    x0, y0 = town.nodes[start].xy_m
    return np.array([x0 + along * c + right * s, y0 + along * s - right * c])


def _crowded(xy: np.ndarray, taken: list[tuple[float, float]], spacing_m: float) -> bool:
    if not taken:
        return False
    return bool((np.hypot(*(np.array(taken) - xy).T) < spacing_m).any())

"""Who takes part in the traffic of a scenario, and what they look like (construction time only).

`random_npcs` places the scenario's random IDM vehicles; `actor_look` gives the size, colour and
perception class of an actor's model. `sim.traffic.traffic.Traffic` builds its rows from both.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE
from sim.scenario.spec import ActorSpec, ScenarioSpec

PEDESTRIAN_SIZE_M = (0.5, 0.5, 1.75)  # length, width, height
CONE_SIZE_M = (0.4, 0.4, 0.7)
BARRIER_SIZE_M = (0.5, 2.5, 1.0)  # thin along the road, blocks most of a lane across it
# A vehicle model's size = the configured vehicle size (a car's) times its scale.
VEHICLE_SCALE = {
    "car": (1.0, 1.0, 1.0),
    "van": (1.15, 1.1, 1.4),
    "truck": (1.8, 1.35, 2.13),  # 8.1 x 2.43 x 3.2 m for a 4.5 x 1.8 x 1.5 m car
    "bus": (2.6, 1.4, 2.07),  # 11.7 x 2.52 x 3.1 m
    "ambulance": (1.25, 1.15, 1.55),  # a box van: 5.6 x 2.07 x 2.3 m, its beacons included
}
AMBULANCE_RGBA = (0.95, 0.95, 0.93, 1.0)  # emergency vehicles are white, whatever the colour draw
END_MARGIN_M = 5.0  # no vehicle gets nearer the road's end than this (they brake for it before)
NPC_DESIRED_SPEED_FACTOR = (1.0, 1.2)  # random NPC desired speed = initial speed x U(low, high)
PLACEMENT_TRIES_PER_NPC = 200
VEHICLE_PALETTE = (
    (0.85, 0.85, 0.85, 1.0),
    (0.1, 0.1, 0.1, 1.0),
    (0.7, 0.1, 0.1, 1.0),
    (0.1, 0.25, 0.6, 1.0),
    (0.5, 0.5, 0.55, 1.0),
    (0.9, 0.75, 0.2, 1.0),
    (0.2, 0.45, 0.25, 1.0),
)
PEDESTRIAN_PALETTE = ((0.2, 0.2, 0.5, 1.0), (0.6, 0.2, 0.2, 1.0), (0.25, 0.5, 0.3, 1.0), (0.3, 0.3, 0.3, 1.0))
CONE_RGBA = (1.0, 0.45, 0.0, 1.0)
BARRIER_RGBA = (0.9, 0.15, 0.1, 1.0)

RgbaFn = Callable[[np.random.Generator], np.ndarray]


def actor_look(
    a: ActorSpec,
    vehicle_size_m: tuple[float, float, float],
    rng: np.random.Generator,
    rgba_fn: RgbaFn | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Size (3,) length, width, height [m], colour (4,) and class id of an actor's model.

    Vehicles (VEHICLE_SCALE's models) take `rgba_fn(rng)` when given, else a palette colour drawn
    from `rng`.
    """
    if a.model in VEHICLE_SCALE:
        scale = np.array(VEHICLE_SCALE[a.model])
        if a.model == "ambulance":
            rgba = np.array(AMBULANCE_RGBA)
        elif rgba_fn is not None:
            rgba = np.asarray(rgba_fn(rng), float).reshape(4)
        else:
            rgba = np.array(VEHICLE_PALETTE[rng.integers(len(VEHICLE_PALETTE))], float)
        return np.array(vehicle_size_m) * scale, rgba, VEHICLE
    if a.model == "pedestrian":
        rgba = PEDESTRIAN_PALETTE[rng.integers(len(PEDESTRIAN_PALETTE))]
        return np.array(PEDESTRIAN_SIZE_M), np.array(rgba), PEDESTRIAN
    if a.model == "cone":
        return np.array(CONE_SIZE_M), np.array(CONE_RGBA), OBSTACLE
    return np.array(BARRIER_SIZE_M), np.array(BARRIER_RGBA), OBSTACLE


def random_npcs(spec: ScenarioSpec, vehicle_length_m: float, rng: np.random.Generator) -> list[ActorSpec]:
    """`spec.traffic.count` idm vehicles at random lanes and positions, none closer than
    `min_spacing_m` (centre to centre, same lane) to another, a scripted actor or the ego start.

    Warns when fewer fit. Their desired speed is their initial speed times a random factor.
    """
    tr, road = spec.traffic, spec.road
    if tr.count <= 0:
        return []
    ego_s = spec.route.start_s_m
    lo = max(ego_s + tr.ds_min_m, vehicle_length_m)
    hi = min(ego_s + tr.ds_max_m, road.length_m - END_MARGIN_M - vehicle_length_m)
    taken: list[list[float]] = [[] for _ in range(road.lane_count)]
    taken[spec.route.lane].append(ego_s)
    for a in spec.actors:
        if abs(a.d_m) < road.half_width_m:
            taken[int(road.lane_at(a.d_m))].append(a.s_m)
    placed: list[tuple[int, float]] = []
    for _ in range(tr.count * PLACEMENT_TRIES_PER_NPC if hi > lo else 0):
        if len(placed) == tr.count:
            break
        lane, s = int(rng.integers(road.lane_count)), float(rng.uniform(lo, hi))
        if all(abs(s - other) >= tr.min_spacing_m for other in taken[lane]):
            taken[lane].append(s)
            placed.append((lane, s))
    if len(placed) < tr.count:
        warnings.warn(
            f"traffic: placed {len(placed)} of {tr.count} NPC vehicles (no room at min_spacing_m="
            f"{tr.min_spacing_m} in s [{lo:.0f}, {hi:.0f}] m)",
            stacklevel=3,
        )
    npcs = []
    for lane, s in placed:
        speed = float(rng.uniform(tr.speed_min_mps, tr.speed_max_mps))
        desired = speed * float(rng.uniform(*NPC_DESIRED_SPEED_FACTOR))
        d = float(road.lane_offset_m(lane))
        npcs.append(ActorSpec("vehicle", "car", "idm", s, lane, d, speed, target_speed_mps=desired))
    return npcs

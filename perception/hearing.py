"""Sirens: which tracks are emergency vehicles, from the bearings the ego's microphones hear.

An emergency vehicle's beacons are a few pixels at the range it must be made way for (a 0.15 m bar
is under a pixel 30 m behind in a 110-degree rear camera), but its siren is heard hundreds of
metres off, and a microphone array tells from where (as real stacks listen for sirens). Each
bearing heard is given to a vehicle track within `gate_rad` of it: the one it was given to before,
if that one still is (a car passing near the same bearing does not take it over), else the nearest
in bearing. The world model reports the bearings heard too (`WorldModel.sirens`): one no track
accounts for, or whose track the planner does not find where an emergency vehicle would come from,
is an emergency vehicle not yet seen (or lost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from perception.types import VEHICLE, EgoState


def match_sirens(
    sirens: Sequence[float],
    ego: EgoState,
    xy_m: np.ndarray,
    class_ids: np.ndarray,
    gate_rad: float,
    before: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) bool: the vehicle tracks a siren was matched to.

    `sirens`: bearings [rad] in the ego's frame; `xy_m` (N, 2), `class_ids` (N,): the tracks;
    `before` (N,) bool: the tracks matched at the last tick (None: none).
    """
    emergency = np.zeros(len(class_ids), bool)
    if not sirens:
        return emergency
    track_bearing = np.arctan2(xy_m[:, 1] - ego.y_m, xy_m[:, 0] - ego.x_m) - ego.yaw_rad
    for bearing in sirens:
        miss = np.abs((track_bearing - bearing + math.pi) % (2.0 * math.pi) - math.pi)
        miss[class_ids != VEHICLE] = np.inf
        if before is not None and (before & (miss <= gate_rad)).any():
            miss = np.where(before, miss, np.inf)  # keep to the track it was heard from
        i = int(np.argmin(miss)) if len(miss) else -1
        if i >= 0 and miss[i] <= gate_rad:
            emergency[i] = True
    return emergency

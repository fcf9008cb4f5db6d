"""Failure attribution: what perception got wrong in the seconds before each infraction of a run.

For every infraction (and a run that ended blocked or timed out), the actors near the ego in the
window before it are matched with what perception reported (sim/record/runlog.py), and the likely
cause is named: an actor outside every camera's field of view, a missed actor, a localisation
error, a late track, phantoms, or planning/control. A perceiver that sees through the rig's cameras
is only expected to report what lay in a camera's view (the log's camera views,
`runlog.in_view`); a ground-truth one sees all around.
"""

from __future__ import annotations

import numpy as np

from perception.types import CLASSES
from sim.metrics.events import COLLISION_KINDS, EventKind
from sim.record import runlog
from sim.record.replay import Run

ATTRIBUTION_WINDOW_S = 3.0  # perception is examined over this long before an infraction
MATCH_RADIUS_M = 2.5  # a perceived object within this of an actor (same class) is that actor
SENSING_RANGE_M = 50.0  # actors farther than this from the ego are not expected to be perceived
NEAR_M = 30.0  # a run that ended blocked or timed out: the actors this near the ego are examined
LOCALISATION_BLAME_M = 1.5  # a mean position error above this is blamed on perception
LATENCY_BLAME_S = 0.5  # so is a track that came this late after the actor was in range
MISS_BLAME = 0.5  # so is an actor missed on more than this fraction of the window's ticks
PHANTOM_RANGE_M = 40.0  # a perceived object this close to the ego that matches no actor is a phantom
PHANTOM_BLAME = 0.5  # phantoms on more than this fraction of the window's ticks are blamed
INFRACTION_KINDS = (
    *COLLISION_KINDS,
    EventKind.OFF_ROAD,
)  # penalised events (lane changes invade lanes on purpose)
FAILURE_KINDS = (EventKind.BLOCKED, EventKind.TIMEOUT)  # runs that ended without completing the route


def attribute(run: Run, window_s: float = ATTRIBUTION_WINDOW_S) -> list[dict]:
    """For every infraction (collision, off road) and failure (blocked, timeout) of the run, the
    perception errors in the `window_s` before it and the likely cause. The actors examined: the
    one hit (collisions), else those within NEAR_M of the ego that a camera saw in the window.

    outside_view_fraction: share of the window's ticks (actor within SENSING_RANGE_M) that the
    actor hit spent outside every camera's view (None for other events, 0 for a perceiver that sees
    all around); missed_fraction: share of the window's ticks (actor within SENSING_RANGE_M and in
    view) with no perceived object of its class within MATCH_RADIUS_M; localisation_error_m: mean distance to the matched
    object; track_latency_s: from the actor coming into range (this run) to its first match;
    phantom_fraction: share of the window's ticks with a perceived object within PHANTOM_RANGE_M
    of the ego that matches no actor (what makes an ego stop for nothing).
    """
    log = run.log
    t = log.ticks["t_s"]
    ego_xy = np.stack([log.ticks["x_m"], log.ticks["y_m"]], axis=1)  # (T, 2)
    in_range = np.linalg.norm(log.actor_xy_m - ego_xy[:, None], axis=2) <= SENSING_RANGE_M  # (T, N)
    radius = 0.5 * np.hypot(log.actor_size_m[:, 0], log.actor_size_m[:, 1])
    viewed = runlog.in_view(log.meta, ego_xy, log.ticks["yaw_rad"], log.actor_xy_m, radius)  # (T, N)
    error, matched, phantom = _match(log, ego_xy)  # (T, N) metres, (T, N) bool, (T,) bool
    out = []
    for e in log.events:
        if e.kind not in INFRACTION_KINDS + FAILURE_KINDS:
            continue
        k_end = int(np.searchsorted(t, e.t_s, side="right"))
        window = slice(int(np.searchsorted(t, e.t_s - window_s)), k_end)
        outside = None
        if e.actor_id >= 0 and e.actor_id in log.actor_ids:
            actors = [int(np.flatnonzero(log.actor_ids == e.actor_id)[0])]
            reach = in_range[window, actors[0]]
            if reach.any():
                outside = float(1.0 - viewed[window, actors[0]][reach].mean())
        else:
            k = max(k_end - 1, 0)
            near = np.linalg.norm(log.actor_xy_m[k] - ego_xy[k], axis=1) <= NEAR_M
            actors = list(np.flatnonzero(near & viewed[window].any(axis=0)))
        missed, loc, latency = [], [], []
        for j in actors:
            expect = in_range[window, j] & viewed[window, j]
            if expect.any():
                missed.append(1.0 - matched[window, j][expect].mean())
            hits = matched[window, j] & expect
            if hits.any():
                loc.append(float(error[window, j][hits].mean()))
            first_in = np.flatnonzero(in_range[:k_end, j])
            first_hit = np.flatnonzero(matched[:k_end, j])
            if first_in.size and first_hit.size:
                latency.append(max(0.0, float(t[first_hit[0]] - t[first_in[0]])))
            elif first_in.size:
                latency.append(float(t[k_end - 1] - t[first_in[0]]))  # never tracked: at least this late
        row = {
            "t_s": float(e.t_s),
            "kind": str(e.kind),
            "actor_id": int(e.actor_id),
            "actor_class": CLASSES[int(log.actor_class_ids[actors[0]])] if len(actors) == 1 else None,
            "outside_view_fraction": outside,
            "missed_fraction": max(missed) if missed else None,
            "localisation_error_m": max(loc) if loc else None,
            "track_latency_s": max(latency) if latency else None,
            "phantom_fraction": float(phantom[window].mean()) if k_end > 0 else None,
        }
        row["cause"] = _cause(row)
        out.append(row)
    return out


def _match(log: runlog.RunLog, ego_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over the ticks, comparing what perception reported with the true actors (same
    class only): error (T, N) distance from each actor to the nearest perceived object (inf when
    none), matched (T, N) = error <= MATCH_RADIUS_M, and phantom (T,): a perceived object within
    PHANTOM_RANGE_M of the ego matches no actor."""
    T, N = log.actor_xy_m.shape[:2]
    error = np.full((T, N), np.inf)
    phantom = np.zeros(T, dtype=bool)
    for k in range(T):
        seen = log.perceived_at(k)
        if not len(seen):
            continue
        d = np.linalg.norm(log.actor_xy_m[k][:, None] - seen[None, :, 3:5], axis=2)  # (N, K)
        d[log.actor_class_ids[:, None] != seen[None, :, 2]] = np.inf
        error[k] = d.min(axis=1, initial=np.inf)
        near = np.linalg.norm(seen[:, 3:5] - ego_xy[k], axis=1) <= PHANTOM_RANGE_M
        phantom[k] = bool((near & (d.min(axis=0, initial=np.inf) > MATCH_RADIUS_M)).any())
    return error, error <= MATCH_RADIUS_M, phantom


def _cause(row: dict) -> str:
    missed, loc, latency = row["missed_fraction"], row["localisation_error_m"], row["track_latency_s"]
    phantom = row["phantom_fraction"]
    if row["kind"] in FAILURE_KINDS and phantom is not None and phantom > PHANTOM_BLAME:
        return f"perception: phantom object ahead on {100 * phantom:.0f}% of the last ticks"
    outside = row.get("outside_view_fraction")
    if outside is not None and outside > MISS_BLAME:
        return f"perception: outside the field of view on {100 * outside:.0f}% of the last ticks"
    if missed is not None and missed > MISS_BLAME:
        return f"perception: missed the actor on {100 * missed:.0f}% of the last ticks"
    if loc is not None and loc > LOCALISATION_BLAME_M:
        return f"perception: localisation error {loc:.1f} m"
    if latency is not None and latency > LATENCY_BLAME_S:
        return f"perception: tracked {latency:.1f} s after coming into range"
    if missed is None:
        return "planning/control: no actor in range"
    return "planning/control: the actor was perceived in time"

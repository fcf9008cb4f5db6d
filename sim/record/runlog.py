"""The compact log of one closed-loop run (RUN_DIR/log.npz): enough to recompute every score and
to re-render the run without simulating it again (`bulletdrive replay`).

Arrays (T ticks at the control rate, N actors):
    the per-tick ego states of sim.simulation.TICK_KEYS, each (T,)
    actor_xy_m (T, N, 2), actor_yaw_rad (T, N): the true actor poses
    actor_ids (N,), actor_class_ids (N,), actor_size_m (N, 3)
    perception (K, 11): what the perceiver gave the planner, one row per object per tick, in tick order:
        tick, track id, class id, x, y, vx, vy, yaw, length, width, score (PERCEPTION_COLUMNS)
    detections (D, 8): the detector's boxes per camera frame (empty for ground-truth perception):
        tick, x0, y0, x1, y1 [px], class id, score, distance [m] (DETECTION_COLUMNS)
    events: JSON text of the event list; meta: JSON text of the format, the route and the
        run-long quantities the scores need (off-road and driven distance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.errors import InputError
from perception.files import atomic_path
from perception.types import WorldModel
from sim.metrics.events import Event
from sim.simulation import TICK_KEYS

LOG_FORMAT = "bulletdrive.runlog"
LOG_VERSION = 1
PERCEPTION_COLUMNS = (
    "tick",
    "id",
    "class_id",
    "x_m",
    "y_m",
    "vx_mps",
    "vy_mps",
    "yaw_rad",
    "length_m",
    "width_m",
    "score",
)
DETECTION_COLUMNS = ("tick", "x0", "y0", "x1", "y1", "class_id", "score", "distance_m")


class RunLogError(InputError):
    """A run folder whose log cannot be read; the message is one line naming the file."""


class PerceptionRecorder:
    """Collects the perceiver's output every tick. `add` only keeps a reference (perceivers return
    fresh arrays and never change them later); the rows are built once, at the end (`arrays`)."""

    def __init__(self):
        self._seen: list[tuple[int, WorldModel, bool]] = []

    def add(self, tick: int, world: WorldModel, new_frame: bool) -> None:
        self._seen.append((tick, world, new_frame))

    def arrays(self) -> dict[str, np.ndarray]:
        """perception (K, 11) rows of PERCEPTION_COLUMNS, detections (D, 8) of DETECTION_COLUMNS."""
        rows, dets = [], []
        for tick, world, new_frame in self._seen:
            if len(world):
                rows.append(
                    np.column_stack(
                        [np.full(len(world), tick), world.ids, world.class_ids, world.xy_m, world.v_mps,
                         world.yaw_rad, world.size_m[:, :2], world.scores]
                    )
                )  # fmt: skip
            if new_frame and world.detections:
                dets += [(tick, *d.box_xyxy, d.class_id, d.score, d.distance_m) for d in world.detections]
        return {
            "perception": np.concatenate(rows).astype(float)
            if rows
            else np.zeros((0, len(PERCEPTION_COLUMNS))),
            "detections": np.array(dets, dtype=float).reshape(-1, len(DETECTION_COLUMNS)),
        }


@dataclass
class RunLog:
    ticks: dict[str, np.ndarray]
    actor_xy_m: np.ndarray
    actor_yaw_rad: np.ndarray
    actor_ids: np.ndarray
    actor_class_ids: np.ndarray
    actor_size_m: np.ndarray
    perception: np.ndarray
    detections: np.ndarray
    events: list[Event]
    meta: dict

    def perceived_at(self, tick: int) -> np.ndarray:
        """Rows of `perception` of one tick (K_t, 11): a slice, the rows are in tick order."""
        ticks = self.perception[:, 0]
        return self.perception[np.searchsorted(ticks, tick) : np.searchsorted(ticks, tick, side="right")]


def write(path: Path, log: RunLog) -> None:
    """Write log.npz atomically."""
    meta = {"format": LOG_FORMAT, "version": LOG_VERSION, **log.meta}
    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp,
            **log.ticks,
            actor_xy_m=log.actor_xy_m,
            actor_yaw_rad=log.actor_yaw_rad,
            actor_ids=log.actor_ids,
            actor_class_ids=log.actor_class_ids,
            actor_size_m=log.actor_size_m,
            perception=log.perception,
            detections=log.detections,
            events=np.array(json.dumps([e.to_dict() for e in log.events])),
            meta=np.array(json.dumps(meta)),
        )


def read(path: Path) -> RunLog:
    """Read a log.npz written by `write`; RunLogError on a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise RunLogError(f"{path}: no run log (log.npz) here")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta")))
        events = [Event.from_dict(e) for e in json.loads(str(data.pop("events")))]
    except Exception as err:  # zip, JSON, key errors: one line
        raise RunLogError(f"{path}: not a readable run log ({type(err).__name__})") from None
    if meta.get("format") != LOG_FORMAT or meta.get("version") != LOG_VERSION:
        raise RunLogError(
            f"{path}: run log format {meta.get('format')} v{meta.get('version')}, expected {LOG_FORMAT} v{LOG_VERSION}"
        )
    ticks = {k: data.pop(k) for k in TICK_KEYS}
    return RunLog(ticks=ticks, events=events, meta=meta, **data)

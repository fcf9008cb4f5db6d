"""The compact log of one closed-loop run (RUN_DIR/log.npz): enough to recompute every score and
to re-render the run without simulating it again (`bulletdrive replay`).

Arrays (T ticks at the control rate, N actors):
    the per-tick ego states of sim.simulation.TICK_KEYS, each (T,)
    actor_xy_m (T, N, 2), actor_yaw_rad (T, N): the true actor poses
    actor_ids (N,), actor_class_ids (N,), actor_size_m (N, 3)
    perception (K, 11): what the perceiver gave the planner, one row per object per tick, in tick order:
        tick, track id, class id, x, y, vx, vy, yaw, length, width, score (PERCEPTION_COLUMNS)
    detections (D, 9): the detector's boxes per camera frame (empty for ground-truth perception):
        tick, x0, y0, x1, y1 [px], class id, score, distance [m], camera (its index in the rig)
        (DETECTION_COLUMNS)
    events: JSON text of the event list; meta: JSON text of the format, the route and the
        run-long quantities the scores need (off-road and driven distance); for a perceiver that
        sees through the rig's cameras, their views ("cameras": perception/visibility.py CameraView
        fields).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception import visibility
from perception.errors import InputError
from perception.files import atomic_path
from perception.types import WorldModel
from perception.visibility import CameraView
from sim.metrics.events import Event
from sim.simulation import TICK_KEYS

LOG_FORMAT = "bulletdrive.runlog"
LOG_VERSION = 2  # 2: the camera of each detection
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
DETECTION_COLUMNS = ("tick", "x0", "y0", "x1", "y1", "class_id", "score", "distance_m", "camera")
# The arrays of a log besides the ticks: their shapes, with T ticks and N actors; None: any size.
ARRAY_SHAPES = {
    "actor_xy_m": ("T", "N", 2),
    "actor_yaw_rad": ("T", "N"),
    "actor_ids": ("N",),
    "actor_class_ids": ("N",),
    "actor_size_m": ("N", 3),
    "perception": (None, len(PERCEPTION_COLUMNS)),
    "detections": (None, len(DETECTION_COLUMNS)),
}
META_NUMBERS = ("off_road_distance_m", "driven_distance_m", "control_hz")  # what rescoring and rendering read


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
        """perception (K, 11) rows of PERCEPTION_COLUMNS, detections (D, 9) of DETECTION_COLUMNS."""
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
                dets += [
                    (tick, *d.box_xyxy, d.class_id, d.score, d.distance_m, d.camera) for d in world.detections
                ]
        return {
            "perception": np.concatenate(rows).astype(float)
            if rows
            else np.zeros((0, len(PERCEPTION_COLUMNS))),
            "detections": np.array(dets, dtype=float).reshape(-1, len(DETECTION_COLUMNS)),
        }


def in_view(
    log_meta: dict, ego_xy_m: np.ndarray, ego_yaw_rad: np.ndarray, xy_m: np.ndarray, radius_m
) -> np.ndarray:
    """(T, N) whether each actor (centres xy_m (T, N, 2), bounding radius radius_m (N,)) lay within
    some camera's view (perception/visibility.py), the ego at ego_xy_m (T, 2) heading ego_yaw_rad
    (T,); everywhere True for a run whose perceiver did not see through cameras."""
    cameras = log_meta.get("cameras")
    views = [CameraView(**c) for c in cameras] if cameras else None
    return visibility.in_view(views, ego_xy_m[:, None], ego_yaw_rad[:, None], xy_m, radius_m)


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
    """Read a log.npz written by `write`. RunLogError (one line naming the file and what is wrong) on
    a missing, corrupt or foreign file, a missing key, or arrays whose shapes do not fit together."""
    path = Path(path)
    if not path.is_file():
        raise RunLogError(f"{path}: no run log (log.npz) here")
    data = _load_arrays(path)
    meta = _json_field(path, data, "meta", dict)
    if meta.get("format") != LOG_FORMAT or meta.get("version") != LOG_VERSION:
        raise RunLogError(
            f"{path}: run log format {meta.get('format')} v{meta.get('version')}, expected {LOG_FORMAT} v{LOG_VERSION}"
        )
    try:
        events = [Event.from_dict(e) for e in _json_field(path, data, "events", list)]
    except ValueError as err:
        raise RunLogError(f"{path}: a bad event in the run log ({err})") from None
    missing = [k for k in (*TICK_KEYS, *ARRAY_SHAPES) if k not in data]
    if missing:
        raise RunLogError(f"{path}: the run log has no {', '.join(missing)}")
    _check_meta(path, meta)
    ticks = {k: data[k] for k in TICK_KEYS}
    arrays = {k: data[k] for k in ARRAY_SHAPES}
    _check_shapes(path, ticks, arrays)
    return RunLog(ticks=ticks, events=events, meta=meta, **arrays)


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the npz archive at `path`; RunLogError if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as err:  # not a zip, a bare .npy (no .files), a pickle, a damaged member: one line
        raise RunLogError(f"{path}: not a readable run log ({type(err).__name__})") from None


def _json_field(path: Path, data: dict[str, np.ndarray], key: str, kind: type):
    """The JSON text stored under `key`, parsed, of type `kind`."""
    if key not in data:
        raise RunLogError(f"{path}: the run log has no {key}")
    try:
        value = json.loads(str(data[key]))
    except ValueError:
        raise RunLogError(f"{path}: the run log's {key} is not JSON") from None
    if not isinstance(value, kind):
        raise RunLogError(
            f"{path}: the run log's {key} is a {type(value).__name__}, expected a {kind.__name__}"
        )
    return value


def _check_meta(path: Path, meta: dict) -> None:
    for key in META_NUMBERS:
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RunLogError(f"{path}: the run log's meta.{key} is {value!r}, expected a number")
    if meta["control_hz"] <= 0:
        raise RunLogError(f"{path}: the run log's meta.control_hz is {meta['control_hz']}, expected > 0")
    size = meta.get("ego_size_m")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, (int, float)) for v in size)):
        raise RunLogError(f"{path}: the run log's meta.ego_size_m is {size!r}, expected [length, width]")


def _check_shapes(path: Path, ticks: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    """Every array numeric; the ticks (T,) with T >= 1; the others as ARRAY_SHAPES says; the
    perception rows in tick order (RunLog.perceived_at relies on it)."""
    named = {**ticks, **arrays}
    for key, a in named.items():
        if not np.issubdtype(a.dtype, np.number):
            raise RunLogError(f"{path}: the run log's {key} holds {a.dtype}, expected numbers")
    t, ids = ticks["t_s"], arrays["actor_ids"]
    if t.ndim != 1 or len(t) == 0 or ids.ndim != 1:
        raise RunLogError(f"{path}: the run log's t_s {t.shape} or actor_ids {ids.shape} is not a list")
    sizes = {"T": len(t), "N": len(ids)}
    for key, shape in {**dict.fromkeys(ticks, ("T",)), **ARRAY_SHAPES}.items():
        want = tuple(sizes.get(d, d) for d in shape)
        got = named[key].shape
        if len(got) != len(want) or any(w is not None and w != n for w, n in zip(want, got, strict=False)):
            text = ", ".join("any" if w is None else str(w) for w in want)
            raise RunLogError(f"{path}: the run log's {key} has shape {got}, expected ({text})")
    if np.any(np.diff(arrays["perception"][:, 0]) < 0):
        raise RunLogError(f"{path}: the run log's perception rows are not in tick order")

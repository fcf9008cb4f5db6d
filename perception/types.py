"""Messages that flow out of perception: what the camera saw and what the world looks like.

All types are frozen dataclasses in SI units (m, s, rad, m/s). Arrays are numpy. Perception owns
these types; it never imports `sim` or pybullet, so the same code runs on a real camera frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The detector's classes, in the order used by class ids everywhere (datasets, detector heads, sim
# actors): first the objects that perception tracks (OBJECT_CLASSES, the world model's class ids),
# then a traffic light by the state its lamps show (a light's class is its state).
SIGNAL_STATES: tuple[str, ...] = ("green", "yellow", "red")  # a signal group's states, by code
OBJECT_CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "obstacle")
LIGHT_CLASSES: tuple[str, ...] = tuple(f"light_{state}" for state in SIGNAL_STATES)
CLASSES: tuple[str, ...] = OBJECT_CLASSES + LIGHT_CLASSES
VEHICLE, PEDESTRIAN, OBSTACLE = 0, 1, 2
FIRST_LIGHT_CLASS = len(OBJECT_CLASSES)  # class id of light_green; light_{state} = this + its state index


@dataclass(frozen=True, slots=True)
class EgoState:
    """Odometry of the ego vehicle at time `t_s` (rear-axle-free: the pose is the box centre)."""

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float
    yaw_rate_radps: float = 0.0
    accel_mps2: float = 0.0
    t_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """One camera image.

    rgb: (H, W, 3) uint8. depth_m: (H, W) float32 metres along the optical axis, or None.
    K: (3, 3) intrinsics. cam_to_world: (4, 4) pose of the camera, optical frame
    (x right, y down, z forward). camera: the name of the camera of the rig that made it.
    """

    rgb: np.ndarray
    K: np.ndarray
    cam_to_world: np.ndarray
    t_s: float
    depth_m: np.ndarray | None = None
    camera: str = "front"


@dataclass(frozen=True, slots=True)
class Detection:
    """One object in an image: box (x0, y0, x1, y1) in pixels, class id, score, distance [m], and
    which camera of the rig saw it (its index)."""

    box_xyxy: tuple[float, float, float, float]
    class_id: int
    score: float
    distance_m: float = float("nan")
    camera: int = 0


@dataclass(frozen=True, slots=True)
class Track:
    """One object on the ground, in the world frame."""

    track_id: int
    class_id: int
    x_m: float
    y_m: float
    vx_mps: float
    vy_mps: float
    yaw_rad: float
    length_m: float
    width_m: float
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class WorldModel:
    """What the planner knows at time `t_s`: the ego state and the tracked objects.

    The tracks are stored as arrays (one row per object) so that the planner can work on all of
    them at once; `tracks()` gives them as `Track` objects.
    ids: (N,) int; class_ids: (N,) int; xy_m: (N, 2); v_mps: (N, 2) world-frame velocity;
    yaw_rad: (N,); size_m: (N, 2) length, width; scores: (N,); emergency: (N,) bool, the emergency
    vehicles (flashing beacons) among them, or None where the perceiver does not tell (none known).
    v_std_mps: (N,) the standard deviation of each velocity [m/s] (a track just born does not know
    its own yet), or None: exact (ground truth).
    heading_seen: (N,) bool, whether each heading was measured (a camera track's is its velocity's,
    once it was seen to move; before that, the heading it was born with), or None: all (ground truth).
    sirens: the bearings [rad] (in the ego's frame, anticlockwise from its heading) of the sirens
    heard (`emergency` marks the tracks they were matched to).
    views: what the perceiver could see, its cameras' views (perception/visibility.py CameraView),
    or None: all around (ground truth).
    """

    ego: EgoState
    t_s: float
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    xy_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    v_mps: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    yaw_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))
    size_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    detections: tuple[Detection, ...] = ()
    # Traffic lights: (signal group id, state) pairs, state one of SIGNAL_STATES, as perceived.
    signals: tuple[tuple[int, str], ...] = ()
    emergency: np.ndarray | None = None
    v_std_mps: np.ndarray | None = None
    heading_seen: np.ndarray | None = None
    views: tuple | None = None
    sirens: tuple[float, ...] = ()

    def signal(self, signal_id: int) -> str | None:
        """The perceived state of a signal group ("green", "yellow", "red"), None when not seen."""
        for sid, state in self.signals:
            if sid == signal_id:
                return state
        return None

    def __len__(self) -> int:
        return len(self.ids)

    def tracks(self) -> list[Track]:
        return [
            Track(
                int(self.ids[i]),
                int(self.class_ids[i]),
                float(self.xy_m[i, 0]),
                float(self.xy_m[i, 1]),
                float(self.v_mps[i, 0]),
                float(self.v_mps[i, 1]),
                float(self.yaw_rad[i]),
                float(self.size_m[i, 0]),
                float(self.size_m[i, 1]),
                float(self.scores[i]),
            )
            for i in range(len(self.ids))
        ]

    @staticmethod
    def from_tracks(ego: EgoState, t_s: float, tracks: list[Track], detections=()) -> WorldModel:
        n = len(tracks)
        return WorldModel(
            ego=ego,
            t_s=t_s,
            ids=np.array([tr.track_id for tr in tracks], dtype=np.int64).reshape(n),
            class_ids=np.array([tr.class_id for tr in tracks], dtype=np.int64).reshape(n),
            xy_m=np.array([(tr.x_m, tr.y_m) for tr in tracks], dtype=float).reshape(n, 2),
            v_mps=np.array([(tr.vx_mps, tr.vy_mps) for tr in tracks], dtype=float).reshape(n, 2),
            yaw_rad=np.array([tr.yaw_rad for tr in tracks], dtype=float).reshape(n),
            size_m=np.array([(tr.length_m, tr.width_m) for tr in tracks], dtype=float).reshape(n, 2),
            scores=np.array([tr.score for tr in tracks], dtype=float).reshape(n),
            detections=tuple(detections),
        )

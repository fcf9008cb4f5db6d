"""What a camera rig can see: each camera's horizontal field of view and range, on the ground plane.

A `CameraView` is one camera as mounted on the ego (position and heading in the ego's frame, x
forward, y left), its horizontal field of view and the range it is trusted to. `in_view` says which
points (objects with a bounding radius) lie in some camera's view, for any ego pose: in a camera's
wedge and range, and, where `occluders` are given (vehicles' footprints), with no footprint across
the line of sight from that camera (on the ground plane: a car hides what is behind it; objects
OCCLUDER_MIN_LENGTH_M long or more hide, pedestrians and cones do not). The camera perceiver
reports the views of its frames (`WorldModel.views`); ground-truth perception limited to the rig
reports the rig's and keeps only the objects that a camera sees (`visible_objects`: in its view,
the centre or a corner of the footprint not hidden); the planner changes lanes only into space
that lies in view and that no tracked vehicle hides (decision/situation.py `mark_unobserved`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perception.types import CameraFrame, EgoState

OCCLUDER_MIN_LENGTH_M = 2.5  # an object this long (a car, a van, a truck) hides what is behind it
CORNER_FRACTION = 0.9  # visible_objects looks at the footprint's corners this far out from the centre


@dataclass(frozen=True, slots=True)
class CameraView:
    name: str
    mount_x_m: float  # ahead of the ego centre
    mount_y_m: float  # left of it
    yaw_deg: float  # where it looks, left of straight ahead
    hfov_deg: float
    range_m: float


def view_of_frame(frame: CameraFrame, ego: EgoState, range_m: float) -> CameraView:
    """The view of the camera that made `frame` (its pose and intrinsics), in the frame of the ego
    whose pose was `ego` when it was taken."""
    pose, K = frame.cam_to_world, frame.K
    dx, dy = pose[0, 3] - ego.x_m, pose[1, 3] - ego.y_m
    c, s = math.cos(ego.yaw_rad), math.sin(ego.yaw_rad)
    heading = math.atan2(pose[1, 2], pose[0, 2])  # the optical axis, laid flat
    width_px = frame.rgb.shape[1]
    return CameraView(
        name=frame.camera,
        mount_x_m=c * dx + s * dy,
        mount_y_m=-s * dx + c * dy,
        yaw_deg=(math.degrees(heading - ego.yaw_rad) + 180.0) % 360.0 - 180.0,
        hfov_deg=math.degrees(2.0 * math.atan2(width_px / 2.0, K[0, 0])),
        range_m=range_m,
    )


def sight_blocked(eye_xy_m, xy_m: np.ndarray, occluders, owners: np.ndarray | None = None) -> np.ndarray:
    """Whether the line of sight from eye_xy_m (2,) to each point of xy_m (M, 2) crosses one of the
    `occluders` (centres (K, 2) [m], yaws (K,) [rad], sizes (K, 2) length, width [m]): a slab test
    of each segment against each footprint, in the footprint's frame. owners (M,): the occluder
    that each point belongs to (-1: none), which does not hide it. (M,) bool."""
    centres, yaws, sizes = (np.ascontiguousarray(a, float) for a in occluders)
    if not len(centres):
        return np.zeros(len(xy_m), bool)
    rot = np.exp(-1j * yaws)  # world -> footprint frame
    eye = ((complex(*eye_xy_m) - centres.view(complex)[:, 0]) * rot).view(float).reshape(-1, 2)  # (K, 2)
    far = (
        np.ascontiguousarray(xy_m, float).view(complex)[:, :1] - centres.view(complex)[:, 0]
    ) * rot  # (M, K)
    far = far.view(float).reshape(len(xy_m), -1, 2)  # (M, K, 2)
    half = 0.5 * sizes  # (K, 2)
    d = far - eye  # (M, K, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - eye) / d, (half - eye) / d
    parallel = np.abs(d) < 1e-12  # then the segment is in the slab all along, or never
    inside = np.abs(eye) <= half
    lo = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2)).max(axis=2)
    hi = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2)).min(axis=2)
    crosses = (lo <= hi) & (hi >= 0.0) & (lo <= 1.0)  # (M, K)
    if owners is not None:
        own = np.flatnonzero(owners >= 0)
        crosses[own, owners[own]] = False
    return crosses.any(axis=1)


def camera_xy(view: CameraView, ego_xy_m, ego_yaw_rad) -> tuple:
    """Where the camera of `view` is, the ego at ego_xy_m (..., 2) heading ego_yaw_rad (...)."""
    c, s = np.cos(ego_yaw_rad), np.sin(ego_yaw_rad)
    x = ego_xy_m[..., 0] + view.mount_x_m * c - view.mount_y_m * s
    y = ego_xy_m[..., 1] + view.mount_x_m * s + view.mount_y_m * c
    return x, y


def in_view(views, ego_xy_m, ego_yaw_rad, xy_m, radius_m=0.0, occluders=None) -> np.ndarray:
    """Whether each point of xy_m (..., 2) (an object of bounding radius radius_m, broadcast with
    it) lies within some view's horizontal field of view (widened by the angle its radius spans)
    and range, the ego at ego_xy_m (..., 2) heading ego_yaw_rad (...), both broadcast against the
    points' leading dimensions. `views` None: a perceiver that sees all around (everywhere True).
    occluders: footprints that block sight (`sight_blocked`), for one ego pose and points (M, 2)."""
    xy = np.asarray(xy_m, float)
    if views is None:
        return np.ones(xy.shape[:-1], bool)
    ego_xy = np.asarray(ego_xy_m, float)
    yaw = np.asarray(ego_yaw_rad, float)
    radius = np.asarray(radius_m, float)
    seen = np.zeros(np.broadcast_shapes(xy.shape[:-1], ego_xy.shape[:-1], yaw.shape, radius.shape), bool)
    for v in views:
        cam_x, cam_y = camera_xy(v, ego_xy, yaw)
        dx, dy = xy[..., 0] - cam_x, xy[..., 1] - cam_y
        dist = np.hypot(dx, dy)
        off_axis = np.abs((np.arctan2(dy, dx) - yaw - math.radians(v.yaw_deg) + np.pi) % (2 * np.pi) - np.pi)
        spread = np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0.0, 1.0))
        covered = (off_axis <= math.radians(v.hfov_deg) / 2 + spread) & (dist <= v.range_m + radius)
        if occluders is not None and covered.any():  # (only the covered points need the sight test)
            covered[covered] = ~sight_blocked((float(cam_x), float(cam_y)), xy[covered], occluders)
        seen |= covered
    return seen


def visible_objects(views, ego_xy_m, ego_yaw_rad, xy_m, yaw_rad, size_m) -> np.ndarray:
    """Which objects (centres (N, 2), yaws (N,), sizes (N, 2) length, width) some camera sees: in
    its view (by their bounding radius), with the centre or a corner of the footprint (CORNER_FRACTION
    out) not hidden from it by another object at least OCCLUDER_MIN_LENGTH_M long. (N,) bool."""
    xy, yaw, size = (np.asarray(a, float) for a in (xy_m, yaw_rad, size_m))
    n = len(xy)
    ego_xy = np.asarray(ego_xy_m, float)
    radius = 0.5 * np.hypot(size[:, 0], size[:, 1])
    big = size[:, 0] >= OCCLUDER_MIN_LENGTH_M
    occluders = (xy[big], yaw[big], size[big])
    owners = np.repeat(np.where(big, np.cumsum(big) - 1, -1), 5)
    corners = np.array([[0.0, 0.0], [1, 1], [1, -1], [-1, 1], [-1, -1]]) * 0.5 * CORNER_FRACTION
    local = corners[None] * size[:, None, :]  # (N, 5, 2) along, across the object
    turn = np.exp(1j * yaw)[:, None]
    pts = (xy.view(complex) + (local[..., 0] + 1j * local[..., 1]) * turn).reshape(-1)
    pts = np.stack([pts.real, pts.imag], axis=-1)  # (5 N, 2)
    seen = np.zeros(n, bool)
    for v in views:
        test = in_view((v,), ego_xy, ego_yaw_rad, xy, radius) & ~seen  # (what another camera saw is seen)
        if test.any():
            eye = tuple(float(a) for a in camera_xy(v, ego_xy, float(ego_yaw_rad)))
            rows = np.repeat(test, 5)
            clear = ~sight_blocked(eye, pts[rows], occluders, owners[rows]).reshape(-1, 5)
            seen[test] = clear.any(axis=1)
    return seen

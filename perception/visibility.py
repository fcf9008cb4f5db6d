"""What a camera rig can see: each camera's horizontal field of view and range, on the ground plane.

A `CameraView` is one camera as mounted on the ego (position and heading in the ego's frame, x
forward, y left), its horizontal field of view and the range it is trusted to. `in_view` says which
points (objects with a bounding radius) lie in some camera's view, for any ego pose. Occlusion is
not modelled: a point in a camera's wedge and range counts as seen. The camera perceiver reports the
views of its frames (`WorldModel.views`), ground-truth perception limited to the rig reports the
rig's, and the planner changes lanes only into space that lies in view (decision/situation.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perception.types import CameraFrame, EgoState


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


def in_view(views, ego_xy_m, ego_yaw_rad, xy_m, radius_m=0.0) -> np.ndarray:
    """Whether each point of xy_m (..., 2) (an object of bounding radius radius_m, broadcast with
    it) lies within some view's horizontal field of view (widened by the angle its radius spans)
    and range, the ego at ego_xy_m (..., 2) heading ego_yaw_rad (...), both broadcast against the
    points' leading dimensions. `views` None: a perceiver that sees all around (everywhere True)."""
    xy = np.asarray(xy_m, float)
    if views is None:
        return np.ones(xy.shape[:-1], bool)
    ego_xy = np.asarray(ego_xy_m, float)
    yaw = np.asarray(ego_yaw_rad, float)
    radius = np.asarray(radius_m, float)
    c, s = np.cos(yaw), np.sin(yaw)
    seen = np.zeros(np.broadcast_shapes(xy.shape[:-1], ego_xy.shape[:-1], yaw.shape, radius.shape), bool)
    for v in views:
        cam_x = ego_xy[..., 0] + v.mount_x_m * c - v.mount_y_m * s
        cam_y = ego_xy[..., 1] + v.mount_x_m * s + v.mount_y_m * c
        dx, dy = xy[..., 0] - cam_x, xy[..., 1] - cam_y
        dist = np.hypot(dx, dy)
        off_axis = np.abs((np.arctan2(dy, dx) - yaw - math.radians(v.yaw_deg) + np.pi) % (2 * np.pi) - np.pi)
        spread = np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0.0, 1.0))
        seen |= (off_axis <= math.radians(v.hfov_deg) / 2 + spread) & (dist <= v.range_m + radius)
    return seen

"""Lateral control: pure pursuit and Stanley steering laws, and the polyline geometry they share.

Conventions: world frame x, y [m]; yaw [rad] counter-clockwise from +x; steering angle [rad] of
the front wheels, left positive. The ego pose is the centre of the vehicle box and the wheelbase is
centred on it: rear axle = centre - wheelbase/2 along the heading, front axle = centre + wheelbase/2.
A cross-track error is signed: positive when the point is to the LEFT of the path.

Pure pursuit (Coulter 1992): from the rear axle, aim at the path point one lookahead distance
`ld = lookahead_min + lookahead_gain * v` away and steer onto the circle through it:
delta = atan(2 L sin(alpha) / ld), alpha = bearing of that point from the heading.
Stanley (Thrun et al. 2006): from the front axle, delta = heading_gain * heading error +
atan(k e / (softening + v)), e = cross-track error of the front axle (steering back to the path).

The geometry works on all path points at once (numpy); a path has N ~ 50-200 points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perception.types import EgoState

MIN_SEGMENT_M = 1e-6  # path points closer than this to the previous point are dropped


def wrap_angle(angle_rad: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def clean_path(path_xy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop points that repeat the previous one; return (path (M, 2), kept mask (N,)).

    Raises ValueError on a path that is not (N, 2) or holds non-finite values: a broken plan should
    fail loudly, not steer the car somewhere.
    """
    path = np.asarray(path_xy_m, dtype=float)
    if path.size == 0:
        return path.reshape(0, 2), np.zeros(0, dtype=bool)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path must have shape (N, 2), got {path.shape}")
    if not np.all(np.isfinite(path)):
        raise ValueError("path holds non-finite values")
    seg = np.diff(path, axis=0)
    keep = np.empty(len(path), dtype=bool)
    keep[0] = True
    keep[1:] = np.hypot(seg[:, 0], seg[:, 1]) > MIN_SEGMENT_M
    return (path if keep.all() else path[keep]), keep


def arc_length_m(path_xy_m: np.ndarray) -> np.ndarray:
    """(N,) distance along the polyline from its first point to each point [m]."""
    s = np.zeros(len(path_xy_m))
    if len(path_xy_m) > 1:
        seg = np.diff(path_xy_m, axis=0)
        np.cumsum(np.hypot(seg[:, 0], seg[:, 1]), out=s[1:])
    return s


@dataclass(frozen=True, slots=True)
class Projection:
    """The nearest point of a polyline to a query point.

    segment: index i of the segment (path[i], path[i+1]); fraction: position along it in [0, 1].
    point_xy_m: (2,) the nearest point. s_m: its distance along the path from path[0].
    cross_track_error_m: signed distance of the query point, left of the path positive.
    path_yaw_rad: heading of the path there, blended between neighbouring segments so that it
    changes continuously along a polyline (no jumps at the vertices).
    """

    segment: int
    fraction: float
    point_xy_m: np.ndarray
    s_m: float
    cross_track_error_m: float
    path_yaw_rad: float


def project_onto_path(
    path_xy_m: np.ndarray, point_xy_m: np.ndarray, s_m: np.ndarray | None = None
) -> Projection:
    """Project a point onto a polyline of at least two distinct points.

    path_xy_m: (N, 2) with N >= 2 and no zero-length segments (see `clean_path`).
    point_xy_m: (2,). s_m: (N,) arc lengths of the path if already computed (`arc_length_m`).
    Before its first point and past its last, the path continues along its end segments, so a
    point behind the start gets the cross-track error of the extended first segment.
    """
    seg = path_xy_m[1:] - path_xy_m[:-1]  # (N-1, 2)
    seg_len2 = np.einsum("ij,ij->i", seg, seg)
    rel = point_xy_m - path_xy_m[:-1]
    t = np.clip(np.einsum("ij,ij->i", rel, seg) / seg_len2, 0.0, 1.0)
    nearest = path_xy_m[:-1] + t[:, None] * seg
    dist2 = np.einsum("ij,ij->i", point_xy_m - nearest, point_xy_m - nearest)
    i = int(np.argmin(dist2))
    last = len(seg) - 1
    # Unclipped fraction at the ends, so the path extends straight beyond them.
    ti = float(np.dot(rel[i], seg[i]) / seg_len2[i])
    ti = min(max(ti, 0.0 if i > 0 else -math.inf), 1.0 if i < last else math.inf)
    foot = path_xy_m[i] + ti * seg[i]
    length = math.sqrt(seg_len2[i])
    cte = float(seg[i, 0] * (point_xy_m[1] - foot[1]) - seg[i, 1] * (point_xy_m[0] - foot[0])) / length

    yaw_i = math.atan2(seg[i, 1], seg[i, 0])
    if ti < 0.5 and i > 0:
        other, w = i - 1, 0.5 - ti
    elif ti > 0.5 and i < last:
        other, w = i + 1, ti - 0.5
    else:
        other, w = i, 0.0
    yaw = yaw_i + w * wrap_angle(math.atan2(seg[other, 1], seg[other, 0]) - yaw_i)

    if s_m is None:
        s_start = float(np.sum(np.sqrt(seg_len2[:i])))
    else:
        s_start = float(s_m[i])
    return Projection(i, ti, foot, s_start + ti * length, cte, wrap_angle(yaw))


def point_at_distance(
    path_xy_m: np.ndarray, start: Projection, from_xy_m: np.ndarray, distance_m: float
) -> np.ndarray:
    """(2,) the first path point after `start` that lies `distance_m` from `from_xy_m`.

    `start` must lie within `distance_m` of `from_xy_m`. The circle is intersected with the
    polyline segment by segment (exactly, not at the vertices); if the path ends inside the circle,
    its last segment is extended until it meets the circle.
    """
    d2 = np.einsum("ij,ij->i", path_xy_m - from_xy_m, path_xy_m - from_xy_m)
    r2 = distance_m * distance_m
    # Vertices ahead of the start point (none when the start lies beyond the path's end).
    ahead = d2[start.segment + 1 :] if start.fraction <= 1.0 else d2[:0]
    outside = np.flatnonzero(ahead >= r2)
    if len(outside):
        j = start.segment + 1 + int(outside[0])
        p0 = start.point_xy_m if j == start.segment + 1 else path_xy_m[j - 1]
        direction = path_xy_m[j] - p0
    else:
        p0 = path_xy_m[-1] if start.fraction <= 1.0 else start.point_xy_m
        direction = path_xy_m[-1] - path_xy_m[-2]
    # |p0 + u direction - from| = distance: the larger root of a quadratic in u.
    rel = p0 - from_xy_m
    a = float(direction @ direction)
    b = float(rel @ direction)
    c = float(rel @ rel) - r2
    u = (-b + math.sqrt(max(b * b - a * c, 0.0))) / a
    return p0 + u * direction


def _axle_xy(ego: EgoState, offset_m: float) -> np.ndarray:
    return np.array([ego.x_m + offset_m * math.cos(ego.yaw_rad), ego.y_m + offset_m * math.sin(ego.yaw_rad)])


class PurePursuit:
    """Pure pursuit from the rear axle; lookahead [m] = lookahead_min_m + lookahead_gain_s * speed."""

    def __init__(
        self, wheelbase_m: float, lookahead_min_m: float, lookahead_gain_s: float, max_steer_rad: float
    ):
        if not (wheelbase_m > 0 and lookahead_min_m > 0 and lookahead_gain_s >= 0 and max_steer_rad > 0):
            raise ValueError("PurePursuit needs wheelbase, lookahead_min, max_steer > 0 and gain >= 0")
        self.wheelbase_m = wheelbase_m
        self.lookahead_min_m = lookahead_min_m
        self.lookahead_gain_s = lookahead_gain_s
        self.max_steer_rad = max_steer_rad

    def reset(self) -> None:
        """Pure pursuit keeps no state."""

    def steer(self, ego: EgoState, path_xy_m: np.ndarray) -> tuple[float, dict[str, float]]:
        """Steering angle [rad] towards `path_xy_m` (N, 2), and a log of floats.

        Log: cross_track_error_m and heading_error_rad (of the rear axle), lookahead_m, target_x_m,
        target_y_m. A path of fewer than two distinct points gives steer 0 and NaN in the log.
        """
        path, _ = clean_path(path_xy_m)
        rear = _axle_xy(ego, -0.5 * self.wheelbase_m)
        lookahead = self.lookahead_min_m + self.lookahead_gain_s * max(ego.speed_mps, 0.0)
        if len(path) < 2:
            return 0.0, _log(math.nan, math.nan, lookahead, (math.nan, math.nan))
        proj = project_onto_path(path, rear)
        if abs(proj.cross_track_error_m) < lookahead:
            target = point_at_distance(path, proj, rear, lookahead)
        else:  # farther from the path than the lookahead: aim one lookahead down the path
            s = arc_length_m(path)
            s_t = proj.s_m + lookahead
            target = np.array([np.interp(s_t, s, path[:, 0]), np.interp(s_t, s, path[:, 1])])
        dx, dy = target[0] - rear[0], target[1] - rear[1]
        cos_y, sin_y = math.cos(ego.yaw_rad), math.sin(ego.yaw_rad)
        lateral = -sin_y * dx + cos_y * dy  # target's offset to the left of the heading
        dist2 = max(dx * dx + dy * dy, 1e-9)
        steer = math.atan(2.0 * self.wheelbase_m * lateral / dist2)  # curvature 2 sin(alpha) / d
        steer = min(max(steer, -self.max_steer_rad), self.max_steer_rad)
        heading_error = wrap_angle(proj.path_yaw_rad - ego.yaw_rad)
        return steer, _log(proj.cross_track_error_m, heading_error, lookahead, target)


class Stanley:
    """Stanley steering from the front axle: heading_gain * heading error + atan(k e / (soft + v))."""

    def __init__(
        self, wheelbase_m: float, gain: float, softening_mps: float, heading_gain: float, max_steer_rad: float
    ):
        if not (
            wheelbase_m > 0 and gain > 0 and softening_mps > 0 and heading_gain >= 0 and max_steer_rad > 0
        ):
            raise ValueError("Stanley needs wheelbase, gain, softening, max_steer > 0 and heading_gain >= 0")
        self.wheelbase_m = wheelbase_m
        self.gain = gain
        self.softening_mps = softening_mps
        self.heading_gain = heading_gain
        self.max_steer_rad = max_steer_rad

    def reset(self) -> None:
        """Stanley keeps no state."""

    def steer(self, ego: EgoState, path_xy_m: np.ndarray) -> tuple[float, dict[str, float]]:
        """Steering angle [rad] towards `path_xy_m` (N, 2), and a log of floats.

        Log: cross_track_error_m and heading_error_rad (of the front axle), lookahead_m (0: Stanley
        looks at the front axle's own nearest path point), target_x_m, target_y_m (that point).
        A path of fewer than two distinct points gives steer 0 and NaN in the log.
        """
        path, _ = clean_path(path_xy_m)
        if len(path) < 2:
            return 0.0, _log(math.nan, math.nan, 0.0, (math.nan, math.nan))
        front = _axle_xy(ego, 0.5 * self.wheelbase_m)
        proj = project_onto_path(path, front)
        heading_error = wrap_angle(proj.path_yaw_rad - ego.yaw_rad)
        cte = proj.cross_track_error_m
        correction = math.atan2(-self.gain * cte, self.softening_mps + max(ego.speed_mps, 0.0))
        steer = self.heading_gain * heading_error + correction
        steer = min(max(steer, -self.max_steer_rad), self.max_steer_rad)
        return steer, _log(cte, heading_error, 0.0, proj.point_xy_m)


def _log(cte: float, heading_error: float, lookahead: float, target) -> dict[str, float]:
    return {
        "cross_track_error_m": float(cte),
        "heading_error_rad": float(heading_error),
        "lookahead_m": float(lookahead),
        "target_x_m": float(target[0]),
        "target_y_m": float(target[1]),
    }

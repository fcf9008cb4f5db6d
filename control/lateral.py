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

`PathGeometry` computes the segments and arc lengths of a path once per plan, with the points
held as complex numbers x + iy (one operation does a 2-D one), and projects several query points
(the steering axle and the car's centre) in one pass; the scalar work after that is plain `math`.
(What these steps cost per tick: benchmarks/sim_speed.py.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from decision.geometry import wrap_angle
from perception.types import EgoState

MIN_SEGMENT_M = 1e-6  # path points closer than this to the previous point are dropped
NAN = math.nan


def clean_path(path_xy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop points that repeat the previous one; return (path (M, 2), kept mask (N,)).

    Points are dropped until no segment is shorter than MIN_SEGMENT_M. Raises ValueError on a path
    that is not (N, 2) or holds non-finite values: a broken plan should fail loudly, not steer the
    car somewhere.
    """
    path = np.asarray(path_xy_m, dtype=float)
    if path.size == 0:
        return path.reshape(0, 2), np.zeros(0, dtype=bool)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path must have shape (N, 2), got {path.shape}")
    if not np.all(np.isfinite(path)):
        raise ValueError("path holds non-finite values")
    kept = np.arange(len(path))
    while len(kept) > 1:  # one pass, unless dropping points made a new short segment
        seg = np.diff(path[kept], axis=0)
        short = np.hypot(seg[:, 0], seg[:, 1]) <= MIN_SEGMENT_M
        if not short.any():
            break
        kept = kept[np.concatenate(([True], ~short))]
    keep = np.zeros(len(path), dtype=bool)
    keep[kept] = True
    return path[kept], keep


class Projection(NamedTuple):
    """The nearest point of a polyline to a query point.

    segment: index i of the segment (path[i], path[i+1]); fraction: position along it, in [0, 1]
    except before the first and past the last segment (the path extends straight there).
    point_xy_m: (x, y) the nearest point. s_m: its distance along the path from path[0].
    cross_track_error_m: signed distance of the query point, left of the path positive.
    path_yaw_rad: heading of the path there, blended between neighbouring segments so that it
    changes continuously along a polyline (no jumps at the vertices).
    """

    segment: int
    fraction: float
    point_xy_m: tuple[float, float]
    s_m: float
    cross_track_error_m: float
    path_yaw_rad: float


class PathGeometry:
    """A path prepared once per tick: points, segments and arc lengths, shared by all queries.

    Built from an (N, 2) path [m]; raises ValueError if it is not (N, 2) or not finite. Points that
    repeat the previous one are dropped (`clean_path`): `keep` is then the (N,) mask of the points
    kept, else None. Attributes, for the M points kept: z (M,) complex points x + iy [m];
    seg (M-1,) complex segments z[i+1] - z[i]; seg_len_m (M-1,) and max_seg_len_m their lengths;
    s_m (M,) arc length from z[0].
    """

    __slots__ = ("keep", "z", "seg", "seg_len_m", "max_seg_len_m", "s_m")

    def __init__(self, path_xy_m: np.ndarray):
        path = np.ascontiguousarray(path_xy_m, dtype=float)
        self.keep = None
        well_formed = path.ndim == 2 and path.shape[1] == 2 and len(path) >= 2
        if not (well_formed and self._prepare(path)):  # short, broken, or with repeated points
            path, keep = clean_path(path)  # raises on a bad shape or non-finite values
            self.keep = None if keep.all() else keep
            self._prepare(np.ascontiguousarray(path))

    def _prepare(self, path: np.ndarray) -> bool:
        """Set the attributes from a contiguous (M, 2) path; False if a segment is too short (or
        not finite) for the geometry."""
        z = self.z = path.view(complex).ravel()
        seg = self.seg = z[1:] - z[:-1]
        seg_len = self.seg_len_m = np.abs(seg)
        s = self.s_m = np.empty(len(z))
        if len(z) < 2:
            s[:] = 0.0
            self.max_seg_len_m = 0.0
            return True
        s[0] = 0.0
        np.add.accumulate(seg_len, out=s[1:])
        self.max_seg_len_m = seg_len.item(seg_len.argmax())
        # (argmin + item, not min(): see benchmarks/sim_speed.py.) A NaN length is the minimum.
        return math.isfinite(s.item(-1)) and seg_len.item(seg_len.argmin()) > MIN_SEGMENT_M

    @property
    def n_points(self) -> int:
        """M, the number of points kept."""
        return len(self.z)

    def _nearest(self, points: np.ndarray) -> list[tuple[int, complex]]:
        """For each of K complex points (K,): the index i of the nearest segment and the point in
        that segment's frame (real part: fraction along it; imaginary part: left offset / length).

        Fast path: one numpy pass finds the nearest vertex v, and plain floats compare the (one or
        two) segments that meet there. That is the answer when no other segment can be nearer: a
        segment of length l whose ends are at distances a, b is no nearer than
        sqrt(min(a, b)^2 - l^2 / 4), so it suffices that the second-nearest vertex, at distance D2,
        has D2^2 - l_max^2 / 4 >= the distance found; on the planner's paths (~1 m spacing) this
        always holds. Otherwise (near-ties between parts of a winding path) every segment is
        checked with numpy.
        """
        z, seg = self.z, self.seg
        vertex_dist = np.abs(np.subtract.outer(points, z))  # (K, M)
        nearest = vertex_dist.argmin(axis=1).tolist()
        for k, v in enumerate(nearest):
            vertex_dist[k, v] = math.inf
        second = vertex_dist.argmin(axis=1).tolist()
        quarter_l2 = 0.25 * self.max_seg_len_m * self.max_seg_len_m
        last = len(seg) - 1
        out = []
        for k, (p, v) in enumerate(zip(points.tolist(), nearest, strict=True)):
            best, best_dist = None, math.inf
            # The segments that meet at vertex v: v - 1 and v (only one at either end).
            for i in (v - 1, v) if 0 < v <= last else ((0,) if v == 0 else (last,)):
                d = seg.item(i)
                rel = p - z.item(i)
                local = rel / d
                t = min(max(local.real, 0.0), 1.0)
                dist = abs(rel - t * d)
                if dist < best_dist:  # on a tie the lower index, as np.argmin
                    best, best_dist = (i, local), dist
            d2 = vertex_dist.item(k, second[k])
            if best is None or best_dist * best_dist > d2 * d2 - quarter_l2:  # (None: NaN point)
                return self._nearest_all(points)
            out.append(best)
        return out

    def _nearest_all(self, points: np.ndarray) -> list[tuple[int, complex]]:
        """As `_nearest`, by checking every segment."""
        rel = np.subtract.outer(points, self.z[:-1])  # (K, M-1)
        local = rel / self.seg
        dist = np.abs(rel - local.real.clip(0.0, 1.0) * self.seg)
        return [(i, local.item(k, i)) for k, i in enumerate(dist.argmin(axis=1).tolist())]

    def project(self, points_xy_m: Sequence[tuple[float, float]]) -> list[Projection]:
        """The nearest path point to each of K query points (x, y) [m]; needs M >= 2.

        Before its first point and past its last, the path continues along its end segments, so a
        point behind the start gets the cross-track error of the extended first segment.
        """
        points = np.array([complex(x, y) for x, y in points_xy_m])
        return [self._projection(i, local) for i, local in self._nearest(points)]

    def project_axle_and_centre(
        self, axle_xy_m: tuple[float, float], centre_xy_m: tuple[float, float]
    ) -> tuple[Projection, float]:
        """The projection of a steering axle and the arc position s [m] of the car's centre, found
        in one pass (what the controller needs each tick); needs M >= 2."""
        points = np.array((complex(*axle_xy_m), complex(*centre_xy_m)))
        (i_axle, local_axle), (i, local) = self._nearest(points)
        fraction = local.real  # clamped to the segment, except beyond the path's ends
        if fraction < 0.0 and i > 0:
            fraction = 0.0
        elif fraction > 1.0 and i < len(self.seg) - 1:
            fraction = 1.0
        return self._projection(i_axle, local_axle), self.s_m.item(i) + fraction * self.seg_len_m.item(i)

    def _projection(self, i: int, local: complex) -> Projection:
        """The Projection of a point on its nearest segment i, given its coordinates in that
        segment's frame (see `_nearest`)."""
        seg = self.seg
        last = len(seg) - 1
        fraction = local.real  # clamped to the segment, except beyond the path's ends
        if fraction < 0.0 and i > 0:
            fraction = 0.0
        elif fraction > 1.0 and i < last:
            fraction = 1.0
        d = seg.item(i)
        length = self.seg_len_m.item(i)
        foot = self.z.item(i) + fraction * d
        yaw = math.atan2(d.imag, d.real)
        # Blend towards the neighbouring segment's heading, fully at its vertex.
        if fraction < 0.5 and i > 0:
            other, weight = seg.item(i - 1), 0.5 - fraction
        elif fraction > 0.5 and i < last:
            other, weight = seg.item(i + 1), fraction - 0.5
        else:
            other, weight = d, 0.0
        if weight:
            yaw += weight * wrap_angle(math.atan2(other.imag, other.real) - yaw)
        s = self.s_m.item(i) + fraction * length
        return Projection(i, fraction, (foot.real, foot.imag), s, local.imag * length, wrap_angle(yaw))

    def point_at_distance(
        self, start: Projection, from_xy_m: tuple[float, float], distance_m: float
    ) -> tuple[float, float]:
        """(x, y) the first path point after `start` that lies `distance_m` from `from_xy_m`.

        `start` must lie within `distance_m` of `from_xy_m`. The circle is intersected with the
        polyline segment by segment (exactly, not at the vertices); if the path ends inside the
        circle, its last segment is extended until it meets the circle.
        """
        z = self.z
        p = complex(*from_xy_m)
        foot = complex(*start.point_xy_m)
        j = len(z)  # the first vertex ahead of the start on or outside the circle; len(z): none
        if start.fraction <= 1.0:  # else the start lies beyond the path's end
            # A vertex less than (distance - |foot - p|) along the path from the foot is inside
            # the circle (the chord is no longer than the arc): start looking after those.
            inside_m = start.s_m + distance_m - abs(foot - p)
            j = max(start.segment + 1, int(self.s_m.searchsorted(inside_m)))
            while j < len(z) and abs(z.item(j) - p) < distance_m:
                j += 1
        if j < len(z):
            p0 = foot if j == start.segment + 1 else z.item(j - 1)
            direction = z.item(j) - p0
        else:
            p0 = z.item(-1) if start.fraction <= 1.0 else foot
            direction = self.seg.item(-1)
        # |p0 + u direction - p| = distance: the larger root of a quadratic in u.
        rel = p0 - p
        a = direction.real * direction.real + direction.imag * direction.imag
        b = rel.real * direction.real + rel.imag * direction.imag
        c = rel.real * rel.real + rel.imag * rel.imag - distance_m * distance_m
        target = p0 + (-b + math.sqrt(max(b * b - a * c, 0.0))) / a * direction
        return target.real, target.imag

    def interp(self, s_m: float, values: np.ndarray) -> float:
        """np.interp(s_m, self.s_m, values) for float `values` (M,) (the ends held), in a fraction of
        its time: a lookup and plain float arithmetic."""
        s = self.s_m
        k = int(s.searchsorted(s_m, side="right"))  # s[k - 1] <= s_m < s[k]
        if k == 0:
            return values.item(0)
        if k == len(s):
            return values.item(-1) if s_m == s_m else s_m  # NaN stays NaN, as in np.interp
        s0, v0 = s.item(k - 1), values.item(k - 1)
        return v0 + (values.item(k) - v0) * (s_m - s0) / (s.item(k) - s0)

    def point_at_arc_length(self, s_m: float) -> tuple[float, float]:
        """(x, y) the path point `s_m` along the path (clamped to its ends); needs M >= 1."""
        point = complex(np.interp(s_m, self.s_m, self.z))
        return point.real, point.imag


class LateralResult(NamedTuple):
    """A steering angle [rad] and what it was computed from (NaN where the path is degenerate)."""

    steer_rad: float
    cross_track_error_m: float
    heading_error_rad: float
    lookahead_m: float
    target_x_m: float
    target_y_m: float

    def log(self) -> dict[str, float]:
        """The log of floats: all fields but the steering angle."""
        return {
            "cross_track_error_m": self.cross_track_error_m,
            "heading_error_rad": self.heading_error_rad,
            "lookahead_m": self.lookahead_m,
            "target_x_m": self.target_x_m,
            "target_y_m": self.target_y_m,
        }


class _LateralLaw:
    """What both laws share: the axle they steer from, and `steer` on a raw path."""

    axle_offset_m: float  # where the law's axle is along the heading from the centre [m]

    def reset(self) -> None:
        """The steering laws keep no state."""

    def axle_xy_m(self, ego: EgoState) -> tuple[float, float]:
        """(x, y) of the axle the law steers from [m]."""
        offset = self.axle_offset_m
        return ego.x_m + offset * math.cos(ego.yaw_rad), ego.y_m + offset * math.sin(ego.yaw_rad)

    def steer(self, ego: EgoState, path_xy_m: np.ndarray) -> tuple[float, dict[str, float]]:
        """Steering angle [rad] towards `path_xy_m` (N, 2), and a log of floats (see `steer_on`).

        A path of fewer than two distinct points gives steer 0 and NaN in the log.
        """
        geometry = PathGeometry(path_xy_m)
        proj = geometry.project((self.axle_xy_m(ego),))[0] if geometry.n_points >= 2 else None
        result = self.steer_on(ego, geometry, proj)
        return result.steer_rad, result.log()

    def steer_on(self, ego: EgoState, geometry: PathGeometry, axle: Projection | None) -> LateralResult:
        """Steering from a prepared path and the projection of the law's axle onto it (None when
        the path has fewer than two points)."""
        raise NotImplementedError


class PurePursuit(_LateralLaw):
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
        self.axle_offset_m = -0.5 * wheelbase_m

    def steer_on(self, ego: EgoState, geometry: PathGeometry, axle: Projection | None) -> LateralResult:
        """Log: cross_track_error_m and heading_error_rad (of the rear axle), lookahead_m, target_x_m,
        target_y_m (the point aimed at)."""
        lookahead = self.lookahead_min_m + self.lookahead_gain_s * max(ego.speed_mps, 0.0)
        if axle is None:
            return LateralResult(0.0, NAN, NAN, lookahead, NAN, NAN)
        cos_y, sin_y = math.cos(ego.yaw_rad), math.sin(ego.yaw_rad)
        rear = (ego.x_m + self.axle_offset_m * cos_y, ego.y_m + self.axle_offset_m * sin_y)
        # The distance to the nearest point, not |cross-track error|: they differ at a vertex.
        if math.dist(rear, axle.point_xy_m) < lookahead:
            tx, ty = geometry.point_at_distance(axle, rear, lookahead)
        else:  # farther from the path than the lookahead: aim one lookahead down the path
            tx, ty = geometry.point_at_arc_length(axle.s_m + lookahead)
        dx, dy = tx - rear[0], ty - rear[1]
        lateral = -sin_y * dx + cos_y * dy  # target's offset to the left of the heading
        dist2 = max(dx * dx + dy * dy, 1e-9)
        steer = math.atan(2.0 * self.wheelbase_m * lateral / dist2)  # curvature 2 sin(alpha) / d
        steer = min(max(steer, -self.max_steer_rad), self.max_steer_rad)
        heading_error = wrap_angle(axle.path_yaw_rad - ego.yaw_rad)
        return LateralResult(steer, axle.cross_track_error_m, heading_error, lookahead, tx, ty)


class Stanley(_LateralLaw):
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
        self.axle_offset_m = 0.5 * wheelbase_m

    def steer_on(self, ego: EgoState, geometry: PathGeometry, axle: Projection | None) -> LateralResult:
        """Log: cross_track_error_m and heading_error_rad (of the front axle), lookahead_m (0: Stanley
        looks at the front axle's own nearest path point), target_x_m, target_y_m (that point)."""
        if axle is None:
            return LateralResult(0.0, NAN, NAN, 0.0, NAN, NAN)
        heading_error = wrap_angle(axle.path_yaw_rad - ego.yaw_rad)
        cte = axle.cross_track_error_m
        correction = math.atan2(-self.gain * cte, self.softening_mps + max(ego.speed_mps, 0.0))
        steer = self.heading_gain * heading_error + correction
        steer = min(max(steer, -self.max_steer_rad), self.max_steer_rad)
        return LateralResult(steer, cte, heading_error, 0.0, *axle.point_xy_m)

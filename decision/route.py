"""The map the planner drives on: a road of straight and arc segments with parallel lanes.

The same `Road` builds the PyBullet world (sim) and serves the planner (decision), so map and world
never disagree. Positions along the road use Frenet coordinates: `s` [m] along the reference line
(the road's centre line) and `d` [m] to its left. Lanes are numbered from the right, 0 first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_SPACING_M = 0.5  # spacing of the sampled reference line [m]


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of road: `kind` is "straight" or "arc"; an arc turns left when `radius_m` > 0."""

    kind: str
    length_m: float
    radius_m: float = 0.0

    @property
    def curvature(self) -> float:  # [1/m], positive turns left
        return 0.0 if self.kind == "straight" else 1.0 / self.radius_m


@dataclass(frozen=True, slots=True)
class Lane:
    index: int
    offset_m: float  # lateral offset of the lane centre from the reference line, left positive
    width_m: float


class Road:
    """A road sampled every `SAMPLE_SPACING_M` along its centre line.

    Arrays (M samples): s_m (M,), xy_m (M, 2), heading_rad (M,) unwrapped, curvature (M,).
    """

    def __init__(
        self,
        segments: list[Segment],
        lane_count: int,
        lane_width_m: float,
        speed_limit_mps: float,
        origin_xy_yaw: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ):
        if lane_count < 1:
            raise ValueError(f"lane_count must be >= 1, got {lane_count}")
        if not segments:
            raise ValueError("a road needs at least one segment")
        self.segments = tuple(segments)
        self.lane_count = lane_count
        self.lane_width_m = lane_width_m
        self.speed_limit_mps = speed_limit_mps
        self.half_width_m = lane_count * lane_width_m / 2
        self.lanes = tuple(
            Lane(i, (i + 0.5) * lane_width_m - self.half_width_m, lane_width_m) for i in range(lane_count)
        )
        self.length_m = float(sum(seg.length_m for seg in segments))

        # Integrate the centre line exactly: heading is piecewise linear in s (constant curvature).
        n = int(np.ceil(self.length_m / SAMPLE_SPACING_M)) + 1
        s = np.linspace(0.0, self.length_m, n)
        ends = np.cumsum([seg.length_m for seg in segments])
        seg_idx = np.minimum(np.searchsorted(ends, s, side="right"), len(segments) - 1)
        curvature = np.array([segments[i].curvature for i in seg_idx])
        x0, y0, yaw0 = origin_xy_yaw
        ds = np.diff(s)
        k = curvature[:-1]  # curvature over each interval [s_i, s_i+1]
        # The interval may straddle a segment end; SAMPLE_SPACING_M is small enough not to matter.
        dheading = k * ds
        heading = yaw0 + np.concatenate([[0.0], np.cumsum(dheading)])
        h0 = heading[:-1]
        # Exact chord of a constant-curvature step (sinc form stays finite for k -> 0).
        chord = ds * np.sinc(dheading / (2 * np.pi))
        mid = h0 + dheading / 2
        x = x0 + np.concatenate([[0.0], np.cumsum(chord * np.cos(mid))])
        y = y0 + np.concatenate([[0.0], np.cumsum(chord * np.sin(mid))])
        self.s_m = s
        self.xy_m = np.stack([x, y], axis=1)
        self.heading_rad = heading
        self.curvature = curvature
        self._tangent = np.stack([np.cos(heading), np.sin(heading)], axis=1)

    # ------------------------------------------------------------------ lanes
    def lane_offset_m(self, lane) -> np.ndarray | float:
        """Lateral offset of the centre of lane index (or array of indices)."""
        return (np.asarray(lane) + 0.5) * self.lane_width_m - self.half_width_m

    def lane_at(self, d_m) -> np.ndarray | int:
        """Index of the lane that contains lateral offset d (clipped to the road's lanes)."""
        idx = np.floor((np.asarray(d_m) + self.half_width_m) / self.lane_width_m)
        out = np.clip(idx, 0, self.lane_count - 1).astype(np.int64)
        return int(out) if out.ndim == 0 else out

    # ------------------------------------------------------------------ geometry
    def pose(self, s_m):
        """Centre-line point and heading at s: (x, y, heading), each shaped like s."""
        s_m = np.clip(s_m, 0.0, self.length_m)
        x = np.interp(s_m, self.s_m, self.xy_m[:, 0])
        y = np.interp(s_m, self.s_m, self.xy_m[:, 1])
        h = np.interp(s_m, self.s_m, self.heading_rad)
        return x, y, h

    def to_world(self, s_m, d_m):
        """Frenet (s, d) to world (x, y, heading of the reference line at s)."""
        x, y, h = self.pose(s_m)
        return x - d_m * np.sin(h), y + d_m * np.cos(h), h

    def curvature_at(self, s_m):
        return np.interp(s_m, self.s_m, self.curvature)

    def to_frenet(self, xy_m: np.ndarray, s_hint_m: float | None = None, window_m: float = 40.0):
        """World points (N, 2) (or one (2,)) to Frenet (s, d) arrays of shape (N,) (or floats).

        With `s_hint_m`, only samples within `window_m` of the hint are searched (fast path for
        objects near the ego).
        """
        pts = np.asarray(xy_m, dtype=float)
        single = pts.ndim == 1
        pts = pts.reshape(-1, 2)
        if s_hint_m is None:
            lo, hi = 0, len(self.s_m)
        else:
            lo = max(int((s_hint_m - window_m) / SAMPLE_SPACING_M), 0)
            hi = min(int((s_hint_m + window_m) / SAMPLE_SPACING_M) + 2, len(self.s_m))
            if hi - lo < 2:
                lo, hi = 0, len(self.s_m)
        ref = self.xy_m[lo:hi]
        # (N, window) squared distances; x and y apart (a size-2 last axis makes numpy ~10x slower).
        dx = pts[:, 0:1] - ref[:, 0]
        dy = pts[:, 1:2] - ref[:, 1]
        d2 = dx * dx + dy * dy
        i = lo + d2.argmin(axis=1)
        delta = pts - self.xy_m[i]
        t = self._tangent[i]
        d = delta[:, 1] * t[:, 0] - delta[:, 0] * t[:, 1]
        # Off the reference line, distance along it shrinks by (1 - kappa d) (a lane inside a bend);
        # kappa of the interval on the point's side of sample i (curvature[i] is that of [i, i+1]).
        along = (delta * t).sum(1)
        k = np.where(along < 0.0, self.curvature[np.maximum(i - 1, 0)], self.curvature[i])
        s = self.s_m[i] + along / np.maximum(1.0 - k * d, 0.1)
        if single:
            return float(s[0]), float(d[0])
        return s, d


@dataclass(frozen=True, slots=True)
class Route:
    """Where the ego has to go: along `road` from `start_s_m` to `goal_s_m`, preferring `lane`,
    at `cruise_speed_mps` (never above the road's speed limit)."""

    road: Road
    start_s_m: float
    goal_s_m: float
    lane: int
    cruise_speed_mps: float

    @property
    def length_m(self) -> float:
        return self.goal_s_m - self.start_s_m

    def completion(self, s_m: float) -> float:
        """Fraction of the route done when the ego is at s, in [0, 1]."""
        return float(np.clip((s_m - self.start_s_m) / self.length_m, 0.0, 1.0))

"""The map the planner drives on: a road of straight and arc segments with parallel lanes.

The same `Road` builds the PyBullet world (sim) and serves the planner (decision), so map and world
never disagree. Positions along the road use Frenet coordinates: `s` [m] along the reference line
(the road's centre line) and `d` [m] to its left. Lanes are numbered from the right, 0 first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SAMPLE_SPACING_M = 0.5  # spacing of the sampled reference line [m]
DESCENT_MAX_STEPS = 16  # one point with a hint: samples walked before searching the whole window
REACH_STEP = 8  # Road.reach_m is estimated on every this many samples ...
REACH_ROWS = 256  # ... this many of them against all the others at a time


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
        oncoming_lanes: int = 0,
        speed_limits: tuple[tuple[float, float], ...] = (),
        shoulder_m: float = 0.0,
    ):
        if lane_count < 1:
            raise ValueError(f"lane_count must be >= 1, got {lane_count}")
        if not segments:
            raise ValueError("a road needs at least one segment")
        if not 0 <= oncoming_lanes < lane_count:
            raise ValueError(f"oncoming_lanes must be in [0, {lane_count - 1}], got {oncoming_lanes}")
        self.segments = tuple(segments)
        self.lane_count = lane_count
        self.lane_width_m = lane_width_m
        self.speed_limit_mps = speed_limit_mps
        self.half_width_m = lane_count * lane_width_m / 2
        # Paved beyond the outer lanes on each side (a town street's parking lane): drivable, no lane.
        self.shoulder_m = float(shoulder_m)
        self.lanes = tuple(
            Lane(i, (i + 0.5) * lane_width_m - self.half_width_m, lane_width_m) for i in range(lane_count)
        )
        self.length_m = float(sum(seg.length_m for seg in segments))
        # Two-way roads: the `oncoming_lanes` leftmost lanes carry traffic against s.
        self.oncoming_lanes = oncoming_lanes
        self.own_lanes = lane_count - oncoming_lanes  # lanes 0 .. own_lanes - 1 drive along s
        # Speed limit along s: (start s [m], limit [m/s]) pieces in order of s; none: one limit.
        self.speed_limits = tuple(speed_limits) or ((0.0, float(speed_limit_mps)),)
        self._limit_starts = np.array([a for a, _ in self.speed_limits])
        self._limit_values = np.array([v for _, v in self.speed_limits])

        # Integrate the centre line exactly: heading is piecewise linear in s (constant curvature per
        # segment). Each sample is placed from the start of its own segment, so a sample interval
        # that straddles a segment end bends exactly as the two segments do.
        n = int(np.ceil(self.length_m / SAMPLE_SPACING_M)) + 1
        s = np.linspace(0.0, self.length_m, n)
        lengths = np.array([seg.length_m for seg in segments])
        ends = np.cumsum(lengths)
        starts = ends - lengths
        seg_k = np.array([seg.curvature for seg in segments])
        x0, y0, yaw0 = origin_xy_yaw
        turn = seg_k * lengths  # heading change over each segment
        seg_heading = yaw0 + np.concatenate([[0.0], np.cumsum(turn)])  # at each segment's start
        seg_chord = lengths * np.sinc(turn / (2 * np.pi))
        seg_mid = seg_heading[:-1] + turn / 2
        seg_x = x0 + np.concatenate([[0.0], np.cumsum(seg_chord * np.cos(seg_mid))])
        seg_y = y0 + np.concatenate([[0.0], np.cumsum(seg_chord * np.sin(seg_mid))])
        seg_idx = np.minimum(np.searchsorted(ends, s, side="right"), len(segments) - 1)
        curvature = seg_k[seg_idx]
        u = s - starts[seg_idx]  # distance into the sample's segment
        dheading = curvature * u
        heading = seg_heading[seg_idx] + dheading
        chord = u * np.sinc(dheading / (2 * np.pi))  # exact chord of a constant-curvature arc
        mid = seg_heading[seg_idx] + dheading / 2
        x = seg_x[seg_idx] + chord * np.cos(mid)
        y = seg_y[seg_idx] + chord * np.sin(mid)
        self.s_m = s
        self.xy_m = np.stack([x, y], axis=1)
        self.heading_rad = heading
        self.curvature = curvature
        self._tangent = np.stack([np.cos(heading), np.sin(heading)], axis=1)
        # The arcs, for speed caps: (start s [m], end s [m], curvature [1/m]).
        self.arcs = tuple(
            (float(a), float(b), seg.curvature)
            for a, b, seg in zip(starts, ends, segments, strict=True)
            if seg.kind != "straight"
        )
        self._init_search(x, y, curvature)

    def _init_search(self, x: np.ndarray, y: np.ndarray, curvature: np.ndarray) -> None:
        """Tables for to_frenet. Per sample, as complex numbers x + iy (one operation moves or rotates
        both coordinates): the point, the conjugate of the unit tangent (multiplying a vector by it
        gives (along, across) the road), s, and the curvature of the interval ahead of / behind the
        sample as real / imaginary part."""
        n = len(x)
        frame = np.empty((n, 4), dtype=complex)
        frame[:, 0].real, frame[:, 0].imag = x, y
        frame[:, 1].real, frame[:, 1].imag = self._tangent[:, 0], -self._tangent[:, 1]
        frame[:, 2] = self.s_m
        behind = np.concatenate([curvature[:1], curvature[:-1]])
        frame[:, 3].real, frame[:, 3].imag = curvature, behind
        self._frame = frame
        # The nearest-sample search: -2 x, -2 y and x^2 + y^2 of each sample, (3, M).
        self._sq_terms = np.stack([-2.0 * x, -2.0 * y, x * x + y * y])
        # Samples between intervals of unequal curvature, counted before each sample: a stretch without
        # any needs no choice of interval.
        self._kinks_before = np.concatenate([[0], np.cumsum(curvature != behind)]).tolist()
        # Straight stretches: sample ranges [a, b] joined by straight intervals.
        bounds = np.flatnonzero(np.diff(np.concatenate(([0], curvature[:-1] == 0.0, [0])).astype(int)))
        # Per stretch: its first and last samples a, b, the rotation e^(-i heading) into road
        # coordinates, the offset s_a - r_a e^(-i heading) that makes z e^(-i heading) + offset = s + i d
        # for a point z measured on it, s_a and s_b.
        self._straights = []
        for a, b in zip(bounds[::2].tolist(), bounds[1::2].tolist(), strict=True):
            r, to_road, s_a, _ = frame[a].tolist()
            self._straights.append((a, b, to_road, s_a - r * to_road, s_a.real, float(self.s_m[b])))
        # Plain floats for one point: x, y and (tangent x, y, s, curvature ahead, behind) per sample.
        self._x, self._y = x.tolist(), y.tolist()
        self._floats = list(
            zip(
                *(a.tolist() for a in (self._tangent.T[0], self._tangent.T[1], self.s_m, curvature, behind)),
                strict=True,
            )
        )
        self._reach_m: float | None = None  # computed when first needed

    # ------------------------------------------------------------------ lanes
    def lane_offset_m(self, lane) -> np.ndarray | float:
        """Lateral offset of the centre of lane index (or array of indices)."""
        return (np.asarray(lane) + 0.5) * self.lane_width_m - self.half_width_m

    def lane_at(self, d_m) -> np.ndarray | int:
        """Index of the lane that contains lateral offset d (clipped to the road's lanes)."""
        idx = np.floor((np.asarray(d_m) + self.half_width_m) / self.lane_width_m)
        out = np.clip(idx, 0, self.lane_count - 1).astype(np.int64)
        return int(out) if out.ndim == 0 else out

    def is_oncoming(self, lane) -> np.ndarray | bool:
        """Whether lane index (or array of indices) carries traffic against s (a two-way road)."""
        out = np.asarray(lane) >= self.own_lanes
        return bool(out) if out.ndim == 0 else out

    def speed_limit_at(self, s_m) -> np.ndarray | float:
        """The speed limit [m/s] in force at s (shaped like s)."""
        i = np.searchsorted(self._limit_starts, s_m, side="right") - 1
        out = self._limit_values[np.maximum(i, 0)]
        return float(out) if out.ndim == 0 else out

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

        Each point is measured from its nearest road sample. With `s_hint_m`, only samples within
        `window_m` of the hint are searched (fast path for objects near the ego); a point beyond the
        searched stretch is measured from its end sample.
        """
        pts = np.asarray(xy_m, dtype=float)
        if pts.ndim == 1:
            x, y = float(pts[0]), float(pts[1])
            lo, hi = self._window(s_hint_m, window_m)
            i = None if s_hint_m is None else self._descend(x, y, s_hint_m, lo, hi)
            if i is None:
                i = int(self._nearest(pts.reshape(1, 2), lo, hi)[0])
            return self._frenet_one(x, y, i)
        s, d, _ = self.to_frenet_rotation(pts.reshape(-1, 2), s_hint_m, window_m)
        return s, d

    def to_frenet_rotation(self, xy_m: np.ndarray, s_hint_m: float | None = None, window_m: float = 40.0):
        """`to_frenet` of (N, 2) points, and e^(-i heading(s)): the rotation, as complex numbers, that
        turns a world vector at each point into (along, across) the road; one complex number for all
        when the searched stretch is straight (a point beyond it gets the stretch's heading).

        Returns (s (N,), d (N,), rotation (N,) complex or complex).
        """
        pts = np.ascontiguousarray(xy_m, dtype=float)
        z = pts.view(complex)[:, 0]
        lo, hi = self._window(s_hint_m, window_m)
        straight = self._on_straight(z, lo, hi)
        if straight is not None:
            return straight
        i = self._nearest(pts, lo, hi)
        f = self._frame.take(i, axis=0)
        q = (z - f[:, 0]) * f[:, 1]  # (along, across) the tangent
        along, d = q.real, q.imag
        # Off the reference line, distance along it shrinks by (1 - kappa d) (a lane inside a bend),
        # kappa of the interval on the point's side of sample i.
        kappa = f[:, 3].real
        if self._kinks_before[hi] != self._kinks_before[lo]:
            kappa = np.where(along < 0.0, f[:, 3].imag, kappa)
        s = f[:, 2].real + along / np.maximum(1.0 - kappa * d, 0.1)
        return s, d, np.exp(-1j * np.interp(s, self.s_m, self.heading_rad))

    def _window(self, s_hint_m: float | None, window_m: float) -> tuple[int, int]:
        """The samples [lo, hi) searched for points near `s_hint_m` (all of them without a hint)."""
        n = len(self._x)
        if s_hint_m is None:
            return 0, n
        lo = int((s_hint_m - window_m) / SAMPLE_SPACING_M)
        hi = int((s_hint_m + window_m) / SAMPLE_SPACING_M) + 2
        lo, hi = (lo if lo > 0 else 0), (hi if hi < n else n)
        return (0, n) if hi - lo < 2 else (lo, hi)

    def _on_straight(self, z: np.ndarray, lo: int, hi: int):
        """(s, d, rotation) of points z (N,) complex when the nearest sample in [lo, hi) of each lies
        on one straight stretch (and, on its end sample, on the straight side of it): then every
        sample of the stretch gives the same (s, d), up to rounding, and the first is used. Where the
        stretch ends inside [lo, hi), that needs each point's foot on the stretch and its distance to
        it below `reach_m`. None when there is no such stretch. The first point is tried alone first
        (in the planner, the ego)."""
        for a, b, to_road, offset, s_a, s_b in self._straights:
            if b < lo or a >= hi:
                continue
            # Where the road bends right before / after the stretch, a point behind its first sample /
            # ahead of its last would be measured with the bend's curvature (or from a sample in it).
            check_first, check_last = lo <= a > 0, hi - 1 >= b < len(self._x) - 1
            s_first = (z.item(0) * to_road + offset).real
            if (check_first and s_first < s_a) or (check_last and s_first >= s_b):
                continue
            q = z * to_road + offset  # (s, d)
            if check_first or check_last:
                # (Lists: see the notes in benchmarks/sim_speed.py.)
                s, d = q.real.tolist(), q.imag.tolist()
                if (check_first and min(s) < s_a) or (check_last and max(s) >= s_b):
                    continue
                if max(max(d), -min(d)) >= self.reach_m:  # it may be nearer to another stretch of road
                    continue
            return q.real, q.imag, to_road
        return None

    def _nearest(self, pts: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Index of the nearest sample in [lo, hi) to each point (N, 2): the argmin over the samples
        r of |p - r|^2 - |p|^2 = |r|^2 - 2 p.r, all (N, hi - lo) of them in one matrix product."""
        p = np.empty((len(pts), 3))
        p[:, :2] = pts
        p[:, 2] = 1.0
        return lo + (p @ self._sq_terms[:, lo:hi]).argmin(axis=1)

    @property
    def reach_m(self) -> float:
        """Distance from the centre line within which every point has a single nearest point on it,
        measured perpendicular to the line there [m]: the smallest radius of the bends, and half the
        narrowest gap between stretches of road far apart along it (a road that comes back near
        itself), estimated on every REACH_STEP-th sample less the error that makes."""
        if self._reach_m is None:
            radius = min((abs(1.0 / k) for _, _, k in self.arcs), default=math.inf)
            xy, s = self.xy_m[::REACH_STEP], self.s_m[::REACH_STEP]
            error = 2 * REACH_STEP * SAMPLE_SPACING_M  # a sample is at most this far from a subsample
            far_along = math.pi * min(radius, self.length_m) + error
            narrowest = math.inf
            for k in range(0, len(s), REACH_ROWS):  # a block of rows at a time: memory stays small
                far = np.abs(s[k : k + REACH_ROWS, None] - s) > far_along
                if far.any():
                    gaps = np.hypot(*(xy[k : k + REACH_ROWS, None] - xy).transpose(2, 0, 1))
                    narrowest = min(narrowest, float(gaps[far].min()) - error)
            self._reach_m = max(min(radius, 0.5 * narrowest), 0.0)
        return self._reach_m

    def _descend(self, x: float, y: float, s_hint_m: float, lo: int, hi: int) -> int | None:
        """Nearest sample in [lo, hi) to one point, walking from the hint's sample towards nearer ones
        (the lower index on a tie, as argmin): the window's nearest sample where the distance has a
        single minimum over it, as it has near the road (within `reach_m`). None when the walk takes
        more than DESCENT_MAX_STEPS or ends farther from the road."""
        xs, ys = self._x, self._y
        i = min(max(int(s_hint_m / SAMPLE_SPACING_M), lo), hi - 1)
        dx, dy = x - xs[i], y - ys[i]
        best = dx * dx + dy * dy
        for _ in range(DESCENT_MAX_STEPS):
            if i > lo:
                dx, dy = x - xs[i - 1], y - ys[i - 1]
                d2 = dx * dx + dy * dy
                if d2 <= best:
                    i, best = i - 1, d2
                    continue
            if i + 1 < hi:
                dx, dy = x - xs[i + 1], y - ys[i + 1]
                d2 = dx * dx + dy * dy
                if d2 < best:
                    i, best = i + 1, d2
                    continue
            # A walk that stops far from the road may have stopped short of a nearer stretch of it.
            return i if best < self.reach_m**2 else None
        return None

    def _frenet_one(self, x: float, y: float, i: int) -> tuple[float, float]:
        """(s, d) of one point measured from sample i, as `to_frenet_rotation` does, in plain floats."""
        tx, ty, s, k_ahead, k_behind = self._floats[i]
        dx, dy = x - self._x[i], y - self._y[i]
        along, d = dx * tx + dy * ty, dy * tx - dx * ty
        k = k_behind if along < 0.0 else k_ahead
        return s + along / max(1.0 - k * d, 0.1), d


@dataclass(frozen=True, slots=True)
class Approach:
    """One lane by which traffic comes into a junction from another of its arms: the lane's centre
    where it meets the box (`xy_m`), the heading of the traffic in it, how far it runs back to the
    junction before (`length_m`), and its street's speed limit. `side`: where the arm lies for the
    ego's approach, "left", "right" or "ahead" (its traffic is oncoming). `control`: how that
    approach is regulated (as `JunctionCrossing.control`), its stop line `stop_setback_m` back from
    the box."""

    side: str
    xy_m: tuple[float, float]
    heading_rad: float
    length_m: float
    speed_limit_mps: float
    control: str = "priority"
    stop_setback_m: float = 0.0


@dataclass(frozen=True, slots=True)
class JunctionCrossing:
    """Where a route crosses a junction of a town (decision/town.py), in the route road's s.

    control: how the ego's approach is regulated: "signal" (a traffic light, `signal_id`), "stop"
    (a stop sign: stop at the line, then go when the junction is clear), "yield" (give way to the
    traffic already in or near the junction) or "priority" (the ego's road has right of way).
    The junction box is the square of side 2 `half_size_m` around `centre_xy_m`, aligned with
    `heading_rad` (the ego's approach heading).
    """

    junction_id: int
    stop_s_m: float  # the stop line of the ego's approach
    entry_s_m: float  # the route enters the junction box ...
    exit_s_m: float  # ... and leaves it
    turn: str  # "left", "straight" or "right"
    control: str  # "signal", "stop", "yield" or "priority"
    signal_id: int  # the signal group of the ego's approach; -1 without a light
    centre_xy_m: tuple[float, float]
    half_size_m: float
    heading_rad: float
    approaches: tuple[Approach, ...] = ()  # the lanes coming in from the other arms

    def __post_init__(self):
        if self.turn not in TURNS:
            raise ValueError(f"turn must be one of {TURNS}, got {self.turn!r}")
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, got {self.control!r}")
        if not self.stop_s_m <= self.entry_s_m <= self.exit_s_m:
            raise ValueError("a junction crossing needs stop_s_m <= entry_s_m <= exit_s_m")


TURNS = ("left", "straight", "right")
CONTROLS = ("signal", "stop", "yield", "priority")


@dataclass(frozen=True, slots=True)
class Route:
    """Where the ego has to go: along `road` from `start_s_m` to `goal_s_m`, preferring `lane`,
    at `cruise_speed_mps` (never above the road's speed limit). In a town the road is the route's
    corridor through the road graph (decision/town.py), and `junctions` lists the junctions it
    crosses, in order of s; `pass_zones` are stretches where a scenario's obstruction may be passed
    through the oncoming lane without counting as driving against traffic (the TwoWays scenarios)."""

    road: Road
    start_s_m: float
    goal_s_m: float
    lane: int
    cruise_speed_mps: float
    junctions: tuple[JunctionCrossing, ...] = ()
    pass_zones: tuple[tuple[float, float], ...] = ()  # (start s, end s): passing on the left allowed

    @property
    def length_m(self) -> float:
        return self.goal_s_m - self.start_s_m

    def completion(self, s_m: float) -> float:
        """Fraction of the route done when the ego is at s, in [0, 1]."""
        return float(np.clip((s_m - self.start_s_m) / self.length_m, 0.0, 1.0))

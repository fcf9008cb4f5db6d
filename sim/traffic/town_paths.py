"""The paths of a town's actors in one table (sim/traffic/town_traffic.py): every path sampled, so
that one gather poses every actor, with the highest speed a vehicle may drive at each sample."""

from __future__ import annotations

import numpy as np

from decision.route import Road

LATERAL_ACCEL_MPS2 = 2.5  # vehicles slow down for a turn to keep under this ...
CURVE_DECEL_MPS2 = 1.5  # ... braking for it at this, ahead


class PathTable:
    """The paths of N actors in one table: samples of row i are base[i] .. base[i] + count[i] - 1,
    `step_m[i]` apart. Per sample: the reference point and left normal (x + iy), heading [rad] and
    curvature [1/m] of the reference line, and the highest speed [m/s] (along the reference line)
    of a vehicle at the row's lane offset: its speed limits (where `obeys_limits`), turns and braking
    ahead for both."""

    def __init__(
        self, paths: list[Road], offsets_m: np.ndarray, speed_cap_mps: np.ndarray, obeys_limits: np.ndarray
    ):
        self.count = np.array([len(p.s_m) for p in paths], np.int64)
        self.base = np.cumsum(self.count) - self.count
        self.step_m = np.array([p.length_m / (len(p.s_m) - 1) for p in paths])
        self.length_m = np.array([p.length_m for p in paths])
        none = [np.zeros(0)]  # (a town without actors)
        self.xy = np.concatenate([p.xy_m[:, 0] + 1j * p.xy_m[:, 1] for p in paths] + none)
        self.heading = np.concatenate([p.heading_rad for p in paths] + none)
        self.normal = 1j * np.exp(1j * self.heading)
        self.curvature = np.concatenate([np.asarray(p.curvature, float) for p in paths] + none)
        self.top_speed = np.concatenate(
            [
                _speed_envelope(p, d, cap, obeys)
                for p, d, cap, obeys in zip(paths, offsets_m, speed_cap_mps, obeys_limits, strict=True)
            ]
            + none
        )

    def index(self, rows: np.ndarray, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample index (of the interval start) and fraction into the interval of each (row, s)."""
        u = s_m / self.step_m[rows]
        # (np.minimum / np.maximum: a third of np.clip's cost on a few dozen values)
        i = np.minimum(np.maximum(np.floor(u), 0), self.count[rows] - 2).astype(np.int64)
        return self.base[rows] + i, np.minimum(np.maximum(u - i, 0.0), 1.0)

    def points(
        self, rows: np.ndarray, s_m: np.ndarray, d_m: np.ndarray, at: tuple | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """World points (x + iy) and headings at (s, d) of `rows` (any matching shapes); `at`: their
        `index(rows, s_m)` where the caller has it."""
        g, f = self.index(rows, s_m) if at is None else at
        xy = self.xy[g] + f * (self.xy[g + 1] - self.xy[g]) + d_m * self.normal[g]
        return xy, self.heading[g] + f * (self.heading[g + 1] - self.heading[g])


def _speed_envelope(path: Road, d_m: float, cap_mps: float, obeys_limit: bool) -> np.ndarray:
    """(M,) highest speed along the path's reference line at each sample for a vehicle at offset d:
    the speed limit (`obeys_limit`: not for an emergency vehicle), the turn (lateral acceleration on
    its lane's radius), `cap_mps`, and braking at CURVE_DECEL_MPS2 for all of those ahead: min over
    s' >= s of sqrt(v(s')^2 + 2 b (s' - s))."""
    s = path.s_m
    limit = np.minimum(path.speed_limit_at(s), cap_mps) if obeys_limit else np.full(s.shape, cap_mps)
    k = np.asarray(path.curvature, float)
    scale = np.maximum(1.0 - k * d_m, 0.1)  # lane speed / reference speed
    lane_k = np.abs(k) / scale
    turn = np.sqrt(LATERAL_ACCEL_MPS2 / np.maximum(lane_k, 1e-9)) / scale
    v = np.minimum(limit, turn)
    reach = v * v + 2 * CURVE_DECEL_MPS2 * s
    return np.sqrt(np.minimum.accumulate(reach[::-1])[::-1] - 2 * CURVE_DECEL_MPS2 * s)

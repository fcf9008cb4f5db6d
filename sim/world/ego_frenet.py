"""Frenet coordinates of one point that moves a little each tick (the ego), in plain floats.

`Road.to_frenet(xy, s_hint_m)` finds the nearest reference sample among those within `window_m`
of the hint with numpy (a few hundred distances per call). For one point per tick, close to where
it was, a walk from the sample at the hint to the nearest one is much cheaper, and gives the same
sample: the squared distance to the samples along the road has a single minimum in the window as
long as the point is nearer the road than its smallest radius of curvature and the window is
shorter than pi radii. Outside those conditions `EgoFrenet` asks `Road.to_frenet`.
"""

from __future__ import annotations

import math

import numpy as np

from decision.route import SAMPLE_SPACING_M, Road

WINDOW_M = 40.0  # search window either side of the hint [m], the walk's and Road.to_frenet's
MAX_WALK_SAMPLES = 200  # a longer walk means a jump: ask Road.to_frenet
CURVATURE_SAFETY = 0.5  # the walk is used while |d| * max curvature is below this


class EgoFrenet:
    """`locate(x, y, s_hint)` = `road.to_frenet((x, y), s_hint_m=s_hint, window_m=WINDOW_M)` for one
    point, in plain floats."""

    def __init__(self, road: Road):
        self.road = road
        self._s = road.s_m.tolist()
        self._x, self._y = road.xy_m[:, 0].tolist(), road.xy_m[:, 1].tolist()
        # The tangent as Road computes it (numpy's cos and sin), so the answers agree to the bit.
        self._tx, self._ty = np.cos(road.heading_rad).tolist(), np.sin(road.heading_rad).tolist()
        self._curvature = np.asarray(road.curvature, np.float64).tolist()
        self._step_m = (self._s[-1] - self._s[0]) / max(len(self._s) - 1, 1)
        kappa_max = float(np.max(np.abs(road.curvature))) if len(self._s) else 0.0
        # A window longer than pi radii can hold two local minima: always ask the road then.
        self._max_d_m = math.inf if kappa_max == 0.0 else CURVATURE_SAFETY / kappa_max
        self._usable = kappa_max * 2.0 * WINDOW_M < math.pi

    def locate(self, x_m: float, y_m: float, s_hint_m: float) -> tuple[float, float]:
        """Frenet (s, d) [m] of the world point (x, y), searching near s_hint_m."""
        n = len(self._s)
        lo = max(int((s_hint_m - WINDOW_M) / SAMPLE_SPACING_M), 0)
        hi = min(int((s_hint_m + WINDOW_M) / SAMPLE_SPACING_M) + 2, n)
        if hi - lo < 2 or not self._usable:
            return self.road.to_frenet(np.array([x_m, y_m]), s_hint_m=s_hint_m, window_m=WINDOW_M)
        xs, ys = self._x, self._y
        i = min(max(int(s_hint_m / self._step_m), lo), hi - 1)
        dx, dy = x_m - xs[i], y_m - ys[i]
        best = dx * dx + dy * dy
        walked = 0
        while i > lo:  # towards the start while not farther (the first of equal minima wins)
            dx, dy = x_m - xs[i - 1], y_m - ys[i - 1]
            d2 = dx * dx + dy * dy
            if d2 > best:
                break
            i, best, walked = i - 1, d2, walked + 1
        while i < hi - 1:  # towards the end while nearer
            dx, dy = x_m - xs[i + 1], y_m - ys[i + 1]
            d2 = dx * dx + dy * dy
            if d2 >= best:
                break
            i, best, walked = i + 1, d2, walked + 1
        dx, dy, tx, ty = x_m - xs[i], y_m - ys[i], self._tx[i], self._ty[i]
        d = dy * tx - dx * ty
        if walked > MAX_WALK_SAMPLES or abs(d) >= self._max_d_m:
            return self.road.to_frenet(np.array([x_m, y_m]), s_hint_m=s_hint_m, window_m=WINDOW_M)
        along = dx * tx + dy * ty
        kappa = self._curvature[max(i - 1, 0)] if along < 0.0 else self._curvature[i]
        return self._s[i] + along / max(1.0 - kappa * d, 0.1), d

"""World poses of the traffic's actors from their Frenet state, written into an `Actors` in place.

The same maths as `Road.to_world` (linear interpolation of the sampled reference line; s beyond
its ends takes the end values), arranged for a few dozen actors every tick: the reference line is
kept as two complex tables (x + iy, heading + i curvature), so one np.interp gives two quantities,
and every actor is first posed as moving along the road only; the few moving sideways (changing
lanes, crossing) are then corrected in plain floats.
"""

from __future__ import annotations

import math

import numpy as np

from decision.route import Road
from sim.traffic.actors import Actors

YAW_MIN_SPEED_MPS = 2.0  # yaw follows atan2(d_dot, max(s_dot, this)): bounded when nearly stopped


class FrenetPoser:
    """Writes xy_m, yaw_rad, v_mps and speed_mps of `actors` (N rows) from Frenet states."""

    def __init__(self, road: Road, actors: Actors):
        self.actors = actors
        self._ref_s = np.ascontiguousarray(road.s_m, dtype=np.float64)
        self._ref_xy = road.xy_m[:, 0] + 1j * road.xy_m[:, 1]
        self._ref_heading_curvature = road.heading_rad + 1j * np.asarray(road.curvature, np.float64)
        self._x, self._y = actors.xy_m[:, 0], actors.xy_m[:, 1]  # views: written in place
        self._vx, self._vy = actors.v_mps[:, 0], actors.v_mps[:, 1]

    def update(
        self,
        s_m: np.ndarray,
        d_m: np.ndarray,
        v_mps: np.ndarray,
        d_rate_mps: np.ndarray,
        turning: list[int],
        walking: list[int],
    ) -> None:
        """Pose every actor. s_m, d_m: (N,) Frenet position; v_mps: (N,) ds/dt along the reference
        line; d_rate_mps: (N,) dd/dt. `turning`: rows moving sideways that also turn towards
        their motion (vehicles changing lanes); `walking`: rows moving sideways that keep their yaw
        (pedestrians). Every other row must have d_rate 0."""
        a = self.actors
        heading_curvature = np.interp(s_m, self._ref_s, self._ref_heading_curvature)
        xy_ref = np.interp(s_m, self._ref_s, self._ref_xy)
        heading = heading_curvature.real
        cos_h, sin_h = np.cos(heading), np.sin(heading)
        np.subtract(xy_ref.real, d_m * sin_h, out=self._x)  # the reference point plus d along the left normal
        np.add(xy_ref.imag, d_m * cos_h, out=self._y)
        s_rate = heading_curvature.imag * d_m  # speed along the road at offset d: v (1 - kappa d)
        np.subtract(1.0, s_rate, out=s_rate)
        s_rate *= v_mps
        np.multiply(cos_h, s_rate, out=self._vx)
        np.multiply(sin_h, s_rate, out=self._vy)
        np.copyto(a.speed_mps, s_rate)
        np.copyto(a.yaw_rad, heading)
        if turning:
            self._sideways(turning, True, d_rate_mps, heading, cos_h, sin_h, s_rate)
        if walking:
            self._sideways(walking, False, d_rate_mps, heading, cos_h, sin_h, s_rate)

    def _sideways(
        self,
        rows: list[int],
        turn: bool,
        d_rate_mps: np.ndarray,
        heading: np.ndarray,
        cos_h: np.ndarray,
        sin_h: np.ndarray,
        s_rate: np.ndarray,
    ) -> None:
        """Velocity (plus d_rate along the left normal) and speed of rows moving sideways; with
        `turn`, also their yaw: heading + atan2(d_rate, max(s_rate, YAW_MIN_SPEED_MPS))."""
        a = self.actors
        for r in rows:
            d_rate, along = d_rate_mps.item(r), s_rate.item(r)
            if d_rate == 0.0:
                continue
            c, s = cos_h.item(r), sin_h.item(r)
            a.v_mps[r] = (c * along - s * d_rate, s * along + c * d_rate)
            a.speed_mps[r] = math.hypot(along, d_rate)
            if turn:
                a.yaw_rad[r] = heading.item(r) + math.atan2(d_rate, max(along, YAW_MIN_SPEED_MPS))

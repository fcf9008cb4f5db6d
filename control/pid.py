"""A PID controller with anti-windup, speed-scheduled gains and a log of its terms.

Modelled on the small PID of openpilot's controls: the integral is kept in output units (so a
change of gain with speed does not make the output jump), it is clamped to +-`integral_limit`, and
it stops growing while the output is saturated in the direction the error pushes it (conditional
integration). The derivative acts on the error and is zero on the first call after a reset, so a
fresh controller gives no derivative kick.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class PIDTerms(NamedTuple):
    """The terms of one update, in output units; output = clip(p + i + d + ff)."""

    p: float
    i: float
    d: float
    ff: float
    output: float


NO_TERMS = PIDTerms(0.0, 0.0, 0.0, 0.0, 0.0)


def _interp(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    """np.interp for one float on a short table (tuples): held constant outside it, NaN stays NaN."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    if x != x:  # NaN
        return x
    k = bisect.bisect_right(xs, x)  # xs[k - 1] <= x < xs[k]
    return ys[k - 1] + (ys[k] - ys[k - 1]) * (x - xs[k - 1]) / (xs[k] - xs[k - 1])


class PID:
    """Discrete PID: output = clip(kp e + i + kd de/dt + feedforward, output_min, output_max).

    kp, ki, kd: gains ([output]/[error], [output]/([error] s), [output] s/[error]).
    output_min, output_max: actuator limits (e.g. -max decel and max accel [m/s^2]).
    integral_limit: bound on the magnitude of the integral term, in output units (> 0, may be inf).
    speed_breakpoints_mps: (K,) increasing speeds at which the gains are scheduled. kp_schedule and
        ki_schedule: (K,) factors that multiply kp and ki at those speeds (linear in between,
        held constant outside). Either schedule may be None (factor 1).
    anti_windup: stop integrating while the output saturates in the direction of the error. Only
        tests turn it off, to show what it prevents; the integral is clamped either way.
    After each update, `terms` holds its PIDTerms (`log` gives them as a dict).
    """

    def __init__(
        self,
        kp: float,
        ki: float,
        kd: float,
        output_min: float,
        output_max: float,
        integral_limit: float,
        speed_breakpoints_mps: Sequence[float] | None = None,
        kp_schedule: Sequence[float] | None = None,
        ki_schedule: Sequence[float] | None = None,
        anti_windup: bool = True,
    ):
        if not output_min < output_max:
            raise ValueError(f"output_min={output_min} must be < output_max={output_max}")
        if not integral_limit > 0:
            raise ValueError(f"integral_limit={integral_limit} must be > 0")
        if min(kp, ki, kd) < 0:
            raise ValueError(f"PID gains must be >= 0: kp={kp}, ki={ki}, kd={kd}")
        self.kp, self.ki, self.kd = float(kp), float(ki), float(kd)
        self.output_min, self.output_max = float(output_min), float(output_max)
        self.integral_limit = float(integral_limit)
        self.anti_windup = anti_windup
        # Schedules as tuples of floats: read every tick, they are interpolated without numpy.
        self._breakpoints: tuple[float, ...] = ()
        self._kp_factors = self._ki_factors = None
        if kp_schedule is not None or ki_schedule is not None:
            if speed_breakpoints_mps is None:
                raise ValueError("a gain schedule needs speed_breakpoints_mps")
            breakpoints = np.asarray(speed_breakpoints_mps, dtype=float)
            if breakpoints.ndim != 1 or len(breakpoints) == 0 or np.any(np.diff(breakpoints) <= 0):
                raise ValueError(f"speed_breakpoints_mps must be increasing: {speed_breakpoints_mps}")
            self._breakpoints = tuple(breakpoints.tolist())
            self._kp_factors = self._schedule(kp_schedule, "kp_schedule")
            self._ki_factors = self._schedule(ki_schedule, "ki_schedule")
        self.reset()

    def _schedule(self, factors: Sequence[float] | None, name: str) -> tuple[float, ...] | None:
        if factors is None:
            return None
        arr = np.asarray(factors, dtype=float)
        if arr.shape != (len(self._breakpoints),) or np.any(arr < 0):
            raise ValueError(f"{name} must be {len(self._breakpoints)} factors >= 0, got {factors}")
        return tuple(arr.tolist())

    def reset(self) -> None:
        """Forget the integral and the previous error."""
        self.integral = 0.0
        self._prev_error: float | None = None
        self.terms = NO_TERMS

    def gains(self, speed_mps: float) -> tuple[float, float]:
        """(kp, ki) at this speed."""
        kp, ki = self.kp, self.ki
        if self._kp_factors is not None:
            kp *= _interp(speed_mps, self._breakpoints, self._kp_factors)
        if self._ki_factors is not None:
            ki *= _interp(speed_mps, self._breakpoints, self._ki_factors)
        return kp, ki

    def update(self, error: float, dt: float, speed_mps: float = 0.0, feedforward: float = 0.0) -> float:
        """One control step: the clipped output for this error; `dt` [s] > 0."""
        if not dt > 0:
            raise ValueError(f"dt={dt} must be > 0")
        if not (math.isfinite(error) and math.isfinite(feedforward)):
            raise ValueError(f"PID input is not finite: error={error}, feedforward={feedforward}")
        kp, ki = self.gains(speed_mps)
        p = kp * error
        d = 0.0 if self._prev_error is None else self.kd * (error - self._prev_error) / dt
        self._prev_error = error

        limit = self.integral_limit
        integral = min(max(self.integral + ki * error * dt, -limit), limit)
        unclipped = p + integral + d + feedforward
        # Conditional integration: keep the old integral when the new one would push an output that
        # is already past a limit further past it.
        winding_up = (unclipped > self.output_max and error > 0 and integral > 0) or (
            unclipped < self.output_min and error < 0 and integral < 0
        )
        if not (self.anti_windup and winding_up):
            self.integral = integral
        output = min(max(p + self.integral + d + feedforward, self.output_min), self.output_max)
        self.terms = PIDTerms(p, self.integral, d, feedforward, output)
        return output

    @property
    def log(self) -> dict[str, float]:
        """The terms of the last update (`terms`) as a dict: p, i, d, ff and the clipped output."""
        return self.terms._asdict()

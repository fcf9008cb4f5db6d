"""A PID controller with anti-windup, speed-scheduled gains and a log of its terms.

Modelled on the small PID of openpilot's controls: the integral is kept in output units (so a
change of gain with speed does not make the output jump), it is clamped to +-`integral_limit`, and
it stops growing while the output is saturated in the direction the error pushes it (conditional
integration). The derivative acts on the error and is zero on the first call after a reset, so a
fresh controller gives no derivative kick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
        self._breakpoints = None
        self._kp_factors = self._ki_factors = None
        if kp_schedule is not None or ki_schedule is not None:
            if speed_breakpoints_mps is None:
                raise ValueError("a gain schedule needs speed_breakpoints_mps")
            self._breakpoints = np.asarray(speed_breakpoints_mps, dtype=float)
            if self._breakpoints.ndim != 1 or np.any(np.diff(self._breakpoints) <= 0):
                raise ValueError(f"speed_breakpoints_mps must be increasing: {speed_breakpoints_mps}")
            self._kp_factors = self._schedule(kp_schedule, "kp_schedule")
            self._ki_factors = self._schedule(ki_schedule, "ki_schedule")
        self.reset()

    def _schedule(self, factors: Sequence[float] | None, name: str) -> np.ndarray | None:
        if factors is None:
            return None
        arr = np.asarray(factors, dtype=float)
        if arr.shape != self._breakpoints.shape or np.any(arr < 0):
            raise ValueError(f"{name} must be {len(self._breakpoints)} factors >= 0, got {factors}")
        return arr

    def reset(self) -> None:
        """Forget the integral and the previous error."""
        self.integral = 0.0
        self._prev_error: float | None = None
        self._log = {"p": 0.0, "i": 0.0, "d": 0.0, "ff": 0.0, "output": 0.0}

    def gains(self, speed_mps: float) -> tuple[float, float]:
        """(kp, ki) at this speed."""
        kp, ki = self.kp, self.ki
        if self._kp_factors is not None:
            kp *= float(np.interp(speed_mps, self._breakpoints, self._kp_factors))
        if self._ki_factors is not None:
            ki *= float(np.interp(speed_mps, self._breakpoints, self._ki_factors))
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
        self._log = {"p": p, "i": self.integral, "d": d, "ff": feedforward, "output": output}
        return output

    @property
    def log(self) -> dict[str, float]:
        """The terms of the last update: p, i, d, ff and the clipped output."""
        return dict(self._log)

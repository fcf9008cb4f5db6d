"""The vehicle controller: turns the planner's Plan into a steering angle and an acceleration.

Lateral: pure pursuit or Stanley (control/lateral.py). Longitudinal: a PID on the speed error with
the planner's target acceleration as feed-forward (control/pid.py). The reference speed is read off
the plan's speed profile a little ahead of the ego (`speed_lookahead_s` x speed along the path), so
that the controller starts braking as the profile starts to fall rather than when the car is there.
Two cases bypass the PID: an EMERGENCY_BRAKE plan commands the full deceleration, and a stopped car
with a (near) zero reference holds the brake at `standstill_decel_mps2` instead of hunting around
zero speed.

The gains come from conf/control/*.yaml; the vehicle limits (wheelbase, steering and acceleration
limits) belong to the vehicle (conf/sim: sim.vehicle) and are passed by the entry point:
`hydra.utils.instantiate(cfg.control, wheelbase_m=..., max_steer_rad=..., max_accel_mps2=...,
max_decel_mps2=...)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from control.command import ControlCommand
from control.lateral import LateralResult, PathGeometry, PurePursuit, Stanley
from control.pid import PID
from decision.plan import Behaviour, Plan
from perception.types import EgoState

LATERAL_LAWS = {"pure_pursuit": PurePursuit, "stanley": Stanley}

# Values of the `mode` entry of the log.
MODE_TRACK, MODE_STANDSTILL, MODE_EMERGENCY = 0.0, 1.0, 2.0


class VehicleController:
    """Plan -> ControlCommand, with `reset()` and `update(ego, plan, dt)`.

    lateral: "pure_pursuit" | "stanley". lateral_params: the keyword arguments of that law other
        than wheelbase_m and max_steer_rad (PurePursuit: lookahead_min_m, lookahead_gain_s;
        Stanley: gain, softening_mps, heading_gain).
    speed_pid: keyword arguments of `PID` other than the output limits (kp, ki, kd,
        integral_limit, optional speed_breakpoints_mps / kp_schedule / ki_schedule).
    speed_lookahead_s: the reference speed is the profile's speed this many seconds (at the
        current speed) ahead of the ego's nearest path point.
    standstill_speed_mps: below this speed, with a reference below it too, the car holds the brake.
    standstill_decel_mps2: the deceleration (positive) commanded to hold the car still.
    wheelbase_m, max_steer_rad, max_accel_mps2, max_decel_mps2 (positive): the vehicle's.
    """

    def __init__(
        self,
        lateral: str,
        lateral_params: Mapping[str, Any],
        speed_pid: Mapping[str, Any],
        speed_lookahead_s: float,
        standstill_speed_mps: float,
        standstill_decel_mps2: float,
        wheelbase_m: float,
        max_steer_rad: float,
        max_accel_mps2: float,
        max_decel_mps2: float,
    ):
        if lateral not in LATERAL_LAWS:
            raise ValueError(f"lateral={lateral!r}: expected one of {sorted(LATERAL_LAWS)}")
        if not (max_accel_mps2 > 0 and max_decel_mps2 > 0):
            raise ValueError("max_accel_mps2 and max_decel_mps2 must be > 0 (decel is a magnitude)")
        if not (speed_lookahead_s >= 0 and standstill_speed_mps >= 0):
            raise ValueError("speed_lookahead_s and standstill_speed_mps must be >= 0")
        if not 0 < standstill_decel_mps2 <= max_decel_mps2:
            raise ValueError(f"standstill_decel_mps2={standstill_decel_mps2} must be in (0, max_decel]")
        self.lateral = LATERAL_LAWS[lateral](
            wheelbase_m=wheelbase_m, max_steer_rad=max_steer_rad, **dict(lateral_params)
        )
        self.speed_pid = PID(output_min=-max_decel_mps2, output_max=max_accel_mps2, **dict(speed_pid))
        self.speed_lookahead_s = float(speed_lookahead_s)
        self.standstill_speed_mps = float(standstill_speed_mps)
        self.standstill_decel_mps2 = float(standstill_decel_mps2)
        self.max_decel_mps2 = float(max_decel_mps2)
        self._plan = self._geometry = self._speeds = None  # the last plan and what follows from it

    def reset(self) -> None:
        """Forget the PID state and the last plan (start of an episode)."""
        self.speed_pid.reset()
        self.lateral.reset()
        self._plan = self._geometry = self._speeds = None

    def update(self, ego: EgoState, plan: Plan, dt: float) -> tuple[ControlCommand, dict[str, float]]:
        """One control tick of `dt` [s]: the command and a flat log of floats (same keys every tick).

        Log: steer_rad, accel_mps2, v_ref_mps, speed_error_mps, pid_p, pid_i, pid_d, pid_ff, mode
        (0 track, 1 standstill hold, 2 emergency brake) and the lateral law's log:
        cross_track_error_m, heading_error_rad, lookahead_m, target_x_m, target_y_m.
        The reference speed is the profile's speed `speed_lookahead_s * v` along the path from the
        centre's nearest path point; an empty path gives 0 (stop), a single point its own speed.
        Raises ValueError on a bad dt, a non-finite ego state, a broken path (`PathGeometry`) or
        speeds that do not match the path's points.
        """
        if not dt > 0:
            raise ValueError(f"dt={dt} must be > 0")
        if not math.isfinite(ego.x_m + ego.y_m + ego.yaw_rad + ego.speed_mps):
            raise ValueError(f"ego state is not finite: {ego}")
        geometry, speeds = self._prepare(plan)
        lateral, v_ref = self._track(ego, geometry, speeds)
        accel, mode = self._longitudinal(plan, v_ref, ego.speed_mps, dt)
        pid = self.speed_pid.terms
        log = {
            "steer_rad": lateral.steer_rad,
            "accel_mps2": accel,
            "v_ref_mps": v_ref,
            "speed_error_mps": v_ref - ego.speed_mps,
            "pid_p": pid.p,
            "pid_i": pid.i,
            "pid_d": pid.d,
            "pid_ff": pid.ff,
            "mode": mode,
            "cross_track_error_m": lateral.cross_track_error_m,
            "heading_error_rad": lateral.heading_error_rad,
            "lookahead_m": lateral.lookahead_m,
            "target_x_m": lateral.target_x_m,
            "target_y_m": lateral.target_y_m,
        }
        return ControlCommand(steer_rad=lateral.steer_rad, accel_mps2=accel), log

    def _prepare(self, plan: Plan) -> tuple[PathGeometry, np.ndarray]:
        """The plan's path geometry and its speeds at the points kept; worked out once per plan (the
        planner runs slower than control)."""
        if plan is not self._plan:
            geometry = PathGeometry(plan.path_xy_m)
            speeds = np.asarray(plan.speeds_mps, dtype=float)
            n_plan = len(plan.path_xy_m)
            if speeds.shape != (n_plan,):
                raise ValueError(f"speeds_mps has shape {speeds.shape}, path has {n_plan} points")
            if geometry.keep is not None:
                speeds = speeds[geometry.keep]
            self._plan, self._geometry, self._speeds = plan, geometry, speeds
        return self._geometry, self._speeds

    def _track(
        self, ego: EgoState, geometry: PathGeometry, speeds: np.ndarray
    ) -> tuple[LateralResult, float]:
        """The lateral law's steering, and the reference speed [m/s] read off the profile
        `speed_lookahead_s` ahead of the centre's nearest path point."""
        law = self.lateral
        if geometry.n_points < 2:
            v_ref = max(float(speeds[0]), 0.0) if geometry.n_points == 1 else 0.0
            return law.steer_on(ego, geometry, None), v_ref
        # One pass projects the law's axle (for steering) and the centre (for the speed reference).
        x, y, yaw = ego.x_m, ego.y_m, ego.yaw_rad
        offset = law.axle_offset_m
        axle_xy = (x + offset * math.cos(yaw), y + offset * math.sin(yaw))
        axle, s_centre = geometry.project_axle_and_centre(axle_xy, (x, y))
        s_ref = s_centre + self.speed_lookahead_s * max(ego.speed_mps, 0.0)
        return law.steer_on(ego, geometry, axle), max(geometry.interp(s_ref, speeds), 0.0)

    def _longitudinal(self, plan: Plan, v_ref: float, v: float, dt: float) -> tuple[float, float]:
        """(acceleration [m/s^2], log mode): full braking for an emergency plan, the standstill hold,
        or the speed PID with the plan's acceleration as feed-forward."""
        if plan.behaviour == Behaviour.EMERGENCY_BRAKE:
            self.speed_pid.reset()
            return -self.max_decel_mps2, MODE_EMERGENCY
        if v_ref < self.standstill_speed_mps and v < self.standstill_speed_mps:
            self.speed_pid.reset()
            return -self.standstill_decel_mps2, MODE_STANDSTILL
        accel = self.speed_pid.update(v_ref - v, dt, speed_mps=v, feedforward=plan.target_accel_mps2)
        return accel, MODE_TRACK

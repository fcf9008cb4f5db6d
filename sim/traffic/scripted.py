"""Scripted behaviours of a scenario's actors (CARLA scenario_runner style): cut in, brake, cross.

Each scripted actor waits for its trigger, fires once, then runs its manoeuvre:

- cut_in: when the ego's front bumper comes within `trigger_gap_m` behind it, from the lane next to
  the ego, it changes into `target_lane` over `manoeuvre_s`, keeping its speed (braking if it must);
- brake: from `trigger_time_s` on, it brakes at `decel_mps2` at least, down to a stop;
- cross: when the ego comes within `trigger_distance_m` (along s), a pedestrian walks across the
  road at its speed to beyond the far edge, waiting while a car stands in its way.

`Scripted` keeps the rows waiting and the rows in their manoeuvre; `sim.traffic.traffic.Traffic` asks it
at fixed points of its step. It shares the traffic's per-row arrays (R = N actors + ego + wall
rows) and updates them in place. Nothing here runs on a tick with no scripted actor left to act.
"""

from __future__ import annotations

import math

import numpy as np

from sim.scenario.spec import ActorSpec

CROSS_BEYOND_EDGE_M = 1.5  # a crossing pedestrian stops this far beyond the far road edge
PEDESTRIAN_CLEARANCE_M = 0.3  # a crossing pedestrian waits rather than come nearer a car than this
NO_ROWS = np.zeros(0, np.int64)


def _first(values: np.ndarray, rows: np.ndarray) -> float:
    """Smallest of values[rows] (inf for no rows)."""
    return float(values[rows].min()) if rows.size else math.inf


def _column(specs: list[ActorSpec], field: str, rows: int, fill, dtype=float) -> np.ndarray:
    """(rows,) array of one ActorSpec field, `fill` in the rows past the actors (ego, wall)."""
    return np.array([getattr(a, field) for a in specs] + [fill] * (rows - len(specs)), dtype)


class Scripted:
    """The scripted rows of a traffic model and their triggers.

    specs: the N actors; cut_rows, brake_rows, cross_rows: rows with each behaviour (cut-ins and
    brakes driven vehicles, crossers pedestrians); ped_rows: every pedestrian row. The arrays s, d,
    lane, half_length_m, half_width_m, lane_reach_m (a row takes up the lanes whose centre is
    nearer than this), is_car, d_rate_mps (dd/dt) are the traffic's (R,) row arrays, shared.
    """

    def __init__(
        self,
        specs: list[ActorSpec],
        cut_rows: np.ndarray,
        brake_rows: np.ndarray,
        cross_rows: np.ndarray,
        ped_rows: np.ndarray,
        *,
        s: np.ndarray,
        d: np.ndarray,
        lane: np.ndarray,
        half_length_m: np.ndarray,
        half_width_m: np.ndarray,
        lane_reach_m: np.ndarray,
        is_car: np.ndarray,
        d_rate_mps: np.ndarray,
        lane_centres_m: np.ndarray,
        road_half_width_m: float,
    ):
        r = s.size
        self._s, self._d, self._lane, self._d_rate = s, d, lane, d_rate_mps
        self._half_length, self._half_width = half_length_m, half_width_m
        self._lane_reach, self._is_car = lane_reach_m, is_car
        self._lane_centres = lane_centres_m
        nan = math.nan
        self._trigger_gap = _column(specs, "trigger_gap_m", r, nan)
        self._trigger_time = _column(specs, "trigger_time_s", r, nan)
        self._trigger_distance = _column(specs, "trigger_distance_m", r, nan)
        self.cut_lane = _column(specs, "target_lane", r, -1, np.int64)
        self.manoeuvre_s = _column(specs, "manoeuvre_s", r, nan)
        self._decel = np.nan_to_num(_column(specs, "decel_mps2", r, nan))
        self._walk_speed = np.zeros(r)
        self._walk_speed[ped_rows] = _column(specs, "speed_mps", r, 0.0)[ped_rows]
        self.triggered = np.zeros(r, bool)
        # Rows still waiting for their trigger, rows in their manoeuvre.
        self._cut_waiting = cut_rows
        self.cut_active = NO_ROWS  # cut-ins changing lanes now
        self._brake_waiting = brake_rows
        self._braking = NO_ROWS
        self._ped_waiting = cross_rows
        self.walking = NO_ROWS
        # Scalar tests of "can anything fire now?", checked every tick.
        self._brake_t = _first(self._trigger_time, brake_rows)
        self._ped_trigger_s = _first(s - self._trigger_distance, cross_rows)
        self.waiting = bool(cut_rows.size or brake_rows.size or cross_rows.size)
        self.limits_accel = False  # a cut-in or a brake is running: `limit_accel` has work
        # Pedestrians walk towards the other side, facing across the road.
        ped_dir = np.where(d > 0, -1.0, 1.0)
        self._ped_target_d = ped_dir * (road_half_width_m + CROSS_BEYOND_EDGE_M)
        self.ped_rows = ped_rows
        self.ped_yaw_rad = ped_dir[ped_rows] * (np.pi / 2)

    # ------------------------------------------------------------------ triggers
    def fire(
        self, t_s: float, ego_s_m: float, ego_lane: int, ego_length_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Start the manoeuvres whose condition holds now (each fires once).

        Returns the lane changes of the cut-ins fired now, as (rows, target lanes, durations [s]),
        or None. Call only while `waiting`.
        """
        started = self._fire_cut_ins(ego_s_m, ego_lane, ego_length_m) if self._cut_waiting.size else None
        if t_s >= self._brake_t:
            self._fire_brakes(t_s)
        if ego_s_m >= self._ped_trigger_s:  # the ego is within trigger_distance_m of a waiting pedestrian
            self._fire_crossings(ego_s_m)
        self.waiting = bool(self._cut_waiting.size or self._brake_waiting.size or self._ped_waiting.size)
        self.limits_accel = bool(self.cut_active.size or self._braking.size)
        return started

    def _fire_cut_ins(
        self, ego_s_m: float, ego_lane: int, ego_length_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Cut-ins ahead in a lane next to the ego's, within their trigger gap of its front bumper."""
        waiting, s = self._cut_waiting, self._s
        gap = s[waiting] - (ego_s_m + 0.5 * ego_length_m) - self._half_length[waiting]
        beside = np.abs(self._lane[waiting] - ego_lane) == 1
        fire = (gap <= self._trigger_gap[waiting]) & (s[waiting] > ego_s_m) & beside
        if not np.count_nonzero(fire):
            return None
        rows = waiting[fire]
        self.triggered[rows] = True
        self._cut_waiting = waiting[~fire]
        self.cut_active = np.union1d(self.cut_active, rows)
        return rows, self.cut_lane[rows], self.manoeuvre_s[rows]

    def _fire_brakes(self, t_s: float) -> None:
        """Brakes whose trigger time has come."""
        waiting = self._brake_waiting
        fire = t_s >= self._trigger_time[waiting]
        self.triggered[waiting[fire]] = True
        self._braking = np.union1d(self._braking, waiting[fire])
        self._brake_waiting = waiting[~fire]
        self._brake_t = _first(self._trigger_time, self._brake_waiting)

    def _fire_crossings(self, ego_s_m: float) -> None:
        """Pedestrians the ego has come within trigger_distance_m of (along s)."""
        waiting, trigger_s = self._ped_waiting, self._s - self._trigger_distance
        fire = ego_s_m >= trigger_s[waiting]
        self.triggered[waiting[fire]] = True
        self.walking = np.union1d(self.walking, waiting[fire])
        self._ped_waiting = waiting[~fire]
        self._ped_trigger_s = _first(trigger_s, self._ped_waiting)

    def lane_changes_done(self, rows: np.ndarray) -> None:
        """These rows finished their lane change: cut-ins among them are back to plain IDM."""
        if self.cut_active.size:
            self.cut_active = np.setdiff1d(self.cut_active, rows)
            self.limits_accel = bool(self.cut_active.size or self._braking.size)

    # ------------------------------------------------------------------ manoeuvres
    def limit_accel(self, accel: np.ndarray) -> None:
        """A cut-in keeps its speed during its manoeuvre (brakes if it must); a braking vehicle
        brakes at least at its decel. accel: (R,) [m/s^2], changed in place."""
        if self.cut_active.size:
            cutting = self.cut_active
            accel[cutting] = np.minimum(accel[cutting], 0.0)
        if self._braking.size:
            braking = self._braking
            accel[braking] = np.minimum(accel[braking], -self._decel[braking])

    def block_lanes(self, occupancy: np.ndarray) -> None:
        """A crossing pedestrian takes up every lane it has still to cross (vehicles wait for it).

        occupancy: (R, lanes) 0/1, changed in place. Call only while `walking` has rows."""
        p = self.walking
        d, target, reach = self._d[p, None], self._ped_target_d[p, None], self._lane_reach[p, None]
        lo, hi = np.minimum(d, target) - reach, np.maximum(d, target) + reach
        occupancy[p] = np.logical_or(occupancy[p], (self._lane_centres > lo) & (self._lane_centres < hi))

    def yield_to_vehicles(self, gap: np.ndarray) -> None:
        """A vehicle already over a crossing pedestrian's path drives on (the pedestrian waits):
        negative gaps to walking pedestrians count as none. gap: (R, R) row -> column [m]."""
        p = self.walking
        g = gap[:, p]
        gap[:, p] = np.where(g < 0.0, np.inf, g)

    def walk(self, dt_s: float) -> None:
        """Walk the triggered pedestrians across the road, waiting while a vehicle (or the ego)
        stands in their way; they stop at their target beyond the far edge."""
        p, s, half_length, half_width = self.walking, self._s, self._half_length, self._half_width
        d = self._d[p]
        max_step = self._walk_speed[p] * dt_s
        step = np.minimum(np.maximum(self._ped_target_d[p] - d, -max_step), max_step)
        near_s = np.abs(s - s[p, None]) < half_length + half_length[p, None] + PEDESTRIAN_CLEARANCE_M
        reach = half_width + half_width[p, None] + PEDESTRIAN_CLEARANCE_M
        in_way = near_s & (np.abs(self._d - (d + step)[:, None]) < reach) & self._is_car  # (P, R)
        step *= np.count_nonzero(in_way, axis=1) == 0
        self._d[p] = d + step
        self._d_rate[p] = step / dt_s
        arrived = self._d[p] == self._ped_target_d[p]
        if np.count_nonzero(arrived):
            self._d_rate[p[arrived]] = 0.0
            self.walking = p[~arrived]

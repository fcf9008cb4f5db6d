"""NPC traffic and scripted actors, moved along the road in Frenet coordinates, all at once.

Every actor is one row of flat arrays (s, d, lane, speed, behaviour code, trigger parameters ...);
`Traffic.step` advances all rows together: a leader search over a (rows, rows) gap matrix, IDM for
every driven vehicle in one call, MOBIL lane changes for the vehicles due to decide, scripted
triggers (cut in, brake, cross) on the few rows still waiting for them. The ego takes part as a
leader and a follower (a row of the internal arrays) but is never moved here. World poses go into an
`Actors` struct (updated in place) that the world helper pushes into PyBullet.

Frenet: `s` [m] along the road's reference line, `d` [m] to its left (decision.route.Road).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from decision.idm import IDMParams, MOBILParams, idm_accel, mobil_gain
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE
from sim.actors import Actors
from sim.config import TrafficConfig
from sim.scenario import ActorSpec, ScenarioSpec

# Behaviour codes (rows of `Traffic.behaviour`).
IDM, KEEP_LANE, CUT_IN, BRAKE, CROSS, STATIC = range(6)
BEHAVIOUR_CODES = {
    "idm": IDM,
    "keep_lane": KEEP_LANE,
    "cut_in": CUT_IN,
    "brake": BRAKE,
    "cross": CROSS,
    "static": STATIC,
}
DRIVEN = (IDM, KEEP_LANE, CUT_IN, BRAKE)  # vehicles moved by IDM

PEDESTRIAN_SIZE_M = (0.5, 0.5, 1.75)  # length, width, height
CONE_SIZE_M = (0.4, 0.4, 0.7)
BARRIER_SIZE_M = (0.5, 2.5, 1.0)  # thin along the road, blocks most of a lane across it
VAN_SCALE = (1.15, 1.1, 1.4)  # van size = vehicle size times this
END_MARGIN_M = 5.0  # no vehicle gets nearer the road's end than this (they brake for it before)
CROSS_BEYOND_EDGE_M = 1.5  # a crossing pedestrian stops this far beyond the far road edge
PEDESTRIAN_LANE_MARGIN_M = 0.5  # a pedestrian blocks a lane once this close to it, laterally
PEDESTRIAN_CLEARANCE_M = 0.3  # a crossing pedestrian waits rather than come nearer a car than this
OCCUPANCY_SLACK_M = 0.1  # lateral overlap with a lane below this does not block the lane
LANE_CHANGE_FULL_RATE_MPS = 3.0  # slower vehicles progress through a lane change proportionally slower,
LANE_CHANGE_MIN_RATE = 0.5  # but at least at this fraction of the full rate (a stopped car pulls out)
YAW_MIN_SPEED_MPS = 2.0  # yaw follows atan2(d_dot, max(s_dot, this)): bounded when nearly stopped
BLEND_TABLE_POINTS = 257  # samples of the lane-change blend (error ~1e-5 of the lateral move)
DECISION_SLOTS = 4  # MOBIL decisions happen at one of this many phases of lane_change_period_s
NPC_DESIRED_SPEED_FACTOR = (1.0, 1.2)  # random NPC desired speed = initial speed x U(low, high)
PLACEMENT_TRIES_PER_NPC = 200
VEHICLE_PALETTE = (
    (0.85, 0.85, 0.85, 1.0),
    (0.1, 0.1, 0.1, 1.0),
    (0.7, 0.1, 0.1, 1.0),
    (0.1, 0.25, 0.6, 1.0),
    (0.5, 0.5, 0.55, 1.0),
    (0.9, 0.75, 0.2, 1.0),
    (0.2, 0.45, 0.25, 1.0),
)
PEDESTRIAN_PALETTE = ((0.2, 0.2, 0.5, 1.0), (0.6, 0.2, 0.2, 1.0), (0.25, 0.5, 0.3, 1.0), (0.3, 0.3, 0.3, 1.0))
CONE_RGBA = (1.0, 0.45, 0.0, 1.0)
BARRIER_RGBA = (0.9, 0.15, 0.1, 1.0)


def _blend(frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quintic smoothstep of a lane change and its derivative (zero slope at both ends)."""
    f2 = frac * frac
    return f2 * frac * (10.0 - 15.0 * frac + 6.0 * f2), 30.0 * f2 * (1.0 - frac) ** 2


class Traffic:
    """Scripted actors of a scenario plus random IDM/MOBIL traffic.

    `actors` (N rows, ids 1..N) holds the world poses; scripted actors come first, in the order of
    `spec.actors`, then the random NPCs. Call `step` once per control tick.

    Internally every per-row array has N + 2 rows: row N is the ego, written at the start of each
    step and never moved here, so that it is a leader and a follower like any vehicle; row N + 1 is a
    still wall across all lanes at the end of the road, so that vehicles brake for the road's end.
    """

    def __init__(
        self,
        spec: ScenarioSpec,
        cfg: TrafficConfig,
        vehicle_size_m: tuple[float, float, float],
        rng: np.random.Generator,
        rgba_fn: Callable[[np.random.Generator], np.ndarray] | None = None,
    ):
        self.road = road = spec.road
        self._cfg = cfg
        self._idm = IDMParams(cfg.accel_max_mps2, cfg.decel_comfort_mps2, cfg.time_headway_s, cfg.min_gap_m)
        self._mobil_p = MOBILParams(cfg.politeness, cfg.min_accel_gain_mps2, cfg.max_braking_imposed_mps2)
        self._vehicle_size = tuple(float(x) for x in vehicle_size_m)
        self._rgba_fn = rgba_fn
        ego_lane, ego_s = spec.route.lane, spec.route.start_s_m

        specs = list(spec.actors) + self._random_npcs(spec, rng)
        n = self._n = len(specs)
        looks = [self._look(a, rng) for a in specs]  # (size, rgba, class id) of each actor
        kind = np.array([a.kind for a in specs] + ["ego", "wall"])
        beh = np.array([BEHAVIOUR_CODES[a.behaviour] for a in specs] + [STATIC, STATIC], np.int64)
        driven = (kind == "vehicle") & np.isin(beh, DRIVEN)
        is_ped = kind == "pedestrian"
        nan = math.nan

        # Row n is the ego; row n + 1 a wall across the road at its end, so vehicles stop before it.
        def column(field: str, ego_value, wall_value=nan, dtype=float) -> np.ndarray:
            return np.array([getattr(a, field) for a in specs] + [ego_value, wall_value], dtype)

        self._s = column("s_m", ego_s, road.length_m)
        self._d = column("d_m", float(road.lane_offset_m(ego_lane)), 0.0)
        self._v = column("speed_mps", spec.ego_speed_mps, 0.0) * driven  # ds/dt
        self._v0 = column("target_speed_mps", spec.route.cruise_speed_mps, 0.0) * driven  # IDM desired
        self._v[n], self._v0[n] = spec.ego_speed_mps, spec.route.cruise_speed_mps
        self._lane = column("lane", ego_lane, 0, np.int64)  # the lane left during a lane change
        self._target = self._lane.copy()
        self.behaviour = beh[:n]
        self._trigger_gap = column("trigger_gap_m", nan)
        self._trigger_time = column("trigger_time_s", nan)
        self._trigger_dist = column("trigger_distance_m", nan)
        self._cut_lane = column("target_lane", -1, -1, np.int64)
        self._manoeuvre = column("manoeuvre_s", nan)
        self._decel = np.nan_to_num(column("decel_mps2", nan))
        self._walk_speed = np.where(is_ped, column("speed_mps", 0.0, 0.0), 0.0)
        self._triggered = np.zeros(n + 2, bool)
        size = np.array([look[0] for look in looks], float).reshape(n, 3)
        self._half_len = np.append(size[:, 0], [self._vehicle_size[0], 0.0]) / 2
        width = np.append(size[:, 1], [self._vehicle_size[1], np.inf])  # the wall spans every lane
        self._half_width = np.where(np.isinf(width), 0.0, width / 2)
        self._is_car = (kind == "ego") | np.isin(
            np.array([a.model for a in specs] + ["ego", "wall"]), ("car", "van")
        )
        self._occ_reach = road.lane_width_m / 2 + width / 2 + np.where(is_ped, PEDESTRIAN_LANE_MARGIN_M, 0.0)
        self._occ_reach -= OCCUPANCY_SLACK_M
        self._lane_centres = np.asarray(road.lane_offset_m(np.arange(road.lane_count)), float)
        # Lane changes: d blends from _lc_from to _lc_to as _lc_frac goes 0 -> 1 over _lc_dur seconds.
        self._lc_from = self._d.copy()
        self._lc_to = self._d.copy()
        # The blend and its slope as tables: two np.interp calls are cheaper than the polynomial.
        self._blend_frac = np.linspace(0.0, 1.0, BLEND_TABLE_POINTS)
        self._blend, self._blend_slope = _blend(self._blend_frac)
        self._lc_frac = np.ones(n + 2)
        self._lc_dur = np.ones(n + 2)
        # MOBIL decision times: each vehicle gets one of DECISION_SLOTS phases of the period.
        period = cfg.lane_change_period_s
        self._next_decision = rng.integers(0, DECISION_SLOTS, n + 2) * (period / DECISION_SLOTS)

        # Row groups, fixed for the episode (the ego row is in none but `_is_driver`).
        self._driven = driven
        self._is_driver = driven.copy()  # rows with an IDM acceleration worth asking for (MOBIL)
        self._is_driver[n] = True
        self._is_idm = driven & (beh == IDM)
        self._driven_f = self._driven.astype(np.float64)
        self._any_driven = bool(self._driven.any())
        self._s_cap = np.where(self._driven, road.length_m - END_MARGIN_M, np.inf)  # vehicles stop there
        self._rows = np.arange(n + 2)
        self._lc_rows = np.zeros(0, np.int64)  # vehicles changing lanes now
        idm_times = self._next_decision[self._is_idm]
        self._next_mobil_t = float(idm_times.min()) if idm_times.size else math.inf
        # Scripted triggers: rows still waiting, and cheap scalar tests of "anything to fire now?".
        self._cut_waiting = np.flatnonzero(driven & (beh == CUT_IN))
        self._cut_active = np.zeros(0, np.int64)  # cut-ins in their manoeuvre
        self._brake_waiting = np.flatnonzero(driven & (beh == BRAKE))
        self._braking = np.zeros(0, np.int64)
        self._ped_waiting = np.flatnonzero(is_ped & (beh == CROSS))
        self._walking = np.zeros(0, np.int64)
        self._brake_t = self._first(self._trigger_time, self._brake_waiting)
        self._ped_trigger_s = self._first(self._s - self._trigger_dist, self._ped_waiting)
        self._ped_rows = np.flatnonzero(is_ped[:n])
        ped_dir = np.where(self._d > 0, -1.0, 1.0)  # pedestrians walk towards the other side
        self._ped_target_d = ped_dir * (road.half_width_m + CROSS_BEYOND_EDGE_M)
        self._ped_yaw = ped_dir[self._ped_rows] * (np.pi / 2)  # facing across the road
        # The road's reference line, contiguous, for the pose interpolation.
        self._ref_s = np.ascontiguousarray(road.s_m)
        self._ref_x = np.ascontiguousarray(road.xy_m[:, 0])
        self._ref_y = np.ascontiguousarray(road.xy_m[:, 1])
        self._ref_heading = np.ascontiguousarray(road.heading_rad)
        self._ref_curvature = np.ascontiguousarray(road.curvature, dtype=np.float64)
        self._d_dot = np.zeros(n + 2)

        self.actors = Actors(
            ids=np.arange(1, n + 1, dtype=np.int64),
            class_ids=np.array([look[2] for look in looks], np.int64).reshape(n),
            models=[a.model for a in specs],
            size_m=size,
            xy_m=np.zeros((n, 2)),
            yaw_rad=np.zeros(n),
            speed_mps=np.zeros(n),
            v_mps=np.zeros((n, 2)),
            accel_mps2=np.zeros(n),
            rgba=np.array([look[1] for look in looks], float).reshape(n, 4),
        )
        self._cap_npc_speeds(np.arange(len(spec.actors), n), ego_lane)
        self._update_poses()

    @staticmethod
    def _first(values: np.ndarray, rows: np.ndarray) -> float:
        """Smallest of values[rows] (inf for no rows)."""
        return float(values[rows].min()) if rows.size else math.inf

    # ------------------------------------------------------------------ construction
    def _vehicle_rgba(self, rng: np.random.Generator) -> np.ndarray:
        if self._rgba_fn is not None:
            return np.asarray(self._rgba_fn(rng), float).reshape(4)
        return np.array(VEHICLE_PALETTE[rng.integers(len(VEHICLE_PALETTE))], float)

    def _look(self, a: ActorSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """Size (length, width, height) [m], colour and class id of an actor's model."""
        if a.model in ("car", "van"):
            scale = np.array(VAN_SCALE) if a.model == "van" else 1.0
            return np.array(self._vehicle_size) * scale, self._vehicle_rgba(rng), VEHICLE
        if a.model == "pedestrian":
            rgba = PEDESTRIAN_PALETTE[rng.integers(len(PEDESTRIAN_PALETTE))]
            return np.array(PEDESTRIAN_SIZE_M), np.array(rgba), PEDESTRIAN
        if a.model == "cone":
            return np.array(CONE_SIZE_M), np.array(CONE_RGBA), OBSTACLE
        return np.array(BARRIER_SIZE_M), np.array(BARRIER_RGBA), OBSTACLE

    def _random_npcs(self, spec: ScenarioSpec, rng: np.random.Generator) -> list[ActorSpec]:
        """`spec.traffic.count` idm vehicles at random lanes and positions, none closer than
        `min_spacing_m` (centre to centre, same lane) to another, a scripted actor or the ego start."""
        tr, road = spec.traffic, self.road
        if tr.count <= 0:
            return []
        length = self._vehicle_size[0]
        ego_s = spec.route.start_s_m
        lo = max(ego_s + tr.ds_min_m, length)
        hi = min(ego_s + tr.ds_max_m, road.length_m - END_MARGIN_M - length)
        taken: list[list[float]] = [[] for _ in range(road.lane_count)]
        taken[spec.route.lane].append(ego_s)
        for a in spec.actors:
            if abs(a.d_m) < road.half_width_m:
                taken[int(road.lane_at(a.d_m))].append(a.s_m)
        placed: list[tuple[int, float]] = []
        for _ in range(tr.count * PLACEMENT_TRIES_PER_NPC if hi > lo else 0):
            if len(placed) == tr.count:
                break
            lane, s = int(rng.integers(road.lane_count)), float(rng.uniform(lo, hi))
            if all(abs(s - other) >= tr.min_spacing_m for other in taken[lane]):
                taken[lane].append(s)
                placed.append((lane, s))
        if len(placed) < tr.count:
            warnings.warn(
                f"traffic: placed {len(placed)} of {tr.count} NPC vehicles (no room at min_spacing_m="
                f"{tr.min_spacing_m} in s [{lo:.0f}, {hi:.0f}] m)",
                stacklevel=3,
            )
        npcs = []
        for lane, s in placed:
            speed = float(rng.uniform(tr.speed_min_mps, tr.speed_max_mps))
            desired = speed * float(rng.uniform(*NPC_DESIRED_SPEED_FACTOR))
            d = float(road.lane_offset_m(lane))
            npcs.append(ActorSpec("vehicle", "car", "idm", s, lane, d, speed, target_speed_mps=desired))
        return npcs

    def _cap_npc_speeds(self, rows: np.ndarray, ego_lane: int) -> None:
        """Slow random NPCs placed close behind something slower, down to the speed whose IDM
        desired gap s*(v) equals the gap they have (so they start without hard braking)."""
        if rows.size == 0:
            return
        p = self._idm
        c = 1.0 / (2.0 * math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2))
        for _ in range(rows.size):  # leaders first: repeat until no speed changes
            lead, gap = self._leaders(*self._occupancy(ego_lane))
            v_lead, room = self._v[lead[rows]], np.maximum(gap[rows] - p.min_gap_m, 0.0)
            # s0 + v T + c v (v - v_lead) = gap  ->  c v^2 + (T - c v_lead) v - room = 0
            b = p.time_headway_s - c * v_lead
            cap = (-b + np.sqrt(b * b + 4.0 * c * room)) / (2.0 * c)
            new = np.minimum(self._v[rows], cap)
            if np.array_equal(new, self._v[rows]):
                break
            self._v[rows] = new

    # ------------------------------------------------------------------ public
    @property
    def lane(self) -> np.ndarray:
        """(N,) lane of each actor (the lane it leaves while a lane change is in progress)."""
        return self._lane[: self._n].copy()

    @property
    def target_lane(self) -> np.ndarray:
        """(N,) lane each actor is heading to (== lane when not changing lanes)."""
        return self._target[: self._n].copy()

    @property
    def triggered(self) -> np.ndarray:
        """(N,) bool: the scripted trigger of each actor has fired."""
        return self._triggered[: self._n].copy()

    @property
    def speed_along_road_mps(self) -> np.ndarray:
        """(N,) ds/dt of each actor [m/s]."""
        return self._v[: self._n].copy()

    def frenet(self) -> tuple[np.ndarray, np.ndarray]:
        """(s, d) [m] of every actor, each (N,)."""
        n = self._n
        return self._s[:n].copy(), self._d[:n].copy()

    def lane_of_actors(self) -> np.ndarray:
        """(N,) lane index that contains each actor's centre, -1 when the centre is off the road."""
        d = self._d[: self._n]
        return np.where(np.abs(d) < self.road.half_width_m, self.road.lane_at(d), -1)

    def step(
        self,
        dt_s: float,
        t_s: float,
        ego_s_m: float,
        ego_d_m: float,
        ego_speed_mps: float,
        ego_length_m: float,
    ) -> None:
        """Advance every actor by `dt_s` [s]. `t_s` is the time at the start of the step; the ego's
        Frenet pose [m], speed [m/s] and length [m] make it a leader and a follower for the NPCs."""
        n, cfg, road = self._n, self._cfg, self.road
        self._s[n], self._d[n], self._v[n] = ego_s_m, ego_d_m, ego_speed_mps
        self._half_len[n] = 0.5 * ego_length_m
        ego_lane = min(
            max(math.floor((ego_d_m + road.half_width_m) / road.lane_width_m), 0), road.lane_count - 1
        )
        self._lane[n] = self._target[n] = ego_lane
        self._fire_triggers(t_s, ego_s_m, ego_lane, ego_length_m)
        if self._any_driven:
            occ_follow, occ_lead = self._occupancy(ego_lane)
            lead, gap = self._leaders(occ_follow, occ_lead)
            acc_idm = idm_accel(self._v, self._v0, gap, self._v[lead], self._idm)  # (N+2,)
            acc = np.minimum(np.maximum(acc_idm, -cfg.max_decel_mps2), cfg.accel_max_mps2)
            acc *= self._driven_f
            if self._cut_active.size:  # a cut-in keeps its speed during the manoeuvre (brakes if it must)
                c = self._cut_active
                acc[c] = np.minimum(acc[c], 0.0)
            if self._braking.size:
                b = self._braking
                acc[b] = np.minimum(acc[b], -self._decel[b])
            if t_s >= self._next_mobil_t:
                self._mobil(t_s, occ_lead, lead, gap, acc_idm)
            self._advance_vehicles(dt_s, acc)
        if self._walking.size:
            self._advance_pedestrians(dt_s)
        self._update_poses()

    # ------------------------------------------------------------------ step parts
    def _fire_triggers(self, t_s: float, ego_s: float, ego_lane: int, ego_length: float) -> None:
        """Start the scripted manoeuvres whose condition holds now (each fires once)."""
        trig = self._triggered
        if self._cut_waiting.size:
            c = self._cut_waiting
            gap = self._s[c] - (ego_s + 0.5 * ego_length) - self._half_len[c]
            fire = (
                (gap <= self._trigger_gap[c]) & (self._s[c] > ego_s) & (np.abs(self._lane[c] - ego_lane) == 1)
            )
            if np.count_nonzero(fire):
                rows = c[fire]
                trig[rows] = True
                self._cut_waiting = c[~fire]
                self._cut_active = np.union1d(self._cut_active, rows)
                self._start_lane_change(rows, self._cut_lane[rows], self._manoeuvre[rows])
        if t_s >= self._brake_t:
            b = self._brake_waiting
            fire = t_s >= self._trigger_time[b]
            trig[b[fire]] = True
            self._braking = np.union1d(self._braking, b[fire])
            self._brake_waiting = b[~fire]
            self._brake_t = self._first(self._trigger_time, self._brake_waiting)
        if ego_s >= self._ped_trigger_s:  # the ego is within trigger_distance_m of a waiting pedestrian
            p = self._ped_waiting
            fire = ego_s >= self._s[p] - self._trigger_dist[p]
            trig[p[fire]] = True
            self._walking = np.union1d(self._walking, p[fire])
            self._ped_waiting = p[~fire]
            self._ped_trigger_s = self._first(self._s - self._trigger_dist, self._ped_waiting)

    def _occupancy(self, ego_lane: int) -> tuple[np.ndarray, np.ndarray]:
        """Lanes each row takes up, as (N+2, lanes) float 0/1 arrays (follow, lead).

        Every row takes up the lanes its lateral extent overlaps; a crossing pedestrian also the lanes
        it has still to cross (vehicles wait for it). A vehicle (and the ego) also takes up its target lane (it looks for leaders there: `follow`) and, as a leader of others
        (`lead`), its lane and its target lane for the whole of a lane change.
        """
        occ = np.abs(self._d[:, None] - self._lane_centres) < self._occ_reach[:, None]
        occ[self._n, ego_lane] = True
        if self._walking.size:  # a crossing pedestrian blocks every lane still ahead of it too
            p = self._walking
            d, target, reach = self._d[p, None], self._ped_target_d[p, None], self._occ_reach[p, None]
            lo, hi = np.minimum(d, target) - reach, np.maximum(d, target) + reach
            occ[p] |= (self._lane_centres > lo) & (self._lane_centres < hi)
        if not self._lc_rows.size:  # vehicles in their lanes: the geometry says it all
            occ = occ.astype(np.float64)
            return occ, occ
        rows = self._lc_rows  # vehicles changing lanes
        occ[rows, self._target[rows]] = True
        lead = occ.copy()
        lead[rows, self._lane[rows]] = True
        return occ.astype(np.float64), lead.astype(np.float64)

    def _leaders(self, occ_follow: np.ndarray, occ_lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest row ahead in a shared lane, for every row (N+2: actors, ego, road-end wall).

        Returns lead (N+2,) row index and gap (N+2,) bumper to bumper [m], inf when there is none."""
        s, hl = self._s, self._half_len
        ds = s - s[:, None]  # (N+2, N+2): row i -> column j
        ahead = (occ_follow @ occ_lead.T > 0.0) & (ds > 0.0)
        gap = np.where(ahead, ds - hl - hl[:, None], np.inf)
        if self._walking.size:  # a vehicle already over a pedestrian's path drives on; the pedestrian waits
            p = self._walking
            gap[:, p] = np.where(gap[:, p] < 0.0, np.inf, gap[:, p])
        lead = gap.argmin(axis=1)
        return lead, gap[self._rows, lead]

    def _mobil(
        self, t_s: float, occ: np.ndarray, lead: np.ndarray, lgap: np.ndarray, acc_now: np.ndarray
    ) -> None:
        """MOBIL left and right at once for the idm vehicles due to decide; start the chosen changes.

        occ: (N+2, lanes) lead occupancy; lead, lgap, acc_now: (N+2,) current leader, gap, IDM accel.
        """
        due = self._is_idm & (self._next_decision <= t_s)
        cfg, s, v, v0, hl = self._cfg, self._s, self._v, self._v0, self._half_len
        period = cfg.lane_change_period_s
        late = t_s - self._next_decision[due]  # stay on each vehicle's phase of the period
        self._next_decision[due] += period * (np.floor(late / period) + 1.0)
        self._next_mobil_t = float(self._next_decision[self._is_idm].min())
        rows = (due & (self._lane == self._target)).nonzero()[0]  # not already changing
        if cfg.politeness == 0.0 and rows.size:
            # Without politeness only the own gain counts, and no lane can give more than the free
            # road's IDM acceleration: skip the vehicles that could not gain min_accel_gain_mps2.
            idm = self._idm
            free = idm.accel_max_mps2 * (1.0 - (v[rows] / np.maximum(v0[rows], 0.1)) ** idm.delta)
            rows = rows[free - acc_now[rows] > cfg.min_accel_gain_mps2]
        nd = rows.size
        if nd == 0:
            return
        lanes = self._lane[rows]
        cand_lane = np.concatenate((lanes + 1, lanes - 1))  # (K = 2 nd,): left, then right
        valid = (cand_lane >= 0) & (cand_lane < self.road.lane_count)
        me = np.concatenate((rows, rows))
        k = np.arange(me.size)
        member = occ.T[cand_lane % self.road.lane_count] > 0.0  # (K, N+2); invalid lanes: masked later
        member[k, me] = False
        ds = s - s[me][:, None]
        half_sum = hl + hl[me][:, None]
        ahead = np.where(member & (ds > 0.0), ds - half_sum, np.inf)
        new_lead = ahead.argmin(axis=1)
        g_lead = ahead[k, new_lead]
        behind = np.where(member & (ds <= 0.0), -ds - half_sum, np.inf)
        g_back = behind.min(axis=1)  # anything behind or alongside, drivers or not
        behind = np.where(self._is_driver, behind, np.inf)
        new_fol = behind.argmin(axis=1)
        g_fol = behind[k, new_fol]
        has_fol = g_fol < np.inf
        v_me = v[me]
        after = idm_accel(
            np.concatenate((v_me, v[new_fol])),
            np.concatenate((v0[me], v0[new_fol])),
            np.concatenate((g_lead, g_fol)),
            np.concatenate((v[new_lead], v_me)),
            self._idm,
        ).reshape(2, -1)
        old_now = old_after = 0.0
        if cfg.politeness != 0.0:  # the old follower (the driver whose leader is this vehicle) gains
            old = np.where(self._is_driver & (lead == me[:, None]) & (lgap < np.inf), lgap, np.inf)
            old_fol = old.argmin(axis=1)
            has_old = old[k, old_fol] < np.inf
            my_lead = lead[me]
            g_old = np.where(has_old, s[my_lead] - s[old_fol] - hl[my_lead] - hl[old_fol], np.inf)
            g_old[lgap[me] == np.inf] = np.inf
            old_after = np.where(
                has_old, idm_accel(v[old_fol], v0[old_fol], g_old, v[my_lead], self._idm), 0.0
            )
            old_now = np.where(has_old, acc_now[old_fol], 0.0)
        incentive, safe = mobil_gain(
            acc_now[me],
            after[0],
            np.where(has_fol, acc_now[new_fol], 0.0),
            np.where(has_fol, after[1], 0.0),
            old_now,
            old_after,
            self._mobil_p,
        )
        # Safe for the new follower (MOBIL) and for the vehicle itself, with room fore and aft.
        safe &= after[0] >= -cfg.max_braking_imposed_mps2
        ok = valid & safe & (g_lead > cfg.min_gap_m) & (g_back > cfg.min_gap_m) & (incentive > 0.0)
        if not np.count_nonzero(ok):
            return
        score = np.where(ok, incentive, -np.inf).reshape(2, nd)
        best = score.argmax(axis=0)
        go = score[best, np.arange(nd)] > -np.inf
        rows, new_lane = rows[go], cand_lane.reshape(2, nd)[best, np.arange(nd)][go]
        if rows.size > 1:  # vehicles merging into one lane at once: the rear ones must not need to brake
            sr, hr, vr = s[rows], hl[rows], v[rows]
            gap_pair = sr - sr[:, None] - hr - hr[:, None]  # (m, m): row i behind column j
            ahead = (new_lane == new_lane[:, None]) & (
                (sr > sr[:, None]) | ((sr == sr[:, None]) & (rows < rows[:, None]))
            )
            a_pair = idm_accel(vr[:, None], v0[rows][:, None], gap_pair, vr, self._idm)
            unsafe = (a_pair < -cfg.max_braking_imposed_mps2) | (gap_pair <= cfg.min_gap_m)
            keep = ~(ahead & unsafe).any(axis=1)
            rows, new_lane = rows[keep], new_lane[keep]
        self._start_lane_change(rows, new_lane, np.full(rows.size, cfg.lane_change_duration_s))

    def _start_lane_change(self, rows: np.ndarray, lanes: np.ndarray, duration_s: np.ndarray) -> None:
        self._target[rows] = lanes
        self._lc_from[rows] = self._d[rows]
        self._lc_to[rows] = self.road.lane_offset_m(lanes)
        self._lc_frac[rows] = 0.0
        self._lc_dur[rows] = duration_s
        self._lc_rows = np.union1d(self._lc_rows, rows)

    def _advance_vehicles(self, dt_s: float, acc: np.ndarray) -> None:
        """Integrate speed and s of the driven vehicles (exact stop within a step) and lane changes.

        acc: (N+2,) [m/s^2], zero for every row that is not a driven vehicle."""
        n, s, v = self._n, self._s, self._v
        v_new = v + acc * dt_s
        stops = (v_new < 0.0) & (v > 0.0)
        np.maximum(v_new, 0.0, out=v_new)
        ds = (v + v_new) * (0.5 * dt_s)
        if np.count_nonzero(stops):  # stops within the step: the exact distance of the deceleration
            ds = np.where(stops, v * v / (2.0 * np.maximum(-acc, 1e-9)), ds)
        s += ds
        np.minimum(s, self._s_cap, out=s)  # driven vehicles stop at the end of the road
        v_new *= s < self._s_cap
        np.subtract(v_new[:n], v[:n], out=self.actors.accel_mps2)
        self.actors.accel_mps2 /= dt_s
        v[:] = v_new
        if not self._lc_rows.size:
            return
        # Lane changes: a quintic blend of d; slower below LANE_CHANGE_FULL_RATE_MPS.
        r = self._lc_rows
        rate = np.minimum(np.maximum(v_new[r] * (1.0 / LANE_CHANGE_FULL_RATE_MPS), LANE_CHANGE_MIN_RATE), 1.0)
        rate /= self._lc_dur[r]
        frac = np.minimum(self._lc_frac[r] + rate * dt_s, 1.0)
        self._lc_frac[r] = frac
        blend = np.interp(frac, self._blend_frac, self._blend)
        slope = np.interp(frac, self._blend_frac, self._blend_slope)
        span = self._lc_to[r] - self._lc_from[r]
        self._d[r] = self._lc_from[r] + span * blend
        self._d_dot[r] = span * slope * rate
        done = frac >= 1.0
        if np.count_nonzero(done):
            finished = r[done]
            self._lane[finished] = self._target[finished]
            self._d_dot[finished] = 0.0
            self._lc_rows = r[~done]
            self._cut_active = np.setdiff1d(self._cut_active, finished)

    def _advance_pedestrians(self, dt_s: float) -> None:
        """Walk the triggered pedestrians across the road, waiting while a vehicle (or the ego)
        stands in their way; they stop at their target beyond the far edge."""
        p = self._walking
        d = self._d[p]
        max_step = self._walk_speed[p] * dt_s
        step = np.minimum(np.maximum(self._ped_target_d[p] - d, -max_step), max_step)
        near_s = (
            np.abs(self._s - self._s[p, None])
            < self._half_len + self._half_len[p, None] + PEDESTRIAN_CLEARANCE_M
        )
        reach = self._half_width + self._half_width[p, None] + PEDESTRIAN_CLEARANCE_M
        in_way = near_s & (np.abs(self._d - (d + step)[:, None]) < reach) & self._is_car  # (P, N+2)
        step *= np.count_nonzero(in_way, axis=1) == 0
        self._d[p] = d + step
        self._d_dot[p] = step / dt_s
        arrived = self._d[p] == self._ped_target_d[p]
        if np.count_nonzero(arrived):
            self._d_dot[p[arrived]] = 0.0
            self._walking = p[~arrived]

    def _update_poses(self) -> None:
        """World pose, yaw and velocity of every actor from its Frenet state and rates.

        The same maths as `Road.to_world` (linear interpolation of the sampled reference line),
        with the reference arrays kept contiguous and the curvature read in the same pass."""
        n, a, ref_s = self._n, self.actors, self._ref_s
        s, d = np.minimum(np.maximum(self._s[:n], 0.0), ref_s[-1]), self._d[:n]
        heading = np.interp(s, ref_s, self._ref_heading)
        cos_h, sin_h = np.cos(heading), np.sin(heading)
        a.xy_m[:, 0] = np.interp(s, ref_s, self._ref_x) - d * sin_h
        a.xy_m[:, 1] = np.interp(s, ref_s, self._ref_y) + d * cos_h
        s_rate = self._v[:n] * (1.0 - np.interp(s, ref_s, self._ref_curvature) * d)  # at offset d
        d_rate = self._d_dot[:n]
        # Vehicles turn towards their lateral motion; pedestrians face the way they cross.
        yaw_off = np.arctan2(d_rate, np.maximum(s_rate, YAW_MIN_SPEED_MPS))
        if self._ped_rows.size:
            yaw_off[self._ped_rows] = self._ped_yaw
        np.add(heading, yaw_off, out=a.yaw_rad)
        a.v_mps[:, 0] = cos_h * s_rate - sin_h * d_rate
        a.v_mps[:, 1] = sin_h * s_rate + cos_h * d_rate
        np.hypot(s_rate, d_rate, out=a.speed_mps)

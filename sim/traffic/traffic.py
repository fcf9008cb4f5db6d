"""NPC traffic and scripted actors, moved along the road in Frenet coordinates, all at once.

Every actor is one row of flat arrays (s, d, lane, speed, ...); `Traffic.step` advances all rows
together: a leader search over a (rows, rows) gap matrix, IDM for every driven vehicle in one pass
and MOBIL lane changes for the vehicles due to decide (sim/traffic/models.py), the scripted
triggers and pedestrians (sim/traffic/scripted.py) while any is left to act, and the world poses
(sim/traffic/poses.py) into an `Actors` struct, updated in place, that the world helper pushes into
PyBullet. The ego takes part as a leader and a follower (a row of the internal arrays) but is
never moved here. Who takes part and what they look like: sim/traffic/spawn.py.

The step runs every control tick on a few dozen rows, where each numpy call costs more than its
arithmetic (about a microsecond): the fixed arrays and their views are made once, work that only
some ticks need (MOBIL, scripted actors) is skipped on the others by scalar tests, and what
concerns a few rows only (lane changes in progress) is done in plain floats.

Frenet: `s` [m] along the road's reference line, `d` [m] to its left (decision.route.Road).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decision.idm import IDMParams
from sim.config import TrafficConfig
from sim.scenario.spec import ScenarioSpec
from sim.traffic.actors import Actors
from sim.traffic.models import choose_lane_changes, idm_rows
from sim.traffic.poses import FrenetPoser
from sim.traffic.scripted import Scripted
from sim.traffic.spawn import END_MARGIN_M, RgbaFn, actor_look, random_npcs

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

PEDESTRIAN_LANE_MARGIN_M = 0.5  # a pedestrian blocks a lane once this close to it, laterally
OCCUPANCY_SLACK_M = 0.1  # lateral overlap with a lane below this does not block the lane
LANE_CHANGE_FULL_RATE_MPS = 3.0  # slower vehicles progress through a lane change proportionally slower,
LANE_CHANGE_MIN_RATE = 0.5  # but at least at this fraction of the full rate (a stopped car pulls out)
DECISION_SLOTS = 4  # MOBIL decisions happen at one of this many phases of lane_change_period_s


def _blend(frac: float) -> tuple[float, float]:
    """Quintic smoothstep of a lane change and its derivative (zero slope at both ends)."""
    f2 = frac * frac
    return f2 * frac * (10.0 - 15.0 * frac + 6.0 * f2), 30.0 * f2 * (1.0 - frac) ** 2


@dataclass(slots=True)
class _LaneChange:
    """One vehicle's lane change: d blends from `from_m` to `to_m` as `frac` goes 0 -> 1."""

    from_m: float
    to_m: float
    duration_s: float  # at full rate
    frac: float = 0.0


class Traffic:
    """Scripted actors of a scenario plus random IDM/MOBIL traffic.

    `actors` (N rows, ids 1..N) holds the world poses; scripted actors come first, in the order of
    `spec.actors`, then the random NPCs. Call `step` once per control tick.

    Internally every per-row array has R = N + 2 rows: row N is the ego, written at the start of
    each step and never moved here, so that it is a leader and a follower like any vehicle; row
    N + 1 is a still wall across all lanes at the end of the road, so that vehicles brake for it.
    """

    def __init__(
        self,
        spec: ScenarioSpec,
        cfg: TrafficConfig,
        vehicle_size_m: tuple[float, float, float],
        rng: np.random.Generator,
        rgba_fn: RgbaFn | None = None,
    ):
        self.road = road = spec.road
        self._cfg = cfg
        self._idm = IDMParams(cfg.accel_max_mps2, cfg.decel_comfort_mps2, cfg.time_headway_s, cfg.min_gap_m)
        vehicle_size = tuple(float(x) for x in vehicle_size_m)
        ego_lane, ego_s = spec.route.lane, spec.route.start_s_m

        specs = list(spec.actors) + random_npcs(spec, vehicle_size[0], rng)
        n = self._n = len(specs)
        r = n + 2
        looks = [actor_look(a, vehicle_size, rng, rgba_fn) for a in specs]  # (size, rgba, class id)
        kind = np.array([a.kind for a in specs] + ["ego", "wall"])
        beh = np.array([BEHAVIOUR_CODES[a.behaviour] for a in specs] + [STATIC, STATIC], np.int64)
        driven = (kind == "vehicle") & np.isin(beh, DRIVEN)
        is_ped = kind == "pedestrian"

        # Row n is the ego; row n + 1 a wall across the road at its end, so vehicles stop before it.
        def column(field: str, ego_value, wall_value=math.nan, dtype=float) -> np.ndarray:
            return np.array([getattr(a, field) for a in specs] + [ego_value, wall_value], dtype)

        self._s = column("s_m", ego_s, road.length_m)
        self._d = column("d_m", float(road.lane_offset_m(ego_lane)), 0.0)
        self._v = column("speed_mps", spec.ego_speed_mps, 0.0) * driven  # ds/dt
        self._v0 = column("target_speed_mps", spec.route.cruise_speed_mps, 0.0) * driven  # IDM desired
        self._v[n], self._v0[n] = spec.ego_speed_mps, spec.route.cruise_speed_mps
        self._inv_v0 = 1.0 / np.maximum(self._v0, 0.1)  # v0 clamped as decision.idm.idm_accel does
        self._lane = column("lane", ego_lane, 0, np.int64)  # the lane left during a lane change
        self._target = self._lane.copy()
        self._d_dot = np.zeros(r)
        self.behaviour = beh[:n]
        size = np.array([look[0] for look in looks], float).reshape(n, 3)
        self._half_len = np.append(size[:, 0], [vehicle_size[0], 0.0]) / 2
        width = np.append(size[:, 1], [vehicle_size[1], np.inf])  # the wall spans every lane
        self._half_width = np.where(np.isinf(width), 0.0, width / 2)
        models = np.array([a.model for a in specs] + ["ego", "wall"])
        is_car = (kind == "ego") | np.isin(models, ("car", "van"))
        self._occ_reach = road.lane_width_m / 2 + width / 2 + np.where(is_ped, PEDESTRIAN_LANE_MARGIN_M, 0.0)
        self._occ_reach -= OCCUPANCY_SLACK_M
        self._lane_centres = np.asarray(road.lane_offset_m(np.arange(road.lane_count)), float)

        # Lane changes in progress (a few rows at a time): row -> its blend, stepped in plain floats.
        self._lane_changes: dict[int, _LaneChange] = {}
        self._lateral_rows: list[int] = []  # the same rows, sorted
        # MOBIL decisions: each idm vehicle decides once per period, at one of DECISION_SLOTS phases.
        slot = rng.integers(0, DECISION_SLOTS, r)
        is_idm = driven & (beh == IDM)
        self._slot_rows = [np.flatnonzero(is_idm & (slot == k)).tolist() for k in range(DECISION_SLOTS)]
        phase_s = cfg.lane_change_period_s / DECISION_SLOTS
        self._slot_next_s = [k * phase_s if rows else math.inf for k, rows in enumerate(self._slot_rows)]
        self._next_mobil_t = min(self._slot_next_s)

        # Row groups, fixed for the episode (the ego row is in none but `_is_driver`).
        self._driven_f = driven.astype(np.float64)
        self._any_driven = bool(driven.any())
        self._is_driver = driven.copy()  # rows with an IDM acceleration worth asking for (MOBIL)
        self._is_driver[n] = True
        self._s_cap = np.where(driven, road.length_m - END_MARGIN_M, np.inf)  # vehicles stop there

        self._scripted = Scripted(
            specs,
            np.flatnonzero(driven & (beh == CUT_IN)),
            np.flatnonzero(driven & (beh == BRAKE)),
            np.flatnonzero(is_ped & (beh == CROSS)),
            np.flatnonzero(is_ped[:n]),
            s=self._s,
            d=self._d,
            lane=self._lane,
            half_len=self._half_len,
            half_width=self._half_width,
            occ_reach=self._occ_reach,
            is_car=is_car,
            d_dot=self._d_dot,
            lane_centres_m=self._lane_centres,
            road_half_width_m=road.half_width_m,
        )

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
        names = set(self.__dict__)
        self._allocate()
        self._derived = tuple(set(self.__dict__) - names)  # rebuilt, not copied (see __getstate__)
        self._cap_npc_speeds(np.arange(len(spec.actors), n), ego_lane)
        self._update_poses()

    def _allocate(self) -> None:
        """Work arrays of the step and the views it reads (all fixed for the episode: the row
        arrays are only ever changed in place, so the views stay valid)."""
        n, road = self._n, self.road
        r, lanes = n + 2, road.lane_count
        self._occ = np.empty((r, lanes))  # 0/1: lanes each row takes up (as a follower)
        self._occ_lead = np.empty((r, lanes))  # 0/1: lanes each row takes up as a leader
        self._occ_flat, self._occ_lead_flat = self._occ.reshape(-1), self._occ_lead.reshape(-1)
        self._share = np.empty((r, r))  # > 0: row i and row j share a lane
        self._ds = np.empty((r, r))  # s[j] - s[i]
        self._gap_rr = np.empty((r, r))  # bumper gap row i -> row j, inf where j does not lead i
        self._gap_flat = self._gap_rr.reshape(-1)
        self._row_offsets = np.arange(r) * r
        self._hl_sum = self._half_len[None, :] + self._half_len[:, None]  # (R, R) [m]
        self._not_lead = np.empty((r, r), bool)
        self._acc = np.empty(r)
        self._s_row, self._s_col = self._s[None, :], self._s[:, None]
        self._d_col = self._d[:, None]
        self._occ_reach_col = self._occ_reach[:, None]
        self._s_act, self._d_act, self._v_act = self._s[:n], self._d[:n], self._v[:n]
        self._acc_act = self._acc[:n]
        self._d_dot_act = self._d_dot[:n]
        self._poser = FrenetPoser(road, self.actors)

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the views and work arrays: a copied view would no longer
        see the array it was taken from."""
        return {key: value for key, value in self.__dict__.items() if key not in self._derived}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._allocate()

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
        return self._scripted.triggered[: self._n].copy()

    @property
    def speed_along_road_mps(self) -> np.ndarray:
        """(N,) ds/dt of each actor [m/s]."""
        return self._v[: self._n].copy()

    def frenet(self) -> tuple[np.ndarray, np.ndarray]:
        """(s, d) [m] of every actor, each (N,)."""
        return self._s_act.copy(), self._d_act.copy()

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
        Frenet pose [m], speed [m/s] and length [m] make it a leader and a follower for the NPCs
        (a negative ego speed counts as 0)."""
        n, road, scripted = self._n, self.road, self._scripted
        self._s[n], self._d[n], self._v[n] = ego_s_m, ego_d_m, max(ego_speed_mps, 0.0)
        if 0.5 * ego_length_m != self._half_len[n]:
            self._set_ego_length(ego_length_m)
        ego_lane = min(
            max(math.floor((ego_d_m + road.half_width_m) / road.lane_width_m), 0), road.lane_count - 1
        )
        self._lane[n] = self._target[n] = ego_lane
        if scripted.waiting:
            started = scripted.fire(t_s, ego_s_m, ego_lane, ego_length_m)
            if started is not None:
                self._start_lane_changes(*started)
        if self._any_driven:
            occ_follow, occ_lead = self._occupancy(ego_lane)
            lead, gap = self._leaders(occ_follow, occ_lead)
            acc_idm, interaction = idm_rows(self._v, self._v[lead], gap, self._inv_v0, self._idm)
            # IDM never asks for more than accel_max_mps2; NPC braking is limited to max_decel_mps2.
            acc = np.maximum(acc_idm, -self._cfg.max_decel_mps2, out=self._acc)
            acc *= self._driven_f
            if scripted.limits_accel:
                scripted.limit_accel(acc)
            if t_s >= self._next_mobil_t:
                self._mobil(t_s, occ_lead, lead, gap, acc_idm, interaction)
            self._advance_vehicles(dt_s, acc)
            if self._lane_changes:
                self._progress_lane_changes(dt_s)
        if scripted.walking.size:
            scripted.walk(dt_s)
        self._update_poses()

    # ------------------------------------------------------------------ step parts
    def _set_ego_length(self, ego_length_m: float) -> None:
        n, hl = self._n, self._half_len
        hl[n] = 0.5 * ego_length_m
        self._hl_sum[n, :] = hl + hl[n]
        self._hl_sum[:, n] = hl + hl[n]

    def _occupancy(self, ego_lane: int) -> tuple[np.ndarray, np.ndarray]:
        """Lanes each row takes up, as (R, lanes) float 0/1 arrays (follow, lead).

        Every row takes up the lanes its lateral extent overlaps; a crossing pedestrian also the
        lanes it has still to cross (vehicles wait for it). A vehicle (and the ego) also takes up
        its target lane (it looks for leaders there: `follow`) and, as a leader of others (`lead`),
        its lane and its target lane for the whole of a lane change. The arrays are work buffers,
        valid until the next call.
        """
        occ = self._occ
        np.less(np.abs(self._d_col - self._lane_centres), self._occ_reach_col, out=occ)
        occ[self._n, ego_lane] = 1.0
        if self._scripted.walking.size:
            self._scripted.block_lanes(occ)
        if not self._lane_changes:  # vehicles in their lanes: the geometry says it all
            return occ, occ
        self._occ_flat[self._lc_follow_idx] = 1.0
        np.copyto(self._occ_lead, occ)
        self._occ_lead_flat[self._lc_lead_idx] = 1.0
        return occ, self._occ_lead

    def _leaders(self, occ_follow: np.ndarray, occ_lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest row ahead in a shared lane, for every row (actors, ego, road-end wall).

        Returns lead (R,) row index and gap (R,) bumper to bumper [m], inf when there is none."""
        ds, gap, share = self._ds, self._gap_rr, self._share
        np.matmul(occ_follow, occ_lead.T, out=share)  # lanes rows i and j share (R, R)
        np.subtract(self._s_row, self._s_col, out=ds)  # row i -> column j
        np.subtract(ds, self._hl_sum, out=gap)
        np.minimum(share, ds, out=share)  # > 0: j shares a lane with i and is ahead of it
        np.less_equal(share, 0.0, out=self._not_lead)
        np.putmask(gap, self._not_lead, np.inf)
        if self._scripted.walking.size:
            self._scripted.yield_to_vehicles(gap)
        lead = gap.argmin(axis=1)
        return lead, self._gap_flat[lead + self._row_offsets]

    def _mobil(
        self,
        t_s: float,
        occ: np.ndarray,
        lead: np.ndarray,
        gap: np.ndarray,
        acc_now: np.ndarray,
        interaction: np.ndarray,
    ) -> None:
        """Lane-change decisions of the idm vehicles due to decide now (their slot's time has come,
        and they are not changing lanes already); start the chosen changes."""
        period, due = self._cfg.lane_change_period_s, []
        for k, next_s in enumerate(self._slot_next_s):
            if next_s <= t_s:
                due += self._slot_rows[k]
                self._slot_next_s[k] = next_s + period * (math.floor((t_s - next_s) / period) + 1.0)
        self._next_mobil_t = min(self._slot_next_s)
        rows = np.array(sorted(i for i in due if i not in self._lane_changes), np.int64)
        if rows.size == 0:
            return
        rows, lanes = choose_lane_changes(
            rows,
            occ,
            lead,
            gap,
            acc_now,
            interaction,
            s=self._s,
            v=self._v,
            inv_v0=self._inv_v0,
            half_len=self._half_len,
            lane=self._lane,
            is_driver=self._is_driver,
            lane_count=self.road.lane_count,
            cfg=self._cfg,
            idm=self._idm,
        )
        if rows.size:
            self._start_lane_changes(rows, lanes, np.full(rows.size, self._cfg.lane_change_duration_s))

    def _start_lane_changes(self, rows: np.ndarray, lanes: np.ndarray, duration_s: np.ndarray) -> None:
        """Start lane changes of `rows` into `lanes` over `duration_s` [s] each (at full rate)."""
        self._target[rows] = lanes
        to_m = self.road.lane_offset_m(lanes)
        for row, to, duration in zip(rows.tolist(), to_m.tolist(), duration_s.tolist(), strict=True):
            self._lane_changes[row] = _LaneChange(float(self._d[row]), to, duration)
        self._index_lane_changes()

    def _index_lane_changes(self) -> None:
        """The rows changing lanes (sorted), and the flat indices of their target lanes and of the lanes
        they leave in the (R, lanes) occupancy arrays."""
        self._lateral_rows = sorted(self._lane_changes)
        rows = np.array(self._lateral_rows, np.int64)
        lanes = self.road.lane_count
        self._lc_follow_idx, self._lc_lead_idx = (
            rows * lanes + self._target[rows],
            rows * lanes + self._lane[rows],
        )

    def _advance_vehicles(self, dt_s: float, acc: np.ndarray) -> None:
        """Integrate speed and s of the driven vehicles: constant acceleration over the step, an
        exact stop within it, a stop at the road's end.

        acc: (R,) [m/s^2], zero for every row that is not a driven vehicle."""
        s, v = self._s, self._v
        v_new = acc * dt_s
        v_new += v
        ds = v + v_new
        ds *= 0.5 * dt_s
        clamped = False
        if v_new.item(v_new.argmin()) < 0.0:  # stops within the step: the exact distance of the deceleration
            stops = (v_new < 0.0) & (v > 0.0)
            np.maximum(v_new, 0.0, out=v_new)
            ds = np.where(stops, v * v / (2.0 * np.maximum(-acc, 1e-9)), (v + v_new) * (0.5 * dt_s))
            clamped = True
        s += ds
        at_end = s >= self._s_cap
        if np.count_nonzero(at_end):  # driven vehicles stop at the end of the road
            s[at_end] = self._s_cap[at_end]
            v_new[at_end] = 0.0
            clamped = True
        accel = self.actors.accel_mps2
        if clamped:
            np.subtract(v_new[: self._n], v[: self._n], out=accel)
            accel /= dt_s
        else:
            accel[:] = self._acc_act
        v[:] = v_new

    def _progress_lane_changes(self, dt_s: float) -> None:
        """Lane changes: a quintic blend of d over the duration, slower below
        LANE_CHANGE_FULL_RATE_MPS. In plain floats: only a few rows change lanes at a time."""
        v, d, d_dot = self._v, self._d, self._d_dot
        finished = []
        for row, lc in self._lane_changes.items():
            rate = min(max(v.item(row) * (1.0 / LANE_CHANGE_FULL_RATE_MPS), LANE_CHANGE_MIN_RATE), 1.0)
            rate /= lc.duration_s
            lc.frac = frac = min(lc.frac + rate * dt_s, 1.0)
            if frac >= 1.0:
                d[row], d_dot[row] = lc.to_m, 0.0
                finished.append(row)
                continue
            blend, slope = _blend(frac)
            span = lc.to_m - lc.from_m
            d[row] = lc.from_m + span * blend
            d_dot[row] = span * slope * rate
        if finished:
            for row in finished:
                del self._lane_changes[row]
            rows = np.array(finished, np.int64)
            self._lane[rows] = self._target[rows]
            self._index_lane_changes()
            self._scripted.lane_changes_done(rows)

    def _update_poses(self) -> None:
        """World poses of the actors (sim/traffic/poses.py); pedestrians face the way they cross."""
        scripted = self._scripted
        walking = scripted.walking.tolist() if scripted.walking.size else []
        self._poser.update(
            self._s_act, self._d_act, self._v_act, self._d_dot_act, self._lateral_rows, walking
        )
        if scripted.ped_rows.size:
            self.actors.yaw_rad[scripted.ped_rows] += scripted.ped_yaw_rad

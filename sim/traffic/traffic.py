"""NPC traffic and scripted actors, moved along the road in Frenet coordinates, all at once.

Every actor is one row of flat arrays (s, d, lane, speed, ...); `Traffic.step` advances all rows
together: a leader search over a (rows, rows) gap matrix, IDM (decision/idm.py) for every row in one
call, MOBIL lane changes for the vehicles due to decide (sim/traffic/lane_changes.py), the scripted
triggers and pedestrians (sim/traffic/scripted.py) while any is left to act, and the world poses
(sim/traffic/poses.py) into an `Actors` struct, updated in place, that the world helper pushes into
PyBullet. The ego takes part as a leader and a follower (a row of the internal arrays) but is
never moved here. Who takes part and what they look like: sim/traffic/spawn.py.

The row arrays and the step's work arrays are made once per episode and only ever changed in place,
so that views of them stay valid; work that only some ticks need (MOBIL, scripted actors, lane
changes in progress) is skipped on the others. What the step costs: benchmarks/sim_speed.py.

Frenet: `s` [m] along the road's reference line, `d` [m] to its left (decision.route.Road).
"""

from __future__ import annotations

import math

import numpy as np

from decision.idm import IDMParams, MOBILParams, idm_accel
from sim.config import TrafficConfig
from sim.scenario.spec import ActorSpec, ScenarioSpec
from sim.traffic.actors import Actors
from sim.traffic.lane_changes import LaneChangesInProgress, Leaders, RowState, choose_lane_changes
from sim.traffic.poses import FrenetPoser
from sim.traffic.scripted import Scripted
from sim.traffic.spawn import END_MARGIN_M, VEHICLE_SCALE, RgbaFn, actor_look, random_npcs

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
DECISION_SLOTS = 4  # MOBIL decisions happen at one of this many phases of lane_change_period_s


class Traffic:
    """Scripted actors of a scenario plus random IDM/MOBIL traffic.

    `actors` (N rows, ids 1..N) holds the world poses; scripted actors come first, in the order of
    `spec.actors`, then the random NPCs. Call `step` once per control tick. Each idm vehicle
    decides on a lane change once per `cfg.lane_change_period_s`, at one of `decision_slots` phases
    of it drawn from `rng`.

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
        decision_slots: int = DECISION_SLOTS,
    ):
        self.road = spec.road
        self._cfg = cfg
        self._idm = IDMParams(
            cfg.accel_max_mps2, cfg.decel_comfort_mps2, cfg.time_headway_s, cfg.min_gap_m, cfg.delta
        )
        self._mobil = MOBILParams(cfg.politeness, cfg.min_accel_gain_mps2, cfg.max_braking_imposed_mps2)
        vehicle_size = tuple(float(x) for x in vehicle_size_m)
        specs = list(spec.actors) + random_npcs(spec, vehicle_size[0], rng)
        looks = [actor_look(a, vehicle_size, rng, rgba_fn) for a in specs]  # (size, rgba, class id)
        self._n = len(specs)
        self._init_rows(spec, specs, np.array([look[0] for look in looks], float), vehicle_size)
        self._lane_changes = LaneChangesInProgress()
        self._init_decision_slots(rng, decision_slots)
        self._scripted = self._make_scripted(specs)
        self.actors = make_actors(specs, looks)
        names = set(self.__dict__)
        self._allocate()
        self._derived = tuple(set(self.__dict__) - names)  # rebuilt, not copied (see __getstate__)
        self._cap_npc_speeds(np.arange(len(spec.actors), self._n), spec.route.lane)
        self._update_poses()

    # ------------------------------------------------------------------ construction
    def _init_rows(
        self,
        spec: ScenarioSpec,
        specs: list[ActorSpec],
        sizes_m: np.ndarray,
        vehicle_size_m: tuple[float, float, float],
    ) -> None:
        """The (R,) row arrays: the N actors of `specs` (sizes_m: (N, 3) their boxes), the ego
        (row N, at its start) and the wall (row N + 1, at the road's end), and the row groups."""
        road, n = self.road, self._n
        ego_lane = spec.route.lane

        def column(field: str, ego_value, wall_value=math.nan, dtype=float) -> np.ndarray:
            return np.array([getattr(a, field) for a in specs] + [ego_value, wall_value], dtype)

        kind = np.array([a.kind for a in specs] + ["ego", "wall"])
        model = np.array([a.model for a in specs] + ["ego", "wall"])
        behaviour = np.array([BEHAVIOUR_CODES[a.behaviour] for a in specs] + [STATIC, STATIC], np.int64)
        self._behaviour_rows = behaviour
        self.behaviour = behaviour[:n]
        self._driven = driven = (kind == "vehicle") & np.isin(behaviour, DRIVEN)
        self._is_pedestrian = is_pedestrian = kind == "pedestrian"
        self._is_car = (kind == "ego") | np.isin(model, list(VEHICLE_SCALE))
        self._is_driver = driven.copy()  # rows whose IDM acceleration counts for MOBIL
        self._is_driver[n] = True  # ... the ego's too
        self._any_driven = bool(driven.any())

        self._s = column("s_m", spec.route.start_s_m, road.length_m)
        self._d = column("d_m", float(road.lane_offset_m(ego_lane)), 0.0)
        self._speed_mps = column("speed_mps", spec.ego_speed_mps, 0.0) * driven  # ds/dt
        self._desired_speed_mps = column("target_speed_mps", spec.route.cruise_speed_mps, 0.0) * driven
        self._speed_mps[n], self._desired_speed_mps[n] = spec.ego_speed_mps, spec.route.cruise_speed_mps
        self._d_rate_mps = np.zeros(n + 2)  # dd/dt
        self._lane = column("lane", ego_lane, 0, np.int64)  # the lane left during a lane change
        self._target_lane = self._lane.copy()
        self._s_stop_m = np.where(driven, road.length_m - END_MARGIN_M, np.inf)  # vehicles stop there

        sizes_m = sizes_m.reshape(n, 3)
        self._half_length_m = np.append(sizes_m[:, 0], [vehicle_size_m[0], 0.0]) / 2
        width = np.append(sizes_m[:, 1], [vehicle_size_m[1], np.inf])  # the wall spans every lane
        self._half_width_m = np.where(np.isinf(width), 0.0, width / 2)
        # A row takes up every lane whose centre is nearer than this to its own, laterally.
        self._lane_reach_m = (
            road.lane_width_m / 2 + width / 2 + np.where(is_pedestrian, PEDESTRIAN_LANE_MARGIN_M, 0.0)
        )
        self._lane_reach_m -= OCCUPANCY_SLACK_M
        self._lane_centres_m = np.asarray(road.lane_offset_m(np.arange(road.lane_count)), float)

    def _init_decision_slots(self, rng: np.random.Generator, slots: int) -> None:
        """Each idm vehicle decides on a lane change once per period, at one of `slots` phases."""
        slot = rng.integers(0, slots, self._n + 2)
        is_idm = self._driven & (self._behaviour_rows == IDM)
        self._slot_rows = [np.flatnonzero(is_idm & (slot == k)).tolist() for k in range(slots)]
        phase_s = self._cfg.lane_change_period_s / slots
        self._slot_next_s = [k * phase_s if rows else math.inf for k, rows in enumerate(self._slot_rows)]
        self._next_mobil_s = min(self._slot_next_s)

    def _make_scripted(self, specs: list[ActorSpec]) -> Scripted:
        behaviour, driven, is_pedestrian = self._behaviour_rows, self._driven, self._is_pedestrian
        return Scripted(
            specs,
            np.flatnonzero(driven & (behaviour == CUT_IN)),
            np.flatnonzero(driven & (behaviour == BRAKE)),
            np.flatnonzero(is_pedestrian & (behaviour == CROSS)),
            np.flatnonzero(is_pedestrian[: self._n]),
            s=self._s,
            d=self._d,
            lane=self._lane,
            half_length_m=self._half_length_m,
            half_width_m=self._half_width_m,
            lane_reach_m=self._lane_reach_m,
            is_car=self._is_car,
            d_rate_mps=self._d_rate_mps,
            lane_centres_m=self._lane_centres_m,
            road_half_width_m=self.road.half_width_m,
        )

    def _allocate(self) -> None:
        """Work arrays of the step and the views it reads (all fixed for the episode: the row
        arrays are only ever changed in place, so the views stay valid)."""
        n, road = self._n, self.road
        r, lanes = n + 2, road.lane_count
        self._occupancy = np.empty((r, lanes))  # 0/1: lanes each row takes up (as a follower)
        self._occupancy_as_leader = np.empty((r, lanes))  # 0/1: lanes each row takes up as a leader
        self._shared_lanes = np.empty((r, r))  # > 0: row i and row j share a lane
        self._ahead_m = np.empty((r, r))  # s[j] - s[i]
        self._gaps_m = np.empty((r, r))  # bumper gap row i -> row j, inf where j does not lead i
        self._not_leader = np.empty((r, r), bool)
        # Flat views and indices into the (R, lanes) and (R, R) arrays (see benchmarks/sim_speed.py).
        self._occupancy_cells = self._occupancy.ravel()
        self._occupancy_as_leader_cells = self._occupancy_as_leader.ravel()
        self._gap_cells, self._row_starts = self._gaps_m.ravel(), np.arange(r) * r
        self._half_length_sums_m = self._half_length_m[None, :] + self._half_length_m[:, None]  # (R, R)
        self._accel_mps2 = np.empty(r)
        self._driven_f = self._driven.astype(np.float64)  # 1 for a driven vehicle, else 0
        # Views of the row arrays: as a row and as a column, and the N actors' rows.
        self._s_row, self._s_column = self._s[None, :], self._s[:, None]
        self._d_column, self._lane_reach_column = self._d[:, None], self._lane_reach_m[:, None]
        self._actor_s, self._actor_d = self._s[:n], self._d[:n]
        self._actor_s_view, self._actor_d_view = self._actor_s.view(), self._actor_d.view()
        self._actor_s_view.flags.writeable = self._actor_d_view.flags.writeable = False
        self._actor_speed, self._actor_d_rate = self._speed_mps[:n], self._d_rate_mps[:n]
        self._actor_accel = self._accel_mps2[:n]
        self._rows = RowState(
            self._s,
            self._speed_mps,
            self._desired_speed_mps,
            self._half_length_m,
            self._lane,
            self._is_driver,
        )
        self._poser = FrenetPoser(road, self.actors)
        self._index_lane_changes()

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
        p, v = self._idm, self._speed_mps
        c = 1.0 / (2.0 * math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2))
        for _ in range(rows.size):  # leaders first: repeat until no speed changes
            lead, gap = self._leaders(*self._lane_occupancy(ego_lane))
            v_lead, room = v[lead[rows]], np.maximum(gap[rows] - p.min_gap_m, 0.0)
            # s0 + v T + c v (v - v_lead) = gap  ->  c v^2 + (T - c v_lead) v - room = 0
            b = p.time_headway_s - c * v_lead
            cap = (-b + np.sqrt(b * b + 4.0 * c * room)) / (2.0 * c)
            new = np.minimum(v[rows], cap)
            if np.array_equal(new, v[rows]):
                break
            v[rows] = new

    # ------------------------------------------------------------------ public
    @property
    def lane(self) -> np.ndarray:
        """(N,) lane of each actor (the lane it leaves while a lane change is in progress)."""
        return self._lane[: self._n].copy()

    @property
    def target_lane(self) -> np.ndarray:
        """(N,) lane each actor is heading to (== lane when not changing lanes)."""
        return self._target_lane[: self._n].copy()

    @property
    def triggered(self) -> np.ndarray:
        """(N,) bool: the scripted trigger of each actor has fired."""
        return self._scripted.triggered[: self._n].copy()

    @property
    def speed_along_road_mps(self) -> np.ndarray:
        """(N,) ds/dt of each actor [m/s]."""
        return self._speed_mps[: self._n].copy()

    def frenet(self) -> tuple[np.ndarray, np.ndarray]:
        """(s, d) [m] of every actor, each (N,): read-only views, updated by the next `step`."""
        return self._actor_s_view, self._actor_d_view

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
        scripted = self._scripted
        ego_lane = self._place_ego(ego_s_m, ego_d_m, ego_speed_mps, ego_length_m)
        if scripted.waiting:
            started = scripted.fire(t_s, ego_s_m, ego_lane, ego_length_m)
            if started is not None:
                self._start_lane_changes(*started)
        if self._any_driven:
            self._drive(dt_s, t_s, ego_lane)
        if scripted.walking.size:
            scripted.walk(dt_s)
        self._update_poses()

    # ------------------------------------------------------------------ step parts
    def _place_ego(self, s_m: float, d_m: float, speed_mps: float, length_m: float) -> int:
        """Write the ego's row; returns its lane (the nearest, when off the road)."""
        n, road = self._n, self.road
        self._s[n], self._d[n], self._speed_mps[n] = s_m, d_m, max(speed_mps, 0.0)
        if 0.5 * length_m != self._half_length_m[n]:
            half_lengths = self._half_length_m
            half_lengths[n] = 0.5 * length_m
            self._half_length_sums_m[n, :] = half_lengths + half_lengths[n]
            self._half_length_sums_m[:, n] = half_lengths + half_lengths[n]
        lane = min(max(math.floor((d_m + road.half_width_m) / road.lane_width_m), 0), road.lane_count - 1)
        self._lane[n] = self._target_lane[n] = lane
        return lane

    def _drive(self, dt_s: float, t_s: float, ego_lane: int) -> None:
        """IDM for every driven vehicle behind its leader, lane changes for those due to decide,
        then the vehicles move along and across the road."""
        occupancy, occupancy_as_leader = self._lane_occupancy(ego_lane)
        lead, gap = self._leaders(occupancy, occupancy_as_leader)
        speed = self._speed_mps
        accel_idm = idm_accel(speed, self._desired_speed_mps, gap, speed[lead], self._idm)
        # IDM never asks for more than accel_max_mps2; NPC braking is limited to max_decel_mps2.
        accel = np.maximum(accel_idm, -self._cfg.max_decel_mps2, out=self._accel_mps2)
        accel *= self._driven_f
        if self._scripted.limits_accel:
            self._scripted.limit_accel(accel)
        if t_s >= self._next_mobil_s:
            self._decide_lane_changes(t_s, occupancy_as_leader, Leaders(lead, gap, accel_idm))
        self._advance_vehicles(dt_s, accel)
        if self._lane_changes.rows:
            self._progress_lane_changes(dt_s)

    def _lane_occupancy(self, ego_lane: int) -> tuple[np.ndarray, np.ndarray]:
        """Lanes each row takes up, as (R, lanes) float 0/1 arrays (as a follower, as a leader).

        Every row takes up the lanes its lateral extent overlaps; a crossing pedestrian also the
        lanes it has still to cross (vehicles wait for it). A vehicle (and the ego) also takes up
        its target lane (it looks for leaders there) and, as a leader of others, its lane and its
        target lane for the whole of a lane change. The arrays are work buffers, valid until the
        next call.
        """
        occupancy = self._occupancy
        np.less(np.abs(self._d_column - self._lane_centres_m), self._lane_reach_column, out=occupancy)
        occupancy[self._n, ego_lane] = 1.0
        if self._scripted.walking.size:
            self._scripted.block_lanes(occupancy)
        if not self._lane_changes.rows:  # vehicles in their lanes: the geometry says it all
            return occupancy, occupancy
        self._occupancy_cells[self._changing_to] = 1.0
        as_leader = self._occupancy_as_leader
        np.copyto(as_leader, occupancy)
        self._occupancy_as_leader_cells[self._changing_from] = 1.0
        return occupancy, as_leader

    def _leaders(
        self, occupancy: np.ndarray, occupancy_as_leader: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest row ahead in a shared lane, for every row (actors, ego, road-end wall).

        Returns lead (R,) row index and gap (R,) bumper to bumper [m], inf when there is none."""
        ahead, gaps, shared = self._ahead_m, self._gaps_m, self._shared_lanes
        np.matmul(occupancy, occupancy_as_leader.T, out=shared)  # lanes rows i and j share (R, R)
        np.subtract(self._s_row, self._s_column, out=ahead)  # row i -> column j
        np.subtract(ahead, self._half_length_sums_m, out=gaps)
        np.minimum(shared, ahead, out=shared)  # > 0: j shares a lane with i and is ahead of it
        np.less_equal(shared, 0.0, out=self._not_leader)
        np.putmask(gaps, self._not_leader, np.inf)
        if self._scripted.walking.size:
            self._scripted.yield_to_vehicles(gaps)
        lead = gaps.argmin(axis=1)
        return lead, self._gap_cells[self._row_starts + lead]  # gaps[row, lead[row]]

    def _decide_lane_changes(self, t_s: float, occupancy_as_leader: np.ndarray, leaders: Leaders) -> None:
        """Lane-change decisions of the idm vehicles due to decide now (their slot's time has come,
        and they are not changing lanes already); start the chosen changes."""
        period, due = self._cfg.lane_change_period_s, []
        for k, next_s in enumerate(self._slot_next_s):
            if next_s <= t_s:
                due += self._slot_rows[k]
                self._slot_next_s[k] = next_s + period * (math.floor((t_s - next_s) / period) + 1.0)
        self._next_mobil_s = min(self._slot_next_s)
        deciding = np.array(sorted(i for i in due if i not in self._lane_changes), np.int64)
        if deciding.size == 0:
            return
        rows, lanes = choose_lane_changes(
            deciding, self._rows, leaders, occupancy_as_leader, self._idm, self._mobil
        )
        if rows.size:
            self._start_lane_changes(rows, lanes, np.full(rows.size, self._cfg.lane_change_duration_s))

    def _start_lane_changes(self, rows: np.ndarray, lanes: np.ndarray, duration_s: np.ndarray) -> None:
        """Start lane changes of `rows` into `lanes` over `duration_s` [s] each (at full rate)."""
        self._target_lane[rows] = lanes
        to_m = self.road.lane_offset_m(lanes)
        self._lane_changes.start(rows.tolist(), self._d[rows].tolist(), to_m.tolist(), duration_s.tolist())
        self._index_lane_changes()

    def _index_lane_changes(self) -> None:
        """The cells (flat indices) of the (R, lanes) occupancy arrays of the rows changing lanes:
        their target lanes and the lanes they leave."""
        rows = np.array(self._lane_changes.rows, np.int64)
        lane_count = self.road.lane_count
        self._changing_to = rows * lane_count + self._target_lane[rows]
        self._changing_from = rows * lane_count + self._lane[rows]

    def _advance_vehicles(self, dt_s: float, accel: np.ndarray) -> None:
        """Integrate speed and s of the driven vehicles: constant acceleration over the step, an
        exact stop within it, a stop at the road's end.

        accel: (R,) [m/s^2], zero for every row that is not a driven vehicle."""
        s, v = self._s, self._speed_mps
        v_new = v + accel * dt_s
        ds = (v + v_new) * (0.5 * dt_s)
        clamped = False
        if v_new.item(v_new.argmin()) < 0.0:  # stops within the step: the exact distance of the deceleration
            stops = (v_new < 0.0) & (v > 0.0)
            np.maximum(v_new, 0.0, out=v_new)
            ds = np.where(stops, v * v / (2.0 * np.maximum(-accel, 1e-9)), (v + v_new) * (0.5 * dt_s))
            clamped = True
        s += ds
        at_end = s >= self._s_stop_m
        if np.count_nonzero(at_end):  # driven vehicles stop at the end of the road
            s[at_end] = self._s_stop_m[at_end]
            v_new[at_end] = 0.0
            clamped = True
        if clamped:
            np.divide(v_new[: self._n] - self._actor_speed, dt_s, out=self.actors.accel_mps2)
        else:
            np.copyto(self.actors.accel_mps2, self._actor_accel)
        v[:] = v_new

    def _progress_lane_changes(self, dt_s: float) -> None:
        """Move the rows changing lanes sideways; those that arrive are in their new lane."""
        finished = self._lane_changes.step(dt_s, self._speed_mps, self._d, self._d_rate_mps)
        if finished:
            rows = np.array(finished, np.int64)
            self._lane[rows] = self._target_lane[rows]
            self._index_lane_changes()
            self._scripted.lane_changes_done(rows)

    def _update_poses(self) -> None:
        """World poses of the actors (sim/traffic/poses.py); pedestrians face the way they cross."""
        scripted = self._scripted
        walking = scripted.walking.tolist() if scripted.walking.size else []
        self._poser.update(
            self._actor_s,
            self._actor_d,
            self._actor_speed,
            self._actor_d_rate,
            self._lane_changes.rows,
            walking,
        )
        if scripted.ped_rows.size:
            self.actors.yaw_rad[scripted.ped_rows] += scripted.ped_yaw_rad


def make_actors(specs: list[ActorSpec], looks: list[tuple[np.ndarray, np.ndarray, int]]) -> Actors:
    """The actors' world state (poses filled in by the first pose update) from their looks."""
    n = len(specs)
    return Actors(
        ids=np.arange(1, n + 1, dtype=np.int64),
        class_ids=np.array([look[2] for look in looks], np.int64).reshape(n),
        models=[a.model for a in specs],
        size_m=np.array([look[0] for look in looks], float).reshape(n, 3),
        xy_m=np.zeros((n, 2)),
        yaw_rad=np.zeros(n),
        speed_mps=np.zeros(n),
        v_mps=np.zeros((n, 2)),
        accel_mps2=np.zeros(n),
        rgba=np.array([look[1] for look in looks], float).reshape(n, 4),
    )

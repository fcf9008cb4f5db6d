"""Traffic of a town: vehicles on their own paths through the street graph, and pedestrians.

Every actor moves along its own path, a `decision.route.Road` (a vehicle's: `Town.corridor` of a
long random walk; a pedestrian's: a sidewalk loop, sim/traffic/town_spawn.py), by `s` [m] along the
path's reference line at lateral offset `d` [m]. All paths are sampled into one table (`PathTable`),
so that one gather poses every actor.

Vehicles move by IDM (decision/idm.py, all rows in one call) behind the nearest of:
- a leader: anything (vehicle, ego, pedestrian, obstacle) whose box reaches INTRUSION_TOLERANCE_M
  or more into the vehicle's lane ahead: the lane's centre line is sampled every LOOK_STEP_M over
  LOOK_AHEAD_M and each object within reach is tested against those points, so vehicles also wait
  for whatever crosses their path in a junction. Two vehicles that each see the other (both inside
  a junction) are resolved in favour of the one nearer the conflict;
- a virtual stop line at the stop line of its next junction crossing (`JunctionCrossing.stop_s_m`):
  on red, on yellow when it can still stop at YELLOW_DECEL_MPS2, at a stop sign until it has stopped,
  and while it has to give way (gap acceptance): a stop or yield approach waits while the box holds
  a vehicle or one with priority will reach it within GAP_S; a left turn on green or from a priority
  road waits for oncoming traffic (unprotected left turns); "none" junctions give way to the right; all-way stops go first come, first
  served; and nobody enters a box while a vehicle whose way crosses theirs is in it. Past the
  stop line a vehicle is committed;
- the end of its path.
Behaviour "runner" ignores the junction rules; "static" never moves; "cut_in" is parked until the
ego comes within `trigger_distance_m` of `trigger_xy_m`, then merges into its lane; "invade" drives
shifted `invade_m` to its left while the ego is near. A continuous flow's vehicle (CARLA's ActorFlow)
that has driven its `recycle_s_m` (past its junction) comes back to the flow's source (`_recycle`).
Pedestrians: sim/traffic/town_pedestrians.py.

The ego takes part as an object on the paths and in the junction rules (along its route) but is
never moved here.
"""

from __future__ import annotations

import math

import numpy as np

from decision.idm import IDMParams, idm_accel
from decision.route import JunctionCrossing, Route
from sim.config import TrafficConfig
from sim.scenario.spec import FLOW_SOURCE_S_M, TownActorSpec, TownSpec
from sim.traffic.actors import EMERGENCY_MODELS
from sim.traffic.spawn import RgbaFn, actor_look
from sim.traffic.town_paths import PathTable
from sim.traffic.town_pedestrians import Walkers
from sim.traffic.town_spawn import random_pedestrians, random_vehicles
from sim.traffic.traffic import make_actors

LOOK_AHEAD_M = 60.0  # a vehicle looks this far along its lane for leaders ...
LOOK_STEP_M = 1.0  # ... at points this far apart
LANE_REACH_FACTOR = 0.5  # an object is on a lane within this x lane width (+ its own half extent) ...
# ... less this: what reaches no farther into the lane (a mirror over the line, a car edging out to
# look past a stopped one) leaves a car in the lane's centre half a metre and is driven past
INTRUSION_TOLERANCE_M = 0.3
PEDESTRIAN_MARGIN_M = 0.3  # ... plus this for pedestrians
PEDESTRIAN_LOOK_S = 1.5  # a pedestrian on the road also blocks where it will be in this time
# Vehicles find their leaders and apply the junction rules, and pedestrians look for vehicles across
# their way, this often [s] (decisions, not motion): in between, a vehicle keeps its leader and stop
# line, its gaps shrinking by its own travel less the leader's at the speed it had. The rules are most
# of the town's time per step.
DECIDE_S = 0.1
ACTIVE_M = 80.0  # rows this near their next stop line (or in the junction) take part in gap acceptance
GAP_S = 4.0  # gap acceptance: a vehicle with priority this near the box in time is waited for
FRENET_WINDOW_M = 150.0  # actors are put in route coordinates on the road this near the ego
ALIGNED_COS = (
    0.95  # keeping its right of way, a vehicle brakes for an ego in its lane heading this near its way
)
MAX_WAIT_S = 15.0  # a vehicle giving way longer than this goes anyway (impatience: no junction locks up)
STOP_LINE_REST_M = 1.0  # vehicles stop this far before a stop line
COMMIT_M = 0.5  # a front this far past the stop line is committed to the junction
STOPPED_MPS = 0.1  # a vehicle slower than this ...
STOPPED_NEAR_LINE_M = 3.0  # ... this near a stop sign's line has made its stop
YELLOW_DECEL_MPS2 = 3.0  # on yellow, vehicles that can stop at this deceleration do
PATH_END_MARGIN_M = 5.0  # vehicles stop this short of their path's end
INVADE_NEAR_M = 60.0  # "invade" shifts fully within INVADE_NEAR_M - INVADE_RAMP_M of the ego
INVADE_RAMP_M = 20.0
YAW_MIN_SPEED_MPS = 2.0
FLOW_CLEAR_M = 8.0  # a continuous flow's vehicle comes back only where nothing stands this near,
FLOW_CATCH_UP_PER_S = 0.2  # ... no faster than the flow's last one + this x its gap [m/s]

STATIC, ROUTE, RUNNER, CUT_IN, INVADE, WALK, CROSS = range(7)
BEHAVIOURS = {
    "static": STATIC,
    "route": ROUTE,
    "runner": RUNNER,
    "cut_in": CUT_IN,
    "invade": INVADE,
    "walk": WALK,
    "cross": CROSS,
}
DRIVEN = (ROUTE, RUNNER, CUT_IN, INVADE)
CONTROL_CODES = {"signal": 0, "stop": 1, "yield": 2, "priority": 3}
SIGNAL, STOP, YIELD, PRIORITY = range(4)
TURN_CODES = {"left": 0, "straight": 1, "right": 2}
GREEN, YELLOW, RED = range(3)


class TownTraffic:
    """Scripted actors of `spec.actors` (first, in order), then random vehicles, then random
    pedestrians. `actors` (N rows) is updated in place by `step`; `frenet()` gives them in the ego
    route's road."""

    def __init__(
        self,
        spec: TownSpec,
        route: Route,
        cfg: TrafficConfig,
        vehicle_size_m: tuple[float, float, float],
        rng: np.random.Generator,
        rgba_fn: RgbaFn | None = None,
    ):
        self.town, self.route = spec.town, route
        self._cfg = cfg
        self._idm = IDMParams(
            cfg.accel_max_mps2, cfg.decel_comfort_mps2, cfg.time_headway_s, cfg.min_gap_m, cfg.delta
        )
        vehicle_size = tuple(float(x) for x in vehicle_size_m)
        taken = [_start_xy(a) for a in spec.actors]
        specs = list(spec.actors)
        specs += random_vehicles(self.town, route, spec.vehicles, rng, taken, spec.clear_ego_entry)
        specs += random_pedestrians(self.town, spec.pedestrians, rng, taken)
        for i, a in enumerate(specs):
            if a.behaviour not in BEHAVIOURS:
                raise ValueError(
                    f"town actor {i}: behaviour {a.behaviour!r} is not one of {', '.join(BEHAVIOURS)}"
                )
        looks = [actor_look(a, vehicle_size, rng, rgba_fn) for a in specs]
        self._specs = specs
        self._n = n = len(specs)
        self.actors = make_actors(specs, looks)
        self._ego = dict(
            xy=0j, yaw=0.0, speed=0.0, half_length=vehicle_size[0] / 2, half_width=vehicle_size[1] / 2
        )
        self._init_rows(specs)
        self._init_signals()
        self._init_crossings(specs)
        self._init_walkers(specs)
        self._init_flows(specs, rng)
        self._ego_s = route.start_s_m
        self._t_s = 0.0
        self._decide_at = -math.inf  # when the vehicles next decide [s] (-inf: at the next step)
        self._decided: tuple[np.ndarray, ...] = ()  # gap, leader speed, stop-line gap, s, t at the last
        self._frenet_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._update_poses(np.zeros(n))

    # ------------------------------------------------------------------ construction
    def _init_rows(self, specs: list[TownActorSpec]) -> None:
        n = self._n
        self._behaviour = np.array([BEHAVIOURS[a.behaviour] for a in specs], np.int64)
        self._s = np.array([a.s_m for a in specs], float)
        self._d = np.array([a.d_m for a in specs], float)
        is_vehicle = np.array([a.kind == "vehicle" for a in specs], bool)
        driven = is_vehicle & np.isin(self._behaviour, DRIVEN)
        self._veh = np.flatnonzero(driven)  # V rows moved by IDM
        self._lane_d = np.array(
            [float(a.path.lane_offset_m(a.lane)) if a.kind == "vehicle" else a.d_m for a in specs]
        )
        self._speed = np.array([a.speed_mps for a in specs], float) * driven
        self._d_rate = np.zeros(n)
        caps = np.array([a.target_speed_mps if a.target_speed_mps > 0 else np.inf for a in specs])
        # An emergency vehicle drives at its target speed whatever the limits (given one).
        obeys = np.array([a.model not in EMERGENCY_MODELS or a.target_speed_mps <= 0 for a in specs], bool)
        self.paths = PathTable([a.path for a in specs], self._lane_d, caps, obeys)
        size = self.actors.size_m
        self._half_length, self._half_width = size[:, 0] / 2, size[:, 1] / 2
        self._is_pedestrian = np.array([a.kind == "pedestrian" for a in specs], bool)
        self._runner = self._behaviour[self._veh] == RUNNER
        # Triggered rows (cut_in, cross, and runners or route vehicles with a trigger): held until the ego comes near.
        self._held = np.array([_triggered(a) for a in specs], bool)
        self._yields = np.array([a.yields for a in specs], bool)
        # Per row of the junction rules (the V driven vehicles, then the ego): keeps its right of way.
        self._insists = np.append(~self._yields[self._veh], False)
        self._waiting = [i for i in range(n) if self._held[i]]
        self._speed[self._held] = 0.0
        self._merges: dict[int, tuple[float, float, float, float]] = {}  # row -> (t0, d0, d1, duration)
        self._invaders = np.flatnonzero(self._behaviour == INVADE)
        self._v_of_row = np.full(n, -1, np.int64)
        self._v_of_row[self._veh] = np.arange(self._veh.size)
        look = np.arange(0.0, LOOK_AHEAD_M + LOOK_STEP_M / 2, LOOK_STEP_M)
        self._look_m = look  # (K,)

    def _init_signals(self) -> None:
        """The signal groups' row indices (`town.signal_ids()` order) and their states (codes of
        `Town.signal_codes`: 0 green, 1 yellow, 2 red), one more row for "no signal"."""
        ids = self.town.signal_ids()
        self._signal_index = {sid: k for k, sid in enumerate(ids)}
        self._signal_states = np.full(len(ids) + 1, RED, np.int64)  # last: "no signal"

    def _init_crossings(self, specs: list[TownActorSpec]) -> None:
        """The junction crossings of the V driven vehicles and of the ego (row V), flattened in
        order of s per row, each row's followed by a sentinel at s = inf."""
        per_row = [specs[i].junctions for i in self._veh] + [self.route.junctions]
        cols = []
        self._first_crossing = np.zeros(len(per_row), np.int64)
        for r, crossings in enumerate(per_row):
            self._first_crossing[r] = len(cols)
            cols += [self._crossing_row(c) for c in crossings]
            cols.append((-1, np.inf, np.inf, np.inf, 1, PRIORITY, len(self._signal_index), 0.0))
        table = np.array(cols, float)
        self._c_node = table[:, 0].astype(np.int64)
        self._c_stop, self._c_entry, self._c_exit = table[:, 1], table[:, 2], table[:, 3]
        self._c_turn, self._c_control = table[:, 4].astype(np.int64), table[:, 5].astype(np.int64)
        self._c_signal, self._c_heading = table[:, 6].astype(np.int64), table[:, 7]
        # Each row's next crossing: the first whose exit lies ahead of its rear.
        s = np.append(self._s[self._veh], self.route.start_s_m)
        half = np.append(self._half_length[self._veh], self._ego["half_length"])
        self._next = self._first_crossing.copy()
        for _ in range(max(len(c) for c in per_row) + 1):
            self._advance_crossings(s, half)
        r = len(per_row)
        self._stop_made = np.full(r, -1, np.int64)  # crossing at which a stop sign's stop was made
        self._stop_time = np.full(r, np.inf)
        self._wait_since = np.full(r, np.inf)  # since when each row has given way at crossing ...
        self._wait_at = np.full(r, -1, np.int64)  # ... this one (its next crossing then)

    def _crossing_row(self, c: JunctionCrossing) -> tuple:
        sig = (
            self._signal_index.get(c.signal_id, len(self._signal_index))
            if c.signal_id >= 0
            else len(self._signal_index)
        )
        return (
            c.junction_id,
            c.stop_s_m,
            c.entry_s_m,
            c.exit_s_m,
            TURN_CODES[c.turn],
            CONTROL_CODES[c.control],
            sig,
            c.heading_rad,
        )

    def _advance_crossings(self, s: np.ndarray, half_length: np.ndarray) -> None:
        """Move each row's pointer past a crossing its rear has left."""
        self._next += s - half_length > self._c_exit[self._next]

    def _init_walkers(self, specs: list[TownActorSpec]) -> None:
        walking = np.flatnonzero(self._is_pedestrian & np.isin(self._behaviour, (WALK, CROSS)))
        self._ped = walking
        self.walkers = Walkers(
            self.town,
            [specs[i].path for i in walking],
            self._s[walking],
            np.array([specs[i].speed_mps for i in walking]),
            self._behaviour[walking] == WALK,
            self._signal_index,
        )
        self.walkers.held[:] = self._held[walking]

    def _init_flows(self, specs: list[TownActorSpec], rng: np.random.Generator) -> None:
        """The continuous flows: their rows (in order) and the gap each keeps for its next comer."""
        self._rng = rng
        ids = sorted({a.flow for a in specs if a.flow >= 0})
        self._flows = [np.array([i for i, a in enumerate(specs) if a.flow == f]) for f in ids]
        self._flow_gap = [self._draw_gap(rows[0]) for rows in self._flows]
        self._recycle_s = np.array([a.recycle_s_m for a in specs])

    def _draw_gap(self, row: int) -> float:
        low, high = self._specs[row].flow_gap_m
        return float(self._rng.uniform(low, high)) if high > low else low

    # ------------------------------------------------------------------ public
    def frenet(self) -> tuple[np.ndarray, np.ndarray]:
        """(s, d) [m] of every actor in the ego route's road, each (N,): measured on the stretch of
        road within FRENET_WINDOW_M of the ego (what the criteria look at; an actor farther along is
        measured from that stretch's end)."""
        if self._frenet_cache is None:
            if self._n == 0:
                self._frenet_cache = np.zeros(0), np.zeros(0)
            else:
                s, d, _ = self.route.road.to_frenet_rotation(self.actors.xy_m, self._ego_s, FRENET_WINDOW_M)
                self._frenet_cache = np.asarray(s, float), np.asarray(d, float)
        return self._frenet_cache

    def signal_state(self, signal_id: int) -> str:
        """The state of a signal group at the last step ("green", "yellow", "red")."""
        return ("green", "yellow", "red")[int(self._signal_states[self._signal_index[signal_id]])]

    def step(
        self,
        dt_s: float,
        t_s: float,
        ego_xy_m: tuple[float, float],
        ego_yaw_rad: float,
        ego_speed_mps: float,
        ego_length_m: float,
        ego_width_m: float,
    ) -> None:
        """Advance every actor by dt_s [s]; `t_s` is the time at the start of the step."""
        self._t_s = t_s
        ego = self._ego
        ego.update(
            xy=complex(ego_xy_m[0], ego_xy_m[1]),
            yaw=float(ego_yaw_rad),
            speed=max(float(ego_speed_mps), 0.0),
            half_length=ego_length_m / 2,
            half_width=ego_width_m / 2,
        )
        self._ego_s = float(self.route.road.to_frenet(np.asarray(ego_xy_m, float), s_hint_m=self._ego_s)[0])
        self._signal_states[:-1] = self.town.signal_codes(t_s)
        if self._waiting:
            self._fire_triggers(t_s)
        if self._flows:
            self._recycle()
        decide = t_s >= self._decide_at - 1e-9
        if decide:
            self._decide_at = t_s + DECIDE_S
        accel = np.zeros(self._n)
        if self._veh.size:
            accel[self._veh] = self._drive(dt_s, t_s, decide)
        if self._ped.size:
            self._walk(dt_s, decide)
        self._update_poses(accel)
        self._frenet_cache = None

    # ------------------------------------------------------------------ triggers
    def _fire_triggers(self, t_s: float) -> None:
        ego = self._ego["xy"]
        for i in list(self._waiting):
            a = self._specs[i]
            if a.trigger_xy_m is not None and not abs(ego - complex(*a.trigger_xy_m)) <= a.trigger_distance_m:
                continue  # (no trigger point: it starts at once; a nan distance: never)
            self._waiting.remove(i)
            self._held[i] = False
            self._decide_at = -math.inf
            if self._is_pedestrian[i]:
                self.walkers.held[np.searchsorted(self._ped, i)] = False
            elif self._behaviour[i] == CUT_IN:
                duration = a.manoeuvre_s if math.isfinite(a.manoeuvre_s) else 3.0
                self._merges[i] = (t_s, float(self._d[i]), float(self._lane_d[i]), duration)

    # ------------------------------------------------------------------ flows
    def _recycle(self) -> None:
        """A continuous flow's vehicle past its recycle point goes back to the flow's source: its
        gap behind the flow's last vehicle (on the flow's common approach), once that spot lies on
        its path and nothing stands within FLOW_CLEAR_M of it (else it drives on and tries again)."""
        for k, rows in enumerate(self._flows):
            done = rows[self._s[rows] > self._recycle_s[rows]]
            if done.size == 0:
                continue
            i = int(done[0])
            others = rows[rows != i]
            if others.size:
                last = int(others[np.argmin(self._s[others])])
                s_new = self._s[last] - self._flow_gap[k]
            else:  # the one vehicle its cycle holds: straight back to the source
                last, s_new = i, FLOW_SOURCE_S_M
            if s_new < FLOW_SOURCE_S_M:
                continue
            xy, _ = self.paths.points(np.array([i]), np.array([s_new]), self._lane_d[i : i + 1])
            a = self.actors
            dist = np.abs(a.xy_m[:, 0] + 1j * a.xy_m[:, 1] - xy[0])
            dist[i] = np.inf
            if dist.min() < FLOW_CLEAR_M or abs(self._ego["xy"] - xy[0]) < FLOW_CLEAR_M:
                continue
            v = self._v_of_row[i]
            self._s[i], self._d[i] = s_new, self._lane_d[i]
            catch_up = FLOW_CATCH_UP_PER_S * self._flow_gap[k]
            self._speed[i] = min(self._specs[i].speed_mps, self._speed[last] + catch_up)
            self._next[v] = self._first_crossing[v]
            self._stop_made[v], self._stop_time[v], self._wait_since[v] = -1, np.inf, np.inf
            self._wait_at[v] = -1
            self._flow_gap[k] = self._draw_gap(i)
            self._decide_at = -math.inf

    # ------------------------------------------------------------------ vehicles
    def _drive(self, dt_s: float, t_s: float, decide: bool) -> np.ndarray:
        """IDM for the V driven vehicles (their leaders and stop lines found anew where `decide`);
        returns their accelerations (V,)."""
        rows = self._veh
        s, v = self._s[rows], self._speed[rows]
        half = self._half_length[rows]
        if decide:
            gap, v_lead = self._leaders()
            stop_gap = self._junction_stops(s, v, half)
            self._decided = (gap, v_lead, stop_gap, s, t_s)
        else:
            gap, v_lead, stop_gap, s_then, t_then = self._decided
            moved = s - s_then
            gap = gap - moved + v_lead * (t_s - t_then)
            stop_gap = stop_gap - moved
        end_gap = self.paths.length_m[rows] - PATH_END_MARGIN_M - (s + half)
        use_stop = stop_gap < gap
        gap = np.minimum(np.minimum(gap, stop_gap), end_gap)
        v_lead = np.where(use_stop | (end_gap <= gap), 0.0, v_lead)
        g, _ = self.paths.index(rows, s)
        desired = self.paths.top_speed[g]
        accel = idm_accel(v, desired, gap, v_lead, self._idm)
        accel = np.maximum(accel, -self._cfg.max_decel_mps2)
        held = self._held[rows]
        accel[held] = 0.0
        v_new = np.maximum(v + accel * dt_s, 0.0)
        stops = (v_new <= 0.0) & (accel < 0.0)
        ds = np.where(stops, v * v / (2.0 * np.maximum(-accel, 1e-9)), (v + v_new) * (0.5 * dt_s))
        self._s[rows] = s + ds
        self._speed[rows] = v_new
        self._move_sideways(t_s, dt_s)
        return (v_new - v) / dt_s

    def _move_sideways(self, t_s: float, dt_s: float) -> None:
        """Lateral motion: merging cut-ins (a smooth step from their start offset into their lane)
        and invading vehicles (shifted to their left while the ego is near)."""
        for i, (t0, d0, d1, duration) in list(self._merges.items()):
            u = min(max((t_s + dt_s - t0) / duration, 0.0), 1.0)
            d_new = d0 + (d1 - d0) * u * u * (3.0 - 2.0 * u)
            self._d_rate[i] = (d_new - self._d[i]) / dt_s
            self._d[i] = d_new
            if u >= 1.0:
                del self._merges[i]
                self._d_rate[i] = 0.0
        if self._invaders.size:
            rows = self._invaders
            dist = np.abs(self.actors.xy_m[rows, 0] + 1j * self.actors.xy_m[rows, 1] - self._ego["xy"])
            share = np.clip((INVADE_NEAR_M - dist) / INVADE_RAMP_M, 0.0, 1.0)
            invade = np.array([self._specs[i].invade_m for i in rows])
            d_new = self._lane_d[rows] + invade * share
            self._d_rate[rows] = (d_new - self._d[rows]) / dt_s
            self._d[rows] = d_new

    def _obstacles(self) -> tuple[np.ndarray, ...]:
        """Everything a vehicle may have to stop for, (M,) each: position (x + iy), yaw, half length,
        half width, velocity (x + iy), lateral margin, and the actor row (-1: the ego, or where a
        pedestrian on the road will be in PEDESTRIAN_LOOK_S). Rows 0..N-1 are the actors, N the ego."""
        a, ego = self.actors, self._ego
        xy = a.xy_m[:, 0] + 1j * a.xy_m[:, 1]
        vel = a.v_mps[:, 0] + 1j * a.v_mps[:, 1]
        ped = self._ped[self.walkers.on_road] if self._ped.size else self._ped
        margin = np.where(self._is_pedestrian, PEDESTRIAN_MARGIN_M, 0.0)
        n = self._n
        row = np.concatenate([np.arange(n), [-1], np.full(ped.size, -1)])
        return (
            np.concatenate([xy, [ego["xy"]], xy[ped] + vel[ped] * PEDESTRIAN_LOOK_S]),
            np.concatenate([a.yaw_rad, [ego["yaw"]], a.yaw_rad[ped]]),
            np.concatenate([self._half_length, [ego["half_length"]], self._half_length[ped]]),
            np.concatenate([self._half_width, [ego["half_width"]], self._half_width[ped]]),
            np.concatenate([vel, [ego["speed"] * np.exp(1j * ego["yaw"])], vel[ped]]),
            np.concatenate([margin, [0.0], margin[ped]]),
            row,
        )

    def _leaders(self) -> tuple[np.ndarray, np.ndarray]:
        """(V,) bumper gap [m] to the nearest object on each vehicle's lane ahead (inf: none) and
        that object's speed along the lane [m/s]."""
        rows = self._veh
        nv = rows.size
        pos, yaw, half_len, half_wid, vel, margin, obj_row = self._obstacles()
        a = self.actors
        me = a.xy_m[rows, 0] + 1j * a.xy_m[rows, 1]
        rel = pos[None, :] - me[:, None]  # (V, M)
        ahead = (rel * np.exp(-1j * a.yaw_rad[rows])[:, None]).real > 0.0
        near = ahead & (rel.real**2 + rel.imag**2 < (LOOK_AHEAD_M + 5.0) ** 2)
        near[np.arange(nv), rows] = False  # not itself
        vi, mj = np.nonzero(near)
        gaps = np.full((nv, pos.size), np.inf)
        if vi.size == 0:
            return np.full(nv, np.inf), np.zeros(nv)
        look_s = self._s[rows, None] + self._look_m[None, :]  # (V, K) points along each lane ahead
        pts, heading = self.paths.points(rows[:, None], look_s, self._lane_d[rows, None])
        pts, heading = pts[vi], heading[vi]  # (P, K) per pair
        dist = np.abs(pts - pos[mj, None])
        k = dist.argmin(axis=1)
        pair = np.arange(vi.size)
        h = heading[pair, k]
        rel_yaw = yaw[mj] - h
        c, sn = np.abs(np.cos(rel_yaw)), np.abs(np.sin(rel_yaw))
        reach = (
            LANE_REACH_FACTOR * self.town.lane_width_m
            - INTRUSION_TOLERANCE_M
            + half_wid[mj] * c
            + half_len[mj] * sn
            + margin[mj]
        )
        gap = self._look_m[k] - self._half_length[rows[vi]] - (half_len[mj] * c + half_wid[mj] * sn)
        # (A pedestrian beside the vehicle, not ahead of its front, is not waited for: it waits.)
        hit = (dist[pair, k] < reach) & ~((margin[mj] > 0.0) & (gap < 0.0))
        v_along = (vel[mj] * np.exp(-1j * h)).real
        gaps[vi[hit], mj[hit]] = gap[hit]
        insists = ~self._yields[rows]
        if insists.any():  # right of way kept: an ego cutting in is not braked for until it is in the lane
            ego_pairs = mj == self._n
            ego_off = np.full(nv, np.inf)
            ego_off[vi[ego_pairs]] = dist[pair, k][ego_pairs]
            settled = (np.cos(self._ego["yaw"] - a.yaw_rad[rows]) > ALIGNED_COS) & (
                ego_off < 0.5 * self.town.lane_width_m - self._ego["half_width"]
            )
            gaps[insists & ~settled, self._n] = np.inf
        speeds = np.zeros_like(gaps)
        speeds[vi, mj] = np.maximum(v_along, 0.0)
        self._resolve_mutual(gaps)
        lead = gaps.argmin(axis=1)
        self._lead_object = np.where(np.isfinite(gaps[np.arange(nv), lead]), obj_row[lead], -2)  # for tests
        return gaps[np.arange(nv), lead], speeds[np.arange(nv), lead]

    def _resolve_mutual(self, gaps: np.ndarray) -> None:
        """Two vehicles that each have the other on their path ahead (crossing inside a junction):
        the one nearer the conflict (the smaller gap; the lower row on a tie) goes, the other waits."""
        block = gaps[:, self._veh]  # (V, V): gap of vehicle i to vehicle j
        seen = np.isfinite(block)
        mutual = seen & seen.T
        if not mutual.any():
            return
        nv = self._veh.size
        lower = np.arange(nv)[:, None] < np.arange(nv)[None, :]
        goes = mutual & ((block < block.T) | ((block == block.T) & lower))
        vi, vj = np.nonzero(goes)
        gaps[vi, self._veh[vj]] = np.inf

    # ------------------------------------------------------------------ junction rules
    def _junction_stops(self, s: np.ndarray, v: np.ndarray, half: np.ndarray) -> np.ndarray:
        """(V,) gap [m] to a virtual stop line in force for each vehicle (inf: none)."""
        ego = self._ego
        s_all = np.append(s, self._ego_s)
        v_all = np.append(v, ego["speed"])
        half_all = np.append(half, ego["half_length"])
        self._advance_crossings(s_all, half_all)
        c = self._next
        front = s_all + half_all
        to_stop = self._c_stop[c] - front
        to_entry = self._c_entry[c] - front
        in_box = (to_stop < 0.0) & (s_all - half_all < self._c_exit[c])  # past the line: in the junction
        near = in_box | ((to_entry > 0.0) & (to_entry < GAP_S * v_all))
        control, state = self._c_control[c], self._signal_states[self._c_signal[c]]
        self._note_stops(c, control, v_all, to_stop)
        # Gap acceptance among the rows near a junction (the others wait for nobody, and nobody for them).
        active = np.flatnonzero(
            (self._c_node[c] >= 0) & (to_stop < ACTIVE_M) & (s_all - half_all < self._c_exit[c])
        )
        wait = np.zeros(s_all.size, bool)
        for_ego = np.zeros(s_all.size, bool)
        if active.size > 1:
            args = (c, control, state, near, in_box, to_stop)
            gives_way = self._must_give_way(*(x[active] for x in args), active)  # (R, R)
            wait[active] = gives_way.any(axis=1)
            for_ego[active] = gives_way[:, active == s.size].any(axis=1)  # (row V: the ego)
        # Impatience: a vehicle that first had to give way at this junction MAX_WAIT_S ago goes (its
        # leaders and the lights still hold it), so that a rare cycle of vehicles giving way to each
        # other does not lock a junction for good, nor a dense oncoming flow a left turn at a light
        # (the clock runs on through the red: at the next green, the turn goes first). Never at the
        # ego: it does not wait for vehicles that stand.
        first = wait & (self._wait_at != c)
        self._wait_since = np.where(first, self._t_s, self._wait_since)
        self._wait_at = np.where(first, c, self._wait_at)
        wait &= self._t_s - self._wait_since < MAX_WAIT_S
        wait |= for_ego
        stop = np.where(control == SIGNAL, _stops_for_light(state, v_all, to_stop), False)
        stop |= (control == STOP) & (self._stop_made != c)
        behind = to_stop >= -COMMIT_M
        # Giving way also holds a vehicle over its line but short of the box (stopped there at a red
        # light, say) where it can still stop comfortably: at the box's entry.
        short = ~behind & (to_entry > 0.0) & (v_all * v_all <= 2.0 * self._idm.decel_comfort_mps2 * to_entry)
        stop = (stop & behind) | (wait & (behind | short))
        nv = self._veh.size
        stop = stop[:nv] & ~self._runner
        to_point = np.where(behind, to_stop, to_entry)[:nv]
        return np.where(stop, to_point + self._idm.min_gap_m - STOP_LINE_REST_M, np.inf)

    def _note_stops(self, c: np.ndarray, control: np.ndarray, v: np.ndarray, to_stop: np.ndarray) -> None:
        made = (
            (control == STOP) & (v < STOPPED_MPS) & (to_stop < STOPPED_NEAR_LINE_M) & (self._stop_made != c)
        )
        if made.any():
            self._stop_made[made] = c[made]
            self._stop_time[made] = self._t_s

    def _must_give_way(self, c, control, state, near, in_box, to_stop, rows) -> np.ndarray:
        """(R, R) whether each of `rows` (of the V vehicles and the ego) has to wait for each other
        (gap acceptance), of the rows heading for the same junction; the other arguments are theirs,
        (R,) each."""
        node = self._c_node[c]
        r = node.size
        same = (node[:, None] == node[None, :]) & (node[:, None] >= 0) & ~np.eye(r, dtype=bool)
        minor = ((control == STOP) | (control == YIELD))[:, None]
        rel = self._c_heading[c][None, :] - self._c_heading[c][:, None]  # heading_j - heading_i
        from_right = np.cos(rel - 0.5 * math.pi) > 0.7
        opposite = np.cos(rel) < -0.7
        turn = self._c_turn[c]
        near_j, box_j = near[None, :], in_box[None, :]
        # A right turn only crosses the way of traffic from the left and of oncoming left turns.
        from_left = np.cos(rel + 0.5 * math.pi) > 0.7
        right = (turn == TURN_CODES["right"])[:, None]
        crosses = ~right | from_left | (opposite & (turn == TURN_CODES["left"])[None, :])
        wait = minor & crosses & (box_j | ((control == PRIORITY)[None, :] & near_j))
        # Nobody enters a box that a crossing vehicle (or an oncoming left turn) is still in.
        lefts = turn == TURN_CODES["left"]
        conflict = np.where(right, from_left, np.abs(np.cos(rel)) < 0.3)
        conflict |= opposite & (lefts[:, None] | lefts[None, :])
        wait |= conflict & box_j
        # Side by side on one approach (two lanes), turning differently: the one nearer the line first.
        ahead_j = (to_stop[None, :] < to_stop[:, None]) & (to_stop[None, :] > -COMMIT_M)
        wait |= (np.cos(rel) > 0.7) & (turn[:, None] != turn[None, :]) & (box_j | ahead_j)
        wait |= ((control == YIELD)[:, None] & (control == YIELD)[None, :]) & from_right & near_j
        # Left turns across oncoming traffic that goes at the same time (green, or both with priority).
        turning_left = (turn == TURN_CODES["left"]) & (
            ((control == SIGNAL) & (state != RED)) | (control == PRIORITY)
        )
        same_class = control[:, None] == control[None, :]
        wait |= turning_left[:, None] & same_class & opposite & (turn != TURN_CODES["left"])[None, :] & near_j
        nv = self._veh.size
        made = self._stop_made[rows] == c
        stop_time = self._stop_time[rows]
        # All-way stop: who stopped first goes first; the ego (whose planner keeps no order of arrival)
        # is let go first once it has made its stop.
        first = made[None, :] & ((stop_time[None, :] < stop_time[:, None]) | (rows == nv)[None, :])
        first &= (to_stop >= -COMMIT_M)[None, :]
        wait |= ((control == STOP)[:, None] & (control == STOP)[None, :]) & first
        # Who keeps its right of way (`yields` false) gives way to other vehicles, never to the ego.
        insists = self._insists[rows]
        wait[:, rows == nv] &= ~insists[:, None]
        return same & wait

    # ------------------------------------------------------------------ pedestrians and poses
    def _walk(self, dt_s: float, decide: bool) -> None:
        a, ego, veh, ped = self.actors, self._ego, self._veh, self._ped
        vehicles = (
            np.append(a.xy_m[veh, 0] + 1j * a.xy_m[veh, 1], ego["xy"]),
            np.append(self._speed[veh], ego["speed"]),
            np.append(a.yaw_rad[veh], ego["yaw"]),
            np.append(self._half_length[veh], ego["half_length"]),
            np.append(self._half_width[veh], ego["half_width"]),
        )
        walker_xy = a.xy_m[ped, 0] + 1j * a.xy_m[ped, 1]
        self.walkers.step(dt_s, self._signal_states, vehicles, walker_xy, a.yaw_rad[ped], decide)
        self._s[self._ped] = self.walkers.path_s_m()
        self._speed[self._ped] = self.walkers.speed_mps

    def _update_poses(self, accel: np.ndarray) -> None:
        """World poses of all actors from (s, d) along their paths."""
        rows = np.arange(self._n)
        if self._n == 0:
            return
        a = self.actors
        g, f = at = self.paths.index(rows, self._s)
        xy, heading = self.paths.points(rows, self._s, self._d, at)
        scale = 1.0 - self.paths.curvature[g] * self._d
        along = self._speed * scale
        d_rate = self._d_rate
        vel = (along + 1j * d_rate) * np.exp(1j * heading)
        a.xy_m[:, 0], a.xy_m[:, 1] = xy.real, xy.imag
        a.yaw_rad[:] = (
            heading + np.arctan2(d_rate, np.maximum(along, YAW_MIN_SPEED_MPS)) * ~self._is_pedestrian
        )
        a.v_mps[:, 0], a.v_mps[:, 1] = vel.real, vel.imag
        a.speed_mps[:] = np.abs(vel)
        a.accel_mps2[:] = accel


def _stops_for_light(state: np.ndarray, v: np.ndarray, to_stop: np.ndarray) -> np.ndarray:
    """Red: stop. Yellow: stop when the line can still be reached braking at YELLOW_DECEL_MPS2."""
    can_stop = v * v / (2.0 * YELLOW_DECEL_MPS2) <= to_stop + STOP_LINE_REST_M
    return (state == RED) | ((state == YELLOW) & can_stop)


def _triggered(a: TownActorSpec) -> bool:
    """Whether the actor waits for the ego to come near before it moves."""
    has_trigger = a.trigger_xy_m is not None and math.isfinite(a.trigger_distance_m)
    return a.behaviour in ("cut_in", "cross") or (a.behaviour in ("runner", "route") and has_trigger)


def _start_xy(a: TownActorSpec) -> tuple[float, float]:
    x, y, _ = a.path.to_world(a.s_m, a.d_m)
    return float(x), float(y)

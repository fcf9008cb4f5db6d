"""Per-tick checks of a closed-loop run that emit typed events (CARLA scenario_runner's criteria).

`Criteria.update` is called once per control tick; it returns the events that happened in that tick
and keeps the few running quantities the scores need (furthest progress, distance driven off road,
minimum time-to-collision). The scores themselves are pure functions of the events and the
per-tick states (sim/metrics/scores.py), as in the CARLA leaderboard's statistics manager.

Frenet coordinates (s along the road, d to its left) come from the caller, who already computes
them for the planner and the traffic model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from decision.route import Route
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, EgoState
from sim.traffic.actors import Actors
from sim.world.geometry import obb_overlap_pair

# Event kinds.
COLLISION_VEHICLE = "collision_vehicle"
COLLISION_PEDESTRIAN = "collision_pedestrian"
COLLISION_STATIC = "collision_static"
OFF_ROAD = "off_road"
LANE_INVASION = "lane_invasion"
ROUTE_COMPLETED = "route_completed"
TIMEOUT = "timeout"
BLOCKED = "blocked"
EVENT_KINDS = (
    COLLISION_VEHICLE,
    COLLISION_PEDESTRIAN,
    COLLISION_STATIC,
    OFF_ROAD,
    LANE_INVASION,
    ROUTE_COMPLETED,
    TIMEOUT,
    BLOCKED,
)
COLLISION_KINDS = (COLLISION_VEHICLE, COLLISION_PEDESTRIAN, COLLISION_STATIC)
TERMINAL_KINDS = (ROUTE_COMPLETED, TIMEOUT, BLOCKED)
COLLISION_KIND_BY_CLASS = {
    VEHICLE: COLLISION_VEHICLE,
    PEDESTRIAN: COLLISION_PEDESTRIAN,
    OBSTACLE: COLLISION_STATIC,
}

OFF_ROAD_TOLERANCE_M = 0.3  # a corner this far beyond the road edge is off road (nuPlan drivable area)
CONTACT_RESET_S = 1.0  # a new collision with the same actor needs this long without contact [s]
STILL_SPEED_MPS = 0.1  # below this the ego counts as standing still (blocked test)
TTC_CORRIDOR_MARGIN_M = 0.3  # lateral margin added to the half widths for the TTC corridor [m]
TTC_PERIOD_S = 0.1  # the closed loop samples TTC every 0.1 s, nuPlan's time-to-collision step


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at time `t_s`: `kind` is one of EVENT_KINDS.

    actor_id: the other actor (collisions), else -1. speed_mps: ego speed at the event.
    """

    t_s: float
    kind: str
    actor_id: int = -1
    detail: str = ""
    speed_mps: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["t_s"], d["speed_mps"], d["actor_id"] = float(self.t_s), float(self.speed_mps), int(self.actor_id)
        return d


class Criteria:
    """The per-tick checks of one run. Build a new one (or `reset()`) for every run.

    After each `update`: `done` (the run has ended: route completed, timeout or blocked), `ttc_s`
    (minimum time-to-collision of the latest TTC sample, taken every `ttc_period_s`; inf when
    nothing closes in), and the running
    `min_ttc_s`, `max_s_m`, `off_road_distance_m`, `driven_distance_m`, `events` (all so far).

    The caller passes the same `Actors` every tick, updated in place: what follows from the sizes
    is worked out again only when `actors.size_m` is another array, and the positions are read
    through a complex view of `actors.xy_m` kept while it is the same array.
    """

    def __init__(
        self,
        route: Route,
        ego_length_m: float,
        ego_width_m: float,
        blocked_timeout_s: float,
        duration_s: float,
        ttc_period_s: float = 0.0,
    ):
        self.route = route
        self.ttc_period_s = float(ttc_period_s)  # TTC sampled this often (0: every tick)
        self.ego_length_m = float(ego_length_m)
        self.ego_width_m = float(ego_width_m)
        self.blocked_timeout_s = float(blocked_timeout_s)
        self.duration_s = float(duration_s)
        road = route.road
        self._s0 = float(road.s_m[0])
        self._ds = float(road.s_m[1] - road.s_m[0]) if len(road.s_m) > 1 else 1.0
        self._headings = road.heading_rad.tolist()  # plain floats: read a few at a time
        self._ego_half_diag_m = 0.5 * math.hypot(self.ego_length_m, self.ego_width_m)
        self._ttc_corridor_base_m = 0.5 * self.ego_width_m + TTC_CORRIDOR_MARGIN_M
        # Per-actor constants (from the sizes) and the positions as complex x + iy (a view), kept
        # for the arrays last seen: the caller passes the same Actors every tick.
        self._size_seen: np.ndarray | None = None
        self._xy_seen: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.events: list[Event] = []
        self.done = False
        self.ttc_s = math.inf
        self.min_ttc_s = math.inf
        self.max_s_m = -math.inf
        self.off_road = False
        self.off_road_distance_m = 0.0
        self.driven_distance_m = 0.0
        self._lane: int | None = None
        self._still_since_s: float | None = None
        self._last_contact_s: dict[int, float] = {}
        self._prev_xy: tuple[float, float] | None = None
        self._next_ttc_s = -math.inf

    def _road_heading(self, s_m: float) -> float:
        """Heading of the reference line at s (linear interpolation of the uniform samples)."""
        h = self._headings
        u = (s_m - self._s0) / self._ds
        if u <= 0.0:
            return h[0]
        i = int(u)
        if i >= len(h) - 1:
            return h[-1]
        f = u - i
        return h[i] * (1.0 - f) + h[i + 1] * f

    # ------------------------------------------------------------------ the tick
    def update(
        self,
        t_s: float,
        ego: EgoState,
        ego_s_m: float,
        ego_d_m: float,
        actors: Actors,
        actor_s_m: np.ndarray,
        actor_d_m: np.ndarray,
    ) -> list[Event]:
        """Check one tick. actor_s_m, actor_d_m: (N,) Frenet coordinates of the actors.

        Returns the events of this tick (empty once `done`).
        """
        if self.done:
            return []
        new: list[Event] = []
        speed = float(ego.speed_mps)
        road = self.route.road

        # Distance driven (whole and off road) since the previous tick.
        step_m = 0.0
        if self._prev_xy is not None:
            step_m = math.hypot(ego.x_m - self._prev_xy[0], ego.y_m - self._prev_xy[1])
        self._prev_xy = (float(ego.x_m), float(ego.y_m))
        self.driven_distance_m += step_m

        heading = self._road_heading(ego_s_m)
        rel = ego.yaw_rad - heading
        cos_rel, sin_rel = math.cos(rel), math.sin(rel)

        if len(actors):
            if actors.size_m is not self._size_seen:
                self._per_actor(actors)
            self._collisions(t_s, ego, speed, actors, new)
            if t_s >= self._next_ttc_s:
                self._ttc(ego_s_m, ego_d_m, speed * cos_rel, actors, actor_s_m, actor_d_m)
                self._next_ttc_s = t_s + self.ttc_period_s - 1e-9
        else:
            self.ttc_s = math.inf

        # Off road: the furthest corner's lateral offset (box corners seen in the road frame).
        reach_m = abs(0.5 * self.ego_length_m * sin_rel) + abs(0.5 * self.ego_width_m * cos_rel)
        beyond_m = abs(ego_d_m) + reach_m - road.half_width_m
        off = beyond_m > OFF_ROAD_TOLERANCE_M
        if off:
            self.off_road_distance_m += step_m
            if not self.off_road:
                side = "left" if ego_d_m > 0 else "right"
                new.append(
                    Event(t_s, OFF_ROAD, detail=f"{side} edge, {beyond_m:.2f} m beyond", speed_mps=speed)
                )
        self.off_road = off

        # Lane of the ego centre (informational).
        lane = min(max(math.floor((ego_d_m + road.half_width_m) / road.lane_width_m), 0), road.lane_count - 1)
        if self._lane is not None and lane != self._lane:
            new.append(Event(t_s, LANE_INVASION, detail=f"lane {self._lane} -> {lane}", speed_mps=speed))
        self._lane = lane

        # Progress, then the three ways a run ends.
        self.max_s_m = max(self.max_s_m, float(ego_s_m))
        if ego_s_m >= self.route.goal_s_m:
            new.append(Event(t_s, ROUTE_COMPLETED, speed_mps=speed))
            self.done = True
        if speed < STILL_SPEED_MPS:
            if self._still_since_s is None:
                self._still_since_s = float(t_s)
        else:
            self._still_since_s = None
        if not self.done and self._still_since_s is not None:
            still_s = t_s - self._still_since_s
            if still_s >= self.blocked_timeout_s:
                new.append(Event(t_s, BLOCKED, detail=f"still for {still_s:.1f} s", speed_mps=speed))
                self.done = True
        if not self.done and t_s >= self.duration_s:
            new.append(
                Event(
                    t_s,
                    TIMEOUT,
                    detail=f"{self.route.completion(self.max_s_m):.3f} of the route",
                    speed_mps=speed,
                )
            )
            self.done = True

        self.events.extend(new)
        return new

    # ------------------------------------------------------------------ parts
    def _per_actor(self, actors: Actors) -> None:
        """Constants of the actors, from their sizes: computed again only when `actors.size_m` is
        another array (sizes do not change within a run)."""
        size = actors.size_m
        self._size_seen = size
        self._reach_m = 0.5 * (size[:, 0] + size[:, 1]) + self._ego_half_diag_m  # bounding circles touch
        self._corridor_m = 0.5 * size[:, 1] + self._ttc_corridor_base_m
        self._half_lengths_m = (0.5 * size[:, 0] + 0.5 * self.ego_length_m).tolist()  # bumper to bumper
        self._lengths_m, self._widths_m = size[:, 0].tolist(), size[:, 1].tolist()

    def _collisions(self, t_s: float, ego: EgoState, speed: float, actors: Actors, out: list[Event]) -> None:
        """One event per actor per contact.

        A vectorised distance pre-filter keeps the actors whose bounding circles meet the ego's
        (radius bound (length + width) / 2, cheaper than the diagonal); the few survivors get an
        exact box test in plain floats (obb_overlap_pair, ~10x faster than numpy on 1-3 boxes).
        """
        xy = actors.xy_m
        if xy is not self._xy_seen:
            self._xy_seen = xy
            contiguous = xy.dtype == np.float64 and xy.flags.c_contiguous
            self._xy_complex = xy.view(np.complex128)[:, 0] if contiguous else None
        xy_c = self._xy_complex
        if xy_c is None:
            xy_c = np.ascontiguousarray(xy, np.float64).view(np.complex128)[:, 0]
        near = np.flatnonzero(np.abs(xy_c - complex(ego.x_m, ego.y_m)) <= self._reach_m)
        for i in near.tolist():
            hit = obb_overlap_pair(
                ego.x_m, ego.y_m, ego.yaw_rad, self.ego_length_m, self.ego_width_m,
                xy.item(i, 0), xy.item(i, 1), actors.yaw_rad.item(i), self._lengths_m[i], self._widths_m[i],
            )  # fmt: skip
            if not hit:
                continue
            actor_id = int(actors.ids[i])
            last = self._last_contact_s.get(actor_id)
            if last is None or t_s - last > CONTACT_RESET_S:
                kind = COLLISION_KIND_BY_CLASS.get(int(actors.class_ids[i]), COLLISION_STATIC)
                out.append(Event(t_s, kind, actor_id, detail=actors.models[i], speed_mps=speed))
            self._last_contact_s[actor_id] = float(t_s)

    def _ttc(
        self,
        ego_s_m: float,
        ego_d_m: float,
        ego_v_along_mps: float,
        actors: Actors,
        actor_s_m: np.ndarray,
        actor_d_m: np.ndarray,
    ) -> None:
        """Minimum time-to-collision over actors ahead in the ego's corridor (bumper gap / closing
        speed along the road). A vectorised test picks the actors ahead in the corridor (a few);
        their TTCs are plain float arithmetic."""
        ds = actor_s_m - ego_s_m
        lateral = actor_d_m - ego_d_m
        np.abs(lateral, out=lateral)
        ahead = lateral < self._corridor_m
        ahead &= ds > 0.0
        ttc = math.inf
        idx = np.flatnonzero(ahead)
        if idx.size:
            half_lengths, heading = self._half_lengths_m, self._road_heading
            rows = idx.tolist(), ds[idx].tolist(), actor_s_m[idx].tolist(), actors.v_mps[idx].tolist()
            for i, ds_i, s_i, (vx, vy) in zip(*rows, strict=True):
                gap = ds_i - half_lengths[i]
                if gap <= 0.0:
                    ttc = 0.0
                    break
                h = heading(s_i)
                closing = ego_v_along_mps - (vx * math.cos(h) + vy * math.sin(h))
                if closing > 0.0:
                    ttc = min(ttc, gap / closing)
        self.ttc_s = ttc
        self.min_ttc_s = min(self.min_ttc_s, ttc)

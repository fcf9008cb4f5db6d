"""Per-tick checks of a closed-loop run that emit typed events, one small class per criterion, in
the style of CARLA scenario_runner's criteria (CollisionTest, OutsideRouteLanesTest,
RouteCompletionTest, ActorBlockedTest, timeout):

    CollisionTest        a collision event per actor per contact
    OffRoadTest          an off_road event on leaving the road; the distance driven off it
    LaneInvasionTest     a lane_invasion event when the ego centre changes lane (informational)
    RouteCompletionTest  the furthest progress; route_completed at the goal (ends the run)
    BlockedTest          blocked after standing still too long (ends the run)
    TimeoutTest          timeout at the scenario's duration (ends the run)
    TimeToCollision      no events: the time-to-collision sampled every ttc_period_s, and its minimum

and the criteria of town routes (sim/metrics/town_criteria.py): RunningRedLightTest,
RunningStopTest, WrongLaneTest, InRouteTest (route_deviation ends the run),
MinimumSpeedRouteTest and YieldToEmergencyVehicleTest.

Each has `reset()` and `update(tick) -> events of this tick` (an empty tuple when none; None for
TimeToCollision, a measurement only), and reads one `Tick`: the ego and the actors of one control
tick, with what several criteria need worked out once (the distance driven since the previous
tick, the ego heading relative to the road).
`Criteria` composes them for one run. The scores are pure functions of the events and the
per-tick states (sim/metrics/scores.py), as in the CARLA leaderboard's statistics manager.

Frenet coordinates (s along the road, d to its left) come from the caller, who already computes
them for the planner and the traffic model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decision.route import Road, Route
from perception.types import EgoState
from sim.metrics.events import COLLISION_KIND_BY_CLASS, Event, EventKind
from sim.metrics.town_criteria import (
    MIN_SPEED_CHECKPOINTS,
    InRouteTest,
    MinimumSpeedRouteTest,
    RunningRedLightTest,
    RunningStopTest,
    SignalState,
    WrongLaneTest,
    YieldToEmergencyVehicleTest,
)
from sim.traffic.actors import Actors
from sim.world.geometry import obb_overlap_pair

OFF_ROAD_TOLERANCE_M = 0.3  # a corner this far beyond the road edge is off road (nuPlan drivable area)
CONTACT_RESET_S = 1.0  # a new collision with the same actor needs this long without contact [s]
STILL_SPEED_MPS = 0.1  # below this the ego counts as standing still (blocked test)
TTC_CORRIDOR_MARGIN_M = 0.3  # lateral margin added to the half widths for the TTC corridor [m]
TTC_PERIOD_S = 0.1  # the closed loop samples TTC every 0.1 s, nuPlan's time-to-collision step
NO_EVENTS: tuple[Event, ...] = ()


@dataclass(slots=True)
class Tick:
    """What the criteria read in one control tick.

    ego: the ego state; s_m, d_m: its Frenet coordinates; step_m: distance driven since the
    previous tick; cos_rel, sin_rel: of the ego heading relative to the road's at s_m.
    actors: every actor, updated in place by the caller; actor_s_m, actor_d_m (N,): their Frenet
    coordinates.
    """

    t_s: float
    ego: EgoState
    speed_mps: float
    s_m: float
    d_m: float
    step_m: float
    cos_rel: float
    sin_rel: float
    actors: Actors
    actor_s_m: np.ndarray
    actor_d_m: np.ndarray


class RoadHeading:
    """Heading of a road's reference line at s [rad], by linear interpolation of its uniform samples."""

    def __init__(self, road: Road):
        self._s0 = float(road.s_m[0])
        self._ds = float(road.s_m[1] - road.s_m[0]) if len(road.s_m) > 1 else 1.0
        self._headings = road.heading_rad.tolist()  # plain floats: read a few at a time

    def __call__(self, s_m: float) -> float:
        h = self._headings
        u = (s_m - self._s0) / self._ds
        if u <= 0.0:
            return h[0]
        i = int(u)
        if i >= len(h) - 1:
            return h[-1]
        f = u - i
        return h[i] * (1.0 - f) + h[i + 1] * f


# ---------------------------------------------------------------------------- event criteria
class CollisionTest:
    """One event per actor per contact: a contact with the same actor counts again only after
    `contact_reset_s` without touching it. The kind follows the actor's class.

    A vectorised distance pre-filter keeps the actors whose bounding circles meet the ego's (radius
    bound (length + width) / 2, cheaper than the diagonal); the few survivors get an exact box test
    in plain floats (obb_overlap_pair). What follows from the actor sizes is worked out again only
    when `actors.size_m` is another array, and the positions are read through a complex view of
    `actors.xy_m` kept while it is the same array (the caller updates one Actors in place).
    """

    def __init__(self, ego_length_m: float, ego_width_m: float, contact_reset_s: float = CONTACT_RESET_S):
        self.ego_length_m = float(ego_length_m)
        self.ego_width_m = float(ego_width_m)
        self.contact_reset_s = float(contact_reset_s)
        self._ego_half_diag_m = 0.5 * math.hypot(self.ego_length_m, self.ego_width_m)
        self._size_seen: np.ndarray | None = None
        self._xy_seen: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._last_contact_s: dict[int, float] = {}

    def update(self, tick: Tick) -> list[Event] | tuple[()]:
        actors, ego = tick.actors, tick.ego
        if not len(actors.ids):
            return NO_EVENTS
        if actors.size_m is not self._size_seen:
            size = self._size_seen = actors.size_m
            self._reach_m = 0.5 * (size[:, 0] + size[:, 1]) + self._ego_half_diag_m  # bounding circles touch
            self._lengths_m, self._widths_m = size[:, 0].tolist(), size[:, 1].tolist()
        xy = actors.xy_m
        near = np.flatnonzero(np.abs(self._complex(xy) - complex(ego.x_m, ego.y_m)) <= self._reach_m)
        if not near.size:
            return NO_EVENTS
        out = []
        for i in near.tolist():
            hit = obb_overlap_pair(
                ego.x_m, ego.y_m, ego.yaw_rad, self.ego_length_m, self.ego_width_m,
                xy.item(i, 0), xy.item(i, 1), actors.yaw_rad.item(i), self._lengths_m[i], self._widths_m[i],
            )  # fmt: skip
            if hit:
                event = self._contact(tick, actors, i)
                if event is not None:
                    out.append(event)
        return out

    def _complex(self, xy: np.ndarray) -> np.ndarray:
        """(N,) positions as x + iy: a view of `xy` (N, 2) when it is C-contiguous float64."""
        if xy is not self._xy_seen:
            self._xy_seen = xy
            contiguous = xy.dtype == np.float64 and xy.flags.c_contiguous
            self._xy_complex = xy.view(np.complex128)[:, 0] if contiguous else None
        if self._xy_complex is None:
            return np.ascontiguousarray(xy, np.float64).view(np.complex128)[:, 0]
        return self._xy_complex

    def _contact(self, tick: Tick, actors: Actors, i: int) -> Event | None:
        """The event of a contact with actor i, or None while it continues an earlier contact."""
        actor_id = int(actors.ids[i])
        last = self._last_contact_s.get(actor_id)
        self._last_contact_s[actor_id] = float(tick.t_s)
        if last is not None and tick.t_s - last <= self.contact_reset_s:
            return None
        kind = COLLISION_KIND_BY_CLASS.get(int(actors.class_ids[i]), EventKind.COLLISION_STATIC)
        return Event(tick.t_s, kind, actor_id, detail=actors.models[i], speed_mps=tick.speed_mps)


class OffRoadTest:
    """An off_road event on leaving the road: the ego box's furthest corner more than `tolerance_m`
    beyond the road edge (nuPlan's drivable-area test). `distance_m` sums the distance driven off it;
    `off_road` says whether the ego is off it now."""

    def __init__(
        self, road: Road, ego_length_m: float, ego_width_m: float, tolerance_m: float = OFF_ROAD_TOLERANCE_M
    ):
        self.half_width_m = float(road.half_width_m + road.shoulder_m)  # to the paved edge
        self._half_length_m = 0.5 * float(ego_length_m)
        self._half_width_m = 0.5 * float(ego_width_m)
        self.tolerance_m = float(tolerance_m)
        self.reset()

    def reset(self) -> None:
        self.off_road = False
        self.distance_m = 0.0

    def update(self, tick: Tick) -> list[Event] | tuple[()]:
        # The furthest corner's lateral offset: the box corners seen in the road frame.
        reach_m = abs(self._half_length_m * tick.sin_rel) + abs(self._half_width_m * tick.cos_rel)
        beyond_m = abs(tick.d_m) + reach_m - self.half_width_m
        was_off, self.off_road = self.off_road, beyond_m > self.tolerance_m
        if not self.off_road:
            return NO_EVENTS
        self.distance_m += tick.step_m
        if was_off:
            return NO_EVENTS
        side = "left" if tick.d_m > 0 else "right"
        detail = f"{side} edge, {beyond_m:.2f} m beyond"
        return [Event(tick.t_s, EventKind.OFF_ROAD, detail=detail, speed_mps=tick.speed_mps)]


class LaneInvasionTest:
    """A lane_invasion event whenever the lane of the ego centre changes (informational: the ego
    changes lanes on purpose; no score penalises it)."""

    def __init__(self, road: Road):
        self.half_width_m = float(road.half_width_m)
        self.lane_width_m = float(road.lane_width_m)
        self.lane_count = int(road.lane_count)
        self.reset()

    def reset(self) -> None:
        self.lane: int | None = None

    def update(self, tick: Tick) -> list[Event] | tuple[()]:
        lane = min(
            max(math.floor((tick.d_m + self.half_width_m) / self.lane_width_m), 0), self.lane_count - 1
        )
        previous, self.lane = self.lane, lane
        if previous is None or lane == previous:
            return NO_EVENTS
        return [
            Event(
                tick.t_s,
                EventKind.LANE_INVASION,
                detail=f"lane {previous} -> {lane}",
                speed_mps=tick.speed_mps,
            )
        ]


# ---------------------------------------------------------------------------- ending criteria
class RouteCompletionTest:
    """The furthest progress along the route (`max_s_m`); route_completed once the ego reaches the goal."""

    def __init__(self, route: Route):
        self.route = route
        self.goal_s_m = float(route.goal_s_m)
        self.reset()

    def reset(self) -> None:
        self.max_s_m = -math.inf

    def completion(self) -> float:
        """Fraction of the route done so far, in [0, 1]."""
        return self.route.completion(self.max_s_m)

    def update(self, tick: Tick) -> list[Event] | tuple[()]:
        if tick.s_m > self.max_s_m:
            self.max_s_m = float(tick.s_m)
        if tick.s_m >= self.goal_s_m:
            return [Event(tick.t_s, EventKind.ROUTE_COMPLETED, speed_mps=tick.speed_mps)]
        return NO_EVENTS


class BlockedTest:
    """blocked once the ego has stood still (speed below `still_speed_mps`) for `timeout_s`
    (CARLA's ActorBlockedTest)."""

    def __init__(self, timeout_s: float, still_speed_mps: float = STILL_SPEED_MPS):
        self.timeout_s = float(timeout_s)
        self.still_speed_mps = float(still_speed_mps)
        self.reset()

    def reset(self) -> None:
        self.still_since_s: float | None = None

    def update(self, tick: Tick) -> list[Event] | tuple[()]:
        if not tick.speed_mps < self.still_speed_mps:  # moving (or no speed): the clock stops
            self.still_since_s = None
            return NO_EVENTS
        if self.still_since_s is None:
            self.still_since_s = float(tick.t_s)
        still_s = tick.t_s - self.still_since_s
        if still_s >= self.timeout_s:
            return [
                Event(
                    tick.t_s, EventKind.BLOCKED, detail=f"still for {still_s:.1f} s", speed_mps=tick.speed_mps
                )
            ]
        return NO_EVENTS


class TimeoutTest:
    """timeout at the scenario's duration; its detail gives the share of the route done."""

    def __init__(self, duration_s: float, progress: RouteCompletionTest):
        self.duration_s = float(duration_s)
        self.progress = progress

    def reset(self) -> None:
        pass

    def update(self, tick: Tick) -> list[Event] | tuple[()]:
        if tick.t_s >= self.duration_s:
            detail = f"{self.progress.completion():.3f} of the route"
            return [Event(tick.t_s, EventKind.TIMEOUT, detail=detail, speed_mps=tick.speed_mps)]
        return NO_EVENTS


# ---------------------------------------------------------------------------- time to collision
class TimeToCollision:
    """Minimum time-to-collision over the actors ahead in the ego's corridor: bumper gap / closing
    speed along the road. Sampled every `period_s` (0: every tick) and held in between: `ttc_s`
    (inf when nothing closes in) and the run's minimum `min_ttc_s`.

    A vectorised test picks the actors ahead in the corridor (a few); their TTCs are plain float
    arithmetic."""

    def __init__(
        self,
        heading: RoadHeading,
        ego_length_m: float,
        ego_width_m: float,
        period_s: float = 0.0,
        corridor_margin_m: float = TTC_CORRIDOR_MARGIN_M,
    ):
        self.heading = heading
        self.period_s = float(period_s)
        self.ego_length_m = float(ego_length_m)
        self._corridor_base_m = 0.5 * float(ego_width_m) + corridor_margin_m
        self._size_seen: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.ttc_s = math.inf
        self.min_ttc_s = math.inf
        self._next_sample_s = -math.inf

    def update(self, tick: Tick) -> None:
        actors = tick.actors
        if not len(actors.ids):
            self.ttc_s = math.inf
        elif tick.t_s >= self._next_sample_s:
            self.ttc_s = self._sample(tick, actors)
            self.min_ttc_s = min(self.min_ttc_s, self.ttc_s)
            self._next_sample_s = tick.t_s + self.period_s - 1e-9

    def _sample(self, tick: Tick, actors: Actors) -> float:
        if actors.size_m is not self._size_seen:
            size = self._size_seen = actors.size_m
            self._corridor_m = 0.5 * size[:, 1] + self._corridor_base_m
            self._half_lengths_m = (0.5 * size[:, 0] + 0.5 * self.ego_length_m).tolist()  # bumper to bumper
        ds = tick.actor_s_m - tick.s_m
        lateral = tick.actor_d_m - tick.d_m
        np.abs(lateral, out=lateral)
        ahead = lateral < self._corridor_m
        ahead &= ds > 0.0
        idx = np.flatnonzero(ahead)
        if not idx.size:
            return math.inf
        ego_v_along_mps = tick.speed_mps * tick.cos_rel
        ttc = math.inf
        half_lengths, heading = self._half_lengths_m, self.heading
        rows = idx.tolist(), ds[idx].tolist(), tick.actor_s_m[idx].tolist(), actors.v_mps[idx].tolist()
        for i, ds_i, s_i, (vx, vy) in zip(*rows, strict=True):
            gap = ds_i - half_lengths[i]
            if gap <= 0.0:
                return 0.0
            h = heading(s_i)
            closing = ego_v_along_mps - (vx * math.cos(h) + vy * math.sin(h))
            if closing > 0.0:
                ttc = min(ttc, gap / closing)
        return ttc


# ---------------------------------------------------------------------------- one run
class Criteria:
    """The criteria of one run, composed. Build a new one (or `reset()`) for every run.

    After each `update`: `done` (the run has ended: route completed, route deviation, blocked or
    timeout), `ttc_s` (the latest TTC sample, taken every `ttc_period_s`; inf when nothing closes in),
    and the running `min_ttc_s`, `max_s_m`, `off_road`, `off_road_distance_m`,
    `wrong_lane_distance_m`, `driven_distance_m`, `min_speed_pcts`, `events` (all so far).

    Towns: `signal_state(signal_id, t_s) -> "green" | "yellow" | "red"` gives the signals for the
    red-light test (None: no signals). `min_speed`: whether the minimum-speed checkpoints run (their
    speed_checkpoint and min_speed events); None: on a town-style route (junctions or a two-way
    road), off on the one-way roads of the scenarios before towns, whose scores stay what they were.
    `traffic` (N,) bool: the actors that count as surrounding traffic for it (default: every vehicle).
    `emergency` (N,) bool: the emergency vehicles the ego has to let by (default: none).

    The caller passes the same `Actors` every tick, updated in place.
    """

    def __init__(
        self,
        route: Route,
        ego_length_m: float,
        ego_width_m: float,
        blocked_timeout_s: float,
        duration_s: float,
        ttc_period_s: float = 0.0,
        signal_state: SignalState | None = None,
        min_speed: bool | None = None,
        min_speed_checkpoints: int = MIN_SPEED_CHECKPOINTS,
        traffic: np.ndarray | None = None,
        emergency: np.ndarray | None = None,
    ):
        road = route.road
        if min_speed is None:
            min_speed = bool(route.junctions) or road.oncoming_lanes > 0
        self.heading = RoadHeading(road)
        self.collisions = CollisionTest(ego_length_m, ego_width_m)
        self.off_road_test = OffRoadTest(road, ego_length_m, ego_width_m)
        self.lane_invasion = LaneInvasionTest(road)
        self.progress = RouteCompletionTest(route)
        self.blocked = BlockedTest(blocked_timeout_s)
        self.timeout = TimeoutTest(duration_s, self.progress)
        self.ttc = TimeToCollision(self.heading, ego_length_m, ego_width_m, ttc_period_s)
        self.red_light = RunningRedLightTest(route, ego_length_m, signal_state)
        self.stop_sign = RunningStopTest(route, ego_length_m)
        self.wrong_lane = WrongLaneTest(route)
        self.in_route = InRouteTest(route)
        self.min_speed = (
            MinimumSpeedRouteTest(route, min_speed_checkpoints, traffic=traffic) if min_speed else None
        )
        self.yield_emergency = YieldToEmergencyVehicleTest(
            np.zeros(0, bool) if emergency is None else emergency
        )
        self.reset()

    def reset(self) -> None:
        self.events: list[Event] = []
        self.done = False
        self.driven_distance_m = 0.0
        self._prev_xy: tuple[float, float] | None = None
        for criterion in self.all():
            criterion.reset()

    def all(self) -> tuple:
        """Every criterion, in the order `update` checks them."""
        town = (self.red_light, self.stop_sign, self.wrong_lane, self.in_route, self.yield_emergency)
        town += (self.min_speed,) if self.min_speed is not None else ()
        return (
            self.ttc, self.collisions, self.off_road_test, self.lane_invasion, *town,
            self.progress, self.blocked, self.timeout,
        )  # fmt: skip

    @property
    def ttc_s(self) -> float:
        return self.ttc.ttc_s

    @property
    def min_ttc_s(self) -> float:
        return self.ttc.min_ttc_s

    @property
    def max_s_m(self) -> float:
        return self.progress.max_s_m

    @property
    def off_road(self) -> bool:
        return self.off_road_test.off_road

    @property
    def off_road_distance_m(self) -> float:
        return self.off_road_test.distance_m

    @property
    def wrong_lane_distance_m(self) -> float:
        """Distance [m] driven against traffic while on the road (sim/metrics/town_criteria.py)."""
        return self.wrong_lane.distance_m

    @property
    def min_speed_pcts(self) -> list[float]:
        """The min-speed checkpoints so far: ego speed as a % of the surrounding traffic's."""
        return [] if self.min_speed is None else list(self.min_speed.pcts)

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
        tick = self._tick(t_s, ego, ego_s_m, ego_d_m, actors, actor_s_m, actor_d_m)
        self.ttc.update(tick)
        new = [
            *self.collisions.update(tick),
            *self.off_road_test.update(tick),
            *self.lane_invasion.update(tick),
            *self.red_light.update(tick),
            *self.stop_sign.update(tick),
            *self.wrong_lane.update(tick, self.off_road_test.off_road),
            *self.yield_emergency.update(tick),
        ]
        if self.min_speed is not None:
            new += self.min_speed.update(tick)
        # The four ways a run ends; the first that fires ends it (`or` checks no further).
        ended = (
            self.progress.update(tick)
            or self.in_route.update(tick)
            or self.blocked.update(tick)
            or self.timeout.update(tick)
        )
        if ended:
            if self.min_speed is not None:
                new += self.min_speed.finish(tick)
            new += [*self.yield_emergency.finish(tick), *ended]
            self.done = True
        self.events += new
        return new

    def _tick(self, t_s, ego, s_m, d_m, actors, actor_s_m, actor_d_m) -> Tick:
        """The Tick of these states; counts the distance driven since the previous one."""
        x, y = float(ego.x_m), float(ego.y_m)
        step_m = 0.0 if self._prev_xy is None else math.hypot(x - self._prev_xy[0], y - self._prev_xy[1])
        self._prev_xy = (x, y)
        self.driven_distance_m += step_m
        rel = ego.yaw_rad - self.heading(s_m)
        return Tick(
            t_s, ego, float(ego.speed_mps), s_m, d_m, step_m, math.cos(rel), math.sin(rel),
            actors, actor_s_m, actor_d_m,
        )  # fmt: skip

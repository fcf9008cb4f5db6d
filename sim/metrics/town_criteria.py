"""The criteria of routes through towns (issue 12), as CARLA's leaderboard 2.0 runs them on every
route (leaderboard/scenarios/route_scenario.py, `_create_test_criteria`), read from
scenario_runner's srunner/scenariomanager/scenarioatomics/atomic_criteria.py (branch leaderboard-2.0):

    RunningRedLightTest     red_light when the ego's tail crosses the stop line of a red signal
    RunningStopTest         stop_sign when the ego enters a stop-sign junction without having stopped
    WrongLaneTest           wrong_way on entering a lane against traffic; the distance driven there
                            counts as outside the route lanes (OutsideRouteLanesTest)
    InRouteTest             route_deviation when the ego is too far from the route (ends the run)
    MinimumSpeedRouteTest   per checkpoint, the ego's mean speed as a % of the surrounding traffic's;
                            min_speed below 100 %
    YieldToEmergencyVehicleTest  yield_emergency_vehicle when an emergency vehicle close behind was
                            not let by in time (from its scenario, yield_to_emergency_vehicle.py)

They read the same `Tick` as the criteria of sim/metrics/criteria.py, with the route's
`JunctionCrossing`s (decision/route.py) for the stop lines and junction boxes, and cost next to
nothing on a route without junctions or oncoming lanes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from decision.route import Road, Route
from perception.types import VEHICLE
from sim.metrics.events import Event, EventKind

# RunningRedLightTest: the line crossing is tested with a segment behind the ego's centre, from 0.8
# of its half length to its half length + 1 m (its tail), so a car that stops a little over the line
# has not run the light: only the whole car past the line while red has.
TAIL_NEAR_FRACTION = 0.8
TAIL_FAR_EXTRA_M = 1.0
# RunningStopTest: PROXIMITY_THRESHOLD and SPEED_THRESHOLD.
STOP_PROXIMITY_M = 4.0  # a stop counts with the ego centre at most this far before the stop line [m]
STOP_SPEED_MPS = 0.1  # below this the ego has stopped [m/s]
# InRouteTest(offroad_max=30) in route_scenario.py; offroad_min defaults to half of it.
ROUTE_MAX_DISTANCE_M = 30.0  # this far from the route ends the run at once [m]
ROUTE_SAFE_DISTANCE_M = 15.0  # beyond this, the progress made counts as out of the route [m]
MAX_OUT_OF_ROUTE_PCT = 30.0  # MAX_ROUTE_PERCENTAGE: out-of-route progress that ends the run [% of route]
# MinimumSpeedRouteTest(checkpoints=4) in route_scenario.py; the last checkpoint is closed at the end
# of the run when more than 95 % of the route is done.
MIN_SPEED_CHECKPOINTS = 4
FINAL_CHECKPOINT_FRACTION = 0.95
MIN_SPEED_SUCCESS_PCT = 100.0  # success_value: a checkpoint below it is a min_speed infraction
# "Surrounding traffic": the leaderboard averages the speeds of the background vehicles, which its
# BackgroundBehavior (srunner/scenarios/background_activity.py) keeps within a radius of the ego:
# (road_front_vehicles 2 + 1) x road_spawn_dist 15 m, + 1.7 m per m/s of ego speed.
SURROUNDING_RADIUS_M = 45.0
SURROUNDING_RADIUS_PER_MPS = 1.7
# YieldToEmergencyVehicle: its trigger distance, then the time the ego has to let the vehicle by.
EMERGENCY_TRIGGER_M = 50.0
EMERGENCY_IDLE_S = 10.0
NO_EVENTS: tuple[Event, ...] = ()

SignalState = Callable[[int, float], str]  # (signal id, t_s) -> "green" | "yellow" | "red"


def junction_spans(route: Route) -> np.ndarray:
    """(J, 2) [start, end] s of the stretches where driving against traffic is not counted: the
    route's junction boxes, and its pass zones (where a scenario lets the ego pass an obstruction
    through the oncoming lane, as CARLA's TwoWays scenarios switch the wrong-direction test off with
    SwitchWrongDirectionTest)."""
    spans = [(j.entry_s_m, j.exit_s_m) for j in route.junctions] + list(route.pass_zones)
    return np.array(spans, float).reshape(-1, 2)


def against_traffic(road: Road, spans: np.ndarray, s_m, d_m) -> np.ndarray | bool:
    """Whether the ego centre at (s, d) is in a lane against traffic: an oncoming lane of a two-way
    road, on the road, outside the junction boxes (`spans` (J, 2), as CARLA's OutsideRouteLanesTest
    and WrongLaneTest skip junctions: "lanes and roads are too chaotic at junctions"). Shaped like s."""
    s, d = np.asarray(s_m, float), np.asarray(d_m, float)
    if road.oncoming_lanes == 0:
        out = np.zeros(np.broadcast(s, d).shape, bool)
    else:
        out = np.asarray(road.is_oncoming(road.lane_at(d))) & (np.abs(d) <= road.half_width_m)
        for entry, exit_ in spans:
            out &= ~((s >= entry) & (s <= exit_))
    return bool(out) if out.ndim == 0 else out


def wrong_lane_distance_m(ticks: dict[str, np.ndarray], route: Route) -> float:
    """Distance [m] driven against traffic over a run's ticks (t_s, x_m, y_m, s_m, d_m arrays (T,)):
    each step between ticks counts with the state at its end, as `WrongLaneTest` counts it."""
    s, d = np.asarray(ticks["s_m"], float), np.asarray(ticks["d_m"], float)
    if len(s) < 2 or route.road.oncoming_lanes == 0:
        return 0.0
    steps = np.hypot(np.diff(ticks["x_m"]), np.diff(ticks["y_m"]))
    return float(steps[against_traffic(route.road, junction_spans(route), s[1:], d[1:])].sum())


class RunningRedLightTest:
    """red_light when the ego, heading along its route, crosses the stop line of a signalised junction
    crossing while its signal is red (yellow is no infraction). At most one event per crossing.

    As CARLA's RunningRedLightTest, the crossing is the segment behind the ego centre, from
    TAIL_NEAR_FRACTION of the half length to the half length + TAIL_FAR_EXTRA_M, meeting the stop
    line: the tail passes the line while the light is red. Here along s, and swept since the
    previous tick, so that no line is stepped over between two ticks.
    signal_state: (signal id, t_s) -> state; None (no signals) turns the test off.
    """

    def __init__(self, route: Route, ego_length_m: float, signal_state: SignalState | None):
        half_length_m = 0.5 * float(ego_length_m)
        self._tail_near_m = TAIL_NEAR_FRACTION * half_length_m
        self._tail_far_m = half_length_m + TAIL_FAR_EXTRA_M
        self.signal_state = signal_state
        self._crossings = [j for j in route.junctions if j.control == "signal" and j.signal_id >= 0]
        self.reset()

    def reset(self) -> None:
        self._prev_tail_s: float | None = None
        self._ran: set[int] = set()  # indices of the crossings already reported

    def update(self, tick) -> list[Event] | tuple[()]:
        if not self._crossings or self.signal_state is None:
            return NO_EVENTS
        tail_near_s = tick.s_m - self._tail_near_m
        low_s = tick.s_m - self._tail_far_m
        if self._prev_tail_s is not None:
            low_s = min(low_s, self._prev_tail_s)
        self._prev_tail_s = tail_near_s
        if tick.cos_rel <= 0.0:  # backwards along the route: CARLA checks the ego's direction too
            return NO_EVENTS
        out = []
        for k, j in enumerate(self._crossings):
            if k in self._ran or not low_s < j.stop_s_m <= tail_near_s:
                continue
            if self.signal_state(j.signal_id, tick.t_s) == "red":
                self._ran.add(k)
                detail = f"junction {j.junction_id}, signal {j.signal_id}"
                out.append(Event(tick.t_s, EventKind.RED_LIGHT, detail=detail, speed_mps=tick.speed_mps))
        return out


class RunningStopTest:
    """stop_sign when the ego's front enters the junction box of a stop-sign crossing without having
    stopped (speed below STOP_SPEED_MPS) with its centre within STOP_PROXIMITY_M before the stop line
    or past it (CARLA's RunningStopTest: the stop counts while the stop's trigger volume, at the stop
    line, is within PROXIMITY_THRESHOLD of the ego). At most one event per crossing."""

    def __init__(self, route: Route, ego_length_m: float):
        self._half_length_m = 0.5 * float(ego_length_m)
        self._crossings = [j for j in route.junctions if j.control == "stop"]
        self.reset()

    def reset(self) -> None:
        self._next = 0  # the next stop-sign crossing along the route
        self._stopped = False

    def update(self, tick) -> list[Event] | tuple[()]:
        if self._next >= len(self._crossings):
            return NO_EVENTS
        j = self._crossings[self._next]
        if tick.s_m >= j.stop_s_m - STOP_PROXIMITY_M and tick.speed_mps < STOP_SPEED_MPS:
            self._stopped = True
        if tick.s_m + self._half_length_m < j.entry_s_m:
            return NO_EVENTS
        ran = not self._stopped and tick.cos_rel > 0.0
        self._next, self._stopped = self._next + 1, False
        if not ran:
            return NO_EVENTS
        detail = f"junction {j.junction_id}"
        return [Event(tick.t_s, EventKind.STOP_SIGN, detail=detail, speed_mps=tick.speed_mps)]


class WrongLaneTest:
    """wrong_way when the ego centre enters a lane against traffic (`against_traffic`), an
    informational event like lane_invasion; `distance_m` sums the distance driven there while not off
    the road (the off-road distance counts already). The leaderboard counts this distance as outside
    the route lanes (OutsideRouteLanesTest: "either on a sidewalk or at a wrong lane"), so an
    overtaking manoeuvre through the oncoming lane costs its share of the route."""

    def __init__(self, route: Route):
        self.road = route.road
        self._spans = junction_spans(route)
        self._active = route.road.oncoming_lanes > 0
        self.reset()

    def reset(self) -> None:
        self.against = False
        self.distance_m = 0.0

    def update(self, tick, off_road: bool) -> list[Event] | tuple[()]:
        if not self._active:
            return NO_EVENTS
        was, self.against = self.against, bool(against_traffic(self.road, self._spans, tick.s_m, tick.d_m))
        if not self.against:
            return NO_EVENTS
        if not off_road:
            self.distance_m += tick.step_m
        if was:
            return NO_EVENTS
        lane = int(self.road.lane_at(tick.d_m))
        return [Event(tick.t_s, EventKind.WRONG_WAY, detail=f"lane {lane}", speed_mps=tick.speed_mps)]


class InRouteTest:
    """route_deviation (ends the run) when the ego centre is ROUTE_MAX_DISTANCE_M or more from the
    route, or when the progress it made more than ROUTE_SAFE_DISTANCE_M from it passes
    MAX_OUT_OF_ROUTE_PCT of the route (CARLA's InRouteTest with offroad_max 30 m).

    The route is the centre line of the route's lane in the corridor; the distance is measured in the
    Frenet frame (lateral offset, and how far s runs past either end of the corridor). A turn at a
    junction entered from another lane than the route's misses the route too (a street with several
    lanes each way: its exit, as in CARLA's HighwayExit, is taken from the route's lane only)."""

    def __init__(self, route: Route):
        road = route.road
        self.road, self.route_lane = road, route.lane
        self.turn_entries_m = [j.entry_s_m for j in route.junctions if j.turn != "straight"]
        self.lane_d_m = float(road.lane_offset_m(route.lane))
        self.length_m = float(road.length_m)
        self.route_length_m = float(route.length_m)
        self.start_s_m = float(route.start_s_m)
        self.reset()

    def reset(self) -> None:
        self.out_of_route_m = 0.0
        self._max_s_m = self.start_s_m
        self._last_s_m = (
            self.start_s_m
        )  # s at the last tick (s runs faster than the ego off the reference line)

    def distance_m(self, s_m: float, d_m: float) -> float:
        """Distance [m] of the point (s, d) from the route's lane centre."""
        beyond_m = max(0.0, -s_m, s_m - self.length_m)
        return math.hypot(d_m - self.lane_d_m, beyond_m)

    def update(self, tick) -> list[Event] | tuple[()]:
        missed = self._missed_turn(tick)
        if missed:
            return [Event(tick.t_s, EventKind.ROUTE_DEVIATION, detail=missed, speed_mps=tick.speed_mps)]
        distance = self.distance_m(tick.s_m, tick.d_m)
        progress_m = max(tick.s_m - self._max_s_m, 0.0)
        self._max_s_m += progress_m
        if distance >= ROUTE_SAFE_DISTANCE_M:
            self.out_of_route_m += progress_m
        too_far = distance >= ROUTE_MAX_DISTANCE_M
        if not too_far and 100.0 * self.out_of_route_m <= MAX_OUT_OF_ROUTE_PCT * self.route_length_m:
            return NO_EVENTS
        detail = f"{distance:.1f} m from the route, {self.out_of_route_m:.1f} m of progress off it"
        return [Event(tick.t_s, EventKind.ROUTE_DEVIATION, detail=detail, speed_mps=tick.speed_mps)]

    def _missed_turn(self, tick) -> str:
        """Why the turn the ego enters now misses the route ("": it does not)."""
        last, self._last_s_m = self._last_s_m, tick.s_m
        if self.road.own_lanes < 2:
            return ""
        for entry in self.turn_entries_m:
            if last < entry <= tick.s_m:
                lane = int(self.road.lane_at(tick.d_m))
                if lane != self.route_lane:
                    return f"turned from lane {lane}, the route's turn is from lane {self.route_lane}"
        return ""


class MinimumSpeedRouteTest:
    """The leaderboard 2.0 MinimumSpeedRouteTest: the route is cut into `checkpoints` stretches of
    equal length; over each, the ego's mean speed as a percentage of the mean speed of the
    surrounding traffic, averaged over the ticks that have any (100 when none has).

    Surrounding traffic: the vehicles (`traffic` (N,) bool picks them; default every VEHICLE actor,
    as the background vehicles of CARLA) within SURROUNDING_RADIUS_M + SURROUNDING_RADIUS_PER_MPS x
    ego speed of the ego; their mean |speed| is one sample per tick. A stretch closes when the
    progress since the last close passes its length (the leaderboard's test, before it samples the
    tick), and at the end of the run (`finish`) when more than 95 % of the route is done.

    Every checkpoint gives a speed_checkpoint event (informational: Bench2Drive's efficiency averages
    them) and, below 100 % and with `penalise`, a min_speed event; both carry the percentage as
    `value`. `pcts` lists the checkpoints' percentages.
    """

    def __init__(
        self,
        route: Route,
        checkpoints: int = MIN_SPEED_CHECKPOINTS,
        penalise: bool = True,
        traffic: np.ndarray | None = None,
    ):
        self.start_s_m = float(route.start_s_m)
        self.route_length_m = float(route.length_m)
        self.checkpoint_m = self.route_length_m / max(int(checkpoints), 1)
        self.penalise = bool(penalise)
        self.traffic = None if traffic is None else np.asarray(traffic, bool)
        self.reset()

    def reset(self) -> None:
        self.pcts: list[float] = []
        self._progress_m = 0.0  # furthest progress along the route
        self._closed_at_m = 0.0  # progress at the last checkpoint
        self._ego_sum_mps = self._traffic_sum_mps = 0.0
        self._samples = 0

    def update(self, tick) -> list[Event]:
        self._progress_m = max(self._progress_m, tick.s_m - self.start_s_m)
        out = []
        if self._progress_m - self._closed_at_m > self.checkpoint_m:
            out = self._close(tick)
        self._sample(tick)
        return out

    def finish(self, tick) -> list[Event]:
        """The last checkpoint, at the end of the run: closed when more than 95 % of the route is done
        and the ego has made progress since the previous one."""
        done = self._progress_m > FINAL_CHECKPOINT_FRACTION * self.route_length_m
        return self._close(tick) if done and self._progress_m > self._closed_at_m else []

    def _sample(self, tick) -> None:
        actors = tick.actors
        if not len(actors.ids):
            return
        near = actors.class_ids == VEHICLE if self.traffic is None else self.traffic.copy()
        radius_m = SURROUNDING_RADIUS_M + SURROUNDING_RADIUS_PER_MPS * tick.speed_mps
        offset = actors.xy_m - (tick.ego.x_m, tick.ego.y_m)
        near &= np.einsum("ij,ij->i", offset, offset) <= radius_m * radius_m
        if near.any():
            self._traffic_sum_mps += float(np.abs(actors.speed_mps[near]).mean())
            self._ego_sum_mps += float(tick.speed_mps)
            self._samples += 1

    def _close(self, tick) -> list[Event]:
        if self._samples and self._traffic_sum_mps > 0.0:
            pct = round(100.0 * self._ego_sum_mps / self._traffic_sum_mps, 2)  # the means' ratio
        else:
            pct = MIN_SPEED_SUCCESS_PCT
        self.pcts.append(pct)
        self._closed_at_m = self._progress_m
        self._ego_sum_mps = self._traffic_sum_mps = 0.0
        self._samples = 0
        detail = f"{pct:.2f} % of the surrounding traffic's speed"
        out = [
            Event(tick.t_s, EventKind.SPEED_CHECKPOINT, detail=detail, speed_mps=tick.speed_mps, value=pct)
        ]
        if self.penalise and pct < MIN_SPEED_SUCCESS_PCT:
            out.append(
                Event(tick.t_s, EventKind.MIN_SPEED, detail=detail, speed_mps=tick.speed_mps, value=pct)
            )
        return out


class YieldToEmergencyVehicleTest:
    """yield_emergency_vehicle when the ego has not let an emergency vehicle by in time, as CARLA's
    YieldToEmergencyVehicle scenario (srunner/scenarios/yield_to_emergency_vehicle.py) and its
    YieldToEmergencyVehicleTest criterion judge it: once the emergency vehicle has come within
    EMERGENCY_TRIGGER_M of the ego, the ego has EMERGENCY_IDLE_S to get out of its way; the vehicle is
    let by when the ego lies behind it along its heading. One event per emergency vehicle not let by
    when that time is up, or when the run ends first.

    emergency: (N,) bool, the actors that are emergency vehicles (`Actors.emergency`).
    """

    def __init__(self, emergency: np.ndarray):
        self._rows = np.flatnonzero(emergency)
        self.reset()

    def reset(self) -> None:
        self._since = np.full(self._rows.size, np.nan)  # when each came within reach of the ego
        self._settled = np.zeros(self._rows.size, bool)  # let by, or reported

    def update(self, tick) -> list[Event] | tuple[()]:
        if self._settled.all():
            return NO_EVENTS
        behind = self._ego_ahead(tick)
        a, ego = tick.actors, tick.ego
        near = (
            np.hypot(a.xy_m[self._rows, 0] - ego.x_m, a.xy_m[self._rows, 1] - ego.y_m) < EMERGENCY_TRIGGER_M
        )
        self._since = np.where(np.isnan(self._since) & near, tick.t_s, self._since)
        self._settled |= ~np.isnan(self._since) & ~behind  # it got past the ego
        late = ~self._settled & (tick.t_s - self._since >= EMERGENCY_IDLE_S)
        return self._report(late, tick, f"held up for {EMERGENCY_IDLE_S:.0f} s")

    def finish(self, tick) -> list[Event] | tuple[()]:
        """At the end of the run: the emergency vehicles within reach and not yet let by."""
        return self._report(~self._settled & ~np.isnan(self._since), tick, "not let by before the run ended")

    def _ego_ahead(self, tick) -> np.ndarray:
        """(K,) whether the ego lies ahead of each emergency vehicle along its heading."""
        a, ego = tick.actors, tick.ego
        rows = self._rows
        dx, dy = ego.x_m - a.xy_m[rows, 0], ego.y_m - a.xy_m[rows, 1]
        return np.cos(a.yaw_rad[rows]) * dx + np.sin(a.yaw_rad[rows]) * dy > 0.0

    def _report(self, which: np.ndarray, tick, detail: str) -> list[Event] | tuple[()]:
        if not which.any():
            return NO_EVENTS
        self._settled |= which
        ids = tick.actors.ids[self._rows[which]]
        kind = EventKind.YIELD_EMERGENCY_VEHICLE
        return [Event(tick.t_s, kind, int(i), f"emergency vehicle {detail}", tick.speed_mps) for i in ids]

"""Closed-loop scores as pure functions of the events and the per-tick states of a run.

Which coefficients a score uses is named in its function and in its output (`version`):
- CARLA leaderboard 2.0 (carla-simulator/leaderboard, leaderboard/utils/statistics_manager.py):
  DS = 100 x RC x P, P multiplied per infraction (pedestrian 0.5, vehicle 0.6, static 0.65, red
  light 0.7, stop sign 0.8, not yielding to an emergency vehicle 0.7), per minimum-speed checkpoint
  below 100 % by 1 - 0.3 (1 - pct/100), and by (1 - fraction of the driven distance outside the
  route lanes: off the road or against traffic).
  Timeout, blocked and route deviation end the route without a multiplier: the route completion
  carries them.
- CARLA leaderboard 2.1 (branch leaderboard-2.1), for comparison: P = (1 - outside) / (1 + sum w),
  w pedestrian 1.0, vehicle 0.7, static 0.6, red light 0.4, stop sign 0.25, yield to emergency
  vehicle 0.4, minimum speed 0.4 (1 - pct/100) per checkpoint.
- nuPlan closed-loop terms (nuplan-devkit metrics): comfort bounds, speed-limit compliance,
  time-to-collision bound, driving-direction compliance, and the closed-loop score built from them
  (closed_loop_reactive_agents_weighted_average.yaml): product of multipliers x weighted average.
  nuPlan has no traffic-light or stop-sign metric; so that this scorer sees them too, a
  `traffic_rule_compliance` multiplier is 0 after a red_light, stop_sign or yield_emergency_vehicle
  event (ours, not nuPlan's).
- Bench2Drive (sim/metrics/bench2drive.py): success, efficiency and smoothness of the run.

`SCORERS` names where each score's headline (0-100) sits in the metrics dict of `summarize`;
`score_of` reads it, so that reports can be made with any of them.

All outputs are JSON-ready (Python floats, ints, bools, strings). Non-finite numbers become
None (JSON null): e.g. `min_ttc_s` is null when nothing ever closed in on the ego.
"""

from __future__ import annotations

import math

import numpy as np

from decision.route import Route
from perception.files import json_safe
from sim.metrics.bench2drive import bench2drive_metrics
from sim.metrics.criteria import STILL_SPEED_MPS
from sim.metrics.events import COLLISION_KINDS, EVENT_KINDS, RULE_KINDS, Event, EventKind
from sim.metrics.town_criteria import against_traffic, junction_spans, wrong_lane_distance_m

CARLA_V2_0 = "carla-leaderboard-2.0"
CARLA_V2_1 = "carla-leaderboard-2.1"
NUPLAN_CLS = "nuplan-closed-loop-weighted-average"
PENALTY_V2_0 = {
    EventKind.COLLISION_PEDESTRIAN: 0.5,
    EventKind.COLLISION_VEHICLE: 0.6,
    EventKind.COLLISION_STATIC: 0.65,
    EventKind.RED_LIGHT: 0.7,
    EventKind.STOP_SIGN: 0.8,
    EventKind.YIELD_EMERGENCY_VEHICLE: 0.7,
}
MIN_SPEED_PENALTY_V2_0 = 0.7  # PENALTY_PERC_DICT "decreases": x (1 - (1 - 0.7) (1 - pct/100))
WEIGHT_V2_1 = {
    EventKind.COLLISION_PEDESTRIAN: 1.0,
    EventKind.COLLISION_VEHICLE: 0.7,
    EventKind.COLLISION_STATIC: 0.6,
    EventKind.RED_LIGHT: 0.4,
    EventKind.STOP_SIGN: 0.25,
    EventKind.YIELD_EMERGENCY_VEHICLE: 0.4,
}
MIN_SPEED_WEIGHT_V2_1 = 0.4  # weight 0.4 (1 - pct/100) per min_speed event

# nuPlan comfort bounds (ego_*_acceleration / jerk / yaw_rate metrics).
LON_ACCEL_MIN_MPS2 = -4.05
LON_ACCEL_MAX_MPS2 = 2.40
LAT_ACCEL_MAX_MPS2 = 4.89
JERK_MAX_MPS3 = 8.37
YAW_RATE_MAX_RADPS = 0.95
# nuPlan's Savitzky-Golay smoothing (state_extractors.py): order 2, windows of 8 (acceleration),
# 15 (jerk) and 5 (yaw rate) samples of its 0.1 s step, kept here as durations for any tick rate
# (in samples, the odd number nearest: savgol_window).
SAVGOL_ORDER = 2
ACCEL_WINDOW_S = 0.8
JERK_WINDOW_S = 1.5
YAW_RATE_WINDOW_S = 0.5
MAX_OVERSPEED_MPS = 2.23  # nuPlan speed-limit compliance normaliser
TTC_BOUND_S = 0.95  # nuPlan time-to-collision-within-bound threshold
PER_KM_KINDS = (*COLLISION_KINDS, EventKind.OFF_ROAD, EventKind.LANE_INVASION, *RULE_KINDS)
# nuPlan closed-loop score: weights of the weighted average, and the making-progress threshold.
NUPLAN_WEIGHTS = {"progress": 5.0, "ttc_within_bound": 5.0, "speed_limit_compliance": 4.0, "comfortable": 2.0}
NUPLAN_MIN_PROGRESS = 0.2
# nuPlan driving-direction compliance: progress against traffic within a 1 s window.
DIRECTION_WINDOW_S = 1.0
DIRECTION_COMPLIANCE_M = 2.0  # up to this: compliant (1)
DIRECTION_VIOLATION_M = 6.0  # beyond this: a violation (0); in between 0.5
# Where each scorer's headline score (0-100) sits in the metrics dict of `summarize`.
SCORERS = {
    CARLA_V2_0: ("driving_score",),
    CARLA_V2_1: ("carla_v2_1", "driving_score"),
    NUPLAN_CLS: ("nuplan", "score"),
}


def _num(x) -> float | None:
    """A JSON-safe float: None for inf/nan."""
    x = float(x)
    return x if math.isfinite(x) else None


def _min_speed_shortfall(e: Event) -> float:
    """1 - pct/100 of a min_speed event, in [0, 1] (0 for any other event)."""
    if e.kind != EventKind.MIN_SPEED or e.value is None:
        return 0.0
    return float(np.clip(1.0 - e.value / 100.0, 0.0, 1.0))


def count_events(events: list[Event]) -> dict[str, int]:
    """Number of events of every kind (all kinds present, in EVENT_KINDS order)."""
    counts = dict.fromkeys(EVENT_KINDS, 0)
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return counts


def route_completion(max_s_m: float, route: Route) -> float:
    """Fraction of the route done, in [0, 1], from the furthest s reached."""
    if not math.isfinite(max_s_m):
        return 0.0
    return route.completion(max_s_m)


# ---------------------------------------------------------------------------- CARLA
def carla_driving_score_v2_0(
    route_completion: float, events: list[Event], outside_lanes_fraction: float
) -> dict:
    """CARLA leaderboard 2.0 driving score of one route.

    route_completion: fraction in [0, 1]; outside_lanes_fraction: fraction of the driven distance
    spent outside the lanes, in [0, 1]. Returns version, driving_score [0-100],
    route_completion [percent], infraction_penalty, outside_lanes_pct and counts per kind.
    """
    rc = float(np.clip(route_completion, 0.0, 1.0))
    outside = float(np.clip(outside_lanes_fraction, 0.0, 1.0))
    penalty = 1.0
    for e in events:
        penalty *= PENALTY_V2_0.get(e.kind, 1.0)
        penalty *= 1.0 - (1.0 - MIN_SPEED_PENALTY_V2_0) * _min_speed_shortfall(e)
    penalty *= 1.0 - outside
    return {
        "version": CARLA_V2_0,
        "driving_score": 100.0 * max(rc * penalty, 0.0),
        "route_completion": 100.0 * rc,
        "infraction_penalty": penalty,
        "outside_lanes_pct": 100.0 * outside,
        "counts": count_events(events),
    }


def carla_driving_score_v2_1(
    route_completion: float, events: list[Event], outside_lanes_fraction: float
) -> dict:
    """CARLA leaderboard 2.1 driving score: P = (1 - outside) / (1 + sum of infraction weights)."""
    rc = float(np.clip(route_completion, 0.0, 1.0))
    outside = float(np.clip(outside_lanes_fraction, 0.0, 1.0))
    weights = sum(
        WEIGHT_V2_1.get(e.kind, 0.0) + MIN_SPEED_WEIGHT_V2_1 * _min_speed_shortfall(e) for e in events
    )
    penalty = (1.0 - outside) / (1.0 + weights)
    return {
        "version": CARLA_V2_1,
        "driving_score": 100.0 * max(rc * penalty, 0.0),
        "route_completion": 100.0 * rc,
        "infraction_penalty": penalty,
        "outside_lanes_pct": 100.0 * outside,
    }


# ---------------------------------------------------------------------------- nuPlan terms
def savgol_window(window_s: float, dt_s: float, n: int) -> int:
    """The odd number of samples nearest a `window_s` window at a `dt_s` step, at least 1 and at most
    the `n` samples there are (nuPlan takes min(window_length, len(signal)) too).

    Odd, so that the filter is centred on its sample: scipy centres an even window between two
    samples, which shifts the smoothed signal by half a step (and makes a step in it where the
    ends, fitted at the samples, meet the middle)."""
    window = 2 * math.floor((window_s / dt_s - 1.0) / 2.0 + 0.5) + 1  # halves round up
    window = max(1, min(window, n))
    return window if window % 2 else window - 1


def savgol(x: np.ndarray, window_s: float, dt_s: float, deriv: int = 0) -> np.ndarray:
    """The Savitzky-Golay filter of nuPlan's comfort metrics over `window_s` (its polynomial order
    SAVGOL_ORDER, lower when the run has fewer samples than that needs), or its `deriv`-th
    derivative [per s^deriv]. x: (T,) samples `dt_s` apart; the ends are fitted, not padded (mode "interp")."""
    from scipy.signal import savgol_filter  # here: scipy.signal takes ~0.5 s to import, paid by scoring only

    window = savgol_window(window_s, dt_s, len(x))
    return savgol_filter(x, window, min(SAVGOL_ORDER, window - 1), deriv=deriv, delta=dt_s)


def comfort(
    t_s: np.ndarray, accel_mps2: np.ndarray, speed_mps: np.ndarray, yaw_rate_radps: np.ndarray
) -> dict:
    """nuPlan comfort of a run. All inputs (T,), t_s increasing and (near) uniform.

    As in nuplan-devkit (nuplan/planning/metrics/utils/state_extractors.py), the signals are
    smoothed by Savitzky-Golay filters of order 2 before they are compared with the bounds:
    acceleration over ACCEL_WINDOW_S, jerk = the filter's first derivative (over JERK_WINDOW_S) of
    the smoothed acceleration, yaw rate over YAW_RATE_WINDOW_S; lateral acceleration = speed x yaw
    rate, smoothed as the acceleration. (nuPlan differentiates the heading for the yaw rate; our
    ego reports its yaw rate, which is smoothed instead.) Returns the extremes, the fraction of
    ticks within each bound (`within`), the bounds, and `comfortable` (every tick within every
    bound). Ticks with a non-finite value are left out.
    """
    t, accel_mps2, speed_mps, yaw_rate_radps = (
        np.asarray(a, dtype=float) for a in (t_s, accel_mps2, speed_mps, yaw_rate_radps)
    )
    finite = np.isfinite(t) & np.isfinite(accel_mps2) & np.isfinite(speed_mps) & np.isfinite(yaw_rate_radps)
    if not finite.all():  # ticks without a value (e.g. no acceleration estimate yet) are left out
        t, accel_mps2, speed_mps, yaw_rate_radps = (
            a[finite] for a in (t, accel_mps2, speed_mps, yaw_rate_radps)
        )
    if len(t) == 0:
        return _comfort_result(*(np.zeros(1),) * 4)
    dt = float(np.mean(np.diff(t))) if len(t) > 1 else 1.0
    acc = savgol(accel_mps2, ACCEL_WINDOW_S, dt)
    jerk = savgol(acc, JERK_WINDOW_S, dt, deriv=1)
    yaw_rate = savgol(yaw_rate_radps, YAW_RATE_WINDOW_S, dt)
    lat = savgol(speed_mps * yaw_rate_radps, ACCEL_WINDOW_S, dt)
    return _comfort_result(acc, jerk, lat, yaw_rate)


def _comfort_result(acc: np.ndarray, jerk: np.ndarray, lat: np.ndarray, yaw_rate: np.ndarray) -> dict:
    """The comfort dict of smoothed (T,) signals: extremes, fractions within the bounds, bounds."""
    within = {
        "lon_accel": float(np.mean((acc >= LON_ACCEL_MIN_MPS2) & (acc <= LON_ACCEL_MAX_MPS2))),
        "lat_accel": float(np.mean(np.abs(lat) <= LAT_ACCEL_MAX_MPS2)),
        "jerk": float(np.mean(np.abs(jerk) <= JERK_MAX_MPS3)),
        "yaw_rate": float(np.mean(np.abs(yaw_rate) <= YAW_RATE_MAX_RADPS)),
    }
    return {
        "comfortable": all(v == 1.0 for v in within.values()),
        "lon_accel_min_mps2": float(acc.min()),
        "lon_accel_max_mps2": float(acc.max()),
        "lat_accel_max_abs_mps2": float(np.abs(lat).max()),
        "jerk_max_abs_mps3": float(np.abs(jerk).max()),
        "yaw_rate_max_abs_radps": float(np.abs(yaw_rate).max()),
        "within": within,
        "bounds": {
            "lon_accel_min_mps2": LON_ACCEL_MIN_MPS2,
            "lon_accel_max_mps2": LON_ACCEL_MAX_MPS2,
            "lat_accel_max_abs_mps2": LAT_ACCEL_MAX_MPS2,
            "jerk_max_abs_mps3": JERK_MAX_MPS3,
            "yaw_rate_max_abs_radps": YAW_RATE_MAX_RADPS,
        },
        "smoothing": {
            "filter": f"savitzky-golay order {SAVGOL_ORDER}",
            "accel_window_s": ACCEL_WINDOW_S,
            "jerk_window_s": JERK_WINDOW_S,
            "yaw_rate_window_s": YAW_RATE_WINDOW_S,
        },
    }


def speed_limit_compliance(t_s: np.ndarray, speed_mps: np.ndarray, speed_limit_mps) -> float:
    """nuPlan: max(0, 1 - integral of overspeed dt / (MAX_OVERSPEED_MPS x duration)), in [0, 1].

    speed_limit_mps: (T,) or a scalar. Trapezoidal integral over the tick times.
    """
    t = np.asarray(t_s, dtype=float)
    if len(t) < 2:
        return 1.0
    over = np.maximum(np.asarray(speed_mps, dtype=float) - np.asarray(speed_limit_mps, dtype=float), 0.0)
    over = np.broadcast_to(over, t.shape)
    violation = float(np.sum(0.5 * (over[1:] + over[:-1]) * np.diff(t)))
    duration = float(t[-1] - t[0])
    if duration <= 0.0:
        return 1.0
    return max(0.0, 1.0 - violation / (MAX_OVERSPEED_MPS * duration))


def driving_direction_compliance(ticks: dict[str, np.ndarray], route: Route) -> float:
    """nuPlan's driving-direction compliance {0, 0.5, 1}: the most progress made against traffic
    (along s while in an oncoming lane, outside the junction boxes: `against_traffic`) within any
    DIRECTION_WINDOW_S; 1 up to DIRECTION_COMPLIANCE_M, 0 beyond DIRECTION_VIOLATION_M, else 0.5.
    ticks: (T,) arrays t_s, s_m, d_m. Always 1 on a one-way road."""
    t, s, d = (np.asarray(ticks[k], float) for k in ("t_s", "s_m", "d_m"))
    if len(t) < 2 or route.road.oncoming_lanes == 0:
        return 1.0
    against = against_traffic(route.road, junction_spans(route), s[1:], d[1:])
    progress = np.concatenate([[0.0], np.cumsum(np.where(against, np.maximum(np.diff(s), 0.0), 0.0))])
    start = np.searchsorted(t, t - DIRECTION_WINDOW_S - 1e-9)  # the tick a window before each tick
    worst_m = float(np.max(progress - progress[start]))
    if worst_m <= DIRECTION_COMPLIANCE_M:
        return 1.0
    return 0.5 if worst_m <= DIRECTION_VIOLATION_M else 0.0


def nuplan_score(
    route_completion: float,
    events: list[Event],
    ttc_within_bound: bool,
    speed_limit_compliance: float,
    comfortable: bool,
    driving_direction: float = 1.0,
) -> dict:
    """nuPlan closed-loop score of one run: 100 x (product of multipliers) x (weighted average).

    nuplan-devkit closed_loop_reactive_agents_weighted_average.yaml, with these approximations:
    - no at-fault collision {0, 0.5, 1}: a collision is at fault when the ego moved at it
      (speed_mps > STILL_SPEED_MPS; nuPlan never blames a stationary ego). 0 for an at-fault hit on a
      vehicle or pedestrian or on more than one object (distinct actor ids), 0.5 for one static object.
    - drivable-area compliance {0, 1}: 0 after any off_road event (a corner > 0.3 m beyond the edge).
    - making progress {0, 1}: progress ratio >= 0.2. We have no expert route, so the progress
      ratio is the route completion; it is also the progress term of the weighted average.
    - driving-direction compliance {0, 0.5, 1}: `driving_direction` (driving_direction_compliance),
      1 on one-way roads.
    - traffic-rule compliance {0, 1} (ours: nuPlan has no traffic-light or stop-sign metric): 0 after a
      red_light, stop_sign or yield_emergency_vehicle event, so that this scorer sees them as a hard failure, as nuPlan treats
      an at-fault collision.
    Weighted average: progress 5, TTC within bound 5 (1/0), speed-limit compliance 4, comfort 2 (1/0).
    """
    at_fault = [e for e in events if e.kind in COLLISION_KINDS and e.speed_mps > STILL_SPEED_MPS]
    objects = {e.actor_id for e in at_fault}
    if not at_fault:
        collision = 1.0
    elif len(objects) == 1 and all(e.kind == EventKind.COLLISION_STATIC for e in at_fault):
        collision = 0.5
    else:
        collision = 0.0
    progress = float(np.clip(route_completion, 0.0, 1.0))
    multipliers = {
        "no_at_fault_collision": collision,
        "drivable_area_compliance": 0.0 if any(e.kind == EventKind.OFF_ROAD for e in events) else 1.0,
        "making_progress": 1.0 if progress >= NUPLAN_MIN_PROGRESS else 0.0,
        "driving_direction_compliance": float(driving_direction),
        "traffic_rule_compliance": 0.0 if any(e.kind in RULE_KINDS for e in events) else 1.0,
    }
    terms = {
        "progress": progress,
        "ttc_within_bound": float(bool(ttc_within_bound)),
        "speed_limit_compliance": float(speed_limit_compliance),
        "comfortable": float(bool(comfortable)),
    }
    weighted = sum(NUPLAN_WEIGHTS[k] * v for k, v in terms.items()) / sum(NUPLAN_WEIGHTS.values())
    return {
        "version": NUPLAN_CLS,
        "score": 100.0 * math.prod(multipliers.values()) * weighted,
        "multipliers": multipliers,
        "terms": terms,
        "weighted_average": weighted,
    }


def score_of(metrics: dict, scorer: str) -> float:
    """The headline score (0-100) of `scorer` (a key of SCORERS) in a metrics dict of `summarize`."""
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; known: {', '.join(SCORERS)}")
    value = metrics
    for key in SCORERS[scorer]:
        value = value[key]
    return float(value)


# ---------------------------------------------------------------------------- the run
def outcome(events: list[Event]) -> str:
    """How the run ended: "completed", "route_deviation", "timeout" or "blocked" from the ending
    event; without one,
    "collision" if there was a collision (the runner stopped early), else "stopped"."""
    kinds = {e.kind for e in events}
    endings = {
        EventKind.ROUTE_COMPLETED: "completed",
        EventKind.ROUTE_DEVIATION: "route_deviation",
        EventKind.TIMEOUT: "timeout",
        EventKind.BLOCKED: "blocked",
    }
    for kind, name in endings.items():
        if kind in kinds:
            return name
    return "collision" if kinds & set(COLLISION_KINDS) else "stopped"


def summarize(
    ticks: dict[str, np.ndarray],
    events: list[Event],
    route: Route,
    off_road_distance_m: float,
    driven_distance_m: float,
) -> dict:
    """All scores of one run as one JSON-ready dict (deterministic; key order fixed).

    ticks: (T,) arrays t_s, x_m, y_m, yaw_rad, speed_mps, accel_mps2, yaw_rate_radps, s_m, d_m,
    ttc_s, speed_limit_mps. The headline `driving_score` (0-100, CARLA leaderboard 2.0) comes first;
    route completions are in percent. The outside-lanes fraction is the distance driven outside the
    route lanes (off the road, or against traffic on a two-way road: `wrong_lane_distance_m`,
    worked out from the ticks as the WrongLaneTest does) over the driven distance. Non-finite
    numbers are null (`min_ttc_s` null: nothing ever closed in). `carla_v2_1` and `nuplan` hold the
    other scores (see SCORERS), `bench2drive` the success, efficiency and smoothness of the run.
    """
    t = np.asarray(ticks["t_s"], dtype=float)
    s = np.asarray(ticks["s_m"], dtype=float)
    speed = np.asarray(ticks["speed_mps"], dtype=float)
    ttc = np.asarray(ticks["ttc_s"], dtype=float)
    rc = route_completion(float(s.max()) if len(s) else -math.inf, route)
    driven_m = float(driven_distance_m)
    wrong_lane_m = wrong_lane_distance_m(ticks, route)
    outside = (float(off_road_distance_m) + wrong_lane_m) / driven_m if driven_m > 0 else 0.0
    carla = carla_driving_score_v2_0(rc, events, outside)
    carla_21 = carla_driving_score_v2_1(rc, events, outside)
    counts = carla["counts"]
    km = driven_m / 1000.0
    per_km = {k: (counts[k] / km if km > 0 else None) for k in PER_KM_KINDS}
    min_ttc = float(ttc.min()) if len(ttc) else math.inf
    ride = comfort(t, ticks["accel_mps2"], speed, ticks["yaw_rate_radps"])
    speed_compliance = speed_limit_compliance(t, speed, ticks["speed_limit_mps"])
    ttc_ok = bool(min_ttc >= TTC_BOUND_S)
    ending = outcome(events)
    direction = driving_direction_compliance(ticks, route)
    summary = {
        "driving_score": carla["driving_score"],
        "scorer": CARLA_V2_0,
        "route_completion": carla["route_completion"],
        "infraction_penalty": carla["infraction_penalty"],
        "outcome": ending,
        "infractions": counts,
        "infractions_per_km": per_km,
        "outside_lanes_pct": carla["outside_lanes_pct"],
        "min_ttc_s": _num(min_ttc),
        "ttc_within_bound": ttc_ok,
        "comfort": ride,
        "speed_limit_compliance": speed_compliance,
        "duration_s": float(t[-1] - t[0]) if len(t) else 0.0,
        "distance_m": driven_m,
        "off_road_distance_m": float(off_road_distance_m),
        "wrong_lane_distance_m": wrong_lane_m,
        "mean_speed_mps": float(speed.mean()) if len(speed) else 0.0,
        "carla_v2_1": carla_21,
        "nuplan": nuplan_score(rc, events, ttc_ok, speed_compliance, ride["comfortable"], direction),
        "bench2drive": bench2drive_metrics(
            ticks, events, route, ending == "completed", carla["outside_lanes_pct"]
        ),
        "events": [e.to_dict() for e in events],
    }
    return json_safe(summary)

"""Bench2Drive's per-run metrics (Thinklab-SJTU/Bench2Drive, tools/ability_benchmark.py and
tools/efficiency_smoothness_benchmark.py): success, efficiency and smoothness, as pure functions of
a run's events and ticks.

- Success: the route completed with no infraction of any kind, the minimum-speed ones aside
  (`get_infraction_status` skips "min_speed_infractions"). For the traffic-sign ability a failed
  route still counts when the ego got past the first junction (completion beyond its entry + 8 m)
  with no red-light or stop-sign infraction.
- Efficiency: the ego's speed as a percentage of the surrounding traffic's at the minimum-speed
  checkpoints (the speed_checkpoint events), averaged; values above 1000 % are dropped as
  Bench2Drive drops them. Above 100 %: faster than traffic.
- Smoothness: the run cut into 2-second segments (20 samples at 10 Hz; an incomplete last one is
  dropped; a run no longer than one segment is one segment); each signal smoothed with a
  Savitzky-Golay filter (window 7, order 2), the jerks its first derivative; a segment is comfortable
  when every bound below holds throughout (nuPlan's comfort bounds, open intervals). Smoothness is
  the fraction of comfortable segments.

Our ticks run at the control rate; they are taken every `round(0.1 s / dt)` ticks to make
Bench2Drive's 10 Hz. Lateral acceleration is speed x yaw rate (the ego reports its yaw rate), the
acceleration magnitude hypot(longitudinal, lateral). Bench2Drive's code smooths the yaw rate where it
names the yaw acceleration; here the yaw acceleration is the filter's derivative of the yaw rate, as
the bound is defined (/work/shared/REFERENCES.md).
"""

from __future__ import annotations

import math

import numpy as np

from decision.route import Route
from sim.metrics.events import COLLISION_KINDS, RULE_KINDS, TRAFFIC_RULE_KINDS, Event, EventKind

ABILITIES = ("merging", "overtaking", "emergency_brake", "give_way", "traffic_signs")
# Infractions that fail a route (Bench2Drive: every leaderboard infraction but min speed). Off road
# and driving against traffic make the leaderboard's outside-route-lanes infraction (outside_lanes_pct).
FAILING_KINDS = (
    *COLLISION_KINDS,
    *RULE_KINDS,
    EventKind.ROUTE_DEVIATION,
    EventKind.BLOCKED,
    EventKind.TIMEOUT,
)
JUNCTION_MARGIN_M = 8.0  # ability_benchmark.py: junction_completion = (count + 8) / len(route), 1 m waypoints
MAX_EFFICIENCY_PCT = 1000.0
SAMPLE_PERIOD_S = 0.1  # Bench2Drive's 10 Hz
SEGMENT_SAMPLES = 20  # per_step: 2 s
SAVGOL_WINDOW = 7
SAVGOL_ORDER = 2
BOUNDS = {  # name: (low, high), both exclusive
    "lon_accel_mps2": (-4.05, 2.40),
    "lat_accel_mps2": (-4.89, 4.89),
    "jerk_mps3": (-8.37, 8.37),
    "lon_jerk_mps3": (-4.13, 4.13),
    "yaw_accel_radps2": (-1.93, 1.93),
    "yaw_rate_radps": (-0.95, 0.95),
}


def success(completed: bool, events: list[Event], outside_lanes_pct: float) -> bool:
    """The route completed with no infraction (min speed aside): no collision, red light, stop sign,
    emergency vehicle not yielded to, deviation, blocked or timeout, and no distance outside the route lanes."""
    return bool(completed) and outside_lanes_pct <= 0.0 and not any(e.kind in FAILING_KINDS for e in events)


def traffic_signs_success(run_success: bool, events: list[Event], max_s_m: float, route: Route) -> bool:
    """Bench2Drive's traffic-sign success: the run's success, or past the first junction's entry +
    JUNCTION_MARGIN_M with no red-light or stop-sign infraction. A route without junctions: the
    run's success."""
    if run_success or not route.junctions:
        return bool(run_success)
    past = max_s_m > route.junctions[0].entry_s_m + JUNCTION_MARGIN_M
    return bool(past) and not any(e.kind in TRAFFIC_RULE_KINDS for e in events)


def efficiency_pct(events: list[Event]) -> float:
    """Mean of the speed checkpoints' percentages (<= 1000 %); nan without any."""
    values = [e.value for e in events if e.kind == EventKind.SPEED_CHECKPOINT and e.value is not None]
    values = [v for v in values if v <= MAX_EFFICIENCY_PCT]
    return float(np.mean(values)) if values else math.nan


def smoothness(
    t_s: np.ndarray, accel_mps2: np.ndarray, speed_mps: np.ndarray, yaw_rate_radps: np.ndarray
) -> float:
    """Fraction of comfortable 2 s segments of a run, (T,) signals at the control rate; nan when no
    tick has all its values."""
    t, acc, v, yaw_rate = (np.asarray(a, float) for a in (t_s, accel_mps2, speed_mps, yaw_rate_radps))
    finite = np.isfinite(t) & np.isfinite(acc) & np.isfinite(v) & np.isfinite(yaw_rate)
    t, acc, v, yaw_rate = t[finite], acc[finite], v[finite], yaw_rate[finite]
    if len(t) == 0:
        return math.nan
    dt = float(np.mean(np.diff(t))) if len(t) > 1 else SAMPLE_PERIOD_S
    stride = max(1, round(SAMPLE_PERIOD_S / dt))
    acc, v, yaw_rate = acc[::stride], v[::stride], yaw_rate[::stride]
    step_s = dt * stride
    if len(acc) <= SEGMENT_SAMPLES:
        return float(comfortable(acc, v * yaw_rate, yaw_rate, step_s))
    n = len(acc) // SEGMENT_SAMPLES
    ok = [
        comfortable(acc[sl], v[sl] * yaw_rate[sl], yaw_rate[sl], step_s)
        for sl in (slice(k * SEGMENT_SAMPLES, (k + 1) * SEGMENT_SAMPLES) for k in range(n))
    ]
    return float(np.mean(ok))


def comfortable(
    lon_mps2: np.ndarray, lat_mps2: np.ndarray, yaw_rate_radps: np.ndarray, step_s: float
) -> bool:
    """Whether one segment ((S,) samples `step_s` apart) keeps every bound of BOUNDS throughout."""
    from scipy.signal import savgol_filter  # here: scipy.signal takes ~0.5 s to import

    window = min(SAVGOL_WINDOW, len(lon_mps2))
    order = min(SAVGOL_ORDER, window - 1)  # a run of fewer samples than the window: a lower order

    def smooth(x: np.ndarray, deriv: int = 0) -> np.ndarray:
        return savgol_filter(x, window, order, deriv=deriv, delta=step_s)

    lon, lat = smooth(lon_mps2), smooth(lat_mps2)
    magnitude = smooth(np.hypot(lon_mps2, lat_mps2))
    signals = {
        "lon_accel_mps2": lon,
        "lat_accel_mps2": lat,
        "jerk_mps3": smooth(magnitude, 1),
        "lon_jerk_mps3": smooth(lon, 1),
        "yaw_accel_radps2": smooth(yaw_rate_radps, 1),
        "yaw_rate_radps": smooth(yaw_rate_radps),
    }
    return all(bool(np.all((x > BOUNDS[k][0]) & (x < BOUNDS[k][1]))) for k, x in signals.items())


def bench2drive_metrics(
    ticks: dict[str, np.ndarray], events: list[Event], route: Route, completed: bool, outside_lanes_pct: float
) -> dict:
    """The Bench2Drive metrics of one run: success, traffic_signs_success, efficiency_pct (nan
    without checkpoints), smoothness (nan without ticks)."""
    s = np.asarray(ticks["s_m"], float)
    run_success = success(completed, events, outside_lanes_pct)
    return {
        "success": run_success,
        "traffic_signs_success": traffic_signs_success(
            run_success, events, float(s.max()) if len(s) else -math.inf, route
        ),
        "efficiency_pct": efficiency_pct(events),
        "smoothness": smoothness(
            ticks["t_s"], ticks["accel_mps2"], ticks["speed_mps"], ticks["yaw_rate_radps"]
        ),
    }

"""The behaviour state machine as pure transition functions (openpilot style): no hidden state, so
every transition can be tested directly on a crafted `Situation`.

States (decision.plan.Behaviour):
- CRUISE: free road, drive at the speed cap.
- FOLLOW: a lead within `follow_range_m` (IDM keeps the gap).
- STOP: a pedestrian in / entering the corridor, or a stationary vehicle or obstacle blocking the
  lane with no safe lane change: stop before it.
- CHANGE_LANE: go around a blocking stationary object when the next lane passes the MOBIL-style
  safety check and is not blocked there too, and there is still room to get round it at this speed
  (clear of it `pass_ttc_s` before reaching it, with no swerve shorter than speed x
  `lane_change_min_duration_s`); else STOP and try again every tick. Go back to the route's lane
  once past it and safe. No lane change for mere speed.
- EMERGENCY_BRAKE: time to collision below `emergency_ttc_s` or a needed deceleration above
  `emergency_decel_mps2`; left when TTC >= `emergency_exit_ttc_s` and the needed deceleration is
  comfortable again (hysteresis).
A lane change in progress is kept in `BehaviourState.change` whatever the behaviour (an emergency
brake during a lane change keeps the lateral path) and ends when the ego has driven its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from decision.idm import IDMParams, MOBILParams, idm_accel, mobil_safe
from decision.plan import Behaviour
from decision.situation import LaneChange, LaneGaps, ObjectAhead, Situation
from perception.types import CLASSES

# By 65 % of its length the quintic blend has moved 76 % of the way across (2.7 m of a 3.5 m lane):
# enough for the ego to pass beside a car that sat in the old lane. So a lane change around an
# object is at most (room) / CLEAR_FRACTION long, the room being its gap less the distance driven
# in `pass_ttc_s` (the ego is clear of it while still that much time away).
CLEAR_FRACTION = 0.65
SHORTEST_LANE_CHANGE_M = 8.0  # never blend over less, whatever the room
FOLLOW_HYSTERESIS = 1.2  # FOLLOW is left when the lead is this many times the follow range away
MIN_GAP_FOR_TTC_M = 0.1  # gaps are clamped here when dividing by them


@dataclass(frozen=True, slots=True)
class BehaviourParams:
    idm: IDMParams
    mobil: MOBILParams
    stationary_speed_mps: float  # slower objects count as stationary (possible blockers)
    follow_range_m: float  # a lead nearer than this makes the behaviour FOLLOW
    emergency_ttc_s: float
    emergency_exit_ttc_s: float
    emergency_decel_mps2: float  # needed deceleration (positive) that calls for an emergency brake
    lane_change_duration_s: float  # the blend length is speed x this ...
    lane_change_min_length_m: float  # ... but at least this (when there is room) ...
    lane_change_min_duration_s: float  # ... and never less than speed x this (lateral comfort)
    pass_ttc_s: float  # time to collision kept to the object a lane change goes around
    lane_change_min_gap_m: float  # bumper gap needed to the new leader and follower

    def __post_init__(self):
        if not self.emergency_exit_ttc_s >= self.emergency_ttc_s:
            raise ValueError("emergency_exit_ttc_s must be >= emergency_ttc_s (hysteresis)")


@dataclass(frozen=True, slots=True)
class BehaviourState:
    """The behaviour, the lane being driven (the target while changing), a lane change in progress."""

    behaviour: Behaviour
    lane: int
    change: LaneChange | None = None

    def with_behaviour(self, behaviour: Behaviour) -> BehaviourState:
        return self if behaviour == self.behaviour else BehaviourState(behaviour, self.lane, self.change)


def describe(obj: ObjectAhead) -> str:
    return f"{CLASSES[obj.class_id] if 0 <= obj.class_id < len(CLASSES) else 'object'} {obj.track_id}"


def threat(sit: Situation) -> tuple[float, float, ObjectAhead | None]:
    """(time to collision [s], deceleration needed to avoid it [m/s^2], the object) for the most
    urgent of the lead and the pedestrian (a pedestrian is treated as standing still)."""
    ttc, need, worst = math.inf, 0.0, None
    v = sit.ego_speed_mps
    for obj in (sit.lead, sit.pedestrian):
        if obj is None:
            continue
        closing = v - obj.speed_mps if obj is sit.lead else v
        if closing <= 0.0:
            continue
        gap = max(obj.gap_m, MIN_GAP_FOR_TTC_M)
        if gap / closing < ttc:
            ttc, worst = gap / closing, obj
        need = max(need, closing * closing / (2.0 * gap))
    return ttc, need, worst


def is_blocking(obj: ObjectAhead | None, p: BehaviourParams) -> bool:
    """A stationary object (vehicle or obstacle) in the corridor: it will not clear by itself."""
    return obj is not None and abs(obj.speed_mps) < p.stationary_speed_mps


def lane_change_length_m(speed_mps: float, gap_m: float, p: BehaviourParams) -> float:
    """Road length [m] over which to blend into the next lane (`gap_m`: to the object passed)."""
    length = max(p.lane_change_min_length_m, speed_mps * p.lane_change_duration_s)
    room = (gap_m - speed_mps * p.pass_ttc_s) / CLEAR_FRACTION
    return max(min(length, room), SHORTEST_LANE_CHANGE_M, speed_mps * p.lane_change_min_duration_s)


def lane_change_fits(speed_mps: float, gap_m: float, p: BehaviourParams) -> bool:
    """Can the ego still get round an object `gap_m` ahead at this speed without a swerve?"""
    return (gap_m - speed_mps * p.pass_ttc_s) / CLEAR_FRACTION >= lane_change_length_m(speed_mps, gap_m, p)


def lane_change_safe(gaps: LaneGaps, sit: Situation, p: BehaviourParams) -> tuple[bool, str]:
    """MOBIL's safety criterion (decision/idm.py `mobil_safe`) for the new follower behind the ego
    and for the ego behind the new leader, after enough room fore and aft. (ok, why not)."""
    if gaps.lead_gap_m < p.lane_change_min_gap_m:
        return False, f"gap ahead in lane {gaps.lane} is {gaps.lead_gap_m:.1f} m"
    if gaps.follower_gap_m < p.lane_change_min_gap_m:
        return False, f"gap behind in lane {gaps.lane} is {gaps.follower_gap_m:.1f} m"
    v = sit.ego_speed_mps
    v_f = gaps.follower_speed_mps
    follower_after = idm_accel(v_f, v_f, gaps.follower_gap_m, v, p.idm)  # its desired speed: its speed
    if not mobil_safe(follower_after, p.mobil):
        return False, f"the follower in lane {gaps.lane} would brake at {-follower_after:.1f} m/s^2"
    ego_after = idm_accel(v, sit.speed_cap_mps, gaps.lead_gap_m, gaps.lead_speed_mps, p.idm)
    if not mobil_safe(ego_after, p.mobil):
        return False, f"the ego would brake at {-ego_after:.1f} m/s^2 behind the leader of lane {gaps.lane}"
    return True, ""


def _clear_for(gaps: LaneGaps, distance_m: float, p: BehaviourParams) -> bool:
    """No stationary object in that lane within `distance_m` ahead (it would block us again)."""
    return not (abs(gaps.lead_speed_mps) < p.stationary_speed_mps and gaps.lead_gap_m < distance_m)


def _start_change(sit: Situation, gaps: LaneGaps, gap_m: float, p: BehaviourParams) -> BehaviourState:
    length = lane_change_length_m(sit.ego_speed_mps, gap_m, p)
    return BehaviourState(Behaviour.CHANGE_LANE, gaps.lane, LaneChange(sit.ego_s_m, sit.ego_d_m, length))


def next_behaviour(state: BehaviourState, sit: Situation, p: BehaviourParams) -> tuple[BehaviourState, str]:
    """One transition of the state machine: (new state, reason for it)."""
    change = state.change
    if change is not None and sit.ego_s_m >= change.start_s_m + change.length_m:
        state = BehaviourState(state.behaviour, state.lane)  # the lane change is complete

    ttc, need, worst = threat(sit)
    if ttc < p.emergency_ttc_s or need > p.emergency_decel_mps2:
        why = f"emergency brake for {describe(worst)}: TTC {ttc:.1f} s, needs {need:.1f} m/s^2"
        return state.with_behaviour(Behaviour.EMERGENCY_BRAKE), why
    if state.behaviour == Behaviour.EMERGENCY_BRAKE and (
        ttc < p.emergency_exit_ttc_s or need > p.idm.decel_comfort_mps2
    ):
        return state, f"emergency brake for {describe(worst)}: TTC {ttc:.1f} s"

    if state.change is not None:
        return state.with_behaviour(Behaviour.CHANGE_LANE), f"changing to lane {state.lane}"

    lead, ped = sit.lead, sit.pedestrian
    if ped is not None and (lead is None or ped.gap_m <= lead.gap_m):
        return state.with_behaviour(Behaviour.STOP), f"stopping for {describe(ped)} at {ped.gap_m:.1f} m"

    if is_blocking(lead, p):
        # Go around: the route's side first when off the route's lane, else the left (overtaking) side.
        sides = (sit.right, sit.left) if sit.route_lane < state.lane else (sit.left, sit.right)
        why_not = "no other lane"
        for gaps in sides:
            if gaps is None:
                continue
            ok, why_not = lane_change_safe(gaps, sit, p)
            if ok and not _clear_for(gaps, lead.gap_m + p.lane_change_min_length_m, p):
                ok, why_not = False, f"lane {gaps.lane} is blocked too"
            if ok and not lane_change_fits(sit.ego_speed_mps, lead.gap_m, p):
                ok, why_not = False, "too close to go round at this speed"
            if ok:
                why = f"changing to lane {gaps.lane} around {describe(lead)} at {lead.gap_m:.1f} m"
                return _start_change(sit, gaps, lead.gap_m, p), why
        why = f"stopping for {describe(lead)} at {lead.gap_m:.1f} m: {why_not}"
        return state.with_behaviour(Behaviour.STOP), why

    if state.lane != sit.route_lane:
        gaps = sit.right if sit.route_lane < state.lane else sit.left
        if gaps is not None:
            ok, _ = lane_change_safe(gaps, sit, p)
            length = lane_change_length_m(sit.ego_speed_mps, float("inf"), p)
            if ok and _clear_for(gaps, length + p.lane_change_min_length_m, p):
                return _start_change(sit, gaps, float("inf"), p), f"returning to lane {gaps.lane}"

    if lead is not None:
        in_range = p.follow_range_m * (FOLLOW_HYSTERESIS if state.behaviour == Behaviour.FOLLOW else 1.0)
        if lead.gap_m < in_range:
            why = f"following {describe(lead)} at {lead.gap_m:.1f} m"
            return state.with_behaviour(Behaviour.FOLLOW), why
    return state.with_behaviour(Behaviour.CRUISE), f"cruising at {sit.speed_cap_mps:.1f} m/s"

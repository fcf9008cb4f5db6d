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
- STOP_AT_LINE / YIELD: the junction ahead (decision/junction.py) holds the ego at its stop line:
  a red light (or an unseen one), a yellow one it can stop for comfortably, a stop sign until it
  has stopped there and the box is clear (STOP_AT_LINE); a vehicle to give way to, a pedestrian on
  the crosswalk of a turn's exit (YIELD). Past the stop line the ego is committed. A crossing
  vehicle that will not stop for its red light or its stop sign is braked for as a stationary lead
  at the box entry (Situation.crossing), emergency braking included.
- CREEP: free to go by the rules, but the cameras do not yet see the incoming lanes it would give
  way to (`JunctionAhead.unobserved`): edge on at `creep_speed_mps`, to stop with the front
  CREEP_INTO_BOX_M into the box, until they are seen; then go, or give way (YIELD, where it stands:
  crept into the box it is not yet committed). Still hidden from there, they are out of sight.
- Overtaking on a two-way road: a blocking object is passed through the oncoming lane only when
  that lane is seen clear for the whole manoeuvre (`overtake_clear`); never for mere speed, never
  within reach of a junction or inside one.
- A parked start (lane -1, the shoulder): STOP until lane 0 passes the MOBIL-style check, then
  merge into it (CHANGE_LANE).
- An emergency vehicle coming from behind in the ego's lane: change into a lane of the ego's
  direction (the right one first) that passes the MOBIL-style check, to let it by (CARLA's
  YieldToEmergencyVehicle). No lane change, the way back to the route's lane included, goes into a
  lane along which an emergency vehicle comes.
A lane change in progress is kept in `BehaviourState.change` whatever the behaviour (an emergency
brake during a lane change keeps the lateral path) and ends when the ego has driven its length.
Stalled part-way behind a stationary object its path does not clear, it starts again from where the
ego stands, as short as the object leaves room for; still blocked, the ego goes round the object
from the lane it was moving into (it never stays straddling two lanes while a way round exists).
The junction the ego waits at (`waiting_at`) and the stop sign it has stopped at (`stopped_at`)
are kept in the state too; the planner puts a virtual stationary leader at the stop line while
`waiting_at` is set. `BehaviourParams.junction` None and `lane_changes` False make the naive
planner (decision=naive): lane following behind what is in its corridor, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from decision.idm import IDMParams, MOBILParams, idm_accel, mobil_safe
from decision.junction import CREEP_INTO_BOX_M, JunctionAhead, JunctionParams, made_full_stop, wait_reason
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
QUEUE_ZONE_M = 15.0  # a vehicle standing this near the road's end queues at a junction: not passed
EXIT_ROOM_M = 7.0  # a slow vehicle within this past a junction's box keeps the ego before the line
RESTART_TOLERANCE_M = 0.5  # a stalled lane change that started within this of the ego started here
STATIONARY_CLEARANCE_M = 1.0  # a lane change needs only this much room ahead of a stationary object behind


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
    overtake_extra_m: (
        float  # an overtake drives the gap to the object and this much more in the oncoming lane
    )
    overtake_margin_s: float  # ... and needs that lane clear this much longer than it takes
    slow_lead_speed_mps: float  # a lead slower than this (and half the cap) is passed like a stationary one
    overtake_accel_mps2: float  # acceleration while in an oncoming lane (IDM's accel_max there)
    overtake_view_m: float  # how far the oncoming lane is seen: traffic beyond it is assumed at the speed cap
    # Standing behind what it passes, where waiting shows no more of the oncoming lane: a vehicle just
    # beyond the view, at the speed cap, is taken to brake for the ego in its lane after this reaction
    # time, at this (RSS's assumption for the car in its correct lane)
    overtake_unseen_reaction_s: float
    overtake_unseen_decel_mps2: float
    parked_offset_m: float  # an ego starting this far right of lane 0's centre is parked: it merges first
    junction: JunctionParams | None = None  # None: no junction rules (the naive planner)
    lane_changes: bool = True  # False: never change lanes (the naive planner)

    def __post_init__(self):
        if not self.emergency_exit_ttc_s >= self.emergency_ttc_s:
            raise ValueError("emergency_exit_ttc_s must be >= emergency_ttc_s (hysteresis)")
        if not (self.overtake_unseen_reaction_s >= 0 and self.overtake_unseen_decel_mps2 > 0):
            raise ValueError("overtake_unseen_reaction_s must be >= 0 and overtake_unseen_decel_mps2 > 0")


@dataclass(frozen=True, slots=True)
class BehaviourState:
    """The behaviour, the lane being driven (the target while changing), a lane change in progress."""

    behaviour: Behaviour
    lane: int  # -1: the shoulder right of lane 0 (a parked start), until merged
    change: LaneChange | None = None
    waiting_at: int = -1  # the junction whose stop line the ego waits at; -1: none
    stopped_at: int = -1  # the last junction whose stop sign the ego has stopped at

    def with_behaviour(self, behaviour: Behaviour) -> BehaviourState:
        return self if behaviour == self.behaviour else replace(self, behaviour=behaviour)


def describe(obj: ObjectAhead) -> str:
    return f"{CLASSES[obj.class_id] if 0 <= obj.class_id < len(CLASSES) else 'object'} {obj.track_id}"


def threat(sit: Situation) -> tuple[float, float, ObjectAhead | None]:
    """(time to collision [s], deceleration needed to avoid it [m/s^2], the object) for the most
    urgent of the lead, the pedestrian and the crossing vehicle that will not stop (the last two
    treated as standing still, the crossing vehicle at the box entry). A vehicle coming the other
    way along the oncoming lane that the ego passes through, or cutting into the ego's lane while
    the ego moves over right of it, counts by its time to collision alone: braking cannot take the
    closing speed to zero; going back to the ego's lane, or over to the right, does."""
    ttc, need, worst = math.inf, 0.0, None
    v = sit.ego_speed_mps
    for obj in (sit.lead, sit.pedestrian, sit.crossing):
        if obj is None:
            continue
        closing = v - obj.speed_mps if obj is sit.lead else v
        if closing <= 0.0:
            continue
        gap = max(obj.gap_m, MIN_GAP_FOR_TTC_M)
        if gap / closing < ttc:
            ttc, worst = gap / closing, obj
        if not ((sit.oncoming or sit.keeping_right) and obj is sit.lead and obj.speed_mps < 0.0):
            need = max(need, closing * closing / (2.0 * gap))
    return ttc, need, worst


def is_blocking(obj: ObjectAhead | None, p: BehaviourParams) -> bool:
    """A stationary object (vehicle or obstacle) in the corridor: it will not clear by itself."""
    return obj is not None and abs(obj.speed_mps) < p.stationary_speed_mps


def is_slow_hazard(obj: ObjectAhead | None, sit: Situation, p: BehaviourParams) -> bool:
    """A vehicle crawling ahead (below `slow_lead_speed_mps` and half the speed cap, within the follow
    range: a cyclist, a vehicle at the kerb, CARLA's HazardAtSideLane): passed when it is safe,
    followed meanwhile."""
    return (
        obj is not None
        and p.stationary_speed_mps <= obj.speed_mps < min(p.slow_lead_speed_mps, 0.5 * sit.speed_cap_mps)
        and obj.gap_m < p.follow_range_m
    )


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
    and for the ego behind the new leader, after enough room fore and aft (behind a stationary
    object, only enough to be clear of it: it will not close in). (ok, why not)."""
    if not gaps.observed:
        return False, f"lane {gaps.lane} is not all in the cameras' view"
    if gaps.emergency_behind:
        return False, f"an emergency vehicle comes along lane {gaps.lane}"
    if gaps.lead_gap_m < p.lane_change_min_gap_m:
        return False, f"gap ahead in lane {gaps.lane} is {gaps.lead_gap_m:.1f} m"
    still_behind = abs(gaps.follower_speed_mps) < p.stationary_speed_mps
    if gaps.follower_gap_m < (STATIONARY_CLEARANCE_M if still_behind else p.lane_change_min_gap_m):
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


def _start_change(
    state: BehaviourState, sit: Situation, gaps: LaneGaps, gap_m: float, p: BehaviourParams
) -> BehaviourState:
    length = lane_change_length_m(sit.ego_speed_mps, gap_m, p)
    change = LaneChange(sit.ego_s_m, sit.ego_d_m, length)
    return replace(state, behaviour=Behaviour.CHANGE_LANE, lane=gaps.lane, change=change, waiting_at=-1)


def pass_time_s(speed_mps: float, cap_mps: float, distance_m: float, accel_mps2: float) -> float:
    """Time [s] to drive `distance_m` from `speed_mps`, accelerating at `accel_mps2` up to `cap_mps`."""
    v, cap = max(speed_mps, 0.0), max(cap_mps, speed_mps, 0.1)
    t_up = (cap - v) / accel_mps2
    d_up = 0.5 * (v + cap) * t_up
    if distance_m <= d_up:
        return (math.sqrt(v * v + 2.0 * accel_mps2 * distance_m) - v) / accel_mps2
    return t_up + (distance_m - d_up) / cap


def pass_distance_m(lead: ObjectAhead, sit: Situation, p: BehaviourParams) -> tuple[float, float]:
    """(Road [m] the ego drives to pass `lead` and every stationary object of its run and be back in
    its lane, the time [s] that takes accelerating at `overtake_accel_mps2`): a moving lead drives
    on meanwhile, and the ego that much more."""
    distance = lead.gap_m + sit.lead_run_extra_m + p.overtake_extra_m  # past every object of the run
    t = pass_time_s(sit.ego_speed_mps, sit.speed_cap_mps, distance, p.overtake_accel_mps2)
    if lead.speed_mps > 0.0:
        moved = distance + lead.speed_mps * t
        t = pass_time_s(sit.ego_speed_mps, sit.speed_cap_mps, moved, p.overtake_accel_mps2)
        distance += lead.speed_mps * t
    return distance, t


def unseen_travel_m(speed_mps: float, t_s: float, p: BehaviourParams) -> float:
    """How far [m] a vehicle coming the other way at `speed_mps` drives in `t_s` [s] when it brakes at
    `overtake_unseen_decel_mps2` after `overtake_unseen_reaction_s` (down to standing)."""
    reaction = min(t_s, p.overtake_unseen_reaction_s)
    braking = min(t_s - reaction, speed_mps / p.overtake_unseen_decel_mps2)
    return speed_mps * (reaction + braking) - 0.5 * p.overtake_unseen_decel_mps2 * braking * braking


def overtake_clear(gaps: LaneGaps, lead: ObjectAhead, sit: Situation, p: BehaviourParams) -> tuple[bool, str]:
    """Is the oncoming lane `gaps` clear for passing `lead` through it? (ok, why not).

    MOBIL's safety check does not apply: oncoming vehicles approach. The ego is in that lane while
    it drives D = gap + the rest of a run of stationary objects + `overtake_extra_m`, in t
    (accelerating at `overtake_accel_mps2` to the speed cap); the lane must stay
    clear t + margin: an oncoming vehicle seen at speed w must be farther than (t + margin)
    (D / t + w). One not seen, just beyond the view (`overtake_view_m`, or as far as the cameras
    cover the lane, `seen_ahead_m`) at the speed cap, must not
    reach D within t: D + cap t <= view; nor may the junction ahead be nearer than that, where
    traffic no one sees yet turns into the lane. An ego standing behind a stationary object sees
    no more by waiting: there the unseen vehicle is taken to brake for it (`unseen_travel_m`), or
    a view shorter than D + cap t (the cameras' range) would keep it there for good. A vehicle in
    that lane driving the ego's way (overtaking too) is checked as for any lane change. (The return
    from the oncoming lane is the shortest comfortable one, see next_behaviour.)
    """
    if not gaps.observed:
        return False, f"lane {gaps.lane} is not all in the cameras' view"
    if gaps.lead_speed_mps >= p.stationary_speed_mps or gaps.follower_speed_mps >= p.stationary_speed_mps:
        ok, why_not = lane_change_safe(gaps, sit, p)
        if not ok:
            return ok, why_not
    distance, t = pass_distance_m(lead, sit, p)
    window, v_mean = t + p.overtake_margin_s, distance / t
    seen_need = window * (v_mean + max(-gaps.lead_speed_mps, 0.0))
    if gaps.lead_gap_m < seen_need:
        return (
            False,
            f"oncoming traffic in lane {gaps.lane} at {gaps.lead_gap_m:.1f} m (needs {seen_need:.0f} m)",
        )
    unseen_need = distance + t * sit.speed_cap_mps
    view_need = unseen_need
    if sit.ego_speed_mps < p.stationary_speed_mps and is_blocking(lead, p):
        view_need = distance + unseen_travel_m(sit.speed_cap_mps, t, p)
    if view_need > min(p.overtake_view_m, gaps.seen_ahead_m):
        return False, f"lane {gaps.lane} not seen clear far enough ({view_need:.0f} m needed)"
    j = sit.junction if p.junction is not None else None
    if j is not None and j.stop_gap_m < unseen_need:  # traffic it cannot see yet may turn in there
        return False, f"junction {j.junction_id} {j.stop_gap_m:.0f} m ahead ({unseen_need:.0f} m needed)"
    return True, ""


def junction_blocks_change(j: JunctionAhead | None, distance_m: float) -> bool:
    """No lane change reaching within `distance_m` of a junction's stop line, nor inside its box
    (the junction facts last until the ego's rear has left the box)."""
    return j is not None and j.stop_gap_m < distance_m


def next_behaviour(state: BehaviourState, sit: Situation, p: BehaviourParams) -> tuple[BehaviourState, str]:
    """One transition of the state machine: (new state, reason for it)."""
    if state.change is not None and sit.ego_s_m >= state.change.start_s_m + state.change.length_m:
        state = replace(state, change=None)  # the lane change is complete
    j = sit.junction if p.junction is not None else None
    wait, hold = "", Behaviour.STOP_AT_LINE
    if j is not None:
        state, wait, hold = _junction_wait(state, j, sit.ego_speed_mps, p, sit.lead)
    elif state.waiting_at >= 0:
        state = replace(state, waiting_at=-1)

    ttc, need, worst = threat(sit)
    if ttc < p.emergency_ttc_s or need > p.emergency_decel_mps2:
        why = f"emergency brake for {describe(worst)}: TTC {ttc:.1f} s, needs {need:.1f} m/s^2"
        return state.with_behaviour(Behaviour.EMERGENCY_BRAKE), why
    if state.behaviour == Behaviour.EMERGENCY_BRAKE and (
        ttc < p.emergency_exit_ttc_s or need > p.idm.decel_comfort_mps2
    ):
        return state, f"emergency brake for {describe(worst)}: TTC {ttc:.1f} s"

    if state.change is not None:
        if sit.ego_speed_mps < p.stationary_speed_mps and is_blocking(sit.lead, p):
            return _stalled_change(state, sit, sit.lead, p)
        return state.with_behaviour(Behaviour.CHANGE_LANE), f"changing to lane {state.lane}"

    lead, ped = sit.lead, sit.pedestrian
    line_gap = math.inf if not wait else (j.entry_gap_m if hold == Behaviour.CREEP else j.stop_gap_m)
    if ped is not None and (lead is None or ped.gap_m <= lead.gap_m) and ped.gap_m < line_gap:
        return state.with_behaviour(Behaviour.STOP), f"stopping for {describe(ped)} at {ped.gap_m:.1f} m"
    if sit.crossing is not None:
        why = f"braking for {describe(sit.crossing)} crossing ahead at {sit.crossing.gap_m:.1f} m"
        return state.with_behaviour(Behaviour.STOP), why
    if state.lane < 0:
        return _merge(state, sit, p)
    if wait and (lead is None or lead.gap_m > line_gap):
        return state.with_behaviour(hold), wait

    if is_blocking(lead, p):
        return _go_around(state, sit, lead, p)
    if is_slow_hazard(lead, sit, p):
        new, why = _go_around(state, sit, lead, p)
        if new.change is None:  # not yet: follow it meanwhile
            return state.with_behaviour(
                Behaviour.FOLLOW
            ), f"following slow {why.removeprefix('stopping for ')}"
        return new, why

    if sit.emergency_behind is not None and p.lane_changes:
        new, why = _make_way(state, sit, j, p)
        if new.change is not None:
            return new, why

    if state.lane != sit.route_lane and p.lane_changes:
        gaps = sit.right if sit.route_lane < state.lane else sit.left
        if gaps is not None:
            ok, _ = lane_change_safe(gaps, sit, p)
            room = 0.0 if sit.oncoming else math.inf  # out of an oncoming lane: the shortest comfortable
            length = lane_change_length_m(sit.ego_speed_mps, room, p)
            ok = ok and _clear_for(gaps, length + p.lane_change_min_length_m, p)
            # Out of an oncoming lane as soon as it can, short of inside a junction's box.
            if ok and not junction_blocks_change(j, 0.0 if sit.oncoming else length):
                return _start_change(state, sit, gaps, room, p), f"returning to lane {gaps.lane}"

    if lead is not None:
        in_range = p.follow_range_m * (FOLLOW_HYSTERESIS if state.behaviour == Behaviour.FOLLOW else 1.0)
        if lead.gap_m < in_range:
            why = f"following {describe(lead)} at {lead.gap_m:.1f} m"
            return state.with_behaviour(Behaviour.FOLLOW), why
    return state.with_behaviour(Behaviour.CRUISE), f"cruising at {sit.speed_cap_mps:.1f} m/s"


def _junction_wait(
    state: BehaviourState, j: JunctionAhead, speed_mps: float, p: BehaviourParams, lead: ObjectAhead | None
) -> tuple[BehaviourState, str, Behaviour]:
    """The state with the stop sign's full stop and the junction waited at brought up to date,
    why it waits ("": it goes) and how: STOP_AT_LINE, YIELD (giving way, decision/junction.py) or
    CREEP (towards the box, until the cameras see the incoming lanes it would give way to). Before
    its line the ego also waits while a slow vehicle past the line would hold it inside the box (it
    does not block the junction, and its tail stays behind the line until it can go through)."""
    if j.control == "stop" and state.stopped_at != j.junction_id and made_full_stop(j, speed_mps, p.junction):
        state = replace(state, stopped_at=j.junction_id)
    stopped_here = state.stopped_at == j.junction_id
    wait, giving_way = wait_reason(j, speed_mps, stopped_here, p.idm.decel_comfort_mps2, p.junction)
    hold = Behaviour.YIELD if giving_way else Behaviour.STOP_AT_LINE
    crept_in = (
        state.waiting_at == j.junction_id
        and state.behaviour in (Behaviour.CREEP, Behaviour.YIELD)
        and -CREEP_INTO_BOX_M < j.entry_gap_m <= 0.0
    )
    if not wait and crept_in and j.give_way_to >= 0:  # crept into the box to see: not yet committed
        wait, hold = f"giving way to vehicle {j.give_way_to}: crept into the box", Behaviour.YIELD
    if (
        not wait
        and j.stop_gap_m > 0.0
        and lead is not None
        and j.stop_gap_m < lead.gap_m < j.exit_gap_m + EXIT_ROOM_M
        and lead.speed_mps < p.slow_lead_speed_mps
    ):
        wait = f"the exit of junction {j.junction_id} is not clear ({describe(lead)} at {lead.gap_m:.1f} m)"
    if not wait and j.unobserved:
        wait, hold = f"creeping to see: {j.unobserved}", Behaviour.CREEP
    waiting_at = j.junction_id if wait else -1
    if waiting_at != state.waiting_at:
        state = replace(state, waiting_at=waiting_at)
    return state, wait, hold


def _go_around(
    state: BehaviourState, sit: Situation, lead: ObjectAhead, p: BehaviourParams
) -> tuple[BehaviourState, str]:
    """A stationary object blocks the lane: change lane around it (the route's side first when off
    the route's lane, else the left, overtaking, side), or STOP before it."""
    sides = (sit.right, sit.left) if sit.route_lane < state.lane else (sit.left, sit.right)
    why_not = _no_going_around(sit, lead, p) or "no other lane"
    if why_not != "no other lane":
        sides = ()
    for gaps in sides:
        if gaps is None:
            continue
        ok, why_not = overtake_clear(gaps, lead, sit, p) if gaps.oncoming else lane_change_safe(gaps, sit, p)
        if ok and not _clear_for(gaps, lead.gap_m + p.lane_change_min_length_m, p):
            ok, why_not = False, f"lane {gaps.lane} is blocked too"
        closing = max(sit.ego_speed_mps - max(lead.speed_mps, 0.0), 0.0)  # a slow lead drives on
        if ok and not lane_change_fits(closing, lead.gap_m, p):
            ok, why_not = False, "too close to go round at this speed"
        if ok:
            why = f"changing to lane {gaps.lane} around {describe(lead)} at {lead.gap_m:.1f} m"
            return _start_change(state, sit, gaps, lead.gap_m, p), why
    why = f"stopping for {describe(lead)} at {lead.gap_m:.1f} m: {why_not}"
    return state.with_behaviour(Behaviour.STOP), why


def _stalled_change(
    state: BehaviourState, sit: Situation, lead: ObjectAhead, p: BehaviourParams
) -> tuple[BehaviourState, str]:
    """Stalled part-way through a lane change behind a stationary object that its path does not
    clear (seen late, or nearer than first seen). The change starts again from where the ego
    stands, as short as the object leaves room for: a path from part-way across clears it sooner.
    If that one is blocked too (the object stands in the lane moved into), or there is no room,
    the move cannot finish: the ego goes round the object from that lane, or waits to."""
    restarted_here = abs(state.change.start_s_m - sit.ego_s_m) < RESTART_TOLERANCE_M
    if not restarted_here and lane_change_fits(0.0, lead.gap_m, p):
        length = lane_change_length_m(0.0, lead.gap_m, p)
        change = LaneChange(sit.ego_s_m, sit.ego_d_m, length)
        why = f"changing to lane {state.lane} again from here, around {describe(lead)} at {lead.gap_m:.1f} m"
        return replace(state, behaviour=Behaviour.CHANGE_LANE, change=change), why
    return _go_around(replace(state, change=None), sit, lead, p)


def _no_going_around(sit: Situation, lead: ObjectAhead, p: BehaviourParams) -> str:
    """Why no lane change goes round `lead`, whatever the lanes beside ("": one may)."""
    if not p.lane_changes:
        return "no lane changes"
    # The way back in comes before the junction's stop line.
    if junction_blocks_change(
        sit.junction if p.junction is not None else None, pass_distance_m(lead, sit, p)[0]
    ):
        return "at a junction"
    if sit.road_end_gap_m - lead.gap_m < QUEUE_ZONE_M:  # queued where the road meets a junction
        return "it waits at the end of the road"
    return ""


def wants_to_look(state: BehaviourState, sit: Situation, p: BehaviourParams) -> bool:
    """Stopping for a blocking object, or following a slow hazard, that it would pass through the
    oncoming lane on its left (not yet: that lane is not seen clear far enough, or not clear): with
    cameras that see only so far round what stands ahead, the ego edges out towards that lane on
    its way to a stop, to see past (the planner shifts its path left while this holds)."""
    gaps, lead = sit.left, sit.lead
    return (
        state.behaviour in (Behaviour.STOP, Behaviour.FOLLOW)
        and state.change is None
        and 0 <= state.lane
        and gaps is not None
        and gaps.oncoming
        and (is_blocking(lead, p) or is_slow_hazard(lead, sit, p))
        and not _no_going_around(sit, lead, p)
    )


def _make_way(
    state: BehaviourState, sit: Situation, j: JunctionAhead | None, p: BehaviourParams
) -> tuple[BehaviourState, str]:
    """An emergency vehicle comes from behind in the ego's lane (seen, or heard: track id -1): change
    into a lane of the ego's direction, the right one first, when it passes the MOBIL-style check
    and is not blocked ahead (the state unchanged, and why not, otherwise)."""
    ev = sit.emergency_behind
    length = lane_change_length_m(sit.ego_speed_mps, math.inf, p)
    why_not = "no lane of its direction beside it"
    if junction_blocks_change(j, length):
        return state, "at a junction"
    for gaps in (sit.right, sit.left):
        if gaps is None or gaps.oncoming:
            continue
        ok, why_not = lane_change_safe(gaps, sit, p)
        if ok and not _clear_for(gaps, length + p.lane_change_min_length_m, p):
            ok, why_not = False, f"lane {gaps.lane} is blocked"
        if ok:
            who = (
                f"emergency {describe(ev)} {ev.gap_m:.0f} m"
                if ev.track_id >= 0
                else "an emergency vehicle heard"
            )
            why = f"making way for {who} behind: to lane {gaps.lane}"
            return _start_change(state, sit, gaps, math.inf, p), why
    return state, why_not


def _merge(state: BehaviourState, sit: Situation, p: BehaviourParams) -> tuple[BehaviourState, str]:
    """On the shoulder (a parked start): merge into lane 0 when the MOBIL-style check passes and
    it is not blocked just ahead, else wait (STOP)."""
    gaps = sit.left
    ok, why_not = lane_change_safe(gaps, sit, p) if gaps is not None else (False, "no lane")
    # Out of a parking spot the car ahead is passed at walking pace: the merge is done by the time the
    # ego reaches it (not CLEAR_FRACTION of it), so the blend is no longer than the gap to it.
    room = CLEAR_FRACTION * sit.lead.gap_m if is_blocking(sit.lead, p) else math.inf
    if ok and not _clear_for(
        gaps, lane_change_length_m(sit.ego_speed_mps, room, p) + p.lane_change_min_length_m, p
    ):
        ok, why_not = False, f"lane {gaps.lane} is blocked"
    if ok:
        return _start_change(state, sit, gaps, room, p), f"merging into lane {gaps.lane}"
    return state.with_behaviour(Behaviour.STOP), f"waiting to merge into lane 0: {why_not}"

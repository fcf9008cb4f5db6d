"""The behaviour planner: WorldModel + Route -> Plan, once per control tick (20 Hz).

Each tick:
1. the ego and the tracks near it go to road (Frenet) coordinates (decision/situation.py);
2. the situation is reduced to a few facts (lead, pedestrian, neighbour lanes, speed cap);
3. the behaviour state machine takes one pure transition (decision/behaviour.py);
4. longitudinal: IDM (decision/idm.py) behind the effective leader, the most constraining of the
   lead, a virtual stationary leader at the stop point before a pedestrian, and the end of the
   road; desired speed = the speed cap; blended with the constant-acceleration heuristic (the ACC
   model of Kesting, Treiber & Helbing 2010) so that a car cutting in close but no slower is not
   met with a full stop; no more than the braking needed for the curves ahead; while a lane change
   has not yet taken the ego clear of the object it passes, a closing speed that keeps a time to
   collision of `pass_ttc_s`; EMERGENCY_BRAKE gives -max_decel; the result is limited in jerk
   (except emergency braking) to stay inside nuPlan's comfort bounds;
5. path: a polyline along the lane (or the quintic lane-change blend) from the ego, about 1 m
   apart, over max(30 m, 3 s x speed), with the speed profile of the target acceleration.

The handful of scalars (IDM, the ACC blend, the jerk limit) are plain floats; numpy works over
the tracks and the path points; what depends on the road alone (lane centre lines, the
situation's row tests) is kept in a RoadCache.

Built by Hydra from conf/decision/default.yaml (all values live there, in one section per
parameter dataclass); the ego's own numbers come from the vehicle config:
`instantiate(cfg.decision, ego_length_m=..., ego_width_m=..., max_decel_mps2=...)`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from decision.behaviour import BehaviourParams, BehaviourState, next_behaviour, wants_to_look
from decision.idm import MIN_GAP_M, IDMParams, MOBILParams, idm_accel
from decision.junction import (
    PULL_IN_M,
    JunctionAhead,
    JunctionParams,
    creep_gap_m,
    ego_path,
    junction_facts,
    next_crossing,
    waits_to_turn_left,
)
from decision.nudge import NudgeParams, peek_shift_m, step_shift_m, wanted_shift_m
from decision.plan import Behaviour, Plan
from decision.route import Road, Route
from decision.situation import (
    F_ONE,
    HALF_WIDTHS,
    LEAD,
    NEIGHBOUR_EXTRA_M,
    PED,
    LaneChange,
    ObjectAhead,
    Situation,
    SituationParams,
    extract_situation,
    lane_offset_m,
    mark_unobserved,
    path_offset_m,
    project,
    row_tests,
    siren_behind,
)
from perception.types import VEHICLE, WorldModel

PATH_MIN_LENGTH_M = 30.0  # the path reaches at least this far ...
PATH_HORIZON_S = 3.0  # ... and this many seconds at the current speed
PATH_SPACING_M = 1.0
# Moving off from (near) standstill, the speed profile is at least the speed reached this much
# later: integrated from v = 0 it would start at 0, and a controller reading it near the ego would
# keep holding the brake (conf/control: below 0.3 m/s). Moving up to a stop line, at least
# MOVE_OFF_MIN_MPS: the weak pull of IDM over the last metre would not move it either.
PROFILE_LEAD_S = 0.5
MOVE_OFF_SPEED_MPS = 1.0
MOVE_OFF_MIN_MPS = 0.5
CREEP_SPEED_MPS = 1.0  # the pass_ttc_s cap never stops the ego: it still has to get clear
MAX_JERK_DT_S = 0.5  # a longer (or negative) time between ticks resets the jerk limit
# A camera world (one with `views`) is not yet complete in its first moments: a track is reported
# only once its object has been detected in a few frames (perception/tracking.py min_hits), and its
# speed is known a few frames later. For this long from the first tick no lane counts as observed,
# so no lane change (nor a merge from a parking spot) starts on a lane that only looks empty.
SETTLE_S = 0.5
# A car this slow decelerates no more, whatever its brake: easing a harder brake than the comfortable
# one off at the jerk limit would keep it standing for a second after an emergency stop (into a red
# light); the comfortable one is still eased off (a one-tick change of mind does not start it moving).
STANDING_MPS = 0.05
MERGE_HORIZON_M = 150.0  # a turn this near is prepared for: the ego gets into the route's lane
MERGE_SLOWER_MPS = 2.0  # ... dropping this much below the vehicle beside it to let it by
NUDGE_EXTRA_M = 0.1  # the path shifts this much beyond the lateral margin (decision/nudge.py) ...
NUDGE_JUNCTION_M = 20.0  # ... but not with its front within this of a junction's stop line, nor in it
LOOK_HOLD_S = 1.0  # a look past a lead is held this long after the last tick that wanted it (see plan)
NUDGE_SLOW_M = 0.5  # shifted (or asked to shift) farther right than this, the ego slows to nudge.speed_mps


@dataclass(frozen=True, slots=True)
class LongitudinalParams:
    """How the planner turns what it brakes for into a target acceleration."""

    acc_coolness: float  # weight of the constant-acceleration heuristic against plain IDM, in [0, 1)
    max_jerk_mps3: float  # rate limit of the target acceleration (not applied to emergency braking)
    pedestrian_stop_margin_m: float  # kept before a pedestrian, on top of the IDM min gap
    obstacle_stop_margin_m: float  # kept before a stationary object, on top of the IDM min gap

    def __post_init__(self):
        if not 0.0 <= self.acc_coolness < 1.0:
            raise ValueError(f"acc_coolness={self.acc_coolness} must be in [0, 1)")
        if not self.max_jerk_mps3 > 0:
            raise ValueError(f"max_jerk_mps3={self.max_jerk_mps3} must be > 0")


class Planner:
    """Behaviour planner with `reset()` and `plan(world, route) -> Plan`.

    idm, mobil: the ego's IDM and MOBIL parameters (IDMParams / MOBILParams, or mappings of them).
    situation: the fields of `SituationParams` but the ego's size (what is looked at, how far).
    behaviour: the fields of `BehaviourParams` but idm and mobil (the state machine's thresholds).
    longitudinal: LongitudinalParams, or a mapping of them.
    junction: JunctionParams, or a mapping of them (decision/junction.py); None: no junction rules.
    nudge: NudgeParams, or a mapping of them (decision/nudge.py): keeping clear of oncoming vehicles
    that cut into the ego's lane; None: no such shift.
    naive: the naive planner (decision=naive): lane following with IDM behind what is in its
    corridor; no lights, signs, yielding or lane changes.
    ego_length_m, ego_width_m, max_decel_mps2 (positive): the vehicle's (from sim.vehicle).
    The values live in conf/decision/default.yaml, which documents each one.
    """

    def __init__(
        self,
        idm: IDMParams | Mapping[str, float],
        mobil: MOBILParams | Mapping[str, float],
        situation: Mapping[str, float],
        behaviour: Mapping[str, float],
        longitudinal: LongitudinalParams | Mapping[str, float],
        ego_length_m: float,
        ego_width_m: float,
        max_decel_mps2: float,
        junction: JunctionParams | Mapping[str, float] | None = None,
        naive: bool = False,
        nudge: NudgeParams | Mapping[str, float] | None = None,
    ):
        if not (ego_length_m > 0 and ego_width_m > 0 and max_decel_mps2 > 0):
            raise ValueError("ego_length_m, ego_width_m and max_decel_mps2 must be > 0")
        self.idm = IDMParams(**idm) if isinstance(idm, Mapping) else idm
        self.mobil = MOBILParams(**mobil) if isinstance(mobil, Mapping) else mobil
        self.situation_params = SituationParams(
            **situation, ego_length_m=ego_length_m, ego_width_m=ego_width_m
        )
        if isinstance(junction, Mapping):
            junction = JunctionParams(**junction)
        self.naive = bool(naive)
        self.behaviour_params = BehaviourParams(
            idm=self.idm,
            mobil=self.mobil,
            **behaviour,
            junction=None if self.naive else junction,
            lane_changes=not self.naive,
        )
        self._overtake_idm = dataclasses.replace(
            self.idm, accel_max_mps2=self.behaviour_params.overtake_accel_mps2
        )
        if self.behaviour_params.overtake_view_m > self.situation_params.oncoming_look_ahead_m:
            raise ValueError(
                "behaviour.overtake_view_m must be <= situation.oncoming_look_ahead_m (what is looked at)"
            )
        self.longitudinal = (
            LongitudinalParams(**longitudinal) if isinstance(longitudinal, Mapping) else longitudinal
        )
        self.max_decel_mps2 = max_decel_mps2
        self.nudge = (
            None
            if self.naive or nudge is None
            else (NudgeParams(**nudge) if isinstance(nudge, Mapping) else nudge)
        )
        self._ahead_m = np.zeros(0)  # 0, 1, 2 ... m: distances of the path points (grown on demand)
        self._road = RoadCache()
        self.reset()

    def reset(self) -> None:
        """Forget the behaviour state (start of an episode)."""
        self.state: BehaviourState | None = None
        self.situation: Situation | None = None  # the last tick's facts, for logs and tests
        self._ego_s_m: float | None = None
        self._last_accel: float | None = None
        self._last_t_s: float | None = None
        self._first_t_s: float | None = None
        self._shift_m = 0.0  # the path's shift from the lane centre (decision/nudge.py) ...
        self._shift_wanted_m = 0.0  # ... and what the oncoming vehicles in the lane ask for (or a look)
        self._shift_t_s: float | None = None
        self._look = False  # edging out to look past a stopped vehicle (behaviour.wants_to_look)
        self._look_held = (-1, -math.inf)  # ... held past which lead, until when
        self._way: tuple = (None, None)  # ((junction crossing, lane), the ego's way through it: ego_path)

    def plan(self, world: WorldModel, route: Route) -> Plan:
        """One tick: the path, speed profile, target acceleration, behaviour and reason."""
        road = route.road
        if self.naive:
            world = along_the_road(world, road, self._ego_s_m, self.behaviour_params.stationary_speed_mps)
        s, d, tracks = project(world, road, self._ego_s_m, self.situation_params)
        self._ego_s_m = s
        v = max(float(world.ego.speed_mps), 0.0)
        if self.state is None:
            self.state = BehaviourState(Behaviour.CRUISE, self._start_lane(road, d))
            self._first_t_s = world.t_s
        settling = world.views is not None and world.t_s - self._first_t_s < SETTLE_S

        old = self.state
        p = self.situation_params
        junction = self._junction(world, route, s, v)
        if self.nudge is not None and road.oncoming_lanes:  # (one-way roads: nothing comes the other way)
            self._update_shift(tracks, road, junction[0], old, world.t_s)
        still = self.behaviour_params.stationary_speed_mps
        rules = self.behaviour_params.junction is not None  # (the naive planner has none)

        def situation(lane: int, change: LaneChange | None) -> Situation:
            sit = extract_situation(
                tracks, route, s, d, v, lane, change, p, self._tests(road, lane), *junction, still
            )
            sit.keeping_right = self._shift_wanted_m < 0.0
            mark_unobserved(sit, road, world, p.rear_range_m, p.oncoming_look_ahead_m)
            if world.sirens:
                siren_behind(sit, world.sirens, p.emergency_rear_m)
            lead, j = sit.lead, sit.junction
            if (
                rules
                and lead is not None
                and lead.speed_mps < -still
                and waits_to_turn_left(j)
                and v * v <= 2.0 * self.idm.decel_comfort_mps2 * max(j.entry_gap_m + PULL_IN_M, 0.0)
            ):
                # The ego gives way to the oncoming traffic pulled PULL_IN_M into the box, clear of
                # its lane, and can stop there comfortably: a car of that traffic crossing the turn's
                # corridor ahead is not a lead. Followed (or braked for) as one, each car of a
                # platoon would hold the ego short of the box, where the red light finds it.
                sit.lead = None
            if settling:
                for gaps in (sit.left, sit.right):
                    if gaps is not None:
                        gaps.observed = False
            return sit

        sit = situation(old.lane, old.change)
        state, reason = next_behaviour(old, sit, self.behaviour_params)
        if state.lane != old.lane or state.change != old.change:  # a new corridor: look again
            sit = situation(state.lane, state.change)
        if state.behaviour == Behaviour.CREEP and sit.junction is not None:
            # Down to the creep speed by the stop line, braking comfortably on the way (a cap that
            # falls with the distance as the speed of a comfortable stop does).
            room = max(sit.junction.stop_gap_m - self.behaviour_params.junction.stop_line_margin_m, 0.0)
            creep = self.behaviour_params.junction.creep_speed_mps
            sit.speed_cap_mps = min(
                sit.speed_cap_mps, math.sqrt(creep**2 + 2.0 * self.idm.decel_comfort_mps2 * room)
            )
        shift = min(self._shift_m, self._shift_wanted_m)
        if shift < -NUDGE_SLOW_M or shift > 0.0:  # well over to the right, or edging out: slowly
            sit.speed_cap_mps = min(sit.speed_cap_mps, self.nudge.speed_mps)
        if state.behaviour == Behaviour.CRUISE and self._shift_m < 0.0:
            reason = f"keeping {-self._shift_m:.1f} m right of an oncoming vehicle in the lane"
        self.state, self.situation = state, sit
        peek = peek_shift_m(road, p.ego_width_m, self.nudge) if self.nudge is not None else 0.0
        lead_id = -1 if sit.lead is None else sit.lead.track_id
        # (All-round ground truth, without views, sees past anything: it never looks.)
        if peek > 0.0 and world.views is not None and wants_to_look(state, sit, self.behaviour_params):
            self._look_held = (lead_id, world.t_s + LOOK_HOLD_S)
        # Held behind the same lead for a while: a camera track's speed is noisy, and a parked car's
        # that reads above slow_lead_speed_mps for a tick would end the look, the nudge would then
        # take a passing car's noisy drift for a cut-in and move the ego right, out of the look.
        self._look = (
            lead_id >= 0
            and lead_id == self._look_held[0]
            and world.t_s <= self._look_held[1]
            and state.change is None
            and state.behaviour in (Behaviour.STOP, Behaviour.FOLLOW)
        )
        if self._look:
            reason += f"; edging out {peek:.1f} m left to look"

        accel = self._target_accel(sit, state, world.t_s)
        path, speeds = self._path(road, s, d, v, accel, sit.speed_cap_mps, state)
        return Plan(path, speeds, accel, state.behaviour, reason, target_lane=state.lane)

    def _update_shift(
        self, tracks, road: Road, junction: JunctionAhead | None, state: BehaviourState, t_s: float
    ) -> None:
        """Move the path's shift towards what the oncoming vehicles in the lane ask for, or else
        left (`peek_shift_m`) while the last tick wanted a look past a stopped vehicle: only in a
        lane of the ego's own direction, not while changing lanes or parked, and not near the
        junction ahead (`_junction`'s facts; where the turns, not a shift, keep the ways apart)."""
        p = self.situation_params
        near_junction = junction is not None and junction.stop_gap_m < NUDGE_JUNCTION_M
        keep = state.change is None and 0 <= state.lane < road.own_lanes and not near_junction
        clearance = p.lateral_margin_m + NUDGE_EXTRA_M
        # Wanting a look past what it stops for (the last tick did), the ego gives that up only for a
        # car already in its lane, not for a predicted drift (a camera track's is noisy).
        want = (
            wanted_shift_m(
                tracks,
                road,
                state.lane,
                p.ego_width_m,
                p.ego_length_m,
                clearance,
                self.nudge,
                predict=not self._look,
            )
            if keep
            else 0.0
        )
        if want == 0.0 and keep and self._look:  # the last tick wanted a look past what it stops for
            want = peek_shift_m(road, p.ego_width_m, self.nudge)
        dt = 0.0 if self._shift_t_s is None else t_s - self._shift_t_s
        self._shift_m, self._shift_t_s = step_shift_m(self._shift_m, want, dt, self.nudge), t_s
        self._shift_wanted_m = want

    def _tests(self, road: Road, lane: int) -> np.ndarray:
        """The situation's row tests for `lane`, their corridor (lead, pedestrian) where the path is
        going: shifted right as the oncoming vehicles in the lane ask (the path gets there at
        rate_mps), or widened left as a look past a stopped vehicle needs (edging out is for seeing:
        what it looks past stays in the corridor; were it shifted out, the ego would take the look
        for a way past, give the look up, find it in its way again, and so on every tick)."""
        tests = self._road.row_tests(road, lane, self.situation_params)
        shift = min(self._shift_m, self._shift_wanted_m)  # the farther right of the two ...
        if shift >= 0.0:
            shift = max(self._shift_m, self._shift_wanted_m)  # ... or left, edging out to look
        if shift == 0.0:
            return tests
        tests = tests.copy()
        if shift < 0.0:
            tests[[LEAD, PED], F_ONE] -= shift
        else:  # edging out to look: the corridor widened left, what it looks past still in it
            tests[[LEAD, PED], F_ONE] -= 0.5 * shift
            tests[[HALF_WIDTHS.start + LEAD, HALF_WIDTHS.start + PED], F_ONE] += 0.5 * shift
        return tests

    def _start_lane(self, road: Road, d_m: float) -> int:
        """The lane at the start: the one at d, or -1 (the shoulder: merge first) for an ego parked
        right of lane 0 (not for the naive planner: it just drives lane 0)."""
        parked = d_m < lane_offset_m(road, 0) - self.behaviour_params.parked_offset_m
        return -1 if parked and self.behaviour_params.lane_changes else int(road.lane_at(d_m))

    def _junction(
        self, world: WorldModel, route: Route, s_m: float, v_mps: float
    ) -> tuple[JunctionAhead | None, ObjectAhead | None]:
        """The facts of the next junction within reach (look-ahead + NEIGHBOUR_EXTRA_M) and the
        crossing vehicle to brake for (at the box entry), or None."""
        jp = self.behaviour_params.junction
        if jp is None or not route.junctions:
            return None, None
        half_length = 0.5 * self.situation_params.ego_length_m
        crossing = next_crossing(route, s_m - half_length)
        reach = self.situation_params.look_ahead_m + NEIGHBOUR_EXTRA_M
        if crossing is None or crossing.stop_s_m - (s_m + half_length) > reach:
            return None, None
        lane = route.lane if self.state is None or self.state.lane < 0 else self.state.lane
        if self._way[0] != (crossing, lane):  # the ego's way through it, in its lane
            self._way = ((crossing, lane), ego_path(crossing, route.road, lane_offset_m(route.road, lane)))
        j, conflict = junction_facts(
            crossing,
            world,
            s_m + half_length,
            v_mps,
            2.0 * half_length,
            self.idm.decel_comfort_mps2,
            jp,
            self._way[1],
        )
        if conflict is None:
            return j, None
        return j, ObjectAhead(conflict[0], VEHICLE, max(j.entry_gap_m, 0.0), 0.0)

    # ------------------------------------------------------------------ longitudinal
    def effective_leaders(
        self, sit: Situation, state: BehaviourState | None = None
    ) -> list[tuple[float, float]]:
        """(gap [m], speed [m/s]) of what IDM brakes for: the end of the road, the lead (kept
        farther back when it stands still), a stop point before the pedestrian, the box entry
        before a crossing vehicle that will not stop; with the behaviour `state`: the stop line
        while waiting at a junction, the spot itself while parked waiting to merge (a leader at the
        IDM min gap holds a standing ego with no acceleration)."""
        leaders = [(sit.road_end_gap_m, 0.0)]
        if sit.crossing is not None:
            leaders.append((sit.crossing.gap_m, 0.0))
        if state is not None:
            if state.waiting_at >= 0 and sit.junction is not None:
                jp, j = self.behaviour_params.junction, sit.junction
                gap = j.stop_gap_m + self.idm.min_gap_m - jp.stop_line_margin_m
                if waits_to_turn_left(j):
                    # An unprotected left turn waits in the box, so that it turns when the oncoming
                    # traffic stops for the end of its green (the ego's own red then finds it committed).
                    gap = j.entry_gap_m + PULL_IN_M + self.idm.min_gap_m
                elif state.behaviour == Behaviour.CREEP:
                    gap = creep_gap_m(j) + self.idm.min_gap_m
                elif (
                    state.behaviour == Behaviour.YIELD and j.entry_gap_m <= 0.0 and j.pedestrian_on_exit >= 0
                ):
                    gap = j.exit_gap_m + self.idm.min_gap_m - jp.stop_line_margin_m  # before the crosswalk
                elif state.behaviour == Behaviour.YIELD and j.stop_gap_m < 0.0:  # over the line:
                    gap = max(j.entry_gap_m, 0.0) + self.idm.min_gap_m  # at the box, or where it stands
                leaders.append((gap, 0.0))
            if state.lane < 0 and state.change is None:
                leaders.append((self.idm.min_gap_m, 0.0))
            leaders += self._turn_lane_leaders(sit, state)
        lead = sit.lead
        if lead is not None and sit.oncoming and lead.speed_mps < -self.behaviour_params.stationary_speed_mps:
            # Passing through the oncoming lane (checked clear of what comes the other way): a
            # vehicle coming there is not followed, which would only draw the pass out; the ego goes
            # back to its lane as soon as it can, and brakes hard should the vehicle come too near.
            lead = None
        if lead is not None:
            leaders.append((lead.gap_m - self._steer_room_m(lead.speed_mps), lead.speed_mps))
        if sit.pedestrian is not None:
            leaders.append((sit.pedestrian.gap_m - self.longitudinal.pedestrian_stop_margin_m, 0.0))
        return leaders

    def _steer_room_m(self, lead_speed_mps: float) -> float:
        """Room [m] kept behind a lead, on top of IDM's min gap, to steer round it from a stop:
        `obstacle_stop_margin_m` behind a stationary one, less and less the faster it crawls, none
        from `slow_lead_speed_mps` (a crawling camera track may be a parked car whose speed is
        noise: followed to IDM's gap, the ego would stand too near it to go round once it settles)."""
        bp = self.behaviour_params
        still, slow = bp.stationary_speed_mps, bp.slow_lead_speed_mps
        share = (slow - abs(lead_speed_mps)) / (slow - still)
        return self.longitudinal.obstacle_stop_margin_m * min(max(share, 0.0), 1.0)

    def _turn_lane_leaders(self, sit: Situation, state: BehaviourState) -> list[tuple[float, float]]:
        """A turn ahead is taken from the route's lane only (from another the route is missed):
        while the ego is still in another lane, not yet changing, it drops behind the vehicle beside
        it in the route's lane (a leader just ahead at that vehicle's speed less MERGE_SLOWER_MPS)
        to open a gap, and stops at the stop line rather than turn from there."""
        j = sit.junction
        if (
            j is None
            or j.turn == "straight"
            or state.change is not None
            or state.lane == sit.route_lane
            or state.lane < 0
            or sit.oncoming
            or j.stop_gap_m > MERGE_HORIZON_M
        ):
            return []
        leaders = [(j.stop_gap_m + self.idm.min_gap_m, 0.0)]
        gaps = sit.right if sit.route_lane < state.lane else sit.left
        if gaps is not None:
            beside = [
                v
                for g, v in (
                    (gaps.lead_gap_m, gaps.lead_speed_mps),
                    (gaps.follower_gap_m, gaps.follower_speed_mps),
                )
                if g < self.behaviour_params.lane_change_min_gap_m
            ]
            if beside:
                leaders.append((self.idm.min_gap_m, max(min(beside) - MERGE_SLOWER_MPS, 0.0)))
        return leaders

    def _target_accel(self, sit: Situation, state: BehaviourState, t_s: float) -> float:
        """IDM (ACC-softened) behind the most constraining leader, no more than the curves allow,
        clipped to the vehicle's braking and jerk-limited."""
        if state.behaviour == Behaviour.EMERGENCY_BRAKE:
            accel = -self.max_decel_mps2
        else:
            idm = self._overtake_idm if sit.oncoming else self.idm
            accel = min(self._follow_accel(sit, state), sit.curve_accel_mps2, idm.accel_max_mps2)
            accel = max(accel, -self.max_decel_mps2)
            dt = t_s - self._last_t_s if self._last_t_s is not None else -1.0
            if self._last_accel is not None and 0.0 < dt <= MAX_JERK_DT_S:
                step = self.longitudinal.max_jerk_mps3 * dt
                last = self._last_accel
                if sit.ego_speed_mps < STANDING_MPS:
                    last = max(last, -self.idm.decel_comfort_mps2)
                accel = min(max(accel, last - step), last + step)
        self._last_accel, self._last_t_s = accel, t_s
        return accel

    def _follow_accel(self, sit: Situation, state: BehaviourState | None = None) -> float:
        """The lowest ACC-softened IDM acceleration behind the effective leaders, with the speed cap
        as desired speed; while passing an object not yet cleared sideways, at most the speed that
        keeps a time to collision of `pass_ttc_s` to it."""
        v, cap = sit.ego_speed_mps, sit.speed_cap_mps
        if sit.uncleared is not None:
            pass_ttc_s = self.behaviour_params.pass_ttc_s
            passing = max(sit.uncleared.speed_mps, 0.0) + sit.uncleared.gap_m / pass_ttc_s
            cap = min(cap, max(passing, CREEP_SPEED_MPS))
        b, coolness = self.idm.decel_comfort_mps2, self.longitudinal.acc_coolness
        idm = self._overtake_idm if sit.oncoming else self.idm  # in an oncoming lane: out of it soon
        return min(
            [
                acc_blend(idm_accel(v, cap, gap, v_lead, idm), v, gap, v_lead, b, coolness)
                for gap, v_lead in self.effective_leaders(sit, state)
            ]
        )

    # ------------------------------------------------------------------ path
    def _path(
        self, road: Road, s: float, d: float, v: float, accel: float, cap: float, state: BehaviourState
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) world path from the ego along the planned lateral offset, and (N,) speeds.

        The path linearly interpolates the offset curve between the road's samples: the lane
        centre's samples (cached per lane) when keeping a lane, the reference line shifted along
        the interpolated normal during a lane change (or at the ego's offset d, parked on the
        shoulder waiting to merge).
        """
        n = int(max(PATH_MIN_LENGTH_M, PATH_HORIZON_S * v) / PATH_SPACING_M) + 1
        n = max(min(n, int((road.length_m - s) / PATH_SPACING_M) + 1), 2)  # stop at the road's end
        if n > len(self._ahead_m):
            self._ahead_m = np.arange(2 * n) * PATH_SPACING_M
        ahead = self._ahead_m[:n]
        s_path = s + ahead
        if state.change is None and state.lane < 0:  # parked, waiting to merge: stay where it is
            path = np.interp(s_path, road.s_m, self._road.centre(road, None))
            path += d * np.interp(s_path, road.s_m, self._road.normal(road))
        elif state.change is None:
            path = np.interp(s_path, road.s_m, self._road.centre(road, state.lane))
            if self._shift_m != 0.0:
                path += self._shift_m * np.interp(s_path, road.s_m, self._road.normal(road))
        else:
            d_path = path_offset_m(s_path, road, state.lane, state.change)
            path = np.interp(s_path, road.s_m, self._road.centre(road, None))
            path += d_path * np.interp(s_path, road.s_m, self._road.normal(road))
        # The profile is monotonic along the path: its ends tell whether a bound cuts it anywhere.
        speeds = v * v + 2.0 * accel * ahead
        if speeds.item(-1) < 0.0:
            np.maximum(speeds, 0.0, out=speeds)
        np.sqrt(speeds, out=speeds)
        if accel > 0.0 and v < MOVE_OFF_SPEED_MPS:
            floor = v + accel * PROFILE_LEAD_S
            if state.behaviour == Behaviour.STOP_AT_LINE:
                floor = max(floor, MOVE_OFF_MIN_MPS)
            np.maximum(speeds, floor, out=speeds)
        cap = max(cap, 0.0)
        if speeds.item(0) > cap or speeds.item(-1) > cap:
            np.minimum(speeds, cap, out=speeds)
        return path.view(float).reshape(n, 2), speeds


class RoadCache:
    """What the planner derives from the road it drives, kept while that road stays the same: the
    samples as complex numbers x + iy (the unit normal to the left, the centre line of each lane,
    lane None: the reference line) and, per lane, `situation.row_tests`."""

    def __init__(self):
        self._road: Road | None = None

    def normal(self, road: Road) -> np.ndarray:
        """(M,) unit normals i e^(i heading) at the road's samples."""
        self._use(road)
        return self._normal

    def centre(self, road: Road, lane: int | None) -> np.ndarray:
        """(M,) points of the lane's centre line (lane None: the reference line) at the samples."""
        self._use(road)
        if lane not in self._centres:
            d = 0.0 if lane is None else lane_offset_m(road, lane)
            self._centres[lane] = road.xy_m[:, 0] + 1j * road.xy_m[:, 1] + d * self._normal
        return self._centres[lane]

    def row_tests(self, road: Road, lane: int, p: SituationParams) -> np.ndarray:
        """`situation.row_tests(road, lane, p)` (p is the planner's own, fixed)."""
        self._use(road)
        if lane not in self._tests:
            self._tests[lane] = row_tests(road, lane, p)
        return self._tests[lane]

    def _use(self, road: Road) -> None:
        if road is not self._road:
            self._road, self._centres, self._tests = road, {}, {}
            self._normal = 1j * np.exp(1j * road.heading_rad)


def along_the_road(world: WorldModel, road: Road, s_hint_m: float | None, still_mps: float) -> WorldModel:
    """The naive planner's view: vehicles heading the ego's way along the road (within 45 degrees),
    vehicles standing along it either way (slower than `still_mps`), and everything else but vehicles.
    Lane following follows the traffic of its lane; a vehicle crossing it (at a junction, pulling out)
    or coming the other way (across a left turn) is what yielding would look at, and the naive stack
    does not yield."""
    if len(world) == 0:
        return world
    _, _, rotation = road.to_frenet_rotation(world.xy_m, s_hint_m, window_m=200.0)
    relative = (np.exp(1j * world.yaw_rad) * rotation).real  # each heading along the road's frame
    standing = np.hypot(world.v_mps[:, 0], world.v_mps[:, 1]) < still_mps
    along = np.where(standing, np.abs(relative), relative) >= math.cos(math.pi / 4)
    keep = (world.class_ids != VEHICLE) | along
    if keep.all():
        return world
    return dataclasses.replace(
        world,
        ids=world.ids[keep],
        class_ids=world.class_ids[keep],
        xy_m=world.xy_m[keep],
        v_mps=world.v_mps[keep],
        yaw_rad=world.yaw_rad[keep],
        size_m=world.size_m[keep],
        scores=world.scores[keep],
        emergency=None if world.emergency is None else world.emergency[keep],
        v_std_mps=None if world.v_std_mps is None else world.v_std_mps[keep],
        heading_seen=None if world.heading_seen is None else world.heading_seen[keep],
    )


def acc_blend(
    a_idm: float, v_mps: float, gap_m: float, v_lead_mps: float, decel_mps2: float, coolness: float
) -> float:
    """The ACC model ("Enhanced IDM", Kesting, Treiber & Helbing 2010, arXiv:0912.3613):
    IDM's acceleration, softened towards the constant-acceleration heuristic (CAH) where IDM brakes
    harder than the situation needs. With the leader's acceleration unknown (taken as 0), the CAH is
    the braking that just matches the leader's speed at the gap: -max(v - v_lead, 0)^2 / (2 gap).

    a = a_idm where a_idm >= a_cah, else (1 - c) a_idm + c (a_cah + b tanh((a_idm - a_cah) / b)),
    all in m/s^2 (the gap clamped as IDM clamps it).
    """
    closing = max(v_mps - v_lead_mps, 0.0)
    a_cah = -closing * closing / (2.0 * max(gap_m, MIN_GAP_M))
    if a_idm >= a_cah:
        return a_idm
    return (1.0 - coolness) * a_idm + coolness * (
        a_cah + decel_mps2 * math.tanh((a_idm - a_cah) / decel_mps2)
    )

"""Each transition of the behaviour state machine, on crafted Situations (no road, no tracks)."""

import dataclasses
import math

import pytest

from decision.behaviour import (
    BehaviourParams,
    BehaviourState,
    lane_change_fits,
    lane_change_length_m,
    lane_change_safe,
    next_behaviour,
    threat,
    wants_to_look,
)
from decision.idm import IDMParams, MOBILParams
from decision.plan import Behaviour
from decision.situation import LaneChange, LaneGaps, ObjectAhead, Situation
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE

P = BehaviourParams(
    idm=IDMParams(accel_max_mps2=1.8, decel_comfort_mps2=3.0, time_headway_s=1.5, min_gap_m=2.5, delta=4.0),
    mobil=MOBILParams(politeness=0.0, min_accel_gain_mps2=0.2, max_braking_imposed_mps2=2.0),
    stationary_speed_mps=0.5,
    follow_range_m=50.0,
    emergency_ttc_s=1.5,
    emergency_exit_ttc_s=3.0,
    emergency_decel_mps2=5.0,
    lane_change_duration_s=4.0,
    lane_change_min_length_m=20.0,
    lane_change_min_gap_m=5.0,
    lane_change_min_duration_s=2.5,
    pass_ttc_s=1.5,
    overtake_extra_m=20.0,
    overtake_margin_s=1.0,
    slow_lead_speed_mps=3.0,
    overtake_accel_mps2=2.4,
    overtake_view_m=100.0,
    overtake_unseen_reaction_s=1.0,
    overtake_unseen_decel_mps2=3.0,
    parked_offset_m=1.0,
)
CRUISE = BehaviourState(Behaviour.CRUISE, lane=0)
FREE_LEFT = LaneGaps(lane=1)


def situation(**kw) -> Situation:
    base = dict(ego_s_m=100.0, ego_d_m=-1.75, ego_speed_mps=10.0, lane=0, route_lane=0, speed_cap_mps=15.0)
    base.update(kw)
    return Situation(**base)


def car(gap_m: float, speed_mps: float, track_id: int = 7) -> ObjectAhead:
    return ObjectAhead(track_id, VEHICLE, gap_m, speed_mps)


def test_cruise_to_follow_and_back():
    state, why = next_behaviour(CRUISE, situation(lead=car(30.0, 10.0)), P)
    assert state.behaviour == Behaviour.FOLLOW
    assert why == "following vehicle 7 at 30.0 m"
    # The lead gone: back to CRUISE.
    state, why = next_behaviour(state, situation(), P)
    assert state.behaviour == Behaviour.CRUISE and why.startswith("cruising")


def test_follow_range_has_hysteresis():
    far = situation(lead=car(55.0, 10.0))  # beyond the range, inside range x hysteresis
    assert next_behaviour(CRUISE, far, P)[0].behaviour == Behaviour.CRUISE
    following = BehaviourState(Behaviour.FOLLOW, lane=0)
    assert next_behaviour(following, far, P)[0].behaviour == Behaviour.FOLLOW
    assert next_behaviour(following, situation(lead=car(70.0, 10.0)), P)[0].behaviour == Behaviour.CRUISE


def test_stop_for_a_pedestrian():
    ped = ObjectAhead(3, PEDESTRIAN, 30.0, 0.0)
    state, why = next_behaviour(CRUISE, situation(pedestrian=ped, lead=car(45.0, 10.0)), P)
    assert state.behaviour == Behaviour.STOP
    assert why.startswith("stopping for pedestrian 3")
    assert state.lane == 0 and state.change is None  # no going around pedestrians
    # A pedestrian beyond the lead: follow the lead first.
    state, _ = next_behaviour(CRUISE, situation(pedestrian=ped, lead=car(20.0, 10.0)), P)
    assert state.behaviour == Behaviour.FOLLOW


def test_change_lane_around_a_blocking_obstacle_when_the_next_lane_is_free():
    sit = situation(lead=ObjectAhead(4, OBSTACLE, 50.0, 0.0), left=FREE_LEFT)
    state, why = next_behaviour(CRUISE, sit, P)
    assert state.behaviour == Behaviour.CHANGE_LANE
    assert state.lane == 1
    assert state.change == LaneChange(start_s_m=100.0, start_d_m=-1.75, length_m=40.0)  # 10 m/s x 4 s
    assert "obstacle 4" in why and "lane 1" in why


def test_a_stopped_vehicle_blocks_too_but_a_slow_one_does_not():
    state, _ = next_behaviour(CRUISE, situation(lead=car(40.0, 0.1), left=FREE_LEFT), P)
    assert state.behaviour == Behaviour.CHANGE_LANE
    state, _ = next_behaviour(CRUISE, situation(lead=car(40.0, 3.0), left=FREE_LEFT), P)
    assert state.behaviour == Behaviour.FOLLOW  # no lane change for speed


@pytest.mark.parametrize(
    "left, why",
    [
        (None, "no other lane"),
        (
            LaneGaps(1, lead_gap_m=-2.0, lead_speed_mps=10.0, follower_gap_m=-2.5, follower_speed_mps=10.0),
            "gap ahead",
        ),
        (LaneGaps(1, follower_gap_m=8.0, follower_speed_mps=16.0), "follower in lane 1 would brake"),
        (LaneGaps(1, lead_gap_m=15.0, lead_speed_mps=0.0), "ego would brake"),
        (LaneGaps(1, lead_gap_m=50.0, lead_speed_mps=0.0), "blocked too"),
    ],
)
def test_stop_before_a_blocking_obstacle_when_the_next_lane_is_not_safe(left, why):
    sit = situation(lead=ObjectAhead(4, OBSTACLE, 40.0, 0.0), left=left)
    state, reason = next_behaviour(CRUISE, sit, P)
    assert state.behaviour == Behaviour.STOP
    assert state.lane == 0 and state.change is None
    assert reason.startswith("stopping for obstacle 4 at 40.0 m") and why in reason


def test_the_new_followers_braking_decides_safety():
    sit = situation(ego_speed_mps=10.0)
    # Same speed, 20 m behind: mild. Much faster, 20 m behind: it would have to brake hard.
    assert lane_change_safe(LaneGaps(1, follower_gap_m=20.0, follower_speed_mps=10.0), sit, P)[0]
    assert not lane_change_safe(LaneGaps(1, follower_gap_m=20.0, follower_speed_mps=20.0), sit, P)[0]


def test_lane_change_length_leaves_room_to_clear_the_obstacle():
    assert lane_change_length_m(10.0, math.inf, P) == pytest.approx(40.0)
    assert lane_change_length_m(1.0, math.inf, P) == pytest.approx(20.0)  # the minimum length
    # Standing 6.5 m behind it: blend short enough to be beside the obstacle's lane in time.
    assert lane_change_length_m(0.0, 6.5, P) == pytest.approx(10.0)
    # 40 m away at 10 m/s: clear of it 1.5 s (15 m) before reaching it.
    assert lane_change_length_m(10.0, 40.0, P) == pytest.approx(25.0 / 0.65)
    assert lane_change_fits(10.0, 40.0, P)
    # 20 m away at 10 m/s there is no comfortable way round: brake first (a swerve is never planned).
    assert not lane_change_fits(10.0, 20.0, P)
    assert lane_change_length_m(10.0, 20.0, P) == pytest.approx(25.0)  # 10 m/s x min duration
    state, why = next_behaviour(
        CRUISE, situation(lead=ObjectAhead(4, OBSTACLE, 20.0, 0.0), left=FREE_LEFT), P
    )
    assert state.behaviour == Behaviour.STOP and why.endswith("too close to go round at this speed")


def test_change_lane_ends_in_cruise_or_follow():
    changing = BehaviourState(Behaviour.CHANGE_LANE, lane=1, change=LaneChange(100.0, -1.75, 40.0))
    on_the_way = situation(ego_s_m=120.0, ego_d_m=0.0, lane=1, left=None, right=LaneGaps(0))
    state, why = next_behaviour(changing, on_the_way, P)
    assert state == changing and why == "changing to lane 1"
    done = situation(ego_s_m=141.0, ego_d_m=1.75, lane=1, route_lane=1, left=None, right=LaneGaps(0))
    state, _ = next_behaviour(changing, done, P)
    assert state == BehaviourState(Behaviour.CRUISE, lane=1)
    state, _ = next_behaviour(
        changing, situation(ego_s_m=141.0, lane=1, route_lane=1, lead=car(25.0, 10.0)), P
    )
    assert state == BehaviourState(Behaviour.FOLLOW, lane=1)


def test_return_to_the_route_lane_once_past_the_obstacle():
    passed = BehaviourState(Behaviour.CRUISE, lane=1)
    # The obstacle is still ahead in the route's lane: stay.
    blocked = situation(ego_d_m=1.75, lane=1, right=LaneGaps(0, lead_gap_m=10.0, lead_speed_mps=0.0))
    assert next_behaviour(passed, blocked, P)[0] == BehaviourState(Behaviour.CRUISE, lane=1)
    # It is 8 m behind: go back.
    past = situation(ego_d_m=1.75, lane=1, right=LaneGaps(0, follower_gap_m=8.0, follower_speed_mps=0.0))
    state, why = next_behaviour(passed, past, P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 0
    assert state.change == LaneChange(100.0, 1.75, 40.0) and why == "returning to lane 0"
    # Not while a car is alongside in the route's lane.
    alongside = situation(ego_d_m=1.75, lane=1, right=LaneGaps(0, lead_gap_m=-3.0, lead_speed_mps=10.0))
    assert next_behaviour(passed, alongside, P)[0].lane == 1


def test_emergency_brake_on_low_ttc_and_out_of_it_when_safe():
    # 10 m/s onto a stopped car 12 m ahead: TTC 1.2 s.
    sit = situation(lead=car(12.0, 0.0))
    ttc, need, obj = threat(sit)
    assert ttc == pytest.approx(1.2) and need == pytest.approx(100.0 / 24.0) and obj.track_id == 7
    state, why = next_behaviour(BehaviourState(Behaviour.FOLLOW, lane=0), sit, P)
    assert state.behaviour == Behaviour.EMERGENCY_BRAKE and why.startswith("emergency brake for vehicle 7")
    # Slower now, TTC 2 s: between the thresholds, keep braking (hysteresis).
    state, _ = next_behaviour(state, situation(ego_speed_mps=4.0, lead=car(8.0, 0.0)), P)
    assert state.behaviour == Behaviour.EMERGENCY_BRAKE
    # Stopped: safe again, back to STOP before the blocker (lane 1 is not free).
    state, _ = next_behaviour(state, situation(ego_speed_mps=0.0, lead=car(4.0, 0.0), left=None), P)
    assert state.behaviour == Behaviour.STOP


def test_emergency_brake_when_the_needed_deceleration_is_too_high():
    # TTC 1.9 s but a closing speed of 20 m/s over 38 m needs 5.3 m/s^2: brake now.
    sit = situation(ego_speed_mps=20.0, speed_cap_mps=25.0, lead=car(38.0, 0.0))
    assert next_behaviour(CRUISE, sit, P)[0].behaviour == Behaviour.EMERGENCY_BRAKE
    # A pedestrian suddenly 8 m ahead of a car at 10 m/s.
    ped = ObjectAhead(3, PEDESTRIAN, 8.0, 0.0)
    state, why = next_behaviour(CRUISE, situation(pedestrian=ped), P)
    assert state.behaviour == Behaviour.EMERGENCY_BRAKE and "pedestrian 3" in why


def test_emergency_brake_keeps_the_lane_change_in_progress():
    changing = BehaviourState(Behaviour.CHANGE_LANE, lane=1, change=LaneChange(100.0, -1.75, 40.0))
    sit = situation(ego_s_m=110.0, lane=1, lead=car(5.0, 0.0))
    state, _ = next_behaviour(changing, sit, P)
    assert state == BehaviourState(Behaviour.EMERGENCY_BRAKE, lane=1, change=changing.change)


def test_a_lane_change_stalled_behind_an_object_starts_again_from_where_it_stands():
    # Moving over to lane 1 round a cone in lane 0, the ego braked to a stop at d -1.2 when the cone
    # turned out nearer than first seen: its path crossed it. A shorter path from here clears it.
    changing = BehaviourState(Behaviour.CHANGE_LANE, lane=1, change=LaneChange(100.0, -1.75, 19.0))
    cone = ObjectAhead(4, OBSTACLE, 6.0, 0.0)
    stalled = situation(
        ego_s_m=104.0, ego_d_m=-1.2, ego_speed_mps=0.0, lane=1, lead=cone, right=LaneGaps(lane=0)
    )
    state, why = next_behaviour(changing, stalled, P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 1
    assert why == "changing to lane 1 again from here, around obstacle 4 at 6.0 m"
    assert state.change == LaneChange(104.0, -1.2, lane_change_length_m(0.0, 6.0, P))
    assert state.change.length_m < changing.change.length_m
    # No room left for any path round it: the ego stops where it is.
    state, why = next_behaviour(changing, dataclasses.replace(stalled, lead=car(4.0, 0.0)), P)
    assert state == BehaviourState(Behaviour.STOP, lane=1) and "too close to go round" in why


def test_a_lane_change_stalled_behind_a_stopped_car_goes_round_it_from_where_it_stands():
    # Returning to lane 0, the ego braked to a stop halfway (d -0.9) behind a car that stopped there.
    returning = BehaviourState(Behaviour.CHANGE_LANE, lane=0, change=LaneChange(100.0, 1.75, 40.0))
    stalled = dict(ego_s_m=110.0, ego_d_m=-0.9, ego_speed_mps=0.0, lane=0, lead=car(6.0, 0.0))
    state, why = next_behaviour(returning, situation(**stalled, left=FREE_LEFT), P)
    assert state.change.start_s_m == 110.0 and "again from here" in why  # first it tries a new path
    # The new path ends in the car's lane too: the car is still ahead, so the ego goes round it.
    state, why = next_behaviour(state, situation(**stalled, left=FREE_LEFT), P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 1 and "around vehicle 7" in why
    assert state.change.start_s_m == 110.0 and state.change.start_d_m == -0.9  # from where it stands
    restarted = dataclasses.replace(returning, change=LaneChange(110.0, -0.9, 9.0))
    state, why = next_behaviour(restarted, situation(**stalled, left=None), P)
    assert state == BehaviourState(Behaviour.STOP, lane=0) and why.endswith("no other lane")
    # Still rolling, or behind a car that drives on: the change goes on.
    for change in ({"ego_speed_mps": 2.0}, {"lead": car(6.0, 2.0)}):
        assert (
            next_behaviour(returning, situation(**{**stalled, **change}, left=FREE_LEFT), P)[0] == returning
        )


# ---------------------------------------------------------------------------- emergency vehicles
def test_an_emergency_vehicle_behind_makes_the_ego_move_over_to_the_right_first():
    ev = car(40.0, 20.0, track_id=9)  # its gap behind the ego
    mid = BehaviourState(Behaviour.CRUISE, lane=1)
    sit = situation(lane=1, route_lane=1, emergency_behind=ev, left=LaneGaps(lane=2), right=LaneGaps(lane=0))
    state, why = next_behaviour(mid, sit, P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 0 and state.change is not None
    assert why.startswith("making way for emergency vehicle 9 40 m behind")
    # No room on the right (a car alongside): to the left.
    sit.right = LaneGaps(lane=0, follower_gap_m=-1.0, follower_speed_mps=10.0)
    state, _ = next_behaviour(mid, sit, P)
    assert state.lane == 2
    # Only an oncoming lane beside it: it stays, and goes on driving.
    sit = situation(emergency_behind=ev, left=LaneGaps(lane=1, oncoming=True))
    state, why = next_behaviour(CRUISE, sit, P)
    assert state.change is None and state.behaviour == Behaviour.CRUISE


def test_no_lane_change_into_a_lane_an_emergency_vehicle_comes_along():
    # Off its route's lane, the way back is closed while the emergency vehicle comes along it ...
    off_route = BehaviourState(Behaviour.CRUISE, lane=1)
    sit = situation(lane=1, route_lane=0, right=LaneGaps(lane=0, emergency_behind=True))
    state, _ = next_behaviour(off_route, sit, P)
    assert state.lane == 1 and state.change is None
    ok, why = lane_change_safe(sit.right, sit, P)
    assert not ok and why == "an emergency vehicle comes along lane 0"
    # ... and open once it has gone by.
    sit.right = LaneGaps(lane=0, lead_gap_m=30.0, lead_speed_mps=20.0)
    state, why = next_behaviour(off_route, sit, P)
    assert state.lane == 0 and why == "returning to lane 0"


def test_the_naive_planner_does_not_make_way():
    naive = dataclasses.replace(P, lane_changes=False, junction=None)
    sit = situation(emergency_behind=car(30.0, 20.0), left=FREE_LEFT)
    state, _ = next_behaviour(CRUISE, sit, naive)
    assert state.change is None


def test_no_lane_change_into_a_lane_the_cameras_do_not_cover():
    blocked = situation(lead=car(50.0, 0.0), left=LaneGaps(lane=1, observed=False))
    state, why = next_behaviour(CRUISE, blocked, P)
    assert state.change is None and why.endswith("lane 1 is not all in the cameras' view")
    blocked.left = LaneGaps(lane=1)  # seen clear: around it
    state, _ = next_behaviour(CRUISE, blocked, P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 1


def test_an_oncoming_car_in_the_lane_passed_through_counts_by_its_time_to_collision_alone():
    """Passing through the oncoming lane (lane 1 of a two-way road), a car coming the other way 53 m
    off closes at 23 m/s: braking to its speed would need 5 m/s^2, which is no reason to brake (it
    cannot make the closing speed zero); a TTC under 1.5 s is."""
    passing = situation(lane=1, oncoming=True, ego_speed_mps=13.0, lead=car(53.0, -10.0))
    ttc, need, _ = threat(passing)
    assert ttc == pytest.approx(53.0 / 23.0) and need == 0.0
    assert (
        next_behaviour(BehaviourState(Behaviour.CRUISE, lane=1), passing, P)[0].behaviour
        != Behaviour.EMERGENCY_BRAKE
    )
    near = dataclasses.replace(passing, lead=car(30.0, -10.0))
    assert (
        next_behaviour(BehaviourState(Behaviour.CRUISE, lane=1), near, P)[0].behaviour
        == Behaviour.EMERGENCY_BRAKE
    )
    # In the ego's own lane, the same closing car needs its deceleration counted, unless the ego is
    # moving over right of it (it cuts into the lane): then, again, its time to collision alone.
    own = dataclasses.replace(passing, lane=0, oncoming=False)
    assert threat(own)[1] == pytest.approx(23.0**2 / 106.0)
    assert threat(dataclasses.replace(own, keeping_right=True))[:2] == (pytest.approx(53.0 / 23.0), 0.0)


def test_wants_to_look_past_what_it_waits_to_pass_through_the_oncoming_lane():
    oncoming = LaneGaps(lane=1, oncoming=True, observed=False)
    stopped = situation(ego_speed_mps=3.0, lead=car(20.0, 0.0), left=oncoming)
    state, _ = next_behaviour(CRUISE, stopped, P)
    assert state.behaviour == Behaviour.STOP and wants_to_look(state, stopped, P)
    slow = situation(ego_speed_mps=3.0, lead=car(20.0, 2.0), left=oncoming)  # a slow hazard, followed
    state, _ = next_behaviour(CRUISE, slow, P)
    assert state.behaviour == Behaviour.FOLLOW and wants_to_look(state, slow, P)
    # Not behind a car that drives on, not with a lane of its own direction to change into, not
    # where it may not go round at all (a junction ahead), not once changing lanes.
    moving = situation(ego_speed_mps=3.0, lead=car(20.0, 9.0), left=oncoming)
    assert not wants_to_look(next_behaviour(CRUISE, moving, P)[0], moving, P)
    same_way = situation(ego_speed_mps=3.0, lead=car(20.0, 0.0), left=LaneGaps(lane=1, observed=False))
    assert not wants_to_look(next_behaviour(CRUISE, same_way, P)[0], same_way, P)
    queued = dataclasses.replace(stopped, road_end_gap_m=30.0)
    assert not wants_to_look(next_behaviour(CRUISE, queued, P)[0], queued, P)
    changing = BehaviourState(Behaviour.CHANGE_LANE, lane=1, change=LaneChange(100.0, -1.75, 30.0))
    assert not wants_to_look(changing, stopped, P)

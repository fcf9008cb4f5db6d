"""Junctions, overtaking through an oncoming lane, merging from a parked start and the naive
planner: the facts of decision/junction.py on crafted world models, and each new transition of
the state machine on crafted Situations (as tests/decision/test_behaviour.py)."""

import math
from dataclasses import replace

import numpy as np
import pytest
from test_behaviour import P as HIGHWAY_P
from test_planner import RIG

from decision.behaviour import BehaviourState, next_behaviour, overtake_clear, pass_time_s, unseen_travel_m
from decision.junction import (
    CREEP_INTO_BOX_M,
    JunctionAhead,
    JunctionParams,
    ego_path,
    junction_facts,
    time_in_box,
    wait_reason,
)
from decision.plan import Behaviour
from decision.planner import along_the_road
from decision.route import Approach, JunctionCrossing, Road, Route, Segment
from decision.situation import LaneGaps, ObjectAhead, Situation, SituationParams, speed_limits
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, EgoState, WorldModel

JP = JunctionParams(
    critical_gap_s=4.5,
    stop_line_margin_m=1.0,
    full_stop_speed_mps=0.1,
    stop_zone_m=3.0,
    crosswalk_width_m=4.0,
    conflict_margin_s=1.0,
    red_stop_decel_mps2=5.0,
    moving_speed_mps=0.5,
)
# The state machine's parameters of tests/decision/test_behaviour.py, with the junction rules and the
# planner's comfortable acceleration.
P = replace(
    HIGHWAY_P,
    idm=replace(HIGHWAY_P.idm, accel_max_mps2=1.5),
    junction=JP,
)
NAIVE = replace(P, junction=None, lane_changes=False)
CRUISE = BehaviourState(Behaviour.CRUISE, lane=0)
# The box of the crossings below: centre (100, 0), the ego approaching along +x, half size 7 m.
CENTRE, HALF = (100.0, 0.0), 7.0


def junction(**kw) -> JunctionAhead:
    base = dict(
        junction_id=3,
        control="signal",
        turn="straight",
        signal="green",
        stop_gap_m=40.0,
        entry_gap_m=43.0,
        exit_gap_m=57.0,
    )
    base.update(kw)
    return JunctionAhead(**base)


def situation(**kw) -> Situation:
    base = dict(ego_s_m=100.0, ego_d_m=-1.75, ego_speed_mps=10.0, lane=0, route_lane=0, speed_cap_mps=12.0)
    base.update(kw)
    return Situation(**base)


def crossing_at(turn="straight", control="signal") -> JunctionCrossing:
    return JunctionCrossing(
        junction_id=3,
        stop_s_m=90.0,
        entry_s_m=93.0,
        exit_s_m=107.0,
        turn=turn,
        control=control,
        signal_id=1,
        centre_xy_m=CENTRE,
        half_size_m=HALF,
        heading_rad=0.0,
    )


def world(*tracks, signals=((1, "green"),)) -> WorldModel:
    """tracks: (id, class, x, y, vx, vy)."""
    a = np.array([t[2:] for t in tracks], dtype=float).reshape(len(tracks), 4)
    n = len(tracks)
    return WorldModel(
        ego=EgoState(0.0, 0.0, 0.0, 0.0),
        t_s=0.0,
        ids=np.array([t[0] for t in tracks], dtype=np.int64),
        class_ids=np.array([t[1] for t in tracks], dtype=np.int64),
        xy_m=a[:, :2],
        v_mps=a[:, 2:],
        yaw_rad=np.arctan2(a[:, 3], a[:, 2]),
        size_m=np.tile([4.5, 1.8], (n, 1)),
        scores=np.ones(n),
        signals=signals,
    )


def facts(w: WorldModel, turn="straight", control="signal", front_s=50.0, v=10.0):
    return junction_facts(crossing_at(turn, control), w, front_s, v, 4.5, 3.0, JP)


# ---------------------------------------------------------------- lights
def test_red_light_stops_at_the_line_and_green_goes():
    state, why = next_behaviour(CRUISE, situation(junction=junction(signal="red")), P)
    assert state.behaviour == Behaviour.STOP_AT_LINE and state.waiting_at == 3
    assert why == "red light at 40.0 m"
    state, why = next_behaviour(state, situation(junction=junction(signal="green")), P)
    assert state.behaviour == Behaviour.CRUISE and state.waiting_at == -1


def test_yellow_stops_only_when_it_can_stop_comfortably():
    far = situation(junction=junction(signal="yellow", stop_gap_m=40.0))  # needs 10^2 / 78 = 1.3 m/s^2
    state, why = next_behaviour(CRUISE, far, P)
    assert state.behaviour == Behaviour.STOP_AT_LINE and why.startswith("yellow light")
    near = situation(junction=junction(signal="yellow", stop_gap_m=12.0))  # needs 100 / 22 = 4.5 m/s^2
    state, _ = next_behaviour(CRUISE, near, P)
    assert state.behaviour == Behaviour.CRUISE and state.waiting_at == -1


def test_an_unseen_light_is_taken_as_red():
    state, why = next_behaviour(CRUISE, situation(junction=junction(signal=None)), P)
    assert state.behaviour == Behaviour.STOP_AT_LINE and "not seen: taken as red" in why


def test_red_too_late_to_stop_and_past_the_line_go():
    too_late = junction(signal="red", stop_gap_m=6.0)  # 10 m/s: needs 10 m/s^2
    assert wait_reason(too_late, 10.0, False, 3.0, JP) == ("", False)
    in_box = junction(signal="red", stop_gap_m=-4.5, entry_gap_m=-0.5, exit_gap_m=13.5)
    assert wait_reason(in_box, 2.0, False, 3.0, JP) == ("", False)


def test_over_the_line_short_of_the_box_holds_at_red_unless_too_fast():
    # Front 0.5 m over the line, 3.5 m from the box: the tail has not crossed the line yet.
    over = junction(signal="red", stop_gap_m=-0.5, entry_gap_m=3.5, exit_gap_m=17.5)
    assert wait_reason(over, 1.0, False, 3.0, JP)[0].startswith("red light: holding over the line")
    assert wait_reason(over, 8.0, False, 3.0, JP) == ("", False)  # 8 m/s: needs 9 m/s^2
    assert wait_reason(replace(over, signal="green"), 1.0, False, 3.0, JP) == ("", False)


def test_naive_ignores_the_red_light():
    state, why = next_behaviour(CRUISE, situation(junction=junction(signal="red")), NAIVE)
    assert state.behaviour == Behaviour.CRUISE and state.waiting_at == -1


# ---------------------------------------------------------------- stop signs
def test_stop_sign_stops_then_goes_when_the_box_is_clear_not_before():
    stop = dict(control="stop", signal=None)
    state, why = next_behaviour(CRUISE, situation(junction=junction(**stop)), P)
    assert state.behaviour == Behaviour.STOP_AT_LINE and why == "stop sign at 40.0 m"
    # Rolling slowly at the line: not a stop yet.
    rolling = situation(ego_speed_mps=0.5, junction=junction(**stop, stop_gap_m=1.2, box_occupied_by=-1))
    state, _ = next_behaviour(state, rolling, P)
    assert state.behaviour == Behaviour.STOP_AT_LINE and state.stopped_at == -1
    # Stopped at the line, a car in the box: wait.
    busy = situation(ego_speed_mps=0.05, junction=junction(**stop, stop_gap_m=1.0, box_occupied_by=9))
    state, why = next_behaviour(state, busy, P)
    assert state.stopped_at == 3 and state.waiting_at == 3 and "vehicle 9 in the junction" in why
    # Clear: go (the stop is remembered while moving off).
    clear = situation(ego_speed_mps=0.05, junction=junction(**stop, stop_gap_m=1.0))
    state, _ = next_behaviour(state, clear, P)
    assert state.waiting_at == -1 and state.behaviour == Behaviour.CRUISE
    moving = situation(ego_speed_mps=2.0, junction=junction(**stop, stop_gap_m=0.5))
    assert next_behaviour(state, moving, P)[0].waiting_at == -1


# ---------------------------------------------------------------- giving way
def test_time_in_box_slab():
    p = np.array([-20 + 0j, 0 + 0j, 20 + 20j, -20 + 0j])
    u = np.array([10 + 0j, 0 + 0j, 1 + 0j, -10 + 0j])
    t_in, t_out = time_in_box(p, u, 5.0)
    assert t_in.tolist() == [1.5, 0.0, math.inf, math.inf]
    assert t_out[0] == 2.5


@pytest.mark.parametrize(("arrives_in_s", "waits"), [(3.0, True), (10.0, False)])
def test_left_turn_gives_way_to_an_oncoming_car_within_the_critical_gap(arrives_in_s, waits):
    x = CENTRE[0] + HALF + 1.0 + 10.0 * arrives_in_s  # reaches the box (grown by 1 m) then
    j, conflict = facts(world((5, VEHICLE, x, 1.75, -10.0, 0.0)), turn="left")
    assert conflict is None
    assert (j.give_way_to == 5) == waits
    if waits:
        assert j.give_way_in_s == pytest.approx(arrives_in_s)
    state, why = next_behaviour(CRUISE, situation(junction=j), P)
    assert (state.behaviour == Behaviour.YIELD) == waits
    assert why.startswith("giving way to vehicle 5") == waits


def test_a_standing_ego_needs_the_time_to_clear_the_box_not_just_the_critical_gap():
    # Standing at the stop line (front at 90 m, the box's exit at 107 m), the ego needs
    # sqrt(2 x 1.2 x (17 m + its 4.5 m)) / 1.2 = 6.0 s to leave the box, + 1 s margin: a car 6 s
    # away is waited for, beyond the 4.5 s critical gap. At 10 m/s the ego is out in 1.9 s: it goes.
    x = CENTRE[0] + HALF + 1.0 + 10.0 * 6.0
    standing, _ = facts(world((5, VEHICLE, x, 1.75, -10.0, 0.0)), turn="left", front_s=90.0, v=0.0)
    assert standing.give_way_to == 5 and standing.give_way_in_s == pytest.approx(6.0)
    moving, _ = facts(world((5, VEHICLE, x, 1.75, -10.0, 0.0)), turn="left", front_s=90.0, v=10.0)
    assert moving.give_way_to == -1


def right_turn_at_a_stop_sign() -> tuple[JunctionCrossing, tuple]:
    """The crossing of `crossing_at` on a street with two lanes each way that turns right there
    (its centre line on a quarter circle of the box's half size), with the two lanes coming in from
    the left, and the ego's way through it from its kerb lane."""
    w = 3.5
    arc = Segment("arc", 0.5 * math.pi * HALF, -HALF)
    road = Road([Segment("straight", 93.0), arc, Segment("straight", 50.0)], 4, w, 14.0)
    from_left = tuple(  # heading -y
        Approach("left", (CENTRE[0] - (k + 0.5) * w, HALF), -math.pi / 2, 100.0, 13.9, "priority")
        for k in range(2)
    )
    crossing = replace(crossing_at("right", "stop"), exit_s_m=93.0 + arc.length_m, approaches=from_left)
    return crossing, ego_path(crossing, road, -1.5 * w)


def test_a_vehicle_whose_lane_misses_the_ego_path_is_not_waited_for():
    """Turning right at a stop sign from the kerb lane of a street with two lanes each way: a car
    from the left in the kerb lane the ego joins is given way to (and holds the box while in it);
    one in the inner lane beside it is not, though it reaches the box as soon. Lanes are what
    count: a tracked heading 8 degrees off does not move a car out of its lane, a car turning in
    the box (20 degrees off its lane) still holds it, and with no lanes known nobody is let off."""
    crossing, path = right_turn_at_a_stop_sign()

    def facts_of(x, y, heading_deg=0.0, c=crossing):
        off = math.radians(heading_deg)
        car = (7, VEHICLE, x, y, 10 * math.sin(off), -10 * math.cos(off))
        return junction_facts(c, world(car, signals=()), 90.0, 0.0, 4.5, 3.0, JP, path)[0]

    kerb, inner = CENTRE[0] - 5.25, CENTRE[0] - 1.75
    assert facts_of(kerb, 30.0).give_way_to == 7
    assert facts_of(inner, 30.0).give_way_to == -1
    assert facts_of(kerb, 3.0).box_occupied_by == 7
    assert facts_of(inner, 3.0).box_occupied_by == -1
    assert facts_of(kerb, 30.0, heading_deg=8.0).give_way_to == 7  # heading for the inner lane
    assert facts_of(inner, 3.0, heading_deg=20.0).box_occupied_by == 7
    assert facts_of(inner, 30.0, c=replace(crossing, approaches=())).give_way_to == 7
    # Without the ego's path, the box's rules: both are waited for.
    for x in (kerb, inner):
        w = world((7, VEHICLE, x, 30.0, 0.0, -10.0), signals=())
        assert junction_facts(crossing, w, 90.0, 0.0, 4.5, 3.0, JP)[0].give_way_to == 7


def test_over_the_line_short_of_the_box_still_gives_way_when_it_can_stop():
    over = junction(turn="left", stop_gap_m=-1.5, entry_gap_m=2.5, exit_gap_m=16.5, give_way_to=5)
    why, giving_way = wait_reason(over, 1.0, False, 3.0, JP)
    assert giving_way and why.startswith("giving way to vehicle 5: holding over the line")
    assert wait_reason(over, 6.0, False, 3.0, JP) == ("", False)  # 6 m/s: needs 7.2 m/s^2, it goes
    assert wait_reason(replace(over, give_way_to=-1), 1.0, False, 3.0, JP) == ("", False)


def test_an_unprotected_left_turn_waits_pulled_into_the_box_until_red():
    pulled_in = junction(turn="left", stop_gap_m=-7.0, entry_gap_m=-3.0, exit_gap_m=11.0, give_way_to=5)
    for light in ("green", "yellow"):
        why, giving_way = wait_reason(replace(pulled_in, signal=light), 0.0, False, 3.0, JP)
        assert giving_way and why.endswith("waiting in the box to turn left")
    assert wait_reason(replace(pulled_in, signal="red"), 0.0, False, 3.0, JP) == ("", False)  # it clears
    assert wait_reason(replace(pulled_in, turn="straight"), 0.0, False, 3.0, JP) == ("", False)
    deep = replace(pulled_in, entry_gap_m=-6.0, exit_gap_m=8.0)  # well into the box: committed
    assert wait_reason(deep, 0.0, False, 3.0, JP) == ("", False)


def test_going_straight_on_green_ignores_the_oncoming_car():
    j, _ = facts(world((5, VEHICLE, 130.0, 1.75, -10.0, 0.0)), turn="straight")
    assert j.give_way_to == -1


def test_yield_sign_gives_way_to_crossing_traffic():
    crossing_car = (6, VEHICLE, CENTRE[0] - 1.75, -40.0, 0.0, 12.0)  # from the right, 2.7 s away
    j, _ = facts(world(crossing_car, signals=()), control="yield")
    assert j.give_way_to == 6
    assert next_behaviour(CRUISE, situation(junction=j), P)[0].behaviour == Behaviour.YIELD


def test_a_right_turn_at_a_stop_sign_gives_way_only_to_traffic_from_the_left():
    from_right = (6, VEHICLE, CENTRE[0] + 1.75, -40.0, 0.0, 12.0)  # stays in the far lanes
    from_left = (7, VEHICLE, CENTRE[0] - 1.75, 40.0, 0.0, -12.0)  # in the lanes a right turn joins
    for car, turn, gives_way in (
        (from_right, "right", -1),
        (from_right, "straight", 6),
        (from_left, "right", 7),
    ):
        j, _ = facts(world(car, signals=()), turn=turn, control="stop", front_s=90.0, v=0.0)
        assert j.give_way_to == gives_way, (car, turn)


def test_a_car_yet_to_stop_at_its_own_stop_sign_is_not_given_way_to():
    """From the left, under a stop sign 2 m back from the box: 10 m before that line it will stop
    there first; 1 m before it, moving off after its stop, it is given way to. On a priority
    approach the car 10 m back is given way to."""

    def crossing(control):
        lane = Approach("left", (CENTRE[0] - 1.75, HALF), -math.pi / 2, 100.0, 13.9, control, 2.0)
        return replace(crossing_at("straight", "stop"), approaches=(lane,))

    def gives_way_to(control, before_line_m, speed):
        y = HALF + 2.0 + 2.25 + before_line_m  # its centre: box edge + setback + half length + distance
        w = world((7, VEHICLE, CENTRE[0] - 1.75, y, 0.0, -speed), signals=())
        return junction_facts(crossing(control), w, 90.0, 0.0, 4.5, 3.0, JP)[0].give_way_to

    assert gives_way_to("stop", 10.0, 8.0) == -1
    assert gives_way_to("stop", 1.0, 1.5) == 7
    assert gives_way_to("priority", 10.0, 8.0) == 7


def test_a_new_camera_track_in_an_incoming_lane_counts_as_coming_at_its_worst():
    """A car 40 m out in the lane from the left, first tracked: the tracker starts it at rest with its
    speed unknown (std 15 m/s). It may be coming at the lane's limit, so it is given way to; once its
    speed has settled at rest (std 0.2 m/s), or with ground truth at rest, it is not."""
    lane = Approach("left", (CENTRE[0] - 1.75, HALF), -math.pi / 2, 100.0, 12.5, "priority", 2.0)
    crossing = replace(crossing_at("straight", "stop"), approaches=(lane,))
    car = world((7, VEHICLE, CENTRE[0] - 1.75, HALF + 40.0, 0.0, 0.0), signals=())

    def gives_way_to(v_std):
        w = replace(car, v_std_mps=None if v_std is None else np.array([v_std]))
        return junction_facts(crossing, w, 90.0, 0.0, 4.5, 3.0, JP)[0].give_way_to

    assert gives_way_to(15.0) == 7
    assert gives_way_to(0.2) == -1 and gives_way_to(None) == -1


def test_turn_waits_for_a_pedestrian_on_the_exit_crosswalk():
    ped = (8, PEDESTRIAN, CENTRE[0] - 3.0, CENTRE[1] - HALF - 2.0, 1.2, 0.0)  # across the right arm
    j, _ = facts(world(ped), turn="right")
    assert j.pedestrian_on_exit == 8
    state, why = next_behaviour(CRUISE, situation(junction=j), P)
    assert state.behaviour == Behaviour.YIELD and "pedestrian 8" in why
    assert facts(world(ped), turn="left")[0].pedestrian_on_exit == -1


# ---------------------------------------------------------------- creeping to see
# The lanes coming into the box at CENTRE from its other arms (one lane each, 3.5 m wide).
APPROACHES = (
    Approach("left", (CENTRE[0] - 1.75, HALF), -math.pi / 2, 100.0, 13.9),
    Approach("right", (CENTRE[0] + 1.75, -HALF), math.pi / 2, 100.0, 13.9),
    Approach("ahead", (CENTRE[0] + HALF, 1.75), math.pi, 100.0, 13.9),
)
# A van standing at the near left corner, along the cross street: it hides the lane coming from
# the left from the ego's cameras at the stop line.
CORNER_VAN = (9, VEHICLE, CENTRE[0] - 5.0, 6.0, 0.0, 0.0)


def seen_from_the_line(*tracks, turn="straight", control="stop", views=RIG, van_speed=0.0):
    """junction_facts for an ego standing with its front at the stop line (90 m) and the cameras of
    `views`; a van (track 9) stands (or drives at van_speed) along the cross street."""
    w = world(*tracks, signals=())
    vans = w.ids == 9
    w = replace(
        w,
        ego=EgoState(87.75, -1.75, 0.0, 0.0),
        views=views,
        yaw_rad=np.where(vans, math.pi / 2, w.yaw_rad),
        size_m=np.where(vans[:, None], [5.0, 2.0], w.size_m),
        v_mps=np.where(vans[:, None], [0.0, van_speed], w.v_mps),
    )
    crossing = replace(crossing_at(turn, control), approaches=APPROACHES)
    return junction_facts(crossing, w, 90.0, 0.0, 4.5, 3.0, JP)[0]


def test_the_lanes_given_way_to_must_be_seen_out_to_the_critical_gap():
    assert seen_from_the_line().unobserved == ""  # the rig sees both crossing lanes from the line
    hidden = seen_from_the_line(CORNER_VAN)
    assert hidden.unobserved.startswith("the left approach not seen beyond")
    # Nothing unobserved with all-round views, nor where nothing is given way to (a light, straight on).
    assert seen_from_the_line(CORNER_VAN, views=None).unobserved == ""
    assert seen_from_the_line(CORNER_VAN, control="signal").unobserved == ""
    # A van driving by hides the lane for a moment only: it is not waited on.
    assert seen_from_the_line(CORNER_VAN, van_speed=5.0).unobserved == ""
    # A front camera alone sees neither crossing lane; a left turn at a light looks only ahead.
    front = RIG[:1]
    assert seen_from_the_line(views=front).unobserved.startswith("the left approach")
    assert seen_from_the_line(views=front, turn="left", control="signal").unobserved == ""
    # A car of the lane coming from the left, queued at its line, is that lane's traffic, not an occluder.
    queued = (9, VEHICLE, CENTRE[0] - 1.75, HALF + 4.0, 0.0, 0.0)
    assert seen_from_the_line(queued).unobserved == ""


def test_creeps_towards_the_box_until_the_lanes_are_seen_then_goes_or_gives_way():
    hidden = junction(
        control="stop",
        signal=None,
        stop_gap_m=0.5,
        entry_gap_m=3.5,
        unobserved="the left approach not seen beyond 8 m",
    )
    stopped = replace(CRUISE, stopped_at=3)
    # A stop sign's full stop comes first.
    state, why = next_behaviour(
        CRUISE, situation(ego_speed_mps=2.0, junction=replace(hidden, stop_gap_m=10.0)), P
    )
    assert state.behaviour == Behaviour.STOP_AT_LINE and why.startswith("stop sign")
    state, why = next_behaviour(stopped, situation(ego_speed_mps=0.0, junction=hidden), P)
    assert state.behaviour == Behaviour.CREEP and state.waiting_at == 3
    assert why == "creeping to see: the left approach not seen beyond 8 m"
    # A vehicle to give way to comes first; seen clear, it goes; in the box it is committed.
    assert (
        next_behaviour(stopped, situation(junction=replace(hidden, give_way_to=4)), P)[0].behaviour
        == Behaviour.YIELD
    )
    seen = next_behaviour(state, situation(ego_speed_mps=1.0, junction=replace(hidden, unobserved="")), P)[0]
    assert seen.behaviour == Behaviour.CRUISE and seen.waiting_at == -1
    # It creeps on into the box; there it still gives way (not yet committed), where it stands.
    inside = replace(hidden, stop_gap_m=-5.0, entry_gap_m=-1.0)
    state, _ = next_behaviour(state, situation(ego_speed_mps=1.0, junction=inside), P)
    assert state.behaviour == Behaviour.CREEP
    state, why = next_behaviour(
        state, situation(ego_speed_mps=1.0, junction=replace(inside, give_way_to=4)), P
    )
    assert state.behaviour == Behaviour.YIELD and why == "giving way to vehicle 4: crept into the box"
    state, _ = next_behaviour(state, situation(ego_speed_mps=0.0, junction=replace(inside, unobserved="")), P)
    assert state.behaviour == Behaviour.CRUISE  # seen clear: it goes
    # An ego that did not creep in is committed in the box, as before.
    committed = replace(inside, give_way_to=4, unobserved="")
    assert next_behaviour(CRUISE, situation(junction=committed), P)[0].waiting_at == -1


def test_creeping_ends_as_far_into_the_box_as_it_goes():
    """Short of CREEP_INTO_BOX_M into the box the van still hides the lane; at it, nothing is
    looked at any more: what the cameras cannot see from there, they cannot see."""
    w = world(CORNER_VAN, signals=())
    w = replace(
        w,
        views=RIG,
        yaw_rad=np.full(1, math.pi / 2),
        size_m=np.array([[5.0, 2.0]]),
    )
    crossing = replace(crossing_at("straight", "stop"), approaches=APPROACHES)
    for front_s, hidden in ((90.0, True), (93.0, True), (93.0 + CREEP_INTO_BOX_M - 0.4, False)):
        ego = EgoState(front_s - 2.25, -1.75, 0.0, 0.0)
        j = junction_facts(crossing, replace(w, ego=ego), front_s, 0.0, 4.5, 3.0, JP)[0]
        assert bool(j.unobserved) == hidden, front_s


def test_a_turn_inside_the_box_still_waits_for_a_pedestrian_on_its_exit_crosswalk():
    # Turning right, front 4 m into the box, 10 m from its exit: a pedestrian on the exit's
    # crosswalk is waited for before it (2 m/s stops in 9 m comfortably); too fast to stop, it goes
    # on (and brakes for the pedestrian in its way as for any).
    inside = junction(turn="right", stop_gap_m=-8.0, entry_gap_m=-4.0, exit_gap_m=10.0, pedestrian_on_exit=8)
    why, giving_way = wait_reason(inside, 2.0, False, 3.0, JP)
    assert giving_way and why == "giving way to pedestrian 8 on the crosswalk, in the box"
    assert wait_reason(inside, 9.0, False, 3.0, JP) == ("", False)
    assert wait_reason(replace(inside, pedestrian_on_exit=-1), 2.0, False, 3.0, JP) == ("", False)
    state, _ = next_behaviour(CRUISE, situation(ego_speed_mps=2.0, junction=inside), P)
    assert state.behaviour == Behaviour.YIELD


# ---------------------------------------------------------------- red-light runners
def test_a_red_light_runner_is_a_conflict_and_is_braked_for():
    ego_front_s = 68.0  # 25 m before the box entry at 10 m/s: in the box from 1.5 to 4.1 s
    runner = (7, VEHICLE, CENTRE[0] - 1.75, -40.0, 0.0, 20.0)  # 32 m from the box at 20 m/s: cannot stop
    j, conflict = facts(world(runner), front_s=ego_front_s)
    assert conflict is not None and conflict[0] == 7
    # A crossing car that can still stop comfortably before its line will: no conflict.
    stopping = (7, VEHICLE, CENTRE[0] - 1.75, -60.0, 0.0, 8.0)
    assert facts(world(stopping), front_s=ego_front_s)[1] is None
    # The planner makes it a stationary object at the box entry.
    sit = situation(junction=j, crossing=ObjectAhead(7, VEHICLE, j.entry_gap_m, 0.0))
    state, why = next_behaviour(CRUISE, sit, P)
    assert state.behaviour == Behaviour.STOP and why.startswith("braking for vehicle 7")
    close = situation(junction=j, crossing=ObjectAhead(7, VEHICLE, 12.0, 0.0))  # TTC 1.2 s
    assert next_behaviour(CRUISE, close, P)[0].behaviour == Behaviour.EMERGENCY_BRAKE


# ---------------------------------------------------------------- overtaking
PARKED = ObjectAhead(4, OBSTACLE, 8.0, 0.0)


def two_way(**kw) -> Situation:
    """Stopped 8 m behind a parked car, lane 1 the oncoming lane, speed cap 10 m/s."""
    base = dict(ego_speed_mps=0.0, speed_cap_mps=10.0, lead=PARKED, left=LaneGaps(1, oncoming=True))
    base.update(kw)
    return situation(**base)


def test_pass_time():
    assert pass_time_s(0.0, 10.0, 12.0, 1.5) == pytest.approx(4.0)
    assert pass_time_s(10.0, 10.0, 50.0, 1.5) == pytest.approx(5.0)


def test_overtakes_through_the_oncoming_lane_only_with_enough_clear_distance():
    state, why = next_behaviour(CRUISE, two_way(), P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 1
    # 28 m to drive from standstill (8 m + overtake_extra_m) at 2.4 m/s^2: 4.9 s, + 1 s margin, at
    # 5.7 m/s mean: with an oncoming car at 10 m/s it must be farther than 5.9 x 15.7 = 93 m.
    t = pass_time_s(0.0, 10.0, 28.0, P.overtake_accel_mps2)
    need = (t + 1.0) * (28.0 / t + 10.0)
    for gap, ok in ((need - 5.0, False), (need + 5.0, True)):
        oncoming = LaneGaps(1, lead_gap_m=gap, lead_speed_mps=-10.0, oncoming=True)
        state, why = next_behaviour(CRUISE, two_way(left=oncoming), P)
        assert (state.behaviour == Behaviour.CHANGE_LANE) == ok, why
        if not ok:
            assert state.behaviour == Behaviour.STOP and "oncoming traffic in lane 1" in why
    # MOBIL alone would have refused it (the ego "behind" an oncoming leader brakes hard).
    ok, _ = overtake_clear(
        LaneGaps(1, lead_gap_m=need + 5.0, lead_speed_mps=-10.0, oncoming=True), PARKED, two_way(), P
    )
    assert ok


def test_no_overtaking_when_the_view_is_too_short_for_the_speed_cap():
    # Unseen oncoming traffic is taken at the speed cap: at 20 m/s, 110 m of view is not enough.
    state, why = next_behaviour(CRUISE, two_way(speed_cap_mps=20.0), P)
    assert state.behaviour == Behaviour.STOP and "not seen clear far enough" in why


def test_standing_behind_a_parked_car_it_passes_on_the_view_its_cameras_have():
    """Standing 8 m behind a parked car at a 14 m/s cap, the oncoming lane seen clear to 80 m (the
    cameras' range): a car just beyond that at the cap would come 68 m in the 4.8 s the pass takes
    (96 m needed), and waiting shows no more; taken to brake at 3 m/s^2 after 1 s for the ego in its
    lane, it comes 46 m (74 m needed): the ego goes. Still rolling, it waits to see more."""
    seen = LaneGaps(1, oncoming=True, seen_ahead_m=80.0)
    state, why = next_behaviour(CRUISE, two_way(speed_cap_mps=14.0, left=seen), P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 1, why
    rolling = two_way(speed_cap_mps=14.0, left=seen, ego_speed_mps=2.0)
    state, why = next_behaviour(CRUISE, rolling, P)
    assert state.lane == 0 and why.endswith("lane 1 not seen clear far enough (85 m needed)")
    t = pass_time_s(0.0, 14.0, 28.0, P.overtake_accel_mps2)
    assert unseen_travel_m(14.0, t, P) == pytest.approx(14.0 * t - 1.5 * (t - 1.0) ** 2)
    assert unseen_travel_m(14.0, 20.0, P) == pytest.approx(14.0 + 14.0**2 / 6.0)  # it stops


def test_no_overtaking_into_a_junction_nor_for_speed():
    near_junction = two_way(junction=junction(signal="green", stop_gap_m=25.0))
    state, why = next_behaviour(CRUISE, near_junction, P)
    assert state.behaviour == Behaviour.STOP and why.endswith("at a junction")
    slow_lead = two_way(ego_speed_mps=10.0, lead=ObjectAhead(4, VEHICLE, 30.0, 5.0))
    assert next_behaviour(CRUISE, slow_lead, P)[0].lane == 0


def test_no_pass_that_ends_past_the_junction_or_meets_traffic_turning_in_there():
    """Following a slow car (2 m/s, 12 m ahead): the pass is 12 m + overtake_extra_m and the 11 m the
    car drives meanwhile, 43 m, in 5.4 s; in that time traffic that turns into the oncoming lane at
    the junction (unseen, at the 10 m/s cap) comes 54 m. With the stop line 40 m ahead it waits for
    the first reason, 60 m ahead for the second; 120 m ahead it goes."""
    slow = ObjectAhead(4, VEHICLE, gap_m=12.0, speed_mps=2.0)
    base = dict(lead=slow, ego_speed_mps=2.0)
    for stop_gap, why_not in ((40.0, "at a junction"), (60.0, "junction 3 60 m ahead (97 m needed)")):
        near = two_way(**base, junction=junction(signal="green", stop_gap_m=stop_gap))
        state, why = next_behaviour(CRUISE, near, P)
        assert state.behaviour == Behaviour.FOLLOW and why.endswith(why_not)
    far = two_way(**base, junction=junction(signal="green", stop_gap_m=120.0))
    assert next_behaviour(CRUISE, far, P)[0].behaviour == Behaviour.CHANGE_LANE


def test_naive_does_not_overtake():
    state, why = next_behaviour(CRUISE, two_way(), NAIVE)
    assert state.behaviour == Behaviour.STOP and why.endswith("no lane changes")


# ---------------------------------------------------------------- parking exit
def test_merges_from_the_shoulder_only_when_the_gap_is_safe():
    parked = BehaviourState(Behaviour.CRUISE, lane=-1)
    shoulder = dict(ego_d_m=-4.5, ego_speed_mps=0.0, lane=-1)
    follower = LaneGaps(0, follower_gap_m=15.0, follower_speed_mps=12.0)
    state, why = next_behaviour(parked, situation(**shoulder, left=follower), P)
    assert state.behaviour == Behaviour.STOP and state.lane == -1 and why.startswith("waiting to merge")
    state, why = next_behaviour(state, situation(**shoulder, left=LaneGaps(0)), P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 0 and why == "merging into lane 0"
    assert state.change.start_d_m == -4.5


# ---------------------------------------------------------------- speed limits
def test_a_lower_speed_limit_ahead_is_braked_for_before_it():
    p = SituationParams(
        ego_length_m=4.5,
        ego_width_m=1.8,
        look_ahead_m=80.0,
        rear_range_m=40.0,
        lateral_margin_m=0.5,
        pedestrian_margin_m=0.8,
        cut_in_horizon_s=1.5,
        pedestrian_horizon_s=3.0,
        max_lateral_accel_mps2=2.5,
        curve_decel_mps2=1.5,
        oncoming_look_ahead_m=150.0,
    )
    road = Road([Segment("straight", 400.0)], 2, 3.5, 15.0, speed_limits=((0.0, 15.0), (200.0, 8.0)))
    route = Route(road, 0.0, 390.0, 0, 20.0)
    cap, accel = speed_limits(road, route, 100.0, 15.0, -1.75, p)
    assert cap == 15.0 and accel == pytest.approx((64.0 - 225.0) / 200.0)
    cap, accel = speed_limits(road, route, 10.0, 15.0, -1.75, p)  # beyond the horizon: not yet
    assert cap == 15.0 and accel == math.inf
    assert speed_limits(road, route, 250.0, 8.0, -1.75, p) == (8.0, math.inf)


def test_back_from_the_oncoming_lane_before_a_junction_but_not_inside_its_box():
    in_lane_1 = BehaviourState(Behaviour.CRUISE, lane=1)
    back = dict(ego_d_m=1.75, lane=1, oncoming=True, right=LaneGaps(0))
    state, why = next_behaviour(in_lane_1, situation(**back, junction=junction(stop_gap_m=15.0)), P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 0 and why == "returning to lane 0"
    assert state.change.length_m == pytest.approx(25.0)  # the shortest comfortable: 10 m/s x 2.5 s
    inside = junction(stop_gap_m=-5.0, entry_gap_m=-2.0, exit_gap_m=12.0)
    state, _ = next_behaviour(in_lane_1, situation(**back, junction=inside), P)
    assert state.lane == 1 and state.change is None


# ---------------------------------------------------------------- rules added with the town scenarios
def test_waits_before_the_line_while_a_slow_vehicle_holds_the_exit():
    j = junction(signal="green", stop_gap_m=8.0, entry_gap_m=12.0, exit_gap_m=26.0)
    stuck = ObjectAhead(9, VEHICLE, gap_m=28.0, speed_mps=0.5)  # just past the box, barely moving
    state, why = next_behaviour(CRUISE, situation(junction=j, lead=stuck), P)
    assert state.behaviour == Behaviour.STOP_AT_LINE and why.startswith("the exit of junction 3 is not clear")
    moving = replace(stuck, speed_mps=8.0)
    state, _ = next_behaviour(CRUISE, situation(junction=j, lead=moving), P)
    assert state.behaviour != Behaviour.STOP_AT_LINE
    beyond = replace(stuck, gap_m=60.0)  # far past the exit: not the junction's business
    state, _ = next_behaviour(CRUISE, situation(junction=j, lead=beyond), P)
    assert state.behaviour != Behaviour.STOP_AT_LINE


def test_a_vehicle_queued_at_the_end_of_the_road_is_not_passed():
    state, why = next_behaviour(CRUISE, two_way(road_end_gap_m=20.0), P)  # it stands 12 m from the end
    assert state.behaviour == Behaviour.STOP and why.endswith("it waits at the end of the road")
    state, _ = next_behaviour(CRUISE, two_way(road_end_gap_m=300.0), P)
    assert state.behaviour == Behaviour.CHANGE_LANE


def test_a_slow_hazard_is_followed_then_passed_when_the_oncoming_lane_is_clear():
    slow = ObjectAhead(4, VEHICLE, gap_m=12.0, speed_mps=2.0)
    coming = LaneGaps(1, lead_gap_m=60.0, lead_speed_mps=-10.0, oncoming=True)
    state, why = next_behaviour(CRUISE, two_way(lead=slow, ego_speed_mps=2.0, left=coming), P)
    assert state.behaviour == Behaviour.FOLLOW and why.startswith("following slow vehicle 4")
    state, _ = next_behaviour(CRUISE, two_way(lead=slow, ego_speed_mps=2.0), P)
    assert state.behaviour == Behaviour.CHANGE_LANE and state.lane == 1
    brisk = replace(slow, speed_mps=8.0)  # not a hazard: followed, never passed through the oncoming lane
    state, _ = next_behaviour(CRUISE, two_way(lead=brisk, ego_speed_mps=8.0), P)
    assert state.behaviour == Behaviour.FOLLOW


def test_a_run_of_obstacles_needs_the_oncoming_lane_clear_past_all_of_them():
    # Clear for passing one parked car, not for a 30 m accident scene behind it.
    t = pass_time_s(0.0, 10.0, 28.0, P.overtake_accel_mps2)
    gap = (t + 1.0) * (28.0 / t + 10.0) + 3.0
    coming = LaneGaps(1, lead_gap_m=gap, lead_speed_mps=-10.0, oncoming=True)
    state, _ = next_behaviour(CRUISE, two_way(left=coming), P)
    assert state.behaviour == Behaviour.CHANGE_LANE
    state, why = next_behaviour(CRUISE, two_way(left=coming, lead_run_extra_m=30.0), P)
    assert state.behaviour == Behaviour.STOP and "oncoming traffic in lane 1" in why


def test_the_naive_view_keeps_the_traffic_its_way_and_drops_crossing_and_oncoming_vehicles():
    road = Road([Segment("straight", 300.0)], 2, 3.5, 14.0, oncoming_lanes=1)
    w = world(
        (1, VEHICLE, 50.0, -1.75, 10.0, 0.0),  # ahead in the ego's lane
        (2, VEHICLE, 80.0, 1.75, -10.0, 0.0),  # oncoming
        (3, VEHICLE, 60.0, 5.0, 0.0, -10.0),  # crossing the road
        (4, PEDESTRIAN, 40.0, 4.0, 0.0, -1.4),  # crossing, but not a vehicle
        (5, VEHICLE, 70.0, -1.75, -0.2, 0.0),  # standing in the ego's lane, facing it
        (6, VEHICLE, 75.0, 1.75, 0.0, -0.2),  # standing across the road
    )
    assert along_the_road(w, road, 0.0, 0.5).ids.tolist() == [1, 4, 5]

"""The planner in closed loop: a kinematic ego that drives exactly along the plan's path with the
plan's target acceleration, scripted actors moving along the road, a fixed simulated time."""

from dataclasses import dataclass

import numpy as np
import pytest
from hydra.utils import instantiate

from decision.idm import idm_accel
from decision.plan import Behaviour, Plan
from decision.planner import Planner, acc_blend
from decision.route import Road, Route, Segment
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, EgoState, WorldModel
from perception.visibility import CameraView

EGO_LENGTH_M, EGO_WIDTH_M, MAX_DECEL_MPS2 = 4.5, 1.8, 8.0
DT_S = 0.05
LANE0, LANE1 = -1.75, 1.75  # lane centres of a 2-lane road, 3.5 m lanes


@pytest.fixture(scope="module")
def make_planner(conf_values):
    """make_planner() -> a new Planner of conf/decision/default.yaml, built as the commands build it."""
    cfg = conf_values("decision/default.yaml")

    def make() -> Planner:
        return instantiate(
            cfg, ego_length_m=EGO_LENGTH_M, ego_width_m=EGO_WIDTH_M, max_decel_mps2=MAX_DECEL_MPS2
        )

    return make


@pytest.fixture
def road(straight_road) -> Road:
    """A straight two-lane road 900 m long, limit 25 m/s."""
    return straight_road(900.0, speed_limit_mps=25.0)


@dataclass
class Actor:
    """Moves along the road: speed `v_mps` until `brake_at_s`, then brakes at `decel_mps2` to a
    stop; lateral offset goes linearly from d_m to `to_d_m` between `move_at_s` and + `move_s`."""

    track_id: int
    class_id: int
    s_m: float
    d_m: float
    v_mps: float = 0.0
    length_m: float = 4.5
    width_m: float = 1.8
    brake_at_s: float = np.inf
    decel_mps2: float = 0.0
    to_d_m: float | None = None
    move_at_s: float = np.inf
    move_s: float = 1.0
    lateral_mps: float = 0.0  # for pedestrians walking across, constant

    def frenet(self, t: float):
        """(s, d, speed along, speed across) at time t."""
        tb = min(t, self.brake_at_s)
        s, v = self.s_m + self.v_mps * tb, self.v_mps
        if t > self.brake_at_s:
            dt = min(t - self.brake_at_s, self.v_mps / self.decel_mps2)
            s, v = s + self.v_mps * dt - 0.5 * self.decel_mps2 * dt * dt, self.v_mps - self.decel_mps2 * dt
        d, vd = self.d_m + self.lateral_mps * t, self.lateral_mps
        if self.to_d_m is not None and t > self.move_at_s:
            f = min((t - self.move_at_s) / self.move_s, 1.0)
            d = self.d_m + f * (self.to_d_m - self.d_m)
            vd = (self.to_d_m - self.d_m) / self.move_s if f < 1.0 else 0.0
        return s, d, v, vd


@dataclass
class Run:
    t: np.ndarray
    s: np.ndarray
    d: np.ndarray
    v: np.ndarray
    accel: np.ndarray
    behaviours: list
    reasons: list
    clearance: dict  # actor id -> (T,) clearance between boxes [m] (< 0: overlap)
    ttc: np.ndarray  # (T,) time to collision [s] with whatever is ahead and overlaps the ego sideways
    plans: list


def world_at(road: Road, ego: EgoState, actors: list[Actor], t: float, views=None) -> WorldModel:
    n = len(actors)
    f = np.array([a.frenet(t) for a in actors]).reshape(n, 4)
    x, y, h = road.to_world(f[:, 0], f[:, 1])
    c, s = np.cos(h), np.sin(h)
    return WorldModel(
        ego=ego,
        t_s=t,
        ids=np.array([a.track_id for a in actors], dtype=np.int64),
        class_ids=np.array([a.class_id for a in actors], dtype=np.int64),
        xy_m=np.stack([x, y], axis=1).reshape(n, 2),
        v_mps=np.stack([f[:, 2] * c - f[:, 3] * s, f[:, 2] * s + f[:, 3] * c], axis=1).reshape(n, 2),
        yaw_rad=np.asarray(h, dtype=float).reshape(n),
        size_m=np.array([(a.length_m, a.width_m) for a in actors]).reshape(n, 2),
        scores=np.ones(n),
        views=views,
    )


def drive(
    planner: Planner,
    route: Route,
    s0: float,
    d0: float,
    v0: float,
    actors: list[Actor],
    duration_s: float,
    views=None,
) -> Run:
    road = route.road
    x, y, yaw = (float(a) for a in road.to_world(s0, d0))
    v = v0
    rec = {k: [] for k in ("t", "s", "d", "v", "accel", "behaviours", "reasons", "plans")}
    clearance = {a.track_id: [] for a in actors}
    ttc = []
    for k in range(int(round(duration_s / DT_S))):
        t = k * DT_S
        ego = EgoState(x, y, yaw, v, t_s=t)
        plan: Plan = planner.plan(world_at(road, ego, actors, t, views), route)
        s, d = road.to_frenet(np.array([x, y]), s_hint_m=rec["s"][-1] if rec["s"] else None)
        ttc.append(np.inf)
        for a in actors:
            sa, da, va, _ = a.frenet(t)
            gap_s = abs(sa - s) - 0.5 * (a.length_m + EGO_LENGTH_M)
            gap_d = abs(da - d) - 0.5 * (a.width_m + EGO_WIDTH_M)
            clearance[a.track_id].append(max(gap_s, gap_d))
            # As the sim's nuPlan-style TTC: ahead, within the half widths + 0.3 m sideways.
            if sa > s and gap_d < 0.3 and v > va:
                ttc[-1] = min(ttc[-1], max(gap_s, 0.0) / (v - va))
        for key, value in zip(
            ("t", "s", "d", "v", "accel", "behaviours", "reasons", "plans"),
            (t, s, d, v, plan.target_accel_mps2, plan.behaviour, plan.reason, plan),
            strict=True,
        ):
            rec[key].append(value)
        # Kinematic ego: integrate the target acceleration, move along the plan's path.
        v_next = max(v + plan.target_accel_mps2 * DT_S, 0.0)
        step = 0.5 * (v + v_next) * DT_S
        path = plan.path_xy_m
        seg = np.diff(path, axis=0)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        i = min(int(np.searchsorted(arc, step, side="right")) - 1, len(seg) - 1)
        frac = (step - arc[i]) / max(arc[i + 1] - arc[i], 1e-9)
        x, y = (float(c) for c in path[i] + frac * seg[i])
        yaw = float(np.arctan2(seg[i, 1], seg[i, 0]))
        v = v_next
    arrays = {k: np.array(rec[k]) for k in ("t", "s", "d", "v", "accel")}
    return Run(
        **arrays,
        behaviours=rec["behaviours"],
        reasons=rec["reasons"],
        clearance={k: np.array(c) for k, c in clearance.items()},
        ttc=np.array(ttc),
        plans=rec["plans"],
    )


def test_follows_a_slower_lead_at_the_idm_gap(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=20.0)
    lead = Actor(7, VEHICLE, s_m=50.0, d_m=LANE0, v_mps=10.0)
    run = drive(make_planner(), route, 10.0, LANE0, 15.0, [lead], duration_s=60.0)
    idm = make_planner().idm
    expected = (idm.min_gap_m + 10.0 * idm.time_headway_s) / np.sqrt(1.0 - (10.0 / 20.0) ** idm.delta)
    gap = run.clearance[7][-1]
    assert gap == pytest.approx(expected, rel=0.05)
    assert run.v[-1] == pytest.approx(10.0, abs=0.1)
    assert run.clearance[7].min() > idm.min_gap_m
    assert run.behaviours[-1] == Behaviour.FOLLOW and run.reasons[-1].startswith("following vehicle 7 at")
    assert np.abs(run.d - LANE0).max() < 0.05  # no lane change for a moving lead
    assert run.accel.min() > -4.05 and run.accel.max() <= 2.4  # nuPlan comfort bounds
    assert np.abs(np.diff(run.accel) / DT_S).max() <= 8.37


def test_stops_before_a_pedestrian_standing_in_the_lane(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=15.0)
    ped = Actor(3, PEDESTRIAN, s_m=90.0, d_m=LANE0 + 0.5, length_m=0.5, width_m=0.5)
    run = drive(make_planner(), route, 10.0, LANE0, 12.0, [ped], duration_s=25.0)
    planner = make_planner()
    assert run.v[-1] == pytest.approx(0.0, abs=0.05)
    assert run.clearance[3][-1] == pytest.approx(
        planner.idm.min_gap_m + planner.longitudinal.pedestrian_stop_margin_m, abs=0.5
    )
    assert run.behaviours[-1] == Behaviour.STOP and run.reasons[-1].startswith("stopping for pedestrian 3")
    assert run.accel.min() > -4.05  # seen from afar: a comfortable stop


def test_lets_a_crossing_pedestrian_pass_then_drives_on(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=12.0)
    # Walks from the right kerb across the whole road at 1.4 m/s, reaching the ego's lane at ~6 s.
    ped = Actor(3, PEDESTRIAN, s_m=90.0, d_m=-5.5, length_m=0.5, width_m=0.5, lateral_mps=1.4)
    run = drive(make_planner(), route, 10.0, LANE0, 12.0, [ped], duration_s=30.0)
    assert run.clearance[3].min() > 1.0
    assert Behaviour.STOP in run.behaviours
    assert run.s[-1] > 150.0 and run.v[-1] > 10.0


def test_goes_around_a_stopped_car_when_the_other_lane_is_free(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=14.0)
    parked = Actor(4, VEHICLE, s_m=90.0, d_m=LANE0)
    run = drive(make_planner(), route, 10.0, LANE0, 12.0, [parked], duration_s=25.0)
    assert run.clearance[4].min() > 0.3
    assert run.ttc.min() > 0.95  # nuPlan's bound: clear of it sideways well before reaching it
    assert Behaviour.CHANGE_LANE in run.behaviours and Behaviour.STOP not in run.behaviours
    assert run.d.max() == pytest.approx(LANE1, abs=0.05)  # went over to lane 1 ...
    assert run.s[-1] > 200.0 and run.d[-1] == pytest.approx(LANE0, abs=0.05)  # ... and came back
    assert run.behaviours[-1] == Behaviour.CRUISE
    assert run.accel.min() > -4.05


def test_a_camera_world_changes_no_lane_before_its_tracks_have_settled(road, make_planner):
    """Standing behind a stopped car with lane 1 free, the ego goes round at once when it sees all
    round (ground truth), and only half a second on with cameras: a car that the tracker has not yet
    confirmed would be missing from an empty-looking lane."""
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=14.0)
    parked = Actor(4, VEHICLE, s_m=30.0, d_m=LANE0)
    for views, first_change_s in ((None, 0.0), (RIG, 0.5)):
        run = drive(make_planner(), route, 20.0, LANE0, 0.0, [parked], 2.0, views=views)
        changing = run.t[[b == Behaviour.CHANGE_LANE for b in run.behaviours]]
        assert changing[0] == pytest.approx(first_change_s), views


def test_stops_behind_a_stopped_car_when_the_other_lane_holds_a_vehicle_alongside(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=14.0)
    parked = Actor(4, VEHICLE, s_m=90.0, d_m=LANE0)
    alongside = Actor(5, VEHICLE, s_m=91.0, d_m=LANE1)  # both lanes blocked
    run = drive(make_planner(), route, 10.0, LANE0, 12.0, [parked, alongside], duration_s=25.0)
    planner = make_planner()
    assert run.v[-1] == pytest.approx(0.0, abs=0.05)
    assert run.clearance[4][-1] == pytest.approx(
        planner.idm.min_gap_m + planner.longitudinal.obstacle_stop_margin_m, abs=0.5
    )
    assert np.abs(run.d - LANE0).max() < 0.05
    assert run.behaviours[-1] == Behaviour.STOP and "vehicle 4" in run.reasons[-1]


def test_waits_for_a_moving_vehicle_alongside_then_goes_around(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=14.0)
    parked = Actor(4, VEHICLE, s_m=70.0, d_m=LANE0)
    alongside = Actor(5, VEHICLE, s_m=12.0, d_m=LANE1, v_mps=9.0)  # beside the ego, then ahead
    run = drive(make_planner(), route, 10.0, LANE0, 10.0, [parked, alongside], duration_s=35.0)
    assert run.clearance[4].min() > 0.3 and run.clearance[5].min() > 0.3
    assert run.ttc.min() > 0.95
    first_change = run.behaviours.index(Behaviour.CHANGE_LANE)
    assert Behaviour.STOP in run.behaviours[:first_change]  # it had to wait first
    assert run.s[-1] > 120.0 and run.d[-1] == pytest.approx(LANE0, abs=0.05)


def test_stops_behind_a_lead_that_brakes_hard_then_goes_around(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=15.0)
    lead = Actor(7, VEHICLE, s_m=45.0, d_m=LANE0, v_mps=14.0, brake_at_s=8.0, decel_mps2=7.0)
    other = Actor(8, VEHICLE, s_m=0.0, d_m=LANE1, v_mps=14.0)  # keeps lane 1 busy beside the ego
    run = drive(make_planner(), route, 10.0, LANE0, 14.0, [lead, other], duration_s=35.0)
    assert run.clearance[7].min() > 0.5 and run.clearance[8].min() > 0.5
    assert run.ttc.min() > 0.95
    braking = run.t > 8.0
    assert run.v[braking].min() < 5.0  # it had to slow right down while lane 1 was busy
    lead_stop_s = lead.frenet(99.0)[0]
    assert run.s[-1] > lead_stop_s + 30.0 and run.d[-1] == pytest.approx(LANE0, abs=0.05)


def test_standing_after_a_hard_stop_it_eases_off_no_more_than_a_comfortable_brake(road, make_planner):
    """The jerk limit eases a braking command off over time; a standing car decelerates no more, so
    after a hard stop it eases off from the comfortable deceleration, not from the hard one (which
    would keep it standing a second or more once the way is clear: into a red light, say). Moving,
    the hard command is eased off from where it was."""
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=10.0)
    walker = Actor(5, PEDESTRIAN, s_m=24.0, d_m=LANE0, length_m=0.5, width_m=0.5)
    x, y, yaw = (float(a) for a in road.to_world(20.0, LANE0))
    for v in (0.0, 3.0):
        planner = make_planner()
        step = planner.longitudinal.max_jerk_mps3 * DT_S
        braking = planner.plan(world_at(road, EgoState(x, y, yaw, v), [walker], 0.0), route)
        assert braking.target_accel_mps2 <= -MAX_DECEL_MPS2 / 2  # 1.5 m behind a pedestrian: braking hard
        clear = planner.plan(world_at(road, EgoState(x, y, yaw, v, t_s=DT_S), [], DT_S), route)
        start = -planner.idm.decel_comfort_mps2 if v == 0.0 else braking.target_accel_mps2
        assert clear.target_accel_mps2 == pytest.approx(start + step), v


def test_brakes_for_a_vehicle_cutting_in(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=20.0)
    # 6 m/s slower, it moves over when the bumper gap is down to ~12 m (the cut_in scenario).
    cutter = Actor(9, VEHICLE, s_m=45.0, d_m=LANE1, v_mps=12.0, to_d_m=LANE0, move_at_s=3.0, move_s=2.5)
    run = drive(make_planner(), route, 10.0, LANE0, 18.0, [cutter], duration_s=30.0)
    assert run.clearance[9].min() > 1.0
    # It is treated as a lead well before it is in the lane.
    lead_from = next(k for k, r in enumerate(run.reasons) if "vehicle 9" in r)
    assert run.t[lead_from] < 3.0 + 1.0
    assert run.v[-1] == pytest.approx(12.0, abs=0.3)


def test_respects_the_curvature_speed_cap_on_an_arc(make_planner):
    radius = 60.0
    road = Road(
        [Segment("straight", 150.0), Segment("arc", 200.0, radius), Segment("straight", 400.0)],
        lane_count=2,
        lane_width_m=3.5,
        speed_limit_mps=25.0,
    )
    route = Route(road, 10.0, 700.0, lane=0, cruise_speed_mps=20.0)
    run = drive(make_planner(), route, 10.0, LANE0, 20.0, [], duration_s=40.0)
    planner = make_planner()
    a_lat_max = planner.situation_params.max_lateral_accel_mps2
    on_arc = (run.s > 150.0) & (run.s < 350.0)
    lane_radius = radius - LANE0  # lane 0 is on the outside of this left bend
    lateral = run.v[on_arc] ** 2 / lane_radius
    assert lateral.max() <= a_lat_max * 1.03
    assert lateral.max() >= a_lat_max * 0.9  # ... while not crawling
    assert run.v[-1] > 17.5  # speeding up again after the bend
    assert np.abs(run.d - LANE0).max() < 0.05
    assert run.accel.min() > -4.05


def test_path_starts_at_the_ego_and_lies_on_the_lane_centre_when_cruising(make_planner):
    road = Road([Segment("straight", 40.0), Segment("arc", 150.0, -80.0)], 2, 3.5, 25.0)
    route = Route(road, 5.0, 180.0, lane=1, cruise_speed_mps=15.0)
    x, y, yaw = road.to_world(30.0, LANE1)
    ego = EgoState(float(x), float(y), float(yaw), 15.0, t_s=0.0)
    plan = make_planner().plan(WorldModel(ego=ego, t_s=0.0), route)
    assert plan.behaviour == Behaviour.CRUISE and plan.target_lane == 1
    assert plan.path_xy_m[0] == pytest.approx([x, y], abs=0.01)
    s, d = road.to_frenet(plan.path_xy_m)
    assert d == pytest.approx(np.full(len(d), LANE1), abs=0.01)
    step = np.hypot(*np.diff(plan.path_xy_m, axis=0).T)
    # 1 m apart along the reference line; a lane on the outside of a right bend is a bit longer.
    assert step == pytest.approx(np.ones(len(step)), rel=0.05)
    assert s[-1] - s[0] >= 3.0 * 15.0 - 1.0
    assert plan.speeds_mps.shape == (len(plan.path_xy_m),)
    assert np.all(plan.speeds_mps <= 15.0 + 1e-9) and np.all(plan.speeds_mps >= 0.0)


def test_speed_profile_integrates_the_target_acceleration(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=20.0)
    x, y, yaw = route.road.to_world(100.0, LANE0)
    lead = Actor(7, VEHICLE, s_m=125.0, d_m=LANE0, v_mps=5.0)
    ego = EgoState(float(x), float(y), float(yaw), 10.0, t_s=0.0)
    plan = make_planner().plan(world_at(route.road, ego, [lead], 0.0), route)
    assert plan.target_accel_mps2 < 0.0
    ahead = np.arange(len(plan.speeds_mps)) * 1.0
    expected = np.sqrt(np.maximum(100.0 + 2.0 * plan.target_accel_mps2 * ahead, 0.0))
    assert plan.speeds_mps == pytest.approx(expected)
    planner = make_planner()
    leaders = planner.effective_leaders(planner_situation(planner, route, ego, lead))
    b, coolness = planner.idm.decel_comfort_mps2, planner.longitudinal.acc_coolness
    a_acc = min(
        acc_blend(idm_accel(10.0, 20.0, gap, v_lead, planner.idm), 10.0, gap, v_lead, b, coolness)
        for gap, v_lead in leaders
    )
    assert plan.target_accel_mps2 == pytest.approx(
        float(np.clip(a_acc, -MAX_DECEL_MPS2, planner.idm.accel_max_mps2))
    )


def test_acc_blend_softens_idm_only_where_it_overreacts(make_planner):
    # A car cutting in 8 m ahead at the ego's speed: IDM brakes at several m/s^2, the ACC gently.
    idm = make_planner().idm
    a_idm = idm_accel(20.0, 20.0, 8.0, 20.0, idm)
    a_acc = acc_blend(a_idm, 20.0, 8.0, 20.0, idm.decel_comfort_mps2, 0.99)
    assert a_idm < -8.0 and -idm.decel_comfort_mps2 - 0.5 < a_acc < 0.0
    # Closing fast on a stopped car: the braking needed, v^2 / 2s, is kept (or more).
    a_idm = idm_accel(15.0, 20.0, 30.0, 0.0, idm)
    assert acc_blend(a_idm, 15.0, 30.0, 0.0, idm.decel_comfort_mps2, 0.99) <= -(15.0**2) / (2 * 30.0)
    # Where IDM is relaxed it is left alone; coolness 0 is plain IDM.
    a_idm = idm_accel(10.0, 20.0, 60.0, 12.0, idm)
    assert acc_blend(a_idm, 10.0, 60.0, 12.0, 3.0, 0.99) == a_idm
    a_idm = idm_accel(20.0, 20.0, 8.0, 20.0, idm)
    assert acc_blend(a_idm, 20.0, 8.0, 20.0, 3.0, 0.0) == pytest.approx(a_idm)


def planner_situation(planner: Planner, route: Route, ego: EgoState, actor: Actor):
    planner.plan(world_at(route.road, ego, [actor], 0.0), route)
    return planner.situation


def test_static_obstacle_off_the_road_is_ignored_and_reset_forgets(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=15.0)
    cone = Actor(6, OBSTACLE, s_m=60.0, d_m=4.2, length_m=0.4, width_m=0.4)  # beyond the left edge
    run = drive(make_planner(), route, 10.0, LANE0, 12.0, [cone], duration_s=5.0)
    assert set(run.behaviours) == {Behaviour.CRUISE}
    planner = make_planner()
    x, y, yaw = route.road.to_world(500.0, LANE0)
    planner.plan(WorldModel(ego=EgoState(float(x), float(y), float(yaw), 10.0), t_s=0.0), route)
    planner.reset()
    assert planner.state is None and planner.situation is None


def test_moving_off_the_speed_profile_starts_above_zero_and_stays_under_the_cap(road, make_planner):
    route = Route(road, 10.0, 800.0, lane=0, cruise_speed_mps=5.0)
    x, y, yaw = route.road.to_world(100.0, LANE0)
    plan = make_planner().plan(WorldModel(ego=EgoState(float(x), float(y), float(yaw), 0.0), t_s=0.0), route)
    a = plan.target_accel_mps2
    assert a > 0.0
    # From standstill: at least the speed reached half a second later, then v^2 = 2 a x, up to the cap.
    assert plan.speeds_mps[0] == pytest.approx(0.5 * a)
    ahead = np.arange(len(plan.speeds_mps)) * 1.0
    assert plan.speeds_mps == pytest.approx(np.minimum(np.maximum(np.sqrt(2.0 * a * ahead), 0.5 * a), 5.0))
    assert plan.speeds_mps[-1] == pytest.approx(5.0)  # the cap cuts the end of it


def test_built_from_the_config_sections_and_checks_them(conf_values):
    cfg = conf_values("decision/default.yaml")
    sections = {key: cfg[key] for key in ("idm", "mobil", "situation", "behaviour", "longitudinal")}
    ego = dict(ego_length_m=EGO_LENGTH_M, ego_width_m=EGO_WIDTH_M, max_decel_mps2=MAX_DECEL_MPS2)
    planner = Planner(**sections, **ego)
    assert planner.situation_params.look_ahead_m == cfg["situation"]["look_ahead_m"]
    assert planner.situation_params.ego_width_m == EGO_WIDTH_M
    assert planner.behaviour_params.idm is planner.idm and planner.behaviour_params.mobil is planner.mobil
    assert planner.longitudinal.acc_coolness == cfg["longitudinal"]["acc_coolness"]
    # A dataclass may stand for its mapping.
    assert (
        Planner(**(sections | {"idm": planner.idm, "longitudinal": planner.longitudinal}), **ego).idm
        == planner.idm
    )
    # Every value is needed (no defaults in code), unknown keys fail, bad values are named.
    with pytest.raises(TypeError, match="look_ahead_m"):
        Planner(
            **(sections | {"situation": {k: v for k, v in cfg["situation"].items() if k != "look_ahead_m"}}),
            **ego,
        )
    with pytest.raises(TypeError, match="lookahead_m"):
        Planner(**(sections | {"situation": cfg["situation"] | {"lookahead_m": 1.0}}), **ego)
    with pytest.raises(ValueError, match="acc_coolness"):
        Planner(**(sections | {"longitudinal": cfg["longitudinal"] | {"acc_coolness": 1.0}}), **ego)
    with pytest.raises(ValueError, match="emergency_exit_ttc_s"):
        Planner(**(sections | {"behaviour": cfg["behaviour"] | {"emergency_exit_ttc_s": 1.0}}), **ego)
    with pytest.raises(ValueError, match="look_ahead_m"):
        Planner(**(sections | {"situation": cfg["situation"] | {"look_ahead_m": 0.0}}), **ego)


def two_way_route(shoulder_m: float) -> Route:
    """A straight two-way street 400 m long: lane 0 (y = -1.75) east, lane 1 the oncoming one."""
    road = Road([Segment("straight", 400.0)], 2, 3.5, 14.0, oncoming_lanes=1, shoulder_m=shoulder_m)
    return Route(road, 10.0, 390.0, lane=0, cruise_speed_mps=12.0)


def test_keeps_right_of_an_oncoming_car_cutting_into_its_lane(make_planner):
    """InvadingTurn: an oncoming car drives 1 m into the ego's lane. With a parking lane to spare the
    ego shifts right, slows, and passes clear of it without stopping; without room it stops."""
    invader = Actor(
        7, VEHICLE, s_m=140.0, d_m=LANE1, v_mps=-9.0, to_d_m=LANE1 - 2.3, move_at_s=0.0, move_s=2.0
    )
    run = drive(make_planner(), two_way_route(2.2), 20.0, LANE0, 10.0, [invader], 10.0)
    assert run.clearance[7].min() > 0.3  # passed clear of it
    assert run.d.min() < LANE0 - 0.8 and run.v.min() > 3.0  # to the right, without stopping
    assert any(r.startswith("keeping") for r in run.reasons)
    assert run.d[-1] == pytest.approx(LANE0, abs=0.3)  # and back in the lane once it has gone by
    blocked = drive(make_planner(), two_way_route(0.0), 20.0, LANE0, 10.0, [invader], 10.0)
    assert blocked.v.min() < 0.5 and blocked.d.min() > LANE0 - 0.6


def test_a_late_cut_in_is_met_by_moving_over_not_by_an_emergency_stop(make_planner):
    """InvadingTurn as it met the ego (seed 11): at 14 m/s, the oncoming car starts to drift in
    when 55 m ahead, closing at 23.5 m/s. Braking cannot make that closing speed zero; moving over
    does. The ego moves over as soon as the drift is predicted, with no emergency brake, and passes
    clear (before, it stood on the brake at 2.3 s to collision, crawled, and was hit)."""
    invader = Actor(
        7, VEHICLE, s_m=150.0, d_m=LANE1, v_mps=-9.5, to_d_m=LANE1 - 2.4, move_at_s=3.3, move_s=2.5
    )
    run = drive(make_planner(), two_way_route(2.2), 20.0, LANE0, 13.5, [invader], 9.0)
    assert Behaviour.EMERGENCY_BRAKE not in run.behaviours
    assert run.clearance[7].min() > 0.2 and run.v.min() > 3.0


def test_a_slight_shift_right_does_not_slow_the_ego(make_planner):
    """An oncoming car driving close to the centre line, just inside the clearance the nudge keeps:
    the ego moves over the few centimetres at its speed. It slows to nudge.speed_mps only for a car
    well into its lane (before, any shift did: a noisy track's predicted drift slowed it to 6 m/s)."""
    close = Actor(7, VEHICLE, s_m=150.0, d_m=0.55, v_mps=-9.0)
    run = drive(make_planner(), two_way_route(2.2), 20.0, LANE0, 12.0, [close], 7.0)
    assert any(r.startswith("keeping") for r in run.reasons)
    assert run.v.min() > 11.5 and run.clearance[7].min() > 0.4


def test_the_naive_planner_does_not_shift_for_an_oncoming_car(make_planner, conf_values):
    cfg = conf_values("decision/default.yaml")
    naive = instantiate(
        {**cfg, "naive": True},
        ego_length_m=EGO_LENGTH_M,
        ego_width_m=EGO_WIDTH_M,
        max_decel_mps2=MAX_DECEL_MPS2,
    )
    invader = Actor(
        7, VEHICLE, s_m=140.0, d_m=LANE1, v_mps=-9.0, to_d_m=LANE1 - 2.3, move_at_s=0.0, move_s=2.0
    )
    run = drive(naive, two_way_route(2.2), 20.0, LANE0, 10.0, [invader], 10.0)
    assert abs(run.d - LANE0).max() < 0.1


RIG = tuple(
    CameraView(n, x, y, yaw, 110.0 if n == "rear" else 75.0, 150.0)
    for n, x, y, yaw in [("front", 0.8, 0.0, 0), ("fl", 0.5, 0.8, 55), ("fr", 0.5, -0.8, -55),
                         ("rl", -0.9, 0.8, 110), ("rr", -0.9, -0.8, -110), ("rear", -1.6, 0.0, 180)]
)  # fmt: skip


def test_edges_out_to_look_past_a_stopped_van_then_passes_it(make_planner, conf_values):
    """A van stopped in the ego's lane of a two-way street hides the oncoming lane beyond it from the
    rig's cameras (from the lane's centre, beyond about 25 m). The ego waits for a car coming the
    other way, edging out on its way to a stop (its side 0.2 m over the line), then sees the lane
    clear past the van and passes through it. Kept to its lane's centre it waits behind the van for
    good; seeing all round it never edges out."""
    van = Actor(5, VEHICLE, s_m=120.0, d_m=LANE0, length_m=5.5, width_m=2.0)
    coming = Actor(6, VEHICLE, s_m=200.0, d_m=LANE1, v_mps=-5.0)
    route = two_way_route(0.0)
    run = drive(make_planner(), route, 20.0, LANE0, 10.0, [van, coming], 40.0, views=RIG)
    looking = [i for i, r in enumerate(run.reasons) if r.endswith("left to look")]
    assert looking and run.v[looking[-1]] < 0.5 and run.d[looking[-1]] > LANE0 + 0.9  # stopped, edged out ...
    assert max(run.d[: looking[-1]]) < 0.0  # ... its side 0.2 m over the line at most
    assert run.clearance[6].min() > 0.5 and run.clearance[5].min() > 0.3  # the car went by, then the pass
    assert run.s[-1] > 160.0 and abs(run.d[-1] - LANE0) < 0.3
    cfg = conf_values("decision/default.yaml")
    centred = instantiate(
        {**cfg, "nudge": {**cfg["nudge"], "peek_over_line_m": -0.85}},
        ego_length_m=EGO_LENGTH_M,
        ego_width_m=EGO_WIDTH_M,
        max_decel_mps2=MAX_DECEL_MPS2,
    )
    waits = drive(centred, route, 20.0, LANE0, 10.0, [van, coming], 40.0, views=RIG)
    assert waits.s[-1] < 115.0 and waits.v[-1] < 0.1 and max(abs(waits.d - LANE0)) < 0.1
    assert waits.reasons[-1] == "stopping for vehicle 5 at 6.0 m: lane 1 is not all in the cameras' view"
    all_round = drive(make_planner(), route, 20.0, LANE0, 10.0, [van, coming], 40.0)
    assert not any("to look" in r for r in all_round.reasons) and all_round.s[-1] > 160.0


def test_edging_out_does_not_take_the_van_it_looks_past_out_of_its_way(make_planner):
    """A van parked 1.15 m into the ego's lane, cars coming the other way: the ego stops behind it,
    edging out to look. The look moves its path 1.1 m left, clear of the van, but the van stays in
    its way until it passes through the oncoming lane (before, the shifted corridor left the van
    out: the ego took the look for a way past, gave the look up, found the van again, and so on,
    STOP and CRUISE every other tick)."""
    van = Actor(5, VEHICLE, s_m=120.0, d_m=LANE0 - 1.6, length_m=5.5, width_m=2.0)
    coming = [Actor(6 + i, VEHICLE, s_m=180.0 + 40.0 * i, d_m=LANE1, v_mps=-8.0) for i in range(3)]
    run = drive(make_planner(), two_way_route(0.0), 60.0, LANE0, 10.0, [van, *coming], 25.0, views=RIG)
    looking = [i for i, r in enumerate(run.reasons) if r.endswith("left to look")]
    assert looking and run.v[looking[-1]] < 0.5  # it stood, looking ...
    held = run.behaviours[looking[0] : looking[-1] + 1]
    flips = sum(a != b for a, b in zip(held, held[1:], strict=False))
    assert flips <= 4  # ... without flickering
    assert run.clearance[5].min() > 0.3 and min(run.clearance[6 + i].min() for i in range(3)) > 0.5
    assert run.s[-1] > 135.0 and abs(run.d[-1] - LANE0) < 0.3  # then passed through the oncoming lane


def test_a_predicted_drift_does_not_stop_a_look_a_car_in_the_lane_does(make_planner):
    """Edging out behind the stopped van, the ego keeps looking while the coming car drifts 0.5 m
    towards the line in its own lane (a camera track's drift is noisy: before, the predicted cut-in
    sent the ego back right, 0.45 m, at every such wobble); a car that comes over the line into the
    ego's lane sends it back right."""
    van = Actor(5, VEHICLE, s_m=120.0, d_m=LANE0, length_m=5.5, width_m=2.0)
    route = two_way_route(0.0)
    drifts = Actor(6, VEHICLE, s_m=200.0, d_m=LANE1, v_mps=-5.0, to_d_m=LANE1 - 0.5, move_at_s=10.0)
    run = drive(make_planner(), route, 20.0, LANE0, 10.0, [van, drifts], 13.0, views=RIG)
    assert run.d[run.t > 10.0].min() > LANE0 + 1.0
    cuts_in = Actor(
        6, VEHICLE, s_m=200.0, d_m=LANE1, v_mps=-5.0, to_d_m=LANE1 - 2.6, move_at_s=10.0, move_s=2.0
    )
    back = drive(make_planner(), route, 20.0, LANE0, 10.0, [van, cuts_in], 13.0, views=RIG)
    assert back.d[-1] < LANE0


@dataclass
class Flickering(Actor):
    """An actor whose track reads `glitch_mps` at the times in `glitches` (a camera track's noise)."""

    glitches: tuple[float, ...] = ()
    glitch_mps: float = 4.0

    def frenet(self, t: float):
        s, d, v, vd = super().frenet(t)
        return (
            s,
            d,
            (self.glitch_mps if any(abs(t - g) < 0.5 * DT_S + 1e-9 for g in self.glitches) else v),
            vd,
        )


def test_a_look_is_held_through_a_tick_of_track_noise(make_planner):
    """Edging out behind the stopped van, whose track reads 4 m/s for two ticks (above
    slow_lead_speed_mps: for those ticks it is no slow hazard to look past), while a coming car
    wanders towards the line: the look is held (LOOK_HOLD_S), the ego stays out at the line. Dropped
    for those ticks, the nudge took the wandering car for a cut-in and moved the ego 0.3 m back
    right (with a camera track of a parked car, ParkedObstacleTwoWays seed 4, this went on until
    the car was out of the corridor: the ego crept up to 6 m behind it, too near to edge out)."""
    van = Flickering(5, VEHICLE, s_m=120.0, d_m=LANE0, length_m=5.5, width_m=2.0, glitches=(9.0, 9.05))
    wanders = Actor(
        6, VEHICLE, s_m=200.0, d_m=LANE1, v_mps=-5.0, to_d_m=LANE1 - 0.9, move_at_s=8.0, move_s=3.0
    )
    run = drive(make_planner(), two_way_route(0.0), 20.0, LANE0, 10.0, [van, wanders], 12.0, views=RIG)
    out = run.t > 8.0
    assert run.d[out].min() > LANE0 + 1.0  # out at the line all along
    assert all(r.endswith("left to look") for r in np.array(run.reasons)[out])


def test_passing_through_the_oncoming_lane_it_does_not_follow_a_car_coming_there(make_planner):
    """In the oncoming lane (overtaking), a car coming the other way 100 m off is no leader to follow:
    the ego keeps its speed (and goes back to its lane as soon as it can); in its own lane it is."""
    from decision.situation import ObjectAhead, Situation

    coming = ObjectAhead(6, VEHICLE, 100.0, -8.0)
    sit = Situation(100.0, 1.75, 12.0, 1, 0, 12.0, oncoming=True, lead=coming, road_end_gap_m=300.0)
    planner = make_planner()
    assert planner.effective_leaders(sit) == [(300.0, 0.0)]
    sit.oncoming = False
    assert planner.effective_leaders(sit) == [(300.0, 0.0), (100.0, -8.0)]


def test_a_crawling_lead_is_followed_with_room_to_steer_round_it(make_planner):
    """Behind a stationary object the ego keeps obstacle_stop_margin_m (3.5 m) more than IDM's gap:
    room to steer round it. A camera track of a parked van crawls at 0.5-1.5 m/s (its speed is
    noise) before it settles: followed to IDM's gap, the ego stood 5.1 m behind it, too near to go
    round (VehicleOpensDoorTwoWays seed 4, for good). The room now shrinks with the lead's speed,
    to none at slow_lead_speed_mps (3 m/s), where a crawling lead is passed on the move."""
    from decision.situation import ObjectAhead, Situation

    planner = make_planner()

    def kept_m(lead_speed_mps: float) -> float:
        sit = Situation(100.0, -1.75, 2.0, 0, 0, 12.0, lead=ObjectAhead(5, VEHICLE, 20.0, lead_speed_mps))
        return 20.0 - planner.effective_leaders(sit)[-1][0]

    assert kept_m(0.0) == pytest.approx(3.5) and kept_m(0.4) == pytest.approx(3.5)
    assert kept_m(1.0) == pytest.approx(3.5 * 2.0 / 2.5)
    assert kept_m(1.75) == pytest.approx(1.75) and kept_m(3.0) == 0.0 and kept_m(8.0) == 0.0

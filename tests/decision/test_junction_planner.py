"""The planner through a junction, past a parked car on a two-way road and out of a parking spot:
a kinematic ego that drives exactly along the plan's path with the plan's target acceleration, on a
crafted two-way corridor `Road` with a `JunctionCrossing`, scripted actors moving at constant
velocity in the world frame, a light whose state is a function of time."""

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.utils import instantiate
from test_planner import RIG

from decision.junction import CREEP_INTO_BOX_M, PULL_IN_M, PULL_IN_SLACK_M
from decision.plan import Behaviour
from decision.planner import Planner
from decision.route import Approach, JunctionCrossing, Road, Route, Segment
from decision.town import Leg
from decision.town_maps import parse_town
from perception.types import OBSTACLE, VEHICLE, EgoState, WorldModel

EGO_LENGTH_M, EGO_WIDTH_M, MAX_DECEL_MPS2 = 4.5, 1.8, 8.0
DT_S = 0.05
LANE0, LANE1 = -1.75, 1.75  # own lane, oncoming lane
HALF_M = 7.0  # the junction box's half size
STOP_S, ENTRY_S = 150.0, 153.0  # the stop line and the box entry along the corridor


@pytest.fixture(scope="module")
def make_planner(conf_values):
    """make_planner(naive=False) -> a Planner of conf/decision/default.yaml (naive: as naive.yaml)."""
    cfg = conf_values("decision/default.yaml")

    def make(naive: bool = False) -> Planner:
        ego = dict(ego_length_m=EGO_LENGTH_M, ego_width_m=EGO_WIDTH_M, max_decel_mps2=MAX_DECEL_MPS2)
        return instantiate(cfg | {"naive": naive}, **ego)

    return make


# The lanes coming into the box from its other arms: from the left (north), the right, ahead.
APPROACHES = (
    Approach("left", (160.0 + LANE0, HALF_M), -math.pi / 2, 150.0, 12.0),
    Approach("right", (160.0 + LANE1, -HALF_M), math.pi / 2, 150.0, 12.0),
    Approach("ahead", (160.0 + HALF_M, LANE1), math.pi, 150.0, 12.0),
)


def corridor(turn: str, control: str, signal_id: int = 1) -> Route:
    """A two-way road (lane 0 along s, lane 1 oncoming) east from the origin through a junction
    whose box is centred at (160, 0): straight through it, or a left quarter arc of radius h."""
    through = (
        [Segment("straight", 2 * HALF_M)]
        if turn == "straight"
        else [Segment("arc", math.pi / 2 * HALF_M, HALF_M)]
    )
    road = Road(
        [Segment("straight", ENTRY_S), *through, Segment("straight", 150.0)], 2, 3.5, 12.0, oncoming_lanes=1
    )
    exit_s = ENTRY_S + through[0].length_m
    crossing = JunctionCrossing(
        7, STOP_S, ENTRY_S, exit_s, turn, control, signal_id, (160.0, 0.0), HALF_M, 0.0, APPROACHES
    )
    return Route(road, 0.0, road.length_m - 10.0, 0, 12.0, junctions=(crossing,))


@dataclass
class Actor:
    """Drives at constant world velocity (vx, vy) from (x, y), until `stop_t_s`; 4.5 m x 1.8 m,
    or `length_m` long heading `yaw_rad` when it stands."""

    track_id: int
    class_id: int
    x_m: float
    y_m: float
    vx_mps: float = 0.0
    vy_mps: float = 0.0
    stop_t_s: float = math.inf
    length_m: float = 4.5
    yaw_rad: float = 0.0

    def at(self, t: float) -> tuple[float, float, float, float]:
        moving = t < self.stop_t_s
        tt = min(t, self.stop_t_s)
        return (
            self.x_m + self.vx_mps * tt,
            self.y_m + self.vy_mps * tt,
            self.vx_mps * moving,
            self.vy_mps * moving,
        )


@dataclass
class Run:
    t: np.ndarray
    s: np.ndarray  # the ego's centre
    d: np.ndarray
    v: np.ndarray
    behaviours: list
    reasons: list
    clearance: dict  # actor id -> (T,) clearance between the boxes, taken axis-aligned [m] (< 0: overlap)


def drive(
    planner, route, s0, d0, v0, actors, duration_s, light=lambda t: "green", views=None, signal_id=1
) -> Run:
    road = route.road
    x, y, yaw = (float(a) for a in road.to_world(s0, d0))
    v = v0
    rec = {k: [] for k in ("t", "s", "d", "v", "behaviours", "reasons")}
    clearance = {a.track_id: [] for a in actors}
    for k in range(int(round(duration_s / DT_S))):
        t = k * DT_S
        f = np.array([a.at(t) for a in actors], dtype=float).reshape(len(actors), 4)
        n = len(actors)
        world = WorldModel(
            ego=EgoState(x, y, yaw, v, t_s=t),
            t_s=t,
            ids=np.array([a.track_id for a in actors], dtype=np.int64),
            class_ids=np.array([a.class_id for a in actors], dtype=np.int64),
            xy_m=f[:, :2],
            v_mps=f[:, 2:],
            yaw_rad=np.where(
                np.hypot(f[:, 2], f[:, 3]) > 0, np.arctan2(f[:, 3], f[:, 2]), [a.yaw_rad for a in actors]
            ),
            size_m=np.array([[a.length_m, 1.8] for a in actors]).reshape(n, 2),
            scores=np.ones(n),
            signals=((signal_id, light(t)),),
            views=views,
        )
        plan = planner.plan(world, route)
        s, d = road.to_frenet(np.array([x, y]), s_hint_m=rec["s"][-1] if rec["s"] else None)
        for key, value in zip(
            ("t", "s", "d", "v", "behaviours", "reasons"),
            (t, s, d, v, plan.behaviour, plan.reason),
            strict=True,
        ):
            rec[key].append(value)
        for a, (ax, ay, _, _) in zip(actors, f, strict=True):
            along, across = (
                (ax - x) * math.cos(yaw) + (ay - y) * math.sin(yaw),
                (ay - y) * math.cos(yaw) - (ax - x) * math.sin(yaw),
            )
            clearance[a.track_id].append(max(abs(along) - 4.5, abs(across) - 1.8))
        v_next = max(v + plan.target_accel_mps2 * DT_S, 0.0)
        step = 0.5 * (v + v_next) * DT_S
        seg = np.diff(plan.path_xy_m, axis=0)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        i = min(int(np.searchsorted(arc, step, side="right")) - 1, len(seg) - 1)
        frac = (step - arc[i]) / max(arc[i + 1] - arc[i], 1e-9)
        x, y = (float(c) for c in plan.path_xy_m[i] + frac * seg[i])
        yaw = float(np.arctan2(seg[i, 1], seg[i, 0]))
        v = v_next
    arrays = {k: np.array(rec[k]) for k in ("t", "s", "d", "v")}
    dist = {k: np.array(c) for k, c in clearance.items()}
    return Run(**arrays, behaviours=rec["behaviours"], reasons=rec["reasons"], clearance=dist)


def front(run: Run) -> np.ndarray:
    return run.s + 0.5 * EGO_LENGTH_M


def test_stops_at_the_red_line_and_goes_on_green(make_planner):
    route = corridor("straight", "signal")
    run = drive(
        make_planner(), route, 60.0, LANE0, 10.0, [], 35.0, light=lambda t: "red" if t < 20.0 else "green"
    )
    red = run.t < 20.0
    assert front(run)[red].max() <= STOP_S  # never past the line at red
    assert front(run)[red][-1] > STOP_S - 3.0 and run.v[red][-1] < 0.05  # stopped at it
    assert run.behaviours[int(19.0 / DT_S)] == Behaviour.STOP_AT_LINE
    assert run.reasons[int(19.0 / DT_S)].startswith("red light at")
    assert run.s[-1] > 200.0  # through on green


def test_naive_runs_the_red_light(make_planner):
    run = drive(
        make_planner(naive=True),
        corridor("straight", "signal"),
        60.0,
        LANE0,
        10.0,
        [],
        20.0,
        light=lambda t: "red",
    )
    assert run.s[-1] > 200.0 and Behaviour.STOP_AT_LINE not in run.behaviours


def test_stop_sign_full_stop_then_go(make_planner):
    run = drive(make_planner(), corridor("straight", "stop", signal_id=-1), 100.0, LANE0, 10.0, [], 30.0)
    near_line = (front(run) > STOP_S - 3.0) & (front(run) <= STOP_S)
    assert run.v[near_line].min() < 0.1  # a full stop at the line
    assert front(run).max() > STOP_S + 50.0  # then on


def test_standing_short_of_the_stop_line_it_moves_up_and_makes_its_stop(make_planner, conf_values):
    """Held 1.6 m before a stop sign's line (by a car that has since gone): a stop there is no full
    stop (conf stop_zone_m), and IDM pulls only weakly over the last 0.6 m. The plan's speed at the
    ego still exceeds the controller's standstill hold, so the controller drives it up to the line."""
    route = corridor("straight", "stop", signal_id=-1)
    planner = make_planner()
    x, y, yaw = (float(a) for a in route.road.to_world(STOP_S - 1.6 - 0.5 * EGO_LENGTH_M, LANE0))
    none = np.zeros(0)
    world = WorldModel(
        ego=EgoState(x, y, yaw, 0.0), t_s=0.0, ids=none.astype(np.int64), class_ids=none.astype(np.int64),
        xy_m=np.zeros((0, 2)), v_mps=np.zeros((0, 2)), yaw_rad=none, size_m=np.zeros((0, 2)), scores=none,
    )  # fmt: skip
    plan = planner.plan(world, route)
    assert plan.behaviour == Behaviour.STOP_AT_LINE and plan.reason == "stop sign at 1.6 m"
    vehicle = conf_values("sim/default.yaml")["vehicle"]
    limits = ("wheelbase_m", "max_steer_rad", "max_accel_mps2", "max_decel_mps2")
    controller = instantiate(
        conf_values("control/pure_pursuit.yaml"), **{k: float(vehicle[k]) for k in limits}
    )
    cmd, log = controller.update(EgoState(x, y, yaw, 0.0), plan, DT_S)
    assert plan.target_accel_mps2 > 0.0 and cmd.accel_mps2 > 0.0 and log["mode"] == 0.0  # tracking, no hold


def test_waits_at_a_stop_sign_for_a_crossing_car(make_planner):
    # From the right, across the box at 10 m/s, reaching it at about 11 s: the ego, stopped at the
    # line by then (at about 10 s), waits for it.
    crossing_car = Actor(5, VEHICLE, 160.0 - 1.75, -HALF_M - 1.0 - 110.0, 0.0, 10.0)
    run = drive(
        make_planner(), corridor("straight", "stop", signal_id=-1), 100.0, LANE0, 10.0, [crossing_car], 30.0
    )
    assert run.clearance[5].min() > 3.0
    assert any(
        r.startswith("stop sign: giving way to vehicle 5") or r.startswith("giving way to vehicle 5")
        for r in run.reasons
    )
    assert front(run).max() > STOP_S + 50.0


def test_creeps_past_a_van_at_the_corner_to_see_and_gives_way_to_what_comes(make_planner):
    """A van stands at the near left corner of a stop-sign junction, along the cross street: from
    the stop line the rig's cameras do not see the lane coming from the left behind it. The ego
    makes its stop, creeps on to see (never past CREEP_INTO_BOX_M into the box), gives way there
    to a car coming from the left, and goes after it. Seeing all round it never creeps: it goes at
    once, well before that car."""
    van = Actor(2, VEHICLE, 160.0 - 5.0, 11.0, length_m=5.0, yaw_rad=math.pi / 2)
    car = Actor(3, VEHICLE, 160.0 + LANE0, 175.0, vy_mps=-10.0)  # at the box at about 16.7 s
    route = corridor("straight", "stop", signal_id=-1)
    run = drive(make_planner(), route, 100.0, LANE0, 10.0, [van, car], 40.0, views=RIG)
    creeping = np.array([b == Behaviour.CREEP for b in run.behaviours])
    first = int(np.argmax(creeping))
    assert creeping.any() and run.reasons[first].startswith("creeping to see: the left approach")
    assert run.v[first] < 0.1 and front(run)[first] > STOP_S - 3.0  # its full stop at the line first
    assert front(run)[creeping].max() <= ENTRY_S + CREEP_INTO_BOX_M + 0.3
    yields = [i for i, r in enumerate(run.reasons) if r.startswith("giving way to vehicle 3")]
    assert yields and yields[0] > first
    assert run.clearance[3].min() > 1.0 and front(run)[-1] > ENTRY_S + 2 * HALF_M + 20.0
    all_round = drive(make_planner(), route, 100.0, LANE0, 10.0, [van, car], 40.0)
    assert Behaviour.CREEP not in all_round.behaviours
    assert all_round.t[np.argmax(front(all_round) > ENTRY_S + 2 * HALF_M)] < 16.0


def test_where_it_holds_while_waiting_at_a_junction(make_planner):
    """The virtual stop of a wait: before the stop line; creeping, CREEP_INTO_BOX_M into the box;
    giving way over the line, at the box; in the box, before the exit's crosswalk for a pedestrian."""
    from decision.behaviour import BehaviourState
    from decision.junction import JunctionAhead
    from decision.situation import Situation

    planner = make_planner()
    gap0 = planner.idm.min_gap_m
    j = JunctionAhead(7, "stop", "right", None, stop_gap_m=6.0, entry_gap_m=10.0, exit_gap_m=21.0)
    cases = [
        (Behaviour.STOP_AT_LINE, {}, 6.0 + gap0 - 1.0),
        (Behaviour.CREEP, {}, 10.0 + CREEP_INTO_BOX_M + gap0),
        (Behaviour.YIELD, dict(stop_gap_m=-1.0, entry_gap_m=3.0), 3.0 + gap0),
        (
            Behaviour.YIELD,
            dict(stop_gap_m=-6.0, entry_gap_m=-2.0, exit_gap_m=9.0, pedestrian_on_exit=5),
            9.0 + gap0 - 1.0,
        ),
    ]
    for behaviour, changes, hold in cases:
        sit = Situation(100.0, -1.75, 1.0, 0, 0, 12.0, road_end_gap_m=300.0, junction=replace(j, **changes))
        state = BehaviourState(behaviour, 0, waiting_at=7)
        assert planner.effective_leaders(sit, state) == [(300.0, 0.0), (pytest.approx(hold), 0.0)], behaviour


def test_left_turn_waits_for_the_oncoming_car_then_turns(make_planner):
    oncoming = Actor(6, VEHICLE, 250.0, LANE1, -10.0, 0.0)  # reaches the box at about 8 s
    run = drive(make_planner(), corridor("left", "signal"), 100.0, LANE0, 8.0, [oncoming], 30.0)
    assert Behaviour.YIELD in run.behaviours
    assert run.clearance[6].min() > 0.8
    in_box = np.array([abs(oncoming.at(t)[0] - 160.0) < HALF_M + 2.25 for t in run.t])
    # While the car crossed the box the ego waited in it, pulled in short of the oncoming lane.
    assert front(run)[in_box].max() < ENTRY_S + PULL_IN_M + PULL_IN_SLACK_M
    assert run.s[-1] > ENTRY_S + 40.0  # turned and went on


def test_left_turn_pulls_into_the_box_between_the_cars_of_a_platoon_and_turns_at_the_red(make_planner):
    # The crossing of conf/town/crossing.yaml, from the west arm, turning left (north). Five oncoming
    # cars 2.2 s apart cross the box through the rest of the green: the ego gets into the box to wait
    # (not held short of it car after car) and clears it when its light turns red.
    town = parse_town(yaml.safe_load((Path(__file__).parents[2] / "conf/town/crossing.yaml").read_text()))
    route = town.route(town.legs_through(Leg(2, False), ["left"]), 90.0, 60.0, 12.0)
    (crossing,) = route.junctions
    h, lane = town.half_size_m[0], 0.5 * town.lane_width_m
    platoon = [Actor(20 + k, VEHICLE, h + 30.0 + 22.0 * k, lane, -10.0, 0.0) for k in range(5)]

    def light(t):
        return "green" if t < 12.0 else "yellow" if t < 15.0 else "red"

    run = drive(make_planner(), route, 90.0, -lane, 8.0, platoon, 30.0, light, signal_id=crossing.signal_id)
    assert min(c.min() for c in run.clearance.values()) > 0.8
    assert front(run)[run.t < 12.0].max() > crossing.entry_s_m + 2.0  # pulled in on green
    tail = run.s - 0.5 * EGO_LENGTH_M
    assert tail[run.t >= 15.0].min() > crossing.stop_s_m  # over the line before the red
    assert run.s[-1] > crossing.exit_s_m + 20.0  # turned and went on


def test_left_turn_with_a_far_oncoming_car_does_not_wait(make_planner):
    oncoming = Actor(6, VEHICLE, 400.0, LANE1, -10.0, 0.0)  # 20 s away
    run = drive(make_planner(), corridor("left", "signal"), 100.0, LANE0, 8.0, [oncoming], 15.0)
    assert Behaviour.YIELD not in run.behaviours and run.v.min() > 3.0


def test_brakes_for_a_red_light_runner(make_planner):
    # From the right at 15 m/s, too fast to stop for its red light, through the box when the ego
    # would be there.
    runner = Actor(9, VEHICLE, 160.0 - 1.75, -HALF_M - 1.0 - 75.0, 0.0, 15.0)
    run = drive(make_planner(), corridor("straight", "signal"), 100.0, LANE0, 10.0, [runner], 15.0)
    assert any("vehicle 9" in r for r in run.reasons)
    assert run.clearance[9].min() > 2.0
    assert run.s[-1] > 200.0


def test_overtakes_a_parked_car_after_the_oncoming_car_has_passed(make_planner):
    road = Road([Segment("straight", 400.0)], 2, 3.5, 12.0, oncoming_lanes=1)
    route = Route(road, 0.0, 390.0, 0, 12.0)
    parked = Actor(4, OBSTACLE, 100.0, LANE0)
    oncoming = Actor(
        6, VEHICLE, 180.0, LANE1, -10.0, 0.0
    )  # seen from the start, level with the parked car at 8 s
    run = drive(make_planner(), route, 40.0, LANE0, 10.0, [parked, oncoming], 40.0)
    assert run.clearance[6].min() > 0.5 and run.clearance[4].min() > 0.5
    first_change = run.behaviours.index(Behaviour.CHANGE_LANE)
    assert run.t[first_change] > 6.0  # waited for the oncoming car to come by
    assert any("oncoming traffic in lane 1" in r for r in run.reasons[:first_change])
    assert run.d.max() == pytest.approx(LANE1, abs=0.1)
    assert run.s[-1] > 160.0 and run.d[-1] == pytest.approx(LANE0, abs=0.05)


def test_leaves_a_parking_spot_behind_a_passing_car(make_planner):
    road = Road([Segment("straight", 300.0)], 2, 3.5, 12.0, oncoming_lanes=1)
    route = Route(road, 0.0, 290.0, 0, 12.0)
    passing = Actor(5, VEHICLE, 24.0, LANE0, 10.0, 0.0)
    run = drive(make_planner(), route, 50.0, LANE0 - 2.6, 0.0, [passing], 25.0)
    assert run.behaviours[0] == Behaviour.STOP and run.reasons[0].startswith("waiting to merge")
    assert run.clearance[5].min() > 0.5
    merge = run.behaviours.index(Behaviour.CHANGE_LANE)
    assert np.abs(run.d[:merge] - (LANE0 - 2.6)).max() < 1e-6  # stayed put until then ...
    assert passing.at(run.t[merge])[0] - run.s[merge] > 4.5  # ... until the car had passed
    assert run.d[-1] == pytest.approx(LANE0, abs=0.05) and run.s[-1] > 100.0


def test_decision_naive_composes_to_the_naive_planner():
    from omegaconf import OmegaConf

    from sim.app import config as C

    cfg, _ = C.load("drive", ["decision=naive"])
    default, _ = C.load("drive", [])
    # naive.yaml is default.yaml with the one flag set
    assert OmegaConf.to_container(cfg.decision) == OmegaConf.to_container(default.decision) | {"naive": True}
    planner = instantiate(
        cfg.decision, ego_length_m=EGO_LENGTH_M, ego_width_m=EGO_WIDTH_M, max_decel_mps2=8.0
    )
    assert planner.naive and planner.behaviour_params.junction is None
    assert not planner.behaviour_params.lane_changes

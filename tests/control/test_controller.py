"""VehicleController: built from the YAML, stops and holds, tracks speed, emergency brake, bad input."""

import math

import numpy as np
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from control.command import ControlCommand
from control.controller import MODE_EMERGENCY, MODE_STANDSTILL, MODE_TRACK, VehicleController
from decision.plan import Behaviour, Plan
from perception.types import EgoState

DT_S = 0.05  # 20 Hz control
VEHICLE_KEYS = ("wheelbase_m", "max_steer_rad", "max_accel_mps2", "max_decel_mps2")


@pytest.fixture(scope="module")
def vehicle_limits(conf_values) -> dict[str, float]:
    """The vehicle's numbers that the controller takes (conf/sim/default.yaml sim.vehicle)."""
    vehicle = conf_values("sim/default.yaml")["vehicle"]
    return {key: float(vehicle[key]) for key in VEHICLE_KEYS}


@pytest.fixture(scope="module")
def build(conf_values, vehicle_limits):
    """build(lateral="pure_pursuit") -> a new controller of conf/control/<lateral>.yaml, built as the
    commands build it."""

    def make(lateral: str = "pure_pursuit") -> VehicleController:
        return instantiate(conf_values(f"control/{lateral}.yaml"), **vehicle_limits)

    return make


def straight_plan(x0_m: float, speed_mps: float, behaviour=Behaviour.CRUISE, accel_mps2=0.0) -> Plan:
    """A 100 m path along the x axis from x0, at one target speed."""
    xs = math.floor(x0_m) + np.arange(-2.0, 98.0)
    path = np.stack([xs, np.zeros_like(xs)], axis=1)
    return Plan(path, np.full(len(xs), speed_mps), accel_mps2, behaviour, "test")


class Car:
    """Point-mass longitudinal model with a kinematic bicycle for steering (rear axle, as in
    test_lateral); the acceleration command is followed exactly, and brakes cannot reverse."""

    def __init__(self, speed_mps: float, y_m: float = 0.0, wheelbase_m: float = 2.7):
        self.x_m, self.y_m, self.yaw_rad, self.speed_mps, self.wheelbase_m = (
            0.0,
            y_m,
            0.0,
            speed_mps,
            wheelbase_m,
        )

    def ego(self) -> EgoState:
        half = 0.5 * self.wheelbase_m
        return EgoState(
            self.x_m + half * math.cos(self.yaw_rad),
            self.y_m + half * math.sin(self.yaw_rad),
            self.yaw_rad,
            self.speed_mps,
        )

    def step(self, command: ControlCommand) -> None:
        v = self.speed_mps
        self.x_m += v * math.cos(self.yaw_rad) * DT_S
        self.y_m += v * math.sin(self.yaw_rad) * DT_S
        self.yaw_rad += v / self.wheelbase_m * math.tan(command.steer_rad) * DT_S
        self.speed_mps = max(0.0, v + command.accel_mps2 * DT_S)


def drive(controller: VehicleController, car: Car, plan_at, duration_s: float):
    """Closed loop; plan_at(t_s, ego) -> Plan. Returns (speeds (T,), commands, logs)."""
    speeds, commands, logs = [], [], []
    for k in range(round(duration_s / DT_S)):
        ego = car.ego()
        command, log = controller.update(ego, plan_at(k * DT_S, ego), DT_S)
        car.step(command)
        speeds.append(car.speed_mps)
        commands.append(command)
        logs.append(log)
    return np.array(speeds), commands, logs


@pytest.mark.parametrize("lateral", ["pure_pursuit", "stanley"])
def test_built_from_yaml_with_vehicle_limits_passed_in(lateral, conf_values, vehicle_limits):
    cfg = conf_values(f"control/{lateral}.yaml")
    assert not set(VEHICLE_KEYS) & set(cfg)  # the vehicle's numbers live in conf/sim only
    controller = instantiate(cfg, **vehicle_limits)
    assert isinstance(controller, VehicleController)
    assert type(controller.lateral).__name__ == {"pure_pursuit": "PurePursuit", "stanley": "Stanley"}[lateral]
    assert controller.speed_pid.output_max == 3.0 and controller.speed_pid.output_min == -8.0
    with pytest.raises(InstantiationException, match="wheelbase_m"):  # the vehicle's numbers are required
        instantiate(cfg)


@pytest.mark.parametrize("lateral", ["pure_pursuit", "stanley"])
def test_stops_and_holds_on_zero_speed_plan(lateral, build):
    controller = build(lateral)
    car = Car(speed_mps=10.0, y_m=0.3)
    speeds, commands, logs = drive(controller, car, lambda t, ego: straight_plan(ego.x_m, 0.0), 15.0)
    accels = np.array([c.accel_mps2 for c in commands])
    stopped = np.flatnonzero(speeds < 1e-9)
    assert len(stopped) and stopped[0] * DT_S < 10.0
    after = stopped[0]
    assert np.all(speeds[after:] < 1e-9)  # stays stopped
    assert np.all(accels[after:] < 0.0)  # holds the brake: no creeping forward, no hunting
    assert logs[-1]["mode"] == MODE_STANDSTILL
    assert accels.min() >= -8.0
    assert abs(car.y_m) < 0.3  # kept steering towards the path while braking


def test_pulls_away_from_standstill(build):
    controller = build()
    speeds, _, logs = drive(controller, Car(0.0), lambda t, ego: straight_plan(ego.x_m, 10.0), 10.0)
    assert logs[0]["mode"] == MODE_TRACK and logs[0]["accel_mps2"] == pytest.approx(3.0)
    assert abs(speeds[-1] - 10.0) < 0.2


@pytest.mark.parametrize("lateral", ["pure_pursuit", "stanley"])
def test_tracks_a_speed_change(lateral, build):
    controller = build(lateral)
    car = Car(speed_mps=10.0)

    def plan_at(t_s, ego):
        return straight_plan(ego.x_m, 10.0 if t_s < 2.0 else 15.0)

    speeds, _, logs = drive(controller, car, plan_at, 14.0)
    assert abs(speeds[round(2.0 / DT_S) - 1] - 10.0) < 0.05  # held 10 m/s before the change
    assert abs(speeds[-1] - 15.0) < 0.15
    assert speeds.max() < 15.0 + 0.6
    assert logs[-1]["v_ref_mps"] == 15.0 and abs(car.y_m) < 0.01


def test_reference_speed_is_read_ahead_on_the_profile(build):
    controller = build()
    xs = np.arange(0.0, 100.0)
    speeds = np.where(xs < 20.0, 10.0, 5.0)  # the profile drops 20 m ahead
    plan = Plan(np.stack([xs, np.zeros_like(xs)], axis=1), speeds, 0.0, Behaviour.FOLLOW, "test")
    # At 10 m/s the controller reads 0.5 s = 5 m ahead of its nearest point.
    _, log = controller.update(EgoState(10.0, 0.0, 0.0, 10.0), plan, DT_S)
    assert log["v_ref_mps"] == 10.0
    _, log = controller.update(EgoState(17.0, 0.0, 0.0, 10.0), plan, DT_S)
    assert log["v_ref_mps"] == 5.0
    assert log["accel_mps2"] < 0.0


def test_feedforward_adds_the_planner_acceleration(build):
    controller = build()
    ego = EgoState(0.0, 0.0, 0.0, 10.0)
    command, log = controller.update(ego, straight_plan(0.0, 10.0, accel_mps2=-2.0), DT_S)
    assert command.accel_mps2 == pytest.approx(-2.0)
    assert log["pid_ff"] == -2.0 and log["pid_p"] == 0.0


@pytest.mark.parametrize("lateral", ["pure_pursuit", "stanley"])
def test_emergency_brake_commands_max_deceleration(lateral, build):
    controller = build(lateral)
    ego = EgoState(0.0, 0.5, 0.0, 20.0)
    for _ in range(5):  # wind the integral up a little first
        controller.update(ego, straight_plan(0.0, 21.0), DT_S)
    assert controller.speed_pid.integral > 0.0
    plan = straight_plan(0.0, 25.0, Behaviour.EMERGENCY_BRAKE, accel_mps2=1.0)
    command, log = controller.update(ego, plan, DT_S)
    assert command.accel_mps2 == -8.0
    assert log["mode"] == MODE_EMERGENCY
    assert command.steer_rad < 0.0  # still steers towards the path
    assert controller.speed_pid.integral == 0.0  # no stale integral when braking ends


@pytest.mark.parametrize("lateral", ["pure_pursuit", "stanley"])
@pytest.mark.parametrize("n_points", [0, 1, 3])
def test_degenerate_paths_give_a_safe_finite_command(lateral, n_points, build):
    controller = build(lateral)
    path = np.full((n_points, 2), 4.0)  # empty, one point, or one point repeated
    plan = Plan(path, np.zeros(n_points), 0.0, Behaviour.STOP, "test")
    for speed in (5.0, 0.0):
        command, log = controller.update(EgoState(0.0, 0.0, 0.3, speed), plan, DT_S)
        assert command.steer_rad == 0.0
        assert command.accel_mps2 < 0.0
        assert log["v_ref_mps"] == 0.0


def test_log_has_the_same_float_keys_every_tick(build):
    controller = build("stanley")
    keys = None
    plans = [
        straight_plan(0.0, 10.0),
        straight_plan(0.0, 0.0),
        straight_plan(0.0, 10.0, Behaviour.EMERGENCY_BRAKE),
        Plan(np.zeros((0, 2)), np.zeros(0), 0.0, Behaviour.STOP, "empty"),
    ]
    for plan in plans:
        for speed in (0.0, 10.0):
            _, log = controller.update(EgoState(0.0, 0.0, 0.0, speed), plan, DT_S)
            assert all(type(value) is float for value in log.values())
            keys = keys or set(log)
            assert set(log) == keys
    assert {"steer_rad", "accel_mps2", "v_ref_mps", "cross_track_error_m", "pid_p", "pid_i"} <= keys


def test_rejects_bad_input(build, vehicle_limits):
    controller = build()
    ego = EgoState(0.0, 0.0, 0.0, 5.0)
    with pytest.raises(ValueError):
        controller.update(ego, straight_plan(0.0, 5.0), 0.0)
    bad = Plan(np.zeros((5, 2)), np.zeros(4), 0.0, Behaviour.CRUISE, "mismatch")
    with pytest.raises(ValueError):
        controller.update(ego, bad, DT_S)
    broken = straight_plan(0.0, 5.0)
    broken.path_xy_m[7, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        controller.update(ego, broken, DT_S)
    with pytest.raises(ValueError, match="ego state"):
        controller.update(EgoState(0.0, math.nan, 0.0, 5.0), straight_plan(0.0, 5.0), DT_S)
    with pytest.raises(ValueError):
        VehicleController(
            lateral="mpc",
            lateral_params={},
            speed_pid={},
            speed_lookahead_s=0.5,
            standstill_speed_mps=0.3,
            standstill_decel_mps2=1.5,
            **vehicle_limits,
        )


def test_reset_forgets_the_integral(build):
    controller = build()
    for _ in range(10):
        controller.update(EgoState(0.0, 0.0, 0.0, 5.0), straight_plan(0.0, 6.0), DT_S)
    assert controller.speed_pid.integral != 0.0
    controller.reset()
    assert controller.speed_pid.integral == 0.0


def test_repeated_path_points_are_dropped_with_their_speeds(build):
    xs = np.arange(0.0, 50.0)
    path = np.stack([xs, np.zeros_like(xs)], axis=1)
    speeds = np.where(xs < 8.0, 10.0, 4.0)
    twice = np.repeat(np.arange(len(xs)), 2)  # every point twice
    ego = EgoState(2.5, 0.5, 0.1, 10.0)
    _, log = build().update(ego, Plan(path, speeds, 0.0, Behaviour.CRUISE, "once"), DT_S)
    _, log_twice = build().update(ego, Plan(path[twice], speeds[twice], 0.0, Behaviour.CRUISE, "twice"), DT_S)
    assert log_twice == pytest.approx(log)
    assert log["v_ref_mps"] == pytest.approx(7.0)  # the profile 5 m ahead of x = 2.5: halfway from 10 to 4

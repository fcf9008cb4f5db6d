"""Ego vehicle models: the kinematic bicycle against closed forms, the PyBullet car against both."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from control.command import ControlCommand
from sim.config import VehicleConfig
from sim.world.vehicle import KinematicCar, PhysicsCar

CONTROL_HZ = 20
L_M = 2.7


@pytest.fixture
def cfg() -> VehicleConfig:
    return VehicleConfig(
        length_m=4.5,
        width_m=1.8,
        height_m=1.5,
        wheelbase_m=L_M,
        wheel_radius_m=0.33,
        mass_kg=1500.0,
        max_steer_rad=0.6,
        max_steer_rate_radps=1.2,
        max_accel_mps2=3.0,
        max_decel_mps2=8.0,
    )


@pytest.fixture
def client():
    """A DIRECT client with a ground plane of friction 1.0 (the world's road grip) and gravity."""
    cid = p.connect(p.DIRECT)
    p.setGravity(0, 0, -9.81, physicsClientId=cid)
    ground = p.createMultiBody(
        0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=cid), physicsClientId=cid
    )
    p.changeDynamics(ground, -1, lateralFriction=1.0, physicsClientId=cid)
    yield cid, ground
    p.disconnect(cid)


def nan_command() -> ControlCommand:
    """A command that slipped past ControlCommand's own check."""
    cmd = ControlCommand(0.0, 0.0)
    object.__setattr__(cmd, "accel_mps2", math.nan)
    return cmd


def drive(car, cmd_fn, duration_s: float, physics_hz: int, client_id: int | None = None) -> np.ndarray:
    """Run the closed loop at CONTROL_HZ; rows (t, x, y, yaw, speed, accel, yaw_rate) per tick."""
    n_sub = physics_hz // CONTROL_HZ
    step_fn = None if client_id is None else (lambda: p.stepSimulation(physicsClientId=client_id))
    if client_id is not None:
        p.setTimeStep(1.0 / physics_hz, physicsClientId=client_id)
    rows = []
    for k in range(round(duration_s * CONTROL_HZ)):
        car.apply(cmd_fn(k / CONTROL_HZ))
        car.advance(1.0 / physics_hz, n_sub, step_fn)
        s = car.state((k + 1) / CONTROL_HZ)
        rows.append((s.t_s, s.x_m, s.y_m, s.yaw_rad, s.speed_mps, s.accel_mps2, s.yaw_rate_radps))
    return np.array(rows)


def fit_circle(xy: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through (N, 2) points: centre x, centre y, radius."""
    a = np.c_[2.0 * xy, np.ones(len(xy))]
    cx, cy, c = np.linalg.lstsq(a, (xy**2).sum(axis=1), rcond=None)[0]
    return cx, cy, math.sqrt(c + cx * cx + cy * cy)


def centre_radius(steer_rad: float) -> float:
    """Turn radius of the box centre for a centred wheelbase."""
    return math.hypot(0.5 * L_M, L_M / math.tan(steer_rad))


# ---- kinematic bicycle ----------------------------------------------------------------------


def test_kinematic_straight_acceleration_is_exact(cfg):
    car = KinematicCar(cfg, 1.0, 2.0, 0.0, 0.0)
    rows = drive(car, lambda t: ControlCommand(0.0, 2.0), 5.0, physics_hz=120)
    assert rows[-1, 4] == pytest.approx(10.0, abs=1e-9)
    assert rows[-1, 1] == pytest.approx(1.0 + 0.5 * 2.0 * 25.0, abs=1e-9)
    assert rows[-1, 2] == pytest.approx(2.0, abs=1e-12)
    assert rows[-1, 5] == pytest.approx(2.0)


def test_kinematic_constant_steer_drives_the_centre_radius(cfg):
    steer = 0.5
    car = KinematicCar(cfg, 0.0, 0.0, 0.5, 5.0)
    rows = drive(car, lambda t: ControlCommand(steer, 0.0), 8.0, physics_hz=120)
    settled = rows[CONTROL_HZ:]  # the steering has reached 0.5 rad after 0.42 s
    cx, cy, r = fit_circle(settled[:, 1:3])
    assert r == pytest.approx(centre_radius(steer), rel=1e-6)
    assert abs(r - L_M / math.tan(steer)) > 0.15  # not the rear-axle radius
    # the turn centre lies on the rear axle's line, L / tan(delta) to the left of the rear axle
    _, x, y, yaw = settled[-1, :4]
    heading = np.array([math.cos(yaw), math.sin(yaw)])
    to_centre = np.array([cx, cy]) - (np.array([x, y]) - 0.5 * L_M * heading)
    assert to_centre @ heading == pytest.approx(0.0, abs=1e-6)
    left_offset_m = heading[0] * to_centre[1] - heading[1] * to_centre[0]
    assert left_offset_m == pytest.approx(L_M / math.tan(steer), rel=1e-6)
    assert settled[-1, 6] == pytest.approx(5.0 * math.tan(steer) / L_M)  # yaw rate
    # a left turn (positive steer) turns counter-clockwise
    assert np.all(np.diff(np.unwrap(settled[:, 3])) > 0)


def test_kinematic_step_size_does_not_change_the_path(cfg):
    """Exact arc integration: for a held steering angle the path depends on the distance only."""
    cmd = lambda t: ControlCommand(0.3, 1.0)  # noqa: E731
    fine, coarse = KinematicCar(cfg, 0.0, 0.0, 0.0, 5.0), KinematicCar(cfg, 0.0, 0.0, 0.0, 5.0)
    fine.steer_rad = coarse.steer_rad = 0.3  # skip the steering ramp
    fine_rows = drive(fine, cmd, 6.0, physics_hz=240)
    coarse_rows = drive(coarse, cmd, 6.0, physics_hz=20)
    assert np.abs(fine_rows[:, 1:5] - coarse_rows[:, 1:5]).max() < 1e-9


def test_kinematic_brake_stops_and_never_reverses(cfg):
    car = KinematicCar(cfg, 0.0, 0.0, 0.0, 5.0)
    rows = drive(car, lambda t: ControlCommand(0.0, -8.0), 3.0, physics_hz=120)
    assert rows[:, 4].min() == 0.0
    assert rows[-1, 4] == 0.0
    assert rows[-1, 1] == pytest.approx(25.0 / 16.0)  # v^2 / (2 a)
    assert np.all(np.diff(rows[:, 1]) >= 0.0)


def test_kinematic_steering_rate_limit_and_clipping(cfg):
    car = KinematicCar(cfg, 0.0, 0.0, 0.0, 10.0)
    car.apply(ControlCommand(2.0, 10.0))
    car.step(0.1)
    assert car.steer_rad == pytest.approx(0.12)  # 1.2 rad/s for 0.1 s
    assert car.accel_demand_mps2 == 3.0
    for _ in range(10):
        car.step(0.1)
    assert car.steer_rad == pytest.approx(0.6)  # clipped to max_steer_rad
    car.apply(ControlCommand(-0.6, -20.0))
    car.step(0.5)
    assert car.steer_rad == pytest.approx(0.0)
    assert car.accel_demand_mps2 == -8.0


def test_kinematic_rejects_non_finite_input(cfg):
    car = KinematicCar(cfg, 0.0, 0.0, 0.0, 3.0)
    car.apply(ControlCommand(0.1, 1.0))
    with pytest.raises(ValueError, match="not finite"):
        car.apply(nan_command())
    assert car.accel_demand_mps2 == 1.0 and car.steer_target_rad == 0.1
    with pytest.raises(ValueError):
        KinematicCar(cfg, math.inf, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        KinematicCar(cfg, 0.0, 0.0, 0.0, -1.0)


# ---- PyBullet car -----------------------------------------------------------------------------


@pytest.mark.parametrize("physics_hz", [60, 120, 240])
def test_physics_tracks_acceleration_and_stays_on_its_wheels(cfg, client, physics_hz):
    cid, _ = client
    car = PhysicsCar(cfg, 0.0, 0.0, 0.3, 0.0, client_id=cid)
    rows = drive(car, lambda t: ControlCommand(0.0, 2.0), 5.0, physics_hz, cid)
    assert rows[-1, 4] == pytest.approx(10.0, abs=0.5)
    # steady acceleration between 1 s and 4 s, and the reported (filtered) estimate
    mean_accel = (rows[79, 4] - rows[19, 4]) / (rows[79, 0] - rows[19, 0])
    assert mean_accel == pytest.approx(2.0, abs=0.05)
    assert np.abs(rows[CONTROL_HZ:, 5] - 2.0).max() < 0.3
    assert math.hypot(rows[-1, 1], rows[-1, 2]) == pytest.approx(25.0, rel=0.05)
    assert rows[-1, 3] == pytest.approx(0.3, abs=0.01)  # straight on
    _, _, z, roll, pitch = car.pose()
    assert abs(roll) < 0.05 and abs(pitch) < 0.05
    assert z == pytest.approx(0.35 * cfg.height_m, abs=0.05)


@pytest.mark.parametrize("physics_hz", [60, 120, 240])
def test_physics_brake_stops_within_the_expected_distance(cfg, client, physics_hz):
    cid, _ = client
    car = PhysicsCar(cfg, 0.0, 0.0, 0.0, 20.0, client_id=cid)
    rows = drive(car, lambda t: ControlCommand(0.0, -6.0), 5.0, physics_hz, cid)
    assert rows[-1, 1] == pytest.approx(20.0**2 / (2 * 6.0), rel=0.10)
    assert abs(rows[-1, 4]) < 0.05
    assert rows[:, 4].min() > -0.05  # never reverses


def test_physics_full_brake_splits_torque_by_axle_load(cfg, client):
    """At 8 m/s^2 an even split would lock the unloaded rear wheels (+8 % distance measured)."""
    cid, _ = client
    car = PhysicsCar(cfg, 0.0, 0.0, 0.0, 25.0, client_id=cid)
    rows = drive(car, lambda t: ControlCommand(0.0, -8.0), 5.0, 120, cid)
    assert rows[-1, 1] == pytest.approx(25.0**2 / (2 * 8.0), rel=0.05)
    assert abs(rows[-1, 4]) < 0.05


def test_physics_holds_still_on_brake_and_drives_off_again(cfg, client):
    cid, _ = client
    car = PhysicsCar(cfg, 0.0, 0.0, 0.0, 5.0, client_id=cid)
    drive(car, lambda t: ControlCommand(0.0, -4.0), 2.0, 120, cid)
    stopped_x = car.state(2.0).x_m
    rows = drive(car, lambda t: ControlCommand(0.2, -1.0), 2.0, 120, cid)
    assert np.abs(rows[:, 4]).max() < 0.01
    assert rows[-1, 1] == pytest.approx(stopped_x, abs=0.01)
    rows = drive(car, lambda t: ControlCommand(0.0, 2.0), 2.0, 120, cid)  # brake released
    assert rows[-1, 4] == pytest.approx(4.0, abs=0.3)


def test_physics_turn_radius_matches_the_kinematic_model(cfg, client):
    cid, _ = client
    steer = 0.1
    car = PhysicsCar(cfg, 0.0, 0.0, 0.0, 10.0, client_id=cid)
    rows = drive(car, lambda t: ControlCommand(steer, 0.0), 10.0, 120, cid)
    _, _, r = fit_circle(rows[CONTROL_HZ:, 1:3])
    assert r == pytest.approx(centre_radius(steer), rel=0.05)


def test_physics_follows_the_kinematic_path_in_a_lane_change(cfg, client):
    cid, _ = client
    cmd = lambda t: ControlCommand(0.08 * math.sin(2 * math.pi * t / 4.0), 0.5)  # noqa: E731
    phys = drive(PhysicsCar(cfg, 0.0, 0.0, 0.0, 10.0, client_id=cid), cmd, 6.0, 120, cid)
    kin = drive(KinematicCar(cfg, 0.0, 0.0, 0.0, 10.0), cmd, 6.0, 120)
    assert kin[:, 2].max() > 5.0  # the manoeuvre moves the car sideways by metres
    assert np.hypot(*(phys[:, 1:3] - kin[:, 1:3]).T).max() < 0.5
    assert np.abs(phys[:, 4] - kin[:, 4]).max() < 0.3


@pytest.mark.parametrize("physics_hz", [60, 240])
def test_physics_stays_stable_in_a_fast_slalom(cfg, client, physics_hz):
    cid, _ = client
    car = PhysicsCar(cfg, 0.0, 0.0, 0.0, 25.0, client_id=cid)
    cmd = lambda t: ControlCommand(0.06 * math.sin(2 * math.pi * t / 2.0), 0.0)  # noqa: E731
    rows = drive(car, cmd, 6.0, physics_hz, cid)
    assert np.isfinite(rows).all()
    _, _, z, roll, pitch = car.pose()
    assert abs(roll) < 0.1 and abs(pitch) < 0.1
    assert z == pytest.approx(0.35 * cfg.height_m, abs=0.05)
    assert rows[-1, 4] > 20.0


def test_physics_rejects_nan_and_keeps_the_last_command(cfg, client):
    cid, _ = client
    car = PhysicsCar(cfg, 0.0, 0.0, 0.0, 0.0, client_id=cid)
    car.apply(ControlCommand(0.1, -2.0))
    with pytest.raises(ValueError, match="not finite"):
        car.apply(nan_command())
    assert (car.steer_target_rad, car.accel_demand_mps2) == (0.1, -2.0)  # nothing of it was taken
    drive(car, lambda t: ControlCommand(0.0, 1.0), 1.0, 120, cid)
    assert car.state(1.0).speed_mps == pytest.approx(1.0, abs=0.1)

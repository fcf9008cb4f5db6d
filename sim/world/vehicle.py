"""The ego vehicle: a kinematic bicycle model and a PyBullet multibody car behind one interface.

Frames and conventions (both models):
- The pose (x, y, yaw) is the centre of the vehicle's box on the ground; the wheelbase is centred
  on it (rear axle at -L/2, front axle at +L/2 along the heading). Yaw is counter-clockwise from +x.
- `speed_mps` is the signed speed along the heading (the longitudinal velocity, the same for every
  point on the car's centre line, and equal to the rear-axle speed).
- A command is a front-wheel steering target [rad] (left positive) and a longitudinal
  acceleration demand [m/s^2]. The steering angle follows the target at most at
  `max_steer_rate_radps` and is clipped to +-`max_steer_rad`; the demand is clipped to
  [-max_decel, max_accel]. A negative demand is a brake: it never drives the car backwards, and at
  standstill it holds the car still.

Stepping (the one loop the world runs, whichever the model)::

    ego.apply(command)                                   # once per control tick
    ego.advance(dt_physics_s, n_substeps, step_fn)       # n_substeps = physics_hz / control_hz

`advance` calls `step(dt)` (kinematic: integrate; physics: set the wheel torques and steering for
the next physics step) and then `step_fn()` (the world's `p.stepSimulation`) `n_substeps` times.
A world without physics bodies may call `KinematicCar.step(dt_control_s)` once per tick instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import pybullet as p

from control.command import ControlCommand
from perception.types import EgoState
from sim.config import VehicleConfig
from sim.world.world import GRAVITY_MPS2

# Physics car build. Wheels are cylinders about the lateral (y) axis; front wheels hang from a
# steering link (revolute about z), rear wheels from the chassis. All four wheels drive and brake.
WHEEL_WIDTH_M = 0.22
WHEEL_MASS_KG = 20.0
STEER_LINK_MASS_KG = 2.0  # the knuckle between chassis and front wheel
STEER_LINK_INERTIA_KGM2 = 0.05  # about each axis
GROUND_CLEARANCE_M = 0.18  # chassis box bottom above the ground
CG_HEIGHT_FRACTION = 0.35  # centre of mass height / vehicle height (0.53 m for a 1.5 m car)
TYRE_FRICTION = 1.0  # wheel lateralFriction; Bullet multiplies it by the ground's (set that to 1.0)
STEER_MAX_TORQUE_NM = 5000.0  # steering motor force limit
STEER_POSITION_GAIN = 0.5  # PyBullet POSITION_CONTROL gain of the steering joints
ACCEL_FILTER_TAU_S = 0.1  # time constant of the smoothed finite-difference acceleration
EGO_RGBA = (0.8, 0.1, 0.1, 1.0)  # the physics car's body colour
TYRE_RGBA = (0.1, 0.1, 0.1, 1.0)
# Links of the physics car; PyBullet numbers them depth-first, so a child follows its parent.
STEER_JOINTS = (0, 2)  # front-left and front-right knuckles, revolute about z
WHEEL_JOINTS = (1, 3, 4, 5)  # front-left, front-right, rear-left and rear-right wheels, about y


class EgoVehicle(Protocol):
    """What the world, the sensors and the metrics use of an ego car."""

    is_kinematic: bool
    body_id: int | None  # PyBullet body (None for the kinematic model)
    length_m: float
    width_m: float

    def apply(self, command: ControlCommand) -> None: ...

    def step(self, dt_s: float) -> None: ...

    def advance(self, dt_s: float, n_substeps: int, step_fn: Callable[[], None] | None = None) -> None: ...

    def state(self, t_s: float) -> EgoState: ...


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def wheel_inertia_kgm2(radius_m: float) -> tuple[float, float]:
    """(spin, tilt) moments of inertia [kg m^2] of a wheel: a solid cylinder of WHEEL_MASS_KG and
    WHEEL_WIDTH_M, about its axle and about a diameter."""
    spin = 0.5 * WHEEL_MASS_KG * radius_m * radius_m
    tilt = WHEEL_MASS_KG * (3 * radius_m * radius_m + WHEEL_WIDTH_M**2) / 12
    return spin, tilt


def box_inertia_kgm2(mass_kg: float, length_m: float, width_m: float, height_m: float) -> list[float]:
    """Principal moments of inertia [kg m^2] of a solid box about its x, y and z axes."""
    lx, ly, lz = length_m, width_m, height_m
    return [
        mass_kg * (ly * ly + lz * lz) / 12,
        mass_kg * (lx * lx + lz * lz) / 12,
        mass_kg * (lx * lx + ly * ly) / 12,
    ]


def _yaw(qx: float, qy: float, qz: float, qw: float) -> float:
    """Heading [rad] of a quaternion (rotation about z of the body's x axis)."""
    return math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))


class _Car:
    """Command handling shared by both models: validation, clipping, the steering rate limit."""

    is_kinematic: bool
    body_id: int | None

    def __init__(self, vehicle: VehicleConfig, speed_mps: float):
        self.length_m = float(vehicle.length_m)
        self.width_m = float(vehicle.width_m)
        self.height_m = float(vehicle.height_m)
        self.wheelbase_m = float(vehicle.wheelbase_m)
        self.max_steer_rad = float(vehicle.max_steer_rad)
        self.max_steer_rate_radps = float(vehicle.max_steer_rate_radps)
        self.max_accel_mps2 = float(vehicle.max_accel_mps2)
        self.max_decel_mps2 = float(vehicle.max_decel_mps2)
        if not (math.isfinite(speed_mps) and speed_mps >= 0.0):
            raise ValueError(f"initial speed_mps={speed_mps!r} must be finite and >= 0")
        self.steer_rad = 0.0  # actual (rate-limited) front-wheel angle
        self.steer_target_rad = 0.0
        self.accel_demand_mps2 = 0.0  # clipped demand

    def apply(self, command: ControlCommand) -> None:
        """Set the steering target and acceleration demand (held until the next call)."""
        steer, accel = float(command.steer_rad), float(command.accel_mps2)
        if not _finite(steer, accel):
            raise ValueError(f"control command is not finite: steer={steer}, accel={accel}")
        self.steer_target_rad = min(max(steer, -self.max_steer_rad), self.max_steer_rad)
        self.accel_demand_mps2 = min(max(accel, -self.max_decel_mps2), self.max_accel_mps2)

    def _advance_steer(self, dt_s: float) -> float:
        """Move the steering angle toward its target for dt_s; returns the mean angle over dt_s."""
        before = self.steer_rad
        max_change = self.max_steer_rate_radps * dt_s
        self.steer_rad = before + min(max(self.steer_target_rad - before, -max_change), max_change)
        return 0.5 * (before + self.steer_rad)

    def advance(self, dt_s: float, n_substeps: int, step_fn: Callable[[], None] | None = None) -> None:
        """`n_substeps` times: `step(dt_s)`, then `step_fn()` (the world's physics step) if given."""
        for _ in range(n_substeps):
            self.step(dt_s)
            if step_fn is not None:
                step_fn()

    def step(self, dt_s: float) -> None:
        raise NotImplementedError


class KinematicCar(_Car):
    """Kinematic bicycle model referenced at the box centre (pure Python, no PyBullet body).

    With the wheelbase L centred on the reference point (l_r = l_f = L/2), front angle delta and
    longitudinal speed u (rear-axle speed): yaw rate r = u tan(delta) / L; the centre moves at
    u / cos(beta) in direction yaw + beta, slip angle beta = atan(tan(delta) / 2) (Kong et al. 2015
    with l_r / L = 1/2). The centre drives a circle of radius R = sqrt((L/2)^2 + (L / tan delta)^2).
    Each step uses the mean steering angle over the step and integrates the arc exactly (the path
    of a constant angle depends only on the distance driven, so the update is exact for any speed
    profile). The acceleration demand is applied directly; a brake stops at zero speed.
    """

    is_kinematic = True
    body_id = None

    def __init__(
        self, vehicle: VehicleConfig, x_m: float, y_m: float, yaw_rad: float, speed_mps: float = 0.0
    ):
        super().__init__(vehicle, speed_mps)
        if not _finite(x_m, y_m, yaw_rad):
            raise ValueError(f"initial pose is not finite: x={x_m}, y={y_m}, yaw={yaw_rad}")
        self.x_m, self.y_m, self.yaw_rad = float(x_m), float(y_m), float(yaw_rad)
        self.speed_mps = float(speed_mps)
        self._accel_mps2 = 0.0  # actual mean acceleration over the last step

    def step(self, dt_s: float) -> None:
        """Integrate the model over dt_s [s] with the current command."""
        delta = self._advance_steer(dt_s)
        u0, a = self.speed_mps, self.accel_demand_mps2
        u1 = u0 + a * dt_s
        if u1 < 0.0:  # the brake stops the car within this step and holds it
            u1 = 0.0
            distance_m = 0.5 * u0 * u0 / -a if a < 0.0 else 0.0
        else:
            distance_m = 0.5 * (u0 + u1) * dt_s
        self.speed_mps = u1
        self._accel_mps2 = (u1 - u0) / dt_s
        tan_delta = math.tan(delta)
        dyaw = distance_m * tan_delta / self.wheelbase_m
        beta = math.atan(0.5 * tan_delta)
        half = 0.5 * dyaw
        # chord of the centre's arc: arc length distance / cos(beta), times sin(half) / half
        chord_m = distance_m * math.sqrt(1.0 + 0.25 * tan_delta * tan_delta)
        if abs(half) > 1e-9:
            chord_m *= math.sin(half) / half
        heading = self.yaw_rad + beta + half
        self.x_m += chord_m * math.cos(heading)
        self.y_m += chord_m * math.sin(heading)
        self.yaw_rad = math.remainder(self.yaw_rad + dyaw, math.tau)

    def state(self, t_s: float) -> EgoState:
        yaw_rate = self.speed_mps * math.tan(self.steer_rad) / self.wheelbase_m
        return EgoState(self.x_m, self.y_m, self.yaw_rad, self.speed_mps, yaw_rate, self._accel_mps2, t_s)


class PhysicsCar(_Car):
    """A real-size PyBullet multibody car in the given client (the ground is the plane z = 0).

    Links (PyBullet numbers links depth-first, so children follow their parent): 0 front-left
    steering knuckle (revolute about z), 1 front-left wheel, 2 front-right knuckle, 3 front-right
    wheel, 4 rear-left wheel, 5 rear-right wheel (wheels revolute about the lateral axis). The base
    frame is the centre of mass, at (0, 0, CG_HEIGHT_FRACTION * height) in the vehicle frame; the
    total mass is `mass_kg`. The suspension is rigid.

    Longitudinal: the demand a needs a total wheel torque m_eff a r (m_eff counts the wheels'
    rotational inertia), split front/rear in proportion to the axle loads under that acceleration
    (front share 1/2 - h a / (g L), h the centre-of-mass height), so that no wheel asks for more
    grip than a/g of its load. a >= 0 drives (TORQUE_CONTROL); a < 0 brakes: each wheel's velocity
    motor is held at 0 rad/s with its share as the torque limit, so it can only slow the wheel,
    never reverse it, and it holds the car at standstill. Steering: POSITION_CONTROL of the
    knuckles to the rate-limited angle, split by Ackermann geometry.

    Call `step(dt)` before every `p.stepSimulation` (or use `advance`). The combined friction is
    the product of the tyre's and the ground's: the ground must have lateralFriction 1.0 (PyBullet
    defaults to 0.5, which halves the grip and lengthens a 6 m/s^2 stop by ~20 %).
    """

    is_kinematic = False

    def __init__(
        self,
        vehicle: VehicleConfig,
        x_m: float,
        y_m: float,
        yaw_rad: float,
        speed_mps: float = 0.0,
        *,
        client_id: int,
        rgba: tuple[float, float, float, float] = EGO_RGBA,
    ):
        super().__init__(vehicle, speed_mps)
        if not _finite(x_m, y_m, yaw_rad):
            raise ValueError(f"initial pose is not finite: x={x_m}, y={y_m}, yaw={yaw_rad}")
        self.client_id = client_id
        r = float(vehicle.wheel_radius_m)
        self.wheel_radius_m = r
        self._half_track_m = 0.5 * (self.width_m - WHEEL_WIDTH_M)
        self.body_id = self._build(vehicle, x_m, y_m, yaw_rad, rgba)
        self._steer_joints = list(STEER_JOINTS)
        self._wheel_joints = list(WHEEL_JOINTS)
        wheel_spin_inertia, _ = wheel_inertia_kgm2(r)
        self._torque_per_mps2 = (vehicle.mass_kg + 4.0 * wheel_spin_inertia / (r * r)) * r  # total [N m]
        self._load_transfer_per_mps2 = CG_HEIGHT_FRACTION * self.height_m / (GRAVITY_MPS2 * self.wheelbase_m)
        self._wheel_torques_nm = [0.0] * 4  # |torque| per wheel joint for the current demand
        cid = client_id
        # The default joint motors would brake the wheels: off (zero force) until a brake demand.
        p.setJointMotorControlArray(
            self.body_id, self._wheel_joints, p.VELOCITY_CONTROL, forces=[0.0] * 4, physicsClientId=cid
        )
        self._braking = False
        self._applied_steer_rad = math.nan  # the angle last sent to the knuckles
        self._set_steering()
        if speed_mps > 0.0:
            c, s = math.cos(yaw_rad), math.sin(yaw_rad)
            p.resetBaseVelocity(self.body_id, [speed_mps * c, speed_mps * s, 0.0], physicsClientId=cid)
            for j in self._wheel_joints:
                p.resetJointState(self.body_id, j, 0.0, speed_mps / r, physicsClientId=cid)
        self._last_speed_t: tuple[float, float] | None = None
        self._accel_est_mps2 = 0.0

    def _build(self, v: VehicleConfig, x_m: float, y_m: float, yaw_rad: float, rgba) -> int:
        """Create the car's multibody at (x, y, yaw), links as in the class docstring; its id."""
        chassis_mass_kg = (
            v.mass_kg - len(WHEEL_JOINTS) * WHEEL_MASS_KG - len(STEER_JOINTS) * STEER_LINK_MASS_KG
        )
        if chassis_mass_kg <= 0.0:
            raise ValueError(f"mass_kg={v.mass_kg} is too small for wheels of {WHEEL_MASS_KG} kg")
        cg_z = CG_HEIGHT_FRACTION * float(v.height_m)  # the base frame's height above the ground
        chassis = self._chassis_shapes(v, cg_z, rgba)
        wheel = self._wheel_shapes()
        body = self._create_body(v, x_m, y_m, yaw_rad, cg_z, chassis_mass_kg, chassis, wheel)
        self._set_inertias(body, v, chassis_mass_kg)
        return body

    def _chassis_shapes(self, v: VehicleConfig, cg_z_m: float, rgba) -> tuple[int, int]:
        """(collision, visual) shapes of the chassis: a box from GROUND_CLEARANCE_M to the roof, in
        the base (centre of mass) frame."""
        cid, h = self.client_id, float(v.height_m)
        box_half = [0.5 * v.length_m, 0.5 * v.width_m, 0.5 * (h - GROUND_CLEARANCE_M)]
        box_z = 0.5 * (h + GROUND_CLEARANCE_M) - cg_z_m  # box centre in the base frame
        collision = p.createCollisionShape(
            p.GEOM_BOX, halfExtents=box_half, collisionFramePosition=[0, 0, box_z], physicsClientId=cid
        )
        visual = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=box_half,
            visualFramePosition=[0, 0, box_z],
            rgbaColor=rgba,
            physicsClientId=cid,
        )
        return collision, visual

    def _wheel_shapes(self) -> tuple[int, int]:
        """(collision, visual) shapes of a wheel: a cylinder about the link's lateral (y) axis."""
        cid, r = self.client_id, self.wheel_radius_m
        axle_along_y = p.getQuaternionFromEuler([math.pi / 2, 0.0, 0.0])
        collision = p.createCollisionShape(
            p.GEOM_CYLINDER,
            radius=r,
            height=WHEEL_WIDTH_M,
            collisionFrameOrientation=axle_along_y,
            physicsClientId=cid,
        )
        visual = p.createVisualShape(
            p.GEOM_CYLINDER,
            radius=r,
            length=WHEEL_WIDTH_M,
            visualFrameOrientation=axle_along_y,
            rgbaColor=TYRE_RGBA,
            physicsClientId=cid,
        )
        return collision, visual

    def _create_body(
        self,
        v: VehicleConfig,
        x_m: float,
        y_m: float,
        yaw_rad: float,
        cg_z_m: float,
        chassis_mass_kg: float,
        chassis: tuple[int, int],
        wheel: tuple[int, int],
    ) -> int:
        """The multibody: the chassis as the base, knuckles and wheels as revolute links."""
        # Wheel centres in the base frame: axles at +-wheelbase/2, wheels at +-half track.
        wx, wy, wz = 0.5 * v.wheelbase_m, self._half_track_m, self.wheel_radius_m - cg_z_m
        wheel_col, wheel_vis = wheel
        return p.createMultiBody(
            baseMass=chassis_mass_kg,
            baseCollisionShapeIndex=chassis[0],
            baseVisualShapeIndex=chassis[1],
            basePosition=[x_m, y_m, cg_z_m],
            baseOrientation=p.getQuaternionFromEuler([0.0, 0.0, yaw_rad]),
            # links: FL knuckle, FL wheel, FR knuckle, FR wheel, RL wheel, RR wheel
            linkMasses=[STEER_LINK_MASS_KG, WHEEL_MASS_KG] * 2 + [WHEEL_MASS_KG] * 2,
            linkCollisionShapeIndices=[-1, wheel_col, -1, wheel_col, wheel_col, wheel_col],
            linkVisualShapeIndices=[-1, wheel_vis, -1, wheel_vis, wheel_vis, wheel_vis],
            linkPositions=[[wx, wy, wz], [0, 0, 0], [wx, -wy, wz], [0, 0, 0], [-wx, wy, wz], [-wx, -wy, wz]],
            linkOrientations=[[0, 0, 0, 1]] * 6,
            linkInertialFramePositions=[[0, 0, 0]] * 6,
            linkInertialFrameOrientations=[[0, 0, 0, 1]] * 6,
            linkParentIndices=[0, 1, 0, 3, 0, 0],  # 0 = chassis, k = link k - 1
            linkJointTypes=[p.JOINT_REVOLUTE] * 6,
            linkJointAxis=[[0, 0, 1], [0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]],
            physicsClientId=self.client_id,
        )

    def _set_inertias(self, body: int, v: VehicleConfig, chassis_mass_kg: float) -> None:
        """Inertias set explicitly (PyBullet approximates offset shapes by their bounding box), no
        damping, and the tyres' friction."""
        cid = self.client_id
        chassis_inertia = box_inertia_kgm2(
            chassis_mass_kg, v.length_m, v.width_m, float(v.height_m) - GROUND_CLEARANCE_M
        )
        p.changeDynamics(
            body,
            -1,
            localInertiaDiagonal=chassis_inertia,
            linearDamping=0.0,
            angularDamping=0.0,
            physicsClientId=cid,
        )
        for link in STEER_JOINTS:
            p.changeDynamics(
                body,
                link,
                localInertiaDiagonal=[STEER_LINK_INERTIA_KGM2] * 3,
                jointDamping=0.0,
                physicsClientId=cid,
            )
        spin, tilt = wheel_inertia_kgm2(self.wheel_radius_m)
        for link in WHEEL_JOINTS:
            p.changeDynamics(
                body,
                link,
                localInertiaDiagonal=[tilt, spin, tilt],
                lateralFriction=TYRE_FRICTION,
                rollingFriction=0.0,
                spinningFriction=0.0,
                jointDamping=0.0,
                physicsClientId=cid,
            )

    def apply(self, command: ControlCommand) -> None:
        """Set the steering target and acceleration demand; switches the wheel motors drive/brake."""
        super().apply(command)
        a = self.accel_demand_mps2
        front_share = min(max(0.5 - self._load_transfer_per_mps2 * a, 0.0), 1.0)
        per_front = 0.5 * front_share * self._torque_per_mps2 * abs(a)
        per_rear = 0.5 * (1.0 - front_share) * self._torque_per_mps2 * abs(a)
        torques = [per_front, per_front, per_rear, per_rear]  # wheel joints FL, FR, RL, RR
        braking = a < 0.0
        if braking and (not self._braking or torques != self._wheel_torques_nm):
            p.setJointMotorControlArray(
                self.body_id,
                self._wheel_joints,
                p.VELOCITY_CONTROL,
                targetVelocities=[0.0] * 4,
                forces=torques,
                physicsClientId=self.client_id,
            )
        elif not braking and self._braking:  # release the brake: motors off, torque control in step()
            p.setJointMotorControlArray(
                self.body_id,
                self._wheel_joints,
                p.VELOCITY_CONTROL,
                forces=[0.0] * 4,
                physicsClientId=self.client_id,
            )
        self._braking = braking
        self._wheel_torques_nm = torques

    def _set_steering(self) -> None:
        """Send the Ackermann split of the current steering angle to the knuckles, if it changed."""
        if self.steer_rad == self._applied_steer_rad:
            return
        t = math.tan(self.steer_rad)
        lw, tw = self.wheelbase_m, self._half_track_m
        # rear-axle turn radius L / tan(delta); the inner wheel turns more (left is inner for t > 0)
        angles = (math.atan2(lw * t, lw - tw * t), math.atan2(lw * t, lw + tw * t))
        p.setJointMotorControlArray(
            self.body_id,
            self._steer_joints,
            p.POSITION_CONTROL,
            targetPositions=angles,
            forces=[STEER_MAX_TORQUE_NM] * 2,
            positionGains=[STEER_POSITION_GAIN] * 2,
            physicsClientId=self.client_id,
        )
        self._applied_steer_rad = self.steer_rad

    def step(self, dt_s: float) -> None:
        """Set steering and wheel torques for the next physics step of dt_s (before p.stepSimulation).

        At most two PyBullet calls: the steering targets (only while the angle moves) and the
        drive torques (only while driving; brake motors persist between steps).
        """
        self._advance_steer(dt_s)
        self._set_steering()
        if self.accel_demand_mps2 > 0.0:
            p.setJointMotorControlArray(
                self.body_id,
                self._wheel_joints,
                p.TORQUE_CONTROL,
                forces=self._wheel_torques_nm,
                physicsClientId=self.client_id,
            )

    def pose(self) -> tuple[float, float, float, float, float]:
        """(x, y, z of the centre of mass, roll, pitch) [m, rad]; yaw is in `state()`."""
        (x, y, z), q = p.getBasePositionAndOrientation(self.body_id, physicsClientId=self.client_id)
        roll, pitch, _ = p.getEulerFromQuaternion(q)
        return x, y, z, roll, pitch

    def state(self, t_s: float) -> EgoState:
        """Odometry at time t_s. `accel_mps2` is a low-passed finite difference of the speed between
        successive `state` calls (call once per control tick; a repeated t_s keeps the estimate)."""
        cid = self.client_id
        (x, y, _), q = p.getBasePositionAndOrientation(self.body_id, physicsClientId=cid)
        (vx, vy, _), (_, _, wz) = p.getBaseVelocity(self.body_id, physicsClientId=cid)
        yaw = _yaw(*q)
        speed = vx * math.cos(yaw) + vy * math.sin(yaw)
        if self._last_speed_t is not None:
            last_speed, last_t = self._last_speed_t
            dt = t_s - last_t
            if dt > 0.0:
                alpha = dt / (ACCEL_FILTER_TAU_S + dt)
                self._accel_est_mps2 += alpha * ((speed - last_speed) / dt - self._accel_est_mps2)
                self._last_speed_t = (speed, t_s)
        else:
            self._last_speed_t = (speed, t_s)
        return EgoState(x, y, yaw, speed, wz, self._accel_est_mps2, t_s)

"""Schemas of the `sim` config group. The values (the defaults) live in conf/sim/*.yaml only.

The CLI merges the composed YAML into these dataclasses, so an unknown key or a wrong type is an
error naming the key, and `__post_init__` rejects values out of range. Library code receives these
plain dataclasses, never a DictConfig.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def check(cond: bool, key: str, value, want: str) -> None:
    """Raise ValueError naming the key when a config value is out of range."""
    if not cond:
        raise ValueError(f"{key}={value!r} is out of range: {want}")


def positive(key: str, value: float) -> None:
    check(isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key, value, "> 0")


@dataclass
class CameraConfig:
    enabled: bool  # render camera frames (needed for video and camera perception)
    width: int  # [px]
    height: int  # [px]
    hfov_deg: float  # horizontal field of view
    mount_x_m: float  # forward of the vehicle centre
    mount_z_m: float  # above the ground
    pitch_deg: float  # positive looks down
    near_m: float
    far_m: float
    max_label_distance_m: float  # ground-truth boxes are made for actors nearer than this
    noise_std: float  # Gaussian pixel noise, in 0-255 intensity units (domain randomisation)

    def __post_init__(self):
        check(isinstance(self.width, int) and self.width >= 16, "sim.camera.width", self.width, ">= 16")
        check(
            isinstance(self.height, int) and self.height >= 16,
            "sim.camera.height",
            self.height,
            ">= 16",
        )
        check(0 < self.hfov_deg < 170, "sim.camera.hfov_deg", self.hfov_deg, "in (0, 170)")
        positive("sim.camera.near_m", self.near_m)
        check(self.far_m > self.near_m, "sim.camera.far_m", self.far_m, "> near_m")
        positive("sim.camera.max_label_distance_m", self.max_label_distance_m)
        check(self.noise_std >= 0, "sim.camera.noise_std", self.noise_std, ">= 0")


@dataclass
class VehicleConfig:
    """The ego car (NPC cars use the same size unless a scenario says otherwise)."""

    length_m: float
    width_m: float
    height_m: float
    wheelbase_m: float
    wheel_radius_m: float
    mass_kg: float
    max_steer_rad: float
    max_steer_rate_radps: float
    max_accel_mps2: float
    max_decel_mps2: float  # positive

    def __post_init__(self):
        for key in ("length_m", "width_m", "height_m", "wheelbase_m", "wheel_radius_m", "mass_kg"):
            positive(f"sim.vehicle.{key}", getattr(self, key))
        check(0 < self.max_steer_rad < 1.2, "sim.vehicle.max_steer_rad", self.max_steer_rad, "in (0, 1.2)")
        positive("sim.vehicle.max_steer_rate_radps", self.max_steer_rate_radps)
        positive("sim.vehicle.max_accel_mps2", self.max_accel_mps2)
        positive("sim.vehicle.max_decel_mps2", self.max_decel_mps2)


@dataclass
class TrafficConfig:
    """NPC vehicles: IDM along their lane and MOBIL lane changes (see decision/idm.py)."""

    accel_max_mps2: float
    decel_comfort_mps2: float
    time_headway_s: float
    min_gap_m: float
    politeness: float
    min_accel_gain_mps2: float
    max_braking_imposed_mps2: float
    lane_change_period_s: float  # an NPC decides on a lane change at most this often
    lane_change_duration_s: float  # how long the lateral move takes
    max_decel_mps2: float  # hard limit on NPC braking (positive)

    def __post_init__(self):
        for key in (
            "accel_max_mps2",
            "decel_comfort_mps2",
            "time_headway_s",
            "lane_change_period_s",
            "lane_change_duration_s",
            "max_decel_mps2",
        ):
            positive(f"sim.traffic.{key}", getattr(self, key))
        check(self.min_gap_m >= 0, "sim.traffic.min_gap_m", self.min_gap_m, ">= 0")


@dataclass
class SimConfig:
    physics_hz: float  # PyBullet step rate (physics ego)
    control_hz: float  # control rate (the controller tracks the latest plan every tick)
    decision_hz: float  # perception -> planner rate (and on every camera frame)
    camera_hz: float  # camera render rate (when the camera is enabled)
    ego_model: str  # "physics" (PyBullet multibody car) or "kinematic" (bicycle model)
    renderer: str  # "auto" (EGL plugin when it loads, else TinyRenderer), "egl" or "tiny"
    randomise: bool  # domain randomisation from the seed (colours, road shade, light, noise)
    blocked_timeout_s: float  # ego standing still this long (with nothing to wait for) = blocked
    camera: CameraConfig
    vehicle: VehicleConfig
    traffic: TrafficConfig

    def __post_init__(self):
        positive("sim.physics_hz", self.physics_hz)
        positive("sim.control_hz", self.control_hz)
        positive("sim.camera_hz", self.camera_hz)
        positive("sim.decision_hz", self.decision_hz)
        check(self.physics_hz >= self.control_hz, "sim.physics_hz", self.physics_hz, ">= control_hz")
        check(self.control_hz >= self.decision_hz, "sim.control_hz", self.control_hz, ">= decision_hz")
        check(self.control_hz >= self.camera_hz, "sim.control_hz", self.control_hz, ">= camera_hz")
        check(
            self.ego_model in ("physics", "kinematic"),
            "sim.ego_model",
            self.ego_model,
            "one of physics, kinematic",
        )
        check(
            self.renderer in ("auto", "egl", "tiny"), "sim.renderer", self.renderer, "one of auto, egl, tiny"
        )
        positive("sim.blocked_timeout_s", self.blocked_timeout_s)

"""Schemas of the `sim` config group, and the field bounds that every config schema uses.

A schema is a dataclass: OmegaConf checks each field's type when Hydra composes the config, and
`check_fields` (called in `__post_init__`) checks the range or the choices a field declares with
`bounded(...)` or `one_of(...)`. Sizes, rates and durations have an upper bound too, so that no
accepted value can exhaust memory or run for ever. The values (the defaults) live in
conf/sim/*.yaml only. Library code receives these plain dataclasses, never a DictConfig.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

import numpy as np

from perception.errors import InputError
from perception.visibility import CameraView

IDENTIFIER = re.compile(r"[A-Za-z0-9_-]+")  # names that become folder names: no "/", no ".."


class SchemaError(InputError):
    """A config value out of its declared range; the message names the key, the value and the range."""


@dataclass(frozen=True)
class Bounds:
    """What a field admits: a numeric interval, a set of choices, or a plain identifier."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low < value, not low <= value
    high_open: bool = False
    choices: tuple[str, ...] = ()
    identifier: bool = False

    def admits(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if self.identifier:
            return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.choices:
            return f"one of {', '.join(map(str, self.choices))}"
        if self.identifier:
            return "letters, digits, _ and - only"
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(value: float | None) -> str:
    """2147483647 rather than 2.14748e+09; 0.05 rather than 0.050000."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def bounded(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    default: Any = MISSING,
) -> Any:
    """A dataclass field with a numeric range (give `default` only where the schema owns the value)."""
    return field(default=default, metadata={"bounds": Bounds(low, high, low_open, high_open)})


def one_of(*choices: str, default: Any = MISSING) -> Any:
    """A dataclass field that takes one of `choices`."""
    return field(default=default, metadata={"bounds": Bounds(choices=tuple(choices))})


def identifier(default: Any = MISSING) -> Any:
    """A dataclass field holding a name that may become a folder name (letters, digits, _ and -)."""
    return field(default=default, metadata={"bounds": Bounds(identifier=True)})


def bounds_of(f) -> Bounds | None:
    return f.metadata.get("bounds")


def check_fields(obj, prefix: str) -> None:
    """Raise SchemaError naming `prefix + field` for the first field outside its declared bounds."""
    for f in fields(obj):
        bounds, value = bounds_of(f), getattr(obj, f.name)
        if bounds is not None and value is not None and not bounds.admits(value):
            raise SchemaError(out_of_range(f"{prefix}{f.name}", value, bounds))


def out_of_range(key: str, value: Any, bounds: Bounds) -> str:
    if bounds.choices:
        return f"{key}={value!r} is not one of {', '.join(map(str, bounds.choices))}"
    if bounds.identifier:
        return f"{key}={value!r} is not a plain name: {bounds}"
    return f"{key}={value!r} is out of range: {bounds}"


def check(cond: bool, key: str, value, want: str) -> None:
    """Raise SchemaError naming the key when a relation between config values does not hold."""
    if not cond:
        raise SchemaError(f"{key}={value!r} is out of range: {want}")


# The bounds. Rates and durations bound the number of ticks a run stores; sizes bound a frame.
MAX_PHYSICS_HZ = 1000.0
MAX_CONTROL_HZ = 100.0
MAX_CAMERA_WIDTH_PX, MAX_CAMERA_HEIGHT_PX = 1920, 1200
MAX_ACCEL_MPS2 = 20.0
MIN_MOUNT_Z_M = 0.3  # a jittered camera mount stays at least this high
# Dataset scenes (bulletdrive data) take their seeds from DATA_SEED_MIN up, scene i of base seed b
# DATA_SEED_MIN + b x SCENE_SEED_STRIDE + i; suites evaluate below it: no evaluation seed is ever a
# seed the detector was trained or validated on.
DATA_SEED_MIN = 1_000_000_000
SCENE_SEED_STRIDE = 100_003
MAX_EVAL_SEED = DATA_SEED_MIN - 1


@dataclass
class CameraConfig:
    """One camera: the image it makes and where it sits on the ego (`sim.camera` is the first camera
    of the rig and the defaults of the others, see RigCameraConfig)."""

    enabled: bool  # render camera frames (needed for video and camera perception)
    width: int = bounded(16, MAX_CAMERA_WIDTH_PX)  # [px]
    height: int = bounded(16, MAX_CAMERA_HEIGHT_PX)  # [px]
    hfov_deg: float = bounded(0, 170, low_open=True, high_open=True)  # horizontal field of view
    mount_x_m: float = bounded(-10, 10)  # forward of the vehicle centre
    mount_z_m: float = bounded(0, 10, low_open=True)  # above the ground
    pitch_deg: float = bounded(-90, 90)  # positive looks down
    near_m: float = bounded(0, 10, low_open=True)
    far_m: float = bounded(0, 1000, low_open=True)
    max_label_distance_m: float = bounded(0, 1000, low_open=True)  # boxes for actors nearer than this
    noise_std: float = bounded(
        0, 255
    )  # Gaussian pixel noise, in 0-255 intensity units (domain randomisation)
    name: str = identifier(default="front")  # which camera of the rig
    mount_y_m: float = bounded(-5, 5, default=0.0)  # left of the vehicle centre
    yaw_deg: float = bounded(-180, 180, default=0.0)  # where it looks, left of straight ahead

    def __post_init__(self):
        check_fields(self, "sim.camera.")
        check(
            self.far_m > self.near_m, "sim.camera.far_m", self.far_m, f"> sim.camera.near_m ({self.near_m:g})"
        )


@dataclass
class VehicleConfig:
    """The ego car (NPC cars use the same size unless a scenario says otherwise)."""

    length_m: float = bounded(0, 20, low_open=True)
    width_m: float = bounded(0, 5, low_open=True)
    height_m: float = bounded(0, 5, low_open=True)
    wheelbase_m: float = bounded(0, 15, low_open=True)
    wheel_radius_m: float = bounded(0, 2, low_open=True)
    mass_kg: float = bounded(0, 50_000, low_open=True)
    max_steer_rad: float = bounded(0, 1.2, low_open=True, high_open=True)
    max_steer_rate_radps: float = bounded(0, 10, low_open=True)
    max_accel_mps2: float = bounded(0, MAX_ACCEL_MPS2, low_open=True)
    max_decel_mps2: float = bounded(0, MAX_ACCEL_MPS2, low_open=True)  # positive

    def __post_init__(self):
        check_fields(self, "sim.vehicle.")


@dataclass
class TrafficConfig:
    """NPC vehicles: IDM along their lane and MOBIL lane changes (see decision/idm.py)."""

    accel_max_mps2: float = bounded(0, MAX_ACCEL_MPS2, low_open=True)
    decel_comfort_mps2: float = bounded(0, MAX_ACCEL_MPS2, low_open=True)
    time_headway_s: float = bounded(0, 10, low_open=True)
    min_gap_m: float = bounded(0, 50)
    delta: float = bounded(0, 10, low_open=True)  # IDM's acceleration exponent
    politeness: float = bounded(0, 1)
    min_accel_gain_mps2: float = bounded(0, MAX_ACCEL_MPS2)
    max_braking_imposed_mps2: float = bounded(0, MAX_ACCEL_MPS2, low_open=True)
    lane_change_period_s: float = bounded(0, 60, low_open=True)  # an NPC decides at most this often
    lane_change_duration_s: float = bounded(0, 30, low_open=True)  # how long the lateral move takes
    max_decel_mps2: float = bounded(0, MAX_ACCEL_MPS2, low_open=True)  # hard limit on NPC braking (positive)

    def __post_init__(self):
        check_fields(self, "sim.traffic.")


@dataclass
class RigCameraConfig:
    """One camera of the rig (`sim.rig`, conf/sim/rig/*.yaml): its name and mount; each field left
    out (null) is `sim.camera`'s. Every camera of a rig makes images of `sim.camera`'s size, so that
    all of them go through the detector in one batch."""

    name: str = identifier()
    mount_x_m: float | None = bounded(-10, 10, default=None)
    mount_y_m: float | None = bounded(-5, 5, default=None)
    mount_z_m: float | None = bounded(0, 10, low_open=True, default=None)
    yaw_deg: float | None = bounded(-180, 180, default=None)
    pitch_deg: float | None = bounded(-90, 90, default=None)
    hfov_deg: float | None = bounded(0, 170, low_open=True, high_open=True, default=None)

    def __post_init__(self):
        check_fields(self, "sim.rig[].")


@dataclass
class MountJitterConfig:
    """Domain randomisation of the rig's mounts: each camera's height, pitch, yaw and field of view
    moved by up to these (uniform, drawn from the run's seed), so that one detector learns every
    mount (`bulletdrive data`); 0: the mounts as configured."""

    z_m: float = bounded(0, 1)
    pitch_deg: float = bounded(0, 20)
    yaw_deg: float = bounded(0, 30)
    hfov_deg: float = bounded(0, 40)

    def __post_init__(self):
        check_fields(self, "sim.mount_jitter.")


@dataclass
class HearingConfig:
    """The ego's microphones: the siren of each emergency vehicle within `range_m` is heard every
    perception tick, its bearing measured with a Gaussian error of `bearing_std_deg` (a microphone
    array's direction of arrival); a siren carries farther than a camera resolves a roof beacon."""

    range_m: float = bounded(0, 2000)
    bearing_std_deg: float = bounded(0, 90)

    def __post_init__(self):
        check_fields(self, "sim.hearing.")


@dataclass
class SimConfig:
    physics_hz: float = bounded(0, MAX_PHYSICS_HZ, low_open=True)  # PyBullet step rate (physics ego)
    control_hz: float = bounded(0, MAX_CONTROL_HZ, low_open=True)  # the controller tracks the latest plan
    decision_hz: float = bounded(0, MAX_CONTROL_HZ, low_open=True)  # perception -> planner rate
    camera_hz: float = bounded(0, MAX_CONTROL_HZ, low_open=True)  # camera render rate (camera enabled)
    ego_model: str = one_of("physics", "kinematic")  # PyBullet multibody car, or bicycle model
    renderer: str = one_of("auto", "egl", "tiny")  # auto: the EGL plugin when it loads, else TinyRenderer
    randomise: bool = field()  # domain randomisation from the seed (colours, road shade, light, noise)
    blocked_timeout_s: float = bounded(0, 3600, low_open=True)  # standing still this long = blocked
    camera: CameraConfig = field()
    rig: list[RigCameraConfig] = field()  # the cameras on the ego, the first one `camera` itself
    mount_jitter: MountJitterConfig = field()
    hearing: HearingConfig = field()
    vehicle: VehicleConfig = field()
    traffic: TrafficConfig = field()

    def __post_init__(self):
        check_fields(self, "sim.")
        for key in ("decision_hz", "camera_hz"):
            value = getattr(self, key)
            check(value <= self.control_hz, f"sim.{key}", value, f"<= sim.control_hz ({self.control_hz:g})")
        check(
            self.control_hz <= self.physics_hz,
            "sim.control_hz",
            self.control_hz,
            f"<= sim.physics_hz ({self.physics_hz:g})",
        )
        names = [c.name for c in self.rig]
        check(len(names) > 0, "sim.rig", names, "at least one camera")
        check(len(set(names)) == len(names), "sim.rig", names, "cameras with different names")

    def camera_views(self, cameras: list[CameraConfig] | None = None) -> list[CameraView]:
        """What each camera of the rig (or of `cameras`, e.g. a run's, their mounts jittered) sees
        (perception/visibility.py): its mount, heading and horizontal field of view, as far as it
        renders (far_m)."""
        return [
            CameraView(c.name, c.mount_x_m, c.mount_y_m, c.yaw_deg, c.hfov_deg, c.far_m)
            for c in (self.cameras() if cameras is None else cameras)
        ]

    def cameras(self, rng: np.random.Generator | None = None) -> list[CameraConfig]:
        """The CameraConfig of each camera of the rig: `camera` with the camera's own name and mount;
        with `rng`, each mount moved by `mount_jitter` (kept within the camera's bounds)."""
        out = []
        j = self.mount_jitter
        for c in self.rig:
            mount = {f.name: getattr(c, f.name) for f in fields(c) if getattr(c, f.name) is not None}
            cam = replace(self.camera, **mount)
            if rng is not None and (j.z_m or j.pitch_deg or j.yaw_deg or j.hfov_deg):
                dz, dpitch, dyaw, dfov = rng.uniform(-1.0, 1.0, 4) * (
                    j.z_m,
                    j.pitch_deg,
                    j.yaw_deg,
                    j.hfov_deg,
                )
                cam = replace(
                    cam,
                    mount_z_m=max(cam.mount_z_m + dz, MIN_MOUNT_Z_M),
                    pitch_deg=float(np.clip(cam.pitch_deg + dpitch, -90.0, 90.0)),
                    yaw_deg=float((cam.yaw_deg + dyaw + 180.0) % 360.0 - 180.0),
                    hfov_deg=float(np.clip(cam.hfov_deg + dfov, 1.0, 169.0)),
                )
            out.append(cam)
        return out

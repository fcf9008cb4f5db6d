"""Fixtures of the world tests: a camera config and actors placed by hand."""

import numpy as np
import pytest

from decision.route import Road
from sim.config import CameraConfig
from sim.traffic.actors import Actors

SIZES = {  # length, width, height [m] of the models placed here
    "car": (4.5, 1.8, 1.5),
    "van": (5.2, 2.0, 2.2),
    "truck": (8.1, 2.4, 3.2),
    "bus": (11.7, 2.5, 3.1),
    "ambulance": (5.6, 2.1, 2.3),
    "pedestrian": (0.5, 0.5, 1.75),
    "cone": (0.4, 0.4, 0.7),
    "barrier": (3.0, 0.4, 1.0),
}
CLASSES = {"car": 0, "van": 0, "truck": 0, "bus": 0, "ambulance": 0, "pedestrian": 1, "cone": 2, "barrier": 2}


@pytest.fixture(scope="session")
def model_sizes() -> dict[str, tuple[float, float, float]]:
    """Length, width, height [m] of the actor models that the world tests place."""
    return dict(SIZES)


@pytest.fixture(scope="session")
def camera_config():
    """camera_config(**changes) -> a 320x192 front camera (the shipped detector's frame size),
    without pixel noise unless `noise_std` is changed."""

    def make(**changes) -> CameraConfig:
        values = dict(
            enabled=True,
            width=320,
            height=192,
            hfov_deg=75.0,
            mount_x_m=0.8,
            mount_z_m=1.4,
            pitch_deg=4.0,
            near_m=0.2,
            far_m=150.0,
            max_label_distance_m=80.0,
            noise_std=0.0,
        )
        return CameraConfig(**{**values, **changes})

    return make


@pytest.fixture(scope="session")
def make_actors():
    """make_actors(rows, road=None, yaw_rad=0.0) -> Actors standing still, ids 100, 101, ...: rows of
    (model, x, y), all heading `yaw_rad`; or with `road`, rows of (model, s, d) on it, heading along it."""

    def make(rows: list[tuple[str, float, float]], road: Road | None = None, yaw_rad: float = 0.0) -> Actors:
        n = len(rows)
        a = np.array([r[1] for r in rows], dtype=float)
        b = np.array([r[2] for r in rows], dtype=float)
        x, y, yaw = (a, b, np.full(n, yaw_rad)) if road is None else road.to_world(a, b)
        return Actors(
            ids=np.arange(100, 100 + n),
            class_ids=np.array([CLASSES[r[0]] for r in rows]),
            models=[r[0] for r in rows],
            size_m=np.array([SIZES[r[0]] for r in rows], dtype=float).reshape(n, 3),
            xy_m=np.stack([x, y], axis=1).reshape(n, 2),
            yaw_rad=np.asarray(yaw, dtype=float).reshape(n),
            speed_mps=np.zeros(n),
            v_mps=np.zeros((n, 2)),
            accel_mps2=np.zeros(n),
            rgba=np.tile([0.7, 0.1, 0.1, 1.0], (n, 1)),
        )

    return make

"""State of every actor other than the ego, as arrays (one row per actor).

The traffic model, the world (PyBullet bodies), the sensors and the metrics all read and write the
same `Actors` object, so no per-actor Python objects are kept in the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.types import EgoState, WorldModel

EMERGENCY_MODELS = ("ambulance",)  # models with flashing beacons: other traffic must let them by


@dataclass
class Actors:
    """N actors. Mutable: the traffic model updates poses in place every tick.

    ids: (N,) int, unique, stable over an episode (ego is not included).
    class_ids: (N,) int, perception.types.VEHICLE / PEDESTRIAN / OBSTACLE.
    models: list of N str: "car", "pedestrian", "cone", "barrier", ... (what body to build).
    size_m: (N, 3) length, width, height. xy_m: (N, 2) centre on the ground. yaw_rad: (N,).
    speed_mps: (N,) signed speed along the heading. v_mps: (N, 2) world-frame velocity.
    accel_mps2: (N,). rgba: (N, 4) colour in [0, 1].
    """

    ids: np.ndarray
    class_ids: np.ndarray
    models: list[str]
    size_m: np.ndarray
    xy_m: np.ndarray
    yaw_rad: np.ndarray
    speed_mps: np.ndarray
    v_mps: np.ndarray
    accel_mps2: np.ndarray
    rgba: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def emergency(self) -> np.ndarray:
        """(N,) bool: the emergency vehicles (a model of EMERGENCY_MODELS)."""
        return np.array([m in EMERGENCY_MODELS for m in self.models], bool).reshape(len(self.models))

    @staticmethod
    def empty() -> Actors:
        return Actors(
            ids=np.zeros(0, np.int64),
            class_ids=np.zeros(0, np.int64),
            models=[],
            size_m=np.zeros((0, 3)),
            xy_m=np.zeros((0, 2)),
            yaw_rad=np.zeros(0),
            speed_mps=np.zeros(0),
            v_mps=np.zeros((0, 2)),
            accel_mps2=np.zeros(0),
            rgba=np.zeros((0, 4)),
        )

    def truth(self, ego: EgoState, t_s: float) -> WorldModel:
        """The exact world, as perception's message type (what GroundTruthPerceiver starts from)."""
        return WorldModel(
            ego=ego,
            t_s=t_s,
            ids=self.ids.copy(),
            class_ids=self.class_ids.copy(),
            xy_m=self.xy_m.copy(),
            v_mps=self.v_mps.copy(),
            yaw_rad=self.yaw_rad.copy(),
            size_m=self.size_m[:, :2].copy(),
            scores=np.ones(len(self.ids)),
            emergency=self.emergency,
        )

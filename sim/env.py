"""Gymnasium environment `bulletdrive/Drive-v0`: drive a scenario with your own policy.

    env = gymnasium.make("bulletdrive/Drive-v0", scenario="cut_in", overrides=["sim.camera.width=160"])

Observation (Dict):
- "cameras": (C, H, W, 3) uint8, every camera of the rig (sim.rig, surround6 by default; sim/rig=front
  for one), in the rig's order, refreshed at sim.camera_hz and held in between. A
  gymnasium.vector env stacks them to (E, C, H, W, 3): `obs["cameras"].reshape(-1, H, W, 3)` is
  all cameras of all envs, one batch for the detector (Detector.detect);
- "camera": (H, W, 3) uint8, the first (front) camera's frame, the same as cameras[0];
- "ego": (7,) float32: speed [m/s], yaw rate [rad/s], longitudinal accel [m/s^2], lateral offset
  from the route lane centre [m], heading error to the road [rad], route completion [0-1],
  distance to the nearest actor ahead in the ego's corridor [m] (capped at 100; ground truth);
  each clipped to the bounds EGO_LOW / EGO_HIGH.
Action (Box [-1, 1]^2): [steer, accel]: steer x sim.vehicle.max_steer_rad; accel x max_accel_mps2
  when positive, x max_decel_mps2 when negative.
Reward per control tick: progress along the route [m] / 10, minus 10 for each collision, minus 2
  for leaving the road, minus 0.1 x |accel command| / max_decel (a small comfort term).
terminated: a collision, or the route completed. truncated: scenario timeout or blocked.
Same seed in reset(seed=...) gives the same episode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from control.command import ControlCommand
from decision.geometry import wrap_angle
from sim.app import config as C
from sim.metrics.events import COLLISION_KINDS, EventKind
from sim.simulation import RandomStreams, Simulation

MAX_GAP_M = 100.0
# Bounds of the "ego" observation (values are clipped into them).
EGO_LOW = np.array([0.0, -5.0, -20.0, -20.0, -np.pi, 0.0, 0.0], np.float32)
EGO_HIGH = np.array([80.0, 5.0, 20.0, 20.0, np.pi, 1.0, MAX_GAP_M], np.float32)


class DriveEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, scenario: str = "follow_lead", overrides: list[str] | tuple = (), render_mode=None):
        cfg, _ = C.load("drive", [f"scenario={scenario}", *overrides])
        self._cfg = cfg
        self.sim_cfg = C.sim_config(cfg)
        if not self.sim_cfg.camera.enabled:
            raise C.ConfigError("Drive-v0 observes the camera: sim.camera.enabled must be true")
        self.render_mode = render_mode
        cam, v = self.sim_cfg.camera, self.sim_cfg.vehicle
        n = len(self.sim_cfg.rig)
        self.observation_space = spaces.Dict(
            {
                "cameras": spaces.Box(0, 255, (n, cam.height, cam.width, 3), np.uint8),
                "camera": spaces.Box(0, 255, (cam.height, cam.width, 3), np.uint8),
                "ego": spaces.Box(EGO_LOW, EGO_HIGH, (7,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._v = v
        self._sim: Simulation | None = None
        self._images = np.zeros((n, cam.height, cam.width, 3), np.uint8)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        if self._sim is not None:
            self._sim.close()
        spec = C.scenario_spec(self._cfg, RandomStreams.from_seed(episode_seed).scenario)
        self._sim = Simulation(self.sim_cfg, spec, episode_seed, camera=True)
        self._images = self._rig_images()
        return self._observation(), {"scenario": spec.name, "seed": episode_seed}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        a = np.clip(a, -1.0, 1.0)
        v = self._v
        accel = a[1] * (v.max_accel_mps2 if a[1] > 0 else v.max_decel_mps2)
        sim = self._sim
        s_before = sim.ego_s
        events = sim.step(ControlCommand(float(a[0] * v.max_steer_rad), float(accel)))
        if sim.camera_due():
            self._images = self._rig_images()
        kinds = [e.kind for e in events]
        reward = (sim.ego_s - s_before) / 10.0
        reward -= 10.0 * sum(k in COLLISION_KINDS for k in kinds) + 2.0 * kinds.count(EventKind.OFF_ROAD)
        reward -= 0.1 * abs(accel) / v.max_decel_mps2
        terminated = any(k in COLLISION_KINDS or k == EventKind.ROUTE_COMPLETED for k in kinds)
        truncated = not terminated and any(k in (EventKind.TIMEOUT, EventKind.BLOCKED) for k in kinds)
        info = {"events": [e.to_dict() for e in events], "t_s": sim.t_s}
        return self._observation(), float(reward), terminated, truncated, info

    def render(self):
        return self._images[0].copy() if self.render_mode == "rgb_array" else None

    def close(self):
        if self._sim is not None:
            self._sim.close()
            self._sim = None

    # ------------------------------------------------------------------ helpers
    def _rig_images(self) -> np.ndarray:
        return np.stack([frame.rgb for frame in self._sim.render_rig()])

    def _observation(self) -> dict:
        sim = self._sim
        e, road, route = sim.ego_state, sim.spec.road, sim.spec.route
        _, _, road_yaw = road.pose(sim.ego_s)
        heading_err = wrap_angle(e.yaw_rad - float(road_yaw))
        lateral = sim.ego_d - float(road.lane_offset_m(route.lane))
        ahead = (sim.actor_s > sim.ego_s) & (np.abs(sim.actor_d - sim.ego_d) < road.lane_width_m / 2 + 1.0)
        gap = float(np.min(sim.actor_s[ahead] - sim.ego_s, initial=MAX_GAP_M))
        ego = np.array(
            [
                e.speed_mps,
                e.yaw_rate_radps,
                e.accel_mps2,
                lateral,
                heading_err,
                route.completion(sim.ego_s),
                min(gap, MAX_GAP_M),
            ],
            dtype=np.float32,
        )
        images = self._images.copy()
        return {"cameras": images, "camera": images[0], "ego": np.clip(ego, EGO_LOW, EGO_HIGH)}

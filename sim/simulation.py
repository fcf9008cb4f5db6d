"""One scenario in a PyBullet world: ego vehicle, traffic, sensors and criteria, stepped per tick.

`Simulation` knows nothing of perception, planning or control beyond their message types: the
closed-loop runner (sim/loop.py) and the Gymnasium env (sim/env.py) both drive it with a
`ControlCommand` per control tick.
"""

from __future__ import annotations

import math

import numpy as np

from control.command import ControlCommand
from perception.types import CameraFrame, WorldModel
from sim.config import SimConfig
from sim.metrics.criteria import TTC_PERIOD_S, Criteria, Event
from sim.scenario.spec import ScenarioSpec
from sim.traffic.traffic import Traffic
from sim.world.camera import MIN_BOX_HEIGHT_PX, Camera, ground_truth_boxes
from sim.world.ego_frenet import EgoFrenet
from sim.world.vehicle import KinematicCar, PhysicsCar
from sim.world.world import PhysicsWorld, World

# Per-tick states recorded for metrics, plots and replays (all (T,) float arrays).
TICK_KEYS = (
    "t_s",
    "x_m",
    "y_m",
    "yaw_rad",
    "speed_mps",
    "accel_mps2",
    "yaw_rate_radps",
    "steer_rad",
    "accel_cmd_mps2",
    "s_m",
    "d_m",
    "ttc_s",
    "speed_limit_mps",
)


def seeds(seed: int, n: int = 6) -> list[np.random.Generator]:
    """Independent generators for the parts of a run: [scenario, world, traffic, perception,
    camera, spare]. Each part draws from its own stream, so adding a draw in one part does not
    change what the others see."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


class Simulation:
    def __init__(self, cfg: SimConfig, spec: ScenarioSpec, seed: int, camera: bool):
        self.cfg, self.spec = cfg, spec
        _, rng_world, rng_traffic, _, self.rng_camera, _ = seeds(seed)
        road, route = spec.road, spec.route
        self.dt_s = 1.0 / cfg.control_hz
        self.substeps = max(1, round(cfg.physics_hz / cfg.control_hz))
        self.camera_every = max(1, round(cfg.control_hz / cfg.camera_hz))
        self.decide_every = max(1, round(cfg.control_hz / cfg.decision_hz))

        self.world = World(road, cfg.physics_hz, cfg.renderer, rng_world, cfg.randomise)
        v = cfg.vehicle
        rgba = self.world.random_vehicle_rgba if cfg.randomise else None
        self.traffic = Traffic(spec, cfg.traffic, (v.length_m, v.width_m, v.height_m), rng_traffic, rgba)
        self.actors = self.traffic.actors
        self.world.add_actors(self.actors)

        x, y, yaw = road.to_world(route.start_s_m, float(road.lane_offset_m(route.lane)))
        x, y, yaw = float(x), float(y), float(yaw)
        self.physics: PhysicsWorld | None = None
        if cfg.ego_model == "physics":
            self.physics = PhysicsWorld(cfg.physics_hz)
            self.ego = PhysicsCar(v, x, y, yaw, spec.ego_speed_mps, client_id=self.physics.client)
        else:
            self.ego = KinematicCar(v, x, y, yaw, spec.ego_speed_mps)
        self.camera = Camera(cfg.camera, self.world) if camera else None
        self.criteria = Criteria(
            route, v.length_m, v.width_m, cfg.blocked_timeout_s, spec.duration_s, ttc_period_s=TTC_PERIOD_S
        )

        self.t_s = 0.0
        self.tick = 0
        self.ego_state = self.ego.state(0.0)
        self._ego_frenet = EgoFrenet(road)
        self.ego_s, self.ego_d = self._ego_frenet.locate(x, y, route.start_s_m)
        self.actor_s, self.actor_d = self.traffic.frenet()
        self.events: list[Event] = []
        n_max = int(math.ceil(spec.duration_s * cfg.control_hz)) + 2
        self._tick_rows = np.zeros((n_max, len(TICK_KEYS)))  # one row per tick, columns TICK_KEYS
        self._speed_limit_mps = float(road.speed_limit_mps)
        self._trails = np.zeros((n_max, len(self.actors), 2))
        self._yaw_trails = np.zeros((n_max, len(self.actors)))
        self._last_cmd = ControlCommand(0.0, 0.0)
        self._record()

    # ------------------------------------------------------------------ sensing
    @property
    def done(self) -> bool:
        return self.criteria.done

    def camera_due(self) -> bool:
        return self.camera is not None and self.tick % self.camera_every == 0

    def decision_due(self) -> bool:
        return self.tick % self.decide_every == 0

    def render(self, with_segmentation: bool = False) -> CameraFrame:
        self.world.sync_actors(self.actors)
        e = self.ego_state
        return self.camera.render(
            e.x_m, e.y_m, e.yaw_rad, self.t_s, self.rng_camera, with_segmentation=with_segmentation
        )

    def boxes(self, frame: CameraFrame, min_box_height_px: float = MIN_BOX_HEIGHT_PX):
        """Ground-truth 2D boxes of the actors seen in `frame`."""
        return ground_truth_boxes(frame, self.actors, self.cfg.camera.max_label_distance_m, min_box_height_px)

    def truth(self) -> WorldModel:
        return self.actors.truth(self.ego_state, self.t_s)

    # ------------------------------------------------------------------ stepping
    def step(self, cmd: ControlCommand) -> list[Event]:
        """Apply `cmd` and advance the world by one control period. Returns the new events."""
        if not (math.isfinite(cmd.steer_rad) and math.isfinite(cmd.accel_mps2)):
            raise ValueError(f"control command is not finite: {cmd}")
        self.ego.apply(cmd)
        self._last_cmd = cmd
        self.traffic.step(
            self.dt_s, self.t_s, self.ego_s, self.ego_d, self.ego_state.speed_mps, self.ego.length_m
        )
        if self.ego.is_kinematic:
            self.ego.step(self.dt_s)
        else:  # the actor bodies are visual only: render() moves them when a frame is drawn
            self.ego.advance(self.dt_s / self.substeps, self.substeps, self.physics.step)
        self.t_s = round((self.tick + 1) * self.dt_s, 9)
        self.tick += 1
        self.ego_state = e = self.ego.state(self.t_s)
        self.ego_s, self.ego_d = self._ego_frenet.locate(e.x_m, e.y_m, self.ego_s)
        self.actor_s, self.actor_d = self.traffic.frenet()
        new = self.criteria.update(
            self.t_s, self.ego_state, self.ego_s, self.ego_d, self.actors, self.actor_s, self.actor_d
        )
        self.events.extend(new)
        self._record()
        return new

    def _record(self) -> None:
        """One row of per-tick states (in TICK_KEYS order) and the actor positions."""
        e, cmd = self.ego_state, self._last_cmd
        self._tick_rows[self.tick] = (
            self.t_s, e.x_m, e.y_m, e.yaw_rad, e.speed_mps, e.accel_mps2, e.yaw_rate_radps,
            cmd.steer_rad, cmd.accel_mps2, self.ego_s, self.ego_d, self.criteria.ttc_s, self._speed_limit_mps,
        )  # fmt: skip
        self._trails[self.tick] = self.actors.xy_m
        self._yaw_trails[self.tick] = self.actors.yaw_rad

    def ticks(self) -> dict[str, np.ndarray]:
        """Recorded per-tick states so far, each (T,)."""
        rows = self._tick_rows[: self.tick + 1]
        return {key: rows[:, j].copy() for j, key in enumerate(TICK_KEYS)}

    def actor_trails(self) -> np.ndarray:
        """(T, N, 2) actor positions per tick."""
        return self._trails[: self.tick + 1].copy()

    def actor_yaw_trails(self) -> np.ndarray:
        """(T, N) actor headings per tick."""
        return self._yaw_trails[: self.tick + 1].copy()

    def close(self) -> None:
        self.world.close()
        if self.physics is not None:
            self.physics.close()

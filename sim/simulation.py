"""One scenario in a PyBullet world, stepped one control tick at a time: read this file first.

`Simulation` puts together the parts of a run, each in its own subpackage of `sim`:
- `sim.world`: the PyBullet world (ground, actor bodies, looks), the ego car (`vehicle`), the
  rig's cameras and their ground-truth boxes (`camera`);
- `sim.traffic`: the other actors: NPC traffic (IDM and MOBIL) and scripted behaviours;
- `sim.scenario`: the `ScenarioSpec` (road, route, actors, duration) that a run drives;
- `sim.metrics`: the criteria that turn each tick into events (collisions, off-road, ...) and
  the scores computed from them.
Around it: `sim.loop.run_closed_loop` drives it with perception, decision and control (the closed
loop), `sim.env` wraps it as a Gymnasium env, `sim.record` writes and replays its log, and
`sim.app` is the command line.

`Simulation` knows nothing of perception, planning or control beyond their message types: its
driver hands it one `ControlCommand` per control tick (`step`) and reads the ego state, the camera
frames (`render`, `render_rig`) and the ground truth (`truth`, `boxes`) back.

Randomness: every random draw of a run comes from its seed, through `RandomStreams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from control.command import ControlCommand
from decision.geometry import wrap_angle
from perception.lights import MappedLight
from perception.types import VEHICLE, CameraFrame, WorldModel
from sim.config import SimConfig
from sim.metrics.criteria import TTC_PERIOD_S, Criteria, Event
from sim.scenario.spec import ScenarioSpec
from sim.traffic.town_traffic import TownTraffic
from sim.traffic.traffic import Traffic
from sim.world.camera import MIN_BOX_HEIGHT_PX, Camera, GTBox, ground_truth_boxes
from sim.world.ego_frenet import EgoFrenet
from sim.world.props import LightBox, Props, as_light_poses, light_box_corners, light_boxes
from sim.world.town_paint import roadside, town_paint
from sim.world.vehicle import EgoVehicle, KinematicCar, PhysicsCar
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


@dataclass(frozen=True, slots=True)
class RandomStreams:
    """One independent random generator per part of a run, all from the run's seed.

    Each part draws from its own stream, so a new draw in one part does not change what the others
    see. The streams are the children of `np.random.SeedSequence(seed)` in field order: a new part
    goes last, so that the streams of the existing parts stay what they are.
    """

    scenario: np.random.Generator  # the scenario's parameter ranges (`ScenarioSpec`)
    world: np.random.Generator  # the world's looks: colours, light, sky, ground pattern
    traffic: np.random.Generator  # the NPCs: random traffic's places and speeds, colours, decision phases
    perception: np.random.Generator  # the perceiver's noise and misses
    camera: np.random.Generator  # the camera's pixel noise
    mount: np.random.Generator  # the cameras' mounts (sim.mount_jitter)
    hearing: np.random.Generator  # the microphones' bearing errors (sim.hearing)

    @classmethod
    def from_seed(cls, seed: int) -> RandomStreams:
        children = np.random.SeedSequence(seed).spawn(len(fields(cls)))
        return cls(*(np.random.default_rng(child) for child in children))


class Simulation:
    """One run of `spec`: the world, the ego car, the traffic, the camera and the criteria.

    Rates (from `cfg`): `step` advances one control period `dt_s`, in `substeps` physics steps for
    the physics ego; `camera_due()` and `decision_due()` say at which ticks the camera renders and
    perception and planning run. `camera`: whether to build the camera (rendering costs time, so
    runs that need no frames go without). The same `cfg`, `spec` and `seed` give the same run.
    """

    def __init__(self, cfg: SimConfig, spec: ScenarioSpec, seed: int, camera: bool):
        self.cfg, self.spec = cfg, spec
        streams = RandomStreams.from_seed(seed)
        self._camera_rng = streams.camera
        self._hearing_rng = streams.hearing
        self.dt_s = 1.0 / cfg.control_hz  # one control tick [s]
        self.substeps = max(1, round(cfg.physics_hz / cfg.control_hz))  # physics steps per tick
        self.camera_every = max(1, round(cfg.control_hz / cfg.camera_hz))  # ticks per camera frame
        self.decide_every = max(1, round(cfg.control_hz / cfg.decision_hz))  # ticks per decision

        self.town = spec.town.town if spec.town is not None else None  # a town scenario's map
        paint = None if self.town is None else town_paint(self.town)
        self.world = World(spec.road, cfg.physics_hz, cfg.renderer, streams.world, cfg.randomise, paint=paint)
        v = cfg.vehicle
        size = (v.length_m, v.width_m, v.height_m)
        rgba = self.world.random_vehicle_rgba if cfg.randomise else None
        if self.town is None:
            self.traffic = Traffic(spec, cfg.traffic, size, streams.traffic, rgba)
        else:
            self.traffic = TownTraffic(spec.town, spec.route, cfg.traffic, size, streams.traffic, rgba)
            self._add_town_props(streams.world)
        self.actors = self.traffic.actors
        self._siren_rows = np.flatnonzero(self.actors.emergency)  # the actors whose sirens are heard
        self.world.add_actors(self.actors)
        x, y, yaw = self._ego_start_pose()
        self.physics: PhysicsWorld | None = None  # the physics ego's own client (see PhysicsWorld)
        self.ego = self._make_ego(x, y, yaw)
        # The rig's cameras (sim.rig), the first one `camera`.
        self.cameras = [Camera(c, self.world) for c in cfg.cameras(streams.mount)] if camera else []
        self.camera = self.cameras[0] if self.cameras else None
        self.criteria = Criteria(
            spec.route,
            v.length_m,
            v.width_m,
            cfg.blocked_timeout_s if spec.blocked_timeout_s is None else spec.blocked_timeout_s,
            spec.duration_s,
            ttc_period_s=TTC_PERIOD_S,
            signal_state=None if self.town is None else self.town.signal_state,
            traffic=self._background_traffic(),
            emergency=self.actors.emergency,
        )

        self.t_s = 0.0
        self.tick = 0
        self.ego_state = self.ego.state(0.0)  # odometry at this tick
        self._ego_frenet = EgoFrenet(spec.road)
        # Frenet positions on the road [m]: s along the reference line, d to its left.
        self.ego_s, self.ego_d = self._ego_frenet.locate(x, y, spec.route.start_s_m)
        self.actor_s, self.actor_d = self.traffic.frenet()  # (N,) each
        self.events: list[Event] = []  # every event so far, in time order
        self._start_recording()

    def _background_traffic(self) -> np.ndarray:
        """(N,) whether each actor is random traffic: the vehicles whose speed the minimum-speed test
        compares the ego's with (CARLA's "background" vehicles, not the scenario's own actors)."""
        scripted = len(self.spec.town.actors) if self.spec.town is not None else len(self.spec.actors)
        return (np.arange(len(self.actors)) >= scripted) & (self.actors.class_ids == VEHICLE)

    def _add_town_props(self, rng: np.random.Generator) -> None:
        """The town's lights, stop signs, buildings and trees (drawn from the world's stream)."""
        buildings, trees = roadside(self.town, rng)
        self._light_poles = tuple(self.town.light_poles())
        props = Props(self._light_poles, tuple(self.town.stop_signs()), tuple(buildings), tuple(trees))
        self.world.add_props(props, rng)

    def _ego_start_pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) [m, rad] of the route's start: the centre of its lane (or the scenario's
        `ego_d_m`), heading along the road."""
        road, route, d = self.spec.road, self.spec.route, self.spec.ego_d_m
        x, y, yaw = road.to_world(route.start_s_m, float(road.lane_offset_m(route.lane)) if d is None else d)
        return float(x), float(y), float(yaw)

    def _make_ego(self, x: float, y: float, yaw: float) -> EgoVehicle:
        """The ego car of `cfg.ego_model` at pose (x, y, yaw) [m, rad], at the scenario's speed."""
        cfg = self.cfg
        if cfg.ego_model == "physics":
            self.physics = PhysicsWorld(cfg.physics_hz)
            return PhysicsCar(cfg.vehicle, x, y, yaw, self.spec.ego_speed_mps, client_id=self.physics.client)
        return KinematicCar(cfg.vehicle, x, y, yaw, self.spec.ego_speed_mps)

    def _start_recording(self) -> None:
        """Room for every tick the run can last, and the first row (tick 0)."""
        n_max = int(math.ceil(self.spec.duration_s * self.cfg.control_hz)) + 2
        self._tick_rows = np.zeros((n_max, len(TICK_KEYS)))  # one row per tick, columns TICK_KEYS
        self._trails = np.zeros((n_max, len(self.actors), 2))
        self._yaw_trails = np.zeros((n_max, len(self.actors)))
        self._last_cmd = ControlCommand(0.0, 0.0)
        self._record()

    # ------------------------------------------------------------------ sensing
    @property
    def done(self) -> bool:
        """Whether the criteria have ended the run (collision, route completed, timeout, blocked)."""
        return self.criteria.done

    def camera_due(self) -> bool:
        """Whether the camera renders at this tick (every `camera_every` ticks, if there is one)."""
        return self.camera is not None and self.tick % self.camera_every == 0

    def decision_due(self) -> bool:
        """Whether perception and the planner run at this tick (every `decide_every` ticks)."""
        return self.tick % self.decide_every == 0

    def render(self, with_segmentation: bool = False) -> CameraFrame:
        """The first camera's frame at this tick, from the ego's pose (the actor bodies are moved first).

        With `with_segmentation`, `camera.last_actor_mask` gives the actor index of every pixel."""
        return self._render(self.cameras[:1], with_segmentation)[0]

    def render_rig(self, with_segmentation: bool = False) -> tuple[CameraFrame, ...]:
        """Every camera's frame at this tick, in the rig's order (each camera's `last_actor_mask`
        with `with_segmentation`)."""
        return self._render(self.cameras, with_segmentation)

    def _render(self, cameras: list[Camera], with_segmentation: bool) -> tuple[CameraFrame, ...]:
        self.world.sync_actors(self.actors)
        if self.town is not None:
            self.world.set_light_states(dict(self.town.signal_states(self.t_s)))
        e = self.ego_state
        return tuple(
            cam.render(
                e.x_m, e.y_m, e.yaw_rad, self.t_s, self._camera_rng, with_segmentation=with_segmentation
            )
            for cam in cameras
        )

    def sirens(self) -> tuple[float, ...]:
        """What the ego's microphones hear now: the bearing [rad] (in the ego's frame, anticlockwise
        from its heading) of each emergency vehicle within `sim.hearing.range_m`, with the array's
        Gaussian error (`bearing_std_deg`)."""
        rows = self._siren_rows
        if rows.size == 0:
            return ()
        e, h = self.ego_state, self.cfg.hearing
        dx, dy = self.actors.xy_m[rows, 0] - e.x_m, self.actors.xy_m[rows, 1] - e.y_m
        near = np.hypot(dx, dy) <= h.range_m
        if not near.any():
            return ()
        error = self._hearing_rng.normal(0.0, math.radians(h.bearing_std_deg), int(near.sum()))
        return tuple(wrap_angle(np.arctan2(dy[near], dx[near]) - e.yaw_rad + error).tolist())

    def boxes(self, frame: CameraFrame, min_box_height_px: float = MIN_BOX_HEIGHT_PX) -> list[GTBox]:
        """Ground-truth 2D boxes of the actors seen in `frame`."""
        return ground_truth_boxes(frame, self.actors, self.cfg.camera.max_label_distance_m, min_box_height_px)

    def light_boxes(self, frame: CameraFrame, min_box_height_px: float = MIN_BOX_HEIGHT_PX) -> list[LightBox]:
        """Ground-truth 2D boxes of the traffic lights that face the camera in `frame`, with the
        states their lamps show (none on one road)."""
        if self.town is None:
            return []
        states = dict(self.town.signal_states(frame.t_s))
        limit = self.cfg.camera.max_label_distance_m
        return light_boxes(frame, self._light_poles, states, limit, min_box_height_px)

    def mapped_lights(self) -> tuple[MappedLight, ...]:
        """The town's traffic lights as the map gives them to perception (none on one road)."""
        poles = as_light_poses(self._light_poles) if self.town is not None else []
        corners = light_box_corners(poles)
        return tuple(MappedLight(p.signal_id, c, p.yaw_rad) for p, c in zip(poles, corners, strict=True))

    def actors_on_road(self) -> np.ndarray:
        """(N,) whether each actor's centre is on the carriageway: inside the road's edge lines, or in
        a town on a street or in a junction box."""
        if self.town is None:
            return self.traffic.lane_of_actors() >= 0
        return self.town.drivable(self.actors.xy_m)

    def truth(self) -> WorldModel:
        """The actors (and in a town the signals) as they are, as a perceiver would report them (for
        ground-truth perception)."""
        world = self.actors.truth(self.ego_state, self.t_s)
        if self.town is None:
            return world
        return replace(world, signals=self.town.signal_states(self.t_s))

    # ------------------------------------------------------------------ stepping
    def step(self, cmd: ControlCommand) -> list[Event]:
        """Apply `cmd` and advance the world by one control period. Returns the new events."""
        if not (math.isfinite(cmd.steer_rad) and math.isfinite(cmd.accel_mps2)):
            raise ValueError(f"control command is not finite: {cmd}")
        self.ego.apply(cmd)
        self._last_cmd = cmd
        e = self.ego_state
        if self.town is None:
            self.traffic.step(self.dt_s, self.t_s, self.ego_s, self.ego_d, e.speed_mps, self.ego.length_m)
        else:
            v = self.cfg.vehicle
            self.traffic.step(
                self.dt_s, self.t_s, (e.x_m, e.y_m), e.yaw_rad, e.speed_mps, v.length_m, v.width_m
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
            cmd.steer_rad, cmd.accel_mps2, self.ego_s, self.ego_d, self.criteria.ttc_s,
            self.spec.road.speed_limit_at(self.ego_s),
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

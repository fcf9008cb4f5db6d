"""The PyBullet world: a ground plane, one body per actor, and the looks of the ground and road.

One PyBullet DIRECT client per `World` (every call passes `physicsClientId`), so several worlds can
live in one process (gymnasium vector envs). Which renderer draws its camera images (TinyRenderer
or the EGL plugin) is chosen when the client opens: see `sim.world.renderer`.

The ground is a collision plane (the physics car drives on it) with nothing visible: PyBullet
renders only the actors. The ground and the road built from the planner's `Road` are drawn by the
camera's deferred ground shader from `ground_texture`, a top-down picture of the map (see
`sim.world.ground`); drawing them as meshes made every frame 3-10x slower. (The plane carries an
invisible speck of a visual shape far below the ground: a body whose visual PyBullet derives from
a plane collision shape crashes the EGL plugin and is drawn by TinyRenderer.)

Looks: colours of the ground, road and vehicles, the sky and the light are fixed, or drawn from
the world's random stream with `randomise` (domain randomisation).

Actor bodies are static multibodies with one link per colour (`sim.world.actor_shapes`: EGL
ignores per-shape colours, so a car is a body base plus tinted glass, tyre and lamp links);
segmentation masks give `body + ((link + 1) << 24)`.

A town: `paint` (`sim.world.town_ground.MapPaint`) draws the ground from the town's polygons
instead of the road's, and `add_props` adds its traffic lights, stop signs, buildings and trees
(`sim.world.props`) as a few static bodies; `set_light_states` lights the lamps.
"""

from __future__ import annotations

import numpy as np
import pybullet as p

from decision.route import Road
from sim.traffic.actors import Actors
from sim.world.actor_shapes import ACTOR_COLOUR, PART_RGBA, Part, actor_parts
from sim.world.bodies import static_body, visual_shape
from sim.world.ground import GroundTexture, build_ground_texture
from sim.world.props import Props, TrafficLights, build_static_props
from sim.world.renderer import c_stdout_silenced, egl_plugin_path, gpu_device_present, open_client
from sim.world.town_ground import KERB_RGB, SIDEWALK_RGB, YELLOW_RGB, MapPaint, build_town_ground_texture

GRAVITY_MPS2 = 9.81
GROUND_FRICTION = 1.0  # lateral friction of the ground; Bullet multiplies it by the tyres' (grip)
GROUND_SPECK_DEPTH_M = 1.0e4  # the ground's invisible visual shape sits this far below it [m]
GROUND_SPECK_HALF_SIZE_M = 0.01  # half size of that shape [m]
GROUND_PATTERN_SEED = 0  # seed of the ground's brightness pattern when `randomise` is off
# Colours (RGBA in [0, 1]) and light, fixed values used when `randomise` is off.
ASPHALT_GREY = 0.33
ROAD_BLUE_TINT = 1.03  # the asphalt's blue channel is its grey times this (faintly blue)
GROUND_RGBA = (0.33, 0.45, 0.24, 1.0)  # grass
LINE_RGBA = (0.95, 0.95, 0.95, 1.0)
SKY_RGB = ((0.8, 0.86, 0.92), (0.42, 0.6, 0.86))  # (horizon, zenith), clear
LIGHT_DIRECTION = (0.5, 0.3, 1.0)  # towards the light (PyBullet getCameraImage lightDirection)
LIGHT_AMBIENT = 0.6
LIGHT_DIFFUSE = 0.4
LIGHT_SPECULAR = 0.05
DEFAULT_VEHICLE_RGBA = (0.15, 0.3, 0.65, 1.0)
# Domain randomisation ranges.
ASPHALT_GREY_RANGE = (0.18, 0.5)
GROUND_RGBA_CHOICES = ((0.33, 0.45, 0.24), (0.45, 0.5, 0.28), (0.5, 0.42, 0.3), (0.38, 0.4, 0.36))
GROUND_JITTER = 0.05
SKY_RGB_CHOICES = (  # (horizon, zenith): clear, hazy, overcast
    SKY_RGB,
    ((0.86, 0.87, 0.88), (0.6, 0.7, 0.84)),
    ((0.72, 0.73, 0.75), (0.58, 0.6, 0.64)),
)
SKY_JITTER = 0.04
LIGHT_ELEVATION_DEG_RANGE = (25.0, 80.0)
LIGHT_AMBIENT_RANGE = (0.45, 0.75)
VEHICLE_PALETTE = (  # common car colours
    (0.92, 0.92, 0.92),
    (0.08, 0.08, 0.09),
    (0.55, 0.56, 0.58),
    (0.75, 0.76, 0.78),
    (0.65, 0.08, 0.07),
    (0.1, 0.2, 0.55),
    (0.15, 0.35, 0.2),
    (0.85, 0.65, 0.1),
    (0.4, 0.25, 0.15),
)
VEHICLE_JITTER = 0.06


class World:
    """The ground plane and actor bodies in one PyBullet DIRECT client, and the looks of the world.

    renderer: "auto" (the EGL plugin where a GPU device exists, it loads and its GL renderer is not a
    CPU one; else TinyRenderer), "egl" (error if it does not load) or "tiny". `renderer_name` says
    which one is in use, `renderer_flag` is the getCameraImage renderer and `render_options` the
    light keyword arguments for it. `ground_texture` is what the camera draws the ground from: the
    road's (`sim.world.ground`), or a town's `paint` where one is given (`sim.world.town_ground`).
    A town's props: `add_props`, `set_light_states`.
    """

    def __init__(
        self,
        road: Road,
        physics_hz: float,
        renderer: str,
        rng: np.random.Generator,
        randomise: bool,
        paint: MapPaint | None = None,
    ):
        if physics_hz <= 0:
            raise ValueError(f"physics_hz must be > 0, got {physics_hz}")
        self.road = road
        self.paint = paint  # a town's ground: drawn instead of the road's (`ground_texture`)
        self.randomise = randomise
        self.dt_s = 1.0 / physics_hz
        opened = open_client(renderer, egl_plugin_path(), gpu_device_present())
        self.client = opened.client
        self.renderer_name = opened.renderer_name  # "egl" or "tiny"
        self.gl_renderer = opened.gl_renderer  # the EGL plugin's GL_RENDERER, when it was loaded
        # With the plugin loaded it renders whatever is asked; the flag only matters without it.
        self.renderer_flag = (
            p.ER_BULLET_HARDWARE_OPENGL if self.renderer_name == "egl" else p.ER_TINY_RENDERER
        )
        p.setGravity(0.0, 0.0, -GRAVITY_MPS2, physicsClientId=self.client)
        p.setTimeStep(self.dt_s, physicsClientId=self.client)

        self.actor_body_ids = np.zeros(0, dtype=np.int64)  # (N,) body id of each actor index
        self.body_to_actor: dict[int, int] = {}
        self.prop_body_ids: list[int] = []  # static props (add_props)
        self.traffic_lights: TrafficLights | None = None
        self._shape_cache: dict[tuple, list[tuple[int, str]]] = {}
        self._choose_looks(rng)
        # The ground's pattern: its own stream (drawn from when the texture is first needed).
        self._pattern_rng = rng.spawn(1)[0] if randomise else np.random.default_rng(GROUND_PATTERN_SEED)
        self._ground_texture: GroundTexture | None = None
        self.ground_id = self._build_ground()

    # ------------------------------------------------------------------ looks
    def _choose_looks(self, rng: np.random.Generator) -> None:
        if self.randomise:
            grey = rng.uniform(*ASPHALT_GREY_RANGE)
            base = np.array(GROUND_RGBA_CHOICES[rng.integers(len(GROUND_RGBA_CHOICES))])
            ground = np.clip(base + rng.uniform(-GROUND_JITTER, GROUND_JITTER, 3), 0.0, 1.0)
            azimuth = rng.uniform(0.0, 2 * np.pi)
            elevation = np.radians(rng.uniform(*LIGHT_ELEVATION_DEG_RANGE))
            light = (
                np.cos(elevation) * np.cos(azimuth),
                np.cos(elevation) * np.sin(azimuth),
                np.sin(elevation),
            )
            ambient = rng.uniform(*LIGHT_AMBIENT_RANGE)
        else:
            grey, ground, light, ambient = ASPHALT_GREY, GROUND_RGBA[:3], LIGHT_DIRECTION, LIGHT_AMBIENT
        self.road_rgba = (float(grey), float(grey), float(min(grey * ROAD_BLUE_TINT, 1.0)), 1.0)
        self.ground_rgba = (*(float(c) for c in ground), 1.0)
        self.light_direction = tuple(float(c) for c in light)
        sky = np.array(SKY_RGB)
        if self.randomise:  # drawn last: the draws above stay what they were
            sky = np.array(SKY_RGB_CHOICES[rng.integers(len(SKY_RGB_CHOICES))])
            sky = np.clip(sky + rng.uniform(-SKY_JITTER, SKY_JITTER), 0.0, 1.0)
        self.sky_rgb = (tuple(sky[0].tolist()), tuple(sky[1].tolist()))  # (horizon, zenith) in [0, 1]
        diffuse = LIGHT_DIFFUSE + LIGHT_AMBIENT - ambient
        # Brightness of an upward face: Lambert with the light direction, as TinyRenderer shades.
        self.up_light_factor = float(ambient + diffuse * max(light[2], 0.0) / np.linalg.norm(light))
        # Keyword arguments of getCameraImage: the light of this world.
        self.render_options = {
            "lightDirection": list(self.light_direction),
            "lightAmbientCoeff": float(ambient),
            # More ambient, less diffuse: the overall brightness stays about the same.
            "lightDiffuseCoeff": float(diffuse),
            "lightSpecularCoeff": LIGHT_SPECULAR,
            "shadow": 0,
        }

    def random_vehicle_rgba(self, rng: np.random.Generator) -> np.ndarray:
        """A vehicle colour (4,) in [0, 1]: a common car colour with jitter; fixed without randomise."""
        if not self.randomise:
            return np.array(DEFAULT_VEHICLE_RGBA)
        base = np.array(VEHICLE_PALETTE[rng.integers(len(VEHICLE_PALETTE))])
        rgb = np.clip(base + rng.uniform(-VEHICLE_JITTER, VEHICLE_JITTER, 3), 0.0, 1.0)
        return np.append(rgb, 1.0)

    # ------------------------------------------------------------------ static scene
    def _build_ground(self) -> int:
        """Ground: an infinite collision plane at z = 0 with an invisible visual shape."""
        speck = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=[GROUND_SPECK_HALF_SIZE_M] * 3,
            visualFramePosition=[0.0, 0.0, -GROUND_SPECK_DEPTH_M],
            rgbaColor=[0.0, 0.0, 0.0, 0.0],
            physicsClientId=self.client,
        )
        return ground_plane(self.client, speck)

    @property
    def ground_texture(self) -> GroundTexture:
        """Top-down picture of the lit ground and road (built on first use, ~0.1-0.3 s)."""
        if self._ground_texture is None:
            lit = self.up_light_factor
            colours = (np.array(c[:3]) * lit for c in (self.ground_rgba, self.road_rgba, LINE_RGBA))
            if self.paint is None:
                self._ground_texture = build_ground_texture(self.road, *colours, self._pattern_rng)
            else:
                ground, asphalt, line = colours
                self._ground_texture = build_town_ground_texture(
                    self.paint,
                    ground,
                    asphalt,
                    line,
                    self._pattern_rng,
                    *(np.array(c) * lit for c in (SIDEWALK_RGB, KERB_RGB, YELLOW_RGB)),
                )
        return self._ground_texture

    @property
    def static_body_ids(self) -> list[int]:
        """Bodies that are not actors: the ground and the props."""
        return [self.ground_id, *self.prop_body_ids]

    # ------------------------------------------------------------------ props
    def add_props(self, props: Props, rng: np.random.Generator) -> None:
        """Build a town's traffic lights, stop signs, buildings and trees (`sim.world.props`) as a
        few static bodies; colours and sizes of buildings and trees are drawn from `rng`. The
        lights' lamps stay dark until `set_light_states`. Called once per world."""
        if self.traffic_lights is not None:
            raise RuntimeError("this world has its props already")
        self.traffic_lights = TrafficLights(self.client, props.lights)
        self.prop_body_ids += self.traffic_lights.body_ids + build_static_props(self.client, props, rng)

    def set_light_states(self, states: dict[int, str]) -> None:
        """Light each signal group's lamp of its state ("green", "yellow", "red"): {signal_id:
        state}. Only groups whose state changed are recoloured (cheap to call every frame)."""
        if self.traffic_lights is not None:
            self.traffic_lights.set_states(states)

    # ------------------------------------------------------------------ actors
    def _visual_shapes(self, model: str, size_m: np.ndarray) -> list[tuple[int, str]]:
        """Visual shapes of one actor model, one per colour: [(shape id, colour name), ...] for the
        parts of `actor_parts`. Cached by model and size (to the millimetre)."""
        length, width, height = (round(float(x), 3) for x in size_m)
        key = (model, length, width, height)
        if key not in self._shape_cache:
            shapes = [
                (self._create_shape(part), part.colour) for part in actor_parts(model, length, width, height)
            ]
            if any(shape < 0 for shape, _ in shapes):
                raise RuntimeError(f"PyBullet could not create the visual shape of a {model!r}")
            self._shape_cache[key] = shapes
        return self._shape_cache[key]

    def _create_shape(self, part: Part) -> int:
        """One PyBullet visual shape of all the boxes or cylinders of `part` (-1 on failure)."""
        return visual_shape(self.client, part)

    def _actor_body(self, model: str, size_m: np.ndarray, rgba: np.ndarray) -> int:
        """A static body of visual shapes only: one link per colour, tinted (`rgba` for the actor's own)."""
        parts = self._visual_shapes(model, size_m)
        rgbas = [rgba if colour == ACTOR_COLOUR else PART_RGBA[colour] for _, colour in parts]
        return static_body(self.client, [shape for shape, _ in parts], rgbas)

    def add_actors(self, actors: Actors) -> None:
        """Create one static body per actor, replacing the bodies of earlier actors.

        Afterwards `actor_body_ids[i]` is the body of actor index i and `body_to_actor` maps back.
        """
        self.remove_actors()
        ids = [self._actor_body(m, actors.size_m[i], actors.rgba[i]) for i, m in enumerate(actors.models)]
        self.actor_body_ids = np.array(ids, dtype=np.int64)
        self.body_to_actor = {body: i for i, body in enumerate(ids)}
        self.sync_actors(actors)

    def remove_actors(self) -> None:
        """Remove all actor bodies (the cached visual shapes stay for the next actors)."""
        for body in self.actor_body_ids.tolist():
            p.removeBody(body, physicsClientId=self.client)
        self.actor_body_ids = np.zeros(0, dtype=np.int64)
        self.body_to_actor = {}

    def sync_actors(self, actors: Actors) -> None:
        """Move every actor body to its pose in `actors` (xy_m on the ground, yaw_rad)."""
        n = len(actors)
        if n != len(self.actor_body_ids):
            raise ValueError(f"{n} actors but {len(self.actor_body_ids)} bodies: call add_actors first")
        if n == 0:
            return
        pos = np.zeros((n, 3))
        pos[:, :2] = actors.xy_m
        quat = np.zeros((n, 4))  # rotation about z by yaw
        quat[:, 2] = np.sin(0.5 * actors.yaw_rad)
        quat[:, 3] = np.cos(0.5 * actors.yaw_rad)
        client, reset = self.client, p.resetBasePositionAndOrientation
        for body, xyz, q in zip(self.actor_body_ids.tolist(), pos.tolist(), quat.tolist(), strict=True):
            reset(body, xyz, q, physicsClientId=client)

    # ------------------------------------------------------------------ rendering
    def camera_image(
        self, width: int, height: int, view_matrix: list[float], projection_matrix: list[float], flags: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PyBullet getCameraImage in this world's light: rgba (H, W, 4) uint8, the raw depth
        buffer (H, W) float32 in [0, 1] and the segmentation buffer (H, W) int32 (stale unless
        `flags` asks for a mask). Matrices are OpenGL column-major, 16 floats each."""
        with c_stdout_silenced(self.renderer_name == "egl"):
            _, _, rgba, depth, seg = p.getCameraImage(
                width,
                height,
                viewMatrix=view_matrix,
                projectionMatrix=projection_matrix,
                renderer=self.renderer_flag,
                flags=flags,
                physicsClientId=self.client,
                **self.render_options,
            )
        return (
            np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4),
            np.asarray(depth, dtype=np.float32).reshape(height, width),
            np.asarray(seg, dtype=np.int32).reshape(height, width),
        )

    # ------------------------------------------------------------------ running
    def step(self) -> None:
        """Advance physics by `dt_s`."""
        p.stepSimulation(physicsClientId=self.client)

    def close(self) -> None:
        """Disconnect the client; safe to call twice."""
        if self.client >= 0:
            with c_stdout_silenced(self.renderer_name == "egl"):
                p.disconnect(physicsClientId=self.client)
            self.client = -1

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ground_plane(client: int, visual_shape: int = -1) -> int:
    """An infinite collision plane at z = 0 with the ground's friction (GROUND_FRICTION)."""
    plane = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
    ground = p.createMultiBody(0.0, plane, visual_shape, physicsClientId=client)
    p.changeDynamics(ground, -1, lateralFriction=GROUND_FRICTION, physicsClientId=client)
    return ground


class PhysicsWorld:
    """The ego's dynamics in a PyBullet client of its own: a ground plane (friction GROUND_FRICTION)
    and whatever car is built in `client`. The rendering World keeps the visual-only actor bodies;
    those have no collision shapes, but stepping them with the car doubled the cost of every physics
    step (~120 vs ~60 us with 24 NPCs, measured), so the car steps without them."""

    def __init__(self, physics_hz: float):
        self.dt_s = 1.0 / float(physics_hz)
        self.client = p.connect(p.DIRECT)
        p.setGravity(0.0, 0.0, -GRAVITY_MPS2, physicsClientId=self.client)
        p.setTimeStep(self.dt_s, physicsClientId=self.client)
        self.ground_id = ground_plane(self.client)

    def step(self) -> None:
        p.stepSimulation(physicsClientId=self.client)

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1

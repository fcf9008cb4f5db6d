"""The PyBullet world: ground, the road built from the planner's `Road`, and one body per actor.

One PyBullet DIRECT client per `World` (every call passes `physicsClientId`), so several worlds can
live in one process (gymnasium vector envs).

Rendering: the EGL plugin shipped inside pybullet renders headless (Mesa llvmpipe here). It must be
loaded before any body is created, or it silently renders an empty scene, so it is loaded first
thing. Once it is loaded, every `getCameraImage` of that client goes through it whatever renderer
is asked for; without it, PyBullet's CPU TinyRenderer draws. The two differ in look (EGL's
background is grey-blue, TinyRenderer's white; shading differs a little) but agree on geometry.
Measured on the 2-core dev machine (320x192, rgb + depth, 3-lane road, 20 actors, medians of 15
frames, machine shared and noisy): TinyRenderer ~24-27 ms, EGL on llvmpipe ~27-33 ms per frame,
and building a World takes ~0.05 s with TinyRenderer against ~0.3-0.7 s with EGL (GL context).
So "tiny" is the better choice on CPU-only machines; EGL only pays off with a GPU driver.
The EGL plugin also prints to stdout on every frame; `c_stdout_silenced` keeps that out.

The road is visual only (the ground plane is the only collision shape): a triangle-mesh surface,
solid white edge lines on the road boundaries and dashed white separators between lanes, merged
into three mesh bodies (ground, asphalt, paint). The meshes go through OBJ files in a temporary
folder, deleted once the bodies are made: the EGL plugin cannot build a mesh from vertices (it logs "issue
extracting mesh" and crashes the process), and files have no vertex limit.

Actor bodies are static multibodies with one link per colour (EGL ignores per-shape colours, so
a car is a chassis base plus a tinted cabin link); segmentation masks give
`body + ((link + 1) << 24)`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator

import numpy as np
import pybullet as p

from decision.route import Road
from sim.actors import Actors

# Road geometry.
ROAD_SAMPLE_SPACING_M = 2.0  # spacing of the road mesh along s [m]
SHOULDER_M = 0.5  # asphalt beyond the edge line on each side [m]
LINE_WIDTH_M = 0.25  # painted line width [m]
DASH_LENGTH_M = 3.0  # dashed lane separator: painted length [m]
DASH_GAP_M = 6.0  # dashed lane separator: gap between dashes [m]
ROAD_Z_M = 0.01  # road surface height above the ground plane [m] (no z-fighting with the ground)
LINE_Z_M = 0.02  # painted lines height above the ground plane [m]
GROUND_MARGIN_M = 300.0  # ground extends this far beyond the road's bounding box [m]
GROUND_FRICTION = 1.0  # lateral friction of the ground; Bullet multiplies it by the tyres' (grip)
GROUND_TILE_M = 50.0  # ground mesh tile size [m]
# Colours (RGBA in [0, 1]) and light, fixed values used when `randomise` is off.
ASPHALT_GREY = 0.33
GROUND_RGBA = (0.33, 0.45, 0.24, 1.0)  # grass
LINE_RGBA = (0.95, 0.95, 0.95, 1.0)
LIGHT_DIRECTION = (0.5, 0.3, 1.0)  # towards the light (PyBullet getCameraImage lightDirection)
LIGHT_AMBIENT = 0.6
LIGHT_DIFFUSE = 0.4
LIGHT_SPECULAR = 0.05
DEFAULT_VEHICLE_RGBA = (0.15, 0.3, 0.65, 1.0)
# Domain randomisation ranges.
ASPHALT_GREY_RANGE = (0.18, 0.5)
GROUND_RGBA_CHOICES = ((0.33, 0.45, 0.24), (0.45, 0.5, 0.28), (0.5, 0.42, 0.3), (0.38, 0.4, 0.36))
GROUND_JITTER = 0.05
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

# Actor bodies.
CABIN_RGBA = (0.12, 0.14, 0.17, 1.0)  # tinted glass
CONE_RGBA = (1.0, 0.42, 0.0, 1.0)
STRIPE_RGBA = (0.95, 0.95, 0.95, 1.0)
BARRIER_RGBA = (0.85, 0.08, 0.06, 1.0)
BARRIER_STRIPE_M = 0.5  # length of one red or white stripe [m] (longer on long barriers)
MAX_SHAPES_PER_LINK = 16  # PyBullet limit of createVisualShapeArray
PART_RGBA = {"cabin": CABIN_RGBA, "cone": CONE_RGBA, "stripe": STRIPE_RGBA, "barrier": BARRIER_RGBA}
CHASSIS_HEIGHT_FRACTION = {"car": 0.55, "van": 0.5}  # of the actor height; the cabin sits on top
CABIN_LENGTH_FRACTION = {"car": 0.5, "van": 0.72}
CABIN_OFFSET_FRACTION = {"car": -0.06, "van": -0.1}  # cabin centre behind the body centre
CABIN_WIDTH_FRACTION = 0.9


def egl_plugin_path() -> str | None:
    """File of the EGL renderer plugin shipped inside pybullet, or None."""
    spec = importlib.util.find_spec("eglRenderer")
    return None if spec is None else spec.origin


@contextlib.contextmanager
def c_stdout_silenced(enabled: bool = True) -> Iterator[None]:
    """Send what C code writes to stdout (file descriptor 1) to /dev/null meanwhile.

    The EGL plugin prints its GL set-up when it loads and a line ("ven = ...") on every rendered
    frame, which would pollute the stdout of any program that renders. Python's and C's buffers
    are flushed on both sides, so nothing printed before or after is lost or redirected.
    """
    libc, saved = None, -1
    if enabled:
        try:
            libc = ctypes.CDLL(None)
            if sys.stdout is not None:
                sys.stdout.flush()
            saved = os.dup(1)
        except OSError:  # no C library handle or no file descriptor 1: nothing to silence
            pass
    if libc is None or saved < 0:
        yield
        return
    libc.fflush(None)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def strip_mesh(left_xy: np.ndarray, right_xy: np.ndarray, z_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A triangle strip between two polylines (M, 2): vertices (2M, 3), indices (6 (M-1),).

    Triangles wind counter-clockwise seen from above (normals up), whatever direction the road runs.
    """
    m = len(left_xy)
    vertices = np.empty((2 * m, 3))
    vertices[0::2, :2] = right_xy
    vertices[1::2, :2] = left_xy
    vertices[:, 2] = z_m
    i = np.arange(m - 1) * 2
    # right_i, right_i+1, left_i+1 and right_i, left_i+1, left_i (left is to the left of travel).
    indices = np.stack([i, i + 2, i + 3, i, i + 3, i + 1], axis=1).reshape(-1)
    return vertices, indices


def quads_mesh(corners_xy: np.ndarray, z_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Separate quads, corners (Q, 4, 2) ordered counter-clockwise from above: (4Q, 3), (6Q,)."""
    q = len(corners_xy)
    vertices = np.empty((4 * q, 3))
    vertices[:, :2] = corners_xy.reshape(-1, 2)
    vertices[:, 2] = z_m
    i = np.arange(q) * 4
    indices = np.stack([i, i + 1, i + 2, i, i + 2, i + 3], axis=1).reshape(-1)
    return vertices, indices


def merge_meshes(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate meshes [(vertices (V, 3), indices (3T,)), ...] into one."""
    if not meshes:
        return np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes])[:-1]
    vertices = np.concatenate([v for v, _ in meshes])
    indices = np.concatenate([i + o for (_, i), o in zip(meshes, offsets, strict=True)])
    return vertices, indices


def write_obj(path: str, vertices: np.ndarray, indices: np.ndarray) -> None:
    """Write a mesh with upward normals as a Wavefront OBJ file."""
    faces = indices.reshape(-1, 3) + 1  # OBJ counts from 1
    with open(path, "w") as f:
        f.write("".join(f"v {x:.4f} {y:.4f} {z:.4f}\n" for x, y, z in vertices.tolist()))
        f.write("vn 0 0 1\n")
        f.write("".join(f"f {a}//1 {b}//1 {c}//1\n" for a, b, c in faces.tolist()))


class World:
    """Ground, road and actor bodies in one PyBullet DIRECT client.

    renderer: "auto" (EGL plugin when it loads, else TinyRenderer), "egl" (error if it does not
    load) or "tiny". `renderer_name` says which one is in use, `renderer_flag` is the
    getCameraImage renderer and `render_options` the light keyword arguments for it.
    """

    def __init__(
        self,
        road: Road,
        physics_hz: float,
        renderer: str,
        rng: np.random.Generator,
        randomise: bool,
    ):
        if renderer not in ("auto", "egl", "tiny"):
            raise ValueError(f"renderer must be auto, egl or tiny, got {renderer!r}")
        if physics_hz <= 0:
            raise ValueError(f"physics_hz must be > 0, got {physics_hz}")
        self.road = road
        self.randomise = randomise
        self.dt_s = 1.0 / physics_hz
        self.client = p.connect(p.DIRECT)
        self.renderer_name = "tiny"
        if renderer in ("auto", "egl"):
            # Must come before any body is created (else EGL renders an empty scene).
            path = egl_plugin_path()
            plugin = -1
            if path is not None:
                with c_stdout_silenced():
                    plugin = p.loadPlugin(path, "_eglRendererPlugin", physicsClientId=self.client)
            if plugin >= 0:
                self.renderer_name = "egl"
            elif renderer == "egl":
                p.disconnect(self.client)
                raise RuntimeError(
                    "renderer='egl' but pybullet's EGL renderer plugin did not load "
                    f"(plugin file: {path}); use renderer='tiny' or 'auto'"
                )
        # With the plugin loaded it renders whatever is asked; the flag only matters without it.
        self.renderer_flag = (
            p.ER_BULLET_HARDWARE_OPENGL if self.renderer_name == "egl" else p.ER_TINY_RENDERER
        )
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=self.client)
        p.setTimeStep(self.dt_s, physicsClientId=self.client)

        self.actor_body_ids = np.zeros(0, dtype=np.int64)  # (N,) body id of each actor index
        self.body_to_actor: dict[int, int] = {}
        self._shape_cache: dict[tuple, list[tuple[int, str]]] = {}
        self._choose_looks(rng)
        # PyBullet reads the mesh files when the bodies are made; they are not needed afterwards.
        with tempfile.TemporaryDirectory(prefix="bulletdrive_world_") as mesh_dir:
            self.ground_id = self._build_ground(mesh_dir)
            self.road_body_ids = self._build_road(mesh_dir)

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
        self.road_rgba = (float(grey), float(grey), float(min(grey * 1.03, 1.0)), 1.0)  # faintly blue
        self.ground_rgba = (*(float(c) for c in ground), 1.0)
        self.light_direction = tuple(float(c) for c in light)
        # Keyword arguments of getCameraImage: the light of this world.
        self.render_options = {
            "lightDirection": list(self.light_direction),
            "lightAmbientCoeff": float(ambient),
            # More ambient, less diffuse: the overall brightness stays about the same.
            "lightDiffuseCoeff": float(LIGHT_DIFFUSE + LIGHT_AMBIENT - ambient),
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
    def _mesh_body(
        self, mesh_dir: str, name: str, mesh: tuple[np.ndarray, np.ndarray], rgba, collision: int = -1
    ) -> int:
        path = os.path.join(mesh_dir, f"{name}.obj")
        write_obj(path, *mesh)
        shape = p.createVisualShape(
            p.GEOM_MESH, fileName=path, rgbaColor=list(rgba), physicsClientId=self.client
        )
        if shape < 0:
            raise RuntimeError(f"PyBullet could not load the {name} mesh")
        return p.createMultiBody(0.0, collision, shape, physicsClientId=self.client)

    def ground_mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Square tiles at z = 0 covering the road's bounding box plus `GROUND_MARGIN_M`."""
        lo = self.road.xy_m.min(axis=0) - GROUND_MARGIN_M
        hi = self.road.xy_m.max(axis=0) + GROUND_MARGIN_M
        nx, ny = np.ceil((hi - lo) / GROUND_TILE_M).astype(int)
        x0, y0 = np.meshgrid(lo[0] + GROUND_TILE_M * np.arange(nx), lo[1] + GROUND_TILE_M * np.arange(ny))
        x0, y0 = x0.ravel(), y0.ravel()
        x1, y1 = x0 + GROUND_TILE_M, y0 + GROUND_TILE_M
        corners = np.stack([np.stack(c, axis=1) for c in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], axis=1)
        return quads_mesh(corners, 0.0)

    def _build_ground(self, mesh_dir: str) -> int:
        """Ground: an infinite collision plane at z = 0 with the tiled mesh as its visual."""
        collision = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=self.client)
        ground = self._mesh_body(mesh_dir, "ground", self.ground_mesh(), self.ground_rgba, collision)
        p.changeDynamics(ground, -1, lateralFriction=GROUND_FRICTION, physicsClientId=self.client)
        return ground

    def lane_boundary_offsets_m(self) -> np.ndarray:
        """Lateral offsets (lane_count + 1,) of the painted lines' centres, right edge first [m]."""
        return np.arange(self.road.lane_count + 1) * self.road.lane_width_m - self.road.half_width_m

    def road_meshes(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The road in world coordinates: {"surface": mesh, "lines": mesh}, mesh = (V, 3), (3T,).

        Solid lines lie on the two outer lane boundaries, dashed ones on the boundaries between
        lanes, centred on `lane_boundary_offsets_m`; the asphalt reaches `SHOULDER_M` beyond them.
        """
        road = self.road
        n = max(int(np.ceil(road.length_m / ROAD_SAMPLE_SPACING_M)), 1) + 1
        s = np.linspace(0.0, road.length_m, n)

        def polyline(s_m: np.ndarray, d_m: float) -> np.ndarray:
            x, y, _ = road.to_world(s_m, d_m)
            return np.stack([x, y], axis=-1)

        edge = road.half_width_m + SHOULDER_M
        surface = strip_mesh(polyline(s, edge), polyline(s, -edge), ROAD_Z_M)

        half = LINE_WIDTH_M / 2
        offsets = self.lane_boundary_offsets_m()
        lines = [strip_mesh(polyline(s, d + half), polyline(s, d - half), LINE_Z_M) for d in offsets[[0, -1]]]
        s0 = np.arange(0.0, road.length_m - DASH_LENGTH_M, DASH_LENGTH_M + DASH_GAP_M)
        s1 = s0 + DASH_LENGTH_M
        for d in offsets[1:-1]:  # one quad per dash
            corners = np.stack(
                [
                    polyline(s0, d - half),
                    polyline(s1, d - half),
                    polyline(s1, d + half),
                    polyline(s0, d + half),
                ],
                axis=1,
            )
            lines.append(quads_mesh(corners, LINE_Z_M))
        return {"surface": surface, "lines": merge_meshes(lines)}

    def _build_road(self, mesh_dir: str) -> list[int]:
        meshes = self.road_meshes()
        return [
            self._mesh_body(mesh_dir, "road_surface", meshes["surface"], self.road_rgba),
            self._mesh_body(mesh_dir, "road_lines", meshes["lines"], LINE_RGBA),
        ]

    @property
    def static_body_ids(self) -> list[int]:
        """Bodies of the ground and the road."""
        return [self.ground_id, *self.road_body_ids]

    # ------------------------------------------------------------------ actors
    def _parts(self, model: str, size_m: np.ndarray) -> list[tuple[int, str]]:
        """Visual shapes of one actor model, one per colour: [(shape id, colour name), ...].

        Colour names: "actor" (the actor's rgba) or a key of `PART_RGBA`. The body frame is the
        actor's centre on the ground, x forward, z up; the parts fill the box length x width x
        height from z = 0, which is what the ground-truth boxes assume. Cached by model and size.
        """
        length, width, height = (round(float(x), 3) for x in size_m)
        key = (model, length, width, height)
        if key in self._shape_cache:
            return self._shape_cache[key]
        identity = [0.0, 0.0, 0.0, 1.0]

        def boxes(half_extents: list, centres: list) -> int:
            return p.createVisualShapeArray(
                shapeTypes=[p.GEOM_BOX] * len(centres),
                halfExtents=half_extents,
                visualFramePositions=centres,
                visualFrameOrientations=[identity] * len(centres),
                physicsClientId=self.client,
            )

        def cylinders(radii: list, lengths: list, z_centres: list) -> int:
            return p.createVisualShapeArray(
                shapeTypes=[p.GEOM_CYLINDER] * len(radii),
                radii=radii,
                lengths=lengths,
                visualFramePositions=[[0.0, 0.0, z] for z in z_centres],
                visualFrameOrientations=[identity] * len(radii),
                physicsClientId=self.client,
            )

        if model in ("car", "van"):
            h_chassis = CHASSIS_HEIGHT_FRACTION[model] * height
            cabin_len = CABIN_LENGTH_FRACTION[model] * length
            cabin_x = CABIN_OFFSET_FRACTION[model] * length
            parts = [
                (boxes([[length / 2, width / 2, h_chassis / 2]], [[0.0, 0.0, h_chassis / 2]]), "actor"),
                (
                    boxes(
                        [[cabin_len / 2, CABIN_WIDTH_FRACTION * width / 2, (height - h_chassis) / 2]],
                        [[cabin_x, 0.0, (height + h_chassis) / 2]],
                    ),
                    "cabin",
                ),
            ]
        elif model == "pedestrian":
            parts = [(cylinders([min(length, width) / 2], [height], [height / 2]), "actor")]
        elif model == "cone":
            # A wide foot and two narrowing orange pieces with a white band between them.
            r = min(length, width) / 2
            h_foot, h_piece = 0.1 * height, 0.3 * height
            parts = [
                (
                    cylinders(
                        [r, 0.6 * r, 0.35 * r],
                        [h_foot, h_piece, h_piece],
                        [h_foot / 2, h_foot + h_piece / 2, h_foot + 2.5 * h_piece],
                    ),
                    "cone",
                ),
                (cylinders([0.48 * r], [h_piece], [h_foot + 1.5 * h_piece]), "stripe"),
            ]
        elif model == "barrier":  # the actor's box, red and white stripes along its length
            n = max(int(round(length / BARRIER_STRIPE_M)), 2)
            n = min(n, 2 * MAX_SHAPES_PER_LINK)
            piece = length / n
            xs = -length / 2 + piece * (np.arange(n) + 0.5)
            half = [piece / 2, width / 2, height / 2]
            parts = [
                (boxes([half] * len(xs[k::2]), [[float(x), 0.0, height / 2] for x in xs[k::2]]), colour)
                for k, colour in enumerate(("barrier", "stripe"))
            ]
        else:  # any other model: a plain box in the actor's colour
            parts = [(boxes([[length / 2, width / 2, height / 2]], [[0.0, 0.0, height / 2]]), "actor")]
        if any(shape < 0 for shape, _ in parts):
            raise RuntimeError(f"PyBullet could not create the visual shape of a {model!r}")
        self._shape_cache[key] = parts
        return parts

    def _actor_body(self, model: str, size_m: np.ndarray, rgba: np.ndarray) -> int:
        parts = self._parts(model, size_m)
        k = len(parts) - 1  # links besides the base, fixed at the base origin
        zero, identity = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]
        body = p.createMultiBody(
            baseMass=0.0,
            baseCollisionShapeIndex=-1,
            baseVisualShapeIndex=parts[0][0],
            linkMasses=[0.0] * k,
            linkCollisionShapeIndices=[-1] * k,
            linkVisualShapeIndices=[shape for shape, _ in parts[1:]],
            linkPositions=[zero] * k,
            linkOrientations=[identity] * k,
            linkInertialFramePositions=[zero] * k,
            linkInertialFrameOrientations=[identity] * k,
            linkParentIndices=[0] * k,
            linkJointTypes=[p.JOINT_FIXED] * k,
            linkJointAxis=[[0.0, 0.0, 1.0]] * k,
            physicsClientId=self.client,
        )
        for link, (_, colour) in enumerate(parts, start=-1):
            rgb = rgba if colour == "actor" else PART_RGBA[colour]
            p.changeVisualShape(body, link, rgbaColor=[float(c) for c in rgb], physicsClientId=self.client)
        return body

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

"""The town's props: traffic lights, stop signs, buildings and trees, as static visual bodies.

Props never move, so they are batched: every shape of one colour goes into links of at most
MAX_SHAPES_PER_LINK shapes, placed in world coordinates, and the links of a kind of prop into one
multibody (`batched_body`). A town's hundreds of buildings and trees are then a handful of bodies
(TinyRenderer's cost per body and link is what grows with separate bodies; see scripts/town_looks.py
for the measured cost). The lamps of a traffic light change colour, and a link has one colour
(the EGL renderer ignores per-shape colours), so the lamps of one signal group are a body of their
own with one link per lamp colour, shared by all the lights of that group: `TrafficLights.set_states`
recolours three links per group whose state changed.

Frames: a light or a stop sign stands at (x, y) facing `yaw_rad`, the direction towards the traffic
that approaches it (its lamps or plate face that way). Its pole is at (x, y); `arm_m` > 0 hangs the
housing from an arm that long reaching over the road, to the right of the facing direction (the
approaching drivers' left, over their lanes when the pole stands at their right kerb).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pybullet as p

from perception.lights import MappedLight, projected_boxes
from perception.types import CameraFrame
from sim.world.actor_shapes import MAX_SHAPES_PER_LINK
from sim.world.bodies import AXIS_QUAT, IDENTITY_QUAT, static_body

# Traffic lights [m].
POLE_RGBA = (0.42, 0.43, 0.45, 1.0)
HOUSING_RGBA = (0.07, 0.07, 0.08, 1.0)
POLE_HALF_WIDTH_M = 0.07
POLE_HEIGHT_M = 2.6  # a post's top (the housing sits on it)
MAST_HEIGHT_M = 5.2  # a pole with an arm: the arm's height
ARM_HALF_THICKNESS_M = 0.06
HOUSING_SIZE_M = (0.3, 0.36, 0.95)  # depth (along the facing direction), width, height
LAMP_RADIUS_M = 0.11
LAMP_DEPTH_M = 0.04  # the lamps stand this far out of the housing's front
LAMP_SPACING_M = 0.29  # between lamp centres, red at the top
LAMP_ORDER = ("red", "yellow", "green")  # top to bottom
FACE_COLUMNS, FACE_ROWS = 3, 5  # occlusion test: points on the housing's front face
LAMP_RGBA = {  # (lit, dark)
    "red": ((1.0, 0.12, 0.08, 1.0), (0.22, 0.05, 0.04, 1.0)),
    "yellow": ((1.0, 0.78, 0.1, 1.0), (0.22, 0.18, 0.04, 1.0)),
    "green": ((0.15, 1.0, 0.4, 1.0), (0.04, 0.2, 0.08, 1.0)),
}
# Stop signs [m]: a post and a red plate of about an octagon (three crossed boxes) with a white rim.
STOP_PLATE_RGBA = (0.78, 0.05, 0.05, 1.0)
STOP_RIM_RGBA = (0.95, 0.95, 0.95, 1.0)
STOP_POST_HEIGHT_M = 2.1  # the plate's centre
STOP_PLATE_WIDTH_M = 0.75  # flat to flat
STOP_PLATE_DEPTH_M = 0.03
STOP_RIM_M = 0.04
# Buildings and trees.
FACADE_RGBA = (
    (0.72, 0.66, 0.58, 1.0),
    (0.62, 0.38, 0.3, 1.0),
    (0.8, 0.78, 0.72, 1.0),
    (0.55, 0.57, 0.6, 1.0),
    (0.76, 0.6, 0.42, 1.0),
    (0.5, 0.46, 0.42, 1.0),
)
WINDOW_RGBA = (0.2, 0.24, 0.3, 1.0)
FLOOR_HEIGHT_M = 3.2  # one band of windows per floor
WINDOW_BAND_FRACTION = 0.45  # of a floor's height
WINDOW_PROUD_M = 0.03  # window bands stand this far out of the façade
TRUNK_RGBA = (0.36, 0.25, 0.16, 1.0)
CROWN_RGBA = ((0.2, 0.42, 0.17, 1.0), (0.27, 0.48, 0.2, 1.0), (0.17, 0.36, 0.2, 1.0))
TRUNK_RADIUS_M = 0.15
TRUNK_HEIGHT_M = (1.8, 2.6)  # drawn per tree
CROWN_RADIUS_M = (1.4, 2.4)  # drawn per tree
CROWN_HEIGHT_FRACTION = 1.3  # of the crown radius


# ---------------------------------------------------------------------- shapes placed in the world
@dataclass(frozen=True, slots=True)
class PlacedShape:
    """One box or upright/turned cylinder in world coordinates.

    kind: "box" or "cylinder". size_m: a box's full extents (3,); a cylinder's (radius, length,
    unused). position_m: its centre (3,). orientation: quaternion (x, y, z, w).
    """

    kind: str
    size_m: tuple[float, float, float]
    position_m: tuple[float, float, float]
    orientation: tuple[float, float, float, float] = IDENTITY_QUAT


def yaw_quat(yaw_rad: float) -> tuple[float, float, float, float]:
    """The rotation about z by `yaw_rad`."""
    return (0.0, 0.0, float(np.sin(yaw_rad / 2)), float(np.cos(yaw_rad / 2)))


def _compose(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    """Quaternion product a * b (apply b, then a)."""
    _, q = p.multiplyTransforms([0, 0, 0], a, [0, 0, 0], b)
    return tuple(float(c) for c in q)


def _local_to_world(
    x_m: float, y_m: float, yaw_rad: float, local: Sequence[float]
) -> tuple[float, float, float]:
    """A point (forward, left, up) in a prop's frame at (x, y, yaw) to the world."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return (
        float(x_m + c * local[0] - s * local[1]),
        float(y_m + s * local[0] + c * local[1]),
        float(local[2]),
    )


def _shape_array(client: int, shapes: Sequence[PlacedShape]) -> int:
    """One visual shape array of up to MAX_SHAPES_PER_LINK placed shapes."""
    is_box = [s.kind == "box" for s in shapes]
    return p.createVisualShapeArray(
        shapeTypes=[p.GEOM_BOX if b else p.GEOM_CYLINDER for b in is_box],
        halfExtents=[
            [v / 2 for v in s.size_m] if b else [0.0] * 3 for s, b in zip(shapes, is_box, strict=True)
        ],
        radii=[0.0 if b else s.size_m[0] for s, b in zip(shapes, is_box, strict=True)],
        lengths=[0.0 if b else s.size_m[1] for s, b in zip(shapes, is_box, strict=True)],
        visualFramePositions=[list(s.position_m) for s in shapes],
        visualFrameOrientations=[list(s.orientation) for s in shapes],
        physicsClientId=client,
    )


def batched_body(
    client: int, groups: Sequence[tuple[Sequence[float], Sequence[PlacedShape]]]
) -> tuple[int, list]:
    """One static body of all the placed shapes of `groups` [(rgba, shapes), ...]: each group cut
    into links of at most MAX_SHAPES_PER_LINK shapes, each link tinted with its group's colour.

    Returns the body id (-1 when there is no shape) and, per group, the link indices of its links
    (-1 is the base)."""
    links: list[tuple[int, Sequence[float]]] = []  # (visual shape, rgba)
    group_links: list[list[int]] = []
    for rgba, shapes in groups:
        start = len(links)
        for k in range(0, len(shapes), MAX_SHAPES_PER_LINK):
            shape = _shape_array(client, shapes[k : k + MAX_SHAPES_PER_LINK])
            if shape < 0:
                raise RuntimeError("PyBullet could not create the visual shape of a prop")
            links.append((shape, rgba))
        group_links.append(list(range(start - 1, len(links) - 1)))
    if not links:
        return -1, group_links
    body = static_body(client, [shape for shape, _ in links], [rgba for _, rgba in links])
    return body, group_links


# ---------------------------------------------------------------------- traffic lights
@dataclass(frozen=True, slots=True)
class LightPose:
    """A traffic light: its pole at (x_m, y_m), facing `yaw_rad` (towards the approaching traffic),
    showing the state of signal group `signal_id`; `arm_m` > 0 hangs it from an arm (module
    docstring)."""

    x_m: float
    y_m: float
    yaw_rad: float
    signal_id: int
    arm_m: float = 0.0


def as_light_poses(lights: Iterable) -> list[LightPose]:
    """LightPose items, or (x, y, yaw, signal_id[, arm_m]) tuples, as LightPose."""
    return [a if isinstance(a, LightPose) else LightPose(*a) for a in lights]


def housing_centre_local(light: LightPose) -> tuple[float, float, float]:
    """Centre of the housing in the light's frame (forward, left, up) [m]."""
    h = HOUSING_SIZE_M[2]
    if light.arm_m > 0:
        return (0.0, -light.arm_m, MAST_HEIGHT_M - ARM_HALF_THICKNESS_M - h / 2)
    return (0.0, 0.0, POLE_HEIGHT_M + h / 2)


def light_box_corners(lights: Sequence[LightPose]) -> np.ndarray:
    """World corners (N, 8, 3) of each light's housing with its lamps (the labelled 3D box)."""
    d, w, h = HOUSING_SIZE_M
    x0, x1 = -d / 2, d / 2 + LAMP_DEPTH_M
    out = np.zeros((len(lights), 8, 3))
    for i, light in enumerate(lights):
        cx, cy, cz = housing_centre_local(light)
        corners = [
            _local_to_world(light.x_m, light.y_m, light.yaw_rad, (cx + x, cy + y, cz + z))
            for x in (x0, x1)
            for y in (-w / 2, w / 2)
            for z in (-h / 2, h / 2)
        ]
        out[i] = corners
    return out


def light_shapes(light: LightPose) -> tuple[list[PlacedShape], list[PlacedShape], dict[str, PlacedShape]]:
    """The pole (and arm), the housing and the three lamps of one light, placed in the world."""
    place = partial(_local_to_world, light.x_m, light.y_m, light.yaw_rad)  # (forward, left, up) -> world
    q = yaw_quat(light.yaw_rad)
    pw = 2 * POLE_HALF_WIDTH_M
    top = MAST_HEIGHT_M if light.arm_m > 0 else POLE_HEIGHT_M
    pole = [PlacedShape("box", (pw, pw, top), place((0.0, 0.0, top / 2)), q)]
    if light.arm_m > 0:
        t = 2 * ARM_HALF_THICKNESS_M
        pole.append(PlacedShape("box", (t, light.arm_m, t), place((0.0, -light.arm_m / 2, top - t / 2)), q))
    cx, cy, cz = housing_centre_local(light)
    housing = [PlacedShape("box", HOUSING_SIZE_M, place((cx, cy, cz)), q)]
    lamp_quat = _compose(q, AXIS_QUAT["x"])
    x_lamp = HOUSING_SIZE_M[0] / 2 + LAMP_DEPTH_M / 2
    lamps = {
        colour: PlacedShape(
            "cylinder",
            (LAMP_RADIUS_M, LAMP_DEPTH_M, 0.0),
            place((cx + x_lamp, cy, cz + LAMP_SPACING_M * (1 - k))),
            lamp_quat,
        )
        for k, colour in enumerate(LAMP_ORDER)
    }
    return pole, housing, lamps


class TrafficLights:
    """The traffic lights of a world: poles and housings in one body, and per signal group one
    body of lamps (a link per lamp colour) that `set_states` recolours.

    All lamps start dark (no state) until the first `set_states`."""

    def __init__(self, client: int, lights: Iterable):
        self.client = client
        self.lights = as_light_poses(lights)
        parts = [light_shapes(light) for light in self.lights]
        poles = [s for pole, _, _ in parts for s in pole]
        housings = [s for _, housing, _ in parts for s in housing]
        self.body_ids: list[int] = []
        body, _ = batched_body(client, [(POLE_RGBA, poles), (HOUSING_RGBA, housings)])
        if body >= 0:
            self.body_ids.append(body)
        # Per signal group: [(body, link, lamp colour), ...].
        self._lamp_links: dict[int, list[tuple[int, int, str]]] = {}
        for signal_id in sorted({light.signal_id for light in self.lights}):
            lamps = [
                lamp
                for light, (_, _, lamp) in zip(self.lights, parts, strict=True)
                if light.signal_id == signal_id
            ]
            groups = [(LAMP_RGBA[c][1], [lamp[c] for lamp in lamps]) for c in LAMP_ORDER]
            body, links = batched_body(client, groups)
            self.body_ids.append(body)
            self._lamp_links[signal_id] = [
                (body, link, c) for c, ls in zip(LAMP_ORDER, links, strict=True) for link in ls
            ]
        self.states: dict[int, str | None] = dict.fromkeys(self._lamp_links)

    def set_states(self, states: dict[int, str]) -> int:
        """Light the lamp of each signal group's state (one of LAMP_ORDER), darken the others; only
        groups whose state changed are recoloured. Unknown groups are ignored (a town may have
        signals without a light pole). Returns the number of links recoloured."""
        changed = 0
        for signal_id, state in states.items():
            if signal_id not in self._lamp_links or self.states[signal_id] == state:
                continue
            if state not in LAMP_RGBA:
                raise ValueError(f"signal {signal_id}: state {state!r} is not one of {', '.join(LAMP_ORDER)}")
            for body, link, colour in self._lamp_links[signal_id]:
                rgba = LAMP_RGBA[colour][0 if colour == state else 1]
                p.changeVisualShape(body, link, rgbaColor=list(rgba), physicsClientId=self.client)
                changed += 1
            self.states[signal_id] = state
        return changed


@dataclass(frozen=True, slots=True)
class LightBox:
    """Ground-truth box of one traffic light's housing in one camera frame: its signal group, its
    state, (x0, y0, x1, y1) [px] clipped to the image, the camera-to-housing distance [m], the
    share of its front face the depth image shows (NaN when the frame has no depth), and whether
    the lit lamp itself is in the image and unhidden (the state shows in the frame)."""

    signal_id: int
    state: str
    box_xyxy: tuple[float, float, float, float]
    distance_m: float
    visible_fraction: float
    lamp_visible: bool


def light_face_points(lights: Sequence[LightPose]) -> np.ndarray:
    """World points (N, G, 3) on the front face of each light's housing: a grid of FACE_COLUMNS x
    FACE_ROWS, inset from its edges (the depth image tells which the camera sees)."""
    d, w, h = HOUSING_SIZE_M
    ys = w * np.linspace(-0.3, 0.3, FACE_COLUMNS)
    zs = h * np.linspace(-0.4, 0.4, FACE_ROWS)
    out = np.zeros((len(lights), FACE_COLUMNS * FACE_ROWS, 3))
    for i, light in enumerate(lights):
        cx, cy, cz = housing_centre_local(light)
        out[i] = [
            _local_to_world(light.x_m, light.y_m, light.yaw_rad, (cx + d / 2, cy + y, cz + z))
            for y in ys
            for z in zs
        ]
    return out


def lamp_centres(lights: Sequence[LightPose], states: dict[int, str]) -> np.ndarray:
    """World centres (N, 3) of the front face of each light's lit lamp (NaN where its signal has
    no state)."""
    x_face = HOUSING_SIZE_M[0] / 2 + LAMP_DEPTH_M
    out = np.full((len(lights), 3), np.nan)
    for i, light in enumerate(lights):
        state = states.get(light.signal_id)
        if state in LAMP_ORDER:
            cx, cy, cz = housing_centre_local(light)
            up = LAMP_SPACING_M * (1 - LAMP_ORDER.index(state))
            out[i] = _local_to_world(light.x_m, light.y_m, light.yaw_rad, (cx + x_face, cy, cz + up))
    return out


def light_boxes(
    frame: CameraFrame,
    lights: Sequence,
    states: dict[int, str],
    max_distance_m: float,
    min_box_height_px: float | None = None,
) -> list[LightBox]:
    """Ground-truth boxes of the traffic lights that face the camera in `frame`, with their states.

    Each housing's 3D box is projected through the frame's K and pose (perception.lights
    `projected_boxes`); a light is dropped when any corner is behind the camera's near plane, when
    it does not face the camera (seen more than FACING_MAX_DEG off its facing direction: its back or
    side, not its state), when it is
    farther than `max_distance_m`, outside the image, or shorter than `min_box_height_px`
    (default: the actors' MIN_BOX_HEIGHT_PX) inside it, when its signal has no state in
    `states`, and when the frame's depth shows none of its front face (hidden behind a building or
    a vehicle). A light whose lit lamp is outside the image or hidden (the housing cut by the
    image's edge above a car waiting at the line) is kept with `lamp_visible` False: its state
    does not show.
    """
    # Imported here: sim.world.camera imports sim.world.world, which imports this module.
    from sim.world.camera import DEPTH_TOL_FRACTION, DEPTH_TOL_M, MIN_BOX_HEIGHT_PX, NEAR_CLIP_M, project

    lights = as_light_poses(lights)
    if not lights:
        return []
    min_h = MIN_BOX_HEIGHT_PX if min_box_height_px is None else min_box_height_px
    height_px, width_px = frame.rgb.shape[:2]
    pose = frame.cam_to_world
    corners = light_box_corners(lights)  # (N, 8, 3)
    # In front of the camera, facing it and overlapping the image: as perception projects the map's.
    mapped = [
        MappedLight(light.signal_id, c, light.yaw_rad) for light, c in zip(lights, corners, strict=True)
    ]
    index, boxes = projected_boxes(mapped, frame)
    keep = np.zeros(len(lights), dtype=bool)
    keep[index] = True
    clipped = np.zeros((len(lights), 4))
    clipped[index] = np.clip(boxes, 0.0, [width_px, height_px, width_px, height_px])
    distance = np.linalg.norm(pose[:3, 3] - corners.mean(axis=1), axis=1)
    keep &= (distance <= max_distance_m) & (clipped[:, 3] - clipped[:, 1] >= min_h)
    visible = np.full(len(lights), np.nan)
    if frame.depth_m is not None:  # the share of face points inside the image that the depth shows
        face_uv, face_z = project(light_face_points(lights), frame.K, pose)
        col, row = np.floor(face_uv[..., 0]).astype(int), np.floor(face_uv[..., 1]).astype(int)
        inside = (face_z > NEAR_CLIP_M) & (col >= 0) & (col < width_px) & (row >= 0) & (row < height_px)
        seen_depth = frame.depth_m[np.clip(row, 0, height_px - 1), np.clip(col, 0, width_px - 1)]
        seen = inside & (face_z <= seen_depth + DEPTH_TOL_M + DEPTH_TOL_FRACTION * face_z)
        visible = seen.sum(axis=1) / np.maximum(inside.sum(axis=1), 1)
        keep &= visible > 0
    lamp_uv, lamp_z = project(lamp_centres(lights, states)[:, None], frame.K, pose)
    lamp_uv, lamp_z = lamp_uv[:, 0], lamp_z[:, 0]
    lamp_visible = (lamp_z > NEAR_CLIP_M) & (lamp_uv >= 0).all(axis=1)
    lamp_visible &= (lamp_uv[:, 0] < width_px) & (lamp_uv[:, 1] < height_px)
    if frame.depth_m is not None:
        col = np.clip(np.nan_to_num(lamp_uv[:, 0]), 0, width_px - 1).astype(int)
        row = np.clip(np.nan_to_num(lamp_uv[:, 1]), 0, height_px - 1).astype(int)
        lamp_visible &= lamp_z <= frame.depth_m[row, col] + DEPTH_TOL_M + DEPTH_TOL_FRACTION * lamp_z
    out = []
    for i in np.flatnonzero(keep).tolist():
        state = states.get(lights[i].signal_id)
        if state is not None:
            box = tuple(clipped[i].tolist())
            light = LightBox(
                lights[i].signal_id, state, box, float(distance[i]), float(visible[i]), bool(lamp_visible[i])
            )
            out.append(light)
    return out


# ---------------------------------------------------------------------- stop signs, buildings, trees
def stop_sign_shapes(
    x_m: float, y_m: float, yaw_rad: float
) -> tuple[list[PlacedShape], list[PlacedShape], list[PlacedShape]]:
    """A stop sign at (x, y) facing `yaw_rad`: (post, red plate, white rim). The plate is about an
    octagon: three thin boxes crossed (a wide one, a tall one, a square between); the rim is the
    same a little larger just behind it."""
    place = partial(_local_to_world, x_m, y_m, yaw_rad)  # (forward, left, up) -> world
    q = yaw_quat(yaw_rad)
    pw = 2 * POLE_HALF_WIDTH_M * 0.7
    post = [PlacedShape("box", (pw, pw, STOP_POST_HEIGHT_M), place((0.0, 0.0, STOP_POST_HEIGHT_M / 2)), q)]

    def octagon(width_m: float, x_local: float) -> list[PlacedShape]:
        side = width_m * np.tan(np.pi / 8)  # a regular octagon's side
        middle = width_m / np.sqrt(2)  # the square that reaches the diagonal sides
        d = STOP_PLATE_DEPTH_M
        at = place((x_local, 0.0, STOP_POST_HEIGHT_M))
        return [
            PlacedShape("box", (d, a, b), at, q)
            for a, b in ((width_m, side), (side, width_m), (middle, middle))
        ]

    plate = octagon(STOP_PLATE_WIDTH_M, 0.6 * POLE_HALF_WIDTH_M + STOP_PLATE_DEPTH_M / 2)
    rim = octagon(STOP_PLATE_WIDTH_M + 2 * STOP_RIM_M, 0.6 * POLE_HALF_WIDTH_M)
    return post, plate, rim


def building_shapes(
    footprints: Sequence[Sequence[float]], rng: np.random.Generator, windows: bool = False
) -> list[tuple[tuple, list[PlacedShape]]]:
    """Boxes of buildings, footprints (x, y, size_x, size_y, height) (centre, axis-aligned sizes)
    or (x, y, yaw, size_x, size_y, height) (sizes along the building's own axes) [m, rad], each with
    a façade colour drawn from `rng`, and with `windows` a band of dark windows per floor on every
    side. Returns [(rgba, shapes), ...] per colour.

    TinyRenderer's cost grows with the pixels drawn, overdraw included: the window bands about
    double the cost of the buildings (measured: 30 buildings along a street, 6.9 ms a 320 x 192
    frame without, 12.5 ms with, against 2.1 ms for no building)."""
    by_colour: dict[int, list[PlacedShape]] = {k: [] for k in range(len(FACADE_RGBA))}
    window_bands: list[PlacedShape] = []
    colours = rng.integers(len(FACADE_RGBA), size=len(footprints))
    for footprint, colour in zip(footprints, colours.tolist(), strict=True):
        x, y, yaw, sx, sy, h = footprint if len(footprint) == 6 else (*footprint[:2], 0.0, *footprint[2:])
        q = yaw_quat(yaw)
        by_colour[colour].append(PlacedShape("box", (sx, sy, h), (x, y, h / 2), q))
        band = WINDOW_BAND_FRACTION * FLOOR_HEIGHT_M
        for k in range(int(h // FLOOR_HEIGHT_M) if windows else 0):
            z = (k + 0.55) * FLOOR_HEIGHT_M
            window_bands.append(PlacedShape("box", (sx + 2 * WINDOW_PROUD_M, 0.85 * sy, band), (x, y, z), q))
            window_bands.append(PlacedShape("box", (0.85 * sx, sy + 2 * WINDOW_PROUD_M, band), (x, y, z), q))
    groups = [(FACADE_RGBA[k], shapes) for k, shapes in by_colour.items() if shapes]
    return [*groups, (WINDOW_RGBA, window_bands)] if window_bands else groups


def tree_shapes(
    positions: Sequence[Sequence[float]], rng: np.random.Generator
) -> list[tuple[tuple, list[PlacedShape]]]:
    """Trees at [(x, y), ...]: a trunk and a crown (an upright cylinder) of sizes and greens drawn
    from `rng`. Returns [(rgba, shapes), ...] per colour."""
    n = len(positions)
    trunk_h = rng.uniform(*TRUNK_HEIGHT_M, size=n)
    crown_r = rng.uniform(*CROWN_RADIUS_M, size=n)
    green = rng.integers(len(CROWN_RGBA), size=n)
    trunks, crowns = [], {k: [] for k in range(len(CROWN_RGBA))}
    for (x, y), h, r, g in zip(positions, trunk_h.tolist(), crown_r.tolist(), green.tolist(), strict=True):
        crown_h = CROWN_HEIGHT_FRACTION * r
        trunks.append(
            PlacedShape("cylinder", (TRUNK_RADIUS_M, h + 0.3 * crown_h, 0.0), (x, y, (h + 0.3 * crown_h) / 2))
        )
        crowns[g].append(PlacedShape("cylinder", (r, crown_h, 0.0), (x, y, h + crown_h / 2)))
    groups = [(TRUNK_RGBA, trunks)] + [(CROWN_RGBA[k], s) for k, s in crowns.items()]
    return [(rgba, shapes) for rgba, shapes in groups if shapes]


@dataclass(frozen=True)
class Props:
    """The static props of a town, as plain inputs.

    lights: LightPose or (x, y, yaw, signal_id[, arm_m]) tuples. stop_signs: (x, y, yaw) [m, rad].
    buildings: (x, y, size_x, size_y, height) [m], axis-aligned, or (x, y, yaw, size_x, size_y,
    height) [m, rad]. trees: (x, y) [m].
    building_windows: bands of windows on the buildings (costly with TinyRenderer, see
    `building_shapes`).
    """

    lights: tuple = ()
    stop_signs: tuple = ()
    buildings: tuple = ()
    trees: tuple = ()
    building_windows: bool = False


def build_static_props(client: int, props: Props, rng: np.random.Generator) -> list[int]:
    """The stop signs, buildings and trees of `props` as a few batched bodies; their ids."""
    posts, plates, rims = [], [], []
    for x, y, yaw in props.stop_signs:
        post, plate, rim = stop_sign_shapes(x, y, yaw)
        posts += post
        plates += plate
        rims += rim
    groups = [
        (POLE_RGBA, posts),
        (STOP_PLATE_RGBA, plates),
        (STOP_RIM_RGBA, rims),
        *building_shapes(props.buildings, rng, props.building_windows),
        *tree_shapes(props.trees, rng),
    ]
    body, _ = batched_body(client, [(rgba, shapes) for rgba, shapes in groups if shapes])
    return [body] if body >= 0 else []

"""The ground the camera sees, as a top-down texture of the map.

The world is flat (the ground is the plane z = 0). Rasterising a ground and road mesh every frame
cost TinyRenderer most of its time (large triangles, many behind the camera), so the world keeps a
top-down texture of the map instead (`GroundTexture`): ground with seeded variation, asphalt, solid
edge lines and dashed lane separators, lit once by the world's light (Lambert with the up normal, as
PyBullet's TinyRenderer lights an upward face), with mipmaps. `sim.world.ground_shader.GroundShader`
draws the camera's view of it; PyBullet draws only the actors.

Texture coordinates: the texture's axes follow the road's principal direction (a tighter box
than the world axes for a road that runs diagonally or bends), `GroundTexture.world_to_px` maps
world (x, y) [m] to level-0 texel coordinates (texel (row i, column j) covers [j, j + 1) x [i, i + 1)),
texels are `m_per_px` wide, and each texel of level l + 1 is the mean of the 2 x 2 texels of level l
it covers (mipmaps), so level l's coordinates are level 0's / 2^l.

Memory: a 0.1 m texel map of a 900 m road with a bend is ~15 M texels, ~60 MB with its mipmaps
(`TEXTURE_MAX_PIXELS` caps it), built in ~0.1-0.3 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from decision.route import Road

# Road paint: the dimensions of the map's markings.
SHOULDER_M = 0.5  # asphalt beyond the edge line on each side [m]
LINE_WIDTH_M = 0.25  # painted line width [m]
DASH_LENGTH_M = 3.0  # dashed lane separator: painted length [m]
DASH_GAP_M = 6.0  # dashed lane separator: gap between dashes [m]
ROAD_SAMPLE_SPACING_M = 1.0  # spacing of the road outline polylines along s [m]

# Texture.
TEXTURE_M_PER_PX = 0.1  # finest texel size [m]
TEXTURE_MAX_PIXELS = 30_000_000  # larger maps get coarser texels
TEXTURE_MARGIN_M = 25.0  # the texture reaches this far beyond the asphalt; farther: mean ground colour
PYRAMID_LEVELS = 3  # level 0 plus two mipmap levels
SUBPIXEL_BITS = 3  # cv2.fillPoly vertex precision: 1/8 texel
GROUND_PATCH_M = 6.0  # size of the ground's coarse light/dark patches [m]
GROUND_GRAIN_M = 0.4  # size of its fine grain [m]
GROUND_PATCH_STD = 0.07  # relative brightness variation of the patches
GROUND_GRAIN_STD = 0.05  # relative brightness variation of the grain
# Paint pieces the camera draws as polygons near it (see sim.world.ground_shader).
NEAR_PAINT_PIECE_M = 1.0  # the paint is drawn in pieces at most this long [m]
NEAR_PAINT_COVER_M = 0.25  # the cover is this much larger on every side [m] (the texture blur reaches 0.2 m)


def lane_boundary_offsets_m(road: Road) -> np.ndarray:
    """Lateral offsets (lane_count + 1,) of the painted lines' centres, right edge first [m]."""
    return np.arange(road.lane_count + 1) * road.lane_width_m - road.half_width_m


@dataclass(frozen=True)
class RoadPaint:
    """The road's asphalt and paint as world polygons [m].

    surface: (P, 2) outline of the asphalt, `SHOULDER_M` beyond the outer lines, s from 0 to the
    road's length. solid_lines: two (P, 2) outlines, the edge lines on the outer lane boundaries.
    dashes: (Q, 4, 2) quads on the boundaries between lanes, `DASH_LENGTH_M` long every
    `DASH_LENGTH_M + DASH_GAP_M` from s = 0. Lines are `LINE_WIDTH_M` wide, centred on
    `lane_boundary_offsets_m`.
    """

    surface: np.ndarray
    solid_lines: tuple[np.ndarray, np.ndarray]
    dashes: np.ndarray


def road_paint(road: Road) -> RoadPaint:
    """The asphalt and painted lines of `road` in world coordinates."""
    n = max(int(np.ceil(road.length_m / ROAD_SAMPLE_SPACING_M)), 1) + 1
    s = np.linspace(0.0, road.length_m, n)

    def polyline(s_m: np.ndarray, d_m: float) -> np.ndarray:
        x, y, _ = road.to_world(s_m, d_m)
        return np.stack([x, y], axis=-1)

    def band(d0_m: float, d1_m: float) -> np.ndarray:  # closed outline between two offsets
        return np.concatenate([polyline(s, d0_m), polyline(s, d1_m)[::-1]])

    edge = road.half_width_m + SHOULDER_M
    half = LINE_WIDTH_M / 2
    offsets = lane_boundary_offsets_m(road)
    s0 = np.arange(0.0, road.length_m - DASH_LENGTH_M, DASH_LENGTH_M + DASH_GAP_M)
    s1 = s0 + DASH_LENGTH_M
    dashes = [
        np.stack(
            [polyline(s0, d - half), polyline(s1, d - half), polyline(s1, d + half), polyline(s0, d + half)],
            1,
        )
        for d in offsets[1:-1]
    ]
    return RoadPaint(
        surface=band(-edge, edge),
        solid_lines=(
            band(offsets[0] - half, offsets[0] + half),
            band(offsets[-1] - half, offsets[-1] + half),
        ),
        dashes=np.concatenate(dashes) if dashes else np.zeros((0, 4, 2)),
    )


def paint_pieces(road: Road) -> tuple[np.ndarray, np.ndarray]:
    """The painted lines cut into quads at most `NEAR_PAINT_PIECE_M` long, corners (Q, 4, 2) in the
    world [m], and their covers (Q, 4, 2): `NEAR_PAINT_COVER_M` wider on both sides and longer at
    the ends of the dashes. Neither the pieces nor the covers overlap one another."""
    half, cover = LINE_WIDTH_M / 2, NEAR_PAINT_COVER_M
    offsets = lane_boundary_offsets_m(road)
    n = max(int(np.ceil(road.length_m / NEAR_PAINT_PIECE_M)), 1)
    s_solid = np.linspace(0.0, road.length_m, n + 1)[None]
    k = int(np.ceil(DASH_LENGTH_M / NEAR_PAINT_PIECE_M))
    s_dash = np.arange(0.0, road.length_m - DASH_LENGTH_M, DASH_LENGTH_M + DASH_GAP_M)
    s_dash = s_dash[:, None] + DASH_LENGTH_M * np.arange(k + 1) / k  # (dashes, k + 1) piece ends
    grow = np.zeros((len(s_dash), k + 1))
    grow[:, 0], grow[:, -1] = -cover, cover  # the covers reach beyond the ends of each dash
    rows = []  # (s0, s1, s0 of the cover, s1 of the cover, d) per piece
    for i, d in enumerate(offsets):
        s, g = (s_solid, 0 * s_solid) if i in (0, len(offsets) - 1) else (s_dash, grow)
        ends = (s[:, :-1], s[:, 1:], s[:, :-1] + g[:, :-1], s[:, 1:] + g[:, 1:], np.full(s[:, 1:].shape, d))
        rows.append(np.stack([e.ravel() for e in ends], axis=1))
    s0, s1, c0, c1, d = np.concatenate(rows).T

    def quads(start_m: np.ndarray, end_m: np.ndarray, half_width_m: float) -> np.ndarray:
        corners = [
            (start_m, -half_width_m),
            (end_m, -half_width_m),
            (end_m, half_width_m),
            (start_m, half_width_m),
        ]
        xy = [road.to_world(np.clip(sc, 0.0, road.length_m), d + dc)[:2] for sc, dc in corners]
        return np.stack([np.stack(c, -1) for c in xy], axis=1)

    return quads(s0, s1, half), quads(c0, c1, half + cover)


@dataclass(frozen=True)
class GroundTexture:
    """A top-down picture of the lit ground and road.

    levels: (H_l, W_l, 3) uint8 RGB images, level l with texels `m_per_px * 2**l` wide.
    world_to_px: (2, 3) affine map of world (x, y) [m] to level-0 texel coordinates (column, row),
    a rotation scaled by 1 / m_per_px plus an offset (see the module docstring). border_rgb: the
    colour off the texture (the mean ground colour), 0-255. road_rgb, line_rgb: the asphalt's and
    the paint's colours, 0-255. paint, paint_cover: `paint_pieces` of the road, which the shader
    draws sharp near the camera, where the texels are larger than the pixels. paint_rgb: (Q, 3)
    0-255 colour of each piece where the paint has several colours (a town's white and yellow);
    None: all are `line_rgb`.
    """

    levels: tuple[np.ndarray, ...]
    world_to_px: np.ndarray
    m_per_px: float
    border_rgb: tuple[float, float, float]
    road_rgb: tuple[float, float, float]
    line_rgb: tuple[float, float, float]
    paint: np.ndarray
    paint_cover: np.ndarray
    paint_rgb: np.ndarray | None = None

    def pixel(self, xy_m: np.ndarray, level: int = 0) -> np.ndarray:
        """Pixel coordinates (..., 2) as (column, row) of world points (..., 2) [m] on a level, in
        `cv2.remap`'s convention (integers at texel centres)."""
        a = self.world_to_px
        return (np.asarray(xy_m, dtype=float) @ a[:, :2].T + a[:, 2]) / 2**level - 0.5

    def sample(self, xy_m: np.ndarray, level: int = 0) -> np.ndarray:
        """Bilinear colours (..., 3) uint8 of world points (..., 2) [m] on one level."""
        uv = self.pixel(xy_m, level).astype(np.float32).reshape(-1, 1, 2)
        out = cv2.remap(
            self.levels[level],
            uv,
            None,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.border_rgb,
        )
        return out.reshape(*np.shape(xy_m)[:-1], 3)


def rgb255(rgb) -> np.ndarray:
    """Colour (3,) in [0, 1] (extra channels dropped) to 0-255 floats."""
    return np.clip(np.asarray(rgb, dtype=np.float64)[:3], 0.0, 1.0) * 255.0


def build_ground_texture(
    road: Road,
    ground_rgb,
    road_rgb,
    line_rgb,
    rng: np.random.Generator,
    max_pixels: int = TEXTURE_MAX_PIXELS,
) -> GroundTexture:
    """Draw the map from above: the ground, with patches and grain of brightness drawn from `rng`,
    the asphalt and the lines of `road_paint(road)`. Colours (3,) in [0, 1] are the lit colours.

    The texture covers the asphalt's bounding box plus `TEXTURE_MARGIN_M`, at `TEXTURE_M_PER_PX`
    per texel, coarser if that would exceed `max_pixels` texels.
    """
    paint = road_paint(road)
    rotation = principal_rotation(road.xy_m)  # the axes follow the road
    world_to_px, m_per_px, (width, height) = texture_frame(rotation, paint.surface, max_pixels)
    ground = rgb255(ground_rgb)
    image = ground_image(ground, width, height, m_per_px, rng)
    road_colour = tuple(float(c) for c in rgb255(road_rgb))
    line_colour = tuple(float(c) for c in rgb255(line_rgb))
    fill(image, world_to_px, [paint.surface], road_colour)
    fill(image, world_to_px, [*paint.solid_lines, *paint.dashes], line_colour)
    pieces, cover = paint_pieces(road)
    return GroundTexture(
        levels=mipmaps(image),
        world_to_px=world_to_px,
        m_per_px=m_per_px,
        border_rgb=tuple(float(c) for c in ground),
        road_rgb=road_colour,
        line_rgb=line_colour,
        paint=pieces,
        paint_cover=cover,
    )


def principal_rotation(xy_m: np.ndarray) -> np.ndarray:
    """The rotation (2, 2) from world axes to axes along the principal direction of points (M, 2)."""
    centre = xy_m - xy_m.mean(axis=0)
    axis = np.linalg.eigh(centre.T @ centre)[1][:, -1]
    c, s = float(axis[0]), float(axis[1])
    return np.array([[c, s], [-s, c]])


def texture_frame(
    rotation: np.ndarray, surface: np.ndarray, max_pixels: int
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Where the texture lies: its world-to-texel map (2, 3), its texel size [m] and its level-0
    size (width, height) [texels].

    The texture's axes are the world's turned by `rotation` (2, 2) (world -> texture axes), it
    covers the points `surface` (P, 2) plus TEXTURE_MARGIN_M, and its sides are a multiple of
    2^(levels - 1), so that every mipmap halves exactly (cv2's fast 2 x 2 mean).
    """
    surface = surface @ rotation.T
    lo = surface.min(axis=0) - TEXTURE_MARGIN_M
    hi = surface.max(axis=0) + TEXTURE_MARGIN_M
    area_m2 = float(np.prod(hi - lo))
    m = max(TEXTURE_M_PER_PX, float(np.sqrt(area_m2 / max_pixels)))
    block = 2 ** (PYRAMID_LEVELS - 1)
    width, height = (block * int(n) for n in np.ceil((hi - lo) / (m * block)))
    world_to_px = np.concatenate([rotation / m, -lo[:, None] / m], axis=1)
    return world_to_px, m, (width, height)


def ground_image(ground_rgb255: np.ndarray, width: int, height: int, m_per_px: float, rng) -> np.ndarray:
    """(height, width, 3) uint8 ground: coarse patches and fine grain of brightness, drawn at the
    grain's resolution and stretched to texels."""
    m = m_per_px
    grain_px = max(GROUND_GRAIN_M / m, 1.0)
    gw, gh = int(np.ceil(width / grain_px)) + 1, int(np.ceil(height / grain_px)) + 1
    patch_px = max(int(round(GROUND_PATCH_M / (grain_px * m))), 1)
    patches = rng.standard_normal((gh // patch_px + 2, gw // patch_px + 2), dtype=np.float32)
    shade = cv2.resize(patches, None, fx=patch_px, fy=patch_px, interpolation=cv2.INTER_CUBIC)[:gh, :gw]
    shade = GROUND_PATCH_STD * shade + GROUND_GRAIN_STD * rng.standard_normal((gh, gw), dtype=np.float32)
    small = np.clip((1.0 + shade[..., None]) * ground_rgb255.astype(np.float32), 0, 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def fill(image: np.ndarray, world_to_px: np.ndarray, polygons: list[np.ndarray], colour: tuple) -> None:
    """Fill world polygons (each (P, 2) [m]) into the level-0 `image`, anti-aliased."""
    scale = 2**SUBPIXEL_BITS
    pts = [
        np.round((poly @ world_to_px[:, :2].T + world_to_px[:, 2] - 0.5) * scale).astype(np.int32)
        for poly in polygons
    ]
    cv2.fillPoly(image, pts, colour, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)


def mipmaps(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """`image` and PYRAMID_LEVELS - 1 coarser levels, each texel the mean of 2 x 2 finer ones."""
    levels = [image]
    for _ in range(PYRAMID_LEVELS - 1):
        h, w = levels[-1].shape[:2]
        levels.append(cv2.resize(levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    return tuple(levels)

"""The ground of a town, as the same top-down `GroundTexture` the camera draws a road's from.

A town's map describes its paint as polygons (`MapPaint`): street surfaces and junction squares
(asphalt), sidewalks, kerb strips, white paint (lane lines, stop lines, crosswalk stripes) and
yellow centre lines. `build_town_ground_texture` draws them over the seeded ground with the helpers
of `sim.world.ground` (texture frame, fill, mipmaps), so `sim.world.ground_shader` shows a town as it
shows a road. The texture's axes are the world's (a town's streets run along x and y).

Near the camera the paint is drawn sharp as polygons (see `sim.world.ground_shader`): the white and
yellow quads are cut into pieces at most NEAR_PAINT_PIECE_M long, each with a cover of asphalt
colour NEAR_PAINT_COVER_M larger on every side that hides the texture's blurred paint. The covers
are asphalt-coloured, so paint should keep that far from a kerb (a stop line ends at the lane's
edge, crosswalk stripes short of the kerb). Paint polygons that are not quads are drawn only in the
texture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.world.ground import (
    NEAR_PAINT_COVER_M,
    NEAR_PAINT_PIECE_M,
    TEXTURE_MAX_PIXELS,
    GroundTexture,
    fill,
    ground_image,
    mipmaps,
    rgb255,
    texture_frame,
)

SIDEWALK_RGB = (0.6, 0.6, 0.57)  # light grey concrete
KERB_RGB = (0.72, 0.72, 0.69)  # a little lighter
YELLOW_RGB = (0.92, 0.72, 0.12)


@dataclass(frozen=True)
class MapPaint:
    """A town's ground as world polygons, each (P, 2) [m]: drawn in this order (later on top);
    `sim.world.town_paint.town_paint` makes one from a town."""

    asphalt: list[np.ndarray] = field(default_factory=list)
    sidewalk: list[np.ndarray] = field(default_factory=list)
    kerb: list[np.ndarray] = field(default_factory=list)
    white: list[np.ndarray] = field(default_factory=list)
    yellow: list[np.ndarray] = field(default_factory=list)


def outline_points(paint: MapPaint) -> np.ndarray:
    """(M, 2) every vertex of the surfaces (asphalt, sidewalks, kerbs): what the texture covers."""
    polys = [np.asarray(q, float).reshape(-1, 2) for q in (*paint.asphalt, *paint.sidewalk, *paint.kerb)]
    if not polys:
        raise ValueError("a town's paint needs at least one asphalt, sidewalk or kerb polygon")
    return np.concatenate(polys)


def quad_pieces(quads: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Paint quads (each (4, 2), corners in order) cut along their longer sides into pieces at most
    NEAR_PAINT_PIECE_M long: corners (Q, 4, 2) [m], and their covers (Q, 4, 2), NEAR_PAINT_COVER_M
    wider on both sides and longer at the quad's two ends."""
    pieces, covers = [], []
    c = NEAR_PAINT_COVER_M
    for quad in quads:
        q = np.asarray(quad, float).reshape(4, 2)
        if np.linalg.norm(q[1] - q[0]) < np.linalg.norm(q[2] - q[1]):
            q = q[[1, 2, 3, 0]]  # q[0] -> q[1] runs along the quad
        length = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
        n = max(int(np.ceil(length / NEAR_PAINT_PIECE_M)), 1)
        t = np.linspace(0.0, 1.0, n + 1)[:, None]
        near, far = q[0] + t * (q[1] - q[0]), q[3] + t * (q[2] - q[3])  # (n + 1, 2) the two long sides
        u = (q[1] - q[0]) / max(np.linalg.norm(q[1] - q[0]), 1e-12)  # along
        v = (q[3] - q[0]) / max(np.linalg.norm(q[3] - q[0]), 1e-12)  # across, near -> far side
        piece = np.stack([near[:-1], near[1:], far[1:], far[:-1]], axis=1)  # (n, 4, 2)
        grow = np.zeros((n, 4, 2))
        grow[:, [0, 1]] -= c * v
        grow[:, [2, 3]] += c * v
        grow[0, [0, 3]] -= c * u  # the quad's start
        grow[-1, [1, 2]] += c * u  # the quad's end
        pieces.append(piece)
        covers.append(piece + grow)
    if not pieces:
        return np.zeros((0, 4, 2)), np.zeros((0, 4, 2))
    return np.concatenate(pieces), np.concatenate(covers)


def build_town_ground_texture(
    paint: MapPaint,
    ground_rgb,
    asphalt_rgb,
    line_rgb,
    rng: np.random.Generator,
    sidewalk_rgb=SIDEWALK_RGB,
    kerb_rgb=KERB_RGB,
    yellow_rgb=YELLOW_RGB,
    max_pixels: int = TEXTURE_MAX_PIXELS,
) -> GroundTexture:
    """Draw a town from above: the ground with patches and grain of brightness drawn from `rng`,
    then the asphalt, sidewalks, kerbs, white and yellow paint of `paint`. Colours (3,) in [0, 1]
    are the lit colours (`line_rgb` is the white paint's).

    The texture covers the surfaces' bounding box plus TEXTURE_MARGIN_M at TEXTURE_M_PER_PX a
    texel, coarser if that would exceed `max_pixels` texels.
    """
    world_to_px, m_per_px, (width, height) = texture_frame(np.eye(2), outline_points(paint), max_pixels)
    ground = rgb255(ground_rgb)
    image = ground_image(ground, width, height, m_per_px, rng)
    colours = [
        tuple(float(c) for c in rgb255(rgb))
        for rgb in (asphalt_rgb, sidewalk_rgb, kerb_rgb, line_rgb, yellow_rgb)
    ]
    layers = (paint.asphalt, paint.sidewalk, paint.kerb, paint.white, paint.yellow)
    for polygons, colour in zip(layers, colours, strict=True):
        for polygon in polygons:  # one by one: a town's polygons overlap (one fill is even-odd)
            fill(image, world_to_px, [np.asarray(polygon, float).reshape(-1, 2)], colour)
    white, yellow = ([q for q in polys if np.shape(q) == (4, 2)] for polys in (paint.white, paint.yellow))
    (white_pieces, white_covers), (yellow_pieces, yellow_covers) = quad_pieces(white), quad_pieces(yellow)
    paint_rgb = np.array([colours[3]] * len(white_pieces) + [colours[4]] * len(yellow_pieces)).reshape(-1, 3)
    return GroundTexture(
        levels=mipmaps(image),
        world_to_px=world_to_px,
        m_per_px=m_per_px,
        border_rgb=tuple(float(c) for c in ground),
        road_rgb=colours[0],
        line_rgb=colours[3],
        paint=np.concatenate([white_pieces, yellow_pieces]),
        paint_cover=np.concatenate([white_covers, yellow_covers]),
        paint_rgb=paint_rgb,
    )

"""A town's ground: the texture has each paint colour where the map's polygons are, and the camera
draws the paint near it as the map has it (overlapping polygons included)."""

from __future__ import annotations

import numpy as np
import pytest

from decision.route import Road, Segment
from sim.world.camera import Camera, project
from sim.world.ground import NEAR_PAINT_COVER_M, NEAR_PAINT_PIECE_M, rgb255
from sim.world.town_ground import (
    KERB_RGB,
    SIDEWALK_RGB,
    YELLOW_RGB,
    MapPaint,
    build_town_ground_texture,
    quad_pieces,
)
from sim.world.world import LINE_RGBA, World

GROUND, ASPHALT, WHITE = (0.3, 0.45, 0.2), (0.3, 0.3, 0.31), LINE_RGBA[:3]


def rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def crossing() -> MapPaint:
    """Two streets crossing at the origin (their asphalt overlaps in the junction), a sidewalk and
    a kerb along the x street's right side, a white stop line and a double yellow centre line."""
    return MapPaint(
        asphalt=[rect(-60, 60, -4, 4), rect(-4, 4, -60, 60)],
        sidewalk=[rect(-60, -4.2, -6.7, -4.2)],
        kerb=[rect(-60, -4.2, -4.2, -4.0)],
        white=[rect(-9.0, -8.6, -3.7, -0.3)],
        yellow=[rect(-60, -9.0, -0.2, -0.08), rect(-60, -9.0, 0.08, 0.2)],
    )


def test_texture_has_each_colour_where_the_map_puts_it():
    tex = build_town_ground_texture(crossing(), GROUND, ASPHALT, WHITE, np.random.default_rng(0))
    expected = {  # a point well inside each polygon: its colour
        (-30.0, 2.0): ASPHALT,
        (0.0, 0.0): ASPHALT,  # the junction, where the two streets' asphalt overlaps
        (2.0, 40.0): ASPHALT,
        (-30.0, -5.5): SIDEWALK_RGB,
        (-30.0, -4.1): KERB_RGB,
        (-8.8, -2.0): WHITE,
        (-30.0, -0.14): YELLOW_RGB,
        (-30.0, 0.14): YELLOW_RGB,
    }
    xy = np.array(list(expected))
    got = tex.sample(xy).astype(float)
    want = np.array([rgb255(c) for c in expected.values()])
    assert np.abs(got - want).max() < 8.0
    assert tex.road_rgb == pytest.approx(tuple(rgb255(ASPHALT)))
    # Off the paint: the ground (its pattern varies the brightness a little).
    ground = tex.sample(np.array([[30.0, 30.0]])).astype(float)[0]
    assert np.abs(ground / rgb255(GROUND) - 1.0).max() < 0.35
    assert tex.m_per_px == pytest.approx(0.1)


def test_paint_quads_are_cut_into_short_pieces_with_larger_covers():
    quad = rect(-20.0, -9.0, -0.2, -0.08)
    pieces, covers = quad_pieces([quad, rect(-9.0, -8.6, -3.7, -0.3)])
    lengths = np.linalg.norm(pieces[:, 1] - pieces[:, 0], axis=1)
    assert lengths.max() <= NEAR_PAINT_PIECE_M + 1e-9
    assert pieces[:11, :, 0].min() == pytest.approx(-20.0) and pieces[:11, :, 0].max() == pytest.approx(-9.0)
    d1, d2 = pieces[:11, 2] - pieces[:11, 0], pieces[:11, 3] - pieces[:11, 1]  # diagonals
    area = 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    assert area.sum() == pytest.approx(11.0 * 0.12)  # they tile the quad
    c = NEAR_PAINT_COVER_M
    np.testing.assert_allclose(covers[0].min(0), [-20.0 - c, -0.2 - c])  # the start grows at its end
    np.testing.assert_allclose(covers[1].min(0), [pieces[1][:, 0].min(), -0.2 - c])  # the middle does not
    assert len(pieces) == 11 + 4  # the stop line is cut along its 3.4 m length


def test_a_town_world_draws_its_paint_near_the_camera(camera_config):
    """Forward view over the double yellow line: the gap between the lines is asphalt, the lines
    yellow (pieces and covers overlap here: each is drawn on its own)."""
    road_paint = crossing()
    road = Road([Segment("straight", 120.0)], 1, 4.0, 14.0, origin_xy_yaw=(-60.0, -2.0, 0.0))
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False, paint=road_paint) as world:
        camera = Camera(camera_config(), world)
        frame = camera.render(-40.0, -2.0, 0.0, 0.0, np.random.default_rng(0))
        lit = world.up_light_factor
        asphalt, yellow = rgb255(np.array(world.road_rgba[:3]) * lit), rgb255(np.array(YELLOW_RGB) * lit)
    points = np.array([[-34.0, 0.0, 0.0], [-34.0, -0.14, 0.0], [-34.0, 0.14, 0.0], [-34.0, -2.0, 0.0]])
    uv, z = project(points, frame.K, frame.cam_to_world)
    assert (z > 3.0).all() and (z < 10.0).all()  # near: drawn as polygons
    rgb = frame.rgb[uv[:, 1].astype(int), uv[:, 0].astype(int)].astype(float)
    assert np.abs(rgb[[0, 3]] - asphalt).max() < 10  # the gap and the lane
    assert np.abs(rgb[[1, 2]] - yellow).max() < 10  # the two lines

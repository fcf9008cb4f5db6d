"""What a town looks like from above, as world polygons [m], and what stands beside its streets.

`town_paint(town)` gives the surfaces and paint the ground texture is drawn from: asphalt (streets
and junction boxes), sidewalks (along the streets, rounded at junction corners, straight across
the open side of a T), kerbs, white paint (lane lines, stop lines, zebra crosswalks) and the yellow
double centre line. `roadside(town, rng)` places buildings and trees on the blocks, clear of every
street and sidewalk. Geometry only: sim/world builds the texture and the bodies from these.
"""

from __future__ import annotations

import math

import numpy as np

from decision.town import CORNER_RADIUS_M, CROSSWALK_WIDTH_M, KERB_WIDTH_M, SIDEWALK_WIDTH_M, Town
from sim.world.town_ground import MapPaint

LINE_WIDTH_M = 0.15
STOP_LINE_WIDTH_M = 0.4
CENTRE_GAP_M = 0.15  # between the two yellow lines
DASH_M, DASH_GAP_M = 3.0, 6.0
ZEBRA_STRIPE_M, ZEBRA_GAP_M = 0.5, 0.6
ARC_POINTS = 12
BUILDING_SETBACK_M = 2.0  # between the sidewalk and a building
BUILDING_DEPTH_M = (8.0, 16.0)
BUILDING_WIDTH_M = (8.0, 22.0)
BUILDING_HEIGHT_M = (5.0, 28.0)
TREE_SPACING_M = (9.0, 18.0)
TREE_OFFSET_M = 0.6  # from the sidewalk's outer edge, inwards
TREE_SIGHT_M = 30.0  # no tree this near a junction box (along its streets): the sight triangle


def _frame(origin, heading: float):
    """A function (along, lateral) -> world points, for a frame at `origin` with `heading`."""
    o = np.asarray(origin, float)
    u = np.array([math.cos(heading), math.sin(heading)])
    n = np.array([-u[1], u[0]])

    def to_world(along, lateral) -> np.ndarray:
        a, lat = np.broadcast_arrays(np.asarray(along, float), np.asarray(lateral, float))
        return o + a[..., None] * u + lat[..., None] * n

    return to_world


def _rect(to_world, a0: float, a1: float, l0: float, l1: float) -> np.ndarray:
    return to_world([a0, a1, a1, a0], [l0, l0, l1, l1])


def town_paint(town: Town) -> MapPaint:
    paint = MapPaint()
    hw = town.half_width_m
    for st in town.streets.values():
        _street(town, st.id, hw, paint)
    for n, h in town.half_size_m.items():
        if h > 0:
            _junction(town, n, h, hw, paint)
    return paint


def _street(town: Town, sid: int, hw: float, paint: MapPaint) -> None:
    st = town.streets[sid]
    a_xy, b_xy = town.nodes[st.a].xy_m, town.nodes[st.b].xy_m
    heading = math.atan2(b_xy[1] - a_xy[1], b_xy[0] - a_xy[0])
    to_world = _frame(a_xy, heading)
    a0, a1 = town.half_size_m[st.a], town.street_length_m(sid) - town.half_size_m[st.b]
    paint.asphalt.append(_rect(to_world, a0, a1, -hw, hw))
    for side in (-1, 1):
        paint.sidewalk.append(_rect(to_world, a0, a1, side * hw, side * (hw + SIDEWALK_WIDTH_M)))
        paint.kerb.append(_rect(to_world, a0, a1, side * hw, side * (hw + KERB_WIDTH_M)))
    # Stop lines and crosswalks at both ends; the centre line between the stop lines.
    start_stop = a0 + town.stop_setback_m(st.a, sid)
    end_stop = a1 - town.stop_setback_m(st.b, sid)
    for lat in (-CENTRE_GAP_M, CENTRE_GAP_M):
        paint.yellow.append(
            _rect(to_world, start_stop, end_stop, lat - LINE_WIDTH_M / 2, lat + LINE_WIDTH_M / 2)
        )
    w = town.lane_width_m
    if town.parking_m > 0:  # solid lines between the lanes and the parking lanes
        for side in (-1, 1):
            lat = side * town.lanes * w
            paint.white.append(
                _rect(to_world, start_stop, end_stop, lat - LINE_WIDTH_M / 2, lat + LINE_WIDTH_M / 2)
            )
    for k in range(1, town.lanes):  # dashed lines between the lanes of one direction
        for side in (-1, 1):
            lat = side * k * w
            for s in np.arange(start_stop, end_stop - DASH_M, DASH_M + DASH_GAP_M):
                paint.white.append(
                    _rect(to_world, s, s + DASH_M, lat - LINE_WIDTH_M / 2, lat + LINE_WIDTH_M / 2)
                )
    if len(town.arms[st.b]) >= 3:  # traffic a -> b stops before node b: the right half of the street
        paint.white.append(_rect(to_world, end_stop - STOP_LINE_WIDTH_M, end_stop, -hw, 0.0))
        if st.crosswalks:
            _zebra(paint, to_world, a1 - CROSSWALK_WIDTH_M, a1, hw)
    if len(town.arms[st.a]) >= 3:  # traffic b -> a stops before node a: the left half
        paint.white.append(_rect(to_world, start_stop, start_stop + STOP_LINE_WIDTH_M, 0.0, hw))
        if st.crosswalks:
            _zebra(paint, to_world, a0, a0 + CROSSWALK_WIDTH_M, hw)


def _zebra(paint: MapPaint, to_world, a0: float, a1: float, hw: float) -> None:
    """Stripes along the street across its whole width, between along a0 and a1."""
    pitch = ZEBRA_STRIPE_M + ZEBRA_GAP_M
    for lat in np.arange(-hw + ZEBRA_GAP_M / 2, hw - ZEBRA_STRIPE_M / 2, pitch):
        paint.white.append(_rect(to_world, a0 + 0.2, a1 - 0.2, lat, lat + ZEBRA_STRIPE_M))


def _junction(town: Town, n: int, h: float, hw: float, paint: MapPaint) -> None:
    """The box's asphalt; per corner a rounded sidewalk corner (both arms there) or a straight kerb
    across the side of a missing arm."""
    arms = town.arms[n]
    base = arms[0].heading_rad
    to_world = _frame(town.nodes[n].xy_m, base)
    paint.asphalt.append(_rect(to_world, -h, h, -h, h))
    present = {round(((arm.heading_rad - base) % (2 * math.pi)) / (math.pi / 2)) % 4 for arm in arms}
    for k in range(4):  # the side facing direction k x 90 degrees
        if k not in present:
            rot = _frame(town.nodes[n].xy_m, base + k * math.pi / 2)
            paint.sidewalk.append(_rect(rot, hw, h, -h, h))
            paint.kerb.append(_rect(rot, hw, hw + KERB_WIDTH_M, -h, h))
    theta = np.linspace(0.0, math.pi / 2, ARC_POINTS)
    for k in range(4):  # the corner between directions k and k + 1
        if k in present and (k + 1) % 4 in present:
            rot = _frame(town.nodes[n].xy_m, base + k * math.pi / 2)
            r = CORNER_RADIUS_M
            arc = np.stack([h - r * np.sin(theta), h - r * np.cos(theta)], axis=1)  # from (h, hw) to (hw, h)
            corner = np.concatenate([arc, [[h, h]]])
            paint.sidewalk.append(rot(corner[:, 0], corner[:, 1]))


def roadside(town: Town, rng: np.random.Generator) -> tuple[list[tuple], list[tuple[float, float]]]:
    """Buildings (x, y, yaw, size_x, size_y, height) [m, rad] in rows along both sides of every street,
    and trees (x, y) along the sidewalks' outer edges; nothing on a street, a sidewalk or a junction
    box, nor on another building, and no tree within TREE_SIGHT_M of a junction."""
    hw = town.half_width_m
    keep_out = hw + SIDEWALK_WIDTH_M + BUILDING_SETBACK_M
    buildings, trees, placed = [], [], []
    for sid in sorted(town.streets):
        st = town.streets[sid]
        a_xy, b_xy = town.nodes[st.a].xy_m, town.nodes[st.b].xy_m
        heading = math.atan2(b_xy[1] - a_xy[1], b_xy[0] - a_xy[0])
        to_world = _frame(a_xy, heading)
        a0 = town.half_size_m[st.a] + SIDEWALK_WIDTH_M + BUILDING_SETBACK_M
        a1 = town.street_length_m(sid) - town.half_size_m[st.b] - SIDEWALK_WIDTH_M - BUILDING_SETBACK_M
        for side in (-1, 1):
            along = a0
            while True:
                width, depth = rng.uniform(*BUILDING_WIDTH_M), rng.uniform(*BUILDING_DEPTH_M)
                if along + width > a1:
                    break
                centre = to_world(along + width / 2, side * (keep_out + depth / 2))
                footprint = _rect(to_world, along, along + width, side * keep_out, side * (keep_out + depth))
                if _clear(town, footprint, keep_out) and not any(_overlap(footprint, p) for p in placed):
                    placed.append(footprint)
                    buildings.append(
                        (
                            float(centre[0]),
                            float(centre[1]),
                            heading,
                            width,
                            depth,
                            rng.uniform(*BUILDING_HEIGHT_M),
                        )
                    )
                along += width + rng.uniform(1.0, 6.0)
            # No tree in a junction's sight triangle (its lights stay in view).
            t0 = a0 - BUILDING_SETBACK_M + (TREE_SIGHT_M if town.half_size_m[st.a] > 0 else 0.0)
            t1 = a1 + BUILDING_SETBACK_M - (TREE_SIGHT_M if town.half_size_m[st.b] > 0 else 0.0)
            t = t0 + rng.uniform(0.0, TREE_SPACING_M[0])
            while t < t1:
                xy = to_world(t, side * (hw + SIDEWALK_WIDTH_M - TREE_OFFSET_M))
                trees.append((float(xy[0]), float(xy[1])))
                t += rng.uniform(*TREE_SPACING_M)
    return buildings, trees


def _clear(town: Town, footprint: np.ndarray, keep_out: float) -> bool:
    """No corner or the centre of `footprint` within `keep_out` of a street's centre line or a box."""
    pts = np.concatenate([footprint, footprint.mean(axis=0, keepdims=True)])
    for st in town.streets.values():
        a, b = np.array(town.nodes[st.a].xy_m), np.array(town.nodes[st.b].xy_m)
        ab = b - a
        t = np.clip((pts - a) @ ab / (ab @ ab), 0.0, 1.0)
        if np.min(np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)) < keep_out - 1e-6:
            return False
    for n, h in town.half_size_m.items():
        if np.min(np.max(np.abs(pts - np.array(town.nodes[n].xy_m)), axis=1)) < h + SIDEWALK_WIDTH_M:
            return False
    return True


def _overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Whether two convex quadrilaterals overlap (separating axis test)."""
    for poly in (p, q):
        for i in range(len(poly)):
            edge = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, qa = p @ axis, q @ axis
            if pa.max() <= qa.min() or qa.max() <= pa.min():
                return False
    return True

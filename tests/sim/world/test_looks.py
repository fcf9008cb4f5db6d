"""Vehicle and pedestrian looks: every part stays inside the actor's box, and what PyBullet draws of
each vehicle type lies inside its ground-truth box."""

from __future__ import annotations

import numpy as np
import pytest

from sim.world.actor_shapes import (
    ACTOR_COLOUR,
    MAX_SHAPES_PER_LINK,
    PART_RGBA,
    VEHICLE_MODELS,
    Boxes,
    Cylinders,
    actor_parts,
)
from sim.world.camera import Camera, ground_truth_boxes
from sim.world.world import World

MODELS = (*VEHICLE_MODELS, "pedestrian", "cone", "barrier")
SCALES = (0.6, 1.0, 1.7)  # sizes tried: each of the models' usual sizes times these, per axis


def corners(part) -> np.ndarray:
    """(K, 8, 3) corners of the axis-aligned bounds of each shape of a part, worked out here from
    its fields (a cylinder lying along y is r, L/2, r; along x L/2, r, r)."""
    if isinstance(part, Boxes):
        c, h = np.array(part.centres_m), np.array(part.half_extents_m)
    else:
        r, half = np.array(part.radii_m), np.array(part.lengths_m) / 2
        xy = np.zeros((len(r), 2)) if part.xy_m is None else np.array(part.xy_m)
        c = np.column_stack([xy, part.z_centres_m])
        h = {
            "z": np.column_stack([r, r, half]),
            "y": np.column_stack([r, half, r]),
            "x": np.column_stack([half, r, r]),
        }[part.axis]
    signs = np.array([[a, b, d] for a in (-1, 1) for b in (-1, 1) for d in (-1, 1)])
    return c[:, None] + signs[None] * h[:, None]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scale", [(s, 1.0, 1.0) for s in SCALES] + [(1.0, s, s) for s in SCALES])
def test_every_part_stays_inside_the_actor_box(model, scale, model_sizes):
    length, width, height = np.array(model_sizes[model]) * scale
    parts = actor_parts(model, length, width, height)
    pts = np.concatenate([corners(part).reshape(-1, 3) for part in parts])
    eps = 1e-9
    assert (np.abs(pts[:, 0]) <= length / 2 + eps).all()
    assert (np.abs(pts[:, 1]) <= width / 2 + eps).all()
    assert (pts[:, 2] >= -eps).all() and (pts[:, 2] <= height + eps).all()
    assert pts[:, 2].max() == pytest.approx(height)  # up to the top: the labels' box height
    colours = [part.colour for part in parts]
    assert len(set(colours)) == len(colours)  # one part (one link) per colour
    assert all(c == ACTOR_COLOUR or c in PART_RGBA for c in colours)
    assert all(len(corners(part)) <= MAX_SHAPES_PER_LINK for part in parts)


@pytest.mark.parametrize("model", VEHICLE_MODELS)
def test_vehicles_stand_on_wheels_lying_across_them(model, model_sizes):
    parts = actor_parts(model, *model_sizes[model])
    tyres = next(part for part in parts if part.colour == "tyre")
    assert isinstance(tyres, Cylinders) and tyres.axis == "y"
    assert len(tyres.radii_m) == (6 if model == "truck" else 4)
    # On the ground: centre height = radius; pairs left and right of the middle.
    assert tyres.z_centres_m == pytest.approx(tyres.radii_m)
    assert sorted(np.sign(np.array(tyres.xy_m)[:, 1])) == [-1] * (len(tyres.radii_m) // 2) + [1] * (
        len(tyres.radii_m) // 2
    )
    glass = next(part for part in parts if part.colour == "cabin")
    assert len(glass.centres_m) >= 3  # sides and back (and front)
    assert {"headlight", "taillight"} <= {part.colour for part in parts}


def test_an_ambulance_carries_red_and_blue_beacons_on_its_roof(model_sizes):
    length, width, height = model_sizes["ambulance"]
    parts = {part.colour: part for part in actor_parts("ambulance", length, width, height)}
    for colour, side in (("beacon_red", 1), ("beacon_blue", -1)):
        top = corners(parts[colour]).reshape(-1, 3)
        assert top[:, 2].max() == pytest.approx(height) and top[:, 2].min() > 0.9 * height
        assert np.sign(top[:, 1].mean()) == side  # red on the left, blue on the right


def test_a_pedestrian_has_legs_a_torso_and_a_head(model_sizes):
    length, width, height = model_sizes["pedestrian"]
    legs, torso, head = actor_parts("pedestrian", length, width, height)
    assert (legs.colour, torso.colour, head.colour) == ("legs", ACTOR_COLOUR, "skin")
    assert len(legs.centres_m) == 2
    leg_y = sorted(c[1] for c in legs.centres_m)
    assert leg_y[0] < 0 < leg_y[1]  # one leg either side
    legs_top = max(c[2] + h[2] for c, h in zip(legs.centres_m, legs.half_extents_m, strict=True))
    torso_bottom = torso.centres_m[0][2] - torso.half_extents_m[0][2]
    torso_top = torso.centres_m[0][2] + torso.half_extents_m[0][2]
    head_bottom = head.z_centres_m[0] - head.lengths_m[0] / 2
    assert min(c[2] - h[2] for c, h in zip(legs.centres_m, legs.half_extents_m, strict=True)) == 0.0
    assert legs_top == pytest.approx(torso_bottom)
    assert head_bottom == pytest.approx(torso_top)
    assert head.z_centres_m[0] + head.lengths_m[0] / 2 == pytest.approx(height)


@pytest.mark.parametrize("renderer", ["tiny"])
def test_each_vehicle_type_is_drawn_inside_its_ground_truth_box(
    renderer, make_actors, camera_config, straight_road
):
    rows = [
        ("car", 14.0, -1.75),
        ("van", 24.0, 4.0),
        ("truck", 32.0, -7.5),
        ("bus", 45.0, 22.0),
        ("pedestrian", 9.0, -4.8),
    ]
    actors = make_actors(rows)
    actors.yaw_rad[:] = [0.0, 0.4, -0.3, 2.8, 1.0]
    with World(straight_road(200.0), 120.0, renderer, np.random.default_rng(0), randomise=False) as world:
        world.add_actors(actors)
        cam = Camera(camera_config(), world)
        frame = cam.render(0.0, -1.75, 0.0, 0.0, np.random.default_rng(0), with_segmentation=True)
        mask = cam.last_actor_mask
    boxes = {b.actor_index: b for b in ground_truth_boxes(frame, actors, 80.0)}
    assert sorted(boxes) == list(range(len(rows)))
    for i, box in boxes.items():
        rows_px, cols_px = np.nonzero(mask == i)
        assert box.visible_fraction > 0.95, rows[i][0]  # the scene: nothing hides another
        assert len(rows_px) > 30, rows[i][0]
        x0, y0, x1, y1 = box.box_xyxy
        tol = 1.0  # px: rasterisation at the box's edge
        assert cols_px.min() >= x0 - tol and cols_px.max() + 1 <= x1 + tol, rows[i][0]
        assert rows_px.min() >= y0 - tol and rows_px.max() + 1 <= y1 + tol, rows[i][0]
        # ... and fills it: a vehicle most of its area, a pedestrian (narrower than its box) its height.
        drawn_w, drawn_h = cols_px.max() + 1 - cols_px.min(), rows_px.max() + 1 - rows_px.min()
        assert drawn_h > 0.9 * (y1 - y0), rows[i][0]
        if rows[i][0] != "pedestrian":
            assert drawn_w * drawn_h > 0.7 * (x1 - x0) * (y1 - y0), rows[i][0]

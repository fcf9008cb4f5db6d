"""Actor looks: the parts of every model fill the actor's box, as the ground-truth boxes assume."""

import numpy as np
import pytest

from sim.world.actor_shapes import (
    ACTOR_COLOUR,
    MAX_SHAPES_PER_LINK,
    PART_RGBA,
    Boxes,
    actor_parts,
)

TRUCK_SIZE_M = (8.0, 2.5, 3.2)  # a model with no look of its own: a plain box


def extent(parts) -> np.ndarray:
    """(3, 2) min and max of x, y, z over all the parts' shapes."""
    lo, hi = [], []
    for part in parts:
        if isinstance(part, Boxes):
            centres, half = np.array(part.centres_m), np.array(part.half_extents_m)
        else:
            r = np.array(part.radii_m)
            centres = np.stack([np.zeros_like(r), np.zeros_like(r), part.z_centres_m], 1)
            half = np.stack([r, r, np.array(part.lengths_m) / 2], 1)
        lo.append((centres - half).min(0))
        hi.append((centres + half).max(0))
    return np.stack([np.min(lo, 0), np.max(hi, 0)], 1)


@pytest.mark.parametrize("model", ["car", "van", "pedestrian", "cone", "barrier", "truck"])
def test_parts_fill_the_actor_box_from_the_ground(model, model_sizes):
    length, width, height = {**model_sizes, "truck": TRUCK_SIZE_M}[model]
    parts = actor_parts(model, length, width, height)
    expected = [[-length / 2, length / 2], [-width / 2, width / 2], [0.0, height]]
    np.testing.assert_allclose(extent(parts), expected, atol=1e-12)
    colours = [part.colour for part in parts]
    assert len(set(colours)) == len(colours)  # one part (one link) per colour
    assert all(c == ACTOR_COLOUR or c in PART_RGBA for c in colours)


def test_a_vehicle_is_a_chassis_in_its_colour_under_a_cabin():
    chassis, cabin = actor_parts("car", 4.5, 1.8, 1.5)
    assert (chassis.colour, cabin.colour) == (ACTOR_COLOUR, "cabin")
    chassis_top = chassis.centres_m[0][2] + chassis.half_extents_m[0][2]
    cabin_bottom = cabin.centres_m[0][2] - cabin.half_extents_m[0][2]
    assert cabin_bottom == pytest.approx(chassis_top)
    assert cabin.half_extents_m[0][1] < chassis.half_extents_m[0][1]  # narrower
    assert cabin.centres_m[0][0] < 0.0  # set back


@pytest.mark.parametrize("length_m", [0.6, 3.0, 40.0])
def test_barrier_stripes_alternate_along_its_whole_length(length_m):
    red, white = actor_parts("barrier", length_m, 0.4, 1.0)
    assert (red.colour, white.colour) == ("barrier", "stripe")
    assert 1 <= len(white.centres_m) <= len(red.centres_m) <= MAX_SHAPES_PER_LINK
    xs = np.sort([c[0] for c in red.centres_m + white.centres_m])
    pieces = [2 * h[0] for h in red.half_extents_m + white.half_extents_m]
    assert sum(pieces) == pytest.approx(length_m)
    red_x = {c[0] for c in red.centres_m}
    assert [x in red_x for x in xs] == [k % 2 == 0 for k in range(len(xs))]  # red first, then alternating

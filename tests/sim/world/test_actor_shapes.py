"""Actor looks: the parts of every model fill the actor's box, as the ground-truth boxes assume."""

import numpy as np
import pytest

from sim.world.actor_shapes import (
    ACTOR_COLOUR,
    MAX_SHAPES_PER_LINK,
    PART_RGBA,
    actor_parts,
    part_bounds,
)

CRATE_SIZE_M = (8.0, 2.5, 3.2)  # a model with no look of its own: a plain box


def extent(parts) -> np.ndarray:
    """(3, 2) min and max of x, y, z over all the parts' shapes."""
    bounds = [part_bounds(part) for part in parts]
    return np.stack([np.min([lo for lo, _ in bounds], 0), np.max([hi for _, hi in bounds], 0)], 1)


@pytest.mark.parametrize("model", ["car", "van", "truck", "bus", "cone", "barrier", "crate"])
def test_parts_fill_the_actor_box_from_the_ground(model, model_sizes):
    length, width, height = {**model_sizes, "crate": CRATE_SIZE_M}[model]
    parts = actor_parts(model, length, width, height)
    expected = [[-length / 2, length / 2], [-width / 2, width / 2], [0.0, height]]
    np.testing.assert_allclose(extent(parts), expected, atol=1e-12)
    colours = [part.colour for part in parts]
    assert len(set(colours)) == len(colours)  # one part (one link) per colour
    assert all(c == ACTOR_COLOUR or c in PART_RGBA for c in colours)


def test_a_car_is_a_chassis_in_its_colour_under_a_cabin():
    body = next(part for part in actor_parts("car", 4.5, 1.8, 1.5) if part.colour == ACTOR_COLOUR)
    (chassis_half, cabin_half), (chassis, cabin) = body.half_extents_m, body.centres_m
    assert cabin[2] - cabin_half[2] == pytest.approx(chassis[2] + chassis_half[2])  # on the chassis
    assert cabin[2] + cabin_half[2] == pytest.approx(1.5)  # up to the roof
    assert cabin_half[1] < chassis_half[1]  # narrower
    assert cabin[0] < 0.0  # set back


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

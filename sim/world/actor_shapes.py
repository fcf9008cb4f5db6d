"""What an actor looks like: the coloured boxes and cylinders of each actor model, as data.

The body frame is the actor's centre on the ground, x forward, z up. The parts fill the actor's
box, length x width x height from z = 0, which is what the ground-truth boxes assume
(`sim.world.camera`). There is one part per colour because the EGL renderer ignores per-shape
colours: `sim.world.world.World` makes each part one link of the actor's body and tints the link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Colours (RGBA in [0, 1]) of the parts that do not take the actor's own colour.
CABIN_RGBA = (0.12, 0.14, 0.17, 1.0)  # tinted glass
CONE_RGBA = (1.0, 0.42, 0.0, 1.0)
STRIPE_RGBA = (0.95, 0.95, 0.95, 1.0)
BARRIER_RGBA = (0.85, 0.08, 0.06, 1.0)
ACTOR_COLOUR = "actor"  # a part's colour name: the actor's own colour
PART_RGBA = {"cabin": CABIN_RGBA, "cone": CONE_RGBA, "stripe": STRIPE_RGBA, "barrier": BARRIER_RGBA}

# Cars and vans: a chassis box in the actor's colour, a cabin box on top.
CHASSIS_HEIGHT_FRACTION = {"car": 0.55, "van": 0.5}  # of the actor height; the cabin sits on top
CABIN_LENGTH_FRACTION = {"car": 0.5, "van": 0.72}  # of the actor length
CABIN_OFFSET_FRACTION = {"car": -0.06, "van": -0.1}  # cabin centre behind the body centre, of the length
CABIN_WIDTH_FRACTION = 0.9  # of the actor width
# Cones: a wide foot, two narrowing orange pieces, a white band between them.
CONE_FOOT_HEIGHT_FRACTION = 0.1  # of the cone height
CONE_PIECE_HEIGHT_FRACTION = 0.3  # each orange piece and the band, of the cone height
CONE_LOWER_RADIUS_FRACTION = 0.6  # of the foot radius
CONE_UPPER_RADIUS_FRACTION = 0.35
CONE_STRIPE_RADIUS_FRACTION = 0.48
# Barriers: red and white stripes along the length.
BARRIER_STRIPE_M = 0.5  # length of one red or white stripe [m] (longer on long barriers)
MAX_SHAPES_PER_LINK = 16  # PyBullet's limit for createVisualShapeArray


@dataclass(frozen=True)
class Boxes:
    """Boxes of one colour: `colour` is ACTOR_COLOUR or a key of PART_RGBA."""

    colour: str
    half_extents_m: list[list[float]]  # (K, 3) half length, half width, half height
    centres_m: list[list[float]]  # (K, 3) in the body frame


@dataclass(frozen=True)
class Cylinders:
    """Upright cylinders of one colour on the body's z axis."""

    colour: str
    radii_m: list[float]  # (K,)
    lengths_m: list[float]  # (K,) heights
    z_centres_m: list[float]  # (K,) heights of their centres


Part = Boxes | Cylinders


def actor_parts(model: str, length_m: float, width_m: float, height_m: float) -> list[Part]:
    """The parts of an actor `model` of that size [m], one per colour; a plain box in the actor's
    colour for a model without a look of its own."""
    if model in ("car", "van"):
        return vehicle_parts(model, length_m, width_m, height_m)
    if model == "pedestrian":
        return [Cylinders(ACTOR_COLOUR, [min(length_m, width_m) / 2], [height_m], [height_m / 2])]
    if model == "cone":
        return cone_parts(length_m, width_m, height_m)
    if model == "barrier":
        return barrier_parts(length_m, width_m, height_m)
    return [Boxes(ACTOR_COLOUR, [[length_m / 2, width_m / 2, height_m / 2]], [[0.0, 0.0, height_m / 2]])]


def vehicle_parts(model: str, length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A car or van: the chassis in the actor's colour and a narrower cabin of tinted glass on it."""
    h_chassis = CHASSIS_HEIGHT_FRACTION[model] * height_m
    cabin_len = CABIN_LENGTH_FRACTION[model] * length_m
    cabin_x = CABIN_OFFSET_FRACTION[model] * length_m
    chassis = Boxes(ACTOR_COLOUR, [[length_m / 2, width_m / 2, h_chassis / 2]], [[0.0, 0.0, h_chassis / 2]])
    cabin = Boxes(
        "cabin",
        [[cabin_len / 2, CABIN_WIDTH_FRACTION * width_m / 2, (height_m - h_chassis) / 2]],
        [[cabin_x, 0.0, (height_m + h_chassis) / 2]],
    )
    return [chassis, cabin]


def cone_parts(length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A traffic cone: the foot and two narrowing orange pieces, a white band between the pieces."""
    r = min(length_m, width_m) / 2
    h_foot, h_piece = CONE_FOOT_HEIGHT_FRACTION * height_m, CONE_PIECE_HEIGHT_FRACTION * height_m
    orange = Cylinders(
        "cone",
        [r, CONE_LOWER_RADIUS_FRACTION * r, CONE_UPPER_RADIUS_FRACTION * r],
        [h_foot, h_piece, h_piece],
        [h_foot / 2, h_foot + h_piece / 2, h_foot + 2.5 * h_piece],
    )
    band = Cylinders("stripe", [CONE_STRIPE_RADIUS_FRACTION * r], [h_piece], [h_foot + 1.5 * h_piece])
    return [orange, band]


def barrier_parts(length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A barrier: the actor's box in red and white stripes of about BARRIER_STRIPE_M along its length."""
    n = max(int(round(length_m / BARRIER_STRIPE_M)), 2)
    n = min(n, 2 * MAX_SHAPES_PER_LINK)  # each colour is one link
    piece = length_m / n
    xs = -length_m / 2 + piece * (np.arange(n) + 0.5)  # stripe centres, red first
    half = [piece / 2, width_m / 2, height_m / 2]
    return [
        Boxes(colour, [half] * len(xs[k::2]), [[float(x), 0.0, height_m / 2] for x in xs[k::2]])
        for k, colour in enumerate(("barrier", "stripe"))
    ]

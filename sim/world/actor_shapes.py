"""What an actor looks like: the coloured boxes and cylinders of each actor model, as data.

The body frame is the actor's centre on the ground, x forward, z up. The parts stay inside the
actor's box, length x width x height from z = 0, and vehicles, cones and barriers fill it, which is
what the ground-truth boxes assume (`sim.world.camera`). There is one part per colour because the
EGL renderer ignores per-shape colours: `sim.world.world.World` makes each part one link of the
actor's body and tints the link. A part holds at most MAX_SHAPES_PER_LINK shapes (PyBullet's limit).

Vehicles (car, van, truck, bus, ambulance): a body in the actor's colour on four or six dark
wheels, dark glass on the cabin's sides, front and back, head and tail lights; an ambulance is a
white van with red and blue beacons on its roof. The car keeps the silhouette the
shipped detector was trained on: a chassis and a narrower cabin set back on it. Pedestrians: two
legs, a torso with arms in the actor's colour, and a head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Colours (RGBA in [0, 1]) of the parts that do not take the actor's own colour.
CABIN_RGBA = (0.12, 0.14, 0.17, 1.0)  # tinted glass
CONE_RGBA = (1.0, 0.42, 0.0, 1.0)
STRIPE_RGBA = (0.95, 0.95, 0.95, 1.0)
BARRIER_RGBA = (0.85, 0.08, 0.06, 1.0)
TYRE_RGBA = (0.05, 0.05, 0.06, 1.0)
FRAME_RGBA = (0.16, 0.16, 0.17, 1.0)  # a truck's chassis frame
CARGO_RGBA = (0.86, 0.86, 0.84, 1.0)  # a truck's cargo box
HEADLIGHT_RGBA = (0.98, 0.96, 0.86, 1.0)
TAILLIGHT_RGBA = (0.75, 0.04, 0.04, 1.0)
BEACON_RED_RGBA = (0.95, 0.05, 0.05, 1.0)  # an emergency vehicle's roof beacons
BEACON_BLUE_RGBA = (0.1, 0.25, 1.0, 1.0)
LEGS_RGBA = (0.16, 0.18, 0.26, 1.0)  # trousers
SKIN_RGBA = (0.85, 0.65, 0.52, 1.0)
ACTOR_COLOUR = "actor"  # a part's colour name: the actor's own colour
PART_RGBA = {
    "cabin": CABIN_RGBA,
    "cone": CONE_RGBA,
    "stripe": STRIPE_RGBA,
    "barrier": BARRIER_RGBA,
    "tyre": TYRE_RGBA,
    "frame": FRAME_RGBA,
    "cargo": CARGO_RGBA,
    "headlight": HEADLIGHT_RGBA,
    "taillight": TAILLIGHT_RGBA,
    "beacon_red": BEACON_RED_RGBA,
    "beacon_blue": BEACON_BLUE_RGBA,
    "legs": LEGS_RGBA,
    "skin": SKIN_RGBA,
}
VEHICLE_MODELS = ("car", "van", "truck", "bus", "ambulance")

# Cars and vans: a chassis box in the actor's colour, a cabin box on top.
CHASSIS_HEIGHT_FRACTION = {"car": 0.55, "van": 0.5}  # of the actor height; the cabin sits on top
CABIN_LENGTH_FRACTION = {"car": 0.5, "van": 0.72}  # of the actor length
CABIN_OFFSET_FRACTION = {"car": -0.06, "van": -0.1}  # cabin centre behind the body centre, of the length
CABIN_WIDTH_FRACTION = 0.9  # of the actor width
BEACON_HEIGHT_M = 0.15  # an emergency vehicle's bar of beacons on its roof ...
BEACON_DEPTH_M = 0.3  # ... this deep, at the front of the roof
# Trucks: a cab at the front, a cargo box behind it on a frame.
TRUCK_CAB_LENGTH_FRACTION = 0.24  # of the actor length
TRUCK_CAB_HEIGHT_FRACTION = 0.82  # of the actor height
TRUCK_CAB_GAP_FRACTION = 0.02  # between the cab and the cargo box, of the length
TRUCK_CARGO_BOTTOM_FRACTION = 0.3  # of the actor height
# Wheels: radius a fraction of the height (at most 1/8 of the length), axles at fractions of the
# length from the centre (+ forward), tyres a fraction of the width wide.
WHEEL_RADIUS_FRACTION = {"car": 0.21, "van": 0.16, "truck": 0.15, "bus": 0.15}
AXLE_FRACTIONS = {"car": (0.3, -0.3), "van": (0.32, -0.3), "truck": (0.36, -0.2, -0.35), "bus": (0.29, -0.25)}
TYRE_WIDTH_FRACTION = 0.12
CLEARANCE_FRACTION = 0.5  # the body's underside above the ground, of the wheel radius
# Glass and lights: thin boxes on the faces of the body.
PROUD_M = 0.01  # glass, lamps and tyres stand this far out of the body's faces (tight boxes) [m]
PILLAR_M = 0.1  # window frame (pillars, roof edge) left in the body's colour [m]
LIGHT_WIDTH_FRACTION = 0.18  # of the actor width
LIGHT_INSET_FRACTION = 0.08  # from the side, of the actor width
LIGHT_HEIGHT_M = 0.12
# Pedestrians, as fractions of the actor's width (across) and height (up).
LEG_HEIGHT_FRACTION = 0.47
LEG_HALF_SIZE_FRACTION = (0.13, 0.12)  # half depth and half width of a leg, of the width
LEG_OFFSET_FRACTION = 0.17  # legs' centres beside the middle, of the width
TORSO_TOP_FRACTION = 0.86
TORSO_HALF_SIZE_FRACTION = (0.22, 0.3)  # half depth and half width, of the width
ARM_HALF_SIZE_FRACTION = (0.09, 0.09)
ARM_LENGTH_FRACTION = 0.3  # of the height, hanging from the shoulders
HEAD_RADIUS_FRACTION = 0.2  # of the width
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
    """Cylinders of one colour, upright on the body's z axis unless told otherwise.

    xy_m: (K, 2) centres in x and y, or None for the z axis. axis: the axis the cylinders lie
    along, "z" (upright), "y" (across the body: wheels) or "x" (along it: lamps facing forward).
    """

    colour: str
    radii_m: list[float]  # (K,)
    lengths_m: list[float]  # (K,) along the axis
    z_centres_m: list[float]  # (K,) heights of their centres
    xy_m: list[list[float]] | None = None
    axis: str = "z"

    def centres(self) -> np.ndarray:
        """(K, 3) centres in the body frame."""
        xy = np.zeros((len(self.radii_m), 2)) if self.xy_m is None else np.array(self.xy_m, float)
        return np.concatenate([xy, np.array(self.z_centres_m, float)[:, None]], axis=1)

    def half_sizes(self) -> np.ndarray:
        """(K, 3) half extents along x, y and z."""
        r, half = np.array(self.radii_m, float), np.array(self.lengths_m, float) / 2
        along = {"x": 0, "y": 1, "z": 2}[self.axis]
        out = np.stack([r, r, r], axis=1)
        out[:, along] = half
        return out


Part = Boxes | Cylinders


def part_bounds(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """The (3,) lowest and highest corner of a part's shapes in the body frame [m]."""
    if isinstance(part, Boxes):
        centres, half = np.array(part.centres_m, float), np.array(part.half_extents_m, float)
    else:
        centres, half = part.centres(), part.half_sizes()
    return (centres - half).min(axis=0), (centres + half).max(axis=0)


def actor_parts(model: str, length_m: float, width_m: float, height_m: float) -> list[Part]:
    """The parts of an actor `model` of that size [m], one per colour; a plain box in the actor's
    colour for a model without a look of its own."""
    if model in ("car", "van"):
        return vehicle_parts(model, length_m, width_m, height_m)
    if model == "truck":
        return truck_parts(length_m, width_m, height_m)
    if model == "bus":
        return bus_parts(length_m, width_m, height_m)
    if model == "ambulance":
        return ambulance_parts(length_m, width_m, height_m)
    if model == "pedestrian":
        return pedestrian_parts(length_m, width_m, height_m)
    if model == "cone":
        return cone_parts(length_m, width_m, height_m)
    if model == "barrier":
        return barrier_parts(length_m, width_m, height_m)
    return [Boxes(ACTOR_COLOUR, [[length_m / 2, width_m / 2, height_m / 2]], [[0.0, 0.0, height_m / 2]])]


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> tuple[list, list]:
    """(half extents, centre) of the box [x0, x1] x [y0, y1] x [z0, z1]."""
    return [(x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2], [(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2]


def _boxes(colour: str, boxes: list[tuple[float, float, float, float, float, float]]) -> Boxes:
    """One part of boxes given by their bounds (x0, x1, y0, y1, z0, z1) [m]."""
    pairs = [_box(*b) for b in boxes]
    return Boxes(colour, [h for h, _ in pairs], [c for _, c in pairs])


def wheels(model: str, length_m: float, width_m: float, height_m: float) -> Cylinders:
    """The tyres: one pair per axle of AXLE_FRACTIONS[model], lying across the body, touching the
    ground and the sides of the actor's box."""
    r = min(WHEEL_RADIUS_FRACTION[model] * height_m, length_m / 8)
    tyre = TYRE_WIDTH_FRACTION * width_m
    y = width_m / 2 - tyre / 2
    xs = [f * length_m for f in AXLE_FRACTIONS[model]]
    xy = [[x, side * y] for x in xs for side in (1.0, -1.0)]
    return Cylinders("tyre", [r] * len(xy), [tyre] * len(xy), [r] * len(xy), xy, axis="y")


def underbody(tyres: Cylinders, length_m: float, width_m: float, z_floor_m: float) -> list[tuple[float, ...]]:
    """The dark shade under the body up to `z_floor_m`: between the tyres, and the body's full
    width ahead of the front wheels and behind the rear ones. It gives the actor's box its bottom
    edges and corners (so the ground-truth box stays tight from every side) and looks like the
    shadow under a vehicle. Bounds (x0, x1, y0, y1, z0, z1) [m] of its boxes."""
    x_end, y_side = length_m / 2 - PROUD_M, width_m / 2 - PROUD_M
    x_wheels = np.array(tyres.xy_m)[:, 0]
    reach = tyres.radii_m[0] + PROUD_M  # clear of the wheels
    x_front, x_rear = x_wheels.max() + reach, x_wheels.min() - reach
    y_in = width_m / 2 - TYRE_WIDTH_FRACTION * width_m - PROUD_M
    return [
        (x_rear, x_front, -y_in, y_in, 0.0, z_floor_m),
        (x_front, x_end, -y_side, y_side, 0.0, z_floor_m),
        (-x_end, x_rear, -y_side, y_side, 0.0, z_floor_m),
    ]


def lights(length_m: float, width_m: float, z_m: float, x_front_m: float, x_rear_m: float) -> list[Part]:
    """Head lights at `x_front_m` (their front at the actor's front) and tail lights at `x_rear_m`,
    a pair each, centred `z_m` high."""
    w, inset, h, d = (
        LIGHT_WIDTH_FRACTION * width_m,
        LIGHT_INSET_FRACTION * width_m,
        LIGHT_HEIGHT_M,
        PROUD_M,
    )
    y0, y1 = width_m / 2 - inset - w, width_m / 2 - inset
    pair = [(y0, y1), (-y1, -y0)]
    return [
        _boxes(colour, [(x - d / 2, x + d / 2, a, b, z_m - h / 2, z_m + h / 2) for a, b in pair])
        for colour, x in (("headlight", x_front_m - d / 2), ("taillight", x_rear_m + d / 2))
    ]


def windows(x0: float, x1: float, half_width_m: float, z0: float, z1: float, front: bool = True) -> Boxes:
    """Dark glass on a cabin [x0, x1] x [-half_width_m, half_width_m] x [z0, z1] [m]: its two sides,
    its back and (with `front`) its front, each framed by PILLAR_M of the body's colour and standing
    PROUD_M out of the face."""
    g, f = PROUD_M, PILLAR_M
    zb, zt = z0 + 0.5 * f, z1 - f
    yw = half_width_m - f
    glass = [
        (x0 + f, x1 - f, half_width_m, half_width_m + g, zb, zt),  # left side
        (x0 + f, x1 - f, -half_width_m - g, -half_width_m, zb, zt),  # right side
        (x0 - g, x0, -yw, yw, zb, zt),  # back
    ]
    if front:
        glass.append((x1, x1 + g, -yw, yw, zb, zt))
    return _boxes("cabin", glass)


def vehicle_parts(model: str, length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A car or van: the chassis in the actor's colour, on wheels, with a narrower cabin on it set
    back (its roof and pillars in the actor's colour, its windows dark glass) and lights."""
    L, W, H = length_m, width_m, height_m
    tyres = wheels(model, L, W, H)
    h_chassis = CHASSIS_HEIGHT_FRACTION[model] * H
    z_floor = CLEARANCE_FRACTION * tyres.radii_m[0]
    cabin_len = CABIN_LENGTH_FRACTION[model] * L
    cabin_x = CABIN_OFFSET_FRACTION[model] * L
    half_cabin = CABIN_WIDTH_FRACTION * W / 2 - PROUD_M
    xc0, xc1 = cabin_x - cabin_len / 2, cabin_x + cabin_len / 2
    x_end, y_side = L / 2 - PROUD_M, W / 2 - PROUD_M
    body = _boxes(
        ACTOR_COLOUR,
        [
            (-x_end, x_end, -y_side, y_side, z_floor, h_chassis),
            (xc0, xc1, -half_cabin, half_cabin, h_chassis, H),
        ],
    )
    glass = windows(xc0, xc1, half_cabin, h_chassis, H)
    shade = _boxes("frame", underbody(tyres, L, W, z_floor))
    z_lights = h_chassis - 0.3 * (h_chassis - z_floor)
    return [body, glass, tyres, shade, *lights(L, W, z_lights, L / 2, -L / 2)]


def ambulance_parts(length_m: float, width_m: float, height_m: float) -> list[Part]:
    """An ambulance: a van, with a bar of beacons across its roof (red on the left, blue on the
    right) over the windscreen, within the actor's height."""
    L, W, H = length_m, width_m, height_m
    roof = H - BEACON_HEIGHT_M
    parts = vehicle_parts("van", L, W, roof)
    x1 = (CABIN_OFFSET_FRACTION["van"] + CABIN_LENGTH_FRACTION["van"] / 2) * L - PROUD_M
    x0 = x1 - BEACON_DEPTH_M
    y = CABIN_WIDTH_FRACTION * W / 2 - PROUD_M
    return [
        *parts,
        _boxes("beacon_red", [(x0, x1, 0.0, y, roof, H)]),
        _boxes("beacon_blue", [(x0, x1, -y, 0.0, roof, H)]),
    ]


def truck_parts(length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A truck: a cab in the actor's colour at the front, a light cargo box behind it on a dark
    frame, six wheels, glass around the cab's upper half and lights."""
    L, W, H = length_m, width_m, height_m
    tyres = wheels("truck", L, W, H)
    z_floor = CLEARANCE_FRACTION * tyres.radii_m[0]
    x_front = L / 2 - PROUD_M
    x_cab = x_front - TRUCK_CAB_LENGTH_FRACTION * L  # the cab's back
    x_cargo = x_cab - TRUCK_CAB_GAP_FRACTION * L  # the cargo box's front
    x_rear = -L / 2 + PROUD_M
    y_side = W / 2 - PROUD_M
    h_cab, z_cargo = TRUCK_CAB_HEIGHT_FRACTION * H, TRUCK_CARGO_BOTTOM_FRACTION * H
    cab = _boxes(ACTOR_COLOUR, [(x_cab, x_front, -y_side, y_side, z_floor, h_cab)])
    cargo = _boxes("cargo", [(-L / 2, x_cargo, -W / 2, W / 2, z_cargo, H)])
    frame = _boxes(
        "frame",
        [(x_rear, x_cab, -0.8 * y_side, 0.8 * y_side, z_floor, z_cargo), *underbody(tyres, L, W, z_floor)],
    )
    z_glass = z_floor + 0.55 * (h_cab - z_floor)
    glass = _boxes(
        "cabin",
        [
            (
                x_front,
                x_front + PROUD_M,
                -y_side + PILLAR_M,
                y_side - PILLAR_M,
                z_glass,
                h_cab - PILLAR_M,
            ),
            (x_cab + PILLAR_M, x_front - PILLAR_M, y_side, y_side + PROUD_M, z_glass, h_cab - PILLAR_M),
            (
                x_cab + PILLAR_M,
                x_front - PILLAR_M,
                -y_side - PROUD_M,
                -y_side,
                z_glass,
                h_cab - PILLAR_M,
            ),
        ],
    )
    z_lights = z_floor + 0.25 * (z_cargo - z_floor)
    return [cab, cargo, frame, glass, tyres, *lights(L, W, z_lights, L / 2, -L / 2)]


def bus_parts(length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A bus: one tall body in the actor's colour on four wheels, a band of side windows along its
    length, a large windscreen and a rear window, and lights."""
    L, W, H = length_m, width_m, height_m
    tyres = wheels("bus", L, W, H)
    z_floor = CLEARANCE_FRACTION * tyres.radii_m[0]
    x_end, y_side = L / 2 - PROUD_M, W / 2 - PROUD_M
    body = _boxes(ACTOR_COLOUR, [(-x_end, x_end, -y_side, y_side, z_floor, H)])
    g, f = PROUD_M, PILLAR_M
    z_top = H - 2 * f
    z_side, z_screen, z_rear = 0.45 * H, 0.3 * H, 0.55 * H
    xs0, xs1 = -x_end + 2 * f, x_end - 2 * f
    glass = _boxes(
        "cabin",
        [
            (xs0, xs1, y_side, y_side + g, z_side, z_top),
            (xs0, xs1, -y_side - g, -y_side, z_side, z_top),
            (x_end, x_end + g, -y_side + f, y_side - f, z_screen, z_top),
            (-x_end - g, -x_end, -y_side + 2 * f, y_side - 2 * f, z_rear, z_top),
        ],
    )
    shade = _boxes("frame", underbody(tyres, L, W, z_floor))
    z_lights = z_floor + 0.3 * (z_screen - z_floor)
    return [body, glass, tyres, shade, *lights(L, W, z_lights, L / 2, -L / 2)]


def pedestrian_parts(length_m: float, width_m: float, height_m: float) -> list[Part]:
    """A pedestrian facing +x: two legs, a torso with arms in the actor's colour, a head on top.

    Sizes are fractions of the width (across, and the body's depth) and of the height; the legs
    stand on the ground, the head reaches the top of the box and the arms its sides."""
    W, H = min(length_m, width_m), height_m
    z_hip, z_shoulder = LEG_HEIGHT_FRACTION * H, TORSO_TOP_FRACTION * H
    ld, lw = (f * W for f in LEG_HALF_SIZE_FRACTION)
    legs = _boxes(
        "legs",
        [(-ld, ld, y - lw, y + lw, 0.0, z_hip) for y in (LEG_OFFSET_FRACTION * W, -LEG_OFFSET_FRACTION * W)],
    )
    td, tw = (f * W for f in TORSO_HALF_SIZE_FRACTION)
    ad, aw = (f * W for f in ARM_HALF_SIZE_FRACTION)
    z_hand = z_shoulder - ARM_LENGTH_FRACTION * H
    arms = [(-ad, ad, side * (W / 2 - 2 * aw), side * W / 2, z_hand, z_shoulder) for side in (1.0, -1.0)]
    arms = [(x0, x1, min(y0, y1), max(y0, y1), z0, z1) for x0, x1, y0, y1, z0, z1 in arms]
    torso = _boxes(ACTOR_COLOUR, [(-td, td, -tw, tw, z_hip, z_shoulder), *arms])
    head_len = H - z_shoulder
    head = Cylinders("skin", [HEAD_RADIUS_FRACTION * W], [head_len], [z_shoulder + head_len / 2])
    return [legs, torso, head]


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

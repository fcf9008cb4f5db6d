"""Render a small hand-made town: one 4-way junction with sidewalks, kerbs, crosswalks, stop lines
and a yellow centre line, buildings, trees, traffic lights (with arms and on posts), a stop sign,
every vehicle type and pedestrians. Writes /tmp/town_looks/*.png (or the folder given) and prints
the time of each frame's render, to look at what `sim.world.props`, `sim.world.town_ground` and
`sim.world.actor_shapes` draw.

    python scripts/town_looks.py [OUT_DIR] [--renderer tiny|egl|auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from decision.route import Road, Segment
from sim.config import CameraConfig
from sim.traffic.actors import Actors
from sim.traffic.spawn import PEDESTRIAN_SIZE_M, VEHICLE_SCALE
from sim.world.camera import Camera, camera_pose, ground_truth_boxes
from sim.world.props import LightPose, Props, light_boxes
from sim.world.town_ground import MapPaint
from sim.world.world import World

HALF_WIDTH_M = 3.5  # asphalt, one lane each way
KERB_M = 0.2
SIDEWALK_M = 2.5
ARM_M = 150.0  # the streets reach this far from the junction
CAR_SIZE_M = (4.5, 1.8, 1.5)


def rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """(4, 2) corners of an axis-aligned rectangle, in order."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def turned(poly: np.ndarray, quarter_turns: int) -> np.ndarray:
    """A polygon turned about the origin by quarter_turns x 90 degrees."""
    c, s = np.round(np.cos(quarter_turns * np.pi / 2)), np.round(np.sin(quarter_turns * np.pi / 2))
    return poly @ np.array([[c, s], [-s, c]])


def junction_paint() -> MapPaint:
    """A 4-way junction at the origin: streets along x and y, each arm's paint built for the arm
    along -x (traffic arriving heading +x) and turned to the others."""
    h, k, w = HALF_WIDTH_M, KERB_M, SIDEWALK_M
    asphalt = [rect(-ARM_M, ARM_M, -h, h), rect(-h, h, -ARM_M, ARM_M)]
    sidewalk, kerb, white, yellow = [], [], [], []
    for q in range(4):
        arm_kerb = [rect(-ARM_M, -h, h, h + k), rect(-ARM_M, -h, -h - k, -h)]
        arm_walk = [rect(-ARM_M, -h - k, h + k, h + k + w), rect(-ARM_M, -h - k, -h - k - w, -h - k)]
        crosswalk = [rect(-h - 4.0, -h - 1.0, y, y + 0.5) for y in np.arange(-h + 0.5, h - 0.6, 1.0)]
        stop_line = [rect(-h - 4.8, -h - 4.4, -h + 0.3, -0.2)]
        edge = [rect(-ARM_M, -h - 5.0, -h + 0.2, -h + 0.35), rect(-ARM_M, -h - 5.0, h - 0.35, h - 0.2)]
        centre = [rect(-ARM_M, -h - 4.4, -0.2, -0.08), rect(-ARM_M, -h - 4.4, 0.08, 0.2)]
        sidewalk += [turned(p, q) for p in arm_walk]
        kerb += [turned(p, q) for p in arm_kerb]
        white += [turned(p, q) for p in crosswalk + stop_line + edge]
        yellow += [turned(p, q) for p in centre]
    return MapPaint(asphalt=asphalt, sidewalk=sidewalk, kerb=kerb, white=white, yellow=yellow)


def junction_props(rng: np.random.Generator) -> Props:
    """Lights on every approach (an arm over the lane at the near right corner, a post at the far
    right corner; signal 0 for the x arms, 1 for the y arms), a stop sign down the +x street,
    buildings behind the sidewalks and trees on them."""
    h = HALF_WIDTH_M
    lights, buildings, trees = [], [], []
    for q in range(4):
        yaw = np.pi + q * np.pi / 2  # facing the traffic that arrives along the arm turned by q
        near = turned(np.array([[-h - 4.6, -h - 1.2]]), q)[0]
        far = turned(np.array([[h + 1.2, -h - 1.2]]), q)[0]
        signal = q % 2
        lights += [LightPose(*near, yaw, signal, arm_m=h), LightPose(*far, yaw, signal)]
        for x in np.arange(-ARM_M, -h - 10.0, 16.0):
            for side in (1, -1):
                depth, length = rng.uniform(8, 14), rng.uniform(10, 15)
                y = side * (h + KERB_M + SIDEWALK_M + 1.0 + depth / 2)
                centre = turned(np.array([[x + length / 2, y]]), q)[0]
                sx, sy = (length, depth) if q % 2 == 0 else (depth, length)
                buildings.append((*centre, sx, sy, float(rng.uniform(6, 22))))
        for x in np.arange(-ARM_M + 4.0, -h - 8.0, 11.0):
            for side in (1, -1):
                trees.append(tuple(turned(np.array([[x, side * (h + KERB_M + SIDEWALK_M - 0.8)]]), q)[0]))
    stops = ((60.0, -h - 1.0, np.pi),)
    return Props(lights=tuple(lights), stop_signs=stops, buildings=tuple(buildings), trees=tuple(trees))


def town_actors() -> Actors:
    """One of each vehicle type and three pedestrians near the junction."""
    car = np.array(CAR_SIZE_M)
    rows = [  # model, x, y, yaw, rgba
        ("car", -40.0, 1.75, np.pi, (0.7, 0.1, 0.1)),
        ("van", 14.0, 1.75, np.pi, (0.92, 0.92, 0.92)),
        ("truck", -1.75, 22.0, -np.pi / 2, (0.1, 0.3, 0.65)),
        ("bus", 30.0, -1.75, 0.0, (0.9, 0.7, 0.15)),
        ("car", -1.75, -16.0, -np.pi / 2, (0.15, 0.35, 0.2)),
        ("pedestrian", -6.0, -2.0, np.pi / 2, (0.2, 0.2, 0.5)),
        ("pedestrian", -18.0, -5.2, 0.0, (0.6, 0.2, 0.2)),
        ("pedestrian", 9.0, 5.0, np.pi, (0.25, 0.5, 0.3)),
    ]
    n = len(rows)
    sizes = [PEDESTRIAN_SIZE_M if m == "pedestrian" else tuple(car * VEHICLE_SCALE[m]) for m, *_ in rows]
    return Actors(
        ids=np.arange(n),
        class_ids=np.array([1 if m == "pedestrian" else 0 for m, *_ in rows]),
        models=[m for m, *_ in rows],
        size_m=np.array(sizes, float),
        xy_m=np.array([[x, y] for _, x, y, _, _ in rows], float),
        yaw_rad=np.array([yaw for *_, yaw, _ in rows], float),
        speed_mps=np.zeros(n),
        v_mps=np.zeros((n, 2)),
        accel_mps2=np.zeros(n),
        rgba=np.array([[*rgb, 1.0] for *_, rgb in rows], float),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="/tmp/town_looks")
    parser.add_argument("--renderer", default="tiny")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    road = Road([Segment("straight", 2 * ARM_M)], 1, 3.5, 14.0, origin_xy_yaw=(-ARM_M, -1.75, 0.0))
    t0 = time.perf_counter()
    world = World(road, 120.0, args.renderer, np.random.default_rng(0), False, paint=junction_paint())
    props = junction_props(np.random.default_rng(1))
    world.add_props(props, np.random.default_rng(2))
    actors = town_actors()
    world.add_actors(actors)
    camera = Camera(CameraConfig(True, 640, 384, 75.0, 0.8, 1.4, 4.0, 0.2, 150.0, 80.0, 0.0), world)
    print(
        f"built in {time.perf_counter() - t0:.2f} s: {len(props.buildings)} buildings, {len(props.trees)} trees, "
        f"{len(props.lights)} lights, {len(world.prop_body_ids)} prop bodies"
    )
    shots = {  # name: (ego x, y, yaw, states)
        "approach_red": (-32.0, -1.75, 0.0, {0: "red", 1: "green"}),
        "approach_green": (-32.0, -1.75, 0.0, {0: "green", 1: "red"}),
        "approach_yellow_close": (-16.0, -1.75, 0.0, {0: "yellow", 1: "red"}),
        "from_south": (1.75, -30.0, np.pi / 2, {0: "red", 1: "green"}),
        "down_the_street": (-90.0, -1.75, 0.0, {0: "green", 1: "red"}),
        "stop_sign": (42.0, -1.75, 0.0, {0: "green", 1: "red"}),
    }
    rng = np.random.default_rng(0)
    for name, (x, y, yaw, states) in shots.items():
        world.set_light_states(states)
        t = time.perf_counter()
        frame = camera.render(x, y, yaw, 0.0, rng)
        ms = 1e3 * (time.perf_counter() - t)
        image = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
        for box in ground_truth_boxes(frame, actors, 80.0):
            x0, y0, x1, y1 = (int(round(v)) for v in box.box_xyxy)
            cv2.rectangle(image, (x0, y0), (x1, y1), (255, 255, 0), 1)
        for box in light_boxes(frame, props.lights, states, 80.0):
            x0, y0, x1, y1 = (int(round(v)) for v in box.box_xyxy)
            cv2.rectangle(image, (x0, y0), (x1, y1), (255, 0, 255), 1)
        cv2.imwrite(str(out / f"{name}.png"), image)
        print(f"{name}: render {ms:.1f} ms (640 x 384)")
    top = camera_pose(-10.0, 0.0, 0.0, 0.0, 70.0, 90.0)
    frame = camera.render_from(top, 0.0, rng)
    cv2.imwrite(str(out / "top_down.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    world.close()
    print_timings(args.renderer, props, actors)


def print_timings(renderer: str, props: Props, actors: Actors, frames: int = 40) -> None:
    """Median render time of 320 x 192 frames (the detector's size) driving along the x street, for
    the town with its props, with lights and signs only, and with no props."""
    variants = {
        "all props": props,
        "lights and signs only": Props(lights=props.lights, stop_signs=props.stop_signs),
        "no props": Props(),
    }
    for name, chosen in variants.items():
        road = Road([Segment("straight", 2 * ARM_M)], 1, 3.5, 14.0, origin_xy_yaw=(-ARM_M, -1.75, 0.0))
        with World(road, 120.0, renderer, np.random.default_rng(0), False, paint=junction_paint()) as world:
            world.add_props(chosen, np.random.default_rng(2))
            world.add_actors(actors)
            camera = Camera(CameraConfig(True, 320, 192, 75.0, 0.8, 1.4, 4.0, 0.2, 150.0, 80.0, 0.0), world)
            times = []
            for x in np.linspace(-120.0, 60.0, frames):
                t = time.perf_counter()
                camera.render(float(x), -1.75, 0.0, 0.0, np.random.default_rng(0))
                times.append(time.perf_counter() - t)
        print(f"320 x 192, {name}: {1e3 * np.median(times):.1f} ms a frame (median of {frames})")


if __name__ == "__main__":
    main()

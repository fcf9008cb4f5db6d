"""Props: a light's lit lamp shows its state in the image, light boxes are where the housing is,
and hundreds of buildings and trees are a few bodies."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

import sim.world.renderer as renderer_module
from perception.types import CameraFrame
from sim.world.actor_shapes import MAX_SHAPES_PER_LINK
from sim.world.camera import Camera, camera_pose, intrinsics, project
from sim.world.props import (
    LAMP_ORDER,
    LightPose,
    Props,
    TrafficLights,
    build_static_props,
    building_shapes,
    housing_centre_local,
    light_box_corners,
    light_boxes,
)
from sim.world.world import World

EGO = (0.0, -1.75, 0.0)  # the camera looks along +x from the right lane


@pytest.fixture(params=["tiny", "egl"])
def light_world(request, straight_road, camera_config):
    """A world (TinyRenderer, or the EGL plugin where it loads) with one light on a post 12 m
    ahead at the right kerb, facing the camera (signal 7), and one behind it facing away (signal
    8); its camera."""
    if request.param == "egl" and renderer_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    world = World(straight_road(200.0), 120.0, request.param, np.random.default_rng(0), randomise=False)
    if world.renderer_name != request.param:
        world.close()
        pytest.skip("the EGL plugin did not load here")
    lights = (LightPose(12.0, -4.5, math.pi, 7), LightPose(16.0, -4.5, 0.0, 8))
    world.add_props(Props(lights=lights), np.random.default_rng(0))
    yield world, lights, Camera(camera_config(), world)
    world.close()


def lamp_pixels(rgb: np.ndarray, box) -> dict[str, int]:
    """How many pixels inside `box` look like a lit red, yellow or green lamp."""
    x0, y0, x1, y1 = (
        int(v) for v in (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
    )
    r, g, b = (rgb[y0:y1, x0:x1, k].astype(int) for k in range(3))
    return {
        "red": int(np.sum((r > 150) & (g < 80) & (b < 80))),
        "yellow": int(np.sum((r > 150) & (g > 110) & (b < 80))),
        "green": int(np.sum((g > 150) & (r < 100))),
    }


def test_the_lit_lamp_shows_the_state_in_the_image(light_world):
    world, lights, camera = light_world
    seen = {}
    for state in LAMP_ORDER:
        world.set_light_states({7: state, 8: "green"})
        frame = camera.render(*EGO, 0.0, np.random.default_rng(0))
        (box,) = light_boxes(frame, lights, {7: state, 8: "green"}, 80.0)  # the other faces away
        assert (box.signal_id, box.state, box.lamp_visible) == (7, state, True)  # depth shows the lamp
        seen[state] = lamp_pixels(frame.rgb, box.box_xyxy)
    for state, counts in seen.items():
        assert counts[state] >= 6, (state, counts)  # the lit lamp is seen ...
        others = [c for colour, c in counts.items() if colour != state]
        assert max(others) == 0, (state, counts)  # ... and no other lamp is lit


def test_lamps_are_recoloured_only_when_the_state_changes(light_world):
    world, _, _ = light_world
    if world.renderer_name != "tiny":
        pytest.skip("bookkeeping: one renderer is enough")
    lights = world.traffic_lights
    assert lights.states == {7: None, 8: None}  # dark until told
    assert lights.set_states({7: "red"}) == 3  # the three lamp links of signal 7
    assert lights.set_states({7: "red", 8: "red"}) == 3  # only signal 8 changed
    assert lights.set_states({7: "red", 8: "red", 99: "green"}) == 0  # no change; 99 has no light
    assert lights.states == {7: "red", 8: "red"}
    with pytest.raises(ValueError, match="signal 7"):
        lights.set_states({7: "blue"})


def test_light_boxes_hold_the_housing_and_drop_lights_not_to_label(camera_config):
    cfg = camera_config()
    K = intrinsics(cfg.width, cfg.height, cfg.hfov_deg)
    pose = camera_pose(*EGO, cfg.mount_x_m, cfg.mount_z_m, cfg.pitch_deg)
    frame = CameraFrame(rgb=np.zeros((cfg.height, cfg.width, 3), np.uint8), K=K, cam_to_world=pose, t_s=0.0)
    lights = [
        LightPose(20.0, -4.5, math.pi, 1, arm_m=3.0),  # ahead, facing the camera: labelled
        LightPose(20.0, 4.5, 0.0, 2),  # ahead, facing away
        LightPose(-10.0, -4.5, math.pi, 3),  # behind the camera
        LightPose(120.0, -4.5, math.pi, 4),  # too far
        LightPose(25.0, -4.5, math.pi / 2, 5),  # seen from its side
        LightPose(30.0, 4.5, math.pi, 6),  # no state given
    ]
    states = {k: "red" for k in range(1, 6)}
    (box,) = light_boxes(frame, lights, states, max_distance_m=80.0)
    assert (box.signal_id, box.state) == (1, "red")
    # The box holds the projected housing corners and is no larger than them.
    uv, _ = project(light_box_corners(lights[:1])[0], K, pose)
    assert box.box_xyxy == pytest.approx((*uv.min(0), *uv.max(0)))
    cx, cy, cz = housing_centre_local(lights[0])  # the arm hangs it over the road, to the light's right
    assert (cx, cy) == (0.0, -3.0) and cz > 4.0
    centre = np.array([20.0, -4.5 + 3.0, cz])
    assert box.distance_m == pytest.approx(np.linalg.norm(centre - pose[:3, 3]), abs=0.05)


def test_a_light_cut_by_the_image_edge_shows_its_state_only_when_the_lit_lamp_is_in_view(camera_config):
    cfg = camera_config()
    K = intrinsics(cfg.width, cfg.height, cfg.hfov_deg)
    pose = camera_pose(*EGO, cfg.mount_x_m, cfg.mount_z_m, cfg.pitch_deg)
    frame = CameraFrame(rgb=np.zeros((cfg.height, cfg.width, 3), np.uint8), K=K, cam_to_world=pose, t_s=0.0)
    lights = [LightPose(9.5, -4.5, math.pi, 1, arm_m=3.0)]  # close, over the road: its top above the image
    seen = {}
    for state in LAMP_ORDER:
        (box,) = light_boxes(frame, lights, {1: state}, 80.0)
        assert box.box_xyxy[1] == 0.0  # the housing is cut by the image's top edge
        seen[state] = box.lamp_visible
    assert seen == {"red": False, "yellow": False, "green": True}  # red at the top, green at the bottom
    (far,) = light_boxes(frame, [LightPose(20.0, -4.5, math.pi, 1, arm_m=3.0)], {1: "red"}, 80.0)
    assert far.lamp_visible


def test_hundreds_of_props_are_one_body_of_full_links():
    client = p.connect(p.DIRECT)
    try:
        rng = np.random.default_rng(0)
        buildings = tuple((x, y, 10.0, 8.0, 12.0) for x in range(0, 400, 20) for y in (-20.0, 20.0))
        trees = tuple((float(x), 8.0) for x in range(0, 600, 2))
        stops = ((5.0, -4.0, math.pi),)
        bodies = build_static_props(client, Props(stop_signs=stops, buildings=buildings, trees=trees), rng)
        assert len(bodies) == 1
        shapes = [d[1] for d in p.getVisualShapeData(bodies[0], physicsClientId=client)]  # link of each shape
        per_link = np.bincount(np.array(shapes) + 1)
        assert per_link.max() <= MAX_SHAPES_PER_LINK
        assert len(shapes) == 40 + 2 * 300 + 1 + 3 + 3  # buildings, trunks and crowns, post, plate, rim
        assert len(per_link) < len(shapes) / 8  # batched: links mostly full
        lights = TrafficLights(client, [(0.0, 0.0, 0.0, s % 3) for s in range(30)])
        assert len(lights.body_ids) == 1 + 3  # poles and housings, then one lamp body per signal
    finally:
        p.disconnect(client)


def test_a_light_hidden_behind_a_truck_gets_no_box(light_world, make_actors):
    world, lights, camera = light_world
    states = {7: "red", 8: "red"}
    frame = camera.render(*EGO, 0.0, np.random.default_rng(0))
    (box,) = light_boxes(frame, lights, states, 80.0)
    assert box.visible_fraction > 0.9
    world.add_actors(make_actors([("truck", 7.0, -3.3)]))  # between the camera and the light
    frame = camera.render(*EGO, 0.0, np.random.default_rng(0))
    assert light_boxes(frame, lights, states, 80.0) == []
    world.remove_actors()


def test_buildings_take_axis_aligned_or_turned_footprints():
    rng = np.random.default_rng(0)
    plain, turned = (
        [s for _, shapes in building_shapes([footprint], rng) for s in shapes]
        for footprint in [(10.0, 5.0, 12.0, 8.0, 20.0), (10.0, 5.0, math.pi / 2, 12.0, 8.0, 20.0)]
    )
    assert plain[0].size_m == turned[0].size_m == (12.0, 8.0, 20.0)
    assert plain[0].position_m == turned[0].position_m == (10.0, 5.0, 10.0)  # on the ground
    assert plain[0].orientation == pytest.approx((0.0, 0.0, 0.0, 1.0))
    assert turned[0].orientation == pytest.approx((0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)))
    with_windows = [
        s for _, shapes in building_shapes([(0.0, 0.0, 12.0, 8.0, 20.0)], rng, windows=True) for s in shapes
    ]
    assert len(with_windows) == 1 + 2 * 6  # two crossed bands on each of its 6 floors

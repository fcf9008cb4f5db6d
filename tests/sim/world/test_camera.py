"""The camera: K and pose agree with the rendered pixels; ground-truth boxes agree with the masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim.world.renderer as renderer_module
from sim.traffic.actors import Actors
from sim.world.camera import Camera, camera_pose, ground_truth_boxes, intrinsics, project
from sim.world.world import World

EGO = (0.0, -1.75, 0.0)  # ego pose (x, y, yaw) in the centre of the right lane


@pytest.fixture(scope="module", params=["tiny", "egl"])
def world(request, straight_road):
    if request.param == "egl" and renderer_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    w = World(straight_road(200.0), 120.0, request.param, np.random.default_rng(0), randomise=False)
    if w.renderer_name != request.param:
        w.close()
        pytest.skip("the EGL plugin did not load here")
    yield w
    w.close()


@pytest.fixture(scope="module")
def tiny_world(straight_road):
    w = World(straight_road(200.0), 120.0, "tiny", np.random.default_rng(0), randomise=False)
    yield w
    w.close()


@pytest.fixture
def render(camera_config):
    """render(world, actors) -> (camera, frame, actor mask): the actors added, a frame from EGO."""

    def shoot(world: World, actors: Actors, segmentation: bool = True):
        world.add_actors(actors)
        cam = Camera(camera_config(), world)
        frame = cam.render(*EGO, 0.0, np.random.default_rng(0), with_segmentation=segmentation)
        return cam, frame, cam.last_actor_mask

    return shoot


def mask_box(mask: np.ndarray, actor_index: int) -> np.ndarray:
    """(x0, y0, x1, y1) of the pixels of one actor, in continuous pixel coordinates."""
    rows, cols = np.nonzero(mask == actor_index)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=float)


def by_actor(boxes) -> dict:
    return {b.actor_index: b for b in boxes}


# ---------------------------------------------------------------------- camera model
def test_intrinsics_and_pose_project_known_points():
    K = intrinsics(320, 192, 75.0)
    assert K[0, 0] == pytest.approx(160 / math.tan(math.radians(37.5)))
    assert K[1, 1] == K[0, 0] and (K[0, 2], K[1, 2]) == (160, 96)

    pose = camera_pose(2.0, 3.0, math.pi / 2, 0.8, 1.4, 0.0)  # facing +y: image right is +x
    assert pose[:3, 3] == pytest.approx([2.0, 3.8, 1.4])
    assert pose[:3, :3] @ pose[:3, :3].T == pytest.approx(np.eye(3))
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    uv, z = project(np.array([[3.0, 13.8, 0.9]]), K, pose)  # 10 m ahead, 1 m right, 0.5 m down
    assert z[0] == pytest.approx(10.0)
    assert uv[0] == pytest.approx([160 + K[0, 0] * 0.1, 96 + K[0, 0] * 0.05])

    pitched = camera_pose(0.0, 0.0, 0.0, 0.0, 1.4, 10.0)  # a point down the pitched axis: centre
    ahead = np.array([[20 * math.cos(math.radians(10)), 0.0, 1.4 - 20 * math.sin(math.radians(10))]])
    uv, z = project(ahead, K, pitched)
    assert uv[0] == pytest.approx([160, 96]) and z[0] == pytest.approx(20.0)


def test_a_camera_mounted_aside_and_turned_left_sees_to_the_left():
    # On an ego at (2, 3) heading +x: mounted 0.5 m ahead and 0.8 m left, looking 90 degrees left.
    pose = camera_pose(2.0, 3.0, 0.0, 0.5, 1.4, 0.0, mount_y_m=0.8, yaw_deg=90.0)
    assert pose[:3, 3] == pytest.approx([2.5, 3.8, 1.4])
    assert pose[:3, 2] == pytest.approx([0.0, 1.0, 0.0])  # the optical axis points left (+y)
    K = intrinsics(320, 192, 75.0)
    uv, z = project(np.array([[2.5, 13.8, 1.4], [1.5, 13.8, 1.4]]), K, pose)
    assert z == pytest.approx([10.0, 10.0])
    assert uv[0] == pytest.approx([160, 96])  # straight out of its side: the image centre
    assert uv[1][0] < 160  # behind the mount: left in its image (whose right is the ego's forward)
    # The ego turned: the mount and the view turn with it.
    turned = camera_pose(0.0, 0.0, math.pi / 2, 0.5, 1.4, 0.0, mount_y_m=0.8, yaw_deg=90.0)
    assert turned[:3, 3] == pytest.approx([-0.8, 0.5, 1.4]) and turned[:3, 2] == pytest.approx(
        [-1.0, 0.0, 0.0]
    )


def test_a_side_camera_boxes_the_car_in_the_next_lane(tiny_world, make_actors, camera_config, box_iou):
    beside = make_actors([("car", 0.0, 1.75)])  # level with the ego, one lane to the left
    tiny_world.add_actors(beside)
    cam = Camera(camera_config(name="left", mount_x_m=0.0, mount_y_m=0.9, yaw_deg=90.0), tiny_world)
    frame = cam.render(*EGO, 0.0, np.random.default_rng(0), with_segmentation=True)
    assert frame.camera == "left"
    (box,) = ground_truth_boxes(frame, beside, 80.0)
    assert box.distance_m == pytest.approx(math.hypot(3.5 - 0.9, 1.4 - 0.75), abs=0.3)
    assert box_iou(np.array(box.box_xyxy), mask_box(cam.last_actor_mask, 0)) > 0.85


def test_rendered_pixels_agree_with_K_pose_and_depth(world, render, make_actors, camera_config):
    cam, frame, mask = render(world, make_actors([("car", 15.0, -1.75)]))
    K, pose = frame.K, frame.cam_to_world
    # Back-project road pixels with their depth: they land on the ground (the road is painted on it).
    rows, cols = np.meshgrid(np.arange(130, 192, 7), np.arange(0, 320, 13), indexing="ij")
    z = frame.depth_m[rows, cols]
    ray = np.stack([(cols + 0.5 - K[0, 2]) / K[0, 0], (rows + 0.5 - K[1, 2]) / K[1, 1], np.ones_like(z)], -1)
    points = (ray * z[..., None]) @ pose[:3, :3].T + pose[:3, 3]
    assert points[..., 2] == pytest.approx(np.zeros(z.shape), abs=1e-3)
    # Above the horizon: the sky, at the far plane.
    assert frame.depth_m[:70] == pytest.approx(np.full((70, 320), camera_config().far_m))
    # A known point on the car's rear face projects onto the car, at its depth.
    rear = np.array([[15.0 - 2.25, -1.75 + 0.5, 0.5]])
    uv, zc = project(rear, K, pose)
    col, row = np.floor(uv[0]).astype(int)
    assert mask[row, col] == 0
    assert frame.depth_m[row, col] == pytest.approx(zc[0], abs=0.03)


# ---------------------------------------------------------------------- ground-truth boxes
def test_gt_boxes_match_the_segmentation_mask(world, render, make_actors, box_iou):
    rows = [("car", 15.0, -1.75), ("van", 25.0, 1.75), ("pedestrian", 18.0, -5.0), ("barrier", 12.0, -5.5)]
    actors = make_actors(rows)
    _, frame, mask = render(world, actors)
    boxes = by_actor(ground_truth_boxes(frame, actors, 80.0))
    assert sorted(boxes) == [0, 1, 2, 3]
    for i in (0, 1, 3):  # vehicles and barriers fill their 3D boxes' outline
        gt, seen = np.array(boxes[i].box_xyxy), mask_box(mask, i)
        assert np.abs(gt - seen).max() <= 1.5, (i, gt, seen)
        assert box_iou(gt, seen) > 0.9
        assert boxes[i].visible_fraction > 0.95 and boxes[i].truncation == 0.0
    # The pedestrian is a cylinder inside its box: same height, a little narrower.
    gt, seen = np.array(boxes[2].box_xyxy), mask_box(mask, 2)
    assert gt[[1, 3]] == pytest.approx(seen[[1, 3]], abs=1.5)
    assert gt[0] <= seen[0] + 1 and seen[2] <= gt[2] + 1
    b = boxes[0]
    assert (b.actor_id, b.class_id) == (100, 0)
    cam_xyz = frame.cam_to_world[:3, 3]
    assert b.distance_m == pytest.approx(math.dist(cam_xyz, (15.0, -1.75, 0.75)))


def test_partly_hidden_car_has_a_visible_fraction_like_its_mask(world, render, make_actors):
    front, behind = ("car", 12.0, -1.75), ("car", 22.0, 0.0)  # the second one peeks out on the left
    actors = make_actors([front, behind])
    _, frame, mask = render(world, actors)
    boxes = by_actor(ground_truth_boxes(frame, actors, 80.0))
    assert boxes[0].visible_fraction > 0.95
    assert 0.2 < boxes[1].visible_fraction < 0.8
    # Compare with the share of its pixels that stay visible (the same car rendered alone).
    seen_pixels = np.sum(mask == 1)
    alone = make_actors([behind])
    _, _, mask_alone = render(world, alone)
    assert boxes[1].visible_fraction == pytest.approx(seen_pixels / np.sum(mask_alone == 0), abs=0.12)


def test_fully_hidden_actor_gives_no_box(tiny_world, render, make_actors):
    actors = make_actors([("van", 12.0, -1.75), ("car", 22.0, -1.75)])
    _, frame, mask = render(tiny_world, actors)
    assert not np.any(mask == 1)
    assert [b.actor_index for b in ground_truth_boxes(frame, actors, 80.0)] == [0]


def test_car_half_out_of_the_left_edge_is_half_truncated(tiny_world, render, make_actors):
    K = intrinsics(320, 192, 75.0)
    pose = camera_pose(*EGO, 0.8, 1.4, 4.0)

    def centre_u(y: float) -> float:
        corners = np.array(
            [[15 + sx * 2.25, y + sy * 0.9, z] for sx in (-1, 1) for sy in (-1, 1) for z in (0, 1.5)]
        )
        u = project(corners, K, pose)[0][:, 0]
        return 0.5 * (u.min() + u.max())

    lo, hi = 0.0, 20.0  # bisect the lateral position that puts the box centre on the left edge
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if centre_u(mid) > 0 else (lo, mid)
    actors = make_actors([("car", 15.0, lo)])
    _, frame, mask = render(tiny_world, actors)
    (box,) = ground_truth_boxes(frame, actors, 80.0)
    assert box.truncation == pytest.approx(0.5, abs=0.05)
    assert box.box_xyxy[0] == 0.0
    assert np.abs(np.array(box.box_xyxy) - mask_box(mask, 0)).max() <= 1.5


def test_actors_behind_or_beside_the_camera(tiny_world, render, make_actors):
    behind = make_actors([("car", -10.0, -1.75)])
    _, frame, _ = render(tiny_world, behind, segmentation=False)
    assert ground_truth_boxes(frame, behind, 80.0) == []

    beside = make_actors([("car", 3.0, 1.75)])  # its rear is behind the camera, in the next lane
    _, frame, mask = render(tiny_world, beside)
    boxes = ground_truth_boxes(frame, beside, 80.0)
    assert len(boxes) == 1
    (box,) = boxes
    assert all(math.isfinite(x) for x in box.box_xyxy)
    assert box.box_xyxy[0] == 0.0 and box.truncation > 0.5  # most of it is off the left edge
    assert box.box_xyxy[2] == pytest.approx(mask_box(mask, 0)[2], abs=1.5)


def test_max_distance_and_tiny_boxes(tiny_world, render, make_actors):
    far = make_actors([("car", 65.0, -1.75), ("cone", 150.0, 1.0)])
    _, frame, _ = render(tiny_world, far, segmentation=False)
    assert [b.actor_index for b in ground_truth_boxes(frame, far, 60.0)] == []
    # Beyond the label distance the car counts again; the far cone is under MIN_BOX_HEIGHT_PX.
    assert [b.actor_index for b in ground_truth_boxes(frame, far, 200.0)] == [0]


def test_pixel_noise_follows_the_seed(camera_config, straight_road):
    cfg = camera_config(noise_std=4.0)
    with World(straight_road(200.0), 120.0, "tiny", np.random.default_rng(3), randomise=True) as w:
        cam = Camera(cfg, w)
        a = cam.render(*EGO, 0.0, np.random.default_rng(1))
        b = cam.render(*EGO, 0.0, np.random.default_rng(1))
        c = cam.render(*EGO, 0.0, np.random.default_rng(2))
        clean = Camera(camera_config(), w).render(*EGO, 0.0, np.random.default_rng(1))
    assert cam.last_actor_mask is None
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)
    road_rows = (slice(120, 192), slice(None))  # mid-grey asphalt: no clipping at 0 or 255
    diff = a.rgb[road_rows].astype(float) - clean.rgb[road_rows]
    assert diff.std() == pytest.approx(4.0, rel=0.15)
    assert a.rgb.dtype == np.uint8 and a.depth_m.dtype == np.float32

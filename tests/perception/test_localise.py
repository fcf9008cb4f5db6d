import numpy as np
import pytest

from perception.localise import (
    CLASS_SIZE_M,
    class_size_m,
    distance_estimate,
    error_by_band,
    ground_estimate,
    localise,
    merge_views,
)
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE

# A synthetic front camera like the sim's default: 320 x 192, 75 deg horizontal FOV, 1.4 m above
# the ground, pitched 4 deg down, on an ego at (30, -12) heading 0.5 rad.
WIDTH, HEIGHT, HFOV_DEG = 320, 192, 75.0
MOUNT_Z_M, PITCH_DEG = 1.4, 4.0
EGO_XY, EGO_YAW = np.array([30.0, -12.0]), 0.5
HEIGHT_M = {VEHICLE: 1.5, PEDESTRIAN: 1.75, OBSTACLE: 0.7}


def camera() -> tuple[np.ndarray, np.ndarray]:
    fx = (WIDTH / 2) / np.tan(np.radians(HFOV_DEG) / 2)
    K = np.array([[fx, 0.0, WIDTH / 2], [0.0, fx, HEIGHT / 2], [0.0, 0.0, 1.0]])
    p = np.radians(PITCH_DEG)
    # Optical axes in a vehicle frame (x forward, y left, z up): x right, y down, z forward (pitched).
    z_axis = np.array([np.cos(p), 0.0, -np.sin(p)])
    x_axis = np.array([0.0, -1.0, 0.0])
    y_axis = np.cross(z_axis, x_axis)
    c, s = np.cos(EGO_YAW), np.sin(EGO_YAW)
    yaw = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = yaw @ np.stack([x_axis, y_axis, z_axis], axis=1)
    pose[:3, 3] = (*EGO_XY, MOUNT_Z_M)
    return K, pose


def scene(forward_m, lateral_m, class_ids, K, pose, yaw_rad=0.0):
    """Objects at (forward, lateral) from the camera, heading `yaw_rad` relative to the ego: their
    world centres (N, 2), the 2D boxes of their projected 3D boxes (N, 4), true distances (N,)."""
    forward_m, lateral_m = np.atleast_1d(forward_m).astype(float), np.atleast_1d(lateral_m).astype(float)
    class_ids = np.broadcast_to(class_ids, forward_m.shape)
    yaws = np.broadcast_to(yaw_rad, forward_m.shape)
    c, s = np.cos(EGO_YAW), np.sin(EGO_YAW)
    xy = EGO_XY + forward_m[:, None] * [c, s] + lateral_m[:, None] * [-s, c]
    boxes, dist = [], []
    for (x, y), cls, yaw in zip(xy, class_ids, yaws, strict=True):
        c, s = np.cos(EGO_YAW + yaw), np.sin(EGO_YAW + yaw)
        (length, width), h = CLASS_SIZE_M[cls], HEIGHT_M[int(cls)]
        local = np.array([[a * length / 2, b * width / 2] for a in (-1, 1) for b in (-1, 1)])
        corners = np.array(
            [[x + c * lx - s * ly, y + s * lx + c * ly, z] for lx, ly in local for z in (0.0, h)]
        )
        pc = (corners - pose[:3, 3]) @ pose[:3, :3]
        assert (pc[:, 2] > 0).all()
        uv = (pc @ K.T)[:, :2] / pc[:, 2:3]
        boxes.append([*uv.min(0), *uv.max(0)])
        dist.append(np.linalg.norm(np.array([x, y, h / 2]) - pose[:3, 3]))
    return xy, np.array(boxes), np.array(dist)


def errors(est, true):
    return np.linalg.norm(est - true, axis=1)


def test_class_sizes():
    length, width = class_size_m(np.array([VEHICLE, PEDESTRIAN, OBSTACLE]))
    np.testing.assert_allclose(length, [4.5, 0.5, 0.4])
    np.testing.assert_allclose(width, [1.8, 0.5, 0.4])
    with pytest.raises(ValueError):
        class_size_m(np.array([3]))


@pytest.mark.parametrize("cls", [VEHICLE, PEDESTRIAN, OBSTACLE])
@pytest.mark.parametrize(
    ("forward_m", "lateral_m", "tol_m"), [(10.0, 0.0, 0.3), (10.0, -2.0, 0.3), (40.0, 3.5, 1.5)]
)
def test_exact_boxes_and_distances_are_placed_right(cls, forward_m, lateral_m, tol_m):
    K, pose = camera()
    xy, boxes, dist = scene(forward_m, lateral_m, cls, K, pose)
    for d in (dist, np.full(1, np.nan)):  # with the distance head, and ground projection only
        est, sigma = localise(boxes, d, [cls], K, pose)
        assert errors(est, xy)[0] < tol_m
        assert np.isfinite(sigma).all() and (sigma > 0).all()


def test_car_seen_side_on_is_within_the_documented_bias():
    """The ground estimate assumes cars seen end-on: a crossing car lands (4.5 - 1.8) / 2 m too far;
    the distance head pulls it back."""
    K, pose = camera()
    xy, boxes, dist = scene(np.array([10.0, 20.0]), np.array([0.0, 3.5]), VEHICLE, K, pose, yaw_rad=np.pi / 2)
    ground = errors(ground_estimate(boxes, [VEHICLE] * 2, K, pose)[0], xy)
    np.testing.assert_allclose(ground, 1.35, atol=0.05)
    assert (errors(localise(boxes, dist, [VEHICLE] * 2, K, pose)[0], xy) < 0.8).all()


def test_boxes_cut_by_the_image_border():
    """A car close by on the left, its box cut by the image's left edge (and a closer one also by the
    bottom): telling localise the image size keeps the estimate right."""
    K, pose = camera()
    xy, boxes, dist = scene(np.array([5.0, 4.0]), np.array([4.0, 3.0]), VEHICLE, K, pose)
    cut = np.clip(boxes, 0.0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
    assert (cut[:, 0] == 0).all() and cut[1, 3] == HEIGHT
    size = (WIDTH, HEIGHT)
    assert (errors(localise(cut, dist, [VEHICLE] * 2, K, pose, image_size_px=size)[0], xy) < 0.2).all()
    assert (
        errors(localise(cut, dist, [VEHICLE] * 2, K, pose)[0], xy) > 0.8
    ).all()  # a cut edge taken as real


def test_sigma_grows_with_distance_and_ground_loses_weight():
    K, pose = camera()
    forward = np.array([8.0, 15.0, 25.0, 40.0, 60.0])
    xy, boxes, dist = scene(forward, 0.5, PEDESTRIAN, K, pose)
    _, var_g = ground_estimate(boxes, np.full(5, PEDESTRIAN), K, pose)
    _, var_d = distance_estimate(boxes, dist, np.full(5, PEDESTRIAN), K, pose)
    assert np.all(np.diff(var_g) > 0) and np.all(np.diff(var_d) > 0)
    # Ground projection: error ~ range^2, so it is better near and much worse far than 7 % of range.
    assert var_g[0] < var_d[0] and var_g[-1] > 4 * var_d[-1]
    _, sigma = localise(boxes, dist, np.full(5, PEDESTRIAN), K, pose)
    assert np.all(sigma <= np.sqrt(np.minimum(var_g, var_d)) + 1e-12)


def test_noisy_distances_still_close():
    K, pose = camera()
    rng = np.random.default_rng(1)
    forward = rng.uniform(8.0, 12.0, 200)
    xy, boxes, dist = scene(forward, rng.uniform(-3, 3, 200), PEDESTRIAN, K, pose)
    noisy = dist * (1 + rng.normal(0.0, 0.07, 200))
    est, _ = localise(boxes, noisy, np.full(200, PEDESTRIAN), K, pose)
    # Exact boxes: the ground projection is right and dominates at 10 m; the noisy distance pulls little.
    assert np.median(errors(est, xy)) < 0.3


def test_fusion_beats_single_estimates_in_monte_carlo():
    """Noisy box edges (1.5 px) and distances (7 %): the inverse-variance blend is better on average
    than the worse single estimate in every band, and than the better one overall."""
    K, pose = camera()
    rng = np.random.default_rng(2)
    n = 600
    forward = rng.uniform(6.0, 45.0, n)
    cls = rng.integers(0, 3, n)
    xy, boxes, dist = scene(forward, rng.uniform(-4, 4, n), cls, K, pose)
    boxes = boxes + rng.normal(0.0, 1.5, boxes.shape)
    noisy = dist * (1 + rng.normal(0.0, 0.07, n))
    e_g = errors(ground_estimate(boxes, cls, K, pose)[0], xy)
    e_d = errors(distance_estimate(boxes, noisy, cls, K, pose)[0], xy)
    e_f = errors(localise(boxes, noisy, cls, K, pose)[0], xy)
    e_pick = errors(localise(boxes, noisy, cls, K, pose, fuse=False)[0], xy)
    for near in (forward < 20, forward >= 20):
        assert e_f[near].mean() < max(e_g[near].mean(), e_d[near].mean())
    assert e_f.mean() < min(e_g.mean(), e_d.mean())
    assert e_f.mean() < e_pick.mean()


def test_box_above_horizon_uses_distance_only():
    K, pose = camera()
    # The horizon is at v = cy - fy tan(pitch) ~ 81.5 px; a box whose bottom is above it (a sign, or a
    # bad box) never meets the ground.
    boxes = np.array([[150.0, 60.0, 170.0, 75.0]])
    est, sigma = localise(boxes, [30.0], [VEHICLE], K, pose)
    xy_d, var_d = distance_estimate(boxes, [30.0], [VEHICLE], K, pose)
    np.testing.assert_allclose(est, xy_d)
    assert sigma[0] == pytest.approx(np.sqrt(var_d[0]))
    assert np.linalg.norm(est[0] - pose[:2, 3]) == pytest.approx(30.0, rel=0.01)
    # Without a distance there is nothing to say.
    est, sigma = localise(boxes, [np.nan], [VEHICLE], K, pose)
    assert np.isnan(est).all() and np.isinf(sigma).all()


def test_pick_better_takes_one_estimate_and_truncated_bottom_ignores_ground():
    K, pose = camera()
    xy, boxes, dist = scene(np.array([7.0, 50.0]), 0.0, PEDESTRIAN, K, pose)
    wrong = dist * 1.3  # a bad distance
    xy_g = ground_estimate(boxes, [1, 1], K, pose)[0]
    xy_d = distance_estimate(boxes, wrong, [1, 1], K, pose)[0]
    est, _ = localise(boxes, wrong, [1, 1], K, pose, fuse=False)
    np.testing.assert_allclose(est[0], xy_g[0])  # near: ground projection is the surer one
    np.testing.assert_allclose(est[1], xy_d[1])  # far: the distance head is
    cut = boxes.copy()
    cut[:, 3] = HEIGHT  # the bottom edge is the image border
    size = (WIDTH, HEIGHT)
    est, _ = localise(cut, wrong, [1, 1], K, pose, image_size_px=size)
    np.testing.assert_allclose(est, distance_estimate(cut, wrong, [1, 1], K, pose, image_size_px=size)[0])


def test_vectorised_matches_one_by_one():
    K, pose = camera()
    rng = np.random.default_rng(3)
    _, boxes, dist = scene(rng.uniform(5, 50, 20), rng.uniform(-3, 3, 20), rng.integers(0, 3, 20), K, pose)
    dist[::4] = np.nan
    cls = rng.integers(0, 3, 20)
    est, sigma = localise(boxes, dist, cls, K, pose)
    for i in range(20):
        e1, s1 = localise(boxes[i : i + 1], dist[i : i + 1], cls[i : i + 1], K, pose)
        np.testing.assert_allclose(e1[0], est[i])
        assert s1[0] == pytest.approx(sigma[i])
    e0, s0 = localise(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), K, pose)
    assert e0.shape == (0, 2) and s0.shape == (0,)


def test_error_by_band():
    true = np.zeros((7, 2))
    est = np.array([[1.0, 0], [3.0, 0], [0, 2.0], [0, 4.0], [10.0, 0], [np.nan, np.nan], [0, 0.5]])
    dist = np.array([5.0, 15.0, 20.0, 39.9, 100.0, 50.0, -1.0])  # -1 falls in no band
    out = error_by_band(est, true, dist)
    assert list(out) == ["0-20", "20-40", "40-inf"]
    assert out["0-20"] == {
        "count": 2,
        "missing": 0,
        "mean_m": 2.0,
        "median_m": 2.0,
        "p90_m": pytest.approx(2.8),
    }
    assert out["20-40"]["mean_m"] == pytest.approx(3.0)
    assert out["40-inf"]["count"] == 1 and out["40-inf"]["missing"] == 1 and out["40-inf"]["p90_m"] == 10.0
    empty = error_by_band(est[:1], true[:1], dist[:1], bands_m=((50.0, 60.0),))["50-60"]
    assert empty["count"] == 0 and np.isnan(empty["mean_m"])


def test_merge_views_makes_one_measurement_of_an_object_two_cameras_saw():
    xy = np.array([[10.0, 2.0], [10.6, 2.2], [10.3, 2.1], [30.0, 0.0], [10.2, 2.0], [40.0, 5.0]])
    sigma = np.array([0.5, 1.0, 0.5, 1.0, 0.5, 0.4])
    cls = np.array([VEHICLE, VEHICLE, VEHICLE, VEHICLE, PEDESTRIAN, VEHICLE])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    views = np.array([0, 1, 0, 1, 1, 2])
    out_xy, out_sigma, out_cls, out_scores = merge_views(xy, sigma, cls, scores, views)
    # 0 and 1 (two cameras, one car): the inverse-variance mean. 2 is camera 0's again: its own.
    # 3 is far off, 4 another class, 5 alone: each its own.
    w = np.array([1 / 0.25, 1 / 1.0])
    assert out_xy[0] == pytest.approx((w[:, None] * xy[:2]).sum(axis=0) / w.sum())
    assert out_sigma[0] == pytest.approx(1 / np.sqrt(w.sum()))
    assert out_xy[1:] == pytest.approx(xy[2:]) and out_sigma[1:] == pytest.approx(sigma[2:])
    assert out_cls.tolist() == cls[[0, 2, 3, 4, 5]].tolist() and out_scores.tolist() == [
        0.9,
        0.7,
        0.6,
        0.5,
        0.4,
    ]
    # Beyond the gate (3 combined sigmas, at most 3 m): two objects.
    apart = merge_views(
        np.array([[0.0, 0.0], [2.5, 0.0]]), np.array([0.5, 0.5]), cls[:2], scores[:2], views[:2]
    )
    assert len(apart[0]) == 2


def test_distance_lens_undoes_a_head_that_reads_apparent_size():
    """A head that learnt its distances on a lens of focal F reads d (F / f)^E on a lens of focal f:
    with distance_lens=(F, E) the object is placed right, without it well short."""
    K, pose = camera()
    xy, boxes, dist = scene([30.0, 60.0], [0.0, 3.0], VEHICLE, K, pose)
    focal, exponent = 2.5 * K[0, 0], 0.8  # the head learnt on a lens 2.5x wider
    read = dist * (focal / K[0, 0]) ** exponent
    corrected, _ = distance_estimate(boxes, read, [VEHICLE] * 2, K, pose, distance_lens=(focal, exponent))
    assert errors(corrected, xy).max() < 1.5
    uncorrected, _ = distance_estimate(boxes, read, [VEHICLE] * 2, K, pose)
    assert errors(uncorrected, xy).min() > 10.0
    fused, _ = localise(boxes, read, [VEHICLE] * 2, K, pose, distance_lens=(focal, exponent))
    assert errors(fused, xy).max() < 1.5

import numpy as np

from sim.world.geometry import box_corners, obb_overlap, obb_overlap_pair


def one(x, y, yaw, length, width):
    return box_corners(np.array([[x, y]]), np.array([yaw]), np.array([length]), np.array([width]))[0]


def test_box_corners_axis_aligned_and_rotated():
    c = one(1.0, 2.0, 0.0, 4.0, 2.0)
    np.testing.assert_allclose(c, [[3, 3], [-1, 3], [-1, 1], [3, 1]])
    r = one(0.0, 0.0, np.pi / 2, 4.0, 2.0)  # heading north: length along y
    np.testing.assert_allclose(r, [[-1, 2], [-1, -2], [1, -2], [1, 2]], atol=1e-12)


def test_box_corners_vectorised_shape():
    c = box_corners(np.zeros((5, 2)), np.linspace(0, 1, 5), np.full(5, 4.5), np.full(5, 1.8))
    assert c.shape == (5, 4, 2)
    # every box keeps its size: front edge length = width, side edge = length
    np.testing.assert_allclose(np.linalg.norm(c[:, 0] - c[:, 3], axis=1), 1.8)
    np.testing.assert_allclose(np.linalg.norm(c[:, 0] - c[:, 1], axis=1), 4.5)


def test_obb_touching_and_separated_axis_aligned():
    a = one(0.0, 0.0, 0.0, 4.0, 2.0)
    b = box_corners(
        np.array([[4.0, 0.0], [4.01, 0.0], [0.0, 2.0], [0.0, 2.5]]),
        np.zeros(4),
        np.full(4, 4.0),
        np.full(4, 2.0),
    )
    np.testing.assert_array_equal(obb_overlap(a, b), [True, False, True, False])


def test_obb_rotated_box_near_corner_needs_the_rotated_axes():
    a = one(0.0, 0.0, 0.0, 2.0, 2.0)
    # Squares turned 45 deg off A's corner: their bounding boxes overlap A in both cases, but only
    # the nearer one really overlaps (its edge x + y = 1.79 crosses A's corner at x + y = 2).
    b = box_corners(
        np.array([[2.3, 2.3], [1.6, 1.6]]), np.full(2, np.pi / 4), np.full(2, 2.0), np.full(2, 2.0)
    )
    np.testing.assert_array_equal(obb_overlap(a, b), [False, True])


def test_obb_margin_and_empty():
    a = one(0.0, 0.0, 0.0, 4.0, 2.0)
    b = box_corners(np.array([[4.2, 0.0]]), np.zeros(1), np.full(1, 4.0), np.full(1, 2.0))
    assert not obb_overlap(a, b)[0]
    assert obb_overlap(a, b, margin_m=0.25)[0]
    assert obb_overlap(a, np.zeros((0, 4, 2))).shape == (0,)


def test_pair_test_agrees_with_the_vectorised_one():
    rng = np.random.default_rng(0)
    n = 400
    xy = rng.uniform(-4, 4, (n, 2))
    yaw = rng.uniform(-np.pi, np.pi, n)
    size = rng.uniform(0.3, 5.0, (n, 2))
    a = (0.3, -0.2, 0.4, 4.5, 1.8)
    vec = obb_overlap(one(*a), box_corners(xy, yaw, size[:, 0], size[:, 1]))
    pair = [obb_overlap_pair(*a, xy[i, 0], xy[i, 1], yaw[i], size[i, 0], size[i, 1]) for i in range(n)]
    assert 0.2 < vec.mean() < 0.8  # both outcomes are exercised
    np.testing.assert_array_equal(vec, pair)

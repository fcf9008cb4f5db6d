import numpy as np

from sim.world.geometry import box_corners, obb_overlap_pair


def one(x, y, yaw, length, width):
    return box_corners(np.array([[x, y]]), np.array([yaw]), np.array([length]), np.array([width]))[0]


def overlap_by_corners(a: np.ndarray, b: np.ndarray) -> bool:
    """The separating-axis test worked out from the corners (4, 2) of two boxes: they are apart
    when their corners' projections on one of the four edge normals do not meet."""
    for corners in (a, b):
        for edge in (corners[1] - corners[0], corners[2] - corners[1]):
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


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


def test_overlap_touching_and_separated_axis_aligned():
    a = (0.0, 0.0, 0.0, 4.0, 2.0)
    centres = [(4.0, 0.0), (4.01, 0.0), (0.0, 2.0), (0.0, 2.5)]  # touching, apart, touching, apart
    assert [obb_overlap_pair(*a, x, y, 0.0, 4.0, 2.0) for x, y in centres] == [True, False, True, False]


def test_overlap_of_a_rotated_box_near_a_corner_needs_the_rotated_axes():
    # Squares turned 45 deg off A's corner: their bounding boxes overlap A in both cases, but only
    # the nearer one really overlaps (its edge x + y = 1.79 crosses A's corner at x + y = 2).
    a = (0.0, 0.0, 0.0, 2.0, 2.0)
    assert not obb_overlap_pair(*a, 2.3, 2.3, np.pi / 4, 2.0, 2.0)
    assert obb_overlap_pair(*a, 1.6, 1.6, np.pi / 4, 2.0, 2.0)


def test_closed_form_overlap_agrees_with_the_corner_projections():
    rng = np.random.default_rng(0)
    n = 400
    xy = rng.uniform(-4, 4, (n, 2))
    yaw = rng.uniform(-np.pi, np.pi, n)
    size = rng.uniform(0.3, 5.0, (n, 2))
    a = (0.3, -0.2, 0.4, 4.5, 1.8)
    pair = [obb_overlap_pair(*a, xy[i, 0], xy[i, 1], yaw[i], size[i, 0], size[i, 1]) for i in range(n)]
    reference = [overlap_by_corners(one(*a), one(*xy[i], yaw[i], *size[i])) for i in range(n)]
    assert 0.2 < np.mean(pair) < 0.8  # both outcomes are exercised
    assert pair == reference

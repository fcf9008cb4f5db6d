"""Lateral control: polyline geometry, and pure pursuit / Stanley driving a kinematic bicycle."""

import math

import numpy as np
import pytest

from control.lateral import PathGeometry, PurePursuit, Stanley, clean_path
from perception.types import EgoState

WHEELBASE_M = 2.7
MAX_STEER_RAD = 0.6
MAX_STEER_RATE_RADPS = 1.2  # as sim.vehicle
DT_S = 0.05  # 20 Hz control


def pure_pursuit() -> PurePursuit:  # gains of conf/control/pure_pursuit.yaml
    return PurePursuit(WHEELBASE_M, lookahead_min_m=4.0, lookahead_gain_s=0.5, max_steer_rad=MAX_STEER_RAD)


def stanley() -> Stanley:  # gains of conf/control/stanley.yaml
    return Stanley(WHEELBASE_M, gain=2.5, softening_mps=1.0, heading_gain=1.0, max_steer_rad=MAX_STEER_RAD)


LAWS = {"pure_pursuit": pure_pursuit, "stanley": stanley}


class Bicycle:
    """Kinematic bicycle: the rear axle moves along the heading, x' = v cos(yaw), y' = v sin(yaw),
    yaw' = v / L tan(steer); the reported pose is the box centre, L/2 ahead of the rear axle.
    Steering is rate limited as in the sim (explicit Euler at the control rate)."""

    def __init__(self, centre_x_m: float, centre_y_m: float, yaw_rad: float, speed_mps: float):
        self.x_m = centre_x_m - 0.5 * WHEELBASE_M * math.cos(yaw_rad)
        self.y_m = centre_y_m - 0.5 * WHEELBASE_M * math.sin(yaw_rad)
        self.yaw_rad, self.speed_mps, self.steer_rad = yaw_rad, speed_mps, 0.0

    def centre(self) -> tuple[float, float]:
        half = 0.5 * WHEELBASE_M
        return self.x_m + half * math.cos(self.yaw_rad), self.y_m + half * math.sin(self.yaw_rad)

    def ego(self) -> EgoState:
        return EgoState(*self.centre(), self.yaw_rad, self.speed_mps)

    def step(self, steer_rad: float) -> None:
        max_change = MAX_STEER_RATE_RADPS * DT_S
        self.steer_rad += min(max(steer_rad - self.steer_rad, -max_change), max_change)
        v = self.speed_mps
        self.x_m += v * math.cos(self.yaw_rad) * DT_S
        self.y_m += v * math.sin(self.yaw_rad) * DT_S
        self.yaw_rad += v / WHEELBASE_M * math.tan(self.steer_rad) * DT_S


def circle_path(x_m: float, y_m: float, radius_m: float) -> np.ndarray:
    """(N, 2) counter-clockwise arc round the origin, 1 m spacing, from 5 m behind the point to 60 m
    ahead: what a planner hands over each tick."""
    here = math.atan2(y_m, x_m)
    angles = here + np.arange(-5.0, 60.0, 1.0) / radius_m
    return radius_m * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def drive_circle(law, radius_m: float, speed_mps: float, duration_s: float) -> np.ndarray:
    """(T,) signed radial error of the box centre [m], starting on the circle, tangent to it."""
    car = Bicycle(radius_m, 0.0, math.pi / 2, speed_mps)
    errors = []
    for _ in range(round(duration_s / DT_S)):
        steer, _ = law.steer(car.ego(), circle_path(*car.centre(), radius_m))
        car.step(steer)
        errors.append(math.hypot(*car.centre()) - radius_m)
    return np.array(errors)


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize(("radius_m", "tolerance_m"), [(30.0, 0.15), (60.0, 0.08)])
def test_follows_circle(name, radius_m, tolerance_m):
    # Measured after 5 s: pure pursuit 0.09 / 0.045 m, Stanley 0.05 / 0.025 m (R = 30 / 60 m).
    errors = drive_circle(LAWS[name](), radius_m, speed_mps=10.0, duration_s=20.0)
    assert np.all(np.abs(errors) < 0.5)  # also during the initial transient
    assert np.abs(errors[round(5.0 / DT_S) :]).max() < tolerance_m


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize("speed_mps", [5.0, 25.0])
def test_converges_to_straight_line_from_lateral_offset(name, speed_mps):
    law = LAWS[name]()
    car = Bicycle(0.0, 1.0, 0.0, speed_mps)  # 1 m left of the x axis, parallel to it
    offsets = []
    for _ in range(round(10.0 / DT_S)):
        x_m = math.floor(car.centre()[0])
        path = np.stack([x_m + np.arange(-5.0, 80.0), np.zeros(85)], axis=1)
        steer, log = law.steer(car.ego(), path)
        if not offsets:
            assert steer < 0  # right, towards the path
            assert log["cross_track_error_m"] == pytest.approx(1.0)
        car.step(steer)
        offsets.append(car.centre()[1])
    offsets = np.array(offsets)
    assert abs(offsets[-1]) < 0.01
    assert offsets.min() > -0.25  # bounded overshoot to the other side
    assert np.abs(offsets[round(5.0 / DT_S) :]).max() < 0.05


def project(path: np.ndarray, x_m: float, y_m: float):
    return PathGeometry(path).project([(x_m, y_m)])[0]


def test_projection_on_polyline():
    path = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])  # east then north
    proj = project(path, 4.0, 2.0)
    assert (proj.segment, proj.fraction) == (0, pytest.approx(0.4))
    assert proj.point_xy_m == pytest.approx([4.0, 0.0])
    assert proj.s_m == pytest.approx(4.0)
    assert proj.cross_track_error_m == pytest.approx(2.0)  # left of the path is positive
    assert proj.path_yaw_rad == pytest.approx(0.0)
    right = project(path, 11.0, 6.0)  # east of the northbound leg
    assert right.segment == 1 and right.s_m == pytest.approx(16.0)
    assert right.cross_track_error_m == pytest.approx(-1.0)
    assert right.path_yaw_rad == pytest.approx(math.pi / 2)
    # At the corner the heading is halfway between the two legs, and it is continuous through it.
    corner = project(path, 10.0 - 1e-9, 1e-9)
    assert corner.path_yaw_rad == pytest.approx(math.pi / 4, abs=1e-6)
    # Behind the start the first segment extends backwards (negative s, true lateral distance).
    behind = project(path, -3.0, -1.0)
    assert behind.s_m == pytest.approx(-3.0)
    assert behind.cross_track_error_m == pytest.approx(-1.0)


def test_projects_several_points_in_one_pass():
    path = np.stack([np.arange(0.0, 20.0), np.zeros(20)], axis=1)
    geometry = PathGeometry(path)
    assert geometry.s_m == pytest.approx(np.arange(0.0, 20.0))
    rear, centre, past_end = geometry.project([(2.0, 1.0), (3.35, -0.5), (25.0, 2.0)])
    assert (rear.s_m, rear.cross_track_error_m) == (pytest.approx(2.0), pytest.approx(1.0))
    assert (centre.s_m, centre.cross_track_error_m) == (pytest.approx(3.35), pytest.approx(-0.5))
    assert past_end.segment == 18 and past_end.s_m == pytest.approx(25.0)
    assert past_end.point_xy_m == pytest.approx([25.0, 0.0])


def test_projection_is_the_nearest_segment_of_the_whole_path():
    # Winding paths with long segments and points anywhere near them (near-ties between far-apart
    # parts of the path included), checked against every segment.
    rng = np.random.default_rng(0)
    for _ in range(300):
        path = np.cumsum(rng.normal(0.0, 3.0, (int(rng.integers(2, 30)), 2)), axis=0)
        point = path[int(rng.integers(len(path)))] + rng.normal(0.0, 4.0, 2)
        seg = np.diff(path, axis=0)
        t = np.clip(np.einsum("ij,ij->i", point - path[:-1], seg) / np.einsum("ij,ij->i", seg, seg), 0, 1)
        dist = np.hypot(*(point - path[:-1] - t[:, None] * seg).T)
        proj = project(path, *point)
        assert dist[proj.segment] == pytest.approx(dist.min(), abs=1e-9)
    # U-turn, seen from its centre: every point is about as near.
    angles = np.linspace(0.0, math.pi, 40)
    proj = project(np.stack([8.0 * np.cos(angles), 8.0 * np.sin(angles)], axis=1), 0.0, 0.1)
    assert math.dist((0.0, 0.1), proj.point_xy_m) == pytest.approx(7.9, abs=0.01)


def test_projection_near_the_start_sees_the_path_that_comes_back():
    # A path that loops back near its start: a point there gets its nearest segment, wherever that
    # is along the path (the fast path's second-nearest-vertex test must not settle too early).
    rng = np.random.default_rng(1)
    for turns in (0.9, 1.0, 1.1):
        angles = np.linspace(0.0, 2.0 * math.pi * turns, 60)
        path = np.stack([6.0 * np.cos(angles), 6.0 * np.sin(angles)], axis=1)
        seg = np.diff(path, axis=0)
        for _ in range(100):
            point = path[int(rng.integers(len(path)))] + rng.normal(0.0, 1.5, 2)
            t = np.clip(np.einsum("ij,ij->i", point - path[:-1], seg) / np.einsum("ij,ij->i", seg, seg), 0, 1)
            dist = np.hypot(*(point - path[:-1] - t[:, None] * seg).T)
            proj = project(path, *point)
            assert dist[proj.segment] == pytest.approx(dist.min(), abs=1e-9)
    # A loop of a little over one turn: a point just clockwise of the start lies nearest the
    # loop's end (its segment 52 of 54), not its first segment, 0.2 m away.
    angles = np.linspace(0.0, 2.0 * math.pi * 1.02, 55)
    proj = project(np.stack([6.0 * np.cos(angles), 6.0 * np.sin(angles)], axis=1), 6.05, -0.2)
    assert proj.segment == 52 and abs(proj.cross_track_error_m) < 0.1


def test_path_heading_wraps_across_pi():
    path = np.array([[0.0, 0.0], [-10.0, 0.01], [-20.0, -0.01]])  # westward, yaw near +-pi
    proj = project(path, -10.0, 0.5)
    assert abs(abs(proj.path_yaw_rad) - math.pi) < 0.01


def test_point_at_distance_interpolates_and_extends_the_end():
    geometry = PathGeometry(np.stack([np.arange(0.0, 11.0), np.zeros(11)], axis=1))

    def point_at_distance(x_m, y_m, distance_m):
        start = geometry.project([(x_m, y_m)])[0]
        return geometry.point_at_distance(start, (x_m, y_m), distance_m)

    assert point_at_distance(2.5, 0.0, 4.2) == pytest.approx([6.7, 0.0])
    assert point_at_distance(2.5, 0.0, 20.0) == pytest.approx([22.5, 0.0])  # beyond the end
    assert point_at_distance(2.0, 3.0, 5.0) == pytest.approx([6.0, 0.0])  # 3-4-5 triangle
    assert point_at_distance(15.0, 0.0, 2.0) == pytest.approx([17.0, 0.0])  # past the end: keeps going
    assert geometry.point_at_arc_length(4.5) == pytest.approx([4.5, 0.0])


def test_clean_path_drops_repeated_points_and_rejects_bad_paths():
    path = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    cleaned, keep = clean_path(path)
    assert cleaned.tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    assert keep.tolist() == [True, False, True, False, True]
    geometry = PathGeometry(path)
    assert geometry.keep.tolist() == keep.tolist() and geometry.s_m == pytest.approx([0.0, 1.0, 2.0])
    assert PathGeometry(cleaned).keep is None
    assert clean_path(np.zeros((0, 2)))[0].shape == (0, 2)
    with pytest.raises(ValueError):
        clean_path(np.array([[0.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError):
        clean_path(np.zeros((4, 3)))
    for bad in (np.array([[0.0, 0.0], [np.inf, 1.0]]), np.array([[np.nan, 0.0]]), np.zeros((4, 3))):
        with pytest.raises(ValueError):
            PathGeometry(bad)


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize(
    "path", [np.zeros((0, 2)), np.array([[5.0, 1.0]]), np.array([[5.0, 1.0], [5.0, 1.0], [5.0, 1.0]])]
)
def test_degenerate_path_gives_zero_steer(name, path):
    steer, log = LAWS[name]().steer(EgoState(0.0, 0.0, 0.0, 10.0), path)
    assert steer == 0.0
    assert all(isinstance(value, float) for value in log.values())


@pytest.mark.parametrize("name", LAWS)
def test_steer_is_limited_and_points_back_to_a_far_path(name):
    turn_right = np.stack([np.full(20, 5.0), -1.0 - np.arange(20.0)], axis=1)  # heads south beside us
    steer, _ = LAWS[name]().steer(EgoState(5.0, 0.0, 0.0, 0.0), turn_right)
    assert steer == -MAX_STEER_RAD
    far = np.stack([np.arange(0.0, 50.0), np.full(50, -30.0)], axis=1)  # 30 m to the right
    steer, log = LAWS[name]().steer(EgoState(5.0, 0.0, 0.0, 10.0), far)
    assert -MAX_STEER_RAD <= steer < -0.1
    assert log["cross_track_error_m"] == pytest.approx(30.0)
    behind = np.stack([np.arange(-50.0, -10.0), np.zeros(40)], axis=1)  # the car is past its end
    steer, _ = LAWS[name]().steer(EgoState(0.0, 0.5, 0.0, 10.0), behind)
    assert -MAX_STEER_RAD < steer < 0.0


def test_pure_pursuit_outside_a_corner_farther_than_the_lookahead():
    # The nearest path point is the corner, 4.1 m away, though the perpendicular offset to either
    # leg is below the 4 m lookahead: aim one lookahead down the path, (10, -4), i.e. to the right.
    path = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, -10.0]])  # east, then south
    ego = EgoState(14.0, 1.0 - 0.5 * WHEELBASE_M, -math.pi / 2, 0.0)  # rear axle at (14, 1), facing south
    steer, log = pure_pursuit().steer(ego, path)
    assert (log["target_x_m"], log["target_y_m"]) == (pytest.approx(10.0), pytest.approx(-4.0))
    assert -MAX_STEER_RAD <= steer < 0.0

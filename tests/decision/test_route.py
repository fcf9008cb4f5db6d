"""The road's centre line: length, arc geometry, Frenet round trip."""

import numpy as np
import pytest

from decision.route import Road, Route, Segment

RADIUS_M = 40.0


def straight_arc_straight(radius_m: float = RADIUS_M) -> Road:
    segs = [Segment("straight", 50.0), Segment("arc", 100.0, radius_m), Segment("straight", 50.0)]
    return Road(segs, lane_count=2, lane_width_m=3.5, speed_limit_mps=20.0)


def test_length_is_the_sum_of_the_segments():
    road = straight_arc_straight()
    assert road.length_m == pytest.approx(200.0)
    assert road.s_m[-1] == pytest.approx(200.0)
    # The sampled polyline is as long as the road (chords of a 40 m arc lose < 1 mm).
    seg = np.diff(road.xy_m, axis=0)
    assert np.hypot(seg[:, 0], seg[:, 1]).sum() == pytest.approx(200.0, abs=0.01)


@pytest.mark.parametrize("radius_m", [RADIUS_M, -RADIUS_M])
def test_arc_points_lie_at_the_radius_from_the_centre(radius_m):
    road = straight_arc_straight(radius_m)
    # The arc starts at (50, 0) heading +x; its centre is |R| to the left (R > 0) or right.
    centre = np.array([50.0, radius_m])
    on_arc = (road.s_m >= 50.0) & (road.s_m <= 150.0)
    dist = np.hypot(*(road.xy_m[on_arc] - centre).T)
    assert dist == pytest.approx(np.full(on_arc.sum(), abs(radius_m)), abs=1e-6)
    # After the arc the heading has turned by length / R; the last straight keeps it.
    assert road.heading_rad[-1] == pytest.approx(100.0 / radius_m)
    x, y, h = road.to_world(150.0, 0.0)
    expected = centre + abs(radius_m) * np.array(
        [np.sin(100.0 / abs(radius_m)), -np.sign(radius_m) * np.cos(100.0 / radius_m)]
    )
    assert (x, y) == pytest.approx(tuple(expected), abs=1e-3)


def test_lane_offsets_and_lane_lookup():
    road = straight_arc_straight()
    assert road.lane_offset_m(0) == pytest.approx(-1.75)
    assert road.lane_offset_m(1) == pytest.approx(1.75)
    assert road.lane_at(-1.0) == 0 and road.lane_at(0.5) == 1 and road.lane_at(9.0) == 1


@pytest.mark.parametrize("radius_m", [RADIUS_M, -RADIUS_M])
def test_frenet_round_trip_within_a_centimetre(radius_m):
    road = straight_arc_straight(radius_m)
    rng = np.random.default_rng(0)
    s = rng.uniform(0.5, road.length_m - 0.5, 2000)
    d = rng.uniform(-road.half_width_m, road.half_width_m, 2000)
    x, y, _ = road.to_world(s, d)
    s2, d2 = road.to_frenet(np.stack([x, y], axis=1))
    assert np.abs(s2 - s).max() < 0.01
    assert np.abs(d2 - d).max() < 0.01
    # The windowed search near a hint gives the same answer for points near it.
    near = np.abs(s - 100.0) < 30.0
    s3, d3 = road.to_frenet(np.stack([x[near], y[near]], axis=1), s_hint_m=100.0)
    assert s3 == pytest.approx(s2[near], abs=1e-9) and d3 == pytest.approx(d2[near], abs=1e-9)
    # One point in, floats out.
    s1, d1 = road.to_frenet(np.array([x[0], y[0]]))
    assert (
        isinstance(s1, float) and s1 == pytest.approx(s[0], abs=0.01) and d1 == pytest.approx(d[0], abs=0.01)
    )


def test_route_completion_is_clipped():
    route = Route(straight_arc_straight(), start_s_m=10.0, goal_s_m=110.0, lane=0, cruise_speed_mps=15.0)
    assert route.completion(0.0) == 0.0
    assert route.completion(60.0) == pytest.approx(0.5)
    assert route.completion(500.0) == 1.0


def nearest_sample_frenet(road: Road, pts: np.ndarray):
    """Reference: each point measured from its nearest sample (by brute force), along the tangent
    there and across it, distance along shrunk by (1 - kappa d) on the point's side."""
    i = ((pts[:, None, :] - road.xy_m[None]) ** 2).sum(axis=2).argmin(axis=1)
    t = np.stack([np.cos(road.heading_rad[i]), np.sin(road.heading_rad[i])], axis=1)
    delta = pts - road.xy_m[i]
    along, d = (delta * t).sum(axis=1), delta[:, 1] * t[:, 0] - delta[:, 0] * t[:, 1]
    k = np.where(along < 0.0, road.curvature[np.maximum(i - 1, 0)], road.curvature[i])
    return road.s_m[i] + along / np.maximum(1.0 - k * d, 0.1), d


MIXED = [
    Segment("straight", 60.0),
    Segment("arc", 50.0, 30.0),
    Segment("straight", 40.0),
    Segment("arc", 60.0, -45.0),
]


@pytest.mark.parametrize("segments", [MIXED, [Segment("straight", 200.0)]], ids=["bends", "straight"])
def test_to_frenet_with_a_hint_is_the_nearest_sample_projection(segments):
    road = Road(
        segments, lane_count=3, lane_width_m=3.5, speed_limit_mps=20.0, origin_xy_yaw=(5.0, -3.0, 0.7)
    )
    rng = np.random.default_rng(1)
    for hint in np.linspace(0.0, road.length_m, 41):
        # Points on the road near the hint: on one straight, in a bend, or on both sides of a junction.
        s = np.clip(hint + rng.uniform(-25.0, 25.0, 12), 0.0, road.length_m)
        x, y, _ = road.to_world(s, rng.uniform(-road.half_width_m, road.half_width_m, 12))
        pts = np.stack([x, y], axis=1)
        want_s, want_d = nearest_sample_frenet(road, pts)  # all within the searched window
        got_s, got_d, to_road = road.to_frenet_rotation(pts, s_hint_m=hint, window_m=30.0)
        assert got_s == pytest.approx(want_s, abs=1e-9) and got_d == pytest.approx(want_d, abs=1e-9)
        # The rotation into road coordinates: by the heading at s.
        assert np.broadcast_to(to_road, (12,)) == pytest.approx(
            np.exp(-1j * np.interp(want_s, road.s_m, road.heading_rad)), abs=1e-12
        )
        # One point: walked to from the hint, the same answer.
        one = road.to_frenet(pts[0], s_hint_m=hint, window_m=30.0)
        assert one == pytest.approx((want_s[0], want_d[0]), abs=1e-9)


def test_a_hairpin_is_searched_in_full_near_the_other_leg():
    # Two straights 30 m apart joined by a half turn: a point beside one leg is nearer to the other.
    radius = 15.0
    road = Road(
        [Segment("straight", 80.0), Segment("arc", np.pi * radius, radius), Segment("straight", 80.0)],
        2,
        3.5,
        15.0,
    )
    assert 0.0 < road.reach_m <= radius and Road([Segment("straight", 50.0)], 2, 3.5, 15.0).reach_m == np.inf
    s = np.array([10.0, 40.0, 70.0])
    x, y, _ = road.to_world(
        s, np.array([-1.0, 14.0, 2.0])
    )  # the middle one 14 m from this leg, 16 m from the other
    other = road.to_world(road.length_m - 40.0, 0.0)  # this one on the other leg, beside the first
    pts = np.vstack([np.stack([x, y], axis=1), [other[0], other[1]]])
    got = road.to_frenet(pts, s_hint_m=40.0, window_m=road.length_m)
    want = nearest_sample_frenet(road, pts)
    assert got[0] == pytest.approx(want[0], abs=1e-9) and got[1] == pytest.approx(want[1], abs=1e-9)
    assert got[0][3] == pytest.approx(road.length_m - 40.0, abs=1e-6)
    # From a stale hint on the other leg, one point still finds its own.
    assert road.to_frenet(pts[1], s_hint_m=road.length_m - 40.0, window_m=road.length_m) == pytest.approx(
        (want[0][1], want[1][1]), abs=1e-9
    )

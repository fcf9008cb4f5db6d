"""EgoFrenet gives what Road.to_frenet gives, for a point moving along (and off) a road."""

import numpy as np
import pytest

from decision.route import Road, Segment
from sim.world.ego_frenet import EgoFrenet


@pytest.mark.parametrize(
    "segments",
    [
        [Segment("straight", 120.0), Segment("arc", 200.0, 150.0), Segment("arc", 150.0, -300.0)],
        [Segment("straight", 40.0), Segment("arc", 100.0, 25.0)],  # too curvy for the walk: the road answers
    ],
)
def test_same_answer_as_road_to_frenet(segments):
    road = Road(segments, lane_count=3, lane_width_m=3.5, speed_limit_mps=20.0)
    frenet = EgoFrenet(road)
    rng = np.random.default_rng(1)
    s, d, hint = 0.0, -3.5, 0.0
    for _ in range(400):  # a wandering point: lane changes, off the road and back, a jump
        s = min(s + rng.uniform(0.0, 1.5), road.length_m + 5.0)
        d = float(np.clip(d + rng.normal(0.0, 0.4), -9.0, 9.0))
        x, y, _ = road.to_world(s, d)
        expected = road.to_frenet(np.array([float(x), float(y)]), s_hint_m=hint)
        assert frenet.locate(float(x), float(y), hint) == expected
        hint = expected[0]
    assert frenet.locate(0.0, 0.0, road.length_m) == road.to_frenet(np.zeros(2), s_hint_m=road.length_m)

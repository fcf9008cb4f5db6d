"""Fixtures of the metrics tests: the route that the criteria and the scores are measured on."""

import pytest

from decision.route import Route


@pytest.fixture(scope="session")
def make_route(straight_road):
    """make_route(goal_s_m=200.0) -> the route along lane 0 (d = -1.75 m) of a straight two-lane
    road 300 m long, from the origin heading east: s = x and d = y. Cruise speed 15 m/s."""

    def make(goal_s_m: float = 200.0) -> Route:
        return Route(straight_road(300.0), start_s_m=0.0, goal_s_m=goal_s_m, lane=0, cruise_speed_mps=15.0)

    return make

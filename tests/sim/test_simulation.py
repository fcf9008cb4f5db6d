"""The random streams of a run: named, independent, and the same streams as before they had names;
and what the ego's microphones hear."""

import math

import numpy as np

from sim.app import config as C
from sim.simulation import RandomStreams, Simulation


def test_each_part_gets_its_own_child_of_the_seed_in_a_fixed_order():
    streams = RandomStreams.from_seed(7)
    children = np.random.SeedSequence(7).spawn(7)
    parts = ("scenario", "world", "traffic", "perception", "camera", "mount", "hearing")
    for part, child in zip(parts, children, strict=True):
        expected = np.random.default_rng(child).random(3)
        np.testing.assert_array_equal(getattr(streams, part).random(3), expected)


def test_a_draw_in_one_part_leaves_the_others_alone():
    a, b = RandomStreams.from_seed(3), RandomStreams.from_seed(3)
    a.world.random(100)  # only a's world draws
    assert a.traffic.random() == b.traffic.random()
    assert a.world.random() != b.world.random()
    assert RandomStreams.from_seed(4).scenario.random() != RandomStreams.from_seed(3).scenario.random()


def test_the_microphones_hear_the_ambulance_behind_at_its_bearing_within_their_range():
    """YieldToEmergencyVehicle: the ambulance starts 65-90 m behind the ego in its lane."""
    loaded = C.load_checked("drive", ["scenario=YieldToEmergencyVehicle", "sim.camera.enabled=false"])
    spec = C.scenario_spec(loaded.cfg, RandomStreams.from_seed(3).scenario)
    sim = Simulation(loaded.values.sim, spec, 3, camera=False)
    try:
        (row,) = np.flatnonzero(sim.actors.emergency)
        e = sim.ego_state
        dx, dy = sim.actors.xy_m[row] - (e.x_m, e.y_m)
        truth = math.atan2(dy, dx) - e.yaw_rad
        heard = np.array([sim.sirens() for _ in range(400)])  # one siren, 400 draws at this tick
        assert heard.shape == (400, 1)
        error = np.degrees((heard[:, 0] - truth + math.pi) % (2 * math.pi) - math.pi)
        assert abs(error.mean()) < 1.0 and 4.0 < error.std() < 6.0  # bearing_std_deg: 5
        assert math.pi - abs(heard[0, 0]) < math.radians(20.0)  # behind
        sim.cfg.hearing.range_m = math.hypot(dx, dy) - 1.0
        assert sim.sirens() == ()
    finally:
        sim.close()

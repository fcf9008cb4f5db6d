"""The random streams of a run: named, independent, and the same streams as before they had names."""

import numpy as np

from sim.simulation import RandomStreams


def test_each_part_gets_its_own_child_of_the_seed_in_a_fixed_order():
    streams = RandomStreams.from_seed(7)
    children = np.random.SeedSequence(7).spawn(6)
    parts = ("scenario", "world", "traffic", "perception", "camera", "mount")
    for part, child in zip(parts, children, strict=True):
        expected = np.random.default_rng(child).random(3)
        np.testing.assert_array_equal(getattr(streams, part).random(3), expected)


def test_a_draw_in_one_part_leaves_the_others_alone():
    a, b = RandomStreams.from_seed(3), RandomStreams.from_seed(3)
    a.world.random(100)  # only a's world draws
    assert a.traffic.random() == b.traffic.random()
    assert a.world.random() != b.world.random()
    assert RandomStreams.from_seed(4).scenario.random() != RandomStreams.from_seed(3).scenario.random()

"""Sirens heard mark the emergency vehicles among the tracks; one no track accounts for is reported."""

import math

import numpy as np

from perception.hearing import match_sirens
from perception.types import PEDESTRIAN, VEHICLE, EgoState


def test_a_siren_marks_the_vehicle_nearest_its_bearing_or_the_one_it_was_heard_from_before():
    ego = EgoState(10.0, 5.0, math.pi / 2, 12.0)  # heading north: behind is south
    # A car 40 m behind, a pedestrian 20 m behind a little to the right, a car 30 m ahead.
    xy = np.array([[10.0, -35.0], [10.5, -15.0], [10.0, 35.0]])
    classes = np.array([VEHICLE, PEDESTRIAN, VEHICLE])
    gate = math.radians(15.0)

    marked = match_sirens([math.pi - 0.05], ego, xy, classes, gate)  # heard behind, 3 deg off
    assert marked.tolist() == [True, False, False]
    # Heard from the left: no vehicle there.
    assert not match_sirens([math.pi / 2], ego, xy, classes, gate).any()
    # A car passing 7 m to the left, 39 m behind, nearer the bearing heard than the one heard before.
    xy = np.vstack([xy, [3.0, -34.0]])
    classes = np.append(classes, VEHICLE)
    heard = math.pi - math.atan2(7.0, 39.0) + 0.02  # (behind and to the left: below pi)
    assert match_sirens([heard], ego, xy, classes, gate).tolist() == [False, False, False, True]
    before = np.array([True, False, False, False])
    assert match_sirens([heard], ego, xy, classes, gate, before).tolist() == [True, False, False, False]
    # ... unless the one before is out of the gate now.
    far = math.pi - math.radians(20.0)
    assert match_sirens([far], ego, xy, classes, gate, before).tolist() == [False, False, False, True]
    # No tracks at all; and nothing heard.
    assert match_sirens([3.0], ego, np.zeros((0, 2)), np.zeros(0, np.int64), gate).shape == (0,)
    assert not match_sirens([], ego, xy, classes, gate).any()

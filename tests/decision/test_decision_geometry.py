"""Angle wrapping and the quintic lane-change blend (decision/geometry.py)."""

import math

import numpy as np
import pytest

from decision.geometry import quintic_blend, quintic_blend_slope, wrap_angle


def test_wrap_angle_on_floats_and_arrays():
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(math.pi) == pytest.approx(-math.pi)  # [-pi, pi)
    assert isinstance(wrap_angle(0.5), float)
    np.testing.assert_allclose(wrap_angle(np.array([0.1, -0.1 - 2 * np.pi, 7 * np.pi])), [0.1, -0.1, -np.pi])


def test_quintic_blend_ends_flat_and_its_slope_is_its_derivative():
    assert quintic_blend(0.0) == 0.0 and quintic_blend(1.0) == 1.0 and quintic_blend(0.5) == 0.5
    assert quintic_blend_slope(0.0) == 0.0 and quintic_blend_slope(1.0) == 0.0
    x = np.linspace(0.0, 1.0, 201)
    assert np.all(np.diff(quintic_blend(x)) > 0.0)
    h = 1e-6
    numeric = (quintic_blend(x[1:-1] + h) - quintic_blend(x[1:-1] - h)) / (2 * h)
    np.testing.assert_allclose(quintic_blend_slope(x[1:-1]), numeric, atol=1e-6)
    # Zero curvature at both ends: the slope is flat there too.
    assert quintic_blend_slope(h) < 1e-9 and quintic_blend_slope(1.0 - h) < 1e-9

"""Small geometry shared by decision, control and sim: angle wrapping, and the quintic curve that
shapes every lane change (the ego's planned path and the simulated traffic's alike).

Each function takes a float or a numpy array and works elementwise.
"""

from __future__ import annotations

import math


def wrap_angle(angle_rad):
    """Angle [rad] wrapped into [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def quintic_blend(x):
    """The quintic smoothstep 10 x^3 - 15 x^4 + 6 x^5 of x in [0, 1]: from 0 to 1 with zero slope
    and zero curvature at both ends (a lane change's fraction of the way across at fraction x of
    its length)."""
    return x * x * x * (10.0 + x * (6.0 * x - 15.0))


def quintic_blend_slope(x):
    """d/dx of `quintic_blend`: 30 x^2 (1 - x)^2."""
    return 30.0 * (x * x) * (1.0 - x) ** 2

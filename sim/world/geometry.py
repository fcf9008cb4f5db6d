"""2-D geometry of oriented boxes on the ground: corners and the separating-axis overlap test.

Boxes are centred at (x, y) with heading `yaw` [rad]; `length` runs along the heading, `width`
across it. `box_corners` works on arrays of N boxes at once (no per-box Python loops);
`obb_overlap_pair` tests one pair of boxes in plain floats, for the per-tick collision check
(`sim.metrics.criteria`).
"""

from __future__ import annotations

import math

import numpy as np

# Unit corners in the box frame, counter-clockwise from front-left: (forward, left) in half sizes.
_UNIT_CORNERS = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])


def box_corners(xy: np.ndarray, yaw: np.ndarray, length: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Corners of N oriented boxes: the one corner formula of the project.

    xy: (N, 2) centres [m]; yaw: (N,) [rad]; length, width: (N,) [m]. For one box, scalars and a
    (2,) centre do (N = 1). Returns (N, 4, 2) world corners, counter-clockwise from the front-left
    corner: front-left, rear-left, rear-right, front-right.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    yaw = np.asarray(yaw, dtype=float).reshape(-1, 1)
    fwd = np.asarray(length, dtype=float).reshape(-1, 1) * (0.5 * _UNIT_CORNERS[:, 0])  # (N, 4)
    left = np.asarray(width, dtype=float).reshape(-1, 1) * (0.5 * _UNIT_CORNERS[:, 1])
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.empty((len(xy), 4, 2))
    out[..., 0] = xy[:, 0:1] + c * fwd - s * left
    out[..., 1] = xy[:, 1:2] + s * fwd + c * left
    return out


def obb_overlap_pair(
    a_x: float,
    a_y: float,
    a_yaw: float,
    a_length: float,
    a_width: float,
    b_x: float,
    b_y: float,
    b_yaw: float,
    b_length: float,
    b_width: float,
) -> bool:
    """Separating-axis test of two boxes given by centre [m], yaw [rad] and size [m], in plain floats:
    True where they overlap or touch.

    The four candidate axes are the boxes' edge normals; each box's extent along them is worked
    out in closed form from its half sizes (tests/sim/world/test_geometry.py checks it against
    the projections of the corners). The collision check runs it on the one to three actors near
    the ego every tick, where numpy's per-call overhead would dominate (measured: ~1 us a pair,
    against ~40 us for the same test on numpy arrays of corners).
    """
    ca, sa = math.cos(a_yaw), math.sin(a_yaw)
    dx, dy = b_x - a_x, b_y - a_y
    tx, ty = ca * dx + sa * dy, ca * dy - sa * dx  # B's centre in A's frame
    cr, sr = math.cos(b_yaw - a_yaw), math.sin(b_yaw - a_yaw)
    c, s = abs(cr), abs(sr)
    ahl, ahw, bhl, bhw = 0.5 * a_length, 0.5 * a_width, 0.5 * b_length, 0.5 * b_width
    return not (
        abs(tx) > ahl + bhl * c + bhw * s  # A's forward axis
        or abs(ty) > ahw + bhl * s + bhw * c  # A's lateral axis
        or abs(tx * cr + ty * sr) > bhl + ahl * c + ahw * s  # B's forward axis
        or abs(ty * cr - tx * sr) > bhw + ahl * s + ahw * c  # B's lateral axis
    )

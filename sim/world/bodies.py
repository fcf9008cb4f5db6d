"""Visual-only static PyBullet bodies built from `sim.world.actor_shapes` parts.

A part (boxes or cylinders of one colour) becomes one visual shape array; a body is a base and
fixed links, one per part, each tinted with its colour (the EGL renderer ignores per-shape
colours, so a colour needs a link of its own). Bodies have no collision shapes and no mass: they
are seen, never simulated. Used for the actors (`sim.world.world.World`) and the props
(`sim.world.props`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pybullet as p

from sim.world.actor_shapes import Boxes, Part

IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)
# Orientation that lays a PyBullet cylinder (along z) along each body axis.
AXIS_QUAT = {
    "z": IDENTITY_QUAT,
    "y": (float(np.sin(np.pi / 4)), 0.0, 0.0, float(np.cos(np.pi / 4))),  # z -> -y
    "x": (0.0, float(np.sin(np.pi / 4)), 0.0, float(np.cos(np.pi / 4))),  # z -> x
}


def visual_shape(client: int, part: Part) -> int:
    """One PyBullet visual shape of all the boxes or cylinders of `part` (-1 on failure)."""
    if isinstance(part, Boxes):
        return p.createVisualShapeArray(
            shapeTypes=[p.GEOM_BOX] * len(part.centres_m),
            halfExtents=part.half_extents_m,
            visualFramePositions=part.centres_m,
            visualFrameOrientations=[IDENTITY_QUAT] * len(part.centres_m),
            physicsClientId=client,
        )
    return p.createVisualShapeArray(
        shapeTypes=[p.GEOM_CYLINDER] * len(part.radii_m),
        radii=part.radii_m,
        lengths=part.lengths_m,
        visualFramePositions=part.centres().tolist(),
        visualFrameOrientations=[AXIS_QUAT[part.axis]] * len(part.radii_m),
        physicsClientId=client,
    )


def static_body(
    client: int,
    shapes: Sequence[int],
    rgbas: Sequence[Sequence[float]],
    position_m: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = IDENTITY_QUAT,
) -> int:
    """A static body at a pose: visual shape `shapes[0]` as its base, the others as fixed links at
    the base's origin, each (base included) tinted with its colour (4,) of `rgbas`."""
    k = len(shapes) - 1  # links besides the base
    zero = [0.0, 0.0, 0.0]
    body = p.createMultiBody(
        baseMass=0.0,
        baseCollisionShapeIndex=-1,
        baseVisualShapeIndex=shapes[0],
        basePosition=list(position_m),
        baseOrientation=list(orientation),
        linkMasses=[0.0] * k,
        linkCollisionShapeIndices=[-1] * k,
        linkVisualShapeIndices=list(shapes[1:]),
        linkPositions=[zero] * k,
        linkOrientations=[list(IDENTITY_QUAT)] * k,
        linkInertialFramePositions=[zero] * k,
        linkInertialFrameOrientations=[list(IDENTITY_QUAT)] * k,
        linkParentIndices=[0] * k,
        linkJointTypes=[p.JOINT_FIXED] * k,
        linkJointAxis=[[0.0, 0.0, 1.0]] * k,
        physicsClientId=client,
    )
    for link, rgba in enumerate(rgbas, start=-1):
        p.changeVisualShape(body, link, rgbaColor=[float(c) for c in rgba], physicsClientId=client)
    return body

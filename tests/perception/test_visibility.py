"""What a rig can see: camera views from frames, points in view, and ground truth limited to the rig."""

import math

import numpy as np
import pytest

from perception.ground_truth import GroundTruthPerceiver
from perception.types import CameraFrame, EgoState, WorldModel
from perception.visibility import CameraView, in_view, sight_blocked, view_of_frame, visible_objects
from sim.world.camera import camera_pose, intrinsics

FRONT = CameraView("front", 0.8, 0.0, 0.0, 75.0, 80.0)
REAR = CameraView("rear", -1.6, 0.0, 180.0, 110.0, 80.0)


def test_the_view_of_a_frame_is_its_camera_on_the_ego():
    ego = EgoState(10.0, 5.0, math.pi / 2, 0.0)  # heading +y
    pose = camera_pose(10.0, 5.0, math.pi / 2, -0.9, 1.4, 4.0, mount_y_m=0.8, yaw_deg=110.0)
    frame = CameraFrame(np.zeros((192, 320, 3), np.uint8), intrinsics(320, 192, 75.0), pose, 0.0, camera="rl")
    view = view_of_frame(frame, ego, 80.0)
    assert view.name == "rl" and view.range_m == 80.0
    assert (view.mount_x_m, view.mount_y_m, view.yaw_deg, view.hfov_deg) == pytest.approx(
        (-0.9, 0.8, 110.0, 75.0)
    )


def test_points_in_view_follow_the_wedges_the_ranges_and_the_ego_pose():
    pts = np.array([[20.0, 0.0], [20.0, 30.0], [-20.0, 0.0], [100.0, 0.0], [0.0, 4.0]])
    assert in_view([FRONT], (0.0, 0.0), 0.0, pts).tolist() == [True, False, False, False, False]
    assert in_view([FRONT, REAR], (0.0, 0.0), 0.0, pts).tolist() == [True, False, True, False, False]
    # A point just outside the wedge is in view once its radius reaches in.
    a = math.radians(40.0)  # 2.5 degrees outside its 75-degree wedge, 10 m from the camera
    edge = np.array([[0.8 + 10.0 * math.cos(a), 10.0 * math.sin(a)]])
    assert not in_view([FRONT], (0.0, 0.0), 0.0, edge)[0] and in_view([FRONT], (0.0, 0.0), 0.0, edge, 2.0)[0]
    # The ego turned around: what was ahead is behind.
    assert in_view([FRONT], (0.0, 0.0), math.pi, pts[:1]).tolist() == [False]
    assert in_view(None, (0.0, 0.0), 0.0, pts).all()  # no views: all around


def test_a_vehicle_hides_what_lies_behind_it_from_a_camera():
    truck = (np.array([[20.0, 0.0]]), np.array([0.0]), np.array([[8.0, 2.5]]))  # 20 m ahead, along x
    pts = np.array([[40.0, 0.0], [40.0, 10.0], [10.0, 0.0], [20.0, 0.5], [60.0, 7.5]])
    # Behind it: hidden; beside it and before it: seen; inside its footprint: hidden; (60, 7.5): the
    # line of sight passes 0.75 m left of its near corner (16, 1.25) ...
    assert sight_blocked((0.0, 0.0), pts, truck).tolist() == [True, False, False, True, False]
    turned = (truck[0], np.array([0.5]), truck[2])  # ... turned by 0.5 rad, a corner (22.9, 3.0) crosses it
    assert sight_blocked((0.0, 0.0), pts[4:], turned).tolist() == [True]
    nothing = (np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)))
    assert not sight_blocked((0.0, 0.0), pts, nothing).any()
    # From a camera 6 m to the side, the point straight behind it shows past its end.
    assert sight_blocked((0.0, 6.0), pts[:1], truck).tolist() == [False]
    # In a camera's view: covered by its wedge and not hidden; another camera may see past.
    seen = in_view([FRONT], (0.0, 0.0), 0.0, pts, occluders=truck)
    assert seen.tolist() == [False, True, True, False, True]
    beside = CameraView("left", 0.0, 6.0, 0.0, 75.0, 80.0)
    assert in_view([FRONT, beside], (0.0, 0.0), 0.0, pts[:1], occluders=truck).tolist() == [True]


def test_an_object_is_visible_when_a_camera_sees_its_centre_or_a_corner():
    """Cars ahead of the front camera: the first hides the one straight behind it, not one that
    shows a corner past it, nor does a pedestrian hide a car; behind the camera nothing is seen."""
    xy = np.array([[20.0, 0.0], [40.0, 0.0], [40.0, 1.2], [60.0, 8.0], [58.0, 8.0], [-20.0, 0.0]])
    size = np.array([[4.5, 1.8], [4.5, 1.8], [4.5, 1.8], [4.5, 1.8], [0.6, 0.6], [4.5, 1.8]])
    seen = visible_objects([FRONT], (0.0, 0.0), 0.0, xy, np.zeros(6), size)
    # (40, 1.2): its centre is hidden, its near left corner (37.975, 2.01) shows past the first car's
    # left side (y = 0.9).
    assert seen.tolist() == [True, False, True, True, True, False]
    # Turned across the road, the first car hides the one at (40, 1.2) too.
    across = visible_objects([FRONT], (0.0, 0.0), 0.0, xy[:3], np.array([np.pi / 2, 0.0, 0.0]), size[:3])
    assert across.tolist() == [True, False, False]


def test_ground_truth_limited_to_the_rig_keeps_what_its_cameras_see():
    n = 4
    truth = WorldModel(
        ego=EgoState(0.0, 0.0, 0.0, 10.0), t_s=0.0, ids=np.arange(n), class_ids=np.zeros(n, np.int64),
        xy_m=np.array([[20.0, 0.0], [-20.0, 0.0], [0.0, 3.5], [40.0, 0.0]]), v_mps=np.zeros((n, 2)),
        yaw_rad=np.zeros(n), size_m=np.tile([4.5, 1.8], (n, 1)), scores=np.ones(n),
    )  # fmt: skip
    args = dict(
        position_noise_m=0.0, velocity_noise_mps=0.0, miss_probability=0.0, latency_s=0.0, max_range_m=150.0
    )
    everything = GroundTruthPerceiver(**args)
    assert everything.perceive(None, truth.ego, truth).ids.tolist() == [0, 1, 2, 3]
    front = GroundTruthPerceiver(**args, visibility="rig", views=(FRONT,))
    seen = front.perceive(None, truth.ego, truth)
    assert seen.ids.tolist() == [0] and seen.views == (FRONT,)  # car 3 is behind car 0
    with pytest.raises(ValueError, match="needs the rig's camera views"):
        GroundTruthPerceiver(**args, visibility="rig")
    with pytest.raises(ValueError, match="visibility"):
        GroundTruthPerceiver(**args, visibility="some")


def test_drive_with_ground_truth_limited_to_the_front_camera():
    from sim.app.drive import drive

    base = ["scenario=static_obstacle", "seed=1", "video=false", "plot=false", "sim/rig=front"]
    limited, _ = drive([*base, "perception.visibility=rig"], write=False)
    full, _ = drive(base, write=False)
    # All around it passes the parked car; seeing only ahead it never changes lanes blind: it waits.
    assert full.summary["outcome"] == "completed"
    assert limited.summary["outcome"] == "blocked" and not any(
        e.kind.startswith("collision") for e in limited.events
    )

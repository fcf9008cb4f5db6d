"""What a rig can see: camera views from frames, points in view, and ground truth limited to the rig."""

import math

import numpy as np
import pytest

from perception.ground_truth import GroundTruthPerceiver
from perception.types import CameraFrame, EgoState, WorldModel
from perception.visibility import CameraView, in_view, view_of_frame
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


def test_ground_truth_limited_to_the_rig_keeps_what_its_cameras_see():
    n = 3
    truth = WorldModel(
        ego=EgoState(0.0, 0.0, 0.0, 10.0), t_s=0.0, ids=np.arange(n), class_ids=np.zeros(n, np.int64),
        xy_m=np.array([[20.0, 0.0], [-20.0, 0.0], [0.0, 3.5]]), v_mps=np.zeros((n, 2)), yaw_rad=np.zeros(n),
        size_m=np.tile([4.5, 1.8], (n, 1)), scores=np.ones(n),
    )  # fmt: skip
    args = dict(
        position_noise_m=0.0, velocity_noise_mps=0.0, miss_probability=0.0, latency_s=0.0, max_range_m=150.0
    )
    everything = GroundTruthPerceiver(**args)
    assert everything.perceive(None, truth.ego, truth).ids.tolist() == [0, 1, 2]
    front = GroundTruthPerceiver(**args, visibility="rig", views=(FRONT,))
    seen = front.perceive(None, truth.ego, truth)
    assert seen.ids.tolist() == [0] and seen.views == (FRONT,)
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

"""The camera perceiver: one batch for a rig, one track per object, traffic-light states."""

from dataclasses import replace

import numpy as np
import pytest

from perception.types import CameraFrame, EgoState
from sim.world.camera import camera_pose


def test_a_rig_goes_through_the_detector_in_one_batch(tiny_cnn, monkeypatch):
    cnn = tiny_cnn(0.05)
    calls = []
    detect = cnn.detector.detect
    monkeypatch.setattr(
        cnn.detector, "detect", lambda batch, t: calls.append(batch.shape) or detect(batch, t)
    )
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    K = np.array([[32.0, 0.0, 32.0], [0.0, 32.0, 24.0], [0.0, 0.0, 1.0]])
    frames = [
        CameraFrame(rgb, K, camera_pose(0.0, 0.0, 0.0, 0.8, 1.4, 4.0, 0.0, yaw), 0.0) for yaw in (0, 90, 180)
    ]
    world = cnn.perceive(frames, EgoState(0.0, 0.0, 0.0, 0.0), None)
    assert calls == [(3, 48, 64, 3)]  # one forward for the three cameras
    assert {d.camera for d in world.detections} == {0, 1, 2}  # each box knows its camera


def test_a_light_box_reaches_the_planner_as_its_signals_state_and_is_no_track(tiny_cnn, monkeypatch):
    from perception.lights import MappedLight, projected_boxes
    from perception.types import FIRST_LIGHT_CLASS
    from sim.world.props import LightPose, light_box_corners

    pole = LightPose(30.0, 3.0, np.pi, 7)
    light = MappedLight(7, light_box_corners([pole])[0], pole.yaw_rad)
    K = np.array([[32.0, 0.0, 32.0], [0.0, 32.0, 24.0], [0.0, 0.0, 1.0]])
    frame = CameraFrame(np.zeros((48, 64, 3), np.uint8), K, camera_pose(0.0, 0.0, 0.0, 0.8, 1.4, 4.0), 0.0)
    _, (box,) = projected_boxes([light], frame)
    dets = {
        "boxes_xyxy": np.array([box, [20.0, 22.0, 30.0, 30.0]], dtype=np.float32),  # the light, a car
        "class_ids": np.array([FIRST_LIGHT_CLASS + 2, 0]),  # red
        "scores": np.array([0.9, 0.9], dtype=np.float32),
        "distances_m": np.array([30.0, 15.0], dtype=np.float32),
    }
    cnn = tiny_cnn(0.35)
    monkeypatch.setattr(cnn.detector, "detect", lambda batch, t: [dets] * len(batch))
    cnn.reset(np.random.default_rng(0), lights=[light])
    for t in (0.0, 0.1):
        world = cnn.perceive([replace(frame, t_s=t)], EgoState(0.0, 0.0, 0.0, 0.0, t_s=t), None)
    assert world.signals == ((7, "red"),) and world.signal(7) == "red"
    assert world.class_ids.tolist() == [0]  # the car is tracked, the light is not
    world = cnn.perceive(None, EgoState(0.0, 0.0, 0.0, 0.0, t_s=1.0), None)
    assert world.signal(7) is None  # unseen for longer than light_hold_s
    cnn.reset(np.random.default_rng(0))  # a map without lights: a light box tells nothing
    assert cnn.perceive([frame], EgoState(0.0, 0.0, 0.0, 0.0), None).signals == ()


def test_a_longer_lens_is_trusted_farther_and_its_far_tracks_reach_the_planner(tiny_cnn, monkeypatch):
    cnn = tiny_cnn(0.35)
    rgb = np.zeros((48, 64, 3), np.uint8)

    def frame(hfov_deg: float, t_s: float = 0.0) -> CameraFrame:
        f = 32.0 / np.tan(np.radians(hfov_deg) / 2)
        K = np.array([[f, 0.0, 32.0], [0.0, f, 24.0], [0.0, 0.0, 1.0]])
        return CameraFrame(rgb, K, camera_pose(0.0, 0.0, 0.0, 0.8, 1.4, 4.0), t_s)

    ratio = np.tan(np.radians(75.0) / 2) / np.tan(np.radians(35.0) / 2)  # 2.4: focal lengths
    assert cnn.trusted_range_m(frame(75.0)) == cnn.max_range_m
    assert cnn.trusted_range_m(frame(110.0)) == cnn.max_range_m  # a wider lens is not trusted less
    assert cnn.trusted_range_m(frame(35.0)) == pytest.approx(cnn.max_range_m * ratio)
    no_boxes = {
        k: np.zeros((0, 4) if k == "boxes_xyxy" else 0) for k in ("boxes_xyxy", "class_ids", "scores")
    }
    no_boxes["distances_m"] = np.zeros(0)
    monkeypatch.setattr(cnn.detector, "detect", lambda batch, t: [no_boxes] * len(batch))
    far_m = 1.5 * cnn.max_range_m  # beyond the 75-degree lens's range, within the 35-degree one's
    for hfov, tracks in ((75.0, 0), (35.0, 1)):
        cnn.reset(np.random.default_rng(0))
        cnn.perceive([frame(hfov)], EgoState(0.0, 0.0, 0.0, 0.0), None)  # what the camera covers
        for t in (0.1, 0.2, 0.3):  # a car that far, as a camera would have measured it
            cnn.tracker.update(t, np.array([[far_m, 0.0]]), np.array([1.0]), np.array([0]), np.array([0.9]))
        world = cnn.perceive(None, EgoState(0.0, 0.0, 0.0, 0.0, t_s=0.3), None)
        assert len(world.class_ids) == tracks, hfov


def test_a_camera_sees_the_ground_ahead_of_it_but_not_beside_the_ego_or_behind():
    """in_sight: a 75-degree camera 1.4 m up, pitched 4 degrees down, sees the foot of an object
    10 m ahead, not one 2 m ahead (below its image: the box would be cut off there), beside the
    ego, behind it, or beyond its range."""
    from perception.cnn_perceiver import in_sight
    from sim.world.camera import intrinsics

    frame = CameraFrame(
        np.zeros((192, 320, 3), np.uint8),
        intrinsics(320, 192, 75.0),
        camera_pose(0.0, 0.0, 0.0, 0.8, 1.4, 4.0),
        0.0,
    )
    points = np.array([[10.8, 0.0], [2.8, 0.0], [0.0, 3.0], [-10.0, 0.0], [60.0, 5.0], [100.0, 0.0]])
    assert in_sight([frame], [80.0], points).tolist() == [True, False, False, False, True, False]
    side = replace(frame, cam_to_world=camera_pose(0.0, 0.0, 0.0, 0.5, 1.4, 4.0, -0.8, -90.0))
    assert in_sight([frame, side], [80.0, 80.0], points).tolist() == [True, False, False, False, True, False]
    beside = np.array([[0.5, -10.0], [0.5, -2.5]])  # 9.2 and 1.7 m out from the right camera
    assert in_sight([frame, side], [80.0, 80.0], beside).tolist() == [True, False]

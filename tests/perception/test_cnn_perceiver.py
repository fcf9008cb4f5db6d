"""The camera perceiver: one batch for a rig, one track per object, traffic-light states."""

from dataclasses import replace

import numpy as np

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

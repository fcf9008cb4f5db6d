"""The shipped detector: it is in the package, small, matches conf/model/small.yaml, and finds the
vehicles and pedestrians of frames the simulator renders (with their ground-truth boxes)."""

import numpy as np
import pytest
import torch

from perception.detection.detector import SHIPPED, Detector, resolve_checkpoint
from perception.detection.model import DetectorConfig, load_checkpoint
from perception.types import CLASSES, FIRST_LIGHT_CLASS, PEDESTRIAN, SIGNAL_STATES, VEHICLE


def test_shipped_weights_are_packaged_small_and_match_the_default_model(conf_values):
    path = resolve_checkpoint(SHIPPED)
    assert path.is_file() and path.stat().st_size < 10 * 2**20
    assert (path.parent / "centernet_small.md").is_file()  # the model card
    _, config, extra = load_checkpoint(path, expect_classes=CLASSES)
    assert config == DetectorConfig(**conf_values("model/small.yaml"))
    assert extra["epoch"] >= 1 and extra["classes"] == list(CLASSES)


def frames(scenario: str, seed: int, every_s: float = 0.5, min_height_px: float = 12.0):
    """Camera frames of a ground-truth drive with their ground-truth boxes (unoccluded, untruncated,
    at least `min_height_px` tall)."""
    from sim.app.drive import drive

    out = []

    def keep(sim, frames, world, plan):
        frame = frames[0]
        if round(frame.t_s / every_s, 6) % 1 == 0:
            boxes = [
                b
                for b in sim.boxes(frame)
                if b.visible_fraction >= 0.8
                and b.truncation == 0
                and b.box_xyxy[3] - b.box_xyxy[1] >= min_height_px
            ]
            out.append((frame.rgb.copy(), boxes))

    drive([f"scenario={scenario}", f"seed={seed}", "scenario.duration_s=30", "perception=ground_truth"],
          write=False, on_frame=keep)  # fmt: skip
    return out


@pytest.mark.parametrize(
    "scenario, seed, class_id", [("dense_traffic", 7, VEHICLE), ("busy_street", 7, PEDESTRIAN)]
)
def test_shipped_detector_finds_the_objects_the_simulator_renders(scenario, seed, class_id, box_iou):
    torch.set_num_threads(2)
    det = Detector(SHIPPED, device="cpu")
    shots = frames(scenario, seed)
    found = total = 0
    for rgb, boxes in shots:
        result = det.detect(rgb[None], score_threshold=0.3)[0]
        for b in boxes:
            if b.class_id != class_id:
                continue
            total += 1
            same = result["class_ids"] == b.class_id
            found += any(box_iou(b.box_xyxy, d) >= 0.5 for d in result["boxes_xyxy"][same])
    assert total >= 10, f"the scenario shows too few {CLASSES[class_id]}s to test"
    assert found >= 0.9 * total, f"found {found} of {total} {CLASSES[class_id]}s"


def test_shipped_detector_tells_the_state_of_the_lights_ahead(box_iou):
    """On a signalised junction of an unseen seed, the labelled lights of every camera: the most
    confident light box on each (IoU >= 0.3) mostly has the light's state, and it tells the states
    apart rather than calling every light one of them. (The issue's target, state accuracy >= 0.97
    within 50 m, is `detect-eval`'s on the val split: 0.763, missed; this is a floor under it.)"""
    from sim.app.drive import drive

    lights = []

    def keep(sim, frames, world, plan):
        for frame in frames:
            labels = [b for b in sim.light_boxes(frame) if b.distance_m <= 40.0 and b.visible_fraction >= 0.8]
            if labels:
                lights.append((frame.rgb.copy(), labels))

    args = ["scenario=SignalizedJunctionLeftTurn", "seed=11", "scenario.duration_s=25", "sim.camera_hz=2"]
    drive(args, write=False, on_frame=keep)
    torch.set_num_threads(2)
    det = Detector(SHIPPED, device="cpu")
    given = []  # (true state, given state or None)
    for rgb, labels in lights:
        result = det.detect(rgb[None], score_threshold=0.3)[0]
        is_light = result["class_ids"] >= FIRST_LIGHT_CLASS
        for b in labels:
            on = [k for k in np.flatnonzero(is_light) if box_iou(b.box_xyxy, result["boxes_xyxy"][k]) >= 0.3]
            best = max(on, key=lambda k: result["scores"][k]) if on else None
            given.append(
                (
                    b.state,
                    None if best is None else SIGNAL_STATES[result["class_ids"][best] - FIRST_LIGHT_CLASS],
                )
            )
    found = [(t, g) for t, g in given if g is not None]
    right = [t for t, g in found if t == g]
    assert len(given) >= 10, "the drive shows too few lights to test"
    # Found >= half: the far-side heads (decision/town.py light_poles) came after this model's
    # training data, and it finds fewer of them; the next retrain's data labels them too.
    assert len(found) >= 0.5 * len(given) and len(right) >= 0.6 * len(found), f"{given}"
    assert len({t for t, _ in found}) < 2 or len(set(right)) >= 2, f"one answer for every state: {given}"


def test_detector_rejects_frames_of_the_wrong_size():
    det = Detector(SHIPPED, device="cpu")
    with pytest.raises(ValueError, match="expects uint8 frames"):
        det.detect(np.zeros((1, 100, 100, 3), np.uint8), 0.3)
    with pytest.raises(ValueError, match="expects uint8 frames"):
        det.detect(np.zeros((1, 192, 320, 4), np.uint8), 0.3)


def test_batched_detection_of_vector_env_frames_equals_one_by_one():
    """All cameras of all envs of a gymnasium vector env go through the detector in one call."""
    import gymnasium as gym

    import sim  # noqa: F401  (registers bulletdrive/Drive-v0)

    envs = gym.vector.SyncVectorEnv(
        [lambda s=s: gym.make("bulletdrive/Drive-v0", scenario=s) for s in ("follow_lead", "busy_street")]
    )
    obs, _ = envs.reset(seed=3)
    for _ in range(5):
        obs, *_ = envs.step(np.tile([0.0, 0.3], (2, 1)).astype(np.float32))
    envs.close()
    det = Detector(SHIPPED, device="cpu")
    frames = obs["cameras"].reshape(-1, *obs["cameras"].shape[2:])  # (envs x cameras, H, W, 3)
    batch = det.detect(frames, score_threshold=0.3)
    assert len(batch) == 12
    for b, rgb in enumerate(frames):
        single = det.detect(rgb[None], score_threshold=0.3)[0]
        for key in ("class_ids", "scores", "boxes_xyxy"):
            np.testing.assert_allclose(batch[b][key], single[key], rtol=1e-4, atol=1e-3)
    assert sum(len(r["scores"]) for r in batch) >= 1  # the lead car of follow_lead at least

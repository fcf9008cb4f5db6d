"""Target encoding and the detection loss: encode -> decode round trip, Gaussians, loss values."""

import math

import numpy as np
import pytest
import torch

from perception.detection.model import decode
from perception.training.targets import collate, detection_loss, dont_care, encode, focal_loss

BOXES = np.array(
    [[8.3, 10.0, 40.0, 30.5], [61.0, 20.2, 75.0, 52.0], [30.0, 41.0, 33.0, 44.0], [0, 0, 96, 64]]
)
CLASSES = np.array([0, 1, 2, 0])
DISTANCES = np.array([12.0, 25.0, 60.0, 3.0])


@pytest.fixture(scope="module")
def config(detector_config):
    """64x96 frames: a (16, 24) output grid at stride 4; three classes."""
    return detector_config(input_height=64, input_width=96, num_classes=3)


def perfect_outputs(targets: dict[str, torch.Tensor]) -> dict:
    """The encoded targets written back as raw head outputs: heatmap logits from the gt heatmap,
    regression maps filled at the object centres."""
    B, C, h, w = targets["heatmap"].shape
    gt = targets["heatmap"].clamp(1e-6, 1 - 1e-6)
    out = {"heatmap": torch.log(gt / (1 - gt))}
    for name, c in (("size", 2), ("offset", 2), ("distance", 1)):
        dense = torch.zeros(B, c, h * w)
        for b in range(B):
            m = targets["mask"][b].bool()
            dense[b][:, targets["indices"][b][m]] = targets[name][b][m].reshape(-1, c).T
        out[name] = dense.reshape(B, c, h, w)
    return out


def test_encode_then_decode_returns_the_boxes_classes_and_distances(config):
    images, targets = collate([(torch.zeros(3, 64, 96), encode(BOXES, CLASSES, DISTANCES, config))])
    det = decode(perfect_outputs(targets), score_threshold=0.5, max_distance_m=config.max_distance_m)[0]
    assert len(det["scores"]) == len(BOXES) and np.allclose(det["scores"], 1.0, atol=1e-5)
    for box, c, d in zip(BOXES, CLASSES, DISTANCES, strict=True):
        j = int(np.abs(det["boxes_xyxy"] - box).sum(1).argmin())
        np.testing.assert_allclose(det["boxes_xyxy"][j], box, atol=1e-3)
        assert det["class_ids"][j] == c
        assert det["distances_m"][j] == pytest.approx(d, rel=1e-5)


def test_heatmap_is_one_at_centres_and_gaussian_around_them(config):
    t = encode(BOXES[:1], [0], [10.0], config)
    heat = t["heatmap"]
    assert heat.shape == (3, 16, 24) and heat[1:].sum() == 0
    # Box centre (24.15, 20.25) px -> cell (6, 5) at stride 4, offset (0.0375, 0.0625).
    assert heat[0, 5, 6] == 1.0 and heat.eq(1).sum() == 1
    assert t["indices"][0] == 5 * 24 + 6
    np.testing.assert_allclose(t["offset"][0], [24.15 / 4 - 6, 20.25 / 4 - 5], atol=1e-5)
    np.testing.assert_allclose(t["size"][0], np.log([31.7 / 4, 20.5 / 4]), atol=1e-5)
    assert 0 < heat[0, 5, 7] < 1 and heat[0, 5, 7] == pytest.approx(heat[0, 5, 5])  # symmetric falloff
    assert heat[0, 0, 0] == 0  # cut beyond the radius
    assert t["mask"].sum() == 1 and t["mask"].shape == (128,)


def test_overlapping_gaussians_merge_by_max_per_class(config):
    a = encode(BOXES[:1], [0], [10.0], config)["heatmap"]
    shifted = BOXES[:1] + [4, 0, 4, 0]
    b = encode(shifted, [0], [10.0], config)["heatmap"]
    both = encode(np.concatenate([BOXES[:1], shifted]), [0, 0], [10.0, 10.0], config)["heatmap"]
    assert torch.equal(both, torch.maximum(a, b))
    other_class = encode(np.concatenate([BOXES[:1], shifted]), [0, 1], [10.0, 10.0], config)["heatmap"]
    assert torch.equal(other_class[1], b[0])


def test_small_box_marks_one_cell_and_unknown_distance_is_masked(config):
    t = encode([[30.0, 41.0, 33.0, 44.0]], [2], [float("nan")], config)
    assert t["heatmap"].sum() == 1.0  # radius < 1 cell
    assert t["mask"][0] == 1 and t["distance_mask"][0] == 0
    assert encode(np.zeros((0, 4)), [], None, config)["heatmap"].sum() == 0


@pytest.mark.parametrize(
    "box",
    [
        [10, 10, 10, 20],
        [10, 20, 20, 10],
        [-1, 0, 10, 10],
        [0, 0, 97, 10],
        [0, 0, 10, 65],
        [0, 0, float("nan"), 5],
    ],
)
def test_empty_or_outside_boxes_are_rejected(box, config):
    with pytest.raises(ValueError, match="empty or outside"):
        encode([box], [0], [10.0], config)


def test_bad_class_ids_and_distances_are_rejected(config):
    with pytest.raises(ValueError, match="class ids"):
        encode(BOXES[:1], [3], [10.0], config)
    with pytest.raises(ValueError, match="distances"):
        encode(BOXES[:1], [0], [0.0], config)


def test_dont_care_boxes_mark_only_the_ignore_map_of_their_class(config):
    # A pedestrian don't-care box over cells x 12-14, y 5-6 ([50, 20, 58, 28] px / 4 = [12.5, 5, 14.5, 7]).
    t = encode([BOXES[0], [50, 20, 58, 28]], [0, dont_care(1)], [10.0, 20.0], config)
    assert dont_care(dont_care(2)) == 2 and dont_care(0) < 0
    assert t["mask"].sum() == 1 and t["heatmap"][1].sum() == 0  # no target for it
    assert torch.equal(t["heatmap"], encode(BOXES[:1], [0], [10.0], config)["heatmap"])
    cells = sorted(map(tuple, t["ignore"][1].nonzero().tolist()))
    assert cells == [(y, x) for y in (5, 6) for x in (12, 13, 14)]
    assert t["ignore"][0].sum() == 0 and t["ignore"][2].sum() == 0
    with pytest.raises(ValueError, match="class ids"):
        encode(BOXES[:1], [dont_care(3)], [10.0], config)


def test_focal_loss_skips_negatives_in_dont_care_cells():
    gt = torch.zeros(1, 1, 2, 2)
    logits = torch.tensor([[[[3.0, -3.0], [-3.0, -3.0]]]])  # a confident detection in cell (0, 0)
    ignore = torch.zeros(1, 1, 2, 2)
    ignore[0, 0, 0, 0] = 1.0
    without = focal_loss(logits, gt).item()
    with_ignore = focal_loss(logits, gt, ignore).item()
    assert with_ignore == pytest.approx(
        without - focal_loss(logits[..., :1, :1], gt[..., :1, :1]).item(), rel=1e-3
    )
    assert with_ignore < 0.1 * without
    # A positive inside a don't-care region still counts as a positive.
    gt[0, 0, 0, 0] = 1.0
    assert focal_loss(logits, gt, ignore).item() == pytest.approx(focal_loss(logits, gt).item())


def test_objects_beyond_max_objects_mark_only_the_heatmap(config):
    t = encode(BOXES, CLASSES, DISTANCES, config, max_objects=2)
    assert t["mask"].tolist() == [1, 1] and t["heatmap"].eq(1).sum() == 4


def test_collate_stacks_images_and_targets(config):
    samples = [(torch.rand(3, 64, 96), encode(BOXES[:n], CLASSES[:n], DISTANCES[:n], config)) for n in (1, 3)]
    images, targets = collate(samples)
    assert images.shape == (2, 3, 64, 96)
    assert targets["heatmap"].shape == (2, 3, 16, 24) and targets["size"].shape == (2, 128, 2)
    assert targets["mask"].sum(1).tolist() == [1, 3]


def test_focal_loss_hand_computed():
    gt = torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
    p = torch.tensor([0.8, 0.3, 0.1])
    logits = torch.log(p / (1 - p)).view(1, 1, 1, 3)
    expected = -(0.2**2 * math.log(0.8) + 0.5**4 * 0.3**2 * math.log(0.7) + 0.1**2 * math.log(0.9))
    assert focal_loss(logits, gt).item() == pytest.approx(expected, rel=1e-5)
    # Clamped: a confident wrong prediction costs log(1e-4), not infinity.
    assert focal_loss(torch.full((1, 1, 1, 1), -100.0), torch.ones(1, 1, 1, 1)).item() == pytest.approx(
        -math.log(1e-4), rel=1e-3
    )
    # Without positives the sum is divided by 1.
    assert focal_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(
        4 * 0.25 * -math.log(0.5), rel=1e-5
    )


def test_detection_loss_perfect_regression_and_weights(config):
    _, targets = collate([(torch.zeros(3, 64, 96), encode(BOXES, CLASSES, DISTANCES, config))])
    out = perfect_outputs(targets)
    total, parts = detection_loss(out, targets)
    assert parts["size"] == pytest.approx(0, abs=1e-6) and parts["offset"] == pytest.approx(0, abs=1e-6)
    assert parts["distance"] == pytest.approx(0, abs=1e-6)
    assert parts["heatmap"] < 0.05  # not 0: the focal loss of p = gt is > 0 off the centres
    # One unit of error on every size coordinate gives size loss 1 and adds its weight to the total.
    off = {**out, "size": out["size"] + 1.0}
    total2, parts2 = detection_loss(off, targets, weights={"size": 0.25})
    assert parts2["size"] == pytest.approx(1.0, rel=1e-3)
    assert total2.item() == pytest.approx(total.item() + 0.25, abs=1e-3) and parts2["total"] == pytest.approx(
        total2.item()
    )
    with pytest.raises(ValueError, match="unknown loss weights"):
        detection_loss(out, targets, weights={"sizes": 1.0})
    no_dist = {k: v for k, v in out.items() if k != "distance"}
    assert "distance" not in detection_loss(no_dist, targets)[1]

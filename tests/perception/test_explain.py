"""Class activation maps of detections (perception/explain.py) on a tiny detector trained on synthetic
frames: two flat coloured rectangles (class by colour) on grey noise, at random places, often two of
one class. Eight frames teach the model the objects' look (with two frames it can also learn where
they are and explain one object by the other); the whole module runs in a few seconds."""

import math

import cv2
import numpy as np
import pytest
import torch

from perception.detection.model import OUTPUT_STRIDE, CenterNet, decode
from perception.explain import LAYERS, Explainer, Target, box_mask, overlay
from perception.training.targets import collate, detection_loss, encode

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Two classes of objects drawn, three in the model, one size head for all (as it was fitted to
# these frames when the tiny model had them).
SIZE = dict(
    input_height=64, input_width=96, widths=(8, 16, 32, 32), neck_width=16, head_width=16, num_classes=3,
    class_sizes=False,
)  # fmt: skip
COLOURS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1]], dtype=np.float32)  # vehicle red, pedestrian green
FRAMES, STEPS, LR = 8, 200, 1e-2
MIN_GAP_PX = 4  # between the two objects of a frame


def synthetic_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(H, W, 3) uint8 frame with two rectangles 12-27 px a side, >= MIN_GAP_PX apart; their boxes
    (2, 4) xyxy and class ids."""
    H, W = SIZE["input_height"], SIZE["input_width"]
    while True:
        boxes = []
        for _ in range(2):
            w, h = rng.integers(12, 28, 2)
            x0, y0 = rng.integers(0, W - w), rng.integers(0, H - h)
            boxes.append([x0, y0, x0 + w, y0 + h])
        a, b = np.array(boxes, np.float32)
        if max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3]) >= MIN_GAP_PX:
            break
    classes = [int(c) for c in rng.integers(0, 2, 2)]
    img = rng.uniform(0.3, 0.6, (H, W, 3)).astype(np.float32)
    for (x0, y0, x1, y1), c in zip(np.array(boxes), classes, strict=True):
        img[y0:y1, x0:x1] = COLOURS[c]
    return np.round(img * 255).astype(np.uint8), np.array(boxes, np.float32), classes


@pytest.fixture(scope="module")
def trained(detector_config):
    """(model in eval mode, frames): the tiny detector fitted to FRAMES synthetic frames."""
    config = detector_config(**SIZE)
    rng = np.random.default_rng(0)
    frames = [synthetic_frame(rng) for _ in range(FRAMES)]
    images, targets = collate(
        [
            (torch.from_numpy(rgb).permute(2, 0, 1).float() / 255, encode(boxes, classes, None, config))
            for rgb, boxes, classes in frames
        ]
    )
    torch.manual_seed(0)
    model = CenterNet(config)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / STEPS)
    for _ in range(STEPS):
        total, _ = detection_loss(model(images), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        decay.step()
    return model.eval(), frames


def explained_objects(explainer: Explainer, frames, box_iou):
    """Per frame and object: (explanation of the detection of that object, its own box, the other
    object's box). Every object must be found, once."""
    found = []
    for rgb, boxes, classes in frames:
        explanations = explainer.explain_detections(rgb, score_threshold=0.3)
        assert len(explanations) == 2, [e.label for e in explanations]
        for i, (box, c) in enumerate(zip(boxes, classes, strict=True)):
            e = max(explanations, key=lambda e: box_iou(box, e.target.box_xyxy))
            assert box_iou(box, e.target.box_xyxy) > 0.5 and e.target.class_id == c
            found.append((e, box, boxes[1 - i], classes[0] == classes[1]))
    return found


def mass_in(cam: np.ndarray, box) -> float:
    return float(cam[box_mask(box, *cam.shape)].sum() / cam.sum())


def test_the_map_of_a_detection_lies_on_its_object(trained, box_iou):
    """The default map (hirescam at the stride-4 backbone stage): most of its mass inside the box of
    the object it explains, far more than the box's share of the frame, and more there than in the
    other object's box, also when both objects are of one class."""
    model, frames = trained
    found = explained_objects(Explainer(model), frames, box_iou)
    assert sum(same for *_, same in found) >= 4  # the case that pooled gradients cannot tell apart
    for e, own, other, _ in found:
        assert e.mass_in_box == pytest.approx(mass_in(e.cam, own), abs=0.05)
        assert e.mass_in_box > 0.5 and e.mass_in_box > 4 * e.box_share
        assert mass_in(e.cam, other) < 0.5 * e.mass_in_box


def test_pooled_gradients_do_not_tell_two_objects_of_one_class_apart(trained, box_iou):
    """Why gradcam is not the default: its channel weights are the gradient averaged over the map,
    so its map is "where this class is", and two vehicles share their mass (the gap between the
    objects keeps the neck's map from blurring one onto the other)."""
    model, frames = trained
    found = explained_objects(Explainer(model, "neck_s4", "gradcam"), frames, box_iou)
    ratios = [mass_in(e.cam, other) / mass_in(e.cam, own) for e, own, other, same in found if same]
    assert np.mean(ratios) > 0.5
    hires = explained_objects(Explainer(model, "neck_s4", "hirescam"), frames, box_iou)
    assert max(mass_in(e.cam, other) / mass_in(e.cam, own) for e, own, other, same in hires if same) < 0.1


def test_detections_are_the_decoded_ones_and_the_score_is_their_logit(trained):
    model, frames = trained
    rgb = frames[0][0]
    with torch.no_grad():
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        want = decode(model(x), score_threshold=0.3, max_distance_m=model.config.max_distance_m)[0]
    got = Explainer(model).explain_detections(rgb, score_threshold=0.3)
    np.testing.assert_allclose([e.target.box_xyxy for e in got], want["boxes_xyxy"], atol=1e-4)
    np.testing.assert_allclose([e.score for e in got], want["scores"], atol=1e-5)
    assert [e.target.class_id for e in got] == want["class_ids"].tolist()
    again = Explainer(model).explain(rgb, [e.target for e in got])  # the same logits, given as targets
    np.testing.assert_allclose([e.score for e in again], want["scores"], atol=1e-5)


def test_the_model_and_its_outputs_are_left_as_they_were(trained):
    model, frames = trained
    x = torch.from_numpy(frames[1][0]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        before = model(x)["heatmap"].clone()
    for layer in LAYERS:
        explainer = Explainer(model, layer)
        explainer.explain_detections(frames[1][0], score_threshold=0.3)
        assert not explainer.model.stages[1]._forward_hooks and not model.stages[1]._forward_hooks
    with torch.no_grad():
        assert torch.equal(model(x)["heatmap"], before)
    assert all(p.requires_grad for p in model.parameters())


def test_the_neck_map_reaches_only_the_cells_around_the_peak(trained):
    """The heads' one 3x3 conv: the neck's gradient is zero beyond one cell from the peak (bilinear
    upsampling spreads the map by less than one more cell)."""
    model, frames = trained
    (e, *_) = Explainer(model, "neck_s4").explain_detections(frames[2][0], score_threshold=0.3)
    row, col = e.target.cell_yx
    ys, xs = np.nonzero(e.cam)
    assert np.abs(ys / OUTPUT_STRIDE - (row + 0.5)).max() < 2.5
    assert np.abs(xs / OUTPUT_STRIDE - (col + 0.5)).max() < 2.5


def test_a_labelled_box_targets_its_training_centre_cell(detector_config):
    """Target.of_box picks the cell that encode() marks with 1 (a missed box is explained there)."""
    config = detector_config(**SIZE)
    boxes = np.array([[3.0, 5.0, 20.5, 30.0], [80.0, 40.0, 96.0, 64.0], [0.0, 0.0, 3.0, 3.0]], np.float32)
    heatmap = encode(boxes, [0, 1, 0], None, config)["heatmap"]
    for box, c in zip(boxes, [0, 1, 0], strict=True):
        row, col = Target.of_box(box, c, config.input_height, config.input_width).cell_yx
        assert heatmap[c, row, col] == 1.0


def test_an_unknown_layer_or_method_is_refused(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="layer='head'"):
        Explainer(model, layer="head")
    with pytest.raises(ValueError, match="method='lime'"):
        Explainer(model, method="lime")
    with pytest.raises(ValueError, match="uint8 frame of shape"):
        Explainer(model).explain_detections(np.zeros((10, 10, 3), np.uint8), 0.3)


def test_the_overlay_leaves_the_frame_where_the_map_is_zero():
    rgb = np.full((4, 6, 3), 100, np.uint8)
    cam = np.zeros((4, 6), np.float32)
    cam[1, 2] = 1.0
    out = overlay(rgb, cam, alpha=1.0)
    mask = cam == 0
    assert np.array_equal(out[mask], rgb[mask])
    jet_top = cv2.applyColorMap(np.array([[255]], np.uint8), cv2.COLORMAP_JET)[0, 0, ::-1]
    assert np.array_equal(out[1, 2], jet_top)
    assert math.isclose(overlay(rgb, cam, alpha=0.5)[1, 2, 0], 0.5 * 100 + 0.5 * jet_top[0], abs_tol=1)

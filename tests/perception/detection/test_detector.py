"""The CenterNet detector: shapes, the checks of Karpathy's "Recipe", decoding and checkpoints.

Training checks use a tiny config at 64x96 on synthetic images (coloured rectangles on noise), so
the whole file runs in seconds on 2 CPU cores.
"""

import math
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch

from perception.detection.model import (
    HEATMAP_PRIOR,
    CenterNet,
    CheckpointError,
    DetectorConfig,
    count_parameters,
    decode,
    fold_batchnorm,
    load_checkpoint,
    max3x3,
    save_checkpoint,
)
from perception.training.targets import FOCAL_ALPHA, FOCAL_BETA, collate, detection_loss, encode
from perception.types import CLASSES, OBJECT_CLASSES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OVERFIT_STEPS = 300  # optimiser steps of the overfit check
OVERFIT_LR = 1e-2  # its Adam learning rate at step 0
TINY = dict(input_height=64, input_width=96, widths=(8, 16, 32, 32), neck_width=16, head_width=16)
COLOURS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]], dtype=np.float32)  # per class
# Two scenes: boxes (x0, y0, x1, y1) [px], class ids, distances [m].
# The first objects of both share a centre (24, 20) but not class, size or distance: a model that
# does not look at the image cannot get both right.
SCENES = [
    (
        np.array([[8, 10, 40, 30], [60, 20, 76, 52], [30, 40, 50, 60]], np.float32),
        [0, 1, 2],
        [12.0, 25.0, 40.0],
    ),
    (
        np.array([[16, 4, 32, 36], [50, 6, 90, 34], [64, 40, 80, 60]], np.float32),
        [1, 0, 2],
        [30.0, 8.0, 20.0],
    ),
]


@pytest.fixture(scope="module")
def tiny_config(detector_config):
    """tiny_config(**changes) -> the detector these checks train: TINY's sizes, the tiny model's rest."""

    def make(**changes) -> DetectorConfig:
        return detector_config(**{**TINY, **changes})

    return make


def synthetic_batch(config: DetectorConfig, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The two SCENES drawn as flat coloured rectangles on grey noise: (2, 3, H, W) and targets."""
    rng = np.random.default_rng(seed)
    samples = []
    for boxes, classes, dists in SCENES:
        img = rng.uniform(0.3, 0.6, (3, config.input_height, config.input_width)).astype(np.float32)
        for (x0, y0, x1, y1), c in zip(boxes.astype(int), classes, strict=True):
            img[:, y0:y1, x0:x1] = COLOURS[c][:, None, None]
        samples.append((torch.from_numpy(img), encode(boxes, classes, dists, config)))
    return collate(samples)


def train(config: DetectorConfig, images, targets, steps: int, lr: float = 2e-2, seed: int = 0) -> tuple:
    torch.manual_seed(seed)
    model = CenterNet(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    decay = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 1 - i / steps
    )  # decay: settles the regression heads
    losses = []
    for _ in range(steps):
        total, parts = detection_loss(model(images), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        decay.step()
        losses.append(parts["total"])
    return model, losses


# --- Shapes and config ---------------------------------------------------------------------------


def test_config_rejects_unknown_keys_and_bad_sizes(tiny_config):
    with pytest.raises(TypeError):
        tiny_config(input_hieght=192)
    values = asdict(tiny_config())
    del values["max_distance_m"]
    with pytest.raises(TypeError):
        DetectorConfig(**values)  # no defaults in code: every value is given
    with pytest.raises(ValueError, match="multiples"):
        tiny_config(input_height=200)
    with pytest.raises(ValueError, match="stages"):
        tiny_config(widths=(16,))
    assert tiny_config(widths=[8, 16, 32]).widths == (8, 16, 32)  # YAML lists become tuples


def test_forward_shapes_raw_logits_and_channels_last(tiny_config):
    config = tiny_config()
    model = CenterNet(config).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
        out_cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "heatmap": (2, 6, 16, 24),
        "size": (2, 12, 16, 24),  # a size per class
        "offset": (2, 2, 16, 24),
        "distance": (2, 1, 16, 24),
    }
    assert out["heatmap"].mean().item() == pytest.approx(-math.log(1 / HEATMAP_PRIOR - 1), abs=0.01)  # logits
    for k in out:
        assert torch.allclose(out_cl[k], out[k], rtol=1e-4, atol=1e-4)
    assert "distance" not in CenterNet(tiny_config(with_distance=False))(x)
    with pytest.raises(ValueError, match="multiples"):
        model(torch.rand(1, 3, 60, 96))


def test_default_config_size(conf_values):
    n = count_parameters(CenterNet(DetectorConfig(**conf_values("model/small.yaml"))))
    assert 200_000 < n < 600_000  # small enough for ~10 ms CPU frames (benchmarks/detector_speed.py)


# --- Karpathy's recipe -----------------------------------------------------------------------------


def test_loss_at_init_is_what_the_heatmap_bias_predicts(tiny_config):
    """Every cell starts at p = HEATMAP_PRIOR, so the focal loss is known in closed form; size and
    offset heads start at 0, so their L1 loss is the mean |target|."""
    config = tiny_config()
    images, targets = synthetic_batch(config)
    torch.manual_seed(0)
    _, parts = detection_loss(CenterNet(config)(images), targets)
    gt = targets["heatmap"]
    pos = gt.eq(1)
    p = HEATMAP_PRIOR
    expected = (
        pos.sum().item() * (1 - p) ** FOCAL_ALPHA * -math.log(p)
        + ((1 - gt[~pos]) ** FOCAL_BETA).sum().item() * p**FOCAL_ALPHA * -math.log(1 - p)
    ) / pos.sum().item()
    assert parts["heatmap"] == pytest.approx(expected, rel=0.02)
    m = targets["mask"].bool()
    assert parts["size"] == pytest.approx(targets["size"][m].abs().mean().item(), rel=0.02)
    assert parts["offset"] == pytest.approx(targets["offset"][m].abs().mean().item(), rel=0.02)
    assert parts["distance"] == pytest.approx(targets["distance"][m].abs().mean().item(), rel=0.02)


def test_overfits_a_batch_of_two_images(tiny_config, box_iou):
    """Karpathy's "overfit one batch": the loss goes near zero and the model gives back every box,
    class and distance of the two images.

    The budget (OVERFIT_STEPS at OVERFIT_LR, decayed linearly to 0) leaves a wide margin: over 10
    seeds, each also with the images moved by 1e-6 (a change of float rounding, as another CPU or
    thread count makes), the loss ends <= 0.002 of its start, the worst distance 8 % off, the worst
    IoU 0.89. The former budget (150 steps at 2e-2) stopped while the distance head was still
    converging, at a rate where the loss often jumps up: half of those runs ended > 20 % off on one
    distance, and the rounding alone (1 or 2 torch threads on one CPU) decided which half."""
    config = tiny_config()
    images, targets = synthetic_batch(config)
    model, losses = train(config, images, targets, steps=OVERFIT_STEPS, lr=OVERFIT_LR)
    assert losses[-1] < 0.01 * losses[0]
    with torch.no_grad():
        dets = decode(model.eval()(images), max_distance_m=config.max_distance_m)
    for (boxes, classes, dists), det in zip(SCENES, dets, strict=True):
        confident = det["scores"] > 0.3
        assert confident.sum() == len(boxes), f"{det['scores'][:6]}"  # one per object, no false positive
        for box, c, d in zip(boxes, classes, dists, strict=True):
            ious = np.array([box_iou(box, b) for b in det["boxes_xyxy"][confident]])
            j = int(ious.argmax())
            assert ious[j] > 0.7 and det["class_ids"][confident][j] == c
            assert det["distances_m"][confident][j] == pytest.approx(d, rel=0.2)


def test_zeroed_inputs_do_worse_than_real_inputs(tiny_config):
    """Input-independent baseline: the same short training on all-zero images ends at a higher loss
    (100 steps: with a size per class, a model blind to the image learns each class's mean size too,
    and the gap opens later than with one size for all)."""
    config = tiny_config()
    images, targets = synthetic_batch(config)
    _, real = train(config, images, targets, steps=100)
    _, zero = train(config, torch.zeros_like(images), targets, steps=100)
    assert np.mean(zero[-5:]) > 2.0 * np.mean(real[-5:])


def test_tiny_model_loss_goes_down(tiny_config):
    config = tiny_config(widths=(8, 16, 16), neck_width=8, head_width=8)
    images, targets = synthetic_batch(config, seed=1)
    _, losses = train(config, images, targets, steps=10)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.7 * losses[0]


def test_gradient_of_example_i_touches_only_input_i(tiny_config):
    """In eval mode (BatchNorm uses running stats) each example is independent of the others.
    In train mode BatchNorm mixes the batch: the check detects that, which shows it can fail."""
    torch.manual_seed(0)
    model = CenterNet(tiny_config())

    def grad_norms(mode_train: bool) -> torch.Tensor:
        model.train(mode_train)
        x = torch.rand(4, 3, 64, 96, requires_grad=True)
        out = model(x)
        sum(v[2].sum() for v in out.values()).backward()  # depends on example 2 only
        return x.grad.abs().sum(dim=(1, 2, 3))

    g = grad_norms(False)
    assert g[2] > 0 and g[[0, 1, 3]].sum() == 0
    assert grad_norms(True)[[0, 1, 3]].sum() > 0


# --- Decoding --------------------------------------------------------------------------------------


def test_decode_random_logits_sorted_capped_inside_image():
    torch.manual_seed(0)
    out = {
        "heatmap": torch.randn(3, 3, 16, 24) * 3,
        "size": torch.randn(3, 2, 16, 24) * 2,
        "offset": torch.rand(3, 2, 16, 24),
    }
    dets = decode(out, k=20, score_threshold=0.0)
    assert len(dets) == 3
    for det in dets:
        assert len(det["scores"]) == 20
        assert np.all(np.diff(det["scores"]) <= 0)
        b = det["boxes_xyxy"]
        assert b.min() >= 0 and b[:, [0, 2]].max() <= 96 and b[:, [1, 3]].max() <= 64
        assert np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1])
        assert set(det["class_ids"]) <= {0, 1, 2} and np.isnan(det["distances_m"]).all()
    assert all(len(d["scores"]) <= 20 for d in decode(out, k=20, score_threshold=0.9))
    with pytest.raises(ValueError, match="max_distance_m"):
        decode({**out, "distance": torch.zeros(3, 1, 16, 24)})


def test_max3x3_equals_max_pooling():
    x = torch.randn(2, 3, 17, 23)
    assert torch.equal(max3x3(x), torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1))


def test_decode_keeps_only_peaks():
    heat = torch.full((1, 1, 8, 8), -10.0)
    heat[0, 0, 3, 3], heat[0, 0, 3, 4] = 2.0, 1.0  # a neighbour of a higher cell is not a peak
    heat[0, 0, 6, 6] = 0.5
    out = {"heatmap": heat, "size": torch.zeros(1, 2, 8, 8), "offset": torch.zeros(1, 2, 8, 8)}
    det = decode(out, score_threshold=0.3)[0]
    assert det["scores"] == pytest.approx([1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-0.5))])
    np.testing.assert_allclose(det["boxes_xyxy"][0], [10, 10, 14, 14])  # cell 3 -> 12 px, size e^0 * 4


def test_decode_reads_each_peak_its_own_class_size():
    """With a size per class (class_sizes), a peak of class k takes channels 2k, 2k + 1; a model of
    one size for all reads channels 0, 1 whatever the class."""
    heat = torch.full((1, 3, 8, 8), -10.0)
    heat[0, 0, 2, 2], heat[0, 2, 5, 5] = 3.0, 2.0  # a class-0 and a class-2 peak
    size = torch.zeros(1, 6, 8, 8)
    size[0, 0:2] = math.log(2.0)  # class 0: 8 x 8 px
    size[0, 4], size[0, 5] = math.log(1.0), math.log(3.0)  # class 2: 4 x 12 px
    det = decode({"heatmap": heat, "size": size, "offset": torch.zeros(1, 2, 8, 8)}, score_threshold=0.3)[0]
    assert det["class_ids"].tolist() == [0, 2]
    np.testing.assert_allclose(det["boxes_xyxy"], [[4, 4, 12, 12], [18, 14, 22, 26]], atol=1e-5)
    shared = decode(
        {"heatmap": heat, "size": size[:, :2], "offset": torch.zeros(1, 2, 8, 8)}, score_threshold=0.3
    )[0]
    np.testing.assert_allclose(shared["boxes_xyxy"][1], [16, 16, 24, 24], atol=1e-5)


def test_the_loss_trains_each_class_its_own_size(tiny_config):
    """The size loss reads the target's class's pair: a size head right for the class's channels and
    wrong elsewhere has no size loss."""
    config = tiny_config(num_classes=3, class_sizes=True)
    t = encode([[8, 8, 24, 56], [40, 8, 56, 24]], [1, 2], None, config)  # 16 x 48 and 16 x 16 px
    h, w = config.input_height // 4, config.input_width // 4
    size = torch.full((1, 6, h, w), 5.0)  # wrong everywhere ...
    size[0, 2], size[0, 3] = math.log(4.0), math.log(12.0)  # ... but in class 1's channels
    size[0, 4], size[0, 5] = math.log(4.0), math.log(4.0)  # ... and class 2's
    outputs = {"heatmap": torch.zeros(1, 3, h, w), "size": size, "offset": torch.zeros(1, 2, h, w)}
    _, parts = detection_loss(outputs, collate([(torch.zeros(3), t)])[1])
    assert parts["size"] == pytest.approx(0.0, abs=1e-5)
    swapped = dict(outputs, size=size[:, [0, 1, 4, 5, 2, 3]])
    assert detection_loss(swapped, collate([(torch.zeros(3), t)])[1])[1]["size"] > 0.3


# --- Checkpoints -----------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, tiny_config):
    config = tiny_config()
    torch.manual_seed(0)
    model = CenterNet(config)
    model(torch.rand(2, 3, 64, 96))  # train mode: moves the BatchNorm running stats off their init
    model.eval()
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(path, model, config, {"classes": list(CLASSES), "step": 7})
    loaded, loaded_config, extra = load_checkpoint(path, expect_classes=CLASSES)
    assert loaded_config == config and extra == {"classes": list(CLASSES), "step": 7}
    assert not loaded.training
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for k in a:
        assert torch.equal(a[k], b[k])
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind


def test_folded_batchnorm_gives_the_same_outputs_with_no_batchnorm_left(tiny_config):
    config = tiny_config()
    torch.manual_seed(0)
    model = CenterNet(config)
    for _ in range(3):  # train mode: BatchNorm statistics and affine terms away from their init
        model(torch.rand(2, 3, 64, 96) * 2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
        for conv in model.heads.values():  # the heads start near zero: make every output sizeable
            conv.weight.normal_(0, 1.0)
    model.eval()
    fused = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x), fused(x)
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), k
        assert a[k].abs().max() > 0.1  # not trivially equal (near zero)


def one_line_error(path, **kw) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_checkpoint_errors_are_one_clear_line(tmp_path, tiny_config):
    config = tiny_config()
    good = tmp_path / "good.pt"
    save_checkpoint(good, CenterNet(config), config, {"classes": list(CLASSES)})
    assert "no such" in one_line_error(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert "not a readable" in one_line_error(tmp_path / "text.pt")
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    assert "not a readable" in one_line_error(tmp_path / "truncated.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    assert "not a bulletdrive" in one_line_error(tmp_path / "other.pt")
    # Config and weights disagree: weights of a 4-class model stored under a 3-class config.
    state = torch.load(good, weights_only=True)
    state["state_dict"] = CenterNet(tiny_config(num_classes=4)).state_dict()
    torch.save(state, tmp_path / "mismatch.pt")
    assert "do not match" in one_line_error(tmp_path / "mismatch.pt")
    state = torch.load(good, weights_only=True)
    state["config"]["depth"] = 3
    torch.save(state, tmp_path / "unknown_key.pt")
    assert "unknown keys ['depth']" in one_line_error(tmp_path / "unknown_key.pt")
    assert "expected ('car',)" in one_line_error(good, expect_classes=("car",))
    assert "expected" in one_line_error(good, expect_classes=("pedestrian", "vehicle", "obstacle"))
    # A detector of the first classes only (before the traffic lights) loads; its classes must be its config's.
    old = tiny_config(num_classes=len(OBJECT_CLASSES))
    save_checkpoint(tmp_path / "old.pt", CenterNet(old), old, {"classes": list(OBJECT_CLASSES)})
    assert load_checkpoint(tmp_path / "old.pt", expect_classes=CLASSES)[1].num_classes == 3
    save_checkpoint(tmp_path / "lying.pt", CenterNet(old), old, {"classes": list(CLASSES)})
    assert "config has 3 classes" in one_line_error(tmp_path / "lying.pt", expect_classes=CLASSES)
    # What torch.load(weights_only=True) would refuse is refused at save time, not found later.
    with pytest.raises(ValueError, match=r"extra\['metrics'\]\['ap'\] is a float64"):
        save_checkpoint(
            tmp_path / "numpy.pt", CenterNet(config), config, {"metrics": {"ap": np.float64(0.5)}}
        )
    assert not (tmp_path / "numpy.pt").exists()


def test_shared_detectors_are_built_once_per_file_and_again_when_it_changes(spread_checkpoint, tmp_path):
    from perception.detection.detector import Detector

    a = Detector.shared(str(spread_checkpoint), device="cpu", threads=1)
    assert Detector.shared(str(spread_checkpoint), device="cpu", threads=1) is a
    assert Detector.shared(str(spread_checkpoint), device="cpu", threads=2) is not a  # other arguments
    copy = tmp_path / "copy.pt"
    copy.write_bytes(spread_checkpoint.read_bytes())
    b = Detector.shared(str(copy), device="cpu", threads=1)
    assert b is not a and Detector.shared(str(copy), device="cpu", threads=1) is b
    os.utime(copy, ns=(0, 1))  # rewritten (a new training run): rebuilt
    assert Detector.shared(str(copy), device="cpu", threads=1) is not b

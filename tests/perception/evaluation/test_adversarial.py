"""FGSM and PGD: they stay inside the eps ball and [0, 1], they raise the loss they attack, they are
seeded; the training's adversarial mix; the attack benchmark end to end. A tiny model, 48x64."""

import numpy as np
import pytest
import torch
from torch import nn

from perception.coco import load_coco
from perception.detection.detector import Detector
from perception.detection.model import CenterNet, save_checkpoint
from perception.evaluation import adversarial as A
from perception.training.targets import collate, encode
from perception.types import CLASSES

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EPS = 2 / 255


@pytest.fixture
def model(detector_config):
    """A tiny CenterNet in eval mode whose heads are not near zero (so the input has a gradient)."""
    torch.manual_seed(0)
    net = CenterNet(detector_config(input_height=48, input_width=64))
    for head in net.heads.values():
        nn.init.normal_(head.weight, std=0.05)
    return net.eval().requires_grad_(False)


@pytest.fixture
def batch(model):
    """Two 48x64 images in [0, 1] on the 8-bit grid, with one vehicle and one pedestrian each."""
    g = torch.Generator().manual_seed(1)
    images = (torch.randint(0, 256, (2, 3, 48, 64), generator=g).float() / 255).contiguous()
    boxes = np.array([[5, 10, 25, 30], [40, 20, 50, 44]], dtype=np.float32)
    items = [(img, encode(boxes, [0, 1], [12.0, 30.0], model.config)) for img in images]
    return collate(items)


def loss(model, images, targets) -> float:
    return float(A.detection_objective(model, targets)(images))


@pytest.mark.parametrize("kind", A.ATTACKS)
def test_attacks_stay_in_the_ball_and_raise_the_loss(kind, model, batch):
    images, targets = batch
    before = images.clone()
    adv = A.attack(kind, model, images, targets, EPS, steps=5, generator=torch.Generator().manual_seed(0))
    assert adv.shape == images.shape and adv.dtype == images.dtype and not adv.requires_grad
    assert torch.equal(images, before)
    assert (adv - images).abs().max() <= EPS + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert loss(model, adv, targets) > loss(model, images, targets)
    # a random perturbation of the same size raises it far less (if at all)
    noise = A.project(
        images + EPS * torch.randn(images.shape, generator=torch.Generator().manual_seed(2)).sign(),
        images,
        EPS,
    )
    assert loss(model, adv, targets) - loss(model, images, targets) > 3 * abs(
        loss(model, noise, targets) - loss(model, images, targets)
    )


def test_pgd_is_seeded_and_fgsm_moves_every_value_by_eps_or_to_the_edge(model, batch):
    images, targets = batch
    objective = A.detection_objective(model, targets)
    runs = [A.pgd(objective, images, EPS, 3, torch.Generator().manual_seed(s)) for s in (4, 4, 5)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    step = (A.fgsm(objective, images, EPS) - images).abs()[(images >= EPS) & (images <= 1 - EPS)]
    moved = (step - EPS).abs() < 1e-6
    assert torch.all(moved | (step == 0))  # eps along the gradient's sign; 0 where the gradient is 0
    assert moved.float().mean() > 0.95


def test_rounding_to_8_bits_keeps_the_ball(model, batch):
    images, targets = batch
    adv = A.attack("pgd", model, images, targets, EPS, steps=4, generator=torch.Generator().manual_seed(0))
    frames = A.to_uint8_frames(adv).astype(int)  # (B, H, W, 3)
    clean = A.to_uint8_frames(images).astype(int)
    assert np.abs(frames - clean).max() <= 2
    assert np.array_equal(clean, np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(int))


def test_adversarial_batch_replaces_a_fraction_and_leaves_the_model_as_it_was(model, batch):
    images, targets = batch
    model.train().requires_grad_(True)
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    mixed = A.adversarial_batch(model, images, targets, eps=EPS, steps=1, fraction=0.5)
    assert model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())  # BN statistics too
    assert all(p.grad is None for p in model.parameters())
    assert not torch.equal(mixed[0], images[0]) and torch.equal(mixed[1], images[1])
    assert (mixed - images).abs().max() <= EPS + 1e-6
    assert A.adversarial_batch(model, images, targets, eps=0.0, steps=1, fraction=0.5) is images
    assert A.adversarial_batch(model, images, targets, eps=EPS, steps=1, fraction=0.0) is images


def test_attack_benchmark_scores_clean_and_each_eps(tmp_path, make_coco, detector_config):
    make_coco(tmp_path / "data", "val", n_images=4)
    config = detector_config(input_height=48, input_width=64)
    save_checkpoint(tmp_path / "tiny.pt", CenterNet(config), config, {"classes": list(CLASSES)})
    result = A.attack_benchmark(
        Detector(str(tmp_path / "tiny.pt"), "cpu"), load_coco(tmp_path / "data", "val"), kind="fgsm",
        eps_values=[1 / 255, 4 / 255], steps=10, max_images=2, seed=0, batch_size=2, score_threshold=0.01,
    )  # fmt: skip
    assert result["images"] == 2 and result["steps"] == 1 and result["clean"]["n_gt"] == 4
    assert list(result["eps"]) == ["1/255", "4/255"]
    assert all(0 <= m["AP50"] <= 1 for m in result["eps"].values())

"""Adversarial robustness of the detector: FGSM and PGD within an L-inf ball, and AP50 under them.

The attacks perturb the input image x (B, 3, H, W) in [0, 1] pixel space by at most `eps` per
value (L-inf), to raise the detection loss against the ground truth: CenterNet's training loss
(perception/training/targets.py: focal heatmap loss with the don't-care cells masked, L1 on size,
offset and distance at the object centres), computed by the un-frozen model in eval mode (BatchNorm
with its running statistics, so the attack sees the function that runs at inference). Raising it
lowers the true objects' heatmap peaks, raises false ones and moves the boxes.

- FGSM (Goodfellow et al. 2015): one step, x + eps sign(grad).
- PGD (Madry et al. 2018): a random start in the ball, then `steps` signed-gradient steps of
  PGD_STEP_FACTOR eps / steps, each projected back into the ball and into [0, 1].

`attack_benchmark` scores the attacked images as the detector sees any frame: rounded to 8 bits
(a camera frame is 8-bit; with eps a whole number of grey levels, rounding keeps every value in the
ball) and run through `Detector.detect`. `adversarial_batch` is the training's adversarial mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from perception.coco import CocoSplit
from perception.detection.detector import Detector
from perception.detection.model import CenterNet, load_checkpoint
from perception.evaluation.coco_eval import coco_detections
from perception.evaluation.robustness import score, subset
from perception.training.dataset import DetectionDataset
from perception.training.targets import collate, detection_loss
from perception.types import CLASSES

ATTACKS = ("fgsm", "pgd")
PGD_STEP_FACTOR = 2.5  # PGD's step is 2.5 eps / steps (Madry et al.): the walk can cross the ball
OBJECTIVE = "detection loss against the ground truth (focal heatmap + L1 size/offset/distance)"

Objective = Callable[[torch.Tensor], torch.Tensor]  # images (B, 3, H, W) -> scalar loss to raise


def project(x: torch.Tensor, images: torch.Tensor, eps: float) -> torch.Tensor:
    """x clipped into the L-inf ball of radius eps around `images`, and into [0, 1]."""
    return torch.minimum(torch.maximum(x, images - eps), images + eps).clamp_(0.0, 1.0)


def _gradient(objective: Objective, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(x), x)  # the input's gradient only, not the weights'
    return grad


def fgsm(objective: Objective, images: torch.Tensor, eps: float) -> torch.Tensor:
    """One signed-gradient step of size eps: images (B, 3, H, W) in [0, 1] -> the attacked images."""
    return project(images + eps * _gradient(objective, images).sign(), images, eps).detach()


def pgd(
    objective: Objective,
    images: torch.Tensor,
    eps: float,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD from a uniform random start in the ball (drawn from `generator`): images (B, 3, H, W) in
    [0, 1] -> the attacked images, within eps of them (L-inf) and in [0, 1]."""
    noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    x = project(images + eps * (2 * noise - 1), images, eps)
    step = PGD_STEP_FACTOR * eps / steps
    for _ in range(steps):
        x = project(x + step * _gradient(objective, x).sign(), images, eps)
    return x.detach()


def detection_objective(model: CenterNet, targets: dict[str, torch.Tensor]) -> Objective:
    """x -> detection_loss(model(x), targets), the batch's total loss (targets: collate()'s dict)."""
    return lambda x: detection_loss(model(x), targets)[0]


def attack(
    kind: str,
    model: CenterNet,
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    eps: float,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """FGSM or PGD (`kind`) on images (B, 3, H, W) in [0, 1] against `model`'s detection loss."""
    objective = detection_objective(model, targets)
    if kind == "fgsm":
        return fgsm(objective, images, eps)
    if kind == "pgd":
        return pgd(objective, images, eps, steps, generator)
    raise ValueError(f"unknown attack {kind!r}; known: {', '.join(ATTACKS)}")


def adversarial_batch(
    model: CenterNet,
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    *,
    eps: float,
    steps: int,
    fraction: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A training batch (B, 3, H, W) with its first round(fraction B) images replaced by PGD versions
    against the model's current weights (batches are shuffled, so which images is random); the model
    attacked in eval mode (no BatchNorm statistics from the attack's passes), then put back."""
    n = round(fraction * images.shape[0])
    if n == 0 or eps == 0:
        return images
    was_training = model.training
    model.eval()
    try:
        adv = attack("pgd", model, images[:n], {k: v[:n] for k, v in targets.items()}, eps, steps, generator)
    finally:
        model.train(was_training)
    return torch.cat([adv, images[n:]])


def to_uint8_frames(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8, rounded: the frames a camera would give."""
    return (x * 255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def attack_benchmark(
    detector: Detector,
    split: CocoSplit,
    *,
    kind: str,
    eps_values: Sequence[float],
    steps: int,
    max_images: int,
    seed: int,
    batch_size: int,
    score_threshold: float,
    progress=None,
) -> dict:
    """AP and AP50 of `detector` on `max_images` evenly spaced images of `split`, clean and under
    `kind` at each eps (in [0, 1] pixel units); `progress(n_images_done)` after each batch. Returns {"attack", "objective", "steps", "images",
    "eps_values", "clean": m, "eps": {"N/255": m}, "seconds"} with m = robustness.score()'s metrics."""
    from perception.training.train import Encoded  # the training's target encoding, boxes clipped

    model, config, _ = load_checkpoint(detector.path, map_location=detector.device, expect_classes=CLASSES)
    model.requires_grad_(False)
    images, gt = subset(split, max_images)
    index = {im["id"]: i for i, im in enumerate(split.images)}
    encoded = Encoded(DetectionDataset(split), config)
    generator = torch.Generator(device=detector.device).manual_seed(seed)
    names = [f"{e * 255:g}/255" for e in eps_values]
    detections: dict[str, list[dict]] = {name: [] for name in ["clean", *names]}
    t0 = time.perf_counter()
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        x, targets = collate([encoded[index[im["id"]]] for im in batch])
        x, targets = x.to(detector.device), {k: v.to(detector.device) for k, v in targets.items()}
        shown = {"clean": x} | {
            name: attack(kind, model, x, targets, eps, steps, generator)
            for name, eps in zip(names, eps_values, strict=True)
        }
        for name, frames in shown.items():
            for im, det in zip(batch, detector.detect(to_uint8_frames(frames), score_threshold), strict=True):
                detections[name].extend(coco_detections(im["id"], det))
        if progress is not None:
            progress(start + len(batch))
    metrics = {name: score(gt, dets) for name, dets in detections.items()}
    return {
        "attack": kind,
        "objective": OBJECTIVE,
        "steps": steps if kind == "pgd" else 1,
        "images": len(images),
        "eps_values": list(eps_values),
        "clean": metrics.pop("clean"),
        "eps": metrics,
        "seconds": round(time.perf_counter() - t0, 1),
    }

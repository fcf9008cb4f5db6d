"""Self-supervised pretraining of the detector's backbone and neck by masked-image modelling: SimMIM
(Xie et al., "SimMIM: A Simple Framework for Masked Image Modeling", CVPR 2022) for a conv net.

Unlabelled frames (the train split of a `bulletdrive data` dataset: its images, never its boxes):

    image (B, 3, H, W) in [0, 1], flipped left-right at random
      -> hide: a random `mask_ratio` of the patch_px x patch_px patches set to the input mean
         (zero after the model's normalisation: the patch carries no signal)
      -> CenterNet.features: backbone + neck -> (B, neck_width, H/4, W/4)
      -> decoder: a 1x1 conv to 3 x 4 x 4 values per stride-4 cell, pixel-shuffled to (B, 3, H, W)
      -> L1 to the normalised input pixels, on the hidden pixels only

Why so:
- Hidden pixels are filled, not dropped: a conv net has no tokens to leave out (MAE) and no mask
  token; the mean is what the normalisation maps to zero, as SimMIM's zero-initialised token starts.
- A 16 px patch is 4 x 4 stride-4 cells and hides a whole far object (most are 10-15 px tall):
  to paint it back the features must know what the road, the light and the scene around it imply.
- The loss is on the hidden pixels only: on the visible ones it would reward copying the input
  (SimMIM's ablation: predicting only the masked pixels gives the better features).
- The decoder is one linear layer: the content must be in the features it reads, not in a deep
  decoder that is thrown away after pretraining.
- Only the backbone and neck train. head_trunk and the heads keep their fresh init, so that
  OUT/pretrained.pt is an ordinary CenterNet checkpoint that `bulletdrive train
  init_checkpoint=OUT/pretrained.pt` fine-tunes from, with no new option.

The loop follows perception/training/train.py: seeded, AdamW with warm-up and cosine (planned for
the steps that fit `max_seconds` when it is set: budget.py), a progress bar, checkpoints written
atomically every epoch and resumable. OUT holds pretrained.pt (the CenterNet), last.pt (it, the
decoder and the optimiser, to resume), history.json (per epoch: the mean masked L1 on the train
batches and on the val split's frames under fixed masks) and loss_curve.png. Bad input (a dataset
that is missing, empty or of another image size, a mask that hides nothing or everything, a patch
that does not tile the frame, a negative budget) is one InputError line before anything is written.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from perception.coco import CocoSplit, check_image_files, load_coco, read_image
from perception.detection.model import (
    INPUT_MEAN,
    OUTPUT_STRIDE,
    CenterNet,
    CheckpointError,
    DetectorConfig,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)
from perception.errors import InputError
from perception.files import write_json
from perception.training.budget import TimeBudget
from perception.training.train import GRAD_CLIP_NORM, _check_size, loss_curve_png, lr_factor, pick_device
from perception.types import CLASSES

ENCODER = ("stages", "top", "laterals", "smooth")  # the CenterNet parts that pretraining trains


@dataclass(frozen=True)
class PretrainSettings:
    """The values live in conf/pretrain.yaml."""

    data_dir: str
    out_dir: str
    model: DetectorConfig
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    seed: int
    device: str  # "auto", "cpu", "cuda"
    amp: bool  # bf16 autocast on CUDA
    resume: bool
    num_workers: int
    flip_p: float  # probability of a left-right flip of a frame
    mask_ratio: float  # fraction of the patches hidden, in (0, 1)
    patch_px: int  # [px] side of a square patch; must divide the input height and width
    max_steps: int  # stop after this many optimiser steps in all (0: no limit)
    max_seconds: float  # [s] stop after this much wall time in this call (0: no limit)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.warmup_steps < 0:
            raise ValueError("pretrain: epochs and batch_size must be >= 1, lr > 0, warmup_steps >= 0")


# --- Masks --------------------------------------------------------------------------------------


def hidden_count(n_patches: int, mask_ratio: float) -> int:
    """How many of `n_patches` a mask hides: round(ratio x n), but at least one and at most all but
    one (a mask that hides nothing has no loss; one that hides everything leaves no context)."""
    return min(max(round(mask_ratio * n_patches), 1), n_patches - 1)


def patch_mask(rng: np.random.Generator, grid_hw: tuple[int, int], mask_ratio: float) -> np.ndarray:
    """A (gh, gw) bool mask, True = hidden, with exactly hidden_count(gh x gw, ratio) patches hidden,
    chosen uniformly without replacement (a fixed count, as SimMIM and MAE: every image is as hard)."""
    gh, gw = grid_hw
    mask = np.zeros(gh * gw, dtype=bool)
    mask[rng.permutation(gh * gw)[: hidden_count(gh * gw, mask_ratio)]] = True
    return mask.reshape(gh, gw)


def hide(images: torch.Tensor, mask: torch.Tensor, patch_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, 3, H, W) in [0, 1] and patch masks (B, H/p, W/p) bool -> (the images with every
    hidden patch set to INPUT_MEAN, the pixel mask (B, 1, H, W) bool)."""
    pixels = mask.repeat_interleave(patch_px, 1).repeat_interleave(patch_px, 2)[:, None]
    mean = torch.tensor(INPUT_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return torch.where(pixels, mean, images), pixels


def masked_l1(predicted: torch.Tensor, target: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Mean |predicted - target| over the hidden pixels and the 3 channels only: predicted and
    target (B, 3, H, W), pixels (B, 1, H, W) bool. The visible pixels add nothing, not even to the
    count (a copy of the input scores no better than any other guess there)."""
    weight = pixels.to(predicted.dtype)
    return ((predicted - target).abs() * weight).sum() / (weight.sum() * predicted.shape[1]).clamp_min(1.0)


class MaskedFrames(torch.utils.data.Dataset):
    """The images of one split with a patch mask each, labels unused.

    Item i: (image (3, H, W) float32 in [0, 1], mask (H / patch_px, W / patch_px) bool, True =
    hidden). The flip and the mask come from a generator seeded by (seed, epoch, index), as in
    DetectionDataset: the same in every run and whatever the number of loader workers. Call
    `set_epoch` each epoch for fresh draws; a val set stays at epoch 0 (the same masks every epoch).
    """

    def __init__(self, split: CocoSplit, patch_px: int, mask_ratio: float, flip_p: float, seed: int):
        self.split, self.patch_px, self.mask_ratio, self.flip_p, self.seed = (
            split,
            patch_px,
            mask_ratio,
            flip_p,
            seed,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = read_image(self.split, self.split.images[index])  # (H, W, 3) uint8
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if rng.random() < self.flip_p:
            rgb = rgb[:, ::-1]
        grid = (rgb.shape[0] // self.patch_px, rgb.shape[1] // self.patch_px)
        mask = patch_mask(rng, grid, self.mask_ratio)
        image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)
        return image, torch.from_numpy(mask)


# --- Model --------------------------------------------------------------------------------------


class MaskedImageModel(nn.Module):
    """A CenterNet's backbone and neck with a pixel decoder: forward(hidden images (B, 3, H, W) in
    [0, 1]) -> the predicted normalised pixels (B, 3, H, W). `detector` is the whole CenterNet (its
    heads unused here), so that its state dict is a detector checkpoint as it stands."""

    def __init__(self, detector: CenterNet):
        super().__init__()
        self.detector = detector
        # one linear map from a stride-4 cell's features to its 4 x 4 x 3 pixels
        self.decoder = nn.Conv2d(detector.config.neck_width, 3 * OUTPUT_STRIDE**2, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        cells = self.decoder(self.detector.features(hidden))  # (B, 3 x 16, H/4, W/4)
        return F.pixel_shuffle(cells, OUTPUT_STRIDE)  # (B, 3, H, W)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> the model's normalised input: the reconstruction target."""
        return torch.addcmul(self.detector.in_shift, images, self.detector.in_scale)

    def trained_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """(name, parameter) of the backbone, the neck and the decoder: what pretraining changes."""
        return [
            (n, p)
            for n, p in self.named_parameters()
            if n.split(".")[1] in ENCODER or n.startswith("decoder.")
        ]


def reconstruction_loss(
    mim: MaskedImageModel, images: torch.Tensor, mask: torch.Tensor, patch_px: int, autocast: bool
) -> torch.Tensor:
    """masked_l1 of one batch (images (B, 3, H, W), patch masks (B, h, w)) moved to the model's
    device; the forward pass in bf16 when `autocast`, the loss in float32."""
    device = next(mim.parameters()).device
    images, mask = images.to(device, non_blocking=True), mask.to(device, non_blocking=True)
    hidden, pixels = hide(images, mask, patch_px)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        predicted = mim(hidden.contiguous(memory_format=torch.channels_last))
    return masked_l1(predicted.float(), mim.normalise(images), pixels)


@torch.inference_mode()
def evaluate_reconstruction(
    mim: MaskedImageModel, dataset: MaskedFrames, batch_size: int, autocast: bool = False
) -> float:
    """The mean masked L1 over `dataset` (each batch weighted by its images), the model in eval mode."""
    mim.eval()
    total, n = 0.0, 0
    for images, mask in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        total += float(reconstruction_loss(mim, images, mask, dataset.patch_px, autocast)) * len(images)
        n += len(images)
    return total / max(n, 1)


# --- Loop ---------------------------------------------------------------------------------------


def check_settings(settings: PretrainSettings) -> None:
    """InputError naming the key of a value that cannot pretrain (nothing is read or written)."""
    if settings.max_steps < 0:
        raise InputError(f"pretrain.max_steps={settings.max_steps} is out of range: >= 0 (0: no limit)")
    if not settings.max_seconds >= 0:
        raise InputError(f"pretrain.max_seconds={settings.max_seconds} is out of range: >= 0 (0: no limit)")
    if not 0 < settings.mask_ratio < 1:
        raise InputError(f"pretrain.mask_ratio={settings.mask_ratio} is out of range: in (0, 1)")
    p, config = settings.patch_px, settings.model
    if p < 1 or config.input_height % p or config.input_width % p:
        raise InputError(
            f"pretrain.patch_px={p}: must divide the input size {config.input_width}x{config.input_height}"
        )
    if (config.input_height // p) * (config.input_width // p) < 2:
        raise InputError(f"pretrain.patch_px={p}: the frame holds one patch; hiding needs >= 2")


def _datasets(settings: PretrainSettings) -> tuple[MaskedFrames, MaskedFrames]:
    """The train frames (flipped, fresh masks each epoch) and the val frames (fixed masks), checked
    in full before pretraining starts: the annotation files, the image size, every image's pixels."""
    splits = load_coco(settings.data_dir, "train"), load_coco(settings.data_dir, "val")
    for split in splits:
        _check_size(split, settings.model)
    for split in splits:
        check_image_files(split)
    s = settings
    train_set = MaskedFrames(splits[0], s.patch_px, s.mask_ratio, s.flip_p, s.seed)
    return train_set, MaskedFrames(splits[1], s.patch_px, s.mask_ratio, 0.0, s.seed)


def _optimiser(mim: MaskedImageModel, settings: PretrainSettings) -> torch.optim.AdamW:
    """AdamW over the backbone, neck and decoder only (the heads get no gradient and no decay);
    no weight decay on biases and BatchNorm parameters (ndim <= 1), as in training."""
    trained = mim.trained_parameters()
    return torch.optim.AdamW(
        [
            {"params": [p for _, p in trained if p.ndim > 1], "weight_decay": settings.weight_decay},
            {"params": [p for _, p in trained if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=settings.lr,
    )


def _loader(dataset: MaskedFrames, settings: PretrainSettings, seed: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=True,
        num_workers=settings.num_workers,
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(dataset) > settings.batch_size,
    )


def pretrain(settings: PretrainSettings, log=print) -> dict:
    """Pretrain (or resume) for `settings.epochs` epochs, or until max_steps steps in all, or until
    max_seconds of wall time (the epoch under way stops, is evaluated and saved).

    Returns {"history": a record per epoch, resumed ones included, "out_dir", "device",
    "checkpoint": the pretrained.pt this call wrote, or None if it trained no epoch}. Bad input
    raises an InputError before the first step and before anything is written.
    """
    check_settings(settings)
    out = Path(settings.out_dir)
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    train_set, val_set = _datasets(settings)
    mim = MaskedImageModel(CenterNet(settings.model)).to(device).to(memory_format=torch.channels_last)
    optimiser = _optimiser(mim, settings)
    steps_per_epoch = len(_loader(train_set, settings, 0))
    total_steps = settings.epochs * steps_per_epoch
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)
    start_epoch, step, history = _start_state(out / "last.pt", mim, optimiser, settings, device, log)
    log(
        f"pretraining {count_parameters(mim) / 1e6:.2f} M parameters on {device} "
        f"({len(train_set)} train / {len(val_set)} val frames, mask {settings.mask_ratio:.0%} of "
        f"{settings.patch_px} px patches, {settings.epochs} epochs)"
    )
    autocast = settings.amp and device.type == "cuda"
    budget = TimeBudget(settings.max_seconds, start_step=step)
    checkpoint = None
    for epoch in range(start_epoch, settings.epochs):
        if settings.max_steps and step >= settings.max_steps:
            break
        t0 = time.perf_counter()
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="steps")
        train_set.set_epoch(epoch)
        loader = _loader(train_set, settings, settings.seed + epoch)
        loss_sum, n, step = _pretrain_epoch(
            mim, optimiser, loader, settings, step, total_steps, autocast, bar, budget
        )
        bar.close()
        record = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimiser.param_groups[0]["lr"],
            "train": {"total": loss_sum / max(n, 1)},  # mean masked L1 [normalised pixel units]
            "val": {"total": evaluate_reconstruction(mim, val_set, settings.batch_size, autocast)},
            "seconds": round(time.perf_counter() - t0, 1),
            "images_per_second": round(n * settings.batch_size / (time.perf_counter() - t0), 1),
        }
        history.append(record)
        log(
            f"epoch {epoch + 1}: train L1 {record['train']['total']:.4f}, val L1 {record['val']['total']:.4f}"
        )
        checkpoint = _save_epoch(out, mim, optimiser, settings, history)
        if budget.spent():
            break
    return {
        "history": history,
        "out_dir": str(out),
        "device": str(device),
        "checkpoint": None if checkpoint is None else str(checkpoint),
    }


def _pretrain_epoch(
    mim: MaskedImageModel,
    optimiser: torch.optim.Optimizer,
    loader: torch.utils.data.DataLoader,
    settings: PretrainSettings,
    step: int,
    total_steps: int,
    autocast: bool,
    bar: tqdm,
    budget: TimeBudget,
) -> tuple[float, int, int]:
    """One pass over `loader`, cut short at max_steps steps in all or when `budget` is spent.
    Returns (the loss summed over the batches, the number of batches, the step count after)."""
    mim.train()
    loss_sum, n = 0.0, 0
    for images, mask in loader:
        planned = budget.total_steps(step, total_steps)
        for group in optimiser.param_groups:
            group["lr"] = settings.lr * lr_factor(step, settings.warmup_steps, planned)
        loss = reconstruction_loss(mim, images, mask, settings.patch_px, autocast)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss is {value} at step {step}: lower pretrain.lr")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in mim.trained_parameters()], GRAD_CLIP_NORM)
        optimiser.step()
        step, n, loss_sum = step + 1, n + 1, loss_sum + value
        bar.set_postfix_str(f"L1 {value:.3f}", refresh=False)
        bar.update(1)
        if (settings.max_steps and step >= settings.max_steps) or budget.spent():
            break
    return loss_sum, n, step


def _save_epoch(
    out: Path, mim: MaskedImageModel, optimiser, settings: PretrainSettings, history: list[dict]
) -> Path:
    """Write last.pt (to resume), pretrained.pt, history.json and loss_curve.png; return pretrained.pt."""
    epoch, step = history[-1]["epoch"], history[-1]["step"]
    about = {k: v for k, v in asdict(settings).items() if k != "model"}
    meta = {"classes": list(CLASSES), "epoch": epoch, "step": step, "pretrain": about}
    state = {k: v.detach().cpu() for k, v in mim.decoder.state_dict().items()}
    resume = {
        "history": history,
        "decoder": state,
        "optimiser": optimiser.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    save_checkpoint(out / "last.pt", mim.detector, settings.model, {**meta, **resume})
    save_checkpoint(out / "pretrained.pt", mim.detector, settings.model, meta)
    write_json(out / "history.json", history)
    loss_curve_png(history, out / "loss_curve.png")
    return out / "pretrained.pt"


def _start_state(
    path: Path, mim, optimiser, settings: PretrainSettings, device, log
) -> tuple[int, int, list]:
    """(epochs done, steps done, history): from `path` when resuming (model, decoder and optimiser
    loaded), else a fresh start (0, 0, [])."""
    if not (settings.resume and path.exists()):
        return 0, 0, []
    trained, config, extra = load_checkpoint(path, map_location=device, expect_classes=CLASSES)
    if config != settings.model:
        raise CheckpointError(f"{path}: was pretrained with another model config; use another out_dir")
    try:
        mim.detector.load_state_dict(trained.state_dict())
        mim.decoder.load_state_dict(extra["decoder"])
        optimiser.load_state_dict(extra["optimiser"])
        torch.set_rng_state(extra["torch_rng"].cpu())
        start = int(extra["epoch"]), int(extra["step"]), list(extra["history"])
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: cannot resume pretraining from it ({type(err).__name__})") from None
    log(f"resuming from {path} at epoch {start[0] + 1}")
    return start

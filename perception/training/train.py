"""Training of the CenterNet detector on a COCO dataset made by `bulletdrive data`.

Seeded; AdamW with a linear warm-up and a cosine decay; augmentation (perception/training/augment.py);
checkpoints written atomically every epoch and resumable (model, optimiser, schedule, epoch,
history); a progress bar; a metrics log per epoch (history.json) and a loss-curve PNG; the device
chosen automatically (CUDA when present, else CPU) with bf16 autocast on CUDA.

OUT holds: last.pt (full state, to resume), model.pt (weights for inference, small), history.json,
loss_curve.png.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from perception.detection.model import (
    CenterNet,
    CheckpointError,
    DetectorConfig,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)
from perception.files import write_bytes, write_json
from perception.progress import Progress
from perception.training.augment import Augment
from perception.training.dataset import DatasetError, DetectionDataset, load_coco
from perception.training.targets import collate, detection_loss, encode
from perception.types import CLASSES


@dataclass(frozen=True)
class TrainSettings:
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
    augment: dict  # Augment's parameters
    max_steps: int  # stop after this many optimiser steps in all (0: no limit), for smoke tests

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.warmup_steps < 0:
            raise ValueError("train: epochs and batch_size must be >= 1, lr > 0, warmup_steps >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device={self.device!r} is not one of auto, cpu, cuda")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is available")
    return torch.device(name)


class Encoded(torch.utils.data.Dataset):
    """DetectionDataset items with CenterNet targets: (image (3, H, W), encode() dict)."""

    def __init__(self, dataset: DetectionDataset, config: DetectorConfig):
        self.dataset, self.config = dataset, config

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, t = self.dataset[i]
        boxes = np.asarray(t["boxes_xyxy"], dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, self.config.input_width)  # the data allows 1 px slack
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, self.config.input_height)
        keep = (boxes[:, 2] - boxes[:, 0] > 0.5) & (boxes[:, 3] - boxes[:, 1] > 0.5)
        cls, dist = np.asarray(t["class_ids"])[keep], np.asarray(t["distances_m"])[keep]
        return image, encode(boxes[keep], cls, dist, self.config)


def _check_size(split, config: DetectorConfig) -> None:
    sizes = {(im["width"], im["height"]) for im in split.images}
    want = (config.input_width, config.input_height)
    if sizes != {want}:
        raise DatasetError(
            f"{split.annotation_path}: images are {sorted(sizes)} (W, H) but the model expects {want}"
        )


def _loader(dataset, settings: TrainSettings, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=shuffle,
        num_workers=settings.num_workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
        drop_last=shuffle and len(dataset) > settings.batch_size,
    )


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.05 at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(settings: TrainSettings, log=print) -> dict:
    """Train (or resume) and return the history. Raises DatasetError / CheckpointError on bad input."""
    out = Path(settings.out_dir)
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    config = settings.model
    train_split, val_split = load_coco(settings.data_dir, "train"), load_coco(settings.data_dir, "val")
    for split in (train_split, val_split):
        _check_size(split, config)
    augment = Augment(**settings.augment)
    train_set = Encoded(DetectionDataset(train_split, transform=augment, seed=settings.seed), config)
    val_set = Encoded(DetectionDataset(val_split), config)

    model = CenterNet(config).to(device).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    steps_per_epoch = len(_loader(train_set, settings, True, 0))
    total_steps = settings.epochs * steps_per_epoch
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)
    history: list[dict] = []
    start_epoch, step = 0, 0
    last = out / "last.pt"
    if settings.resume and last.exists():
        start_epoch, step, history = _resume(last, model, optimiser, settings, device)
        log(f"resuming from {last} at epoch {start_epoch + 1}")
    log(
        f"training {count_parameters(model) / 1e6:.2f} M parameters on {device} "
        f"({len(train_set)} train / {len(val_set)} val images, {settings.epochs} epochs)"
    )
    autocast = settings.amp and device.type == "cuda"
    for epoch in range(start_epoch, settings.epochs):
        if settings.max_steps and step >= settings.max_steps:
            break
        train_set.dataset.set_epoch(epoch)
        model.train()
        t0, sums, n = time.perf_counter(), {}, 0
        bar = Progress(steps_per_epoch, f"epoch {epoch + 1}/{settings.epochs}", unit="steps")
        for images, targets in _loader(train_set, settings, True, settings.seed + epoch):
            for group in optimiser.param_groups:
                group["lr"] = settings.lr * lr_factor(step, settings.warmup_steps, total_steps)
            images = images.to(device, non_blocking=True).to(memory_format=torch.channels_last)
            targets = {k: v.to(device, non_blocking=True) for k, v in targets.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                outputs = model(images)
            loss, parts = detection_loss({k: v.float() for k, v in outputs.items()}, targets)
            if not math.isfinite(parts["total"]):
                raise FloatingPointError(f"loss is {parts['total']} at step {step}: lower train.lr")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimiser.step()
            step += 1
            n += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1, note=f"loss {parts['total']:.3f}")
            if settings.max_steps and step >= settings.max_steps:
                break
        record = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimiser.param_groups[0]["lr"],
            "train": {k: v / max(n, 1) for k, v in sums.items()},
            "val": evaluate_loss(model, val_set, settings, device, autocast),
            "seconds": round(time.perf_counter() - t0, 1),
            "images_per_second": round(n * settings.batch_size / (time.perf_counter() - t0), 1),
        }
        history.append(record)
        log(
            f"epoch {epoch + 1}: train loss {record['train']['total']:.4f}, val loss {record['val']['total']:.4f}"
        )
        meta = {"classes": list(CLASSES), "epoch": epoch + 1, "step": step, "history": history}
        meta["settings"] = {k: v for k, v in asdict(settings).items() if k != "model"}
        save_checkpoint(
            last,
            model,
            config,
            {**meta, "optimiser": optimiser.state_dict(), "torch_rng": torch.get_rng_state()},
        )
        save_checkpoint(out / "model.pt", model, config, {"classes": list(CLASSES), "epoch": epoch + 1})
        write_json(out / "history.json", history)
        loss_curve_png(history, out / "loss_curve.png")
    return {"history": history, "out_dir": str(out), "device": str(device)}


@torch.inference_mode()
def evaluate_loss(model, dataset, settings: TrainSettings, device, autocast: bool) -> dict:
    model.eval()
    sums, n = {}, 0
    for images, targets in _loader(dataset, settings, False, 0):
        images = images.to(device).to(memory_format=torch.channels_last)
        targets = {k: v.to(device) for k, v in targets.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            outputs = model(images)
        _, parts = detection_loss({k: v.float() for k, v in outputs.items()}, targets)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * len(images)
        n += len(images)
    return {k: v / max(n, 1) for k, v in sums.items()}


def _resume(path: Path, model, optimiser, settings: TrainSettings, device) -> tuple[int, int, list]:
    trained, config, extra = load_checkpoint(path, map_location=device, expect_classes=CLASSES)
    if config != settings.model:
        raise CheckpointError(f"{path}: was trained with another model config; use another out_dir")
    model.load_state_dict(trained.state_dict())
    try:
        optimiser.load_state_dict(extra["optimiser"])
        torch.set_rng_state(extra["torch_rng"].cpu())
        return int(extra["epoch"]), int(extra["step"]), list(extra["history"])
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot resume from it ({type(err).__name__}: {err})") from None


def loss_curve_png(history: list[dict], path: Path) -> None:
    """Train and val total loss per epoch, drawn with cv2 (log scale)."""
    W, H, m = 640, 360, 50
    img = np.full((H, W, 3), 255, np.uint8)
    series = {
        "train": ([r["train"]["total"] for r in history], (200, 110, 30)),
        "val": ([r["val"]["total"] for r in history], (40, 40, 220)),
    }
    values = [v for s, _ in series.values() for v in s if v > 0]
    if not values:
        return
    lo, hi = math.log(min(values)), math.log(max(values))
    hi = hi if hi > lo else lo + 1.0
    n = max(len(history), 2)
    cv2.rectangle(img, (m, m // 2), (W - m // 2, H - m), (160, 160, 160), 1)
    for name, (vals, colour) in series.items():
        pts = [
            (
                m + int((W - 1.5 * m) * i / (n - 1)),
                H - m - int((H - 1.5 * m) * (math.log(v) - lo) / (hi - lo)),
            )
            for i, v in enumerate(vals)
            if v > 0
        ]
        for a, b in zip(pts[:-1], pts[1:], strict=False):
            cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
        for pt in pts:
            cv2.circle(img, pt, 3, colour, -1, cv2.LINE_AA)
        y = 18 if name == "train" else 36
        cv2.putText(img, f"{name} loss", (W - 150, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    text = f"loss (log scale) {math.exp(lo):.3g} - {math.exp(hi):.3g}; epochs 1-{len(history)}"
    cv2.putText(img, text, (m, H - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".png", img)
    if ok:
        write_bytes(path, data.tobytes())

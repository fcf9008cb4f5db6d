"""Training of the CenterNet detector on a COCO dataset made by `bulletdrive data`.

Seeded; AdamW with a linear warm-up and a cosine decay; augmentation (perception/training/augment.py,
the benchmark's corruptions among it as an option); as options, DropBlock in the backbone
(perception/training/dropblock.py), adversarial examples mixed into each batch
(perception/evaluation/adversarial.py), a start from trained weights (fine-tuning, e.g. from
perception/training/pretrain.py's self-supervised backbone) and a teacher to distil from
(perception/training/distill.py, e.g. the model a pruned one was cut from); a cap in steps or in wall time
(perception/training/budget.py); checkpoints written atomically every epoch and resumable (model,
optimiser, schedule, epoch, history); a progress bar; a metrics log per epoch (history.json) and a
loss-curve PNG; the device chosen automatically (CUDA when present, else CPU) with bf16 autocast on
CUDA.

OUT holds: last.pt (full state, to resume), model.pt (weights for inference, small), history.json,
loss_curve.png. Bad input (a dataset that is missing, empty, or whose images are missing or of
another size than the model's input, a checkpoint that cannot be resumed, a negative step or time
budget) is refused with one InputError line before the first step, and nothing is written.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from perception import charts
from perception.coco import CocoSplit, DatasetError, check_image_files, load_coco
from perception.detection.detector import resolve_checkpoint
from perception.detection.model import (
    CenterNet,
    CheckpointError,
    DetectorConfig,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)
from perception.errors import InputError
from perception.evaluation.adversarial import adversarial_batch
from perception.files import write_json
from perception.training.augment import Augment
from perception.training.budget import TimeBudget
from perception.training.dataset import DetectionDataset
from perception.training.distill import distill_loss
from perception.training.dropblock import DropBlockHooks
from perception.training.targets import collate, detection_loss, encode
from perception.types import CLASSES

FINAL_LR_FRACTION = 0.05  # the cosine decay ends at this fraction of the peak learning rate
GRAD_CLIP_NORM = 10.0  # global gradient norm clipped to this (a bad batch cannot blow up the weights)
MIN_CLIPPED_BOX_PX = 0.5  # a box clipped to the image must keep this width and height [px], or it is dropped


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
    max_seconds: float  # [s] stop after this much wall time in this call (0: no limit): budget.py
    dropblock: dict  # {"drop_p", "block_cells"}: DropBlockHooks' parameters (drop_p 0: off)
    adversarial: dict  # {"eps" [1/255], "steps", "fraction"}: adversarial_batch's parameters (eps 0: off)
    init_checkpoint: str | None  # weights to start from (`shipped` or a path), or None: a fresh init
    repeat_threshold: float = (
        0.0  # repeat-factor sampling's t (`repeat_factors`); 0: each image once an epoch
    )
    teacher: str | None = None  # a checkpoint whose outputs the model also learns (`shipped` or a path)
    distill: float = 0.0  # weight of distill_loss against the labels' loss (0: off)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.warmup_steps < 0:
            raise ValueError("train: epochs and batch_size must be >= 1, lr > 0, warmup_steps >= 0")
        if not 0 <= self.repeat_threshold <= 1:
            raise ValueError(f"train.repeat_threshold={self.repeat_threshold} is out of range: [0, 1]")
        if self.distill < 0 or (self.distill > 0) != (self.teacher is not None):
            raise ValueError("train: distill must be >= 0, and > 0 exactly when a teacher is given")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device={self.device!r} is not one of auto, cpu, cuda")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device=cuda but no CUDA device is available")
    return torch.device(name)


class Encoded(torch.utils.data.Dataset):
    """DetectionDataset items with CenterNet targets: (image (3, H, W), encode() dict)."""

    def __init__(self, dataset: DetectionDataset, config: DetectorConfig):
        self.dataset, self.config = dataset, config
        self.repeat_factors: np.ndarray | None = None  # (len,) repeat-factor sampling's, when used

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, target = self.dataset[i]
        boxes = np.asarray(target["boxes_xyxy"], dtype=np.float32).reshape(-1, 4).copy()
        # into the image: the data lets a box stick out by perception.coco.BOX_TOLERANCE_PX
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, self.config.input_width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, self.config.input_height)
        width_px, height_px = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (width_px > MIN_CLIPPED_BOX_PX) & (height_px > MIN_CLIPPED_BOX_PX)
        cls, dist = np.asarray(target["class_ids"])[keep], np.asarray(target["distances_m"])[keep]
        return image, encode(boxes[keep], cls, dist, self.config)


def _check_size(split: CocoSplit, config: DetectorConfig) -> None:
    """DatasetError unless every image record has the model's input size."""
    sizes = {(im["width"], im["height"]) for im in split.images}
    want = (config.input_width, config.input_height)
    if sizes != {want}:
        raise DatasetError(
            f"{split.annotation_path}: images are {sorted(sizes)} (W, H) but the model expects {want}"
        )


def _datasets(settings: TrainSettings) -> tuple[Encoded, Encoded]:
    """The train set (augmented) and the val set, checked in full before training starts: the
    annotation files, the image records' size against the model's, and every image's pixels."""
    splits = load_coco(settings.data_dir, "train"), load_coco(settings.data_dir, "val")
    for split in splits:
        _check_size(split, settings.model)
    for split in splits:
        check_image_files(split)
    train_split, val_split = splits
    augment = Augment(**settings.augment)
    train_set = Encoded(DetectionDataset(train_split, transform=augment, seed=settings.seed), settings.model)
    if settings.repeat_threshold > 0:
        train_set.repeat_factors = repeat_factors(train_split, settings.repeat_threshold)
    return train_set, Encoded(DetectionDataset(val_split), settings.model)


def repeat_factors(split: CocoSplit, threshold: float) -> np.ndarray:
    """Repeat-factor sampling (LVIS, Gupta et al. 2019): (images,) r_i = the max over the classes c
    in image i of max(1, sqrt(t / f_c)), f_c the share of the images that hold a box of class c
    (don't-care boxes aside): an image of a rare class (a yellow light) is drawn more often, one of
    common classes or none once."""
    classes = [
        {a["category_id"] for a in split.annotations[im["id"]] if not a.get("iscrowd")} for im in split.images
    ]
    counts: dict[int, int] = {}
    for held in classes:
        for c in held:
            counts[c] = counts.get(c, 0) + 1
    n = len(split.images)
    rc = {c: max(1.0, math.sqrt(threshold / (k / n))) for c, k in counts.items()}
    return np.array([max((rc[c] for c in held), default=1.0) for held in classes])


def _loader(dataset, settings: TrainSettings, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    """Batches of `dataset`, shuffled (drawn by the repeat factors when the dataset has them) or in order."""
    factors = getattr(dataset, "repeat_factors", None)
    sampler = None
    if shuffle and factors is not None:  # an epoch draws sum(r) images, each with probability r_i / sum(r)
        sampler = torch.utils.data.WeightedRandomSampler(
            factors.tolist(), int(round(factors.sum())), generator=torch.Generator().manual_seed(seed)
        )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=settings.num_workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
        drop_last=shuffle and len(dataset) > settings.batch_size,
    )


def _model_and_optimiser(
    settings: TrainSettings, device: torch.device
) -> tuple[CenterNet, torch.optim.AdamW]:
    """A freshly initialised model (from torch's global generator), or with settings.init_checkpoint
    the weights of that checkpoint, and AdamW; no weight decay on biases and BatchNorm parameters
    (ndim <= 1)."""
    model = CenterNet(settings.model)
    if settings.init_checkpoint is not None:
        model.load_state_dict(_initial_weights(settings.init_checkpoint, settings.model, model))
    model = model.to(device).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    return model, optimiser


def _initial_weights(checkpoint: str, config: DetectorConfig, fresh: CenterNet) -> dict[str, torch.Tensor]:
    """The state dict of `checkpoint` (`shipped` or a path) to fine-tune from. CheckpointError unless
    it has this run's model config, but for fewer classes, the first of CLASSES (a model from before
    the traffic-light classes), or one size for all classes where this run has one per class: the
    heatmap rows it has start those classes (the new ones start from `fresh`'s prior), and its one
    size starts every class's."""
    path = resolve_checkpoint(checkpoint)
    trained, trained_config, extra = load_checkpoint(path)
    classes = tuple(extra.get("classes") or ())
    grown = replace(trained_config, num_classes=config.num_classes, class_sizes=config.class_sizes)
    if (
        classes != CLASSES[: len(classes)]
        or grown != config
        or len(classes) > config.num_classes
        or (trained_config.class_sizes and not config.class_sizes)
    ):
        raise CheckpointError(
            f"init_checkpoint={checkpoint}: {path} has another model config or classes than this run's"
        )
    state = fresh.state_dict()
    for name, value in trained.state_dict().items():
        if name.startswith("heads.heatmap."):
            state[name][: len(value)] = value
        elif name.startswith("heads.size.") and len(value) < len(state[name]):
            state[name].copy_(value.repeat(len(state[name]) // len(value), *([1] * (value.ndim - 1))))
        else:
            state[name] = value
    return state


def _teacher(settings: TrainSettings, device: torch.device) -> CenterNet | None:
    """settings.teacher's model, frozen in eval mode on `device`, or None. CheckpointError unless its
    outputs have the student's shapes (input size, classes, a size per class or not)."""
    if settings.teacher is None:
        return None
    path = resolve_checkpoint(settings.teacher)
    teacher, config, _ = load_checkpoint(path, expect_classes=CLASSES)
    same = ("input_height", "input_width", "num_classes", "with_distance", "class_sizes")
    if any(getattr(config, k) != getattr(settings.model, k) for k in same):
        raise CheckpointError(f"teacher={settings.teacher}: {path} has other outputs than the model ({same})")
    teacher = teacher.to(device).to(memory_format=torch.channels_last).eval()
    return teacher.requires_grad_(False)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to FINAL_LR_FRACTION at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(settings: TrainSettings, log=print) -> dict:
    """Train (or resume) for `settings.epochs` epochs, or until `settings.max_steps` steps in all,
    or until `settings.max_seconds` of wall time (the epoch under way stops, is evaluated and saved).

    Returns {"history": a record per epoch, resumed ones included, "out_dir", "device",
    "model_path": the model.pt this call wrote, or None if it trained no epoch (a finished run
    resumed)}. Bad input raises an InputError (DatasetError, CheckpointError, ...) before the first
    step and before anything is written.
    """
    if settings.max_steps < 0:
        raise InputError(f"train.max_steps={settings.max_steps} is out of range: >= 0 (0: no limit)")
    if not settings.max_seconds >= 0:
        raise InputError(f"train.max_seconds={settings.max_seconds} is out of range: >= 0 (0: no limit)")
    out = Path(settings.out_dir)
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    train_set, val_set = _datasets(settings)
    model, optimiser = _model_and_optimiser(settings, device)
    teacher = _teacher(settings, device)
    steps_per_epoch = len(_loader(train_set, settings, True, 0))
    total_steps = settings.epochs * steps_per_epoch
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)
    start_epoch, step, history = _start_state(out / "last.pt", model, optimiser, settings, device, log)
    log(
        f"training {count_parameters(model) / 1e6:.2f} M parameters on {device} "
        f"({len(train_set)} train / {len(val_set)} val images, {settings.epochs} epochs)"
    )
    autocast = settings.amp and device.type == "cuda"
    dropblock = DropBlockHooks(model, **settings.dropblock) if settings.dropblock["drop_p"] > 0 else None
    model_path = None
    budget = TimeBudget(settings.max_seconds, start_step=step)
    for epoch in range(start_epoch, settings.epochs):
        if settings.max_steps and step >= settings.max_steps:
            break
        t0 = time.perf_counter()
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="steps")
        train_set.dataset.set_epoch(epoch)
        loader = _loader(train_set, settings, True, settings.seed + epoch)
        sums, n, step = _train_epoch(
            model, optimiser, loader, settings, step, total_steps, autocast, bar, dropblock, budget, teacher
        )
        bar.close()
        record = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimiser.param_groups[0]["lr"],
            "train": {k: v / max(n, 1) for k, v in sums.items()},
            "val": evaluate_loss(model, val_set, settings, autocast),
            "seconds": round(time.perf_counter() - t0, 1),
            "images_per_second": round(n * settings.batch_size / (time.perf_counter() - t0), 1),
        }
        history.append(record)
        log(
            f"epoch {epoch + 1}: train loss {record['train']['total']:.4f}, val loss {record['val']['total']:.4f}"
        )
        model_path = _save_epoch(out, model, optimiser, settings, history)
        if budget.spent():
            break
    return {
        "history": history,
        "out_dir": str(out),
        "device": str(device),
        "model_path": None if model_path is None else str(model_path),
    }


def _train_epoch(
    model: CenterNet,
    optimiser: torch.optim.Optimizer,
    loader: torch.utils.data.DataLoader,
    settings: TrainSettings,
    step: int,
    total_steps: int,
    autocast: bool,
    bar: tqdm,
    dropblock: DropBlockHooks | None,
    budget: TimeBudget,
    teacher: CenterNet | None = None,
) -> tuple[dict[str, float], int, int]:
    """One pass over `loader`, cut short at settings.max_steps steps in all or when `budget` is spent.

    `step` counts the optimiser steps before this epoch (it sets the learning rate and DropBlock's
    ramp, over `total_steps` or the fewer that the budget's pace projects). With
    settings.adversarial's eps > 0, part of each batch is replaced by adversarial examples first
    (the loss parts are then those of the mixed batch). With a `teacher`, settings.distill times
    distill_loss is added (part "distill"). Returns (the loss parts summed over the
    batches, the number of batches, the step count after).
    """
    model.train()
    sums, n = {}, 0
    for images, targets in loader:
        planned = budget.total_steps(step, total_steps)
        for group in optimiser.param_groups:
            group["lr"] = settings.lr * lr_factor(step, settings.warmup_steps, planned)
        if dropblock is not None:
            dropblock.set_progress(step / max(planned, 1))
        images = _adversarial(model, images, targets, settings.adversarial)
        loss, parts = _loss(model, images, targets, autocast, teacher, settings.distill)
        if not math.isfinite(parts["total"]):
            raise FloatingPointError(f"loss is {parts['total']} at step {step}: lower train.lr")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
        optimiser.step()
        step += 1
        n += 1
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix_str(f"loss {parts['total']:.3f}", refresh=False)
        bar.update(1)
        if (settings.max_steps and step >= settings.max_steps) or budget.spent():
            break
    return sums, n, step


def _loss(
    model: CenterNet,
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    autocast: bool,
    teacher: CenterNet | None = None,
    distill: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """detection_loss of one batch: images (B, 3, H, W) and encoded targets moved to the model's
    device; the forward pass in bf16 when `autocast`, the loss in float32. With a `teacher`,
    `distill` x distill_loss is added to the total (and reported as the part "distill")."""
    device = next(model.parameters()).device
    images = images.to(device, non_blocking=True).to(memory_format=torch.channels_last)
    targets = {k: v.to(device, non_blocking=True) for k, v in targets.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        outputs = model(images)
        if teacher is not None:
            with torch.no_grad():
                taught = teacher(images)
    outputs = {k: v.float() for k, v in outputs.items()}
    total, parts = detection_loss(outputs, targets)
    if teacher is None:
        return total, parts
    kd = distill_loss(outputs, taught)
    kd_value = kd.item()  # one copy to the host
    return total + distill * kd, {**parts, "total": parts["total"] + distill * kd_value, "distill": kd_value}


def _adversarial(
    model: CenterNet, images: torch.Tensor, targets: dict[str, torch.Tensor], options: dict
) -> torch.Tensor:
    """images (B, 3, H, W) with a fraction attacked (`adversarial_batch`, eps in 1/255 units), on the
    model's device; unchanged when options["eps"] is 0."""
    if options["eps"] == 0:
        return images
    device = next(model.parameters()).device
    targets = {k: v.to(device) for k, v in targets.items()}
    return adversarial_batch(
        model,
        images.to(device),
        targets,
        eps=options["eps"] / 255,
        steps=options["steps"],
        fraction=options["fraction"],
    )


@torch.inference_mode()
def evaluate_loss(
    model: CenterNet, dataset: Encoded, settings: TrainSettings, autocast: bool
) -> dict[str, float]:
    """The mean loss parts over `dataset` ({part: float}), the model in eval mode."""
    model.eval()
    sums, n = {}, 0
    for images, targets in _loader(dataset, settings, False, 0):
        _, parts = _loss(model, images, targets, autocast)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * len(images)
        n += len(images)
    return {k: v / max(n, 1) for k, v in sums.items()}


def _save_epoch(out: Path, model: CenterNet, optimiser, settings: TrainSettings, history: list[dict]) -> Path:
    """Write last.pt (to resume), model.pt, history.json and loss_curve.png; return model.pt's path."""
    epoch, step = history[-1]["epoch"], history[-1]["step"]
    meta = {"classes": list(CLASSES), "epoch": epoch, "step": step, "history": history}
    meta["settings"] = {k: v for k, v in asdict(settings).items() if k != "model"}
    save_checkpoint(
        out / "last.pt",
        model,
        settings.model,
        {**meta, "optimiser": optimiser.state_dict(), "torch_rng": torch.get_rng_state()},
    )
    save_checkpoint(out / "model.pt", model, settings.model, {"classes": list(CLASSES), "epoch": epoch})
    write_json(out / "history.json", history)
    loss_curve_png(history, out / "loss_curve.png")
    return out / "model.pt"


def _start_state(path: Path, model, optimiser, settings: TrainSettings, device, log) -> tuple[int, int, list]:
    """(epochs done, steps done, history): from `path` when resuming (model and optimiser loaded),
    else a fresh start (0, 0, [])."""
    if not (settings.resume and path.exists()):
        return 0, 0, []
    start_epoch, step, history = _resume(path, model, optimiser, settings, device)
    log(f"resuming from {path} at epoch {start_epoch + 1}")
    return start_epoch, step, history


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
    """Train and val total loss per epoch (log scale), as a PNG written atomically (perception.charts).
    history: one record per epoch, {"train": {"total": ...}, "val": {"total": ...}, ...}."""
    epochs = list(range(1, len(history) + 1))
    series = {f"{split} loss": (epochs, [r[split]["total"] for r in history]) for split in ("train", "val")}
    charts.line_chart(
        series, path, title="loss per epoch", xlabel="epoch", ylabel="loss (log scale)", size_px=(640, 360),
        log_y=True, markers=True,
    )  # fmt: skip

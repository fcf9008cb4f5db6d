"""Training targets and loss of the CenterNet detector (perception/detection/model.py).

encode() turns one image's boxes into dense and sparse targets at output stride 4:
    heatmap  (C, h, w)  a Gaussian per object at its centre cell, value 1 exactly there
    indices  (M,)       flattened centre cell y * w + x of object j (M = max_objects slots)
    mask     (M,)       1 for a used slot
    size     (M, 2)     log(box w, h / stride); classes (M,) the slot's class (whose size channels
                        the loss reads when the model has a size per class)
    offset   (M, 2)     centre / stride - centre cell, in [0, 1)
    distance (M,)       log(distance_m / max_distance_m); distance_mask (M,) 0 where unknown (NaN)
    ignore   (C, h, w)  1 in the cells a don't-care box (class id dont_care(k)) of class k covers:
                        the focal loss skips them as negatives (KITTI's DontCare, COCO's crowd)
The regression encodings must match detector.decode().

Gaussian radius: r = GAUSSIAN_RADIUS_FRACTION * sqrt(w h) in output cells (CenterNet's own radius
formula has a known bug, CenterNet issue #273, and its author notes that a radius proportional to
sqrt(w h) works about as well). r is not rounded: sigma = (2 r + 1) / 6, and the Gaussian is cut
to the square |dx|, |dy| <= r around the centre cell, so a small object (r < 1) marks one cell.
"""

from __future__ import annotations

import numpy as np
import torch

from perception.coco import dont_care
from perception.detection.model import OUTPUT_STRIDE, DetectorConfig

MAX_OBJECTS = 128  # regression slots per image; the heatmap marks every object
GAUSSIAN_RADIUS_FRACTION = 0.2  # radius [cells] per sqrt(box area [cells^2])
FOCAL_ALPHA = 2.0  # CenterNet focal loss: positives weighted (1 - p)^alpha
FOCAL_BETA = 4.0  # negatives near a centre weighted down by (1 - y)^beta
PROB_CLAMP = 1e-4  # sigmoid clamped to [1e-4, 1 - 1e-4] before the log
# Loss weights. Size and distance are L1 in log space (a relative error of ~0.1 per 10 %), so they
# take weight 1 / 0.5 where CenterNet's pixel-space size takes 0.1.
LOSS_WEIGHTS = {"heatmap": 1.0, "size": 1.0, "offset": 1.0, "distance": 0.5}
L1_COUNT_EPS = 1e-4  # added to the object count of a batch: a batch without objects gives 0, not NaN


def encode(
    boxes_xyxy,
    class_ids,
    distances_m,
    config: DetectorConfig,
    stride: int = OUTPUT_STRIDE,
    max_objects: int = MAX_OBJECTS,
) -> dict[str, torch.Tensor]:
    """Targets of ONE image. boxes_xyxy: (N, 4) [input px] inside the config's input size;
    class_ids: (N,) in [0, num_classes), or dont_care(k) for a don't-care box of class k;
    distances_m: (N,) [m], NaN (or None for all) where unknown.

    Raises ValueError for an empty box, a box outside the image, or a bad class id: callers
    validate (and clip) their data first. Objects beyond `max_objects` mark the heatmap only.
    """
    boxes, cls, dist = _as_tensors(boxes_xyxy, class_ids, distances_m)
    H, W, C = config.input_height, config.input_width, config.num_classes
    _check_inputs(boxes, cls, dist, H, W, C, stride)
    h, w = H // stride, W // stride
    care = cls >= 0
    ignore = _ignore_map(boxes[~care] / stride, dont_care(cls[~care]), C, h, w)
    boxes, cls, dist = boxes[care], cls[care], dist[care]

    # Centres and sizes in output cells.
    x0, y0, x1, y1 = boxes.unbind(1)
    cx, cy = (x0 + x1) / (2 * stride), (y0 + y1) / (2 * stride)  # (N,) in [0, w), [0, h)
    bw, bh = (x1 - x0) / stride, (y1 - y0) / stride
    ix, iy = cx.floor().long().clamp(max=w - 1), cy.floor().long().clamp(max=h - 1)  # centre cell

    targets = {
        "heatmap": _heatmap(ix, iy, bw, bh, cls, C, h, w),
        "ignore": ignore,
        "indices": torch.zeros(max_objects, dtype=torch.int64),
        "mask": torch.zeros(max_objects),
        "size": torch.zeros(max_objects, 2),
        "classes": torch.zeros(max_objects, dtype=torch.int64),  # whose size channels (class_sizes)
        "offset": torch.zeros(max_objects, 2),
        "distance": torch.zeros(max_objects),
        "distance_mask": torch.zeros(max_objects),
    }
    # The regression slots: the first max_objects objects, in input order.
    m = min(boxes.shape[0], max_objects)
    targets["indices"][:m] = (iy * w + ix)[:m]
    targets["mask"][:m] = 1.0
    targets["size"][:m] = torch.stack([bw, bh], 1)[:m].log()
    targets["classes"][:m] = cls[:m]
    targets["offset"][:m] = torch.stack([cx - ix, cy - iy], 1)[:m]
    known = ~dist[:m].isnan()
    targets["distance"][:m] = torch.where(known, (dist[:m] / config.max_distance_m).log(), 0.0)
    targets["distance_mask"][:m] = known.float()
    return targets


def _as_tensors(boxes_xyxy, class_ids, distances_m) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """encode()'s inputs as boxes (N, 4) float32, class ids (N,) int64, distances (N,) float32."""
    boxes = torch.as_tensor(np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4))
    n = boxes.shape[0]
    cls = torch.as_tensor(np.asarray(class_ids, dtype=np.int64).reshape(n))
    if distances_m is None:
        dist = torch.full((n,), float("nan"))
    else:
        dist = torch.as_tensor(np.asarray(distances_m, dtype=np.float32).reshape(n))
    return boxes, cls, dist


def _check_inputs(
    boxes: torch.Tensor, cls: torch.Tensor, dist: torch.Tensor, H: int, W: int, C: int, stride: int
) -> None:
    """ValueError unless the image size fits the stride, every box is a non-empty box inside the
    W x H image, every class id is one of C classes (or a don't-care id) and every distance > 0."""
    if H % stride or W % stride:
        raise ValueError(f"input size {H}x{W} is not a multiple of the stride {stride}")
    x0, y0, x1, y1 = boxes.unbind(1)
    bad = ~((x0 >= 0) & (y0 >= 0) & (x1 <= W) & (y1 <= H) & (x1 > x0) & (y1 > y0))  # NaN is bad too
    if bad.any():
        raise ValueError(f"box {boxes[bad][0].tolist()} is empty or outside the {W}x{H} image")
    if len(cls) and (cls.min() < -C or cls.max() >= C):
        raise ValueError(f"class ids must lie in [0, {C}) (or be don't-care ids), got {cls.tolist()}")
    if (dist <= 0).any():
        raise ValueError(f"distances must be > 0 (or NaN if unknown), got {dist.tolist()}")


def _ignore_map(boxes_cells: torch.Tensor, class_ids: torch.Tensor, C: int, h: int, w: int) -> torch.Tensor:
    """(C, h, w): 1 in the cells of class k that a don't-care box of class k overlaps, else 0.

    boxes_cells: (D, 4) xyxy in output cells; class_ids: (D,) the classes they belong to (>= 0).
    """
    cells_x, cells_y = torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32)
    in_x = (cells_x[None] < boxes_cells[:, 2:3]) & (cells_x[None] + 1 > boxes_cells[:, 0:1])  # (D, w)
    in_y = (cells_y[None] < boxes_cells[:, 3:4]) & (cells_y[None] + 1 > boxes_cells[:, 1:2])  # (D, h)
    covered = (in_y[:, :, None] & in_x[:, None, :]).float().reshape(-1, h * w)  # (D, h w)
    ignore = torch.zeros(C, h * w).scatter_reduce_(0, class_ids[:, None].expand_as(covered), covered, "amax")
    return ignore.reshape(C, h, w)


def _heatmap(
    ix: torch.Tensor,
    iy: torch.Tensor,
    bw: torch.Tensor,
    bh: torch.Tensor,
    cls: torch.Tensor,
    C: int,
    h: int,
    w: int,
) -> torch.Tensor:
    """(C, h, w): per class the max of the objects' Gaussians (module docstring), 1 at each centre.

    ix, iy: (N,) centre cells; bw, bh: (N,) box size [cells]; cls: (N,) class ids >= 0.
    Separable: (N, h) x (N, w) -> (N, h, w).
    """
    n = len(cls)
    radius = GAUSSIAN_RADIUS_FRACTION * (bw * bh).sqrt()  # (N,)
    sigma = (2 * radius + 1) / 6
    dx = torch.arange(w, dtype=torch.float32)[None, :] - ix[:, None]  # (N, w)
    dy = torch.arange(h, dtype=torch.float32)[None, :] - iy[:, None]  # (N, h)
    gx = torch.exp(-(dx**2) / (2 * sigma[:, None] ** 2)) * (dx.abs() <= radius[:, None])
    gy = torch.exp(-(dy**2) / (2 * sigma[:, None] ** 2)) * (dy.abs() <= radius[:, None])
    gauss = gy[:, :, None] * gx[:, None, :]  # (N, h, w), exactly 1 at the centre cell
    heatmap = torch.zeros(C, h * w).scatter_reduce_(
        0, cls[:, None].expand(n, h * w), gauss.reshape(n, h * w), "amax"
    )
    return heatmap.reshape(C, h, w)


def collate(
    samples: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """[(image (3, H, W), targets of encode())] -> (images (B, 3, H, W), {key: (B, ...)}).

    Usable as a DataLoader collate_fn.
    """
    images = torch.stack([image for image, _ in samples])
    targets = {key: torch.stack([t[key] for _, t in samples]) for key in samples[0][1]}
    return images, targets


def focal_loss(
    pred_logits: torch.Tensor, gt_heatmap: torch.Tensor, ignore: torch.Tensor | None = None
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss. pred_logits, gt_heatmap, ignore: (B, C, h, w) -> scalar.

    positives (gt == 1): -(1 - p)^2 log p; negatives: -(1 - gt)^4 p^2 log(1 - p), except where
    `ignore` is 1 (don't-care cells); summed over everything, divided by the number of positives
    (at least 1).
    """
    p = torch.sigmoid(pred_logits.float()).clamp(PROB_CLAMP, 1 - PROB_CLAMP)
    pos = gt_heatmap.eq(1).float()
    neg = 1 - pos if ignore is None else (1 - pos) * (1 - ignore)
    pos_loss = torch.log(p) * (1 - p) ** FOCAL_ALPHA * pos
    neg_loss = torch.log(1 - p) * p**FOCAL_ALPHA * (1 - gt_heatmap) ** FOCAL_BETA * neg
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def _at_centres(pred: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """pred (B, c, h, w) read at indices (B, M) -> (B, M, c)."""
    B, c = pred.shape[:2]
    at = pred.float().reshape(B, c, -1).gather(2, indices[:, None, :].expand(B, c, indices.shape[1]))
    return at.transpose(1, 2)


def _sizes_at_centres(pred: torch.Tensor, indices: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The size head (B, 2, h, w), or (B, 2 C, h, w) with a size per class, read at indices (B, M)
    -> (B, M, 2): with a size per class, each slot's own class's pair (`classes` (B, M))."""
    at = _at_centres(pred, indices)  # (B, M, 2 or 2 C)
    if at.shape[2] == 2:
        return at
    B, M = indices.shape
    per_class = at.reshape(B, M, -1, 2)  # (B, M, C, 2)
    return per_class.gather(2, classes[:, :, None, None].expand(B, M, 1, 2))[:, :, 0]


def _masked_l1(at: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |error| per coordinate of at (B, M, c) vs target (B, M, c) over the masked (B, M) slots:
    sum / (number of objects + L1_COUNT_EPS)."""
    err = (at - target.reshape(at.shape)).abs().mean(2)  # (B, M)
    return (err * mask).sum() / (mask.sum() + L1_COUNT_EPS)


def detection_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: dict[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the head losses -> (total (scalar, differentiable), {part: float, "total": float}).

    outputs: CenterNet.forward's dict; targets: collate()'s batched dict. The distance part counts
    only when the model has a distance head. `weights` overrides LOSS_WEIGHTS key by key.
    """
    unknown = set(weights or {}) - set(LOSS_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown loss weights {sorted(unknown)}; known: {sorted(LOSS_WEIGHTS)}")
    wts = {**LOSS_WEIGHTS, **(weights or {})}
    idx, mask = targets["indices"], targets["mask"]
    parts = {
        "heatmap": focal_loss(outputs["heatmap"], targets["heatmap"], targets.get("ignore")),
        "size": _masked_l1(
            _sizes_at_centres(outputs["size"], idx, targets["classes"]), targets["size"], mask
        ),
        "offset": _masked_l1(_at_centres(outputs["offset"], idx), targets["offset"], mask),
    }
    if "distance" in outputs:
        parts["distance"] = _masked_l1(
            _at_centres(outputs["distance"], idx), targets["distance"][..., None], targets["distance_mask"]
        )
    total = sum(wts[k] * v for k, v in parts.items())
    values = torch.stack(
        [total.detach(), *(v.detach() for v in parts.values())]
    ).tolist()  # one copy to the host
    return total, dict(zip(["total", *parts], values, strict=True))

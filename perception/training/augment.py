"""Seeded image augmentation for detection: photometric jitter, horizontal flip, zoom and crop, and
the benchmark's image corruptions (perception/evaluation/corruptions.py) at random strengths.

Every function takes the image as RGB uint8 (H, W, 3) and boxes as (N, 4) float32 (x0, y0, x1, y1)
pixels, with class_ids (N,) int64 and distances_m (N,) float32 beside them, and returns the same
types with the same image size. Every random draw comes from the `np.random.Generator` passed in.
Boxes move with the pixels (Karpathy's silent bug: flipping images without flipping labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception.evaluation.corruptions import KINDS, MAX_SEVERITY, corrupt

HUE_UNITS_PER_DEG = 0.5  # OpenCV stores an 8-bit hue as degrees / 2 (0..179)


def photometric_jitter(
    rng: np.random.Generator,
    rgb: np.ndarray,
    strength: float,
    hue_shift_deg: float,
    noise_std: float,
) -> np.ndarray:
    """Random brightness, contrast, saturation (each a factor in [1 - strength, 1 + strength]),
    hue shift in [-hue_shift_deg, hue_shift_deg] and Gaussian noise of std up to `noise_std`
    (fraction of full scale). Returns a new uint8 image of the same shape."""
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, size=3)
    hue_shift = rng.uniform(-hue_shift_deg, hue_shift_deg) * HUE_UNITS_PER_DEG
    sigma = rng.uniform(0.0, noise_std) * 255.0

    img = rgb.astype(np.float32) * brightness
    gray = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    img = (img - gray.mean()) * contrast + gray.mean()  # contrast about the mean grey level
    img = (img - gray[..., None]) * saturation + gray[..., None]  # saturation about each pixel's grey
    img = np.clip(img, 0, 255).astype(np.uint8)
    if hue_shift != 0.0:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(round(hue_shift))) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if sigma > 0.0:
        noise = rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(sigma)
        noisy = img.astype(np.float32) + noise
        img = np.clip(noisy, 0, 255).astype(np.uint8)
    return img


def hflip(rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right; a box (x0, y0, x1, y1) becomes (W - x1, y0, W - x0, y1)."""
    width = rgb.shape[1]
    flipped = np.ascontiguousarray(rgb[:, ::-1])
    out = boxes.astype(np.float32, copy=True)
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return flipped, out


def scale_crop(
    rng: np.random.Generator,
    rgb: np.ndarray,
    boxes: np.ndarray,
    class_ids: np.ndarray,
    distances_m: np.ndarray,
    scale: float,
    min_kept_fraction: float,
    min_box_size_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zoom by `scale` (> 1 in, < 1 out) and cut or pad back to the input size at a random offset.

    Zooming in crops a random window; zooming out pads with the image's mean colour. Boxes are
    scaled, shifted and clipped to the image; a box keeping less than `min_kept_fraction` of its
    area or thinner/shorter than `min_box_size_px` is dropped with its class and distance.
    Distances are divided by the zoom: a pinhole camera with fixed intrinsics sees an object `s`
    times larger when it is `s` times closer, so the size-distance relation stays true.
    """
    height, width = rgb.shape[:2]
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    sx, sy = new_w / width, new_h / height  # exact factors of the resize (pixel-corner coordinates)

    # offset of the resized image's top-left corner in the output (<= 0 when cropping, >= 0 padding)
    ox = (
        -int(rng.integers(0, new_w - width + 1))
        if new_w >= width
        else int(rng.integers(0, width - new_w + 1))
    )
    oy = (
        -int(rng.integers(0, new_h - height + 1))
        if new_h >= height
        else int(rng.integers(0, height - new_h + 1))
    )
    out = np.empty_like(rgb)
    out[:] = rgb.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    dst_x0, dst_y0 = max(ox, 0), max(oy, 0)
    src_x0, src_y0 = max(-ox, 0), max(-oy, 0)
    w, h = min(width - dst_x0, new_w - src_x0), min(height - dst_y0, new_h - src_y0)
    out[dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = resized[src_y0 : src_y0 + h, src_x0 : src_x0 + w]

    moved = boxes.astype(np.float32) * np.array([sx, sy, sx, sy], dtype=np.float32)
    moved += np.array([ox, oy, ox, oy], dtype=np.float32)
    clipped = np.clip(moved, 0.0, np.array([width, height, width, height], dtype=np.float32))
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    bw, bh = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (bw * bh >= min_kept_fraction * area) & (bw >= min_box_size_px) & (bh >= min_box_size_px)
    zoom = np.sqrt(sx * sy)
    return out, clipped[keep], class_ids[keep].copy(), (distances_m[keep] / zoom).astype(np.float32)


@dataclass(frozen=True)
class Augment:
    """Zoom/crop, then horizontal flip, then photometric jitter, then a corruption. All draws from
    the passed generator.

    flip_p: probability of a left-right flip. scale_p: probability of a zoom, with the factor drawn
    uniformly from scale_range (above 1 zooms in, below 1 zooms out). jitter: brightness/contrast/
    saturation strength (0 = off). hue_shift_deg, noise_std (fraction of full scale): see
    `photometric_jitter`. min_kept_fraction, min_box_size_px: when a cropped box is dropped.
    corrupt_p: probability of a corruption, its kind drawn uniformly from corrupt_kinds and its
    severity uniformly from corrupt_severity (a real number: the benchmark's severities 1-3 and
    every strength between, perception/evaluation/corruptions.py). With corrupt_p 0 no draw is made
    for it, so the other steps see the same random numbers as without the option.
    The values live in conf/train.yaml (`augment:`).
    """

    flip_p: float
    jitter: float
    hue_shift_deg: float
    noise_std: float
    scale_p: float
    scale_range: tuple[float, float]
    min_kept_fraction: float
    min_box_size_px: float
    corrupt_p: float
    corrupt_kinds: tuple[str, ...]
    corrupt_severity: tuple[float, float]

    def __post_init__(self):
        unknown = [k for k in self.corrupt_kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"corrupt_kinds: unknown corruption {unknown[0]!r}; known: {', '.join(KINDS)}")
        if self.corrupt_p > 0 and not self.corrupt_kinds:
            raise ValueError("corrupt_kinds is empty but corrupt_p > 0: name at least one corruption")
        low, high = self.corrupt_severity
        if not 0 <= low <= high <= MAX_SEVERITY:
            raise ValueError(
                f"corrupt_severity={list(self.corrupt_severity)}: [low, high] with 0 <= low <= high <= 3"
            )

    def __call__(
        self,
        rng: np.random.Generator,
        rgb: np.ndarray,
        boxes: np.ndarray,
        class_ids: np.ndarray,
        distances_m: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """rgb (H, W, 3) uint8, boxes (N, 4) xyxy px, class_ids (N,), distances_m (N,) -> the same,
        image size unchanged, boxes possibly fewer."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        class_ids = np.asarray(class_ids, dtype=np.int64)
        distances_m = np.asarray(distances_m, dtype=np.float32)
        if rng.random() < self.scale_p:
            scale = rng.uniform(*self.scale_range)
            rgb, boxes, class_ids, distances_m = scale_crop(
                rng, rgb, boxes, class_ids, distances_m, scale, self.min_kept_fraction, self.min_box_size_px
            )
        if rng.random() < self.flip_p:
            rgb, boxes = hflip(rgb, boxes)
        if self.jitter > 0 or self.hue_shift_deg > 0 or self.noise_std > 0:
            rgb = photometric_jitter(rng, rgb, self.jitter, self.hue_shift_deg, self.noise_std)
        if self.corrupt_p > 0 and rng.random() < self.corrupt_p:
            kind = self.corrupt_kinds[int(rng.integers(len(self.corrupt_kinds)))]
            rgb = corrupt(rng, rgb, kind, rng.uniform(*self.corrupt_severity))
        return rgb, boxes, class_ids, distances_m

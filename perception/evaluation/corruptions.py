"""Common image corruptions at graded severities, seeded: the benchmark's and the training's.

Michaelis et al., "Benchmarking Robustness in Object Detection" (2019), measure a detector on
images corrupted at severities 1 to 5 and report mPC (mean AP under corruption) and rPC (mPC / clean
AP). Here nine kinds, three severities each, chosen for a driving camera and so that the settings
of issue 14's table (noise sigma 20, blur 9 px, motion blur 9 px and 15 px at 30 degrees,
brightness x0.6, contrast x0.5, JPEG 20, fog 40 %) lie inside the range:

    kind            severity 1       2                3                 what it imitates
    gaussian_noise  sigma 10         20               30 grey levels    sensor noise
    gaussian_blur   kernel 5 px      9                13                defocus (sigma: OpenCV's rule)
    motion_blur     5 px at 0 deg    9 px at 0 deg    15 px at 30 deg   camera motion
    brightness      x0.8             x0.6             x0.4              under-exposure
    contrast        x0.7             x0.5             x0.3              flat light, a dirty lens
    jpeg            quality 40       20               10                compression
    fog             20 % blend       40 %             60 %              fog (patchy, to light grey)
    rain            light streaks    medium           heavy             rain on the lens' view
    low_light       exposure x0.4    x0.2             x0.1              night: dark, photon noise

Severity is a real number: between the levels (and from severity 0, the identity) every parameter
is interpolated linearly, which the training's augmentation uses to draw any strength in a range
(perception/training/augment.py); the benchmark takes 1, 2 and 3.

Every function takes an RGB uint8 image (H, W, 3) and returns a new one of the same shape and type;
every random draw comes from the `np.random.Generator` passed in, so a seed gives the same image.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

# Parameters of each kind at severity 0 (the identity), 1, 2 and 3.
LEVELS: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "gaussian_noise": {"sigma": (0.0, 10.0, 20.0, 30.0)},  # [grey levels of 0-255]
    "gaussian_blur": {"kernel_px": (1.0, 5.0, 9.0, 13.0)},  # odd kernel size
    "motion_blur": {"length_px": (1.0, 5.0, 9.0, 15.0), "angle_deg": (0.0, 0.0, 0.0, 30.0)},
    "brightness": {"factor": (1.0, 0.8, 0.6, 0.4)},
    "contrast": {"factor": (1.0, 0.7, 0.5, 0.3)},
    "jpeg": {"quality": (100.0, 40.0, 20.0, 10.0)},
    "fog": {"blend": (0.0, 0.2, 0.4, 0.6)},
    "rain": {"drops_per_px": (0.0, 0.002, 0.004, 0.008), "length_px": (1.0, 8.0, 12.0, 16.0)},
    "low_light": {"exposure": (1.0, 0.4, 0.2, 0.1)},
}
KINDS: tuple[str, ...] = tuple(LEVELS)
SEVERITIES: tuple[int, ...] = (1, 2, 3)
MAX_SEVERITY = 3.0

FOG_GREY = 200.0  # [grey level] the colour fog blends towards (light grey)
FOG_PATCHINESS = 0.3  # the fog's density varies by +- this fraction of its mean over the image
FOG_CELLS = (3, 5)  # (rows, columns) of the coarse grid whose smooth upsampling makes the patches
RAIN_ANGLE_DEG = (70.0, 110.0)  # streak direction from the image's x axis, drawn per image (wind)
RAIN_GREY = 220.0  # [grey level] of a streak at full strength
RAIN_ALPHA = 0.6  # a streak's opacity
GAMMA = 2.2  # sRGB-like encoding of the frames: linear light = (value / 255) ** GAMMA
FULL_WELL_E = 1000.0  # [electrons] a white pixel collects at exposure 1 (photon noise: sqrt(N))
READ_NOISE_E = 3.0  # [electrons] read noise of the sensor


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip float pixel values to uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def gaussian_noise(rng: np.random.Generator, rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Add independent Gaussian noise of std `sigma` grey levels to every channel of every pixel."""
    noise = rng.standard_normal(size=rgb.shape, dtype=np.float32) * np.float32(sigma)
    return to_uint8(rgb + noise)


def gaussian_blur(rng: np.random.Generator, rgb: np.ndarray, kernel_px: float) -> np.ndarray:
    """Gaussian blur with a square kernel of `kernel_px` (rounded to an odd size) and OpenCV's sigma
    for that size, 0.3 ((k - 1) / 2 - 1) + 0.8: 1.7 px for 9 px. Deterministic (`rng` unused)."""
    k = _odd(kernel_px)
    return rgb.copy() if k <= 1 else cv2.GaussianBlur(rgb, (k, k), 0)


def line_kernel(length_px: float, angle_deg: float) -> np.ndarray:
    """(K, K) float32 kernel summing to 1: a line of `length_px` through the centre at `angle_deg`
    from the image's x axis (counter-clockwise as seen). Points along it are splatted bilinearly, so
    any real length works; a length <= 1 is the identity."""
    if length_px <= 1:
        return np.ones((1, 1), dtype=np.float32)
    half = length_px / 2
    size = 2 * math.ceil(half) + 1
    kernel = np.zeros((size + 1, size + 1), dtype=np.float32)  # one spare row and column for the splat
    t = np.linspace(-half, half, max(2, math.ceil(4 * length_px)))
    x = size // 2 + t * math.cos(math.radians(angle_deg))
    y = size // 2 - t * math.sin(math.radians(angle_deg))  # image rows grow downwards
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dx, dy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    kernel = kernel[:size, :size]
    return kernel / kernel.sum()


def motion_blur(rng: np.random.Generator, rgb: np.ndarray, length_px: float, angle_deg: float) -> np.ndarray:
    """Blur along a line of `length_px` at `angle_deg` (0: horizontal), centred on each pixel, so the
    objects do not move. Deterministic (`rng` unused)."""
    if length_px <= 1:
        return rgb.copy()
    return cv2.filter2D(rgb, -1, line_kernel(length_px, angle_deg), borderType=cv2.BORDER_REFLECT)


def brightness(rng: np.random.Generator, rgb: np.ndarray, factor: float) -> np.ndarray:
    """Every pixel value times `factor` (an exposure change in the encoded values)."""
    return to_uint8(rgb * np.float32(factor))


def contrast(rng: np.random.Generator, rgb: np.ndarray, factor: float) -> np.ndarray:
    """Deviations from the image's mean value scaled by `factor`: the mean stays, the spread shrinks."""
    mean = rgb.mean()
    return to_uint8((rgb - np.float32(mean)) * np.float32(factor) + np.float32(mean))


def jpeg(rng: np.random.Generator, rgb: np.ndarray, quality: float) -> np.ndarray:
    """Encode as JPEG at `quality` (1-100, rounded; OpenCV's encoder, 4:2:0 chroma) and decode."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    if not ok:
        raise RuntimeError("OpenCV could not encode the image as JPEG")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def fog(rng: np.random.Generator, rgb: np.ndarray, blend: float) -> np.ndarray:
    """Blend towards light grey (FOG_GREY) by `blend` on average, in smooth random patches whose
    density varies by +- FOG_PATCHINESS: fog, not a uniform change of contrast."""
    height, width = rgb.shape[:2]
    coarse = rng.uniform(-1.0, 1.0, size=FOG_CELLS).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)  # (H, W) smooth
    alpha = np.clip(blend * (1.0 + FOG_PATCHINESS * np.clip(field, -1.0, 1.0)), 0.0, 1.0)[..., None]
    return to_uint8(rgb * (1.0 - alpha) + alpha * FOG_GREY)


def rain(rng: np.random.Generator, rgb: np.ndarray, drops_per_px: float, length_px: float) -> np.ndarray:
    """Light streaks: random drops (`drops_per_px` of the pixels) smeared into lines of `length_px`
    at one slant per image (drawn from RAIN_ANGLE_DEG), laid over the image at RAIN_ALPHA."""
    height, width = rgb.shape[:2]
    drops = (rng.random((height, width), dtype=np.float32) < drops_per_px).astype(np.float32)
    kernel = line_kernel(length_px, rng.uniform(*RAIN_ANGLE_DEG))
    streaks = np.clip(cv2.filter2D(drops, -1, kernel) * max(length_px, 1.0), 0.0, 1.0)  # (H, W) in [0, 1]
    alpha = (RAIN_ALPHA * streaks)[..., None]
    return to_uint8(rgb * (1.0 - alpha) + alpha * RAIN_GREY)


_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** GAMMA).astype(np.float32)  # 8-bit value -> linear


def low_light(rng: np.random.Generator, rgb: np.ndarray, exposure: float) -> np.ndarray:
    """The scene taken with `exposure` times the light: in linear light the signal scales down, and
    photon noise (Poisson, as a Gaussian of variance N electrons) plus read noise come on top, so
    the dark image is noisy as a night frame is. Nothing brightens it back."""
    electrons = _TO_LINEAR[rgb] * np.float32(exposure * FULL_WELL_E)  # (H, W, 3)
    std = np.sqrt(electrons + np.float32(READ_NOISE_E**2))
    noisy = electrons + rng.standard_normal(size=rgb.shape, dtype=np.float32) * std
    linear = np.clip(noisy / np.float32(FULL_WELL_E), 0.0, 1.0)
    return to_uint8(255.0 * linear ** np.float32(1.0 / GAMMA))


FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "brightness": brightness,
    "contrast": contrast,
    "jpeg": jpeg,
    "fog": fog,
    "rain": rain,
    "low_light": low_light,
}


def parameters(kind: str, severity: float) -> dict[str, float]:
    """The parameters of `kind` at `severity` in [0, MAX_SEVERITY], interpolated between LEVELS."""
    if kind not in LEVELS:
        raise ValueError(f"unknown corruption {kind!r}; known: {', '.join(KINDS)}")
    if not 0.0 <= severity <= MAX_SEVERITY:
        raise ValueError(f"corruption severity {severity} is out of range: [0, {MAX_SEVERITY:g}]")
    levels = np.arange(len(SEVERITIES) + 1)
    return {name: float(np.interp(severity, levels, values)) for name, values in LEVELS[kind].items()}


def corrupt(rng: np.random.Generator, rgb: np.ndarray, kind: str, severity: float) -> np.ndarray:
    """`rgb` (H, W, 3) uint8 corrupted by `kind` at `severity` (0: an unchanged copy) -> a new image."""
    params = parameters(kind, severity)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if severity == 0:
        return rgb.copy()
    return FUNCTIONS[kind](rng, rgb, **params)


def describe(kind: str, severity: float) -> str:
    """A short label of the setting, e.g. "motion_blur 15 px at 30 deg"."""
    p = parameters(kind, severity)
    return f"{kind} {_LABELS[kind](p)}"


def _odd(kernel_px: float) -> int:
    return 2 * int(round((kernel_px - 1) / 2)) + 1


_LABELS: dict[str, Callable[[dict[str, float]], str]] = {
    "gaussian_noise": lambda p: f"sigma {p['sigma']:g}",
    "gaussian_blur": lambda p: f"kernel {_odd(p['kernel_px'])} px",
    "motion_blur": lambda p: f"{p['length_px']:g} px at {p['angle_deg']:g} deg",
    "brightness": lambda p: f"x{p['factor']:g}",
    "contrast": lambda p: f"x{p['factor']:g}",
    "jpeg": lambda p: f"quality {int(round(p['quality']))}",
    "fog": lambda p: f"{100 * p['blend']:g} % blend",
    "rain": lambda p: f"{1000 * p['drops_per_px']:g} drops/kpx, {p['length_px']:g} px",
    "low_light": lambda p: f"exposure x{p['exposure']:g}",
}

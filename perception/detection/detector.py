"""The CenterNet detector at inference time: a checkpoint loaded on a device, ready for batches.

`Detector` folds BatchNorm into the convolutions, uses channels_last, freezes the model with
TorchScript on the CPU and autocasts to bf16 on CUDA; `detect` takes uint8 frames of the model's
input size and returns the decoded boxes (perception/detection/model.py `decode`).

On the CPU, torch's results change with its thread count, in the last bits (oneDNN and torch split
their work by thread): a score near the threshold can then flip a detection, and a closed-loop run
would depend on the machine's cores or on how many runs share it. A Detector given `threads` runs
every batch on that many threads, whatever torch's setting elsewhere in the process.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from perception.detection.model import decode, fold_batchnorm, load_checkpoint
from perception.types import CLASSES

SHIPPED = "shipped"  # checkpoint name of the weights that ship with the package


def resolve_checkpoint(path: str) -> Path:
    """`shipped` -> the packaged weights (perception/weights/centernet_small.pt); else the path."""
    if path == SHIPPED:
        return Path(str(files("perception").joinpath("weights", "centernet_small.pt")))
    return Path(path).expanduser()


def frozen(model: torch.nn.Module, height: int, width: int) -> torch.jit.ScriptModule:
    """The model traced and frozen by TorchScript: the same outputs in ~2/3 of eager's CPU time at
    batch 1 (no Python per layer, convs fused with their ReLU; benchmarks/detector_speed.py).
    Traced at batch 1; convolutions take any batch size."""
    example = torch.zeros(1, 3, height, width).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's note that the input-shape check is constant
        return torch.jit.freeze(torch.jit.trace(model.eval(), example, strict=False))


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to `threads` while the block runs (None: left as they are)."""
    old = torch.get_num_threads()
    if threads is None or threads == old:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Detector:
    """A loaded CenterNet on a device; `detect` takes a batch of frames of the model's size.

    `threads`: CPU threads per batch, fixed so that the same frames give the same detections whatever
    the core count or the runs beside it (None: torch's setting, e.g. for batch evaluation)."""

    def __init__(
        self, checkpoint: str, device: str = "auto", compile: bool = False, threads: int | None = None
    ):
        if threads is not None and not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f"threads={threads!r} is out of range: an int >= 1")
        self.threads = threads
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.path = resolve_checkpoint(checkpoint)
        model, self.config, _ = load_checkpoint(self.path, map_location=self.device, expect_classes=CLASSES)
        self.model = fold_batchnorm(model).to(memory_format=torch.channels_last)
        if compile:
            self.model = torch.compile(self.model)
        elif self.device.type == "cpu":
            self.model = frozen(self.model, self.config.input_height, self.config.input_width)
        self.autocast = self.device.type == "cuda"

    @torch.inference_mode()
    def detect(self, images: np.ndarray | list[np.ndarray], score_threshold: float) -> list[dict]:
        """images: (B, H, W, 3) uint8 RGB (or a list of (H, W, 3)). Returns decode()'s dicts."""
        batch = np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images)
        want = (self.config.input_height, self.config.input_width, 3)
        if batch.ndim != 4 or batch.shape[1:] != want or batch.dtype != np.uint8:
            raise ValueError(
                f"detector {self.path.name} expects uint8 frames of shape (H, W, 3) = {want}, "
                f"got {batch.dtype} {batch.shape[1:] if batch.ndim == 4 else batch.shape}"
            )
        with torch_threads(self.threads):
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
            x = x.float().div_(255.0).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                out = self.model(x)
            return decode(out, score_threshold=score_threshold, max_distance_m=self.config.max_distance_m)

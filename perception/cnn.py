"""The camera perceiver: CenterNet detections -> ground positions -> Kalman tracks.

Per camera frame: detect (batched, BatchNorm folded, channels_last, TorchScript-frozen on CPU, bf16 autocast on CUDA, optional torch.compile),
localise each box on the ground (box bottom through the camera model, fused with the distance
head), then associate with the tracks (constant-velocity Kalman filter, Hungarian matching).
Between camera frames the tracks are only predicted. Never uses the simulator's truth.
"""

from __future__ import annotations

import warnings
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from perception.detector import decode, fold_batchnorm, load_checkpoint
from perception.localise import localise
from perception.tracking import Tracker
from perception.types import CLASSES, CameraFrame, Detection, EgoState, WorldModel

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


class Detector:
    """A loaded CenterNet on a device; `detect` takes a batch of frames of the model's size."""

    def __init__(self, checkpoint: str, device: str = "auto", compile: bool = False):
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
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
        x = x.float().div_(255.0).contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.model(x)
        return decode(out, score_threshold=score_threshold, max_distance_m=self.config.max_distance_m)


class CNNPerceiver:
    needs_camera = True
    needs_truth = False

    def __init__(
        self,
        checkpoint: str,
        device: str,
        score_threshold: float,
        max_range_m: float,
        tracker: dict,
        compile: bool = False,
    ):
        self.detector = Detector(checkpoint, device, compile)
        if not 0 < score_threshold < 1:
            raise ValueError(f"perception.score_threshold={score_threshold} is out of range: (0, 1)")
        self.score_threshold = score_threshold
        self.max_range_m = max_range_m
        self.tracker = Tracker(**tracker)
        self._detections: tuple[Detection, ...] = ()

    def reset(self, rng: np.random.Generator) -> None:
        self.tracker.reset()
        self._detections = ()

    def perceive(self, frame: CameraFrame | None, ego: EgoState, truth: WorldModel | None) -> WorldModel:
        if frame is None:
            self.tracker.predict(ego.t_s)
        else:
            det = self.detector.detect(frame.rgb[None], self.score_threshold)[0]
            self.observe(frame, det)
        tracks = self.tracker.tracks()
        near = np.hypot(tracks["xy_m"][:, 0] - ego.x_m, tracks["xy_m"][:, 1] - ego.y_m) <= self.max_range_m
        return WorldModel(
            ego=ego,
            t_s=ego.t_s,
            **{k: v[near] for k, v in tracks.items()},
            detections=self._detections,
        )

    def observe(self, frame: CameraFrame, det: dict) -> None:
        """Feed one frame's decoded detections to the tracker (also used with batched detection)."""
        h, w = frame.rgb.shape[:2]
        boxes, classes = det["boxes_xyxy"], det["class_ids"]
        xy, sigma = localise(
            boxes, det["distances_m"], classes, frame.K, frame.cam_to_world, image_size_px=(w, h)
        )
        ok = np.isfinite(xy).all(axis=1)
        self.tracker.update(frame.t_s, xy[ok], sigma[ok], classes[ok], det["scores"][ok])
        self._detections = tuple(
            Detection(tuple(float(v) for v in b), int(c), float(s), float(d))
            for b, c, s, d in zip(boxes, classes, det["scores"], det["distances_m"], strict=True)
        )

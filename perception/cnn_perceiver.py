"""The camera perceiver: CenterNet detections -> ground positions -> Kalman tracks.

Per camera frame: detect (perception/detection/detector.py: BatchNorm folded, TorchScript on the
CPU, bf16 on CUDA; or, with `runtime=onnxruntime`, an fp32 or int8 ONNX model on the CPU), localise
each box on the ground (box bottom through the camera model, fused with the distance head), then
associate with the tracks (constant-velocity Kalman filter, Hungarian matching).
Between camera frames the tracks are only predicted. Never uses the simulator's truth.

The detector runs on `threads` CPU threads (conf/perception/cnn.yaml: 1), whatever the process's
torch setting (onnxruntime's too): the same seed is then the same run alone or beside other runs
(a suite's workers), on any core count. One frame at a time gains little from more threads (~4.5 ms
on one, ~3.5 ms on two, at 320x192).
"""

from __future__ import annotations

import numpy as np

from perception.detection.detector import Detector
from perception.localise import localise
from perception.tracking import Tracker
from perception.types import CameraFrame, Detection, EgoState, WorldModel


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
        compile: bool,
        threads: int,
        runtime: str,
    ):
        self.detector = Detector(checkpoint, device, compile, threads, runtime)
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

"""The camera perceiver: CenterNet detections -> ground positions -> Kalman tracks.

Per camera tick, the frames of every camera of the rig in one batch: detect
(perception/detection/detector.py: BatchNorm folded, TorchScript on the CPU, bf16 on CUDA; or, with
`runtime=onnxruntime`, an fp32 or int8 ONNX model on the CPU), localise each box on the ground
through its camera (box bottom through the camera model, fused with the distance head), make one
measurement of an object that two cameras saw (`merge_views`), then associate with the tracks
(constant-velocity Kalman filter, Hungarian matching): one track per object across cameras. The
world model says what the cameras covered (`views`, perception/visibility.py), a longer lens to a
longer range: the planner changes lanes only into what lies in view. Traffic-light boxes go to
perception/lights.py, which ties them to the map's lights (given at `reset`) and reports each signal
group's state. The sirens heard mark the emergency vehicles among the tracks (perception/hearing.py).
Between camera frames the tracks are only predicted. Never uses the simulator's truth.

The detector runs on `threads` CPU threads (conf/perception/cnn.yaml: 1), whatever the process's
torch setting (onnxruntime's too): the same seed is then the same run alone or beside other runs
(a suite's workers), on any core count. One frame at a time gains little from more threads (~4.5 ms
on one, ~3.5 ms on two, at 320x192).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from perception.detection.detector import Detector
from perception.hearing import match_sirens
from perception.lights import LIGHT_PEAK_MIN_SCORE, LightStates, MappedLight, match_lights, recognise_lights
from perception.localise import DISTANCE_LENS, localise, merge_views
from perception.tracking import Tracker
from perception.types import FIRST_LIGHT_CLASS, CameraFrame, Detection, EgoState, WorldModel
from perception.visibility import CameraView, view_of_frame

RANGE_LENS_HFOV_DEG = 75.0  # the lens that `max_range_m` is set for (the rig's front camera)


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
        light_hold_s: float,
        cuda_graphs: bool,
        siren_gate_deg: float,
    ):
        self.detector = Detector.shared(checkpoint, device, compile, threads, runtime, cuda_graphs)
        if not 0 < score_threshold < 1:
            raise ValueError(f"perception.score_threshold={score_threshold} is out of range: (0, 1)")
        self.score_threshold = score_threshold
        self.max_range_m = max_range_m
        if not 0 < siren_gate_deg <= 180:
            raise ValueError(f"perception.siren_gate_deg={siren_gate_deg} is out of range: (0, 180]")
        self.siren_gate_rad = math.radians(siren_gate_deg)
        self.tracker = Tracker(**tracker)
        self.lights = LightStates(light_hold_s)
        self._map_lights: tuple[MappedLight, ...] = ()
        self._detections: tuple[Detection, ...] = ()
        self._views: tuple[CameraView, ...] = ()  # what the last frames covered: nothing before them
        self._emergency_ids = np.zeros(0, np.int64)  # the tracks the sirens were heard from last

    def reset(self, rng: np.random.Generator, lights: Sequence[MappedLight] = ()) -> None:
        self.tracker.reset()
        self.lights.reset()
        self._map_lights = tuple(lights)
        self._detections = ()
        self._views = ()
        self._emergency_ids = np.zeros(0, np.int64)

    def perceive(
        self,
        frames: Sequence[CameraFrame] | None,
        ego: EgoState,
        truth: WorldModel | None,
        sirens: Sequence[float] = (),
    ) -> WorldModel:
        if frames is None:
            self.tracker.predict(ego.t_s)
        else:
            decode_min = min(self.score_threshold, LIGHT_PEAK_MIN_SCORE)
            dets = self.detector.detect(np.stack([f.rgb for f in frames]), decode_min)
            dets = [
                recognise_lights(f.rgb, d, self.score_threshold) for f, d in zip(frames, dets, strict=True)
            ]
            self.observe(frames, dets, ego.yaw_rad)
            for frame, det in zip(frames, dets, strict=True):
                self.lights.update(ego.t_s, match_lights(self._map_lights, frame, det, self.score_threshold))
            self._views = tuple(view_of_frame(f, ego, self.trusted_range_m(f)) for f in frames)
        tracks = self.tracker.tracks()
        far_m = max((v.range_m for v in self._views), default=self.max_range_m)
        near = np.hypot(tracks["xy_m"][:, 0] - ego.x_m, tracks["xy_m"][:, 1] - ego.y_m) <= far_m
        tracks = {k: v[near] for k, v in tracks.items()}
        before = np.isin(tracks["ids"], self._emergency_ids)
        emergency = match_sirens(
            sirens, ego, tracks["xy_m"], tracks["class_ids"], self.siren_gate_rad, before
        )
        self._emergency_ids = tracks["ids"][emergency]
        return WorldModel(
            ego=ego,
            t_s=ego.t_s,
            **tracks,
            detections=self._detections,
            signals=self.lights.signals(ego.t_s),
            emergency=emergency,
            views=self._views,
            sirens=tuple(sirens),
        )

    def trusted_range_m(self, frame: CameraFrame) -> float:
        """How far the camera of `frame` is trusted: `max_range_m` for a lens of RANGE_LENS_HFOV_DEG
        or wider, and farther for a longer lens, in proportion to its focal length (an object that
        far is as many pixels tall in it)."""
        reference_px = frame.rgb.shape[1] / 2 / math.tan(math.radians(RANGE_LENS_HFOV_DEG) / 2)
        return self.max_range_m * max(1.0, float(frame.K[0, 0]) / reference_px)

    def observe(self, frames: Sequence[CameraFrame], dets: Sequence[dict], heading_rad: float) -> None:
        """Feed one tick's decoded detections (one dict per frame of the rig) to the tracker, an object
        that several cameras saw as one measurement (traffic lights are not tracked objects); new
        tracks start heading `heading_rad` (the ego's) until they are seen to move."""
        parts, shown = [], []
        for view, (frame, det) in enumerate(zip(frames, dets, strict=True)):
            h, w = frame.rgb.shape[:2]
            shown += [
                Detection(tuple(float(v) for v in b), int(c), float(s), float(d), view)
                for b, c, s, d in zip(
                    det["boxes_xyxy"], det["class_ids"], det["scores"], det["distances_m"], strict=True
                )
            ]
            obj = det["class_ids"] < FIRST_LIGHT_CLASS
            boxes, classes, scores = det["boxes_xyxy"][obj], det["class_ids"][obj], det["scores"][obj]
            xy, sigma = localise(
                boxes,
                det["distances_m"][obj],
                classes,
                frame.K,
                frame.cam_to_world,
                image_size_px=(w, h),
                distance_lens=DISTANCE_LENS,
            )
            ok = np.isfinite(xy).all(axis=1)
            parts.append((xy[ok], sigma[ok], classes[ok], scores[ok], np.full(int(ok.sum()), view)))
        xy, sigma, classes, scores, views = (np.concatenate(cols) for cols in zip(*parts, strict=True))
        if len(frames) > 1:
            xy, sigma, classes, scores = merge_views(xy, sigma, classes, scores, views)
        sees = functools.partial(in_sight, frames, [self.trusted_range_m(f) for f in frames])
        self.tracker.update(frames[0].t_s, xy, sigma, classes, scores, heading_rad, sees)
        self._detections = tuple(shown)


def in_sight(frames: Sequence[CameraFrame], ranges_m: Sequence[float], xy_m: np.ndarray) -> np.ndarray:
    """(M,) whether some camera of `frames` sees the ground point of each of xy_m (M, 2) [m]: in
    front of it, within its range, and inside its image. An object whose foot lies below the image
    (beside the ego, nearer than a few metres) shows a box cut off at the bottom, which the detector
    misses: its track is kept (perception/tracking.py `max_unseen_misses`)."""
    seen = np.zeros(len(xy_m), bool)
    ground = np.column_stack([xy_m, np.zeros(len(xy_m))])
    for frame, range_m in zip(frames, ranges_m, strict=True):
        rotation, origin = frame.cam_to_world[:3, :3], frame.cam_to_world[:3, 3]
        cam = (ground - origin) @ rotation  # (M, 3) in the optical frame: x right, y down, z forward
        z = np.maximum(cam[:, 2], 1e-6)
        u = frame.K[0, 0] * cam[:, 0] / z + frame.K[0, 2]
        v = frame.K[1, 1] * cam[:, 1] / z + frame.K[1, 2]
        h, w = frame.rgb.shape[:2]
        near = np.hypot(ground[:, 0] - origin[0], ground[:, 1] - origin[1]) <= range_m
        seen |= (cam[:, 2] > 0.1) & (u >= 0) & (u < w) & (v < h) & near
    return seen

"""Fixtures of the detector deployment tests (ONNX export, onnxruntime, int8)."""

import numpy as np
import pytest
import torch

SMALL_INPUT = dict(input_height=64, input_width=96)  # the tiny model at a small size: fast to export


@pytest.fixture(scope="session")
def spread_checkpoint(tmp_path_factory, detector_config):
    """A tiny detector (64x96) whose heads spread their outputs (random final layers, std 3, where
    training would start them at ~0, and a heatmap bias of 0, not the prior's): distinct heatmap peaks
    (scores 0.3-0.6 on synthetic frames) and boxes of many sizes to compare between runtimes, rather than near-ties at the
    bias. Saved as a checkpoint; returns its path."""
    from perception.detection.model import CenterNet, save_checkpoint
    from perception.types import CLASSES

    config = detector_config(**SMALL_INPUT)
    torch.manual_seed(0)
    model = CenterNet(config)
    with torch.no_grad():
        for head in model.heads.values():
            head.weight.normal_(std=3.0)
        model.heads["heatmap"].bias.zero_()
    path = tmp_path_factory.mktemp("spread") / "spread.pt"
    save_checkpoint(path, model, config, {"classes": list(CLASSES)})
    return path


@pytest.fixture(scope="session")
def spread_onnx(tmp_path_factory, spread_checkpoint):
    """`spread_checkpoint` exported to ONNX (opset 18) once per session; returns the .onnx path."""
    from perception.detection.export import save_onnx, to_onnx

    path = tmp_path_factory.mktemp("onnx") / "spread.onnx"
    save_onnx(to_onnx(spread_checkpoint, opset=18), path)
    return path


@pytest.fixture(scope="session")
def synthetic_frames():
    """synthetic_frames(n, height, width, seed=0) -> (n, H, W, 3) uint8: grey noise with a few flat
    coloured rectangles, a frame's worth of edges and flat areas."""

    def make(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        frames = rng.integers(60, 140, (n, height, width, 3), dtype=np.uint8)
        for frame in frames:
            for _ in range(4):
                h, w = rng.integers(height // 8, height // 2), rng.integers(width // 10, width // 3)
                y, x = rng.integers(0, height - h), rng.integers(0, width - w)
                frame[y : y + h, x : x + w] = rng.integers(0, 256, 3)
        return frames

    return make


@pytest.fixture(scope="session")
def same_detections():
    """same_detections(a, b, box_px, score) -> asserts two runtimes' decode() dicts of one batch agree:
    the same detections in the same order, the same classes, boxes within `box_px`, scores within
    `score` and distances within 0.1 %."""

    def check(a: list[dict], b: list[dict], box_px: float = 0.5, score: float = 1e-3) -> int:
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert len(x["scores"]) == len(y["scores"])
            np.testing.assert_array_equal(x["class_ids"], y["class_ids"])
            np.testing.assert_allclose(x["boxes_xyxy"], y["boxes_xyxy"], rtol=0, atol=box_px)
            np.testing.assert_allclose(x["scores"], y["scores"], rtol=0, atol=score)
            np.testing.assert_allclose(x["distances_m"], y["distances_m"], rtol=1e-3)
        return sum(len(x["scores"]) for x in a)

    return check

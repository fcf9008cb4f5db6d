"""int8 static quantisation (QDQ): calibrated on train frames, the input conversion and first conv
kept in float, it runs at any batch and stays close to the fp32 model."""

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from perception.coco import DatasetError, load_coco
from perception.detection.detector import SHIPPED, Detector, OnnxRuntimeModel
from perception.detection.export import metadata, read_config, save_onnx, to_onnx
from perception.detection.quantize import FrameReader, calibration_frames, float_nodes, quantize_int8

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def int8_model(spread_onnx, synthetic_frames):
    """The spread model quantised on 5 synthetic frames."""
    frames = synthetic_frames(5, 64, 96, seed=10)
    return quantize_int8(onnx.load(spread_onnx), frames, {"data_dir": "synthetic", "split": "train"})


def test_calibration_frames_spread_over_the_split_and_match_the_model(make_coco, tmp_path):
    dataclasses.replace(make_coco, width_px=96, height_px=64)(tmp_path, "train", n_images=5)
    calibration = load_coco(tmp_path, "train")
    frames = calibration_frames(calibration, 3, (64, 96))
    assert frames.shape == (3, 64, 96, 3) and frames.dtype == np.uint8
    red_left_px = [int(np.argmax(f[15, :, 0] == 255)) for f in frames]  # frame i's red box starts at 5 + i
    assert red_left_px == [5, 7, 9]  # the first, middle and last of 5
    batches = list(iter(FrameReader(frames).get_next, None))
    assert len(batches) == 3 and batches[0]["images"].shape == (1, 64, 96, 3)
    assert len(calibration_frames(calibration, 50, (64, 96))) == 5  # all there are
    with pytest.raises(DatasetError, match=r"the model takes \(192, 320\)"):
        calibration_frames(calibration, 3, (192, 320))


def test_int8_model_is_qdq_with_the_input_first_conv_and_heads_in_float(int8_model, spread_onnx):
    ops = [n.op_type for n in int8_model.graph.node]
    assert ops.count("QuantizeLinear") >= 5 and ops.count("DequantizeLinear") >= 10
    fp32 = onnx.load(spread_onnx)
    kept = float_nodes(fp32)
    outputs = {o.name for o in fp32.graph.output}
    heads = [n.name for n in fp32.graph.node if set(n.output) & outputs]
    assert kept[-len(heads) :] == heads and len(heads) == 4  # heatmap, size, offset, distance
    assert [n for n in fp32.graph.node if n.name in kept[: -len(heads)]][-1].op_type == "Conv"
    dequantized = {n.output[0] for n in int8_model.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in int8_model.graph.node if n.op_type == "Conv"]
    float_convs = [n for n in convs if n is convs[0] or set(n.output) & outputs]
    assert len(float_convs) == 5 and not set(convs[0].input) & dequantized  # float input and weights
    assert all(n.input[1] not in dequantized for n in float_convs)  # the heads: float weights
    assert all(n.input[1] in dequantized for n in convs if n not in float_convs)  # the rest: int8 weights
    config, precision = read_config(int8_model, "int8")
    assert precision == "int8" and config.input_width == 96
    assert '"frames": 5' in metadata(int8_model)["calibration"]


@pytest.mark.parametrize("batch", [1, 3])
def test_int8_runs_at_any_batch_close_to_fp32(batch, int8_model, spread_onnx, synthetic_frames):
    frames = synthetic_frames(batch, 64, 96, seed=3)
    fp32 = OnnxRuntimeModel(onnx.load(spread_onnx).SerializeToString(), threads=1)(frames)
    int8 = OnnxRuntimeModel(int8_model.SerializeToString(), threads=1)(frames)
    for name, value in fp32.items():
        assert int8[name].shape == value.shape
        # 8 bits (255 steps) over each activation's calibrated range: a mean error of a few steps of
        # the range these frames give (0.2-3 % measured here; an unquantised graph gives ~1e-7)
        error = (int8[name] - value).abs().mean() / (value.max() - value.min())
        assert 1e-4 < error < 0.05, (name, float(error))


def test_int8_model_is_a_checkpoint_of_the_onnxruntime_detector(int8_model, tmp_path, synthetic_frames):
    path = tmp_path / "int8.onnx"
    save_onnx(int8_model, path)
    det = Detector(str(path), device="cpu", threads=1, runtime="onnxruntime")
    assert det.precision == "int8"
    (result,) = det.detect(synthetic_frames(1, 64, 96), score_threshold=0.3)
    assert len(result["scores"]) > 0 and result["boxes_xyxy"].dtype == np.float32
    with pytest.raises(ValueError, match="takes an fp32 model"):
        quantize_int8(int8_model, np.zeros((1, 64, 96, 3), np.uint8), {})


@pytest.mark.slow
def test_shipped_int8_finds_what_fp32_finds_on_rendered_frames(box_iou, tmp_path):
    """The shipped model quantised on frames of two scenarios, then run on frames of two others:
    every confident fp32 detection (score >= 0.5) has an int8 one of its class at IoU >= 0.7."""
    from perception.detection.detector import resolve_checkpoint
    from sim.app.drive import drive

    def rendered(scenarios: tuple[str, ...]) -> np.ndarray:
        frames = []

        def keep(sim, rig_frames, world, plan):
            frame = rig_frames[0]
            if round(frame.t_s / 0.5, 6) % 1 == 0:
                frames.append(frame.rgb.copy())

        for scenario in scenarios:
            drive([f"scenario={scenario}", "seed=5", "scenario.duration_s=5", "perception=ground_truth"],
                  write=False, on_frame=keep)  # fmt: skip
        return np.stack(frames)

    torch.set_num_threads(2)
    fp32 = to_onnx(resolve_checkpoint(SHIPPED), opset=18)
    save_onnx(quantize_int8(fp32, rendered(("dense_traffic", "busy_street")), {}), tmp_path / "int8.onnx")
    frames = rendered(("cut_in", "pedestrian_crossing"))
    want = Detector(SHIPPED, device="cpu", threads=2).detect(frames, 0.5)
    got = Detector(str(tmp_path / "int8.onnx"), device="cpu", threads=2, runtime="onnxruntime").detect(
        frames, 0.3
    )
    confident = matched = 0
    for w, g in zip(want, got, strict=True):
        for box, c in zip(w["boxes_xyxy"], w["class_ids"], strict=True):
            confident += 1
            matched += any(box_iou(box, b) >= 0.7 for b in g["boxes_xyxy"][g["class_ids"] == c])
    assert confident >= 10
    assert matched >= 0.95 * confident, f"{matched} of {confident}"

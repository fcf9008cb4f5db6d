"""The ONNX export and the onnxruntime runtime of the Detector: a checked model with a dynamic batch,
its metadata as a checkpoint, and the same detections as torch (tiny model here; the shipped one in
the slow test at the end)."""

import json

import numpy as np
import onnx
import pytest
import torch

from perception.detection.detector import SHIPPED, Detector, OnnxRuntimeModel
from perception.detection.export import (
    ONNX_FORMAT,
    head_names,
    load_onnx,
    metadata,
    opset_of,
    read_config,
    save_onnx,
    to_onnx,
)
from perception.detection.model import CheckpointError, fold_batchnorm, load_checkpoint
from perception.types import CLASSES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_export_is_checked_and_carries_its_config(spread_onnx, spread_checkpoint):
    proto = onnx.load(spread_onnx)
    onnx.checker.check_model(proto, full_check=True)
    _, config, _ = load_checkpoint(spread_checkpoint)
    assert read_config(proto, spread_onnx) == (config, "fp32")
    meta = metadata(proto)
    assert meta["format"] == ONNX_FORMAT and json.loads(meta["classes"]) == list(CLASSES)
    assert opset_of(proto) == 18
    (image,) = proto.graph.input
    dims = image.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [64, 96, 3]  # (batch, H, W, 3)
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [o.name for o in proto.graph.output] == list(head_names(config))


@pytest.mark.parametrize("batch", [1, 3])
def test_dynamic_batch_runs_and_equals_torch(batch, spread_onnx, spread_checkpoint, synthetic_frames):
    """Batch 1 and 3 through one model (exported at batch 2); the raw heads equal the folded
    torch model's to float rounding."""
    model, config, _ = load_checkpoint(spread_checkpoint)
    frames = synthetic_frames(batch, config.input_height, config.input_width)
    ort_out = OnnxRuntimeModel(onnx.load(spread_onnx).SerializeToString(), threads=1)(frames)
    with torch.no_grad():
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        torch_out = fold_batchnorm(model)(x)
    assert set(ort_out) == set(torch_out)
    for name, value in torch_out.items():
        assert ort_out[name].shape == value.shape and ort_out[name].shape[0] == batch
        torch.testing.assert_close(ort_out[name], value, rtol=1e-4, atol=1e-4)


def test_onnxruntime_detector_gives_torch_detections(
    spread_onnx, spread_checkpoint, synthetic_frames, same_detections
):
    """Same input checks, same decode, same dicts: from the .onnx file, and from the checkpoint
    itself (exported in memory)."""
    torch_det = Detector(str(spread_checkpoint), device="cpu", threads=1)
    frames = synthetic_frames(4, 64, 96, seed=1)
    want = torch_det.detect(frames, score_threshold=0.45)
    for source in (spread_onnx, spread_checkpoint):
        ort_det = Detector(str(source), device="cpu", threads=1, runtime="onnxruntime")
        assert ort_det.config == torch_det.config and ort_det.precision == "fp32"
        got = ort_det.detect(list(frames), score_threshold=0.45)  # a list of frames, as torch takes
        assert same_detections(want, got) >= 10  # enough detections to compare
        assert {k: v.dtype for k, v in got[0].items()} == {k: v.dtype for k, v in want[0].items()}
        with pytest.raises(ValueError, match="expects uint8 frames"):
            ort_det.detect(np.zeros((1, 64, 96, 4), np.uint8), 0.3)


def test_onnxruntime_is_deterministic_for_its_thread_count(spread_onnx, synthetic_frames):
    frames = synthetic_frames(2, 64, 96, seed=2)
    model = onnx.load(spread_onnx).SerializeToString()
    a = OnnxRuntimeModel(model, threads=2)(frames)
    b = OnnxRuntimeModel(model, threads=2)(frames)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_runtime_and_checkpoint_mismatches_are_one_line(spread_onnx, spread_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="runs with runtime=onnxruntime"):
        Detector(str(spread_onnx), device="cpu")
    with pytest.raises(ValueError, match="runs on the CPU"):
        Detector(str(spread_onnx), device="cuda", runtime="onnxruntime")
    with pytest.raises(ValueError, match="runtime=torch only"):
        Detector(str(spread_onnx), compile=True, runtime="onnxruntime")
    with pytest.raises(ValueError, match="runtime='tensorrt' is not one of"):
        Detector(str(spread_onnx), runtime="tensorrt")
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        Detector(str(tmp_path / "none.onnx"), runtime="onnxruntime")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_onnx(tmp_path / "junk.onnx")
    foreign = onnx.load(spread_onnx)
    del foreign.metadata_props[:]
    save_onnx(foreign, tmp_path / "foreign.onnx")
    with pytest.raises(CheckpointError, match="not a bulletdrive.centernet.onnx model"):
        load_onnx(tmp_path / "foreign.onnx")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        to_onnx(tmp_path / "none.pt", opset=18)


def test_save_is_checked_and_atomic(spread_onnx, tmp_path):
    broken = onnx.load(spread_onnx)
    broken.graph.node[0].input[0] = "no_such_tensor"
    with pytest.raises(onnx.checker.ValidationError):
        save_onnx(broken, tmp_path / "broken.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary


@pytest.mark.slow
def test_shipped_detector_onnxruntime_parity_on_rendered_frames(same_detections):
    """The shipped model, torch (frozen TorchScript) against onnxruntime fp32, on frames the simulator
    renders: the same detections, boxes within 0.5 px, scores within 1e-3."""
    from sim.app.drive import drive

    frames = []

    def keep(sim, rig_frames, world, plan):
        frame = rig_frames[0]
        if round(frame.t_s, 6) % 1 == 0:
            frames.append(frame.rgb.copy())

    for scenario in ("dense_traffic", "busy_street"):
        drive([f"scenario={scenario}", "seed=7", "scenario.duration_s=4", "perception=ground_truth"],
              write=False, on_frame=keep)  # fmt: skip
    frames = np.stack(frames)
    want = Detector(SHIPPED, device="cpu", threads=2).detect(frames, score_threshold=0.1)
    got = Detector(SHIPPED, device="cpu", threads=2, runtime="onnxruntime").detect(
        frames, score_threshold=0.1
    )
    assert same_detections(want, got) >= 2 * len(frames)

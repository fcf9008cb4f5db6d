"""int8 static quantisation of the exported CenterNet (onnxruntime, QDQ format).

Static: the range of every activation is measured once, on calibration frames (train frames of a
dataset, never val), and fixed in the model as a scale and zero point; weights are int8 per output
channel, activations uint8 (the u8s8 form that onnxruntime's x86 kernels run fastest, with VNNI
where the CPU has it). In QDQ format the graph keeps its float ops, each wrapped in
QuantizeLinear/DequantizeLinear pairs; onnxruntime fuses them into int8 ops when it loads the model.

Kept in float: the input conversion, the normalisation and the first conv (the nodes up to the first
Conv), and the heads. The normalisation is a multiply-add broadcast over the 3 colour channels; quantised, or once
onnxruntime moves it into the NHWC layout of its int8 convs, it costs more than the whole int8 network
(~1.1 ms of ~3 ms a frame at 320x192, on one thread). The first conv has 3 input channels, too few
for the int8 kernels to pay off (~0.4 ms in int8 against ~0.13 ms in float). The heads' 1x1 convs,
whose outputs are the model's (heatmap logits, log sizes, offsets, log distances): in uint8 they
cost the corruption-trained detector 0.011 mAP on the unseen val set, in float 0.004, for four convs
of a few output channels each. Numbers and how they were found: benchmarks/deploy_speed.py.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from perception.coco import CocoSplit, DatasetError, read_image
from perception.detection.export import INPUT_NAME, metadata, read_config, set_metadata

CALIBRATION_SPLIT = "train"


def calibration_frames(split: CocoSplit, count: int, size_hw: tuple[int, int]) -> np.ndarray:
    """`count` frames (N, H, W, 3) uint8 of a dataset split (all of them if it has fewer; the train
    split, never the one the model is evaluated on), spread evenly over the split so that every scene
    type has its share. DatasetError (one line) if its frames are not `size_hw` (H, W)."""
    chosen = np.linspace(0, len(split.images) - 1, min(count, len(split.images))).round().astype(int)
    images = [split.images[i] for i in np.unique(chosen)]
    sizes = {(im["height"], im["width"]) for im in images}
    if sizes != {tuple(size_hw)}:
        raise DatasetError(
            f"{split.annotation_path}: frames of size {sorted(sizes)} (h, w), the model takes {tuple(size_hw)}"
        )
    return np.stack([read_image(split, im) for im in images])


class FrameReader(CalibrationDataReader):
    """What quantize_static runs the model on to find each activation's range: the frames, one
    (1, H, W, 3) batch at a time."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames
        self.rewind()

    def rewind(self) -> None:
        self._next = iter(self.frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self._next, None)
        return None if frame is None else {INPUT_NAME: frame[None]}


def float_nodes(proto: onnx.ModelProto) -> list[str]:
    """The names of the nodes kept in float: those up to and including the first Conv (the input
    conversion, the normalisation and the first conv) and the convs that write the model's outputs
    (the heads): the module docstring says why."""
    names = []
    for node in proto.graph.node:  # in topological order, as ONNX requires
        names.append(node.name)
        if node.op_type == "Conv":
            break
    else:
        raise ValueError("the model has no Conv node")
    outputs = {o.name for o in proto.graph.output}
    heads = [n.name for n in proto.graph.node if n.op_type == "Conv" and set(n.output) & outputs]
    return names + heads


def quantize_int8(
    proto: onnx.ModelProto, frames: np.ndarray, source: dict, keep_float: bool = True
) -> onnx.ModelProto:
    """The fp32 model of perception/detection/export.py as an int8 QDQ model, calibrated (min-max) on
    `frames` (N, H, W, 3) uint8; its metadata says int8 and where the frames came from (`source`,
    e.g. {"data_dir": ..., "split": "train"}). `keep_float=False` quantises every node, as
    onnxruntime does by default (slower here: the benchmark's comparison)."""
    config, precision = read_config(proto, "model")
    if precision != "fp32":
        raise ValueError(f"quantize_int8 takes an fp32 model, got {precision}")
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared, int8 = (Path(tmp) / f"{name}.onnx" for name in ("fp32", "prepared", "int8"))
        onnx.save(proto, fp32)
        # ONNX shape inference and constant folding, as onnxruntime asks before quantising; its
        # symbolic shape inference stops at the dynamic batch axis, and the shapes need no symbols.
        quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            int8,
            FrameReader(frames),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes(onnx.load(prepared)) if keep_float else [],
        )
        quantized = onnx.load(int8)
    _drop_unused_domains(quantized)
    calibration = source | {"frames": len(frames), "method": "minmax"}
    exported_from = json.loads(metadata(proto).get("source", "{}"))
    set_metadata(quantized, config, "int8", source=exported_from, calibration=calibration)
    onnx.checker.check_model(quantized, full_check=True)
    return quantized


def _drop_unused_domains(proto: onnx.ModelProto) -> None:
    """Remove the opset imports no node uses (onnxruntime's pre-processing lists every domain it
    knows: training, NCHWc, ...), so that the file names only what it needs."""
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [o for o in proto.opset_import if o.domain in used or (o.domain == "ai.onnx" and "" in used)]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)

"""The CenterNet as an ONNX model: exported from a checkpoint, checked, saved, and read back.

The graph takes camera frames as the Detector does, uint8 (B, H, W, 3) RGB with a dynamic batch
axis, and returns the raw head outputs (B, C, H/4, W/4) named as the model's heads ("heatmap",
"size", "offset" and, with a distance head, "distance"). The decode (3x3 max-pool peaks and a top-k,
perception/detection/model.py `decode`) stays outside the graph: onnxruntime and torch then share
one decode, so their detections differ only by the forward's float rounding, and the graph holds
only the convolutions that int8 quantisation speeds up (perception/detection/quantize.py).

BatchNorm is folded before export (the same folding the torch Detector runs). The model's config,
classes and precision travel in the file's metadata (`metadata_props`), so that an .onnx file is a
checkpoint of its own for `Detector(..., runtime="onnxruntime")`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from dataclasses import asdict, fields
from pathlib import Path

import onnx
import torch
from torch import nn

from perception.detection.model import (
    CenterNet,
    CheckpointError,
    DetectorConfig,
    fold_batchnorm,
    load_checkpoint,
)
from perception.errors import InputError
from perception.files import write_bytes
from perception.types import CLASSES

ONNX_FORMAT = "bulletdrive.centernet.onnx"  # metadata "format" of the files written here
INPUT_NAME = "images"
MAX_BATCH = 4096  # upper bound of the dynamic batch axis (torch.export needs one)
EXPORT_BATCH = 2  # example batch of the trace: not 0 or 1, which torch.export specialises
MIN_OPSET = 17  # the exporter writes opset 18 natively; below 17 it silently keeps 18
PRECISIONS = ("fp32", "int8")


class FrameModel(nn.Module):
    """uint8 frames (B, H, W, 3) RGB -> the raw head outputs as a tuple of (B, C, H/4, W/4), in
    `head_names(config)` order: the Detector's input conversion and the model in one graph."""

    def __init__(self, model: CenterNet):
        super().__init__()
        self.model = model
        self.names = head_names(model.config)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = images.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W) in [0, 1]
        out = self.model(x)
        return tuple(out[name] for name in self.names)


def head_names(config: DetectorConfig) -> tuple[str, ...]:
    """The graph's output names: the model's heads, in the order CenterNet builds them."""
    return ("heatmap", "size", "offset") + (("distance",) if config.with_distance else ())


def to_onnx(checkpoint: str | os.PathLike, opset: int | None) -> onnx.ModelProto:
    """A checkpoint (a .pt of perception/detection/model.py) as a checked fp32 ONNX model, of
    `opset` (None: the exporter's own, 18 in torch 2.13).

    CheckpointError (one line) for a checkpoint that cannot be used; InputError for an opset the
    exporter does not write."""
    path = Path(checkpoint)
    model, config, _ = load_checkpoint(path, expect_classes=CLASSES)
    frames = FrameModel(fold_batchnorm(model)).eval()
    example = torch.zeros(EXPORT_BATCH, config.input_height, config.input_width, 3, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with _quiet_exporter():
        program = torch.onnx.export(
            frames,
            (example,),
            dynamo=True,
            verbose=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(frames.names),
            dynamic_shapes={"images": {0: batch}},
        )
    proto = program.model_proto
    if opset is not None and opset_of(proto) != opset:
        raise InputError(
            f"opset={opset}: the exporter wrote opset {opset_of(proto)}; use {MIN_OPSET} or more"
        )
    source = {"checkpoint": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    set_metadata(proto, config, "fp32", source=source)
    onnx.checker.check_model(proto, full_check=True)
    return proto


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's progress lines, its notes that torchvision is absent and the tracer's warnings
    are no news to the user: silenced while it runs."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def opset_of(proto: onnx.ModelProto) -> int:
    """The default-domain (ai.onnx) opset of a model."""
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


# --- Metadata: the file as a checkpoint -----------------------------------------------------------


def set_metadata(proto: onnx.ModelProto, config: DetectorConfig, precision: str, **extra: dict) -> None:
    """Write format, config, classes, precision (and each `extra` entry as JSON) into the model's
    metadata_props, replacing any there."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    values = {"format": ONNX_FORMAT, "config": json.dumps(asdict(config)), "classes": json.dumps(CLASSES)}
    values |= {"precision": precision} | {k: json.dumps(v) for k, v in extra.items()}
    del proto.metadata_props[:]
    for key, value in values.items():
        proto.metadata_props.add(key=key, value=value)


def metadata(proto: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def read_config(proto: onnx.ModelProto, path: str | os.PathLike) -> tuple[DetectorConfig, str]:
    """(config, precision) from a model's metadata; CheckpointError if it is not one of ours or was
    trained for other classes."""
    meta = metadata(proto)
    if meta.get("format") != ONNX_FORMAT:
        raise CheckpointError(f"{path}: not a {ONNX_FORMAT} model (written by `bulletdrive export`)")
    try:
        values, classes = json.loads(meta["config"]), json.loads(meta["classes"])
        if set(values) != {f.name for f in fields(DetectorConfig)}:
            raise ValueError(f"config keys {sorted(values)}")
        config = DetectorConfig(**values)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable model metadata ({err})") from None
    if tuple(classes) != CLASSES:
        raise CheckpointError(f"{path}: trained for classes {classes}, expected {CLASSES}")
    return config, meta.get("precision", "fp32")


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Read and check an ONNX file written by `save_onnx`; CheckpointError (one line) if it is
    missing, unreadable or not one of ours."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(path)
        onnx.checker.check_model(proto)
    except Exception as err:  # protobuf's DecodeError, the checker's ValidationError, ...
        raise CheckpointError(f"{path}: not a readable ONNX model ({type(err).__name__})") from None
    read_config(proto, path)
    return proto


def save_onnx(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Check the model (onnx.checker, full) and write it atomically (temporary file, then rename)."""
    onnx.checker.check_model(proto, full_check=True)
    write_bytes(path, proto.SerializeToString())

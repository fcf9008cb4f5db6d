"""`bulletdrive export`: the Hydra edge of the ONNX export (perception/detection/export.py) and the
int8 quantisation (perception/detection/quantize.py)."""

from __future__ import annotations

from pathlib import Path

from sim.app import config as C
from sim.app.schemas import ExportConfig

HELP = """usage: bulletdrive export [OVERRIDES...]

The detector as an ONNX model (conf/export.yaml): uint8 frames (B, H, W, 3) in with a dynamic
batch axis, the raw head outputs out (the decode stays in perception/detection/model.py), checked
with onnx.checker and written atomically. quantize=int8 writes a static int8 model instead (QDQ,
per-channel weights), calibrated on calibration_images frames of data_dir's train split.
Run either in the loop or in detect-eval with runtime=onnxruntime and checkpoint=OUT.
Example: bulletdrive export out=runs/export/model.onnx
         bulletdrive export quantize=int8 data_dir=data/sim out=runs/export/model_int8.onnx"""

SUFFIX = ".onnx"


def run(args: list[str]) -> int:
    e: ExportConfig = C.load_checked("export", args).values
    out = check_out_file(e.out)
    train = None
    if e.quantize == "int8":  # the dataset is checked before the export, which takes seconds
        from perception.coco import load_coco
        from perception.detection.quantize import CALIBRATION_SPLIT

        train = load_coco(e.data_dir, CALIBRATION_SPLIT)
    import torch

    from perception.detection.detector import resolve_checkpoint
    from perception.detection.export import opset_of, read_config, save_onnx, to_onnx

    torch.set_num_threads(e.threads)
    model = to_onnx(resolve_checkpoint(e.checkpoint), e.opset)
    if train is not None:
        from perception.detection.quantize import calibration_frames, quantize_int8

        config, _ = read_config(model, e.checkpoint)
        frames = calibration_frames(train, e.calibration_images, (config.input_height, config.input_width))
        model = quantize_int8(model, frames, {"data_dir": e.data_dir, "split": train.split})
    save_onnx(model, out)
    precision = "int8" if train is not None else "fp32"
    print(
        f"{out}: {precision} ONNX model, opset {opset_of(model)}, dynamic batch, {out.stat().st_size / 1e6:.2f} MB"
    )
    print(
        f"in the loop: bulletdrive drive perception=cnn perception.runtime=onnxruntime perception.checkpoint={out}"
    )
    return 0


def check_out_file(out: str) -> Path:
    """The file to write: named *.onnx, not a folder, in a folder that exists or can be made and
    is writable. Checks only: creates nothing, so that bad input leaves nothing behind."""
    path = Path(out)
    if path.suffix != SUFFIX:
        raise C.ConfigError(f"out={out}: name the file *{SUFFIX}")
    if path.is_dir():
        raise C.ConfigError(f"out={out}: is a folder, not a file")
    try:
        C.check_out_dir(path.parent, "out")
    except C.ConfigError as err:
        reason = str(err).partition(": ")[2]  # check_out_dir's words on the folder
        raise C.ConfigError(f"out={out}: cannot be written ({path.parent}: {reason})") from None
    return path

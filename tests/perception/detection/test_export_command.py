"""`bulletdrive export`: bad input is one line, exit code 2, nothing written; the fp32 and int8 files
it writes run in detect-eval and in the closed loop (slow)."""

import dataclasses
import json
import os

import pytest

from perception.detection.export import load_onnx, read_config
from sim.app.cli import main


@pytest.fixture
def place(tmp_path):
    """(tmp_path, the ONNX file that must stay absent, a file that is not a checkpoint)."""
    (tmp_path / "a_file").write_text("mine")
    return tmp_path, tmp_path / "out" / "model.onnx", tmp_path / "a_file"


BAD = [
    (["format=tflite"], "format='tflite' is not one of onnx"),
    (["opset=12"], "opset=12 is out of range"),
    (["opset=abc"], "opset"),
    (["quantize=fp16"], "quantize='fp16'"),
    (["calibration_images=0"], "calibration_images=0"),
    (["threads=0"], "threads=0"),
    (["+no_such=1"], "no_such"),
]


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_options(args, words, place, cli_error):
    tmp_path, out, _ = place
    assert words in cli_error(["export", *args, f"out={out}"])
    assert not out.parent.exists()


def test_bad_out(place, cli_error):
    tmp_path, out, a_file = place
    assert "name the file *.onnx" in cli_error(["export", f"out={tmp_path / 'model.txt'}"])
    (tmp_path / "folder.onnx").mkdir()
    assert "is a folder" in cli_error(["export", f"out={tmp_path / 'folder.onnx'}"])
    err = cli_error(["export", f"out={a_file / 'model.onnx'}"])
    assert (
        err.startswith(f"bulletdrive: error: out={a_file / 'model.onnx'}: cannot be written")
        and f"({a_file}: is a file, not a folder)" in err
    )
    assert a_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "folder.onnx"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_in_a_folder_that_cannot_be_written(tmp_path, cli_error):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert "not writable" in cli_error(["export", f"out={locked / 'model.onnx'}"])
    assert list(locked.iterdir()) == []


def test_bad_checkpoint_or_dataset(place, cli_error):
    tmp_path, out, a_file = place
    assert "no such checkpoint file" in cli_error(
        ["export", f"checkpoint={tmp_path / 'none.pt'}", f"out={out}"]
    )
    err = cli_error(["export", f"checkpoint={a_file}", f"out={out}"])
    assert "not a readable torch checkpoint" in err
    err = cli_error(["export", "quantize=int8", f"data_dir={tmp_path / 'no_data'}", f"out={out}"])
    assert "no dataset at" in err and "no_data" in err
    assert not out.parent.exists()


@pytest.mark.slow
def test_export_fp32_and_int8_then_run_them(tmp_path, make_coco, capsys):
    """The shipped model exported (fp32) and quantised on a small synthetic train split (int8); both
    files are checkpoints of runtime=onnxruntime: in detect-eval and in a short closed-loop drive."""
    data = tmp_path / "data"
    shipped_size = dataclasses.replace(make_coco, width_px=320, height_px=192)
    shipped_size(data, "train", n_images=4)
    shipped_size(data, "val", n_images=2)
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m_int8.onnx"
    assert main(["export", f"out={fp32}", "opset=20"]) == 0
    args = ["export", f"out={int8}", "quantize=int8", f"data_dir={data}", "calibration_images=3"]
    assert main(args) == 0
    assert "int8 ONNX model" in capsys.readouterr().out
    assert read_config(load_onnx(fp32), fp32)[1] == "fp32" and read_config(load_onnx(int8), int8)[1] == "int8"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left

    out = tmp_path / "eval"
    args = ["detect-eval", f"checkpoint={int8}", "runtime=onnxruntime", f"data_dir={data}", f"out_dir={out}"]
    assert main(args) == 0
    assert json.loads((out / "detect_eval.json").read_text())["runtime"] == "onnxruntime int8"

    run = tmp_path / "run"
    assert main(["drive", "scenario=follow_lead", "scenario.duration_s=3", "perception=cnn",
                 "perception.runtime=onnxruntime", f"perception.checkpoint={fp32}", "video=false",
                 "plot=false", f"hydra.run.dir={run}"]) == 0  # fmt: skip
    assert json.loads((run / "metrics.json").read_text())["route_completion"] >= 0

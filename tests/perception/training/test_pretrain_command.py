"""`bulletdrive pretrain`: bad input is one line, exit code 2, nothing written; a run writes a
checkpoint that `bulletdrive train init_checkpoint=...` fine-tunes from."""

import json
import os

import pytest

from perception.detection.model import load_checkpoint
from sim.app.cli import main

TINY = ["model=tiny", "model.input_height=48", "model.input_width=64"]
QUICK = ["batch_size=2", "num_workers=0", "threads=1", "warmup_steps=1", "device=cpu"]


@pytest.fixture
def data(tmp_path, make_coco):
    make_coco(tmp_path / "data", "train", n_images=4)
    make_coco(tmp_path / "data", "val", n_images=2)
    return tmp_path / "data"


BAD = [
    (["mask_ratio=0"], "mask_ratio=0"),
    (["mask_ratio=1"], "mask_ratio=1"),
    (["mask_ratio=1.5"], "mask_ratio=1.5"),
    (["patch_px=0"], "patch_px=0"),
    (["patch_px=7"], "patch_px=7: must divide the input size 64x48"),
    (["max_seconds=-1"], "max_seconds=-1"),
    (["max_steps=-1"], "max_steps=-1"),
    (["flip_p=2"], "flip_p=2"),
    (["threads=0"], "threads=0"),
    (["device=tpu"], "device"),
    (["model.widths=[4]"], "widths"),
    (["+no_such=1"], "no_such"),
]


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_options(args, words, data, tmp_path, cli_error):
    out = tmp_path / "out"
    assert words in cli_error(["pretrain", *TINY, f"data_dir={data}", *args, f"out_dir={out}"])
    assert not out.exists()


def test_a_missing_or_empty_dataset(data, tmp_path, cli_error):
    out = tmp_path / "out"
    assert "no_such" in cli_error(["pretrain", *TINY, f"data_dir={tmp_path / 'no_such'}", f"out_dir={out}"])
    path = data / "annotations" / "train.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "images": [], "annotations": []}))
    err = cli_error(["pretrain", *TINY, f"data_dir={data}", f"out_dir={out}"])
    assert "train.json" in err and "no images" in err
    assert not out.exists()


def test_an_out_dir_that_is_a_file_or_cannot_be_written(data, tmp_path, cli_error):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    assert "out_dir" in cli_error(["pretrain", *TINY, f"data_dir={data}", f"out_dir={a_file}"])
    assert a_file.read_text() == "mine"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert "not writable" in cli_error(["pretrain", *TINY, f"data_dir={data}", f"out_dir={locked / 'o'}"])


def test_pretrain_then_fine_tune_from_it(data, tmp_path, capsys):
    pre, tuned = tmp_path / "pre", tmp_path / "tuned"
    assert main(["pretrain", *TINY, *QUICK, f"data_dir={data}", f"out_dir={pre}", "max_steps=2"]) == 0
    assert f"init_checkpoint={pre}/pretrained.pt" in capsys.readouterr().out
    args = ["train", *TINY, *QUICK, f"data_dir={data}", f"out_dir={tuned}", "max_steps=1"]
    assert main([*args, f"init_checkpoint={pre / 'pretrained.pt'}"]) == 0
    assert load_checkpoint(tuned / "model.pt")[1] == load_checkpoint(pre / "pretrained.pt")[1]

"""`bulletdrive explain` (sim/app/explain.py) on a tiny COCO split and an untrained tiny checkpoint of
its size: what it writes, what it picks, and its bad input (one line, exit 2, nothing written)."""

import json

import cv2
import pytest

from perception.detection.model import CenterNet, save_checkpoint
from perception.types import CLASSES
from sim.app.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def setup(tmp_path, make_coco, detector_config):
    """(dataset root, checkpoint path): 3 frames of 64x48 px, each with a vehicle and a pedestrian."""
    make_coco(tmp_path / "ds", "val", n_images=3)
    config = detector_config(input_height=48, input_width=64)
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, CenterNet(config), config, {"classes": list(CLASSES)})
    return tmp_path / "ds", checkpoint


def explain(setup, out, *args) -> int:
    data_dir, checkpoint = setup
    return main(["explain", f"checkpoint={checkpoint}", f"data_dir={data_dir}", f"out_dir={out}", *args])


def test_explains_each_labelled_box_of_a_dataset_image(setup, tmp_path):
    """targets=truth: one PNG per labelled box, enlarged `scale` times, and its record."""
    out = tmp_path / "out"
    assert explain(setup, out, "image=1", "targets=truth", "scale=2") == 0
    result = json.loads((out / "explain.json").read_text())
    assert result["source"]["file_name"] == "0001.png" and result["layer"] == "backbone_s4"
    records = result["explanations"]
    assert [r["class"] for r in records] == ["vehicle", "pedestrian"]
    assert records[0]["box_xyxy"] == [6.0, 10.0, 26.0, 30.0]  # CocoMaker's vehicle in image 1
    assert records[0]["cell_yx"] == [5, 4]  # its centre (16, 20) at stride 4
    for r in records:
        assert 0 <= r["mass_in_box"] <= 1 and r["labelled_box"]["detected"] is False
        assert cv2.imread(str(out / r["png"])).shape == (96, 128, 3)
    assert sorted(p.name for p in out.iterdir()) == sorted(["explain.json", *(r["png"] for r in records)])


def test_picks_detections_by_class_and_index_and_names_the_image_by_file(setup, tmp_path):
    """An untrained model scores every cell ~0.1 (its bias): its peaks are detections at 0.05."""
    out = tmp_path / "out"
    args = ["image=0002.png", "score_threshold=0.05", "class_name=pedestrian", "index=1"]
    assert explain(setup, out, *args) == 0
    (record,) = json.loads((out / "explain.json").read_text())["explanations"]
    assert record["class"] == "pedestrian" and record["score"] >= 0.05
    assert record["png"] == "0002_det00.png" and (out / "0002_det00.png").exists()


def test_explains_a_corrupted_frame(setup, tmp_path):
    """corruption=KIND: the map is of the corrupted frame (the PNG shows it), and the record says so."""
    out, clean = tmp_path / "out", tmp_path / "clean"
    assert explain(setup, out, "image=1", "targets=truth", "corruption=motion_blur", "severity=3") == 0
    assert explain(setup, clean, "image=1", "targets=truth") == 0
    result = json.loads((out / "explain.json").read_text())
    assert result["source"]["corruption"].startswith("motion_blur")
    png = result["explanations"][0]["png"]
    assert png.startswith("0001_motion_blur3")
    clean_png = json.loads((clean / "explain.json").read_text())["explanations"][0]["png"]
    assert (cv2.imread(str(out / png)) != cv2.imread(str(clean / clean_png))).any()


BAD = [
    ([], "image=INDEX"),  # neither a dataset image nor a scenario
    (["image=0", "scenario=cut_in"], "not both"),
    (["image=3"], "image=3"),  # 3 images: 0 to 2
    (["image=nope.png"], "image=nope.png"),
    (["image=0", "layer=head"], "layer='head'"),
    (["image=0", "method=lime"], "method='lime'"),
    (["image=0", "class_name=bicycle"], "class_name"),
    (["image=0", "targets=boxes"], "targets"),
    (["image=0", "targets=truth", "index=2"], "index=2"),  # two labelled boxes
    (["image=0", "score_threshold=0.99"], "no detections"),
    (["image=0", "score_threshold=0"], "score_threshold"),
    (["image=0", "scale=0"], "scale"),
    (["image=0", "checkpoint=/no/such.pt"], "such.pt"),
    (["image=0", "split=test"], "split"),
    (["scenario=no_such_scenario"], "cut_in"),  # lists the available ones
    (["image=0", "corruption=snow"], "corruption='snow'"),
    (["image=0", "corruption=fog", "severity=4"], "severity=4"),
]


@pytest.mark.parametrize("args, word", BAD, ids=[" ".join(a) or "no frame" for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(args, word, setup, tmp_path, cli_error):
    data_dir, checkpoint = setup
    out = tmp_path / "out"
    err = cli_error(["explain", f"checkpoint={checkpoint}", f"data_dir={data_dir}", f"out_dir={out}", *args])
    assert word in err
    assert not out.exists()


def test_an_out_dir_that_is_a_file_is_refused(setup, tmp_path, cli_error):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    data_dir, checkpoint = setup
    err = cli_error(
        ["explain", f"checkpoint={checkpoint}", f"data_dir={data_dir}", "image=0", f"out_dir={a_file}"]
    )
    assert "out_dir" in err and a_file.read_text() == "mine"


def test_a_frame_of_another_size_than_the_model_is_refused(setup, tmp_path, cli_error):
    data_dir, _ = setup
    err = cli_error(["explain", f"data_dir={data_dir}", "image=0", f"out_dir={tmp_path / 'out'}"])
    assert "320" in err and "(48, 64)" in err and not (tmp_path / "out").exists()

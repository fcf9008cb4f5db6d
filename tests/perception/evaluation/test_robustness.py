"""The corruption benchmark: mPC and rPC as Michaelis et al. define them, seeded conditions that do
not depend on what else a run asks for, and the files it writes. A tiny untrained detector on the
64x48 frames of `make_coco`: each run takes about a second."""

import json

import numpy as np
import pytest

from perception.coco import load_coco
from perception.detection.detector import Detector
from perception.detection.model import CenterNet, save_checkpoint
from perception.evaluation import robustness as R
from perception.types import CLASSES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def split(tmp_path, make_coco):
    make_coco(tmp_path / "data", "val", n_images=5)
    return load_coco(tmp_path / "data", "val")


@pytest.fixture
def detector(tmp_path, detector_config):
    config = detector_config(input_height=48, input_width=64)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, CenterNet(config), config, {"classes": list(CLASSES)})
    return Detector(str(path), "cpu")


def metrics(ap, ap50):
    return {"AP": ap, "AP50": ap50}


def test_mpc_and_rpc_as_defined_on_a_crafted_result():
    clean = metrics(0.8, 1.0)
    corrupted = {
        "fog": {1: metrics(0.6, 0.9), 2: metrics(0.4, 0.8), 3: metrics(0.2, 0.7)},  # mean 0.4, 0.8
        "jpeg": {1: metrics(0.8, 1.0), 2: metrics(0.8, 1.0), 3: metrics(0.8, 1.0)},  # mean 0.8, 1.0
    }
    s = R.summarise(clean, corrupted)
    assert s["mPC"] == pytest.approx(0.6) and s["rPC"] == pytest.approx(0.75)
    assert s["mPC50"] == pytest.approx(0.9) and s["rPC50"] == pytest.approx(0.9)
    assert s["per_kind"]["fog"] == pytest.approx({"AP": 0.4, "AP50": 0.8})
    # the mean is over kinds of the mean over severities: a kind with fewer severities weighs the same
    s = R.summarise(clean, {"fog": {1: metrics(0.2, 0.5)}, "jpeg": corrupted["jpeg"]})
    assert s["mPC"] == pytest.approx(0.5)
    assert R.summarise(clean, {})["mPC"] is None
    assert R.summarise(metrics(0.0, 0.0), corrupted)["rPC"] is None


def test_conditions_are_clean_first_and_refuse_unknown_ones():
    conds = R.conditions(["fog", "rain"], [1, 3])
    assert [c.name for c in conds] == ["clean", "fog/1", "fog/3", "rain/1", "rain/3"]
    assert conds[2].label == "fog 60 % blend"
    with pytest.raises(ValueError, match="snow"):
        R.conditions(["snow"], [1])
    with pytest.raises(ValueError, match="severity 4"):
        R.conditions(["fog"], [4])


def test_a_condition_is_seeded_by_its_kind_severity_and_image():
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    fog = R.Condition("fog", 2)
    assert np.array_equal(fog.apply(rgb, 7, seed=0), fog.apply(rgb, 7, seed=0))
    assert not np.array_equal(fog.apply(rgb, 7, seed=0), fog.apply(rgb, 8, seed=0))
    assert not np.array_equal(fog.apply(rgb, 7, seed=0), fog.apply(rgb, 7, seed=1))
    assert R.Condition(None).apply(rgb, 7, seed=0) is rgb


def test_subset_is_evenly_spaced_and_scores_only_its_images(split):
    images, gt = R.subset(split, 3)
    assert [im["id"] for im in images] == [1, 3, 5]
    assert {a["image_id"] for a in gt["annotations"]} == {1, 3, 5}
    assert R.subset(split, 0)[0] == split.images == R.subset(split, 99)[0]


def test_detections_do_not_depend_on_the_other_conditions_or_the_batch(split, detector):
    images = split.images
    full = R.detect_conditions(
        detector, split, images, R.conditions(["gaussian_noise", "fog"], [1, 2]), seed=3, batch_size=4,
        score_threshold=0.0,
    )  # fmt: skip
    alone = R.detect_conditions(
        detector, split, images, R.conditions(["fog"], [2]), seed=3, batch_size=1, score_threshold=0.0
    )

    # The same detections, to float rounding (a batch of 4 may take another convolution kernel, and
    # the untrained model's near-equal scores may then come in another order).
    def rows(dets):
        return np.array(sorted([d["image_id"], d["category_id"], *d["bbox"], d["score"]] for d in dets))

    for key in ("fog/2", "clean"):
        np.testing.assert_allclose(rows(alone[key]), rows(full[key]), atol=1e-5)
    assert full["fog/2"] != full["clean"] and full["fog/2"] != full["fog/1"]


def test_benchmark_reports_every_condition_and_writes_its_files(split, detector, tmp_path):
    results = R.benchmark(
        detector, split, kinds=["brightness", "jpeg"], severities=[1, 3], max_images=0, seed=0,
        batch_size=2, score_threshold=0.01,
    )  # fmt: skip
    assert results["images"] == 5 and results["boxes"] == 10
    assert set(results["corruptions"]) == {"brightness", "jpeg"}
    assert set(results["corruptions"]["jpeg"]) == {1, 3}
    assert results["corruptions"]["jpeg"][3]["setting"] == "jpeg quality 10"
    for by_severity in results["corruptions"].values():
        for m in by_severity.values():
            assert 0.0 <= m["AP"] <= m["AP50"] <= 1.0
    expected = R.summarise(results["clean"], results["corruptions"])
    assert results["mPC"] == pytest.approx(expected["mPC"])
    table = R.write_results(results, tmp_path / "out")
    assert "mPC" in table and "jpeg quality 10" in table
    written = json.loads((tmp_path / "out" / "robustness.json").read_text())
    assert written["mPC"] == pytest.approx(results["mPC"]) and "3" in written["corruptions"]["jpeg"]
    assert (tmp_path / "out" / "robustness.png").stat().st_size > 0
    assert (tmp_path / "out" / "robustness.txt").read_text() == table
    assert not (tmp_path / "out" / "adversarial.png").exists()


def test_a_split_of_another_size_is_refused(tmp_path, make_coco, detector_config):
    from perception.coco import DatasetError

    make_coco(tmp_path / "data", "val", n_images=1)
    config = detector_config(input_height=96, input_width=128)
    save_checkpoint(tmp_path / "big.pt", CenterNet(config), config, {"classes": list(CLASSES)})
    with pytest.raises(DatasetError, match="128, 96"):
        R.check_size(load_coco(tmp_path / "data", "val"), Detector(str(tmp_path / "big.pt"), "cpu"))

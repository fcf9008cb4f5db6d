"""train(): seeded, honest about what it wrote, and refusing bad input before it writes anything.

A tiny model on the 64x48 frames of the `make_coco` fixture: each run takes about a second."""

import json
import math

import cv2
import numpy as np
import pytest
import torch

from perception.coco import DatasetError
from perception.detection.model import load_checkpoint
from perception.errors import InputError
from perception.training.train import FINAL_LR_FRACTION, lr_factor, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quiet(*_):
    pass


def test_same_seed_gives_the_same_weights_and_losses(data, tmp_path, settings):
    a = train(settings(data, tmp_path / "a", epochs=2), log=quiet)
    b = train(settings(data, tmp_path / "b", epochs=2), log=quiet)
    c = train(settings(data, tmp_path / "c", epochs=2, seed=1), log=quiet)
    assert a["model_path"] == str(tmp_path / "a" / "model.pt")
    losses = [[h["train"]["total"], h["val"]["total"]] for h in a["history"]]
    assert losses == [[h["train"]["total"], h["val"]["total"]] for h in b["history"]]
    assert losses != [[h["train"]["total"], h["val"]["total"]] for h in c["history"]]
    weights = [load_checkpoint(r["model_path"])[0].state_dict() for r in (a, b, c)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_a_finished_run_resumed_reports_no_new_model(data, tmp_path, settings):
    out = tmp_path / "run"
    first = train(settings(data, out, max_steps=3, epochs=3), log=quiet)
    assert [h["step"] for h in first["history"]] == [2, 3]  # 2 steps an epoch, cut at 3
    again = train(settings(data, out, max_steps=3, epochs=3), log=quiet)
    assert again["model_path"] is None and again["history"] == json.loads((out / "history.json").read_text())


def test_a_negative_step_budget_is_refused_before_anything_is_written(data, tmp_path, settings):
    with pytest.raises(InputError, match="max_steps=-5"):
        train(settings(data, tmp_path / "run", max_steps=-5), log=quiet)
    with pytest.raises(InputError, match="max_seconds=-1"):
        train(settings(data, tmp_path / "run", max_seconds=-1), log=quiet)
    assert not (tmp_path / "run").exists()


def test_a_spent_time_budget_stops_after_the_step_under_way_and_saves_it(data, tmp_path, settings):
    # a budget far below one step's time: one step, then the epoch is evaluated and saved, no more
    result = train(settings(data, tmp_path / "run", epochs=3, max_seconds=1e-6), log=quiet)
    assert [h["step"] for h in result["history"]] == [1]
    assert load_checkpoint(result["model_path"])[2]["epoch"] == 1


def _empty(data):
    path = data / "annotations" / "train.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "images": [], "annotations": []}))


def _image_missing(data):
    (data / "images" / "val" / "0001.png").unlink()


def _records_of_another_size(data):
    path = data / "annotations" / "train.json"
    coco = json.loads(path.read_text())
    for image in coco["images"]:
        image["width"] = 80
    path.write_text(json.dumps(coco))


def _pixels_of_another_size(data):
    cv2.imwrite(str(data / "images" / "train" / "0003.png"), np.zeros((48, 80, 3), np.uint8))


@pytest.mark.parametrize(
    "damage, words",
    [
        (_empty, ["train.json", "no images"]),
        (_image_missing, ["0001.png", "missing"]),
        (_records_of_another_size, ["train.json", "(80, 48)", "expects (64, 48)"]),
        (_pixels_of_another_size, ["0003.png", "80x48"]),
    ],
)
def test_a_bad_dataset_is_one_line_before_anything_is_written(data, tmp_path, damage, words, settings):
    damage(data)
    with pytest.raises(DatasetError) as e:
        train(settings(data, tmp_path / "run", num_workers=1), log=quiet)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert not (tmp_path / "run").exists()


def test_learning_rate_warms_up_then_decays_to_its_floor():
    assert [lr_factor(s, warmup=4, total=20) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 20) == 1.0
    assert lr_factor(12, 4, 20) == pytest.approx(FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) / 2)
    assert lr_factor(20, 4, 20) == lr_factor(99, 4, 20) == pytest.approx(FINAL_LR_FRACTION)
    assert all(math.isfinite(lr_factor(s, 0, 0)) for s in range(3))


def test_repeat_factors_draw_images_of_rare_classes_more_often(data, tmp_path, settings):
    from types import SimpleNamespace

    from perception.training.train import _datasets, _loader, repeat_factors

    images = [{"id": i} for i in range(100)]
    annotations = {i: [{"category_id": 1}] for i in range(100)}  # class 1 in every image
    annotations[0] = [{"category_id": 1}, {"category_id": 6}]  # class 6 in 1 of 100: sqrt(0.1 / 0.01)
    annotations[1] = [{"category_id": 6, "iscrowd": 1}]  # a don't-care box counts for nothing
    factors = repeat_factors(SimpleNamespace(images=images, annotations=annotations), 0.1)
    assert factors[0] == pytest.approx(math.sqrt(10)) and (factors[1:] == 1).all()
    # In training: an epoch draws sum(r) images by the factors, the same ones for the same seed.
    train_set, _ = _datasets(settings(data, tmp_path, repeat_threshold=1.0))
    assert train_set.repeat_factors is not None and len(train_set.repeat_factors) == len(train_set)
    train_set.repeat_factors = np.full(len(train_set), 1.0)
    train_set.repeat_factors[0] = 40.0
    drawn = list(_loader(train_set, settings(data, tmp_path), True, 3).sampler)
    assert len(drawn) == 39 + len(train_set) and drawn.count(0) > len(drawn) / 2
    assert drawn == list(_loader(train_set, settings(data, tmp_path), True, 3).sampler)
    assert _datasets(settings(data, tmp_path))[0].repeat_factors is None  # off by default

"""The COCO dataset on disk: every inconsistency is one line naming the file; no torch needed."""

import json

import cv2
import numpy as np
import pytest

from perception.coco import (
    DatasetError,
    boxes_of,
    check_image_files,
    dont_care,
    load_coco,
    read_image,
    xywh_to_xyxy,
)
from perception.types import CLASSES, OBJECT_CLASSES


def edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def check_error(exc_info, name):
    msg = str(exc_info.value)
    assert "\n" not in msg and name in msg, msg


def test_loads_records_and_boxes(tmp_path, make_coco):
    make_coco(tmp_path)
    split = load_coco(tmp_path, "train")
    assert [im["id"] for im in split.images] == [1, 2, 3]
    assert [c["name"] for c in split.categories] == list(CLASSES)
    boxes, class_ids, distances = boxes_of(split.annotations[2])
    assert boxes.tolist() == [[6.0, 10.0, 26.0, 30.0], [40.0, 20.0, 50.0, 44.0]] and boxes.dtype == np.float32
    assert class_ids.tolist() == [0, 1] and distances.tolist() == [13.0, 30.0]
    rgb = read_image(split, split.images[1])
    assert rgb.shape == (make_coco.height_px, make_coco.width_px, 3) and rgb[20, 15].tolist() == [255, 0, 0]


def test_boxes_of_no_records_and_crowd_boxes():
    boxes, class_ids, distances = boxes_of([])
    assert boxes.shape == (0, 4) and class_ids.shape == (0,) and distances.shape == (0,)
    crowd = {"bbox": [1, 2, 3, 4], "category_id": 3, "iscrowd": 1, "distance_m": 5.0}
    assert boxes_of([crowd])[1].tolist() == [dont_care(2)] and dont_care(dont_care(2)) == 2
    assert xywh_to_xyxy(np.array([[1.0, 2.0, 3.0, 4.0]])).tolist() == [[1.0, 2.0, 4.0, 6.0]]


def test_missing_dataset_and_annotation_file(tmp_path, make_coco):
    with pytest.raises(DatasetError, match="bulletdrive data") as e:
        load_coco(tmp_path / "nowhere", "train")
    check_error(e, "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no dataset"):
        load_coco(tmp_path / "empty", "train")
    make_coco(tmp_path)
    with pytest.raises(DatasetError, match="missing") as e:
        load_coco(tmp_path, "val")
    check_error(e, "val.json")
    (tmp_path / "annotations" / "train.json").write_text("")
    with pytest.raises(DatasetError, match="empty") as e:
        load_coco(tmp_path, "train")
    check_error(e, "train.json")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(images=[], annotations=[]), "no images"),
        (lambda d: d.pop("annotations"), "non-list key 'annotations'"),
        (lambda d: d["images"][0].pop("width"), "lacks one of id, file_name, width, height"),
        (lambda d: d["images"][1].update(id=1), "duplicate image id 1"),
        (lambda d: d["images"][0].update(height=0), "bad size"),
        (lambda d: d["annotations"][0].pop("bbox"), "lacks one of id, image_id, category_id, bbox"),
        (lambda d: d["annotations"][0].update(bbox=[50, 10, 20, 20]), "outside"),
        (lambda d: d["annotations"][0].update(bbox=[-3, 10, 20, 20]), "outside"),
        (lambda d: d["annotations"][0].update(bbox=[5, 10, 0, 20]), "non-positive"),
        (lambda d: d["annotations"][0].update(bbox=[5, 10, 20]), r"is not \[x, y, w, h\]"),
        (lambda d: d["annotations"][0].update(category_id=7), "unknown category_id 7"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image_id"),
        (lambda d: d["categories"].reverse(), "do not match"),
        (lambda d: d["categories"].pop(), "do not match"),
        (lambda d: d["annotations"][0].pop("distance_m"), "distance_m"),
    ],
)
def test_bad_annotations(tmp_path, make_coco, edit, match):
    path = make_coco(tmp_path)
    edit_json(path, edit)
    with pytest.raises(DatasetError, match=match) as e:
        load_coco(tmp_path, "train")
    check_error(e, "train.json")


def test_a_dataset_of_the_objects_alone_still_loads(tmp_path, make_coco):
    """A dataset written before the traffic-light classes names the three objects only."""
    path = make_coco(tmp_path)
    edit_json(path, lambda d: d.update(categories=d["categories"][:3]))
    assert [c["name"] for c in load_coco(tmp_path, "train").categories] == list(OBJECT_CLASSES)
    edit_json(path, lambda d: d["annotations"][0].update(category_id=6))  # a light: not its category
    with pytest.raises(DatasetError, match="unknown category_id 6"):
        load_coco(tmp_path, "train")


def test_box_within_tolerance_is_accepted(tmp_path, make_coco):
    path = make_coco(tmp_path)
    edit_json(path, lambda d: d["annotations"][0].update(bbox=[-0.5, 10, 64.9, 20]))
    assert len(load_coco(tmp_path, "train").annotations[1]) == 2


def test_malformed_json(tmp_path, make_coco):
    path = make_coco(tmp_path)
    path.write_text(path.read_text()[:-20])
    with pytest.raises(DatasetError, match="malformed JSON") as e:
        load_coco(tmp_path, "train")
    check_error(e, "train.json")


def test_missing_image_file(tmp_path, make_coco):
    make_coco(tmp_path)
    (tmp_path / "images" / "train" / "0001.png").unlink()
    with pytest.raises(DatasetError, match="missing") as e:
        load_coco(tmp_path, "train")
    check_error(e, "0001.png")


@pytest.mark.parametrize(
    "extra_width_px, channels, match",
    [(2, 3, "66x48 but train.json says 64x48"), (0, 1, "1 channel"), (0, 4, "4 channel")],
)
def test_image_that_disagrees_with_its_record(tmp_path, make_coco, extra_width_px, channels, match):
    make_coco(tmp_path)
    split = load_coco(tmp_path, "train")  # pixels are checked on read, not by load_coco
    shape = (make_coco.height_px, make_coco.width_px + extra_width_px, channels)
    cv2.imwrite(str(tmp_path / "images" / "train" / "0002.png"), np.zeros(shape, np.uint8))
    read_image(split, split.images[0])
    with pytest.raises(DatasetError, match=match) as e:
        read_image(split, split.images[2])
    check_error(e, "0002.png")
    with pytest.raises(DatasetError, match=match):
        check_image_files(split)  # the same check over the whole split


def test_unreadable_image(tmp_path, make_coco):
    make_coco(tmp_path)
    split = load_coco(tmp_path, "train")
    (tmp_path / "images" / "train" / "0000.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot be read") as e:
        check_image_files(split)
    check_error(e, "0000.png")


@pytest.mark.parametrize(
    "module", ["perception.coco", "perception.evaluation.coco_eval", "sim.data.generate"]
)
def test_reading_and_writing_the_dataset_does_not_import_torch(module, fresh_python):
    """`bulletdrive data` and the COCO evaluation never need the detector: importing them must not
    load torch (here ~1.4 s and ~200 MB per process)."""
    result = fresh_python(f"import sys, {module}; print('torch' in sys.modules)")
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr

"""The torch Dataset over a COCO split: tensors, don't-care ids, seeded transforms, bad pixels."""

import json

import cv2
import numpy as np
import pytest
import torch

from perception.coco import DatasetError, dont_care, load_coco
from perception.training.augment import Augment
from perception.training.dataset import DetectionDataset, collate


def test_reads_items_as_tensors(tmp_path, make_coco):
    make_coco(tmp_path)
    ds = DetectionDataset(load_coco(tmp_path, "train"))
    img, target = ds[1]
    assert img.shape == (3, make_coco.height_px, make_coco.width_px) and img.dtype == torch.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    # RGB order: the vehicle rectangle is red
    assert img[:, 20, 15].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=0.02)
    assert target["boxes_xyxy"].tolist() == [[6.0, 10.0, 26.0, 30.0], [40.0, 20.0, 50.0, 44.0]]
    assert target["class_ids"].tolist() == [0, 1] and target["class_ids"].dtype == torch.int64
    assert target["distances_m"].tolist() == [13.0, 30.0] and target["image_id"] == 2
    images, targets = collate([ds[0], ds[2]])
    assert images.shape == (2, 3, make_coco.height_px, make_coco.width_px) and len(targets) == 2


def test_crowd_boxes_become_dont_care_class_ids(tmp_path, make_coco):
    path = make_coco(tmp_path)
    data = json.loads(path.read_text())
    data["annotations"][1]["iscrowd"] = 1  # image 1's pedestrian
    path.write_text(json.dumps(data))
    _, target = DetectionDataset(load_coco(tmp_path, "train"))[0]
    assert target["class_ids"].tolist() == [0, dont_care(1)]


def test_transform_is_seeded_per_item(tmp_path, make_coco, conf_values):
    make_coco(tmp_path)
    aug = Augment(**{**conf_values("train.yaml")["augment"], "scale_p": 1.0})  # always a zoom
    a, b = (
        DetectionDataset(load_coco(tmp_path, "train"), aug, seed=3),
        DetectionDataset(load_coco(tmp_path, "train"), aug, seed=3),
    )
    assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[0][1]["boxes_xyxy"], b[0][1]["boxes_xyxy"])
    first = a[0][0]
    a.set_epoch(1)
    assert not torch.equal(first, a[0][0])


def test_an_image_that_disagrees_with_its_record_fails_when_read(tmp_path, make_coco):
    make_coco(tmp_path)
    ds = DetectionDataset(load_coco(tmp_path, "train"))
    cv2.imwrite(str(tmp_path / "images" / "train" / "0002.png"), np.zeros((4, 4, 3), np.uint8))
    ds[0]
    with pytest.raises(DatasetError, match="is 4x4") as e:
        ds[2]
    assert "\n" not in str(e.value) and "0002.png" in str(e.value)

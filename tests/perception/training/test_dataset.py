import json

import cv2
import numpy as np
import pytest
import torch

from perception.training.augment import Augment
from perception.training.dataset import DatasetError, DetectionDataset, collate, load_coco, write_coco
from perception.training.targets import dont_care

W, H = 64, 48


def make_dataset(root, split="train", n_images=3):
    """n_images frames, each with a red rectangle (vehicle) and a green one (pedestrian)."""
    images, anns = [], []
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        rgb = np.full((H, W, 3), 90, dtype=np.uint8)
        rgb[10:30, 5 + i : 25 + i] = (255, 0, 0)
        rgb[20:44, 40:50] = (0, 255, 0)
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / "images" / split / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        images.append({"id": i + 1, "file_name": name, "width": W, "height": H, "seed": i, "light": "bright"})
        anns.append(
            {
                "id": 2 * i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [5 + i, 10, 20, 20],
                "area": 400,
                "iscrowd": 0,
                "distance_m": 12.0 + i,
                "visible_fraction": 1.0,
            }
        )
        anns.append({"id": 2 * i + 2, "image_id": i + 1, "category_id": 2, "bbox": [40, 20, 10, 24],
                     "area": 240, "iscrowd": 0, "distance_m": 30.0, "visible_fraction": 0.5})  # fmt: skip
    write_coco(root / "annotations" / f"{split}.json", images, anns)
    return root / "annotations" / f"{split}.json"


def edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_loads_and_reads_items(tmp_path):
    make_dataset(tmp_path)
    split = load_coco(tmp_path, "train")
    assert len(split.images) == 3 and [c["name"] for c in split.categories] == [
        "vehicle",
        "pedestrian",
        "obstacle",
    ]
    ds = DetectionDataset(split)
    img, target = ds[1]
    assert img.shape == (3, H, W) and img.dtype == torch.float32 and 0.0 <= img.min() and img.max() <= 1.0
    # RGB order: the vehicle rectangle is red
    assert img[:, 20, 15].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=0.02)
    assert target["boxes_xyxy"].tolist() == [[6.0, 10.0, 26.0, 30.0], [40.0, 20.0, 50.0, 44.0]]
    assert target["class_ids"].tolist() == [0, 1] and target["class_ids"].dtype == torch.int64
    assert target["distances_m"].tolist() == [13.0, 30.0] and target["image_id"] == 2
    images, targets = collate([ds[0], ds[2]])
    assert images.shape == (2, 3, H, W) and len(targets) == 2


def test_crowd_boxes_become_dont_care_class_ids(tmp_path):
    path = make_dataset(tmp_path)
    edit_json(path, lambda d: d["annotations"][1].update(iscrowd=1))  # image 1's pedestrian
    _, target = DetectionDataset(load_coco(tmp_path, "train"))[0]
    assert target["class_ids"].tolist() == [0, dont_care(1)]


def test_transform_is_seeded_per_item(tmp_path):
    make_dataset(tmp_path)
    aug = Augment(flip_p=0.5, scale_p=1.0)
    a, b = (
        DetectionDataset(load_coco(tmp_path, "train"), aug, seed=3),
        DetectionDataset(load_coco(tmp_path, "train"), aug, seed=3),
    )
    assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[0][1]["boxes_xyxy"], b[0][1]["boxes_xyxy"])
    first = a[0][0]
    a.set_epoch(1)
    assert not torch.equal(first, a[0][0])


def check_error(exc_info, name):
    msg = str(exc_info.value)
    assert "\n" not in msg and name in msg, msg


def test_missing_dataset_and_annotation_file(tmp_path):
    with pytest.raises(DatasetError, match="bulletdrive data") as e:
        load_coco(tmp_path / "nowhere", "train")
    check_error(e, "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no dataset"):
        load_coco(tmp_path / "empty", "train")
    make_dataset(tmp_path)
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
        (lambda d: d["annotations"][0].update(bbox=[50, 10, 20, 20]), "outside"),
        (lambda d: d["annotations"][0].update(bbox=[-3, 10, 20, 20]), "outside"),
        (lambda d: d["annotations"][0].update(bbox=[5, 10, 0, 20]), "non-positive"),
        (lambda d: d["annotations"][0].update(category_id=7), "unknown category_id 7"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image_id"),
        (lambda d: d["categories"].reverse(), "do not match"),
        (lambda d: d["categories"].pop(), "do not match"),
        (lambda d: d["annotations"][0].pop("distance_m"), "distance_m"),
    ],
)
def test_bad_annotations(tmp_path, edit, match):
    path = make_dataset(tmp_path)
    edit_json(path, edit)
    with pytest.raises(DatasetError, match=match) as e:
        load_coco(tmp_path, "train")
    check_error(e, "train.json")


def test_box_within_tolerance_is_accepted(tmp_path):
    path = make_dataset(tmp_path)
    edit_json(path, lambda d: d["annotations"][0].update(bbox=[-0.5, 10, 64.9, 20]))
    assert len(load_coco(tmp_path, "train").annotations[1]) == 2


def test_malformed_json(tmp_path):
    path = make_dataset(tmp_path)
    path.write_text(path.read_text()[:-20])
    with pytest.raises(DatasetError, match="malformed JSON") as e:
        load_coco(tmp_path, "train")
    check_error(e, "train.json")


def test_missing_image_file(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "images" / "train" / "0001.png").unlink()
    with pytest.raises(DatasetError, match="missing") as e:
        load_coco(tmp_path, "train")
    check_error(e, "0001.png")


@pytest.mark.parametrize(
    "pixels, match",
    [
        (np.zeros((H, W + 2, 3), np.uint8), "66x48"),
        (np.zeros((H, W), np.uint8), "1 channel"),
        (np.zeros((H, W, 4), np.uint8), "4 channel"),
    ],  # fmt: skip
)
def test_image_that_disagrees_with_its_record(tmp_path, pixels, match):
    make_dataset(tmp_path)
    split = load_coco(tmp_path, "train")  # checked lazily, on read
    cv2.imwrite(str(tmp_path / "images" / "train" / "0002.png"), pixels)
    ds = DetectionDataset(split)
    ds[0]
    with pytest.raises(DatasetError, match=match) as e:
        ds[2]
    check_error(e, "0002.png")

"""The camera dataset on disk in COCO format: read and check it, write it. Torch-free, so that
`bulletdrive data` (which writes it) and the evaluation (which reads it) never load the detector.

Layout, written by `bulletdrive data`:
  ROOT/images/{split}/{file_name}     PNG frames, RGB 3 channels, 8 bits
  ROOT/annotations/{split}.json       COCO: images, annotations, categories

Image records: {id, file_name, width, height, ...} (the generator adds seed, scenario, t_s, light).
Annotation records: {id, image_id, category_id (= class id + 1), bbox [x, y, w, h] px, area,
iscrowd, distance_m, visible_fraction, truncation}. Categories must equal `perception.types.CLASSES`,
or its objects alone (OBJECT_CLASSES: a dataset written before the traffic-light classes).

`load_coco` checks the whole annotation file up front and raises `DatasetError` with one line naming
the file and the problem; an image whose pixels disagree with its record (size, channels) is caught
when it is read (`read_image`), or for the whole split at once by `check_image_files`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from perception.errors import InputError
from perception.files import write_json
from perception.types import CLASSES, OBJECT_CLASSES

BOX_TOLERANCE_PX = 1.0  # a box may stick out of the image by this much (rounding in the labeller)
CATEGORIES: tuple[dict, ...] = tuple({"id": i + 1, "name": name} for i, name in enumerate(CLASSES))
IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")


class DatasetError(InputError):
    """A dataset on disk is missing or inconsistent. The message is one line naming the file."""


@dataclass
class CocoSplit:
    """One split of a COCO dataset, validated.

    images: the image records in file order; annotations: image id -> its annotation records;
    categories: the category records (equal to `CATEGORIES`); data: the whole JSON document (what
    `coco_eval.evaluate` takes as ground truth).
    """

    root: Path
    split: str
    annotation_path: Path
    images: list[dict]
    annotations: dict[int, list[dict]]
    categories: list[dict]
    data: dict

    @property
    def image_dir(self) -> Path:
        return self.root / "images" / self.split

    def image_path(self, image: dict) -> Path:
        return self.image_dir / image["file_name"]


def annotation_path(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / "annotations" / f"{split}.json"


def dont_care(class_ids):
    """Class id k <-> the id of a don't-care box of class k (-1 - k; its own inverse). A don't-care
    box (a COCO crowd box: too small or too hidden to be a fair target) gets no training target and
    its cells are no penalty for detections of its class (perception/training/targets.py)."""
    return -1 - class_ids


# --- Reading ---------------------------------------------------------------------------------------


def load_coco(root: str | os.PathLike, split: str) -> CocoSplit:
    """Read and check ROOT/annotations/{split}.json and that every image file it names exists."""
    root = Path(root)
    path, data = _read_document(root, split)
    categories = _check_categories(path, data["categories"])
    if not data["images"]:
        raise _fail(path, f"split '{split}' has no images")
    images = _check_image_records(path, root / "images" / split, data["images"])
    per_image = _check_annotations(path, images, data["annotations"], {c["id"] for c in categories})
    return CocoSplit(root, split, path, list(images.values()), per_image, list(data["categories"]), data)


def _read_document(root: Path, split: str) -> tuple[Path, dict]:
    """The annotation file's path and its JSON object, which has list values for the three COCO keys."""
    if not root.is_dir() or not any(root.iterdir()):
        raise DatasetError(f"no dataset at {root}: run `bulletdrive data` first")
    path = annotation_path(root, split)
    if not path.is_file():
        raise _fail(path, f"annotation file for split '{split}' is missing: run `bulletdrive data` first")
    text = path.read_text()
    if not text.strip():
        raise _fail(path, "annotation file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _fail(path, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise _fail(path, "top level is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _fail(path, f"missing or non-list key '{key}'")
    return path, data


def _check_categories(path: Path, categories: list) -> list[dict]:
    """The categories: CATEGORIES, or the objects' first ones of them (an older dataset)."""
    expected = [dict(c) for c in CATEGORIES]
    got = [{"id": c.get("id"), "name": c.get("name")} for c in categories if isinstance(c, dict)]
    if got not in (expected, expected[: len(OBJECT_CLASSES)]):
        raise _fail(path, f"categories {got} do not match perception.types.CLASSES {expected}")
    return got


def _check_image_records(path: Path, image_dir: Path, records: list) -> dict[int, dict]:
    """Image id -> record, in file order; each record complete, with a positive size and a file."""
    images: dict[int, dict] = {}
    for img in records:
        if not isinstance(img, dict) or any(k not in img for k in IMAGE_KEYS):
            raise _fail(path, f"image record {img!r:.80} lacks one of {', '.join(IMAGE_KEYS)}")
        if img["id"] in images:
            raise _fail(path, f"duplicate image id {img['id']}")
        if (
            not (_is_number(img["width"]) and _is_number(img["height"]))
            or min(img["width"], img["height"]) <= 0
        ):
            raise _fail(path, f"image {img['id']}: bad size {img['width']}x{img['height']}")
        if not (image_dir / img["file_name"]).is_file():
            raise _fail(image_dir / img["file_name"], f"image file of image {img['id']} is missing")
        images[img["id"]] = img
    return images


def _check_annotations(
    path: Path, images: dict[int, dict], records: list, category_ids: set[int]
) -> dict[int, list[dict]]:
    """Image id -> its annotation records (every image id present, possibly with none)."""
    per_image: dict[int, list[dict]] = {i: [] for i in images}
    for ann in records:
        if not isinstance(ann, dict) or any(k not in ann for k in ANNOTATION_KEYS):
            raise _fail(path, f"annotation record {ann!r:.80} lacks one of {', '.join(ANNOTATION_KEYS)}")
        aid = ann["id"]
        if ann["image_id"] not in images:
            raise _fail(path, f"annotation {aid}: unknown image_id {ann['image_id']}")
        if ann["category_id"] not in category_ids:
            raise _fail(
                path,
                f"annotation {aid}: unknown category_id {ann['category_id']} (known {sorted(category_ids)})",
            )
        _check_box(path, ann, images[ann["image_id"]])
        if not _is_number(ann.get("distance_m")) or ann["distance_m"] < 0:
            raise _fail(path, f"annotation {aid}: distance_m {ann.get('distance_m')!r} is not a number >= 0")
        per_image[ann["image_id"]].append(ann)
    return per_image


def _check_box(path: Path, ann: dict, img: dict) -> None:
    """The bbox is [x, y, w, h] of finite numbers, of positive size, inside its image (+- tolerance)."""
    aid, box = ann["id"], ann["bbox"]
    if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
        raise _fail(path, f"annotation {aid}: bbox {box!r:.60} is not [x, y, w, h]")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise _fail(path, f"annotation {aid}: box {box} has non-positive size")
    tol = BOX_TOLERANCE_PX
    if x < -tol or y < -tol or x + w > img["width"] + tol or y + h > img["height"] + tol:
        raise _fail(
            path, f"annotation {aid}: box {box} is outside image {img['id']} ({img['width']}x{img['height']})"
        )


def read_image(split: CocoSplit, image: dict) -> np.ndarray:
    """Read one image as RGB uint8 (H, W, 3); DatasetError if its pixels disagree with its record."""
    path = split.image_path(image)
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None:
        raise _fail(path, "cannot be read as an image")
    channels = 1 if bgr.ndim == 2 else bgr.shape[2]
    if channels != 3:
        raise _fail(path, f"has {channels} channel(s), expected 3 (RGB)")
    if bgr.dtype != np.uint8:
        raise _fail(path, f"has pixel type {bgr.dtype}, expected uint8")
    h, w = bgr.shape[:2]
    if (w, h) != (image["width"], image["height"]):
        raise _fail(
            path, f"is {w}x{h} but {split.annotation_path.name} says {image['width']}x{image['height']}"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_image_files(split: CocoSplit) -> None:
    """Read every image of the split once: DatasetError for the first one `read_image` refuses.

    For a command that should fail before it starts rather than half-way (training: a bad image
    found by a DataLoader worker arrives wrapped in a worker traceback). Costs one decode per image
    (~1 ms for a 320x192 PNG).
    """
    for image in split.images:
        read_image(split, image)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """COCO boxes (N, 4) [x, y, w, h] -> corners (N, 4) [x0, y0, x1, y1], same dtype."""
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4), xyxy -> (N, M)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def boxes_of(annotations: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Annotation records -> boxes_xyxy (N, 4) float32 px, class_ids (N,) int64, distances_m (N,) float32.

    A crowd box (iscrowd 1: a don't-care region) of class k gets class id `dont_care(k)` < 0.
    """
    n = len(annotations)
    boxes = xywh_to_xyxy(np.array([a["bbox"] for a in annotations], dtype=np.float32).reshape(n, 4))
    class_ids = np.array([a["category_id"] - 1 for a in annotations], dtype=np.int64).reshape(n)
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in annotations], dtype=bool).reshape(n)
    class_ids = np.where(crowd, dont_care(class_ids), class_ids)
    distances = np.array([a["distance_m"] for a in annotations], dtype=np.float32).reshape(n)
    return boxes, class_ids, distances


def _fail(path: Path | str, problem: str) -> DatasetError:
    return DatasetError(f"{path}: {problem}".replace("\n", " "))


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# --- Writing ---------------------------------------------------------------------------------------


def write_coco(path: str | os.PathLike, images: list[dict], annotations: list[dict]) -> None:
    """Write one split's annotation file atomically, with the categories of `CLASSES` (id = class id + 1)."""
    write_json(
        path, {"images": images, "annotations": annotations, "categories": [dict(c) for c in CATEGORIES]}
    )

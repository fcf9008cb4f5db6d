"""Shared fixtures of the perception tests."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from perception.coco import write_coco


@dataclass(frozen=True)
class CocoMaker:
    """Writes a small COCO split as `bulletdrive data` lays it out: n_images frames of
    width_px x height_px, each with a red rectangle (a vehicle at 12 m + i) and a green one (a
    pedestrian at 30 m, half hidden). make(root, split, n_images) returns the annotation path."""

    width_px: int = 64
    height_px: int = 48

    def __call__(self, root: Path, split: str = "train", n_images: int = 3) -> Path:
        w, h = self.width_px, self.height_px
        images, anns = [], []
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n_images):
            rgb = np.full((h, w, 3), 90, dtype=np.uint8)
            rgb[10:30, 5 + i : 25 + i] = (255, 0, 0)
            rgb[20:44, 40:50] = (0, 255, 0)
            name = f"{i:04d}.png"
            cv2.imwrite(str(root / "images" / split / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            images.append(
                {"id": i + 1, "file_name": name, "width": w, "height": h, "seed": i, "light": "bright"}
            )
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
        path = root / "annotations" / f"{split}.json"
        write_coco(path, images, anns)
        return path


@pytest.fixture
def make_coco() -> CocoMaker:
    return CocoMaker()


@pytest.fixture(scope="session")
def detector_config(conf_values):
    """detector_config(**changes) -> the DetectorConfig of the tiny model (conf/model/tiny.yaml)
    with `changes`: a test states the sizes it relies on, the rest is the tiny model's."""
    from perception.detection.model import DetectorConfig

    def make(**changes):
        return DetectorConfig(**{**conf_values("model/tiny.yaml"), **changes})

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP's waiting threads
    make each training step several times slower: run the module on one thread, then restore."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

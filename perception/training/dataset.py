"""A torch `Dataset` over one split of the COCO dataset on disk (perception/coco.py).

Items are images and raw boxes; the CenterNet target encoding is the trainer's job
(perception/training/targets.py, perception/training/train.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from perception.coco import CocoSplit, boxes_of, read_image

# (rng, rgb uint8 (H, W, 3), boxes_xyxy (N, 4), class_ids (N,), distances_m (N,)) -> the same four
Transform = Callable[
    [np.random.Generator, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
]


class DetectionDataset(torch.utils.data.Dataset):
    """Images and raw box targets of one split.

    Item i: (image (3, H, W) float32 in [0, 1], target) with target = {boxes_xyxy (N, 4) float32 px,
    class_ids (N,) int64 (negative for don't-care boxes, see `boxes_of`), distances_m (N,) float32,
    image_id int}.

    `transform(rng, rgb, boxes, class_ids, distances)` (e.g. `augment.Augment`) gets a generator
    seeded from (seed, epoch, index): the same item in the same epoch is augmented the same way
    whatever the number of DataLoader workers, and workers never repeat each other's draws.
    Call `set_epoch` each epoch to get fresh draws.
    """

    def __init__(self, split: CocoSplit, transform: Transform | None = None, seed: int = 0):
        self.split = split
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image = self.split.images[index]
        rgb = read_image(self.split, image)
        boxes, class_ids, distances = boxes_of(self.split.annotations[image["id"]])
        if self.transform is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            rgb, boxes, class_ids, distances = self.transform(rng, rgb, boxes, class_ids, distances)
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)
        target = {
            "boxes_xyxy": torch.from_numpy(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)),
            "class_ids": torch.from_numpy(np.asarray(class_ids, dtype=np.int64).reshape(-1)),
            "distances_m": torch.from_numpy(np.asarray(distances, dtype=np.float32).reshape(-1)),
            "image_id": image["id"],
        }
        return tensor, target


def collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """DataLoader collate: images stacked to (B, 3, H, W), targets kept as a list (N differs per image)."""
    return torch.stack([img for img, _ in batch]), [t for _, t in batch]

"""Shared fixtures of the training tests: the tiny model on the 64x48 frames of `make_coco`."""

import pytest

from perception.training.train import TrainSettings


@pytest.fixture
def settings(conf_values, detector_config):
    """settings(data_dir, out_dir, **changes) -> TrainSettings of conf/train.yaml (augmentation and
    robustness options as shipped) for the tiny model on 64x48 frames, one epoch on the CPU."""
    train_yaml = conf_values("train.yaml")
    values = dict(
        model=detector_config(input_height=48, input_width=64), epochs=1, batch_size=2, lr=2e-3,
        weight_decay=1e-4, warmup_steps=1, seed=0, device="cpu", amp=False, resume=True, num_workers=0,
        max_steps=0, max_seconds=0, **{k: train_yaml[k] for k in ("augment", "dropblock", "adversarial", "init_checkpoint")},
    )  # fmt: skip

    def make(data_dir, out_dir, **changes) -> TrainSettings:
        return TrainSettings(data_dir=str(data_dir), out_dir=str(out_dir), **{**values, **changes})

    return make


@pytest.fixture
def data(tmp_path, make_coco):
    """A dataset of 4 train and 2 val frames."""
    make_coco(tmp_path / "data", "train", n_images=4)
    make_coco(tmp_path / "data", "val", n_images=2)
    return tmp_path / "data"

"""Masked-image pretraining (perception/training/pretrain.py): the masks, the loss on hidden pixels
only, a loss that falls, a checkpoint that `train` fine-tunes from with only the heads fresh, a
resume that continues the same run, and bad input refused before anything is written.
The tiny model on the 64x48 frames of `make_coco` (a 4 x 3 grid of 16 px patches)."""

import numpy as np
import pytest
import torch

from perception.coco import DatasetError, load_coco
from perception.detection.model import INPUT_MEAN, CenterNet, CheckpointError, load_checkpoint
from perception.errors import InputError
from perception.training.pretrain import (
    ENCODER,
    MaskedFrames,
    MaskedImageModel,
    PretrainSettings,
    evaluate_reconstruction,
    hidden_count,
    hide,
    masked_l1,
    patch_mask,
    pretrain,
)
from perception.training.train import TrainSettings, _initial_weights, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_config(detector_config):
    return detector_config(input_height=48, input_width=64)


@pytest.fixture(scope="module")
def settings(conf_values, model_config):
    """settings(data_dir, out_dir, **changes) -> PretrainSettings of conf/pretrain.yaml's masking for
    the tiny model, on the CPU with no loader workers, a short warm-up and a high learning rate."""
    yaml = conf_values("pretrain.yaml")
    values = dict(
        model=model_config, epochs=1, batch_size=2, lr=1e-2, weight_decay=1e-4, warmup_steps=1, seed=0,
        device="cpu", amp=False, resume=True, num_workers=0, max_steps=0, max_seconds=0,
        **{k: yaml[k] for k in ("flip_p", "mask_ratio", "patch_px")},
    )  # fmt: skip

    def make(data_dir, out_dir, **changes) -> PretrainSettings:
        return PretrainSettings(data_dir=str(data_dir), out_dir=str(out_dir), **{**values, **changes})

    return make


def quiet(*_):
    pass


def fresh(config, seed: int = 0) -> MaskedImageModel:
    """The model pretrain() starts from with this seed (the same draws in the same order)."""
    torch.manual_seed(seed)
    return MaskedImageModel(CenterNet(config))


def test_a_mask_hides_the_asked_share_of_the_patch_grid_and_is_seeded():
    rng = lambda seed: np.random.default_rng(seed)  # noqa: E731
    mask = patch_mask(rng(0), (12, 20), 0.5)  # the small model's 320x192 frame in 16 px patches
    assert mask.shape == (12, 20) and mask.dtype == bool and mask.sum() == 120
    assert patch_mask(rng(0), (12, 20), 0.3).sum() == 72
    assert np.array_equal(mask, patch_mask(rng(0), (12, 20), 0.5))
    assert not np.array_equal(mask, patch_mask(rng(1), (12, 20), 0.5))
    assert 0.3 < mask[:, :10].mean() < 0.7  # spread over the frame, not a block
    assert hidden_count(4, 0.01) == 1 and hidden_count(4, 0.99) == 3  # never nothing, never everything


def test_a_frame_and_its_mask_are_the_same_for_a_seed_and_epoch(data, tmp_path):
    split = load_coco(data, "train")
    a, b = MaskedFrames(split, 16, 0.5, 0.5, seed=3), MaskedFrames(split, 16, 0.5, 0.5, seed=3)
    image, mask = a[1]
    assert image.shape == (3, 48, 64) and mask.shape == (3, 4) and int(mask.sum()) == 6
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))
    b.set_epoch(1)
    assert any(not torch.equal(a[i][1], b[i][1]) for i in range(len(a)))


def test_hide_sets_exactly_the_hidden_patches_to_the_mean():
    images = torch.rand(2, 3, 32, 48)
    mask = torch.zeros(2, 2, 3, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 0, 0] = True
    hidden, pixels = hide(images, mask, 16)
    assert pixels.shape == (2, 1, 32, 48) and int(pixels.sum()) == 2 * 16 * 16
    assert pixels[0, 0, 16:, 32:].all() and pixels[1, 0, :16, :16].all()
    mean = torch.tensor(INPUT_MEAN).view(3, 1, 1)
    assert torch.equal(hidden[0, :, 16:, 32:], mean.expand(3, 16, 16))
    keep = ~pixels.expand_as(images)
    assert torch.equal(hidden[keep], images[keep])


def test_the_loss_counts_only_the_hidden_pixels():
    target = torch.rand(1, 3, 8, 8)
    pixels = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    pixels[..., :4, :] = True  # the top half is hidden
    predicted = target.clone()
    predicted[..., 4:, :] += 5.0  # wrong everywhere it can be seen: no cost
    assert masked_l1(predicted, target, pixels) == 0
    predicted[..., :4, :] += 0.25  # wrong by 0.25 where hidden: the mean error there
    assert masked_l1(predicted, target, pixels).item() == pytest.approx(0.25)
    predicted.requires_grad_(True)
    masked_l1(predicted, target, pixels).backward()
    assert (predicted.grad[..., 4:, :] == 0).all() and (predicted.grad[..., :4, :] != 0).all()


def test_pretraining_reduces_the_reconstruction_loss_and_is_seeded(data, tmp_path, settings, model_config):
    before = evaluate_reconstruction(
        fresh(model_config), MaskedFrames(load_coco(data, "val"), 16, 0.5, 0, 0), 2
    )
    a = pretrain(settings(data, tmp_path / "a", epochs=6), log=quiet)
    b = pretrain(settings(data, tmp_path / "b", epochs=6), log=quiet)
    val = [h["val"]["total"] for h in a["history"]]
    assert val[-1] < 0.85 * before  # held-out frames, fixed masks
    assert val == [h["val"]["total"] for h in b["history"]]
    assert a["checkpoint"] == str(tmp_path / "a" / "pretrained.pt")
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        "pretrained.pt", "last.pt", "history.json", "loss_curve.png"
    }  # fmt: skip


def test_only_the_backbone_and_neck_are_pretrained_and_train_starts_from_them(
    data, tmp_path, settings, model_config, conf_values
):
    result = pretrain(settings(data, tmp_path / "pre", max_steps=3), log=quiet)
    loaded = _initial_weights(result["checkpoint"], model_config, fresh(model_config).detector)  # as train
    init = fresh(model_config).detector.state_dict()
    changed = {k for k in init if not torch.equal(init[k], loaded[k])}
    assert changed and all(k.split(".")[0] in ENCODER for k in changed)
    assert any(k.startswith("stages.0.") for k in changed) and any(k.startswith("smooth.") for k in changed)
    # a fine-tune at a tiny learning rate stays at the pretrained weights
    yaml = conf_values("train.yaml")
    tuned = TrainSettings(
        data_dir=str(data), out_dir=str(tmp_path / "tuned"), model=model_config, epochs=1, batch_size=2,
        lr=1e-9, weight_decay=1e-4, warmup_steps=1, seed=0, device="cpu", amp=False, resume=True,
        num_workers=0, max_steps=1, max_seconds=0, init_checkpoint=result["checkpoint"],
        **{k: yaml[k] for k in ("augment", "dropblock", "adversarial")},
    )  # fmt: skip
    after = load_checkpoint(train(tuned, log=quiet)["model_path"])[0].state_dict()
    for k, v in loaded.items():
        if "running" not in k and v.is_floating_point():
            assert torch.allclose(v, after[k], atol=1e-6), k


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(data, tmp_path, settings):
    whole = pretrain(settings(data, tmp_path / "whole", epochs=2), log=quiet)
    cut = pretrain(settings(data, tmp_path / "cut", epochs=1), log=quiet)
    said = []
    resumed = pretrain(settings(data, tmp_path / "cut", epochs=2), log=said.append)
    assert any("resuming" in line for line in said) and resumed["history"][0] == cut["history"][0]
    losses = [[(h["train"]["total"], h["val"]["total"]) for h in r["history"]] for r in (whole, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == 2
    a, b = (load_checkpoint(r["checkpoint"])[0].state_dict() for r in (whole, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_spent_time_budget_stops_after_one_step(data, tmp_path, settings):
    result = pretrain(settings(data, tmp_path / "run", epochs=3, max_seconds=1e-6), log=quiet)
    assert [h["step"] for h in result["history"]] == [1]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"mask_ratio": 0.0}, "mask_ratio=0.0"),
        ({"mask_ratio": 1.0}, "mask_ratio=1.0"),
        ({"patch_px": 7}, "patch_px=7: must divide the input size 64x48"),
        ({"patch_px": 48}, "patch_px=48"),  # does not divide 64
        ({"max_steps": -1}, "max_steps=-1"),
        ({"max_seconds": -1.0}, "max_seconds=-1.0"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(changes, words, data, tmp_path, settings):
    with pytest.raises(InputError, match=words):
        pretrain(settings(data, tmp_path / "run", **changes), log=quiet)
    assert not (tmp_path / "run").exists()


def test_a_missing_dataset_or_a_training_run_folder_is_refused(
    data, tmp_path, settings, conf_values, model_config
):
    with pytest.raises(DatasetError, match="no_such"):
        pretrain(settings(tmp_path / "no_such", tmp_path / "run"), log=quiet)
    assert not (tmp_path / "run").exists()
    yaml = conf_values("train.yaml")
    detector = TrainSettings(
        data_dir=str(data), out_dir=str(tmp_path / "det"), model=model_config, epochs=1, batch_size=2, lr=1e-3,
        weight_decay=0, warmup_steps=1, seed=0, device="cpu", amp=False, resume=True, num_workers=0,
        max_steps=1, max_seconds=0, **{k: yaml[k] for k in ("augment", "dropblock", "adversarial", "init_checkpoint")},
    )  # fmt: skip
    train(detector, log=quiet)
    with pytest.raises(CheckpointError, match="cannot resume pretraining"):
        pretrain(settings(data, tmp_path / "det"), log=quiet)  # its last.pt is a detector's

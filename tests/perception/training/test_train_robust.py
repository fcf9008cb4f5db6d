"""train() with the robustness options: a start from trained weights, DropBlock, adversarial
batches; each seeded, each off by default. The tiny model on the 64x48 frames of `make_coco`."""

import pytest
import torch

from perception.detection.model import CheckpointError, load_checkpoint
from perception.training.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quiet(*_):
    pass


def weights(result) -> dict[str, torch.Tensor]:
    return load_checkpoint(result["model_path"])[0].state_dict()


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_options_are_off_by_default(conf_values):
    train_yaml = conf_values("train.yaml")
    assert train_yaml["dropblock"]["drop_p"] == 0 and train_yaml["adversarial"]["eps"] == 0
    assert train_yaml["init_checkpoint"] is None and train_yaml["augment"]["corrupt_p"] == 0


OPTIONS = {
    "dropblock": {"dropblock": {"drop_p": 0.3, "block_cells": 3}},
    "adversarial": {"adversarial": {"eps": 4.0, "steps": 2, "fraction": 0.5}},
    "corruption": {"augment_changes": {"corrupt_p": 1.0}},
}


@pytest.mark.parametrize("name", OPTIONS)
def test_each_option_changes_training_and_is_seeded(name, data, tmp_path, settings):
    change = dict(OPTIONS[name])
    if "augment_changes" in change:
        change = {"augment": {**settings(data, tmp_path).augment, **change["augment_changes"]}}
    a = weights(train(settings(data, tmp_path / "a", **change), log=quiet))
    b = weights(train(settings(data, tmp_path / "b", **change), log=quiet))
    base = weights(train(settings(data, tmp_path / "base"), log=quiet))
    assert same(a, b)
    assert not same(a, base)
    assert set(a) == set(base)  # the same layers: the checkpoint loads as any other


def test_fine_tuning_starts_from_the_checkpoint(data, tmp_path, settings):
    first = train(settings(data, tmp_path / "first", max_steps=1), log=quiet)
    tuned = settings(data, tmp_path / "tuned", init_checkpoint=first["model_path"], lr=1e-9, max_steps=1)
    # a tiny learning rate: one step from the checkpoint stays next to it (BN statistics move a little)
    start, after = weights(first), weights(train(tuned, log=quiet))
    for k, v in start.items():
        if "running" not in k and v.is_floating_point():
            assert torch.allclose(v, after[k], atol=1e-6), k
    fresh = weights(train(settings(data, tmp_path / "fresh", lr=1e-9, max_steps=1), log=quiet))
    assert not same(
        {k: v for k, v in fresh.items() if "weight" in k}, {k: v for k, v in after.items() if "weight" in k}
    )


def test_a_checkpoint_of_another_model_is_refused_before_anything_is_written(
    data, tmp_path, settings, detector_config
):
    first = train(settings(data, tmp_path / "first", max_steps=1), log=quiet)
    other = settings(
        data, tmp_path / "other", model=detector_config(input_height=48, input_width=64, head_width=4),
        init_checkpoint=first["model_path"],
    )  # fmt: skip
    with pytest.raises(CheckpointError, match="init_checkpoint"):
        train(other, log=quiet)
    assert not (tmp_path / "other").exists()


def test_a_model_of_the_object_classes_grows_the_light_classes(data, tmp_path, settings, detector_config):
    """A detector trained before the traffic-light classes and class sizes starts this run's: every
    layer is its own, the heatmap's rows of the objects too (the light rows start from the prior),
    and its one size head starts every class's."""
    from perception.detection.model import CenterNet, save_checkpoint
    from perception.types import OBJECT_CLASSES

    base = settings(data, tmp_path / "x").model
    old_config = detector_config(**{**vars(base), "num_classes": len(OBJECT_CLASSES), "class_sizes": False})
    old = CenterNet(old_config)
    save_checkpoint(tmp_path / "old.pt", old, old_config, {"classes": list(OBJECT_CLASSES)})
    tuned = settings(data, tmp_path / "tuned", init_checkpoint=str(tmp_path / "old.pt"), lr=1e-9, max_steps=1)
    after = weights(train(tuned, log=quiet))
    n = len(OBJECT_CLASSES)
    for k, v in old.state_dict().items():
        if "running" in k or not v.is_floating_point():
            continue
        got = after[k][:n] if k.startswith("heads.heatmap.") else after[k]
        if k.startswith("heads.size."):
            got = got.reshape(-1, 2, *v.shape[1:])  # (classes, 2, ...): each class's pair the old one
            v = v[None].expand_as(got)
        assert torch.allclose(v, got, atol=1e-6), k
    assert torch.allclose(
        after["heads.heatmap.bias"][n:], CenterNet(base).state_dict()["heads.heatmap.bias"][n:]
    )
    # Classes that are not the first ones of this run's are refused.
    save_checkpoint(tmp_path / "odd.pt", old, old_config, {"classes": ["pedestrian", "vehicle", "obstacle"]})
    odd = settings(data, tmp_path / "odd", init_checkpoint=str(tmp_path / "odd.pt"), max_steps=1)
    with pytest.raises(CheckpointError, match="classes"):
        train(odd, log=quiet)

"""Structured pruning: the layers really get narrower, the MAC budget holds, the least important
channels are the ones that go, and `bulletdrive prune` writes an ordinary checkpoint."""

import dataclasses
import json

import pytest
import torch

from perception.detection.detector import resolve_checkpoint
from perception.detection.model import CenterNet, load_checkpoint
from perception.detection.prune import (
    PruneError,
    config_for_macs,
    config_macs,
    conv_macs,
    kept_channels,
    prune,
    prune_to,
    summary,
)


@pytest.fixture
def model(detector_config):
    torch.manual_seed(0)
    return CenterNet(detector_config(widths=(8, 16, 32, 32), neck_width=16, head_width=16)).eval()


def test_kept_channels_rounds_to_the_block_and_never_grows():
    assert kept_channels(64, 0.5, 16) == 32
    assert kept_channels(64, 0.3, 16) == 16  # 19.2 rounds to one block
    assert kept_channels(64, 0.0, 16) == 16  # at least one block
    assert kept_channels(8, 0.0, 16) == 8  # or all of them, where they are fewer
    assert kept_channels(64, 1.0, 16) == 64
    widths = [kept_channels(48, k / 100, 8) for k in range(101)]
    assert widths == sorted(widths)


def test_conv_macs_counts_a_known_conv():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False))
    assert conv_macs(conv, 10, 20) == (5 * 10 * 8) * 3 * 9


def test_the_budget_holds_and_is_used(model):
    full = config_macs(model.config)
    target = config_for_macs(model.config, 0.5, 8)
    assert config_macs(target) <= 0.5 * full
    assert config_macs(target) > 0.25 * full  # the widest within the budget, not any narrower one
    assert all(w % 8 == 0 for w in (*target.widths, target.neck_width, target.head_width))
    with pytest.raises(PruneError, match="below what round_to=8 allows"):
        config_for_macs(model.config, 0.01, 8)


def test_a_kept_head_keeps_its_width_and_the_rest_pays_for_it(model):
    full = config_macs(model.config)
    everywhere = config_for_macs(model.config, 0.5, 8)
    kept = config_for_macs(model.config, 0.5, 8, prune_head=False)
    assert kept.head_width == model.config.head_width > everywhere.head_width
    assert config_macs(kept) <= 0.5 * full
    assert sum(kept.widths) + kept.neck_width <= sum(everywhere.widths) + everywhere.neck_width
    pruned = prune(model, 0.5, round_to=8, prune_head=False)
    assert pruned.config == kept and pruned.head_trunk[0].out_channels == model.config.head_width
    with pytest.raises(PruneError, match="below what round_to=8 allows with the head kept"):
        config_for_macs(model.config, 0.2, 8, prune_head=False)


def test_pruned_layers_are_narrower_dense_tensors(model):
    pruned = prune(model, 0.5, round_to=8)
    figures = summary(model, pruned)
    assert figures["macs_ratio"] <= 0.5
    assert figures["params_ratio"] < 0.6
    assert figures["after"]["macs"] == conv_macs(pruned, 192, 320)
    shapes = {n: p.shape for n, p in pruned.named_parameters()}
    assert shapes["stages.3.1.0.weight"][0] < model.stages[3][1][0].weight.shape[0]
    x = torch.rand(2, 3, 192, 320)
    with torch.no_grad():
        out, ref = pruned(x), model(x)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in ref.items()}
    assert model.stages[3][1][0].weight.shape[0] == 32  # the source model is left as it was


def _kill(conv_bn: torch.nn.Sequential, channels: torch.Tensor, readers: list[torch.nn.Conv2d]) -> None:
    """Make `channels` of a ConvBNReLU output exactly zero and unread: the least important ones."""
    with torch.no_grad():
        conv_bn[0].weight[channels] = 0
        conv_bn[1].weight[channels] = 0
        conv_bn[1].bias[channels] = 0
        for reader in readers:
            reader.weight[:, channels] = 0


def test_the_least_important_channels_go_and_the_output_does_not_change():
    shipped, config, _ = load_checkpoint(resolve_checkpoint("shipped"))
    shipped.eval()
    dead = torch.arange(0, 128, 2)  # half of the top stage's channels
    _kill(shipped.stages[3][0], dead, [shipped.stages[3][1][0]])
    _kill(shipped.stages[3][1], dead, [shipped.top[0]])
    target = dataclasses.replace(config, widths=(16, 32, 64, 64))
    x = torch.rand(1, 3, 192, 320)
    with torch.no_grad():
        ref = shipped(x)
        out = prune_to(shipped, target)(x)
        other = prune_to(shipped, target, importance="random")(x)
    for name in ref:
        torch.testing.assert_close(out[name], ref[name], atol=1e-4, rtol=1e-4)
    assert (other["heatmap"] - ref["heatmap"]).abs().max() > 0.1  # a random choice does change it


def test_a_target_wider_than_the_model_is_refused(model):
    wider = dataclasses.replace(model.config, widths=(8, 16, 32, 48))
    with pytest.raises(PruneError, match="target wants more"):
        prune_to(model, wider)


@pytest.mark.slow
def test_prune_command_writes_a_checkpoint_and_fine_tunes(tmp_path, make_coco, capsys):
    from sim.app.cli import main

    data = tmp_path / "data"
    full_size = dataclasses.replace(make_coco, width_px=320, height_px=192)  # the shipped model's input
    full_size(data, "train", 4)
    full_size(data, "val", 2)
    out = tmp_path / "pruned"
    args = ["prune", f"data_dir={data}", f"out_dir={out}", "epochs=1", "max_steps=2", "threads=1"]
    code = main([*args, "prune_head=false", "distill=1", 'train=["augment.corrupt_p=0.5"]'])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "history.json").read_text())[0]["train"]["distill"] > 0
    figures = json.loads((out / "prune.json").read_text())
    assert figures["macs_ratio"] <= 0.5
    pruned, config, _ = load_checkpoint(out / "pruned.pt")
    tuned, tuned_config, _ = load_checkpoint(out / "model.pt")
    assert tuned_config == config and config.widths[-1] < 128
    assert figures["after"]["params"] == sum(p.numel() for p in tuned.parameters())


BAD = [
    (["macs_ratio=0"], "macs_ratio=0"),
    (["macs_ratio=1.5"], "macs_ratio=1.5"),
    (["round_to=0"], "round_to=0"),
    (["importance=taylor"], "importance='taylor'"),
    (["epochs=-1"], "epochs=-1"),
    (["checkpoint=/no/such.pt"], "/no/such.pt"),
    (["macs_ratio=0.001"], "below what round_to=16 allows"),
    (['train=["nope=1"]'], "unknown config key 'nope'"),
    (['train=["lr=-1"]'], "lr=-1"),
    (["distill=-1"], "distill=-1"),
]


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(args, words, tmp_path, cli_error):
    out = tmp_path / "out"
    assert words in cli_error(["prune", "epochs=0", *args, f"out_dir={out}"])
    assert not out.exists()

"""Structured channel pruning of the CenterNet detector, so that it really runs faster.

Whole channels go: each pruned conv's weight tensor shrinks, together with the BatchNorm after it and
the input channels of every conv that reads it, so the dense shapes shrink and the CPU does less work
(a mask over zeroed weights, as torch.nn.utils.prune gives, costs as much as before). torch-pruning's
dependency graph finds the layers coupled to a channel (the neck's laterals, smoothing convs and
`top` are added together, so they lose the same channels); its importance criteria rank them.

How much each layer keeps: the same fraction of its channels everywhere (uniform; or everywhere but
the heads' shared conv, which then keeps its width: every output is read from it), rounded to a
multiple of `round_to`, the fraction chosen by bisection so that the multiply-accumulates of one
frame fall to `macs_ratio` of the original. A stage's two convs keep as many channels as each other, so the
result is a plain CenterNet of a narrower DetectorConfig (narrower `widths`, `neck_width` and
`head_width`): its checkpoint is an ordinary one, and BatchNorm folding, TorchScript, the `Detector`
and ONNX export take it as they take the shipped model. Which channels go: the least important of
each coupled group (default: the L2 norm of every weight tied to the channel, over the group).

Why round: oneDNN's CPU convolutions work on channel blocks of the vector width (8 floats with AVX2,
16 with AVX-512) and a partial block costs a whole one, so 22 channels run about as slowly as 24;
benchmarks/prune_speed.py measures what a ratio gives.

The fine-tune after pruning is the project's training loop (perception/training/train.py `train`,
given the pruned weights as its start, and as an option the unpruned model as a teacher to distil
from, perception/training/distill.py): `bulletdrive prune`.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import replace

import torch
import torch_pruning as tp
from torch import nn

from perception.detection.model import CenterNet, DetectorConfig
from perception.errors import InputError

# Channel rankings (torch-pruning criteria). "random" is the baseline that shows a criterion matters.
IMPORTANCES = {
    "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),  # L2 norm over the coupled weights
    "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
    "bn_scale": lambda: tp.importance.BNScaleImportance(),  # |BatchNorm gamma| ("network slimming")
    "random": lambda: tp.importance.RandomImportance(),  # from torch's global generator
}
BISECTION_STEPS = 30  # the kept fraction to 1e-9: far below the step between two distinct widths


class PruneError(InputError):
    """A pruning request that cannot be met (e.g. a MAC target below the smallest rounded model)."""


def conv_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of the model's convolutions for one (3, height, width) frame.

    Per conv: output elements x (input channels / groups) x kernel area. BatchNorm, ReLU, the adds and
    the upsampling are not counted (each costs one op per element, under 2 % of the convs here).
    """
    total = 0

    def count(conv: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = conv.kernel_size
        total += output[0].numel() * (conv.in_channels // conv.groups) * kh * kw

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks = [c.register_forward_hook(count) for c in convs]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=device))
    finally:
        for h in hooks:
            h.remove()
    return total


@functools.cache  # the bisection asks for the same rounded widths again and again
def config_macs(config: DetectorConfig) -> int:
    """conv_macs of a fresh CenterNet of `config` at its input size."""
    return conv_macs(CenterNet(config).eval(), config.input_height, config.input_width)


def kept_channels(channels: int, keep: float, round_to: int) -> int:
    """`keep` of `channels` rounded to the nearest multiple of `round_to`, at least one multiple
    (or all the channels, where they are fewer) and at most all of them. Non-decreasing in `keep`."""
    floor = min(round_to, channels)
    return min(channels, max(floor, round_to * math.floor(keep * channels / round_to + 0.5)))


def narrowed(config: DetectorConfig, keep: float, round_to: int, head: bool = True) -> DetectorConfig:
    """`config` with every width (stages, neck, and the head unless `head` is False) cut to
    `kept_channels(width, keep, round_to)`."""
    return replace(
        config,
        widths=tuple(kept_channels(w, keep, round_to) for w in config.widths),
        neck_width=kept_channels(config.neck_width, keep, round_to),
        head_width=kept_channels(config.head_width, keep, round_to) if head else config.head_width,
    )


def config_for_macs(
    config: DetectorConfig, macs_ratio: float, round_to: int, prune_head: bool = True
) -> DetectorConfig:
    """The widest `narrowed(config, keep, round_to, prune_head)` whose conv MACs are at most
    `macs_ratio` of `config`'s: bisection on `keep` (the MACs never fall as `keep` grows)."""
    if not 0 < macs_ratio <= 1 or round_to < 1:
        raise PruneError(f"macs_ratio={macs_ratio} must be in (0, 1] and round_to={round_to} >= 1")
    full = config_macs(config)
    smallest = config_macs(narrowed(config, 0.0, round_to, prune_head))
    if smallest > macs_ratio * full:
        raise PruneError(
            f"macs_ratio={macs_ratio} is below what round_to={round_to} allows"
            f"{'' if prune_head else ' with the head kept'}: the narrowest model keeps "
            f"{smallest / full:.3f} of the MACs"
        )
    if macs_ratio == 1:
        return config
    low, high = 0.0, 1.0  # invariant: narrowed(config, low) is within the budget, high is not
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        within = config_macs(narrowed(config, mid, round_to, prune_head)) <= macs_ratio * full
        low, high = (mid, high) if within else (low, mid)
    return narrowed(config, low, round_to, prune_head)


def conv_widths(config: DetectorConfig) -> dict[str, int]:
    """{name of each conv of CenterNet(config): its output channels}."""
    return {n: m.out_channels for n, m in CenterNet(config).named_modules() if isinstance(m, nn.Conv2d)}


def prune_to(model: CenterNet, target: DetectorConfig, importance: str = "l2") -> CenterNet:
    """A new CenterNet of `target` (same input size, classes and heads as `model`, narrower or equal
    widths) holding `model`'s most important channels; `model` is left as it was.

    Each coupled group of channels (torch-pruning's dependency graph, rooted at a conv's output) keeps
    the width `target` gives its root conv; the heads' outputs are never pruned. The pruned copy is
    loaded into a fresh CenterNet(target) with every key and shape checked (load_state_dict strict),
    so what comes back is the ordinary model class with its config, not a patched module tree.
    """
    if importance not in IMPORTANCES:
        raise PruneError(f"importance={importance!r} is not one of {', '.join(IMPORTANCES)}")
    source = model.config
    fixed = ("input_height", "input_width", "num_classes", "with_distance", "max_distance_m")
    if any(getattr(source, k) != getattr(target, k) for k in fixed):
        raise PruneError(f"prune_to: the target config may change only the widths, not {fixed}")
    work = copy.deepcopy(model).cpu().eval()  # eval: tracing the graph must not move BN statistics
    names = {m: n for n, m in work.named_modules()}
    want = conv_widths(target)
    example = torch.zeros(1, 3, source.input_height, source.input_width)
    with torch.enable_grad():  # the graph is traced through autograd
        graph = tp.DependencyGraph().build_dependency(work, example_inputs=example, verbose=False)
    rank = IMPORTANCES[importance]()
    for group in graph.get_all_groups(
        ignored_layers=list(work.heads.values()), root_module_types=[nn.Conv2d]
    ):
        root = group[0].dep.target.module  # the conv whose output channels the group is rooted at
        drop = root.out_channels - want[names[root]]
        if drop < 0:
            raise PruneError(f"prune_to: {names[root]} has {root.out_channels} channels, target wants more")
        if drop:
            scores = rank(group)  # (channels,) higher = more important
            group.prune(idxs=torch.argsort(scores)[:drop].tolist())
    pruned = CenterNet(target)
    pruned.load_state_dict(work.state_dict())  # strict: every layer has the target's shape
    return pruned.to(next(model.parameters()).device).eval()


def prune(
    model: CenterNet, macs_ratio: float, round_to: int = 8, importance: str = "l2", prune_head: bool = True
) -> CenterNet:
    """`model` pruned to at most `macs_ratio` of its conv MACs (config_for_macs, then prune_to)."""
    return prune_to(model, config_for_macs(model.config, macs_ratio, round_to, prune_head), importance)


def summary(before: CenterNet, after: CenterNet) -> dict:
    """Parameters, conv MACs per frame and widths of a model and its pruned copy (plain values)."""

    def describe(m: CenterNet) -> dict:
        c = m.config
        return {
            "params": sum(p.numel() for p in m.parameters()),
            "macs": conv_macs(m, c.input_height, c.input_width),
            "widths": list(c.widths),
            "neck_width": c.neck_width,
            "head_width": c.head_width,
        }

    b, a = describe(before), describe(after)
    return {
        "before": b,
        "after": a,
        "macs_ratio": round(a["macs"] / b["macs"], 4),
        "params_ratio": round(a["params"] / b["params"], 4),
    }

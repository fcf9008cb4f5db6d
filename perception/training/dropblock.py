"""DropBlock (Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional networks",
2018) for the CenterNet backbone, attached by forward hooks during training only.

Why this regulariser for this detector: dropout of single activations barely regularises a conv
net, whose neighbouring activations carry the same information; DropBlock drops whole squares of a
feature map, so the heads must find an object from what is left of it and from its context. That
is what a partly hidden object, a rain streak or a blurred edge asks of them (the shipped model
finds partly occluded objects badly: AP50 0.39 on visible 0.4-0.8). Stochastic depth needs residual
blocks, which this backbone has none of; label smoothing of the heatmap would blur the peaks that
decoding keeps, where CenterNet's focal loss already softens the negatives around each centre.

As in the paper: applied to the later stages (here the stride-8 and stride-16 stages: a block of 3
cells is 24 and 48 px, near the size of the objects, median 10 px tall, while stride 4 would drop
single objects whole), a mask per channel, the drop probability ramped linearly from 0 to its
target over training, and the kept activations scaled up by the inverse of the kept fraction.
Nothing changes in eval mode, in the model's weights or in its checkpoints: the hooks live only in
the training loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FIRST_STAGE = 2  # DropBlock after backbone stages 2, 3, ... (strides 8, 16, ...)


def drop_block(x: torch.Tensor, drop_p: float, block_cells: int) -> torch.Tensor:
    """x (B, C, H, W) with squares of block_cells x block_cells set to 0 (each channel its own), so
    that about `drop_p` of the activations are dropped; the rest scaled by 1 / kept fraction.

    Block centres are drawn with probability gamma = drop_p / block^2 * (H W) / ((H - block + 1)
    (W - block + 1)) (the paper's equation 1), from torch's global generator."""
    if drop_p <= 0:
        return x
    height, width = x.shape[-2:]
    block = min(block_cells, height, width)
    gamma = drop_p / block**2 * height * width / ((height - block + 1) * (width - block + 1))
    rows, cols, lo = height - block + 1, width - block + 1, block // 2  # centres where a whole block fits
    centres = torch.zeros_like(x)
    centres[..., lo : lo + rows, lo : lo + cols] = (
        torch.rand((*x.shape[:-2], rows, cols), device=x.device) < gamma
    )
    dropped = F.max_pool2d(centres, block, stride=1, padding=block // 2)[..., :height, :width]
    keep = 1.0 - dropped
    return x * keep * (keep.numel() / keep.sum().clamp(min=1.0))


class DropBlockHooks:
    """DropBlock on the outputs of `model.stages[FIRST_STAGE:]`, in training mode only.

    `set_progress(f)` (f in [0, 1], the fraction of training done) sets the drop probability to
    f x drop_p; `remove()` takes the hooks off."""

    def __init__(self, model: nn.Module, drop_p: float, block_cells: int):
        if not 0 <= drop_p < 1 or block_cells < 1:
            raise ValueError(
                f"DropBlock needs 0 <= drop_p < 1 and block_cells >= 1, got {drop_p}, {block_cells}"
            )
        self.drop_p, self.block_cells, self.current_p = drop_p, block_cells, 0.0
        self.handles = [stage.register_forward_hook(self._hook) for stage in model.stages[FIRST_STAGE:]]

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        if not module.training or self.current_p <= 0:
            return None  # the output unchanged
        return drop_block(output, self.current_p, self.block_cells)

    def set_progress(self, fraction: float) -> None:
        self.current_p = self.drop_p * min(max(fraction, 0.0), 1.0)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

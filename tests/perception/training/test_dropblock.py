"""DropBlock: drops about the asked fraction, in whole squares, keeps the expected activation, only
in training mode, and leaves the model's weights and checkpoints as they are."""

import pytest
import torch
import torch.nn.functional as F

from perception.detection.model import CenterNet
from perception.training.dropblock import FIRST_STAGE, DropBlockHooks, drop_block


def test_drop_block_drops_the_fraction_in_whole_blocks():
    torch.manual_seed(0)
    x = torch.ones(4, 16, 48, 80)
    out = drop_block(x, drop_p=0.1, block_cells=3)
    dropped = (out == 0).float()
    assert dropped.mean().item() == pytest.approx(0.1, abs=0.02)
    assert out.mean().item() == pytest.approx(1.0, abs=1e-4)  # the kept ones scaled up
    # every dropped cell lies in an all-dropped 3x3 square: the mask is its own morphological opening
    eroded = -F.max_pool2d(-dropped, 3, stride=1, padding=1)
    opened = F.max_pool2d(eroded, 3, stride=1, padding=1)
    assert torch.equal(opened, dropped)
    # each channel has its own mask
    assert not torch.equal(dropped[0, 0], dropped[0, 1])
    assert drop_block(x, 0.0, 3) is x


def test_hooks_act_in_training_only_and_ramp(detector_config):
    torch.manual_seed(0)
    model = CenterNet(detector_config(input_height=48, input_width=64))
    x = torch.rand(2, 3, 48, 64)
    model.eval()
    with torch.no_grad():
        clean = model(x)["heatmap"]
    hooks = DropBlockHooks(model, drop_p=0.2, block_cells=3)
    assert len(hooks.handles) == len(model.stages) - FIRST_STAGE
    with torch.no_grad():
        assert torch.equal(model(x)["heatmap"], clean)  # eval mode: nothing dropped
        model.train()
        hooks.set_progress(0.0)
        state = torch.get_rng_state()
        first = model(x)["heatmap"]
        assert torch.equal(torch.get_rng_state(), state)  # at drop 0 it draws nothing
        hooks.set_progress(0.5)
        assert hooks.current_p == pytest.approx(0.1)
        assert not torch.allclose(model(x)["heatmap"], first)
    hooks.remove()
    assert all(not stage._forward_hooks for stage in model.stages)
    assert set(model.state_dict()) == set(CenterNet(model.config).state_dict())  # nothing added
    with pytest.raises(ValueError, match="drop_p"):
        DropBlockHooks(model, drop_p=1.0, block_cells=3)

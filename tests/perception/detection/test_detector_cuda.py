"""The Detector on CUDA: the CUDA-graph replay of the forward. Runs only where CUDA is (the device
machine: `python -m pytest --noconftest tests/perception/detection/test_detector_cuda.py`); CI has no
GPU and skips it."""

import numpy as np
import pytest
import torch

from perception.detection.detector import Detector


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the device machine runs it)")
def test_cuda_graph_replay_gives_eager_outputs_and_follows_its_input():
    det = Detector("shipped", device="cuda", cuda_graphs=True)
    assert det.graphs is not None and det.autocast
    rng = np.random.default_rng(0)
    shape = (det.config.input_height, det.config.input_width, 3)
    for batch in (1, 6, 1):  # batch 1 again: its graph is replayed, not captured anew
        frames = rng.integers(0, 255, (batch, *shape), dtype=np.uint8)
        replayed = {k: v.clone() for k, v in det._forward_torch(frames).items()}
        eager = det._preprocess_and_run(torch.from_numpy(frames).cuda())
        for name, tensor in eager.items():
            assert torch.equal(replayed[name], tensor), name
    assert len(det.graphs.graphs) == 2

"""Fixtures shared by the tests of every package.

The fixtures of one package's tests live in its own conftest.py (tests/perception/, tests/sim/world/,
tests/sim/metrics/). A helper that tests call is a fixture that returns it (a factory): pytest finds
it by name, and no test imports a conftest.
"""

import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from decision.route import Road, Segment

REPO = Path(__file__).resolve().parents[1]
LANE_WIDTH_M = 3.5


@pytest.fixture(scope="session")
def conf_values():
    """conf_values("decision/default.yaml") -> that file of conf/ as plain Python values: for tests
    that build a part from the values the commands use, rather than repeat them."""

    def load(path: str) -> dict:
        return yaml.safe_load(files("conf").joinpath(path).read_text())

    return load


@pytest.fixture(scope="session")
def straight_road():
    """straight_road(length_m, lanes=2, speed_limit_mps=20.0) -> a straight Road from the origin
    heading east (+x), lanes of 3.5 m: lane 0's centre is at y = -1.75 with two lanes."""

    def make(length_m: float, lanes: int = 2, speed_limit_mps: float = 20.0) -> Road:
        return Road(
            [Segment("straight", length_m)],
            lane_count=lanes,
            lane_width_m=LANE_WIDTH_M,
            speed_limit_mps=speed_limit_mps,
        )

    return make


@pytest.fixture(scope="session")
def box_iou():
    """box_iou(a, b) -> intersection over union of two (x0, y0, x1, y1) boxes."""

    def iou(a, b) -> float:
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    return iou


@pytest.fixture
def cli_error(capsys):
    """cli_error(args) -> the error line of `bulletdrive ARGS` on bad input, checked to be what every
    command gives: exit code 2, one line on stderr, no traceback anywhere."""
    from sim.app.cli import main

    def run(args: list[str]) -> str:
        code = main(args)
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert code == 2, (code, err)
        assert len(err.splitlines()) == 1, err
        assert "Traceback" not in err + captured.out
        return err

    return run


@pytest.fixture(scope="session")
def fresh_python():
    """fresh_python(code, *args) -> the CompletedProcess of `python -c code args` in a new
    interpreter, run in the repository with it on the path: for what an import or a command loads."""

    def run(code: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=False,
        )

    return run


@pytest.fixture
def tiny_cnn(tmp_path, conf_values):
    """tiny_cnn(score_threshold) -> a CNNPerceiver of an untrained tiny detector for 64x48 frames
    (every cell scores ~0.1, its heatmap bias)."""
    from perception.cnn_perceiver import CNNPerceiver
    from perception.detection.model import CenterNet, DetectorConfig, save_checkpoint
    from perception.types import CLASSES

    config = DetectorConfig(**{**conf_values("model/tiny.yaml"), "input_height": 48, "input_width": 64})
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, CenterNet(config), config, {"classes": list(CLASSES)})
    cnn = {k: v for k, v in conf_values("perception/cnn.yaml").items() if k != "_target_"}

    def make(score_threshold: float):
        return CNNPerceiver(
            **{**cnn, "checkpoint": str(checkpoint), "device": "cpu", "score_threshold": score_threshold}
        )

    return make

"""`bulletdrive scenarios` and the bad-input errors of `drive` do not import torch (~3 s)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROGRAM = """
import sys
from sim.app.cli import main
code = main(sys.argv[1:])
print("torch" in sys.modules, code)
"""


def run_cli(args: list[str]) -> tuple[bool, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    torch_loaded, code = out.stdout.strip().splitlines()[-1].split()
    return torch_loaded == "True", int(code)


def test_scenarios_does_not_import_torch():
    assert run_cli(["scenarios"]) == (False, 0)


@pytest.mark.parametrize(
    "overrides",
    [
        ["video=off"],
        ["sim.camera.widht=100"],
        ["scenario.duration_s=1e12"],
        ["perception=cnn", "perception.device=tpu"],
    ],
)
def test_bad_input_to_drive_does_not_import_torch(overrides, tmp_path):
    assert run_cli(["drive", *overrides, f"hydra.run.dir={tmp_path / 'o'}"]) == (False, 2)

"""`bulletdrive scenarios` and the bad-input errors of `drive` do not import torch (~3 s)."""

import pytest

PROGRAM = """
import sys
from sim.app.cli import main
code = main(sys.argv[1:])
print("torch" in sys.modules, code)
"""


@pytest.fixture
def run_cli(fresh_python):
    """run_cli(args) -> (torch imported, exit code) of `bulletdrive ARGS` in a fresh interpreter."""

    def run(args: list[str]) -> tuple[bool, int]:
        out = fresh_python(PROGRAM, *args)
        torch_loaded, code = out.stdout.strip().splitlines()[-1].split()
        return torch_loaded == "True", int(code)

    return run


def test_scenarios_does_not_import_torch(run_cli):
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
def test_bad_input_to_drive_does_not_import_torch(overrides, tmp_path, run_cli):
    assert run_cli(["drive", *overrides, f"hydra.run.dir={tmp_path / 'o'}"]) == (False, 2)

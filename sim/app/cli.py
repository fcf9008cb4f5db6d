"""`bulletdrive`: the command-line entry point. A thin dispatch: each command lives in its own
module under sim/app/ (`HELP` and `run(args) -> exit code`), imported only when it is called, so
that `bulletdrive scenarios` and bad-input errors do not load torch.

Errors in what the user gave (unknown scenario, bad key, value out of range, malformed YAML, an
output folder that cannot be written) are one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import importlib
import sys

import yaml

from perception.errors import InputError

USAGE = """usage: bulletdrive COMMAND [OVERRIDES...]

commands:
  drive       drive one scenario in closed loop; writes video, trajectory plot and metrics
              e.g. bulletdrive drive scenario=cut_in seed=3 perception=ground_truth
  scenarios   list the scenarios, one line each
  data        generate a labelled camera dataset (COCO) from randomised scenarios
  train       train the CNN detector on a dataset
  pretrain    pretrain the detector's backbone on unlabelled frames (masked images), to fine-tune with train
  detect-eval COCO metrics of a detector on a dataset split
  export      the detector as an ONNX model (fp32, or int8 with quantize=int8)
  robustness  AP under image corruptions (mPC, rPC) and adversarial attacks (FGSM, PGD)
  prune       prune a detector's channels to a MAC budget (faster on the CPU), then fine-tune it
  explain     where in a frame the detector finds each detection (class activation maps)
              e.g. bulletdrive explain data_dir=data/sim image=12
  evaluate    run a scenario suite over seeds and perceivers (process pool or Ray); writes a report
              e.g. bulletdrive evaluate suite=standard seeds=20 perception=ground_truth,cnn
  replay      recompute a finished run's scores from its log and re-render its video

Overrides use Hydra's syntax (key=value, group=option, hydra.run.dir=FOLDER); your own scenarios
and suites: hydra.searchpath=[file://MY_CONF]. Run `bulletdrive COMMAND --help` for a command's help.
"""

COMMANDS = {  # command: its module under sim/app/
    "drive": "drive",
    "scenarios": "scenarios",
    "data": "data",
    "train": "train",
    "pretrain": "pretrain",
    "detect-eval": "detect_eval",
    "export": "export",
    "robustness": "robustness",
    "explain": "explain",
    "prune": "prune",
    "evaluate": "evaluate",
    "replay": "replay",
}


def _err(msg: str) -> int:
    print(f"bulletdrive: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        return _err(f"unknown command '{command}'; commands: {', '.join(COMMANDS)}")
    try:
        module = importlib.import_module(f"sim.app.{COMMANDS[command]}")
        if args and args[0] in ("-h", "--help"):
            print(module.HELP)
            return 0
        return module.run(args)
    except InputError as err:
        return _err(str(err).strip().replace("\n", " "))
    except yaml.YAMLError as err:
        return _err(f"malformed YAML: {str(err).splitlines()[0]}")
    except KeyboardInterrupt:
        return _err("interrupted; files already written are complete")


if __name__ == "__main__":
    sys.exit(main())

"""`bulletdrive`: the command-line entry point. Thin: compose config -> build -> run -> write.

    bulletdrive drive [OVERRIDES...]     one closed-loop run (Hydra overrides, e.g. scenario=cut_in)
    bulletdrive scenarios                the shipped scenarios, one line each
    bulletdrive --help                   this text

Errors in what the user gave (unknown scenario, bad key, value out of range, malformed YAML) are
one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import sys

import yaml

USAGE = """usage: bulletdrive COMMAND [OVERRIDES...]

commands:
  drive       drive one scenario in closed loop; writes video, trajectory plot and metrics
              e.g. bulletdrive drive scenario=cut_in seed=3 perception=ground_truth
  scenarios   list the shipped scenarios, one line each

Overrides use Hydra's syntax (key=value, group=option, hydra.run.dir=FOLDER).
Run `bulletdrive COMMAND --help` for a command's help.
"""


def _err(msg: str) -> int:
    print(f"bulletdrive: error: {msg}", file=sys.stderr)
    return 2


def cmd_scenarios(args: list[str]) -> int:
    from importlib.resources import files

    from sim.cfg import available

    for name in available("scenario"):
        data = yaml.safe_load(files("conf").joinpath("scenario", f"{name}.yaml").read_text())
        print(f"{name:22s} {data.get('description', '')}")
    return 0


def cmd_drive(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: bulletdrive drive [OVERRIDES...]\n\n"
            "Drive one scenario in closed loop and write metrics.json, log.npz, trajectory.png and\n"
            "video.mp4 into the run folder (hydra.run.dir). Config groups: scenario, perception,\n"
            "decision, control, sim. Example: bulletdrive drive scenario=cut_in seed=3"
        )
        return 0
    from sim.drive import drive

    result, run_dir = drive(args)
    metrics = result.summary
    print(
        f"{metrics['scenario']} seed {metrics['seed']}: driving score {metrics['driving_score']:.1f} ({metrics['scorer']}), "
        f"route completion {metrics['route_completion']:.1f}%, outcome {metrics['outcome']}"
    )
    print(f"run folder: {run_dir}")
    for name in ("metrics.json", "trajectory.png", "video.mp4"):
        if (run_dir / name).exists():
            print(f"  {run_dir / name}")
    return 0


COMMANDS = {"drive": cmd_drive, "scenarios": cmd_scenarios}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        return _err(f"unknown command '{command}'; commands: {', '.join(COMMANDS)}")
    from sim.cfg import ConfigError
    from sim.scenario import ScenarioError

    try:
        return COMMANDS[command](args)
    except (ConfigError, ScenarioError) as err:
        return _err(str(err))
    except yaml.YAMLError as err:
        return _err(f"malformed YAML: {str(err).splitlines()[0]}")
    except KeyboardInterrupt:
        return _err("interrupted; files already written are complete")


if __name__ == "__main__":
    sys.exit(main())

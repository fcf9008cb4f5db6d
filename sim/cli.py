"""`bulletdrive`: the command-line entry point. Thin: compose config -> build -> run -> write.

    bulletdrive drive [OVERRIDES...]     one closed-loop run (Hydra overrides, e.g. scenario=cut_in)
    bulletdrive scenarios                the shipped scenarios, one line each
    bulletdrive --help                   this text

Errors in what the user gave (unknown scenario, bad key, value out of range, malformed YAML) are
one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    from sim import cfg as C
    from sim.runner import run_closed_loop, write_outputs
    from sim.simulation import Simulation, seeds
    from sim.viz import VideoWriter

    cfg, run_dir = C.load("drive", args)
    C.check_keys(cfg, {"sim", "scenario", "perception", "decision", "control", "seed", "video", "plot"})
    seed = C.seed_of(cfg)
    sim_cfg = C.sim_config(cfg)
    spec = C.scenario_spec(cfg, seeds(seed)[0])
    v = sim_cfg.vehicle
    perceiver = C.build(cfg, "perception")
    planner = C.build(
        cfg, "decision", ego_length_m=v.length_m, ego_width_m=v.width_m, max_decel_mps2=v.max_decel_mps2
    )
    controller = C.build(
        cfg,
        "control",
        wheelbase_m=v.wheelbase_m,
        max_steer_rad=v.max_steer_rad,
        max_accel_mps2=v.max_accel_mps2,
        max_decel_mps2=v.max_decel_mps2,
    )
    want_video = bool(cfg.video) and sim_cfg.camera.enabled
    camera = sim_cfg.camera.enabled and (want_video or perceiver.needs_camera)
    if perceiver.needs_camera and not sim_cfg.camera.enabled:
        raise C.ConfigError("this perception needs the camera: sim.camera.enabled must be true")

    run_dir.mkdir(parents=True, exist_ok=True)
    _save_config(cfg, run_dir, args)
    sim = Simulation(sim_cfg, spec, seed, camera=camera)
    try:
        video = None
        if want_video:
            w, h = sim_cfg.camera.width, sim_cfg.camera.height
            video = VideoWriter(run_dir / "video.mp4", sim_cfg.camera_hz, (w + h, h))
        result = run_closed_loop(sim, perceiver, planner, controller, seed, video)
        if video is not None:
            video.close()
        meta = {
            "scenario": spec.name,
            "seed": seed,
            "perception": cfg.hydra.runtime.choices.get("perception", "custom"),
            "ego_model": sim_cfg.ego_model,
        }
        metrics = write_outputs(run_dir, sim, result, meta, plot=bool(cfg.plot))
    finally:
        sim.close()
    print(
        f"{spec.name} seed {seed}: driving score {metrics['driving_score']:.1f} ({metrics['scorer']}), "
        f"route completion {metrics['route_completion']:.1f}%, outcome {metrics['outcome']}"
    )
    print(f"run folder: {run_dir}")
    for name in ("metrics.json", "trajectory.png", "video.mp4"):
        if (run_dir / name).exists():
            print(f"  {run_dir / name}")
    return 0


def _save_config(cfg, run_dir: Path, overrides: list[str]) -> None:
    """Like a Hydra app: the resolved config and the overrides in RUN_DIR/.hydra/."""
    from omegaconf import OmegaConf

    from perception import atomic

    conf = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    atomic.write_bytes(run_dir / ".hydra" / "config.yaml", yaml.safe_dump(conf, sort_keys=False).encode())
    atomic.write_bytes(run_dir / ".hydra" / "overrides.yaml", yaml.safe_dump(list(overrides)).encode())


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

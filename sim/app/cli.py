"""`bulletdrive`: the command-line entry point. Thin: compose config -> build -> run -> write.

    bulletdrive drive [OVERRIDES...]     one closed-loop run (Hydra overrides, e.g. scenario=cut_in)
    bulletdrive scenarios                the shipped scenarios, one line each
    bulletdrive evaluate [OVERRIDES...]  a suite of runs in parallel, then a report
    bulletdrive replay RUN_DIR           scores and a video of a finished run, without simulating
    bulletdrive --help                   this text

Errors in what the user gave (unknown scenario, bad key, value out of range, malformed YAML) are
one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import sys

import yaml

from perception.errors import InputError

USAGE = """usage: bulletdrive COMMAND [OVERRIDES...]

commands:
  drive       drive one scenario in closed loop; writes video, trajectory plot and metrics
              e.g. bulletdrive drive scenario=cut_in seed=3 perception=ground_truth
  scenarios   list the shipped scenarios, one line each
  data        generate a labelled camera dataset (COCO) from randomised scenarios
  train       train the CNN detector on a dataset
  detect-eval COCO metrics of a detector on a dataset split
  evaluate    run a scenario suite over seeds and perceivers (process pool or Ray); writes a report
              e.g. bulletdrive evaluate suite=standard seeds=20 perception=ground_truth,cnn
  replay      recompute a finished run's scores from its log and re-render its video

Overrides use Hydra's syntax (key=value, group=option, hydra.run.dir=FOLDER).
Run `bulletdrive COMMAND --help` for a command's help.
"""


def _err(msg: str) -> int:
    print(f"bulletdrive: error: {msg}", file=sys.stderr)
    return 2


def cmd_scenarios(args: list[str]) -> int:
    from importlib.resources import files

    from sim.app.config import available

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
    from sim.app.drive import drive

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


def cmd_data(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: bulletdrive data [OVERRIDES...]\n\n"
            "Generate a labelled COCO dataset from randomised scenarios (conf/data.yaml): images,\n"
            "annotations/{train,val}.json, summary.json, box_heights.png, contact_sheet.png.\n"
            "Resumes an interrupted run. sim.* and scenario.* overrides apply to every scene;\n"
            "clutter.cones=1 sets a density of roadside objects per 100 m (clutter=null: none).\n"
            "Example: bulletdrive data out_dir=data/small train_scenes=8 scenario.duration_s=20"
        )
        return 0
    import numpy as np

    from sim.app import config as C
    from sim.data.generate import DataSettings, generate, scene_jobs, scene_overrides

    sim_overrides = [a for a in args if a.lstrip("+~").startswith(("sim.", "scenario."))]
    cfg, _ = C.load("data", [a for a in args if a not in sim_overrides])
    C.check_keys(
        cfg,
        {"out_dir", "scenarios", "train_scenes", "val_scenes", "seed", "frame_every_s", "workers", "clutter"},
    )
    known = set(C.available("scenario"))
    for name in cfg.scenarios:
        if name not in known:
            raise C.ConfigError(
                f"unknown scenario '{name}' in scenarios; available: {', '.join(sorted(known))}"
            )
    clutter = C.plain(cfg, "clutter") if cfg.get("clutter") is not None else {}
    if not isinstance(clutter, dict):
        raise C.ConfigError(f"clutter: expected a mapping of densities per 100 m, got {clutter!r}")
    settings = DataSettings(
        out_dir=str(cfg.out_dir),
        scenarios=tuple(cfg.scenarios),
        train_scenes=int(cfg.train_scenes),
        val_scenes=int(cfg.val_scenes),
        seed=C.seed_of(cfg),
        frame_every_s=float(cfg.frame_every_s),
        workers=int(cfg.workers),
        sim_overrides=tuple(sim_overrides),
        clutter=clutter,
    )
    # Fail early on a bad sim or scenario override or clutter: compose and sample the first scene.
    first = scene_jobs(settings)[0]
    drive_cfg = C.load("drive", [f"scenario={first.scenario}", *scene_overrides(first)])[0]
    C.sim_config(drive_cfg)
    C.scenario_spec(drive_cfg, np.random.default_rng(0))
    summary = generate(settings)
    for split, s in summary["splits"].items():
        boxes = ", ".join(f"{k} {v}" for k, v in s["boxes"].items())
        print(f"{split}: {s['images']} images from {s['scenes']} scenes; boxes: {boxes}")
    print(f"dataset: {settings.out_dir} (summary.json, box_heights.png, contact_sheet.png)")
    return 0


def cmd_train(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: bulletdrive train [OVERRIDES...]\n\n"
            "Train the CenterNet detector (conf/train.yaml, model=small|tiny) on a dataset from\n"
            "`bulletdrive data`. Writes out_dir/last.pt (resumable), model.pt, history.json and\n"
            "loss_curve.png. Example: bulletdrive train data_dir=data/sim out_dir=runs/det epochs=16"
        )
        return 0
    import torch

    from perception.detection.model import DetectorConfig
    from perception.training.train import TrainSettings, train
    from sim.app import config as C

    cfg, _ = C.load("train", args)
    keys = {f for f in TrainSettings.__dataclass_fields__ if f != "model"} | {"model", "threads"}
    C.check_keys(cfg, keys)
    plain = {k: C.plain(cfg, k) if k in ("model", "augment") else cfg[k] for k in keys}
    try:
        model = DetectorConfig(**plain.pop("model"))
        torch.set_num_threads(int(plain.pop("threads")))
        settings = TrainSettings(
            model=model, seed=C.seed_of(cfg), **{k: v for k, v in plain.items() if k != "seed"}
        )
    except (TypeError, ValueError) as err:
        raise C.ConfigError(f"train: {err}") from None
    result = train(settings)
    last = result["history"][-1] if result["history"] else None
    if last:
        print(
            f"epoch {last['epoch']}: train loss {last['train']['total']:.4f}, val loss {last['val']['total']:.4f}"
        )
    print(f"model: {settings.out_dir}/model.pt (history.json, loss_curve.png beside it)")
    return 0


def cmd_detect_eval(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: bulletdrive detect-eval [OVERRIDES...]\n\n"
            "COCO mAP@[.5:.95], AP50, AP75 (pycocotools) per class and per slice, a PR plot and the\n"
            "localisation error by distance band (conf/detect_eval.yaml).\n"
            "Example: bulletdrive detect-eval checkpoint=runs/detector/model.pt data_dir=data/sim"
        )
        return 0
    import torch

    from perception.evaluation.detect_eval import detect_eval
    from sim.app import config as C

    keys = {
        "checkpoint",
        "data_dir",
        "split",
        "out_dir",
        "batch_size",
        "score_threshold",
        "device",
        "threads",
    }
    cfg, _ = C.load("detect_eval", args)
    C.check_keys(cfg, keys)
    torch.set_num_threads(int(cfg.threads))
    results = detect_eval(
        str(cfg.checkpoint),
        str(cfg.data_dir),
        str(cfg.split),
        str(cfg.out_dir),
        int(cfg.batch_size),
        float(cfg.score_threshold),
        str(cfg.device),
    )
    print(results["table"])
    print(f"results: {cfg.out_dir}/detect_eval.json, detect_eval.txt, pr_curve.png")
    return 0


def cmd_evaluate(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: bulletdrive evaluate [OVERRIDES...]\n\n"
            "Run every scenario x seed x perceiver of a suite (conf/suite/) and write one run folder\n"
            "per run plus report.md / report.json / PNG plots in out_dir (conf/evaluate.yaml).\n"
            "Re-running the same command skips finished runs and retries failed ones.\n"
            "  suite=standard|smoke   seeds=N (1..N) or seeds=[3,7]   perception=ground_truth,noisy,cnn\n"
            "  workers=2   backend=local|ray   ray_address=auto   timeout_s=600   out_dir=FOLDER\n"
            "  scorer=carla-leaderboard-2.0|carla-leaderboard-2.1|nuplan-closed-loop-weighted-average\n"
            "Example: bulletdrive evaluate suite=standard seeds=20 perception=ground_truth,cnn"
        )
        return 0
    from sim.app.evaluate import evaluate

    records, path = evaluate(args)
    errors = [r for r in records if r["status"] != "ok"]
    print(f"{len(records) - len(errors)} runs ok, {len(errors)} errors")
    for r in errors[:10]:
        print(f"  error: {r['run_dir']}: {r['error']}")
    print(f"report: {path}")
    return 1 if errors else 0


def cmd_replay(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(
            "usage: bulletdrive replay RUN_DIR [--no-video]\n\n"
            "Recompute every score of a finished run from RUN_DIR/log.npz (no simulation), compare\n"
            "them with RUN_DIR/metrics.json, and re-render a bird's-eye video (RUN_DIR/replay.mp4)."
        )
        return 0 if args else 2
    from perception.files import write_json
    from sim.record import replay

    run = replay.load_run(args[0])
    rescored = replay.rescore(run)
    diff = replay.differences(rescored, run.metrics)
    write_json(run.run_dir / "replay_metrics.json", rescored)
    print(
        f"{rescored['scenario']} seed {rescored['seed']} ({rescored['perception']}): driving score "
        f"{rescored['driving_score']:.1f} ({rescored['scorer']}), CARLA 2.1 "
        f"{rescored['carla_v2_1']['driving_score']:.1f}, nuPlan {rescored['nuplan']['score']:.1f}"
    )
    print(
        "scores match metrics.json" if not diff else f"scores differ from metrics.json in: {', '.join(diff)}"
    )
    if "--no-video" not in args[1:]:
        n = replay.render(run, run.run_dir / "replay.mp4")
        print(f"video: {run.run_dir / 'replay.mp4'} ({n} frames)")
    return 1 if diff else 0


COMMANDS = {
    "drive": cmd_drive,
    "scenarios": cmd_scenarios,
    "data": cmd_data,
    "train": cmd_train,
    "detect-eval": cmd_detect_eval,
    "evaluate": cmd_evaluate,
    "replay": cmd_replay,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        return _err(f"unknown command '{command}'; commands: {', '.join(COMMANDS)}")
    try:
        return COMMANDS[command](args)
    except InputError as err:
        return _err(str(err))
    except yaml.YAMLError as err:
        return _err(f"malformed YAML: {str(err).splitlines()[0]}")
    except KeyboardInterrupt:
        return _err("interrupted; files already written are complete")


if __name__ == "__main__":
    sys.exit(main())

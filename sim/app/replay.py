"""`bulletdrive replay`: a finished run's scores recomputed from its log (sim/record/replay.py), and
its bird's-eye video re-rendered, without simulating."""

from __future__ import annotations

HELP = """usage: bulletdrive replay RUN_DIR [--no-video]

Recompute every score of a finished run from RUN_DIR/log.npz (no simulation), compare
them with RUN_DIR/metrics.json, and re-render a bird's-eye video (RUN_DIR/replay.mp4)."""


def run(args: list[str]) -> int:
    if not args:
        print(HELP)
        return 2
    from perception.files import write_json
    from sim.app.config import check_out_dir
    from sim.record import replay

    run = replay.load_run(args[0])
    check_out_dir(run.run_dir, "RUN_DIR")  # replay_metrics.json and replay.mp4 go there
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

"""Self-supervised pretraining against none, at equal wall time (issue 14): the mAP each buys.

(a) `bulletdrive pretrain` (masked images, no labels) for P seconds, then `bulletdrive train
    init_checkpoint=.../pretrained.pt` for the rest of T seconds;
(b) `bulletdrive train` from a fresh init for T seconds;
on the same data, with the same seed and the same settings (conf/pretrain.yaml, conf/train.yaml:
each run's cosine schedule ends with its time budget), then `bulletdrive detect-eval` (pycocotools
mAP, AP50, AP75) of both model.pt files on an evaluation split. The commands run in this process,
one after the other, so neither arm pays a process start. What counts as wall time is each command
as a whole (data checks, epochs, val losses, checkpoints), measured here: the fine-tune's
max_seconds is T minus what the pretraining took, and the JSON records every phase's seconds.
With several --seeds, each seed runs both arms (in turn first) and the JSON gives the mean and each
seed's figures.

    .venv/bin/python benchmarks/ssl_compare.py --data data/sim --eval-data data/unseen \\
        --total-seconds 600 --pretrain-seconds 180 [--seeds 0] [--model small] [--threads 2] \\
        [--work runs/ssl_compare] [--out benchmarks/results/ssl_compare.json] \\
        [--train-set KEY=VALUE ...] [--pretrain-set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# The commands import torch and the training code inside run(): imported here, before any clock
# starts, or the arm timed first would pay for it.
import perception.evaluation.detect_eval  # noqa: F401
import perception.training.pretrain  # noqa: F401
import perception.training.train  # noqa: F401
from perception.files import write_json
from sim.app import detect_eval, pretrain, train

EPOCHS = 10_000  # more than fit: the time budget ends every run


def timed(command, args: list[str]) -> float:
    """Run a command module's `run(args)` here; its wall time [s]. A failure stops the benchmark."""
    t0 = time.perf_counter()
    code = command.run(args)
    if code != 0:
        sys.exit(f"{command.__name__} {' '.join(args)} exited with {code}")
    return time.perf_counter() - t0


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "history.json").read_text())


def evaluate(model: Path, args, folder: Path) -> dict:
    """pycocotools figures of `model` on the evaluation split (the tables go to folder, not stdout)."""
    overrides = [f"checkpoint={model}", f"data_dir={args.eval_data}", f"split={args.eval_split}"]
    with contextlib.redirect_stdout(io.StringIO()):
        timed(detect_eval, [*overrides, f"out_dir={folder}", f"threads={args.threads}"])
    overall = json.loads((folder / "detect_eval.json").read_text())["overall"]
    return {k: overall[k] for k in ("AP", "AP50", "AP75", "n_gt", "AP50_per_class")}


def arm(name: str, seed: int, args, work: Path) -> dict:
    """One arm for one seed: its phases' seconds and steps, its last val loss, its COCO figures."""
    common = [f"model={args.model}", f"data_dir={args.data}", f"seed={seed}", f"threads={args.threads}"]
    common += [f"epochs={EPOCHS}", "resume=false"]
    folder = work / f"seed{seed}" / name
    record: dict = {}
    init = []
    fine_tune_s = args.total_seconds
    if name == "pretrained":
        pre = folder / "pretrain"
        budget = [f"max_seconds={args.pretrain_seconds}", *args.pretrain_set]
        record["pretrain_s"] = round(timed(pretrain, [*common, f"out_dir={pre}", *budget]), 1)
        record["pretrain_steps"] = history(pre)[-1]["step"]
        record["pretrain_val_l1"] = history(pre)[-1]["val"]["total"]
        fine_tune_s = max(args.total_seconds - record["pretrain_s"], 1.0)
        init = [f"init_checkpoint={pre / 'pretrained.pt'}"]
    out = folder / "train"
    budget = [f"max_seconds={fine_tune_s}", *init, *args.train_set]
    record["train_s"] = round(timed(train, [*common, f"out_dir={out}", *budget]), 1)
    record["train_steps"] = history(out)[-1]["step"]
    record["train_val_loss"] = history(out)[-1]["val"]["total"]
    record["total_s"] = round(record.get("pretrain_s", 0) + record["train_s"], 1)
    record.update(evaluate(out / "model.pt", args, folder / "eval"))
    print(
        f"seed {seed} {name}: AP {record['AP']:.3f}, AP50 {record['AP50']:.3f} after {record['total_s']:.0f} s "
        f"({record.get('pretrain_steps', 0)} pretrain + {record['train_steps']} train steps)"
    )
    return record


def summary(runs: list[dict]) -> dict:
    """Means over seeds of each arm's AP, AP50 and seconds, and pretrained minus scratch."""
    mean = {
        name: {k: statistics.mean(r[name][k] for r in runs) for k in ("AP", "AP50", "AP75", "total_s")}
        for name in ("pretrained", "scratch")
    }
    for k in ("AP", "AP50", "AP75"):
        mean[f"delta_{k}"] = mean["pretrained"][k] - mean["scratch"][k]
    return mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/sim", help="the training dataset (both arms)")
    ap.add_argument("--eval-data", default="data/unseen", help="the evaluation dataset")
    ap.add_argument("--eval-split", default="val")
    ap.add_argument("--total-seconds", type=float, default=600.0, help="T: each arm's wall time [s]")
    ap.add_argument("--pretrain-seconds", type=float, default=180.0, help="P: arm (a)'s pretraining [s]")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--model", default="small", help="conf/model option")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="runs/ssl_compare", help="the runs' folders")
    ap.add_argument("--out", default="benchmarks/results/ssl_compare.json")
    ap.add_argument("--train-set", nargs="*", default=[], help="more `bulletdrive train` overrides")
    ap.add_argument("--pretrain-set", nargs="*", default=[], help="more `bulletdrive pretrain` overrides")
    args = ap.parse_args()
    if not 0 < args.pretrain_seconds < args.total_seconds:
        ap.error("--pretrain-seconds must be in (0, --total-seconds)")
    work = Path(args.work)
    runs = []
    for i, seed in enumerate(args.seeds):
        order = ("scratch", "pretrained") if i % 2 == 0 else ("pretrained", "scratch")  # the machine drifts
        runs.append({"seed": seed, **{name: arm(name, seed, args, work) for name in order}})
    mean = summary(runs)
    print(
        f"mean over {len(runs)} seed(s): pretrained AP {mean['pretrained']['AP']:.3f} AP50 "
        f"{mean['pretrained']['AP50']:.3f}; scratch AP {mean['scratch']['AP']:.3f} AP50 "
        f"{mean['scratch']['AP50']:.3f}; delta AP {mean['delta_AP']:+.3f}, AP50 {mean['delta_AP50']:+.3f}"
    )
    write_json(
        args.out,
        {
            "command": " ".join(sys.argv),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "threads": args.threads,
            "settings": {k: v for k, v in vars(args).items() if k not in ("out", "work")},
            "note": "each arm's total_s is its commands' whole wall time; (a) = pretrain then fine-tune",
            "mean": mean,
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Ablation of the training-time robustness options: each one's effect on clean AP, mPC and rPC.

Every variant fine-tunes the same starting model for the same number of epochs with one change to
the augmentation or regulariser, then runs the corruption benchmark (`bulletdrive robustness`) on the
same val split. The control is the same fine-tune with no change (no corruptions, photometric jitter
on), so that the extra epochs alone are not mistaken for an option's effect. The starting model is
the detector shipped before issue 14, trained without corruptions:
`git show 7435b4b:perception/weights/centernet_small.pt > runs/previous_shipped.pt`.

    .venv/bin/python benchmarks/robust_ablation.py [--init runs/previous_shipped.pt] [--epochs 2] [--data data/sim]
        [--eval data/unseen] [--max-images 300] [--only NAME ...] [--out benchmarks/results/robust_ablation.json]

Each variant's run folder is runs/ablation/NAME (resumable: a finished fine-tune is not redone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from perception.files import write_json

# name -> the train overrides that make it (each names its corruption probability)
NO_CORRUPTIONS = ["augment.corrupt_p=0"]
PHOTOMETRIC_OFF = ["augment.jitter=0", "augment.hue_shift_deg=0", "augment.noise_std=0"]
VARIANTS = {
    "control": NO_CORRUPTIONS,  # photometric jitter on, as the model it starts from was trained
    "no_photometric": NO_CORRUPTIONS + PHOTOMETRIC_OFF,
    "corruptions": ["augment.corrupt_p=0.5"],
    "dropblock": NO_CORRUPTIONS + ["dropblock.drop_p=0.1"],
    "corruptions_dropblock": ["augment.corrupt_p=0.5", "dropblock.drop_p=0.1"],
}
CLI = [sys.executable, "-m", "sim.app.cli"]


def run(args: list[str]) -> None:
    print("$ bulletdrive", " ".join(args), flush=True)
    subprocess.run([*CLI, *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", default="runs/previous_shipped.pt", help="the model every variant starts from")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--data", default="data/sim")
    ap.add_argument("--eval", default="data/unseen")
    ap.add_argument("--max-images", type=int, default=300)
    ap.add_argument("--only", nargs="*", default=list(VARIANTS))
    ap.add_argument("--out", default="benchmarks/results/robust_ablation.json")
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text())["variants"] if out.exists() else {}
    for name in args.only:
        folder = Path("runs/ablation") / name
        t0 = time.perf_counter()
        run(["train", f"init_checkpoint={args.init}", f"epochs={args.epochs}", f"lr={args.lr}",
             "warmup_steps=50", f"data_dir={args.data}", f"out_dir={folder}", *VARIANTS[name]])  # fmt: skip
        train_s = time.perf_counter() - t0
        run(["robustness", f"checkpoint={folder / 'model.pt'}", f"data_dir={args.eval}",
             f"max_images={args.max_images}", f"out_dir={folder / 'robustness'}"])  # fmt: skip
        r = json.loads((folder / "robustness" / "robustness.json").read_text())
        results[name] = {
            "overrides": VARIANTS[name],
            "clean_AP": r["clean"]["AP"],
            "clean_AP50": r["clean"]["AP50"],
            **{k: r[k] for k in ("mPC", "rPC", "mPC50", "rPC50")},
            "AP_per_kind": {k: v["AP"] for k, v in r["per_kind"].items()},
            "train_s": round(train_s),
        }
        print(name, json.dumps(results[name]), flush=True)
        write_json(
            out, {"setting": vars(args), "variants": results}
        )  # after each: a killed run keeps its rows
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

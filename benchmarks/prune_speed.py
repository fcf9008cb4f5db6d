"""What structured pruning buys on the CPU: parameters, conv MACs and ms per frame of the shipped
detector and of its pruned copies, each run as the `Detector` runs it (BatchNorm folded,
channels_last, TorchScript-frozen), at batch 1 and batch 8.

The pruned copies are made here from the shipped weights without a fine-tune (the speed does not
depend on the weights' values), one per `--variants` entry MACS_RATIO:ROUND_TO; `--pruned PATH`
times a finished pruned checkpoint (e.g. runs/pruned/model.pt) beside them. Every round measures
every model once, in turn; the figures are medians over rounds, and each speed-up is the median of
the per-round ratios to the shipped model (this machine's speed drifts over seconds).

    .venv/bin/python benchmarks/prune_speed.py [--variants 0.5:8 0.5:16 0.5:1] [--pruned runs/pruned/model.pt]
        [--rounds 7] [--threads 2] [--out benchmarks/results/prune_speed.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import per_frame_ms  # benchmarks/timing.py

from perception.detection.detector import Detector, resolve_checkpoint
from perception.detection.model import load_checkpoint, save_checkpoint
from perception.detection.prune import prune, summary
from perception.files import write_json
from perception.types import CLASSES

REPEATS = 40  # timed calls per model per round (batch 1; a fifth of it at batch 8)


def detectors(checkpoint: str, variants: list[str], pruned: str | None, folder: Path, threads: int) -> tuple:
    """({name: Detector}, {name: summary against the shipped model}) for the shipped model, each
    variant (pruned here, written to `folder`) and the `pruned` checkpoint."""
    source, _, _ = load_checkpoint(resolve_checkpoint(checkpoint))
    dets = {"shipped": Detector(checkpoint, device="cpu", threads=threads)}
    figures = {"shipped": summary(source, source)}
    for variant in variants:
        ratio, round_to = variant.split(":")
        model = prune(source, float(ratio), int(round_to))
        path = folder / f"pruned_{ratio}_{round_to}.pt"
        save_checkpoint(path, model, model.config, {"classes": list(CLASSES)})
        name = f"pruned macs_ratio={ratio} round_to={round_to}"
        dets[name] = Detector(str(path), device="cpu", threads=threads)
        figures[name] = summary(source, model)
    if pruned:
        dets["pruned checkpoint"] = Detector(pruned, device="cpu", threads=threads)
        figures["pruned checkpoint"] = summary(source, load_checkpoint(resolve_checkpoint(pruned))[0])
    return dets, figures


def timings(dets: dict[str, Detector], rounds: int) -> dict:
    """Per model: detect() at batch 1 and 8 and the frozen forward at batch 1 [ms per frame],
    medians over interleaved rounds, and the speed-ups against the shipped model."""
    config = dets["shipped"].config
    h, w = config.input_height, config.input_width
    rng = np.random.default_rng(0)
    frames = {b: rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8) for b in (1, 8)}
    x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in dets}
    for _ in range(rounds):
        for name, det in dets.items():
            rec = runs[name]
            for b, f in frames.items():
                ms = per_frame_ms(
                    lambda f=f, det=det: det.detect(f, 0.3), b, REPEATS if b == 1 else REPEATS // 5
                )
                rec.setdefault(f"detect_ms_per_frame_batch{b}", []).append(round(ms, 3))
            with torch.inference_mode():
                ms = per_frame_ms(lambda m=det.model: m(x), 1, REPEATS)
            rec.setdefault("forward_ms_batch1", []).append(round(ms, 3))
    out = {}
    for name, rec in runs.items():
        out[name] = {k: statistics.median(v) for k, v in rec.items()}
        for k, v in rec.items():
            ratios = [a / b for a, b in zip(runs["shipped"][k], v, strict=True)]
            out[name][f"speedup_{k.replace('_ms_per_frame', '').replace('_ms', '')}"] = round(
                statistics.median(ratios), 3
            )
        out[name]["rounds"] = rec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="shipped")
    ap.add_argument("--variants", nargs="*", default=["0.5:8", "0.5:16", "0.5:1"], help="MACS_RATIO:ROUND_TO")
    ap.add_argument("--pruned", default=None, help="a pruned checkpoint to time beside them")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/prune_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        dets, figures = detectors(args.checkpoint, args.variants, args.pruned, Path(folder), args.threads)
        times = timings(dets, args.rounds)
    models = {name: {**figures[name], **times[name]} for name in dets}
    for name, m in models.items():
        print(
            f"{name}: MACs {m['after']['macs'] / 1e6:.1f} M ({m['macs_ratio']:.3f}), params "
            f"{m['after']['params'] / 1e6:.3f} M, detect batch 1 {m['detect_ms_per_frame_batch1']:.2f} ms "
            f"(x{m['speedup_detect_batch1']:.2f}), batch 8 {m['detect_ms_per_frame_batch8']:.2f} ms/frame "
            f"(x{m['speedup_detect_batch8']:.2f}), forward {m['forward_ms_batch1']:.2f} ms"
        )
    write_json(
        args.out,
        {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "threads": args.threads,
            "rounds": args.rounds,
            "note": "pruned copies without a fine-tune (speed does not depend on the weights' values)",
            "models": models,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Deployment of the detector on the CPU: torch fp32 (the frozen TorchScript path the loop runs by
default), onnxruntime fp32 and onnxruntime int8 (static QDQ, perception/detection/quantize.py), and
for comparison int8 with every node quantised (onnxruntime's default). For each: ms/frame of
`Detector.detect` (forward and decode) at batch 1 and 8, on 1 thread (the closed loop's setting) and
2, in interleaved rounds in one process (medians; the ratios are medians of per-round ratios); the
time per op type of each onnxruntime model (its profiler, batch 1, 1 thread); and COCO mAP / AP50 /
AP75 of each on val splits through detect-eval (pycocotools). With --pruned (a `bulletdrive prune`
model.pt), its torch fp32, onnxruntime fp32 and int8 variants too, and `model_card`: the model
card's rows (fp32, pruned, int8, pruned+int8: params, MACs, ms/frame, mAP on the first --eval set).

    .venv/bin/python benchmarks/deploy_speed.py [--pruned runs/pruned/model.pt] [--calibration-data data/sim]
        [--eval data/unseen data/sim] [--out benchmarks/results/deploy_speed.json]

The models are made here as `bulletdrive export` makes them (int8 calibrated on 200 frames of the
calibration data's train split) and written to --models (default: a temporary folder).

Notes (what the profile showed, 2 cores, 1 thread, batch 1; results/deploy_speed.json holds the run):
- int8 with every node quantised was ~1.7x slower than fp32, not faster. onnxruntime runs its int8
  convs in NHWC and moves the input's layout transpose up to the graph input, so the normalisation
  (a multiply-add broadcast over 3 channels) runs as QLinearMul / QLinearAdd over the innermost axis
  of size 3: ~3 ms of ~5. Kept in float it still runs in NHWC (~1.1 ms for the Mul and Add).
- The first conv (3 input channels) took ~0.4 ms in int8 against ~0.13 ms in float.
- Keeping the nodes up to and including the first conv in float (quantize.py `float_nodes`) leaves
  the float Mul/Add in NCHW before it (~0.05 ms) and gives the int8 convs the rest: the whole
  forward then takes about half of fp32's.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from timing import per_frame_ms  # benchmarks/timing.py

from perception.coco import load_coco
from perception.detection.detector import SHIPPED, Detector, resolve_checkpoint
from perception.detection.export import save_onnx, to_onnx
from perception.detection.model import load_checkpoint
from perception.detection.prune import conv_macs
from perception.detection.quantize import CALIBRATION_SPLIT, calibration_frames, quantize_int8
from perception.evaluation.detect_eval import detect_eval
from perception.files import write_json

OPSET = 18
BATCHES = (1, 8)
THREADS = (1, 2)
VARIANTS = ("torch_fp32", "onnxruntime_fp32", "onnxruntime_int8", "onnxruntime_int8_all_nodes")


def make_models(
    checkpoint: str, pruned: str | None, data_dir: str, images: int, folder: Path
) -> dict[str, str]:
    """The ONNX files of the variants, as `bulletdrive export` writes them; name -> checkpoint.
    With `pruned` (a `bulletdrive prune` model.pt), its torch and int8 variants too."""
    split = load_coco(data_dir, CALIBRATION_SPLIT)
    frames = calibration_frames(split, images, (192, 320))
    source = {"data_dir": data_dir, "split": CALIBRATION_SPLIT}
    paths = {}
    for prefix, ckpt in (("", checkpoint), ("pruned_", pruned)):
        if ckpt is None:
            continue
        fp32 = to_onnx(resolve_checkpoint(ckpt), OPSET)
        paths[f"{prefix}torch_fp32"] = ckpt
        variants = [("onnxruntime_fp32", fp32), ("onnxruntime_int8", quantize_int8(fp32, frames, source))]
        if not prefix:
            variants.append(
                ("onnxruntime_int8_all_nodes", quantize_int8(fp32, frames, source, keep_float=False))
            )
        for name, model in variants:
            paths[prefix + name] = str(folder / f"{prefix}{name}.onnx")
            save_onnx(model, paths[prefix + name])
    return paths


def size_of(paths: dict[str, str]) -> dict[str, dict]:
    """Parameters and conv MACs per frame of each variant's source model (int8 runs the same MACs)."""
    out = {}
    for v, p in paths.items():
        ckpt = paths["pruned_torch_fp32" if v.startswith("pruned_") else "torch_fp32"]
        model, config, _ = load_checkpoint(resolve_checkpoint(ckpt))
        out[v] = {
            "params": sum(t.numel() for t in model.parameters()),
            "macs": conv_macs(model, config.input_height, config.input_width),
            "file_bytes": Path(resolve_checkpoint(p)).stat().st_size,
        }
    return out


def model_card_table(sizes: dict, timing: dict, metrics: dict, data_dir: str) -> list[dict]:
    """The model card's rows: fp32, pruned, int8, pruned+int8 (those that were measured)."""
    rows = []
    for name, v in (("fp32", "torch_fp32"), ("pruned", "pruned_torch_fp32"),
                    ("int8", "onnxruntime_int8"), ("pruned+int8", "pruned_onnxruntime_int8")):  # fmt: skip
        if v in sizes:
            ms = timing["ms_per_frame"]
            rows.append({
                "model": name, "variant": v, **sizes[v],
                "ms_per_frame_threads1_batch1": ms["threads1_batch1"][v],
                "ms_per_frame_threads2_batch1": ms["threads2_batch1"][v],
                "AP": metrics[data_dir][v]["AP"], "AP50": metrics[data_dir][v]["AP50"],
            })  # fmt: skip
    return rows


def detector(variant: str, path: str, threads: int | None) -> Detector:
    runtime = "torch" if "torch_" in variant else "onnxruntime"
    return Detector(path, device="cpu", threads=threads, runtime=runtime)


def speed(paths: dict[str, str], rounds: int, repeats: int) -> dict:
    """ms/frame of detect() per threads, batch and variant, rounds interleaved; ratios to int8."""
    rng = np.random.default_rng(0)
    frames = {b: rng.integers(0, 255, (b, 192, 320, 3), dtype=np.uint8) for b in BATCHES}
    detectors = {(v, t): detector(v, p, t) for v, p in paths.items() for t in THREADS}
    runs: dict[str, list[float]] = {}
    for _ in range(rounds):
        for t in THREADS:
            for b in BATCHES:
                for v in paths:
                    ms = per_frame_ms(lambda d=detectors[v, t], f=frames[b]: d.detect(f, 0.3), b, repeats)
                    runs.setdefault(f"threads{t}_batch{b}_{v}", []).append(round(ms, 3))
    table = {}
    for t in THREADS:
        for b in BATCHES:
            key = f"threads{t}_batch{b}"
            row = {v: statistics.median(runs[f"{key}_{v}"]) for v in paths}
            for base, v in [("torch_fp32", "onnxruntime_int8"), ("onnxruntime_fp32", "onnxruntime_int8")] + [
                ("torch_fp32", v) for v in paths if v.startswith("pruned_")
            ]:
                per_round = [x / y for x, y in zip(runs[f"{key}_{base}"], runs[f"{key}_{v}"], strict=True)]
                name = "int8" if v == "onnxruntime_int8" else v
                row[f"speedup_{name}_vs_{base}"] = round(statistics.median(per_round), 2)
            table[key] = row
            print(key, row)
    return {"ms_per_frame": table, "rounds": runs}


def op_profile(path: str) -> dict[str, float]:
    """Microseconds per frame by op type of one onnxruntime model (batch 1, 1 thread, 50 runs)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).integers(0, 255, (1, 192, 320, 3), dtype=np.uint8)
        for _ in range(50):
            session.run(None, {"images": x})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"]["op_name"]
            per_op[op] = per_op.get(op, 0.0) + e["dur"] / 50
    return {op: round(us) for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])}


def accuracy(paths: dict[str, str], datasets: list[str]) -> dict:
    """COCO metrics of each variant on each dataset's val split (detect-eval, 2 threads)."""
    out = {}
    for data_dir in datasets:
        out[data_dir] = {}
        for v, p in paths.items():
            with tempfile.TemporaryDirectory() as tmp:
                runtime = "torch" if "torch_" in v else "onnxruntime"
                r = detect_eval(
                    p,
                    data_dir,
                    "val",
                    tmp,
                    batch_size=16,
                    score_threshold=0.01,
                    recall_score_threshold=0.35,
                    min_group_boxes=50,
                    device="cpu",
                    runtime=runtime,
                )
            o = r["overall"]
            out[data_dir][v] = {k: round(o[k], 4) for k in ("AP", "AP50", "AP75")}
            out[data_dir][v]["AP50_per_class"] = {c: round(a, 4) for c, a in o["AP50_per_class"].items()}
            print(data_dir, v, out[data_dir][v])
        base, int8 = out[data_dir]["torch_fp32"], out[data_dir]["onnxruntime_int8"]
        out[data_dir]["int8_mAP_lost"] = round(base["AP"] - int8["AP"], 4)
        out[data_dir]["int8_AP50_lost"] = round(base["AP50"] - int8["AP50"], 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=SHIPPED)
    ap.add_argument(
        "--pruned", default=None, help="a pruned model.pt (bulletdrive prune) to measure beside it"
    )
    ap.add_argument("--calibration-data", default="data/sim")
    ap.add_argument("--calibration-images", type=int, default=200)
    ap.add_argument("--eval", nargs="*", default=["data/unseen", "data/sim"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--models", default=None, help="folder for the ONNX files (default: temporary)")
    ap.add_argument("--out", default="benchmarks/results/deploy_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.models or tmp)
        paths = make_models(
            args.checkpoint, args.pruned, args.calibration_data, args.calibration_images, folder
        )
        sizes = size_of(paths)
        timing = speed(paths, args.rounds, args.repeats)
        profile = {v: op_profile(p) for v, p in paths.items() if "torch_" not in v}
        print(json.dumps(profile, indent=1))
        metrics = accuracy(paths, args.eval)
    b1 = timing["ms_per_frame"]
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {_cpu_name()}, avx512_vnni: {_has_vnni()}",
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
        "setting": f"320x192, detect() = forward + decode, medians of {args.rounds} interleaved rounds of "
        f"{args.repeats} calls; int8 calibrated on {args.calibration_images} frames of "
        f"{args.calibration_data} {CALIBRATION_SPLIT}, opset {OPSET}",
        "model_card": model_card_table(sizes, timing, metrics, args.eval[0]),
        "sizes": sizes,
        "speed": timing,
        "onnxruntime_us_per_op_type_batch1_threads1": profile,
        "accuracy_val": metrics,
        "targets": {
            "int8_speedup_batch1": 1.5,
            "int8_speedup_batch1_threads1_vs_torch": b1["threads1_batch1"]["speedup_int8_vs_torch_fp32"],
            "int8_speedup_batch1_threads1_vs_onnxruntime_fp32": b1["threads1_batch1"][
                "speedup_int8_vs_onnxruntime_fp32"
            ],
            "int8_mAP_lost_max": 0.01,
            "int8_mAP_lost": {d: m["int8_mAP_lost"] for d, m in metrics.items()},
        },
    }
    write_json(args.out, out)
    print(f"wrote {args.out}")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _has_vnni() -> bool:
    return Path("/proc/cpuinfo").exists() and "avx512_vnni" in Path("/proc/cpuinfo").read_text()


if __name__ == "__main__":
    main()

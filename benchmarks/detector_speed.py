"""Speed of the camera perception: CPU inference of the shipped detector at its input size at batch
1, 6 (a surround rig's cameras in one forward), 32 and 256 (many envs' rigs), frames per second;
the model forward three ways for comparison (TorchScript-frozen as the Detector runs it, eager
with BatchNorm folded, eager as trained), the decoding and its 3x3 peak test two ways, GPU
throughput at the same batches in fp32 and bf16 when CUDA is present, and the closed loop with
camera and CNN in simulated seconds per wall second (real-time factor): the front camera alone,
and the six cameras of sim/rig=surround6 batched (issue 13: >= 1.5x real time on 2 cores).

    .venv/bin/python benchmarks/detector_speed.py [--checkpoint shipped] [--out benchmarks/results/detector_speed.json]

Notes (the cost figures that the code's comments refer to; 2 cores, 2 torch threads):
- BatchNorm folded into the convs (perception/detection/model.py `fold_batchnorm`): forward at
  batch 1 10.7 -> 9.6 ms (results/detector_speed.json, forward_ms_batch1_eager_*).
- TorchScript freeze on the CPU (perception/detection/detector.py `frozen`): 9.6 -> 7.3 ms.
- The 3x3 peak test of `decode` as two separable passes of elementwise maxima (`max3x3`) rather
  than F.max_pool2d(x, 3, 1, 1), on the shipped model's (B, 3, 48, 80) heatmap ("decode" below,
  medians of 3 runs): batch 1 0.022 against 0.16 ms, batch 8 0.057 against 0.99 ms
  (1 thread: 0.022 / 0.23 and 0.09 / 1.98 ms); the whole decode takes 0.15 ms at batch 1. On a
  busy machine single repeats of either can take several ms (OpenMP threads waiting for a core).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import numpy as np
import torch
from timing import per_frame_ms  # benchmarks/timing.py

from perception.detection.detector import Detector, resolve_checkpoint
from perception.detection.model import OUTPUT_STRIDE, decode, fold_batchnorm, load_checkpoint, max3x3
from perception.files import write_json

LOOP_SCENARIOS = ["cut_in", "pedestrian_crossing", "dense_traffic"]
BATCHES = (1, 6, 32, 256)
RIG_BATCH = 6  # issue 13: the forward at batch 6 within RIG_BATCH_TARGET x the batch-1 time
RIG_BATCH_TARGET = 4.0
SURROUND_TARGET = 1.5  # x real time, the six-camera loop


def cpu_figures(det: Detector, rounds: int = 3) -> dict:
    """Medians over `rounds` interleaved rounds (the machine's speed drifts by +-20 % over minutes):
    detect() at each of BATCHES (per frame, and frames per second), and the model forward three ways."""
    h, w = det.config.input_height, det.config.input_width
    rng = np.random.default_rng(0)
    frames = {b: rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8) for b in BATCHES}
    x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    raw, _, _ = load_checkpoint(det.path)  # as trained
    raw = raw.to(memory_format=torch.channels_last)
    folded = fold_batchnorm(raw)
    runs: dict[str, list[float]] = {}
    for _ in range(rounds):
        for b, f in frames.items():
            ms = per_frame_ms(lambda f=f: det.detect(f, 0.3), b, repeats=max(3, 30 // b))
            runs.setdefault(f"detect_ms_per_frame_batch{b}", []).append(round(ms, 2))
        with torch.inference_mode():
            for name, model in (
                ("frozen", det.model),
                ("eager_folded_bn", folded),
                ("eager_as_trained", raw),
            ):
                ms = per_frame_ms(lambda m=model: m(x), 1)
                runs.setdefault(f"forward_ms_batch1_{name}", []).append(round(ms, 2))
    out = {"threads": torch.get_num_threads(), "input": f"{w}x{h}"}
    out |= {k: statistics.median(v) for k, v in runs.items()}
    out["frames_per_s"] = {b: round(1000 / out[f"detect_ms_per_frame_batch{b}"], 1) for b in BATCHES}
    # A rig's tick: the batch of RIG_BATCH frames against one frame, in the same rounds.
    six, one = runs[f"detect_ms_per_frame_batch{RIG_BATCH}"], runs["detect_ms_per_frame_batch1"]
    ratios = [RIG_BATCH * a / b for a, b in zip(six, one, strict=True)]
    out["batch6_call_over_batch1_call"] = round(statistics.median(ratios), 2)
    out["batch6_target"] = RIG_BATCH_TARGET
    out["batch6_meets_target"] = out["batch6_call_over_batch1_call"] <= RIG_BATCH_TARGET
    return {**out, "rounds": runs}


def decode_figures(det: Detector) -> dict:
    """decode() of random head outputs at batch 1 and 8, and its 3x3 peak test two ways."""
    h, w = det.config.input_height // OUTPUT_STRIDE, det.config.input_width // OUTPUT_STRIDE
    out = {}
    with torch.inference_mode():
        for b in (1, 8):
            c = det.config.num_classes
            sizes = 2 * c if det.config.class_sizes else 2
            heads = {"heatmap": torch.randn(b, c, h, w), "size": torch.randn(b, sizes, h, w)}
            heads |= {"offset": torch.rand(b, 2, h, w), "distance": torch.randn(b, 1, h, w)}
            heat = heads["heatmap"]
            out[f"decode_ms_batch{b}"] = round(
                per_frame_ms(lambda x=heads: decode(x, max_distance_m=100.0), 1), 3
            )
            out[f"max3x3_ms_batch{b}"] = round(per_frame_ms(lambda x=heat: max3x3(x), 1), 3)
            out[f"max_pool2d_ms_batch{b}"] = round(
                per_frame_ms(lambda x=heat: torch.nn.functional.max_pool2d(x, 3, 1, 1), 1), 3
            )
    return out


def gpu_figures(checkpoint: str, frames: np.ndarray | None = None) -> dict | None:
    """On CUDA: per-frame time and frames per second at each of BATCHES, four ways (fp32 eager, bf16
    eager, bf16 replayed as CUDA graphs (perception.cuda_graphs=true), bf16 torch.compile), both for
    the model forward alone (input already on the GPU) and for detect() (uint8 frames from the host
    through page-locked memory, decoded boxes back). The host-to-GPU copy of a batch from pageable
    against page-locked memory. With `frames` (real (N, H, W, 3) camera frames), each way's
    detections against fp32 eager's: the graphs must give bf16 eager's boxes exactly."""
    if not torch.cuda.is_available():
        return None
    ways = {
        "fp32_eager": dict(cuda_graphs=False, autocast=False),
        "bf16_eager": dict(cuda_graphs=False),
        "bf16_cuda_graphs": dict(cuda_graphs=True),
        "bf16_compile": dict(compile=True),
    }
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    rng = np.random.default_rng(0)
    _, config, _ = load_checkpoint(resolve_checkpoint(checkpoint))
    h, w = config.input_height, config.input_width
    reference = bf16_boxes = None
    for way, options in ways.items():
        autocast = options.pop("autocast", True)
        try:
            det = Detector(checkpoint, device="cuda", **options)
            det.autocast = autocast
            figures = {}
            for batch in BATCHES:
                host = rng.integers(0, 255, (batch, h, w, 3), dtype=np.uint8)
                x = torch.rand(batch, 3, h, w, device="cuda").contiguous(memory_format=torch.channels_last)

                def forward(x=x, det=det, autocast=autocast):
                    with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=autocast):
                        det.model(x)
                    torch.cuda.synchronize()

                def detect(host=host, det=det):
                    det.detect(host, 0.3)

                repeats = max(10, 200 // batch)
                if way != "bf16_cuda_graphs":  # (its forward is bf16 eager's: the graph wraps detect)
                    figures[f"forward_ms_per_frame_batch{batch}"] = round(
                        per_frame_ms(forward, batch, repeats), 4
                    )
                ms = per_frame_ms(detect, batch, repeats)
                figures[f"detect_ms_per_frame_batch{batch}"] = round(ms, 4)
                figures[f"detect_frames_per_s_batch{batch}"] = round(1000 / ms, 1)
            if frames is not None:
                boxes = [d["boxes_xyxy"] for d in det.detect(frames, 0.3)]
                if reference is None:
                    reference = boxes
                figures["detections_on_real_frames"] = int(sum(len(b) for b in boxes))
                figures["max_box_difference_px_vs_fp32"] = max(
                    (
                        float(np.abs(a - b).max())
                        for a, b in zip(boxes, reference, strict=True)
                        if len(a) == len(b) and len(a)
                    ),
                    default=0.0,
                )
                figures["frames_with_other_box_count_vs_fp32"] = sum(
                    len(a) != len(b) for a, b in zip(boxes, reference, strict=True)
                )
                if way == "bf16_eager":
                    bf16_boxes = boxes
                if way == "bf16_cuda_graphs" and bf16_boxes is not None:
                    figures["same_boxes_as_bf16_eager"] = all(
                        a.shape == b.shape and np.array_equal(a, b)
                        for a, b in zip(boxes, bf16_boxes, strict=True)
                    )
            out[way] = figures
        except Exception as error:  # noqa: BLE001 (one way's failure must not lose the others' figures)
            out[way] = f"failed: {type(error).__name__}: {error}"
        print(way, out[way], flush=True)
    for batch in (6, 256):
        host = torch.from_numpy(rng.integers(0, 255, (batch, h, w, 3), dtype=np.uint8))
        pinned = host.pin_memory()
        for name, t in (("pageable", host), ("pinned", pinned)):
            ms = per_frame_ms(lambda t=t: (t.to("cuda", non_blocking=True), torch.cuda.synchronize()), 1)
            out[f"host_to_gpu_copy_ms_batch{batch}_{name}"] = round(ms, 4)
    return out


def closed_loop(checkpoint: str, rig: str = "front", target: float = 4.0) -> dict:
    from sim.app.drive import drive  # (here: --gpu-only runs where the simulator is not installed)

    rates = {}
    for scenario in LOOP_SCENARIOS:
        overrides = [
            f"scenario={scenario}",
            "seed=1",
            "perception=cnn",
            f"perception.checkpoint={checkpoint}",
            f"sim/rig={rig}",
        ]
        result, _ = drive([*overrides, "video=false", "plot=false", "sim.camera_hz=10"], write=False)
        rates[scenario] = round(float(result.ticks["t_s"][-1]) / result.wall_s, 2)
    return {
        "setting": f"sim/rig={rig}, physics ego 120 Hz, control 20 Hz, cameras + CNN at 10 Hz, seed 1",
        "real_time_factor": rates,
        "median": statistics.median(rates.values()),
        "target": target,
        "meets_target": statistics.median(rates.values()) >= target,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="shipped")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/detector_speed.json")
    ap.add_argument("--gpu-only", action="store_true", help="only the CUDA figures")
    ap.add_argument("--frames", help="a .npy of real (N, H, W, 3) uint8 frames for the GPU parity check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frames = np.load(args.frames) if args.frames else None
    if args.gpu_only:
        gpu = gpu_figures(args.checkpoint, frames)
        if gpu is None:
            raise SystemExit("--gpu-only: no CUDA device on this machine")
        write_json(args.out, {"machine": machine(), "checkpoint": args.checkpoint, "gpu": gpu})
        print(f"wrote {args.out}")
        return
    det = Detector(args.checkpoint, device="cpu")
    cpu = cpu_figures(det)
    print(f"CPU: {cpu}")
    cpu["decode"] = decode_figures(det)
    print(f"decode: {cpu['decode']}")
    loop = closed_loop(args.checkpoint)
    print(f"closed loop with camera + CNN: {loop['real_time_factor']} x real time")
    surround = closed_loop(args.checkpoint, "surround6", SURROUND_TARGET)
    print(f"closed loop with six cameras + CNN: {surround['real_time_factor']} x real time")
    gpu = gpu_figures(args.checkpoint, frames)
    out = {
        "machine": machine(),
        "checkpoint": str(det.path),
        "cpu": {**cpu, "target_ms": 10.0, "meets_target": cpu["detect_ms_per_frame_batch1"] <= 10.0},
        "closed_loop": loop,
        "closed_loop_surround6": surround,
        "gpu": gpu if gpu is not None else "no CUDA device on this machine (see detector_speed_gpu.json)",
    }
    write_json(args.out, out)
    print(f"wrote {args.out}")


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()

"""Suite throughput of `bulletdrive evaluate` in runs per minute: the local process pool with 1 and
2 workers and the Ray backend (a local Ray instance, 2 CPUs), measured side by side, rounds
interleaved so that the ratios compare like with like on a noisy machine.

Each measurement runs the standard suite (every scenario; ground-truth perception, no clips) on
the given seeds into a fresh folder and counts the whole wall time of `run_suite`: pool or Ray
start-up, the runs, the records (sim/evaluation/jobs.py runs them).

    .venv/bin/python benchmarks/eval_speed.py [--rounds 2] [--seeds 1 2] [--out benchmarks/results/eval_speed.json]
    (a smoke test of the script: --rounds 1 --seeds 1 --scenarios follow_lead --out /tmp/eval_speed.json)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import yaml

from perception.files import write_json
from sim.evaluation import suite

SCENARIOS = yaml.safe_load(files("conf").joinpath("suite", "standard.yaml").read_text())["scenarios"]
TIMEOUT_S = yaml.safe_load(files("conf").joinpath("evaluate.yaml").read_text())["timeout_s"]  # the command's
CONFIGS = {  # name -> (workers, backend)
    "local_1_worker": (1, "local"),
    "local_2_workers": (2, "local"),
    "ray_2_workers": (2, "ray"),
}


def measure(jobs: list[suite.Job], workers: int, backend: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        records = suite.run_suite(
            jobs, Path(tmp) / "suite", workers=workers, backend=backend, timeout_s=TIMEOUT_S, clips=False
        )
        wall = time.perf_counter() - t0
    errors = [r["error"] for r in records if r["status"] != "ok"]
    if errors:
        raise RuntimeError(f"{len(errors)} runs failed, e.g. {errors[0]}")
    return {"wall_s": round(wall, 2), "runs_per_minute": round(60 * len(jobs) / wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scenarios", nargs="+", default=SCENARIOS, help="default: the standard suite's")
    ap.add_argument("--out", default="benchmarks/results/eval_speed.json")
    args = ap.parse_args()
    jobs = suite.make_jobs(args.scenarios, args.seeds, ["ground_truth"])
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for r in range(args.rounds):
        for name, (workers, backend) in CONFIGS.items():
            runs[name].append(measure(jobs, workers, backend))
            print(f"round {r + 1} {name}: {runs[name][-1]['runs_per_minute']:.1f} runs/min")
    rate = {name: statistics.median(m["runs_per_minute"] for m in ms) for name, ms in runs.items()}
    speedup = rate["local_2_workers"] / rate["local_1_worker"]
    out = {
        "suite": f"{len(args.scenarios)} scenarios x {len(args.seeds)} seeds = {len(jobs)} runs, ground truth, no clips",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "runs_per_minute": {name: round(v, 2) for name, v in rate.items()},
        "speedup_2_workers_over_1": round(speedup, 2),
        "target_speedup": 1.7,
        "meets_target": speedup >= 1.7,
        "ray_overhead_pool_over_ray": round(rate["local_2_workers"] / rate["ray_2_workers"], 2),
        "rounds": runs,
    }
    write_json(args.out, out)
    for name, v in rate.items():
        print(f"{name:16s} {v:6.1f} runs/min")
    print(
        f"2 workers / 1 worker: {speedup:.2f}x (target 1.7x); pool / Ray: {out['ray_overhead_pool_over_ray']:.2f}x"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

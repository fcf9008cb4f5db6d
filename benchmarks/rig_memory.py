"""Memory of the surround-camera loop (issue 13): a 60 s episode (town_route) with the six cameras
of sim/rig=surround6 and the CNN perceiver (physics ego, no video) must hold the process's resident
memory under 1.5 GB, and the resident memory must stay flat over 100 short episodes in one process
(no leak: PyBullet worlds, camera buffers, detectors, tracker state and run logs all released or
reused between runs).

    .venv/bin/python benchmarks/rig_memory.py [--episodes 100] [--episode-s 3] [--out benchmarks/results/rig_memory.json]

Resident memory is read from /proc/self/statm (now) and getrusage (the peak); Linux only.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource

from perception.files import write_json
from sim.app.drive import drive

RIG = ["sim/rig=surround6", "perception=cnn", "sim.ego_model=physics", "video=false", "plot=false"]
PEAK_TARGET_MB = 1536.0  # 1.5 GB
FLAT_TARGET_MB = 50.0  # growth allowed from the 10th episode to the last


def rss_mb() -> float:
    """Resident memory of this process now [MB]."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """The most resident memory this process has held so far [MB] (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--episode-s", type=float, default=3.0, help="simulated seconds of each short episode")
    ap.add_argument("--out", default="benchmarks/results/rig_memory.json")
    args = ap.parse_args()

    # 60 s of a long route through a procedural town (40 vehicles, 20 pedestrians, lights).
    result, _ = drive(["scenario=town_route", "seed=1", "scenario.duration_s=60", *RIG], write=False)
    long_run = {
        "sim_s": round(float(result.ticks["t_s"][-1]), 1),
        "real_time_factor": round(float(result.ticks["t_s"][-1]) / result.wall_s, 2),
        "peak_rss_mb": round(peak_mb(), 1),
        "rss_after_mb": round(rss_mb(), 1),
    }
    print(f"60 s episode: {long_run}", flush=True)

    marks = {}
    for k in range(1, args.episodes + 1):
        scenario = ("dense_traffic", "busy_street", "cut_in")[k % 3]
        drive(
            [f"scenario={scenario}", f"seed={k}", f"scenario.duration_s={args.episode_s}", *RIG], write=False
        )
        if k in (1, 10, args.episodes // 2, args.episodes):
            marks[k] = round(rss_mb(), 1)
            print(f"after episode {k}: {marks[k]} MB", flush=True)
    growth = marks[args.episodes] - marks[min(10, args.episodes)]
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "setting": " ".join(RIG),
        "episode_60s": {
            **long_run,
            "target_peak_mb": PEAK_TARGET_MB,
            "meets_target": long_run["peak_rss_mb"] < PEAK_TARGET_MB,
        },
        "episodes": {
            "count": args.episodes,
            "episode_s": args.episode_s,
            "rss_mb_after_episode": marks,
            "growth_mb_from_episode_10": round(growth, 1),
            "target_growth_mb": FLAT_TARGET_MB,
            "meets_target": growth < FLAT_TARGET_MB,
        },
        "peak_rss_mb": round(peak_mb(), 1),
    }
    write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

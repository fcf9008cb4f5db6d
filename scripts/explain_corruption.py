"""Where the detector looks for the objects it loses under a corruption (issue 14, the model card's
"What the maps showed"): HiResCAM maps (perception/explain.py defaults) of every labelled box's
centre logit, on the clean frame and on the same frame corrupted, for one or more checkpoints.

Per checkpoint, class and condition: the median score at the box's centre cell, the share of boxes
whose score is >= the closed loop's threshold (0.35), and where the map's mass lies: inside the box,
in the ring around it (the box grown by its own size on each side: the road under it, its shadow,
what stands beside it) and elsewhere (the sky, the horizon, the lane markings far away).

Usage: .venv/bin/python scripts/explain_corruption.py --checkpoints shipped runs/x/model.pt
           [--data data/unseen] [--corruptions brightness:3 low_light:2 fog:3 motion_blur:3]
           [--frames 60] [--out runs/explain_corruption.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from perception.coco import load_coco, read_image, xywh_to_xyxy
from perception.evaluation.corruptions import corrupt
from perception.explain import Explainer, Target, box_mask
from perception.files import write_json
from perception.types import CLASSES

SCORE_THRESHOLD = 0.35  # conf/perception/cnn.yaml


def frames_and_targets(data, count: int) -> list[tuple[np.ndarray, list[Target]]]:
    """`count` evenly spaced frames that hold labelled (non-crowd) boxes, with a target per box."""
    chosen = []
    for image in data.images:
        boxes = [a for a in data.annotations.get(image["id"], []) if not a["iscrowd"]]
        if boxes:
            chosen.append((image, boxes))
    picked = [chosen[i] for i in np.linspace(0, len(chosen) - 1, min(count, len(chosen))).astype(int)]
    out = []
    for image, boxes in picked:
        rgb = read_image(data, image)
        h, w = rgb.shape[:2]
        xyxy = xywh_to_xyxy(np.array([a["bbox"] for a in boxes], np.float64))
        out.append(
            (rgb, [Target.of_box(b, a["category_id"] - 1, h, w) for b, a in zip(xyxy, boxes, strict=True)])
        )
    return out


def where(e) -> tuple[float, float]:
    """(share of the map in the box, share in the ring around it) of one explanation."""
    h, w = e.cam.shape
    x0, y0, x1, y1 = e.target.box_xyxy
    bw, bh = x1 - x0, y1 - y0
    inside = box_mask(e.target.box_xyxy, h, w)
    grown = box_mask((x0 - bw, y0 - bh, x1 + bw, y1 + bh), h, w)
    total = float(e.cam.sum())
    if total == 0:
        return float("nan"), float("nan")
    return float(e.cam[inside].sum()) / total, float(e.cam[grown & ~inside].sum()) / total


def measure(explainer: Explainer, frames, condition: str, seed: int = 0) -> dict:
    """Per class: boxes, median score, found (score >= threshold), median map shares."""
    rows: dict[str, list[tuple[float, float, float]]] = {c: [] for c in CLASSES}
    rng = np.random.default_rng(seed)
    for rgb, targets in frames:
        if condition != "clean":
            kind, severity = condition.split(":")
            rgb = corrupt(rng, rgb, kind, float(severity))
        for e in explainer.explain(rgb, targets):
            rows[CLASSES[e.target.class_id]].append((e.score, *where(e)))
    out = {}
    for cls, r in rows.items():
        if r:
            a = np.array(r)
            out[cls] = {
                "boxes": len(r),
                "median_score": round(float(np.median(a[:, 0])), 3),
                "found": round(float((a[:, 0] >= SCORE_THRESHOLD).mean()), 3),
                "map_in_box": round(float(np.nanmedian(a[:, 1])), 3),
                "map_around_box": round(float(np.nanmedian(a[:, 2])), 3),
                "map_elsewhere": round(float(1 - np.nanmedian(a[:, 1]) - np.nanmedian(a[:, 2])), 3),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", nargs="+", default=["shipped"])
    ap.add_argument("--data", default="data/unseen")
    ap.add_argument(
        "--corruptions", nargs="*", default=["brightness:3", "low_light:2", "fog:3", "motion_blur:3"]
    )
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/explain_corruption.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frames = frames_and_targets(load_coco(args.data, "val"), args.frames)
    result = {"data": args.data, "frames": len(frames), "checkpoints": {}}
    for checkpoint in args.checkpoints:
        explainer = Explainer.from_checkpoint(checkpoint)
        result["checkpoints"][checkpoint] = {
            c: measure(explainer, frames, c) for c in ["clean", *args.corruptions]
        }
        print(checkpoint, json.dumps(result["checkpoints"][checkpoint], indent=1))
    write_json(Path(args.out), result)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()

"""Traffic-light states on a dataset split: how often the detector finds a light, and how often the
state it gives is the light's.

A ground-truth light (a box of a light class, not a don't-care box, within `max_distance_m`) is
found when a light detection at `score_threshold` or more has its centre inside the light's box
grown by perception.lights.MATCH_GROW of its size: the rule by which the closed loop ties a light
box to the map's light (perception/lights.py). Detections take lights in score order, each at most
one light, the nearest centre first. State accuracy is the share of found lights whose detection's
class is the light's state; recall the share of lights found. A confusion table counts (true
state, given state).
"""

from __future__ import annotations

import numpy as np

from perception.lights import MATCH_GROW
from perception.types import CLASSES, FIRST_LIGHT_CLASS, SIGNAL_STATES

MAX_DISTANCE_M = 50.0  # the range for the state accuracy


def light_states(
    gt: dict, detections: list[dict], score_threshold: float, max_distance_m: float = MAX_DISTANCE_M
) -> dict:
    """{"n_gt", "found", "recall", "state_accuracy", "confusion": {true: {given: n}}, "max_distance_m",
    "score_threshold"} over the lights of `gt` (a COCO dict with the light classes) and `detections`
    (COCO result records, category_id = class id + 1); rates None without lights; None for a
    dataset without the light classes."""
    light_cat = {FIRST_LIGHT_CLASS + 1 + k: state for k, state in enumerate(SIGNAL_STATES)}
    names = {c["id"]: c["name"] for c in gt["categories"]}
    if any(names.get(cid) != CLASSES[cid - 1] for cid in light_cat):
        return None
    truth: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        if a["category_id"] in light_cat and not a.get("iscrowd") and a["distance_m"] <= max_distance_m:
            truth.setdefault(a["image_id"], []).append(a)
    given: dict[int, list[dict]] = {}
    for d in detections:
        if d["category_id"] in light_cat and d["score"] >= score_threshold:
            given.setdefault(d["image_id"], []).append(d)
    confusion = {s: dict.fromkeys(SIGNAL_STATES, 0) for s in SIGNAL_STATES}
    n_gt = found = 0
    for image_id, lights in truth.items():
        n_gt += len(lights)
        boxes = np.array([a["bbox"] for a in lights], dtype=float)  # (N, 4) xywh
        lo = boxes[:, :2] - MATCH_GROW * boxes[:, 2:]
        hi = boxes[:, :2] + (1 + MATCH_GROW) * boxes[:, 2:]
        centre = boxes[:, :2] + boxes[:, 2:] / 2
        free = np.ones(len(lights), dtype=bool)
        for d in sorted(given.get(image_id, []), key=lambda d: -d["score"]):
            x, y, w, h = d["bbox"]
            c = np.array([x + w / 2, y + h / 2])
            inside = free & (c >= lo).all(axis=1) & (c <= hi).all(axis=1)
            if not inside.any():
                continue
            k = int(np.argmin(np.where(inside, np.linalg.norm(centre - c, axis=1), np.inf)))
            free[k] = False
            found += 1
            confusion[lights[k]["state"]][light_cat[d["category_id"]]] += 1
    correct = sum(confusion[s][s] for s in SIGNAL_STATES)
    return {
        "n_gt": n_gt,
        "found": found,
        "recall": found / n_gt if n_gt else None,
        "state_accuracy": correct / found if found else None,
        "confusion": confusion,
        "max_distance_m": max_distance_m,
        "score_threshold": score_threshold,
    }


def format_lights(m: dict) -> str:
    if not m["n_gt"]:
        return "traffic lights: none in this split\n"
    rate = "-" if m["state_accuracy"] is None else f"{m['state_accuracy']:.3f}"
    lines = [
        f"traffic lights within {m['max_distance_m']:g} m (score >= {m['score_threshold']:g}): "
        f"{m['found']} of {m['n_gt']} found (recall {m['recall']:.3f}), state accuracy {rate}",
        "  true \\ given  " + "  ".join(f"{s:>6}" for s in SIGNAL_STATES),
    ]
    lines += [
        f"  {t:12s}  " + "  ".join(f"{m['confusion'][t][g]:6d}" for g in SIGNAL_STATES) for t in SIGNAL_STATES
    ]
    return "\n".join(lines) + "\n"

"""What the detector's class activation maps show about its failures on a val split (issue 14).

Usage: .venv/bin/python scripts/explain_failures.py [--checkpoint shipped] [--data data/unseen]
           [--out runs/explain_failures.json]

Four measurements, each at the closed loop's score threshold (0.35) with a match at IoU >= 0.5:
0. which map localises: for every detection, per layer and method of perception/explain.py, the
   share of the map inside the detection's box and whether the map's maximum lies in it.
1. misses: the labelled boxes no detection of their class matches, split into box errors (a detection
   of the class >= 0.35 overlaps, IoU < 0.5) and low scores; recall by visible fraction.
2. where the map lies (perception/explain.py defaults: HiResCAM at the stride-4 backbone stage) for
   each labelled box's centre cell: the share inside the box and the mass-weighted centroid's offset
   from the box centre in box heights (negative: above), by class, box height and hit/miss; for
   partly hidden boxes (visible < 0.8), the share on the nearer objects' boxes and on the rest of
   the box.
3. a backdrop test: for each detected box under 10 px tall (vehicles and pedestrians), the score at
   its centre cell once an 8 px band right above it (box width + 3 px each side) is painted in the
   colour of the ground beside it, as if something stood behind it; controls: the same band 14 px
   to the left and to the right (both averaged), and a band right below it painted with road from
   further down.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np
import torch

from perception.coco import iou_matrix, load_coco, read_image, xywh_to_xyxy
from perception.detection.detector import Detector
from perception.explain import LAYERS, METHODS, Explainer, Target, box_mask
from perception.files import write_json
from perception.types import CLASSES

SCORE_THRESHOLD = 0.35  # conf/perception/cnn.yaml
MATCH_IOU = 0.5
SMALL_PX = 10.0  # "small": box height under this
BAND_PX, PAD_PX, SIDE_PX = 8, 3, 14  # backdrop test: band height, its overhang, the controls' shift
BANDS = ("original", "band_above", "band_beside", "band_below")


def labelled_boxes(data, detector: Detector) -> list[dict]:
    """Every labelled (non-crowd) box with its image, and whether a detection matches it."""
    rows = []
    for index, image in enumerate(data.images):
        det = detector.detect(read_image(data, image)[None], SCORE_THRESHOLD)[0]
        for a in data.annotations.get(image["id"], []):
            if a["iscrowd"]:
                continue
            box = xywh_to_xyxy(np.array([a["bbox"]], np.float64))[0]
            same = det["class_ids"] == a["category_id"] - 1
            iou = iou_matrix(box[None], det["boxes_xyxy"][same])[0]
            rows.append({
                "index": index, "box": box.tolist(), "class_id": a["category_id"] - 1,
                "distance_m": a["distance_m"], "visible": a["visible_fraction"],
                "height_px": float(box[3] - box[1]), "hit": bool((iou >= MATCH_IOU).any()),
                "overlapped": bool((iou > 0).any()),
            })  # fmt: skip
    return rows


def map_methods(data, checkpoint: str) -> dict:
    """Median share of the map in the box, and the share of detections whose map peaks inside it."""
    found = {}
    for layer in LAYERS:
        for method in METHODS:
            explainer = Explainer.from_checkpoint(checkpoint, layer=layer, method=method)
            shares, peaks = [], []
            for image in data.images:
                for e in explainer.explain_detections(read_image(data, image), SCORE_THRESHOLD):
                    inside = box_mask(e.target.box_xyxy, *e.cam.shape)
                    shares.append(e.mass_in_box)
                    peaks.append(bool(inside.flat[int(e.cam.argmax())]))
            found[f"{method} {layer}"] = {
                "detections": len(shares),
                "median_mass_in_box": round(float(np.nanmedian(shares)), 3),
                "peak_in_box": round(float(np.mean(peaks)), 3),
            }
    return found


def misses(rows: list[dict]) -> dict:
    missed = [r for r in rows if not r["hit"]]
    partly = [r for r in rows if r["visible"] < 0.8]
    return {
        "boxes": len(rows),
        "missed": len(missed),
        "missed_box_error": sum(r["overlapped"] for r in missed),  # a detection of the class overlaps
        "missed_40m_plus": sum(r["distance_m"] >= 40 for r in missed),
        "recall_visible_below_0.8": round(float(np.mean([r["hit"] for r in partly])), 3) if partly else None,
        "boxes_visible_below_0.8": len(partly),
    }


def where_maps_lie(data, explainer: Explainer, rows: list[dict]) -> dict:
    """Median share of the map in the box and centroid offset, per class / height band / hit."""
    by_image = collections.defaultdict(list)
    for r in rows:
        by_image[r["index"]].append(r)
    groups, hidden = collections.defaultdict(list), collections.defaultdict(list)
    H, W = explainer.config.input_height, explainer.config.input_width
    ys = np.arange(H)[:, None] + 0.5
    for index, group in by_image.items():
        image = data.images[index]
        rgb = read_image(data, image)
        targets = [Target.of_box(r["box"], r["class_id"], H, W) for r in group]
        for r, e in zip(group, explainer.explain(rgb, targets), strict=True):
            total = e.cam.sum()
            if total <= 0:
                continue
            x0, y0, x1, y1 = r["box"]
            dy = ((e.cam * ys).sum() / total - (y0 + y1) / 2) / (y1 - y0)
            band = (
                "under_10px"
                if r["height_px"] < SMALL_PX
                else "10_20px"
                if r["height_px"] < 20
                else "20px_plus"
            )
            groups[f"{CLASSES[r['class_id']]} {band} {'hit' if r['hit'] else 'miss'}"].append(
                (e.mass_in_box, dy)
            )
            if r["visible"] < 0.8:
                front = _nearer_boxes(data, image, r, H, W)
                inside = box_mask(r["box"], H, W)
                hidden["hit" if r["hit"] else "miss"].append(
                    (e.cam[front].sum() / total, e.cam[inside & ~front].sum() / total)
                )
    out = {
        key: {"n": len(v), "mass_in_box": _median(v, 0), "centroid_dy_box_heights": _median(v, 1)}
        for key, v in sorted(groups.items())
    }
    out["partly_hidden"] = {
        key: {"n": len(v), "mass_on_nearer_objects": _median(v, 0), "mass_on_rest_of_box": _median(v, 1)}
        for key, v in hidden.items()
    }
    return out


def _nearer_boxes(data, image: dict, row: dict, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the boxes of the labelled objects nearer than `row`'s (what may hide it)."""
    mask = np.zeros((height, width), bool)
    for a in data.annotations.get(image["id"], []):
        if a["distance_m"] < row["distance_m"] - 1.0:
            mask |= box_mask(xywh_to_xyxy(np.array([a["bbox"]], np.float64))[0], height, width)
    return mask


def backdrop_test(data, model: torch.nn.Module, rows: list[dict]) -> dict:
    """Scores of small detected objects with a ground-coloured band above them, beside, and below."""
    scores = collections.defaultdict(list)
    for r in rows:
        if not (r["hit"] and r["height_px"] < SMALL_PX and r["class_id"] in (0, 1)):
            continue
        rgb = read_image(data, data.images[r["index"]])
        x0, y0, x1, y1 = (int(round(v)) for v in r["box"])
        if y0 < BAND_PX:
            continue
        ground = rgb[min(y1 + 4, rgb.shape[0] - 1), max(x0 - 10, 0)]  # the ground beside the object
        road = rgb[min(y1 + BAND_PX + 6, rgb.shape[0] - 1), max(x0 - PAD_PX, 0)]

        above, below = (y0 - BAND_PX, y0), (y1, y1 + BAND_PX)
        frames = [
            rgb,
            _painted(rgb, above, (x0 - PAD_PX, x1 + PAD_PX), ground),
            _painted(rgb, above, (x0 - PAD_PX - SIDE_PX, x1 + PAD_PX - SIDE_PX), ground),
            _painted(rgb, above, (x0 - PAD_PX + SIDE_PX, x1 + PAD_PX + SIDE_PX), ground),
            _painted(rgb, below, (x0 - PAD_PX, x1 + PAD_PX), road),
        ]
        target = Target.of_box(r["box"], r["class_id"], *rgb.shape[:2])
        s = _scores_at(model, frames, target)
        scores[CLASSES[r["class_id"]]].append((s[0], s[1], (s[2] + s[3]) / 2, s[4]))
    out = {}
    for name, v in scores.items():
        a = np.array(v)
        out[name] = {
            "n": len(a),
            "median_score": dict(zip(BANDS, _round(np.median(a, 0)), strict=True)),
            "share_below_threshold": dict(
                zip(BANDS[1:], _round((a[:, 1:] < SCORE_THRESHOLD).mean(0)), strict=True)
            ),
        }
    return out


def _painted(rgb: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], colour) -> np.ndarray:
    """A copy of rgb with the band rows x cols (clipped to the image) painted in `colour`."""
    out = rgb.copy()
    out[max(rows[0], 0) : max(rows[1], 0), max(cols[0], 0) : max(cols[1], 0)] = colour
    return out


@torch.no_grad()
def _scores_at(model: torch.nn.Module, frames: list[np.ndarray], target: Target) -> list[float]:
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    row, col = target.cell_yx
    return torch.sigmoid(model(x)["heatmap"][:, target.class_id, row, col]).tolist()


def _median(values: list[tuple], i: int) -> float:
    return round(float(np.median([v[i] for v in values])), 3)


def _round(a: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in a]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="shipped")
    parser.add_argument("--data", default="data/unseen")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", default="runs/explain_failures.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_coco(args.data, args.split)
    rows = labelled_boxes(data, Detector(args.checkpoint, "cpu"))
    explainer = Explainer.from_checkpoint(args.checkpoint)
    result = {
        "checkpoint": args.checkpoint,
        "data": f"{args.data} {args.split}",
        "map_methods": map_methods(data, args.checkpoint),
        "misses": misses(rows),
        "where_maps_lie": where_maps_lie(data, explainer, rows),
        "backdrop_test": backdrop_test(data, explainer.model, rows),
    }
    write_json(Path(args.out), result)
    print(json.dumps({k: result[k] for k in ("map_methods", "misses", "backdrop_test")}, indent=1))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()

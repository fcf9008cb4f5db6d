"""What a generated dataset holds: counts per class and split (and of traffic lights per state), a
box-height histogram and a contact sheet of sample frames (summary.json, box_heights.png,
contact_sheet.png in the dataset folder)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from perception import charts
from perception.files import write_bytes, write_json
from perception.types import CLASSES, LIGHT_CLASSES, SIGNAL_STATES


def summarize(out: Path) -> dict:
    """Counts per class and split, a box-height histogram and a contact sheet of sample frames."""
    summary: dict = {"classes": list(CLASSES), "splits": {}}
    heights = []
    for split in ("train", "val"):
        coco = json.loads((out / "annotations" / f"{split}.json").read_text())
        counts = dict.fromkeys(CLASSES, 0)
        dont_care = 0
        for ann in coco["annotations"]:
            if ann.get("iscrowd"):
                dont_care += 1
                continue
            counts[CLASSES[ann["category_id"] - 1]] += 1
            heights.append(ann["bbox"][3])
        scenes = sorted({(im["scenario"], im["seed"]) for im in coco["images"]})
        states = {state: counts.pop(name) for state, name in zip(SIGNAL_STATES, LIGHT_CLASSES, strict=True)}
        summary["splits"][split] = {
            "images": len(coco["images"]),
            "scenes": len(scenes),
            "boxes": counts,
            "dont_care_boxes": dont_care,
            "traffic_lights": states,
        }
    h = np.asarray(heights, dtype=float)
    edges = [0, 10, 20, 40, 80, 1e9]
    summary["box_height_px"] = {
        f"{lo:g}-{hi:g}" if hi < 1e9 else f"{lo:g}+": int(((h >= lo) & (h < hi)).sum())
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    }
    summary["median_box_height_px"] = float(np.median(h)) if len(h) else None
    _histogram_png(summary["box_height_px"], out / "box_heights.png")
    _contact_sheet(out, out / "contact_sheet.png")
    write_json(out / "summary.json", summary)
    return summary


def _histogram_png(bins: dict[str, int], path: Path) -> None:
    """Boxes per height bin [px], as a bar chart (perception.charts)."""
    charts.bar_chart(bins, path, title="boxes by height", xlabel="box height [px]", ylabel="boxes")


def _contact_sheet(out: Path, path: Path, n: int = 12, cols: int = 3) -> None:
    """n frames spread over the train split, boxes drawn in class colours."""
    coco = json.loads((out / "annotations" / "train.json").read_text())
    if not coco["images"]:
        return
    by_image: dict[int, list] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    picks = np.linspace(0, len(coco["images"]) - 1, min(n, len(coco["images"]))).astype(int)
    # BGR: vehicle, pedestrian, obstacle, light_green, light_yellow, light_red
    colours = [(255, 140, 30), (30, 30, 230), (30, 180, 250), (60, 220, 60), (0, 230, 255), (40, 40, 255)]
    tiles = []
    for i in picks:
        im = coco["images"][i]
        tile = cv2.imread(str(out / "images" / "train" / im["file_name"]))
        for ann in by_image.get(im["id"], []):
            x, y, w, h = (int(round(v)) for v in ann["bbox"])
            colour = (160, 160, 160) if ann.get("iscrowd") else colours[ann["category_id"] - 1]
            cv2.rectangle(tile, (x, y), (x + w, y + h), colour, 1)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)]
    _write_png(np.concatenate(rows, axis=0), path)


def _write_png(img: np.ndarray, path: Path) -> None:
    ok, data = cv2.imencode(".png", img)
    if ok:
        write_bytes(path, data.tobytes())

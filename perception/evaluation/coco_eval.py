"""COCO detection metrics with pycocotools, overall, per class and per slice of the ground truth.

All numbers come from pycocotools' `COCOeval` (IoU 0.50:0.05:0.95, 101 recall points, 100
detections per image, area range "all"); nothing here re-implements AP.

- overall: AP (mAP@[.5:.95]), AP50, AP75 over the object classes (perception.types.OBJECT_CLASSES:
  what the tracker gets; every class when a dataset names none of them). The traffic lights, a
  class per state, have their per-class figures and their own state measure
  (perception/evaluation/light_eval.py).
- per class: the same with `params.catIds` restricted to that class.
- slices over a ground-truth attribute (distance band by `distance_m`, box height): the
  ground-truth boxes outside the slice get COCO's ignore flag, exactly as COCOeval treats boxes
  outside an area range: a detection matched to an ignored box is neither a true nor a false
  positive, and an ignored box is not needed for recall. A box that lacks the attribute is outside
  every band of it. Unmatched detections: for box height (and distance, when every detection
  carries a finite predicted `distance_m`) one outside the slice is ignored, as COCOeval does with
  area; otherwise it counts as a false positive in every slice.
  There are no occlusion slices (by `visible_fraction`) any more: a detection's visibility cannot be
  known, so every unmatched detection was a false positive in every band, and a small band's AP
  measured the false positives elsewhere. `perception.evaluation.groups` reports recall there.
- lighting slices: an image-level attribute (`light` or `lighting` in the image records); the
  evaluation is restricted to the images of each value (`params.imgIds`). Skipped when absent.

AP is None where COCO gives -1: no ground truth at all in that class / slice. A class with ground
truth but no detections has AP 0.0.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from perception import charts
from perception.types import OBJECT_CLASSES

DISTANCE_BANDS_M: tuple[tuple[str, float, float], ...] = (
    ("0-20m", 0.0, 20.0),
    ("20-40m", 20.0, 40.0),
    ("40m+", 40.0, math.inf),
)
BOX_HEIGHT_SPLIT_PX = 20.0
HEIGHT_BANDS_PX: tuple[tuple[str, float, float], ...] = (
    (f"height>={BOX_HEIGHT_SPLIT_PX:g}px", BOX_HEIGHT_SPLIT_PX, math.inf),
    (f"height<{BOX_HEIGHT_SPLIT_PX:g}px", 0.0, BOX_HEIGHT_SPLIT_PX),
)
LIGHT_KEYS = ("light", "lighting")
ALL_SLICES = ("distance", "lighting", "height")
PR_IOU = 0.5
METRICS = ("AP", "AP50", "AP75")


class _SliceEval(COCOeval):
    """COCOeval that also ignores the gt ids in `ignore_gt` and unmatched detection ids in `ignore_dt`."""

    def __init__(self, gt: COCO, dt: COCO, ignore_gt: set[int], ignore_dt: set[int]):
        super().__init__(gt, dt, "bbox")
        self.ignore_gt = ignore_gt
        self.ignore_dt = ignore_dt

    def _prepare(self):
        super()._prepare()  # sets gt['ignore'] from iscrowd
        for gts in self._gts.values():
            for g in gts:
                g["ignore"] = bool(g["ignore"]) or g["id"] in self.ignore_gt

    def evaluateImg(self, imgId, catId, aRng, maxDet):
        result = super().evaluateImg(imgId, catId, aRng, maxDet)
        if result is not None and self.ignore_dt:
            outside = np.array([d in self.ignore_dt for d in result["dtIds"]], dtype=bool)
            result["dtIgnore"] = np.logical_or(result["dtIgnore"], (result["dtMatches"] == 0) & outside)
        return result


def load_gt(gt: dict | str | os.PathLike) -> COCO:
    data = json.loads(Path(gt).read_text()) if isinstance(gt, str | os.PathLike) else copy.deepcopy(gt)
    for ann in data["annotations"]:  # fields COCOeval needs that a hand-made file may lack
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_detections(gt: COCO, detections: Sequence[dict]) -> COCO:
    """Detections as a COCO result set, as `COCO.loadRes` builds it (which fails on an empty list)."""
    image_ids = set(gt.getImgIds())
    anns = []
    for i, d in enumerate(detections):
        if d["image_id"] not in image_ids:
            raise ValueError(f"detection {i} has image_id {d['image_id']}, which is not in the ground truth")
        x, y, w, h = (float(v) for v in d["bbox"])
        ann = {
            "id": i + 1,
            "image_id": d["image_id"],
            "category_id": int(d["category_id"]),
            "bbox": [x, y, w, h],
            "score": float(d["score"]),
            "area": w * h,
            "iscrowd": 0,
        }
        if d.get("distance_m") is not None:
            ann["distance_m"] = float(d["distance_m"])
        anns.append(ann)
    coco = COCO()
    coco.dataset = {
        "images": list(gt.dataset["images"]),
        "categories": gt.dataset["categories"],
        "annotations": anns,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _none_if_missing(v: float) -> float | None:
    return None if v < 0 else float(v)


def coco_metrics(
    gt: COCO,
    dt: COCO,
    cat_ids: Sequence[int] | None = None,
    img_ids: Sequence[int] | None = None,
    ignore_gt: set[int] | frozenset[int] = frozenset(),
    ignore_dt: set[int] | frozenset[int] = frozenset(),
) -> tuple[dict, COCOeval]:
    """One COCOeval run over the object categories (or `cat_ids`), restricted to some images when
    given, with the ground truth ids `ignore_gt` and the unmatched detection ids `ignore_dt` ignored;
    returns (metrics, COCOeval)."""
    ev = _SliceEval(gt, dt, set(ignore_gt), set(ignore_dt))
    ev.params.catIds = list(object_cat_ids(gt) if cat_ids is None else cat_ids)
    if img_ids is not None:
        ev.params.imgIds = list(img_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    n_gt = sum(1 for gts in ev._gts.values() for g in gts if not g["ignore"])
    stats = {name: _none_if_missing(ev.stats[i]) for i, name in enumerate(METRICS)}
    # AP50 of each category (what the AP50 above averages): precision at IoU 0.5, all areas, 100 dets.
    p50 = ev.eval["precision"][0, :, :, 0, -1]  # (recall points, categories); -1 where no gt
    per_class = {
        gt.cats[c]["name"]: float(p50[:, k].mean()) if (p50[:, k] > -1).all() else None
        for k, c in enumerate(ev.params.catIds)
    }
    return {**stats, "n_gt": n_gt, "AP50_per_class": per_class}, ev


def object_cat_ids(gt: COCO) -> list[int]:
    """The ids of the categories that are objects (OBJECT_CLASSES), or of all when none is."""
    cats = sorted(gt.dataset["categories"], key=lambda c: c["id"])
    objects = [c["id"] for c in cats if c["name"] in OBJECT_CLASSES]
    return objects or [c["id"] for c in cats]


def outside_band(anns: Sequence[dict], key, lo: float, hi: float) -> set[int]:
    """Ids of the annotations whose attribute (a key, or a function of the record) is outside [lo, hi)."""
    out = set()
    for a in anns:
        v = key(a) if callable(key) else a.get(key)
        if v is None or not (lo <= v < hi):
            out.add(a["id"])
    return out


def box_height(a: dict) -> float:
    return a["bbox"][3]


def evaluate(
    gt: dict | str | os.PathLike,
    detections: Sequence[dict],
    slices: Sequence[str] = ALL_SLICES,
) -> dict:
    """COCO bbox metrics of `detections` against the ground truth.

    gt: a COCO dict or the path of its JSON file (as written by `perception.coco.write_coco`).
    detections: [{image_id, category_id (1-based), bbox [x, y, w, h] px, score, optional distance_m}].
    slices: which of ALL_SLICES to compute.

    Returns {"overall": m, "per_class": {name: m}, "slices": {kind: {band: m}}, "pr": curves} with
    m = {"AP", "AP50", "AP75": float or None, "n_gt": int} and curves = {"iou": 0.5, "recall": 101
    floats, "precision": {name: 101 floats or None}} (precision at each recall, all areas, 100 dets).
    """
    unknown = set(slices) - set(ALL_SLICES)
    if unknown:
        raise ValueError(f"unknown slices {sorted(unknown)}; known: {ALL_SLICES}")
    gt_coco = load_gt(gt)
    dt_coco = load_detections(gt_coco, detections)
    cats = sorted(gt_coco.dataset["categories"], key=lambda c: c["id"])
    overall, ev = coco_metrics(gt_coco, dt_coco)
    results: dict = {
        "overall": overall,
        "per_class": {c["name"]: coco_metrics(gt_coco, dt_coco, cat_ids=[c["id"]])[0] for c in cats},
        "slices": {},
        "pr": _pr_curves(ev, [gt_coco.cats[c] for c in ev.params.catIds]),  # the objects' curves
    }
    for kind in slices:
        if kind == "lighting":
            bands = lighting_slices(gt_coco, dt_coco)
        else:
            bands = attribute_slices(kind, gt_coco, dt_coco)
        if bands:  # no lighting slices when the images do not say
            results["slices"][kind] = bands
    return results


def _pr_curves(ev: COCOeval, cats: list[dict]) -> dict:
    """The precision-recall curve of each category at IoU PR_IOU (all areas, 100 detections) of a
    finished COCOeval over all categories: {"iou", "recall": floats, "precision": {name: floats or None}}."""
    # precision[T, R, K, A, M]: IoU thresholds, recall points, categories, area ranges, max dets
    t = int(np.argmin(np.abs(ev.params.iouThrs - PR_IOU)))
    precision = ev.eval["precision"][t, :, :, 0, -1]
    return {
        "iou": PR_IOU,
        "recall": [float(r) for r in ev.params.recThrs],
        "precision": {
            c["name"]: None if np.all(precision[:, k] < 0) else [float(p) for p in precision[:, k]]
            for k, c in enumerate(cats)
        },
    }


def light_of(image: dict) -> str | None:
    """The lighting label of an image record (`light` or `lighting`), None when it has none."""
    light = next((image[k] for k in LIGHT_KEYS if k in image), None)
    return None if light is None else str(light)


def image_groups(gt_coco: COCO, group_of) -> dict[str, list[int]]:
    """{name: image ids} of the images grouped by `group_of(image record) -> name or None`, by name."""
    groups: dict[str, list[int]] = {}
    for img in gt_coco.dataset["images"]:
        name = group_of(img)
        if name is not None:
            groups.setdefault(name, []).append(img["id"])
    return dict(sorted(groups.items()))


def lighting_slices(gt_coco: COCO, dt_coco: COCO) -> dict[str, dict]:
    """{light: metrics over the images of that light} ({} when no image record names its light)."""
    return {
        name: coco_metrics(gt_coco, dt_coco, img_ids=ids)[0]
        for name, ids in image_groups(gt_coco, light_of).items()
    }


def has_finite(anns: Sequence[dict], key: str) -> bool:
    """Whether every record carries a finite number under `key` (and there is at least one)."""
    return bool(anns) and all(isinstance(a.get(key), int | float) and math.isfinite(a[key]) for a in anns)


def band_metrics(
    gt_coco: COCO, dt_coco: COCO, key, bands: Sequence[tuple[str, float, float]], detections_known: bool
) -> dict[str, dict]:
    """{band: metrics} over the bands [lo, hi) of one box attribute (a key, or a function of the
    record): the ground truth outside the band is ignored, and so are the unmatched detections
    outside it when `detections_known` (they carry the attribute; else such a detection is a false
    positive in every band)."""
    gt_anns, dt_anns = gt_coco.dataset["annotations"], dt_coco.dataset["annotations"]
    return {
        name: coco_metrics(
            gt_coco,
            dt_coco,
            ignore_gt=outside_band(gt_anns, key, lo, hi),
            ignore_dt=outside_band(dt_anns, key, lo, hi) if detections_known else set(),
        )[0]
        for name, lo, hi in bands
    }


def attribute_slices(kind: str, gt_coco: COCO, dt_coco: COCO) -> dict[str, dict]:
    """{band: metrics} over the bands of one box attribute ("distance", "height"): the ground truth
    outside the band is ignored, and so are unmatched detections outside it when every detection
    carries the attribute (a finite predicted `distance_m`; a box height always)."""
    if kind == "distance":
        dets_known = has_finite(dt_coco.dataset["annotations"], "distance_m")
        return band_metrics(gt_coco, dt_coco, "distance_m", DISTANCE_BANDS_M, dets_known)
    return band_metrics(gt_coco, dt_coco, box_height, HEIGHT_BANDS_PX, True)


def _fmt(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def format_table(results: dict) -> str:
    """A plain-text table: one row for overall, each class and each slice; columns AP, AP50, AP75, n_gt."""
    rows: list[tuple[str, dict]] = [("overall", results["overall"])]
    rows += [(f"class {name}", m) for name, m in results["per_class"].items()]
    for kind, bands in results.get("slices", {}).items():
        rows += [(f"{kind} {name}", m) for name, m in bands.items()]
    width = max(len(name) for name, _ in rows)
    classes = list(results["per_class"])
    header = "  ".join(f"{c[:6]:>6}" for c in classes)
    lines = [f"{'':<{width}}  {'AP':>6}  {'AP50':>6}  {'AP75':>6}  {'n_gt':>6}  AP50 of {header}"]
    for name, m in rows:
        by_class = m.get("AP50_per_class", {})
        cells = "  ".join(_fmt(by_class.get(c)) for c in classes) if len(by_class) > 1 else ""
        lines.append(
            f"{name:<{width}}  {_fmt(m['AP'])}  {_fmt(m['AP50'])}  {_fmt(m['AP75'])}  {m.get('n_gt', 0):>6d}"
            f"  {' ' * 8}{cells}".rstrip()
        )
    return "\n".join(lines)


def pr_plot(curves: dict, path: str | os.PathLike) -> None:
    """Draw the precision-recall curves (`evaluate(...)["pr"]`), one per class, as a PNG written
    atomically (perception.charts). A class without ground truth is named in the legend only."""
    recall = curves["recall"]
    charts.line_chart(
        {name: (recall, precision) for name, precision in curves["precision"].items()},
        path,
        title=f"PR @ IoU {curves.get('iou', PR_IOU):.2f}",
        xlabel="recall",
        ylabel="precision",
        limits=((0.0, 1.0), (0.0, 1.02)),
    )


def coco_detections(image_id: int, det: dict) -> list[dict]:
    """One image's decoded detections (model.py decode) as COCO result records: category_id = class
    id + 1, bbox xywh, and the distance head's estimate where the model has one."""
    records = []
    distances = det.get("distances_m")
    for k, (box, c, s) in enumerate(zip(det["boxes_xyxy"], det["class_ids"], det["scores"], strict=True)):
        x0, y0, x1, y1 = (float(v) for v in box)
        record = {
            "image_id": image_id,
            "category_id": int(c) + 1,
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": float(s),
        }
        if distances is not None:
            record["distance_m"] = float(distances[k])
        records.append(record)
    return records

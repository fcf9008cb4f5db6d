"""Fairness: the detector's metrics per group of objects, and the gap to its worst group.

A group's metric must measure that group. Which one it can be depends on whether a detection's
group can be known from the detection itself:

- Known (class; distance band, from the detection's predicted distance; box height; lighting and
  camera, image-level): COCO AP and AP50 (pycocotools) with COCO's ignore mechanism, as its area
  ranges do: the ground truth outside the group is ignored, a detection matched to an ignored box is
  ignored, and an unmatched detection outside the group is ignored rather than a false positive.
  Class restricts `params.catIds`; lighting and camera restrict `params.imgIds`.
- Unknown (occlusion band, object colour, pedestrian on the road or the sidewalk; distance when the
  detections carry no distance): an unmatched detection cannot be given to a group, so a group's AP
  would count every false positive of the whole set against it (before this module the 0.4-0.8
  visibility band had ~290 false positives against ~40 boxes). There the metric is recall at the
  closed loop's score threshold: the share of the group's boxes that a detection of the same class
  with score >= threshold overlaps at IoU >= 0.5, in COCOeval's own greedy matching (which goes in
  score order, so the matches of the detections above a threshold are those a run on them alone
  would make).

Don't-care (COCO crowd) boxes are in no group. Each group reports its box count; a group with fewer
than `min_boxes` boxes is flagged `small` and left out of its kind's worst-group gap: the worst
group's metric minus the mean over the kind's groups (both over the groups that are not small).

`evaluate_groups` returns, per kind, its metric, its definition (the text in KIND_DEFINITIONS), and
per group the figures; a kind whose labels the dataset lacks (colour and on-road labels came with
dataset format 3) is reported as unavailable, with the reason.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from perception.evaluation.coco_eval import (
    DISTANCE_BANDS_M,
    HEIGHT_BANDS_PX,
    band_metrics,
    box_height,
    coco_metrics,
    has_finite,
    image_groups,
    light_of,
    load_detections,
    load_gt,
    object_cat_ids,
)

RECALL_IOU = 0.5  # a box counts as found when a confident detection overlaps it this much
# Object colour, from the actor's body RGB in [0, 1] (`actor_rgb`) in HSV terms: value = max(R, G, B),
# saturation = (max - min) / max. The world's palettes: black, dark green, brown and grey pedestrians
# are dark; white, silver and grey cars are light; red, blue, gold cars, cones and barriers saturated.
DARK_MAX_VALUE = 0.45  # value below this: "dark"
SATURATED_MIN_SATURATION = 0.4  # else saturation at least this: "saturated"; else "light"
COLOURS = ("dark", "light", "saturated")
VISIBILITY_BANDS: tuple[tuple[str, float, float], ...] = (
    ("visible>=0.8", 0.8, math.inf),
    ("visible0.4-0.8", 0.4, 0.8),
    ("visible<0.4", -math.inf, 0.4),
)
DEFAULT_CAMERA = "front"  # the camera of an image record without a `camera` name (one camera today)
PEDESTRIAN_CATEGORY = "pedestrian"
ROAD_SIDES = ("road", "sidewalk")

KIND_DEFINITIONS = {
    "class": "AP per category (COCO params.catIds = [class]): detections of other classes do not enter.",
    "distance": "AP per band of the box's distance_m [m]: ground truth outside the band is ignored, "
    "and so are detections matched to it and unmatched detections whose predicted distance_m is "
    "outside the band (COCO's ignore, as for area ranges).",
    "distance_recall": "recall per band of the box's distance_m [m] at the score threshold, IoU 0.5: "
    "the detections carry no predicted distance, so their band cannot be known.",
    "height": "AP per band of box height [px]: ground truth and unmatched detections outside the band "
    "are ignored (COCO's ignore, as for area ranges).",
    "lighting": "AP over the images of each lighting label (COCO params.imgIds).",
    "camera": f"AP over the images of each camera (the image record's `camera`, '{DEFAULT_CAMERA}' "
    "when absent; COCO params.imgIds).",
    "occlusion": "recall per band of visible_fraction at the score threshold, IoU 0.5: a detection's "
    "visibility cannot be known, so AP would count every false positive in every band.",
    "colour": f"recall per colour of the actor's body (actor_rgb, HSV): dark (value < {DARK_MAX_VALUE}), "
    f"saturated (else saturation >= {SATURATED_MIN_SATURATION}), light (the rest), at the score "
    "threshold, IoU 0.5: a detection's colour cannot be known.",
    "pedestrian_road": "recall of pedestrians whose centre is on the carriageway (on_road: inside the "
    "edge lines) vs beyond it (sidewalk), at the score threshold, IoU 0.5: the road edge is not known "
    "from a detection.",
}
KINDS = ("class", "distance", "height", "lighting", "camera", "occlusion", "colour", "pedestrian_road")


def colour_group(rgb: Sequence[float]) -> str:
    """The colour group of an RGB colour (3,) in [0, 1]: dark, light or saturated (thresholds above)."""
    hi, lo = max(rgb), min(rgb)
    if hi < DARK_MAX_VALUE:
        return "dark"
    saturation = (hi - lo) / hi
    return "saturated" if saturation >= SATURATED_MIN_SATURATION else "light"


def evaluate_groups(
    gt: dict | str | os.PathLike, detections: Sequence[dict], *, score_threshold: float, min_boxes: int
) -> dict:
    """Per-group metrics of `detections` (as `coco_eval.evaluate` takes them) against `gt`.

    score_threshold: the score of the recall groups (the closed loop's); the detections must hold
    every detection down to it. min_boxes: groups with fewer boxes are flagged small.

    Returns {"score_threshold", "recall_iou", "min_boxes", "kinds": {kind: k}, "worst": w or None}:
    k = {"metric": "AP50" or "recall", "definition", "available", "groups": {name: g}, "mean",
    "worst", "worst_value", "gap"} (a kind the dataset has no labels for: "available" False and a
    "reason" in place of the groups and the gap); g = {"n_gt", "recall", "recall_per_class",
    "small"} plus AP, AP50, AP75, AP50_per_class for AP kinds; w = the kind, group and gap of the most negative gap.
    """
    gt_coco = load_gt(gt)
    dt_coco = load_detections(gt_coco, detections)
    scores = matched_scores(gt_coco, dt_coco)

    class_of = {a["id"]: gt_coco.cats[a["category_id"]]["name"] for a in gt_coco.dataset["annotations"]}
    class_names = [gt_coco.cats[c]["name"] for c in object_cat_ids(gt_coco)]

    def recall(ids: Iterable[int]) -> float | None:
        found = [scores[i] >= score_threshold for i in ids]
        return float(np.mean(found)) if found else None

    def figures(ids: list[int], ap: dict) -> dict:
        per_class = {c: recall([i for i in ids if class_of[i] == c]) for c in class_names}
        return {**ap, "n_gt": len(ids), "recall": recall(ids), "recall_per_class": per_class,
                "small": len(ids) < min_boxes}  # fmt: skip

    kinds = {}
    for kind in KINDS:
        members, ap, metric, definition = _kind(kind, gt_coco, dt_coco)
        if not members:
            kinds[kind] = {"metric": metric, "definition": definition, "available": False}
            kinds[kind]["reason"] = _UNAVAILABLE[kind]
            continue
        groups = {name: figures(ids, ap.get(name, {})) for name, ids in members.items()}
        kinds[kind] = {"metric": metric, "definition": definition, "available": True, "groups": groups}
        kinds[kind].update(worst_gap(groups, metric))
    return {
        "score_threshold": score_threshold,
        "recall_iou": RECALL_IOU,
        "min_boxes": min_boxes,
        "kinds": kinds,
        "worst": _worst_of_all(kinds),
    }


_UNAVAILABLE = {
    "lighting": "no image record has a lighting label",
    "occlusion": "no box has a visible_fraction",
    "colour": "no box has actor_rgb (a dataset written before format 3)",
    "pedestrian_road": "no pedestrian box has on_road (a dataset written before format 3)",
}


def _kind(kind: str, gt_coco: COCO, dt_coco: COCO) -> tuple[dict[str, list[int]], dict[str, dict], str, str]:
    """(members {group: ground-truth ids}, AP metrics {group: m} ({} for recall kinds), metric,
    definition) of one kind; no members when the dataset lacks its labels."""
    objects = set(object_cat_ids(gt_coco))  # traffic lights are no group (light_eval.py measures them)
    anns = [a for a in gt_coco.dataset["annotations"] if not a.get("iscrowd") and a["category_id"] in objects]
    if kind == "class":
        cats = sorted((c for c in gt_coco.dataset["categories"] if c["id"] in objects), key=lambda c: c["id"])
        members = {c["name"]: [a["id"] for a in anns if a["category_id"] == c["id"]] for c in cats}
        ap = {c["name"]: coco_metrics(gt_coco, dt_coco, cat_ids=[c["id"]])[0] for c in cats}
        return members, ap, "AP50", KIND_DEFINITIONS["class"]
    if kind in ("distance", "height"):
        key, bands = ("distance_m", DISTANCE_BANDS_M) if kind == "distance" else (box_height, HEIGHT_BANDS_PX)
        members = _band_members(anns, key, bands)
        known = kind == "height" or has_finite(dt_coco.dataset["annotations"], "distance_m")
        if not known:  # no predicted distances: a detection's band is unknown
            return members, {}, "recall", KIND_DEFINITIONS["distance_recall"]
        return members, band_metrics(gt_coco, dt_coco, key, bands, True), "AP50", KIND_DEFINITIONS[kind]
    if kind in ("lighting", "camera"):
        images = image_groups(gt_coco, light_of if kind == "lighting" else _camera_of)
        in_image = {img: name for name, ids in images.items() for img in ids}
        members = {name: [a["id"] for a in anns if in_image.get(a["image_id"]) == name] for name in images}
        ap = {name: coco_metrics(gt_coco, dt_coco, img_ids=ids)[0] for name, ids in images.items()}
        return members, ap, "AP50", KIND_DEFINITIONS[kind]
    return _recall_members(kind, gt_coco, anns), {}, "recall", KIND_DEFINITIONS[kind]


def _recall_members(kind: str, gt_coco: COCO, anns: list[dict]) -> dict[str, list[int]]:
    """{group: ground-truth ids} of a kind whose detections' group is unknown ({} without labels)."""
    if kind == "occlusion":
        labelled = [a for a in anns if a.get("visible_fraction") is not None]
        return _band_members(labelled, "visible_fraction", VISIBILITY_BANDS) if labelled else {}
    if kind == "colour":
        labelled = [a for a in anns if a.get("actor_rgb") is not None]
        return _named_members(labelled, lambda a: colour_group(a["actor_rgb"]), COLOURS)
    pedestrian = next(
        (c["id"] for c in gt_coco.dataset["categories"] if c["name"] == PEDESTRIAN_CATEGORY), None
    )
    labelled = [a for a in anns if a["category_id"] == pedestrian and a.get("on_road") is not None]
    return _named_members(labelled, lambda a: ROAD_SIDES[0] if a["on_road"] else ROAD_SIDES[1], ROAD_SIDES)


def _band_members(anns: list[dict], key, bands) -> dict[str, list[int]]:
    """{band: ids of the records whose attribute (a key or a function of the record) is in [lo, hi)}."""
    value = key if callable(key) else (lambda a: a.get(key))
    return {
        name: [a["id"] for a in anns if value(a) is not None and lo <= value(a) < hi]
        for name, lo, hi in bands
    }


def _named_members(
    anns: list[dict], group_of: Callable[[dict], str], names: Sequence[str]
) -> dict[str, list[int]]:
    """{name: ids of the records that `group_of` puts in it} over `names` ({} for no records)."""
    if not anns:
        return {}
    return {name: [a["id"] for a in anns if group_of(a) == name] for name in names}


def _camera_of(image: dict) -> str:
    return str(image.get("camera", DEFAULT_CAMERA))


def matched_scores(gt_coco: COCO, dt_coco: COCO) -> dict[int, float]:
    """{ground-truth id: score of the detection COCOeval matches it to at IoU RECALL_IOU, 0.0 when none}
    (all categories, all areas, the 100 best detections per image and category)."""
    ev = COCOeval(gt_coco, dt_coco, "bbox")
    ev.params.iouThrs = np.array([RECALL_IOU])
    ev.params.areaRng, ev.params.areaRngLbl = [[0.0, 1e10]], ["all"]
    ev.params.maxDets = [100]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    scores = dict.fromkeys(gt_coco.getAnnIds(), 0.0)
    for e in ev.evalImgs:
        if e is None:
            continue
        for gt_id, dt_id in zip(e["gtIds"], e["gtMatches"][0], strict=True):
            if dt_id > 0:
                scores[gt_id] = float(dt_coco.anns[int(dt_id)]["score"])
    return scores


def worst_gap(groups: dict[str, dict], metric: str) -> dict:
    """{"mean", "worst", "worst_value", "gap"} of a kind's `metric` over its groups that are not
    small: the mean over them, the lowest one, and lowest minus mean (None with fewer than two)."""
    values = {n: g[metric] for n, g in groups.items() if not g["small"] and g.get(metric) is not None}
    if len(values) < 2:
        return {"mean": None, "worst": None, "worst_value": None, "gap": None}
    worst = min(values, key=values.get)
    mean = float(np.mean(list(values.values())))
    return {"mean": mean, "worst": worst, "worst_value": values[worst], "gap": values[worst] - mean}


def _worst_of_all(kinds: dict[str, dict]) -> dict | None:
    """The kind and group with the most negative gap over all kinds (None when no kind has a gap)."""
    gaps = [(k["gap"], name) for name, k in kinds.items() if k.get("gap") is not None]
    if not gaps:
        return None
    gap, name = min(gaps)
    k = kinds[name]
    return {"kind": name, "group": k["worst"], "metric": k["metric"], "value": k["worst_value"],
            "mean": k["mean"], "gap": gap}  # fmt: skip


SLICE_KINDS = ("distance", "lighting", "height")  # kinds that are also the old `slices`
SLICE_KEYS = ("AP", "AP50", "AP75", "n_gt", "AP50_per_class")


def as_slices(groups: dict) -> dict[str, dict]:
    """The old `slices` ({kind: {band: COCO metrics}}) of the AP kinds that had them: the same
    figures as `coco_eval.evaluate`'s slices. The occlusion slices are not among them (module
    docstring: recall replaced them)."""
    out = {}
    for kind in SLICE_KINDS:
        k = groups["kinds"].get(kind, {})
        if k.get("metric") == "AP50":
            out[kind] = {name: {key: g[key] for key in SLICE_KEYS} for name, g in k["groups"].items()}
    return out


def _fmt(v: float | None) -> str:
    return "    -" if v is None else f"{v:5.3f}"


def format_groups(groups: dict) -> str:
    """A plain-text table: one row per group (metric, AP, AP50, recall, boxes, small), and each
    kind's mean, worst group and gap."""
    thr = groups["score_threshold"]
    lines = [
        f"groups: AP50 where a detection's group is known, else recall at score >= {thr:g} and IoU "
        f"{groups['recall_iou']:g}; * small (< {groups['min_boxes']} boxes, left out of the gap)",
        f"{'kind':16s} {'group':15s} {'metric':6s} {'AP':>5s} {'AP50':>5s} {'recall':>6s} {'boxes':>6s}",
    ]
    for kind, k in groups["kinds"].items():
        if not k["available"]:
            lines.append(f"{kind:16s} unavailable: {k['reason']}")
            continue
        for name, g in k["groups"].items():
            small = " *" if g["small"] else ""
            lines.append(
                f"{kind:16s} {name:15s} {k['metric']:6s} {_fmt(g.get('AP'))} {_fmt(g.get('AP50'))} "
                f"{_fmt(g['recall']):>6s} {g['n_gt']:6d}{small}"
            )
        if k["gap"] is not None:
            lines.append(
                f"{'':16s} mean {k['metric']} {k['mean']:.3f}, worst {k['worst']} {k['worst_value']:.3f},"
                f" gap {k['gap']:+.3f}"
            )
    w = groups["worst"]
    if w is not None:
        lines.append(
            f"worst group: {w['kind']} {w['group']} ({w['metric']} {w['value']:.3f}, gap {w['gap']:+.3f})"
        )
    return "\n".join(lines) + "\n"

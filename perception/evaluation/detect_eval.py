"""`bulletdrive detect-eval`: measure a detector checkpoint on a dataset split.

COCO mAP@[.5:.95], AP50, AP75 through pycocotools (perception/evaluation/coco_eval.py), per class and per
slice (distance band, lighting, box height), a precision-recall plot, the metrics per group with the
worst-group gap (perception/evaluation/groups.py: class, distance, height, lighting, camera,
occlusion, colour, pedestrian on the road or the sidewalk), and the localisation error on the
ground by distance band (detections matched to ground-truth boxes at IoU >= 0.5, localised through
the camera model of each frame, against the actor's true position) with the distance head's bias
by lens (`lens_calibration`: what perception/localise.py DISTANCE_LENS corrects), and the traffic
lights' state accuracy within 50 m (perception/evaluation/light_eval.py). The AP over all classes is
the objects' (perception.types.OBJECT_CLASSES); each light class has its own row.
Writes OUT/detect_eval.json, OUT/detect_eval.txt (readable tables) and OUT/pr_curve.png.

The JSON's `slices` are the groups' figures for the kinds where a slice's AP measures its slice
(distance, lighting, height); `replaced` names the old figures that are gone and why.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from perception.coco import iou_matrix, load_coco, read_image, xywh_to_xyxy
from perception.detection.detector import Detector
from perception.evaluation.coco_eval import coco_detections, evaluate, format_table, pr_plot
from perception.evaluation.groups import as_slices, evaluate_groups, format_groups
from perception.evaluation.light_eval import format_lights, light_states
from perception.files import write_bytes, write_json
from perception.lights import LIGHT_PEAK_MIN_SCORE, recognise_lights
from perception.localise import DISTANCE_LENS, error_by_band, localise
from perception.types import FIRST_LIGHT_CLASS

LOCALISE_MIN_SCORE = 0.3  # detections this confident or more are localised and matched to the truth
MATCH_IOU = 0.5  # a localised detection matches a ground-truth box of its class at this IoU or more
LENS_BAND_PX = 25.0  # the focal-length bands of the distance head's lens table [px]
REPLACED = {
    "slices.occlusion": "replaced by groups.kinds.occlusion (recall at the score threshold): a "
    "detection's visibility cannot be known, so every unmatched detection was a false positive in "
    "every visibility band, and the partly occluded bands' AP measured the false positives elsewhere."
}


def detect_eval(
    checkpoint: str,
    data_dir: str,
    split: str,
    out_dir: str,
    *,
    batch_size: int,
    score_threshold: float,
    recall_score_threshold: float,
    min_group_boxes: int,
    device: str,
    runtime: str = "torch",
) -> dict:
    """Detect on every image of the split (keeping detections down to `score_threshold`) and write
    the metrics; the groups' recall counts detections >= `recall_score_threshold` (module docstring).
    `runtime`: the Detector's (torch, or onnxruntime for an exported .onnx model or a .pt)."""
    if recall_score_threshold < score_threshold:
        raise ValueError(
            f"recall_score_threshold {recall_score_threshold} < score_threshold {score_threshold}"
        )
    data = load_coco(data_dir, split)
    detector = Detector(checkpoint, device, runtime=runtime)
    detections = []
    matched: dict[str, list] = {k: [] for k in ("est_xy", "true_xy", "distance_m", "focal_px", "head_m")}
    t0 = time.perf_counter()
    for start in range(0, len(data.images), batch_size):
        images = data.images[start : start + batch_size]
        rgbs = [read_image(data, im) for im in images]
        decoded = detector.detect(rgbs, min(score_threshold, LIGHT_PEAK_MIN_SCORE))
        for im, rgb, det in zip(images, rgbs, decoded, strict=True):
            det = recognise_lights(rgb, det, score_threshold)  # as the closed loop reads lights
            detections.extend(coco_detections(im["id"], det))
            _match_positions(im, data.annotations.get(im["id"], []), det, matched)
    seconds = time.perf_counter() - t0
    results = evaluate(data.data, detections, slices=())
    groups = evaluate_groups(
        data.data, detections, score_threshold=recall_score_threshold, min_boxes=min_group_boxes
    )
    results["slices"] = as_slices(groups)
    results["groups"] = groups
    results["replaced"] = REPLACED
    results["traffic_lights"] = light_states(data.data, detections, recall_score_threshold)
    m = {k: np.array(v) for k, v in matched.items()}
    results["localisation_error_m"] = (
        error_by_band(m["est_xy"], m["true_xy"], m["distance_m"]) if len(m["est_xy"]) else None
    )
    results["distance_head_by_lens"] = lens_calibration(
        m["focal_px"], m["head_m"] / np.maximum(m["distance_m"], 1e-9)
    )
    results["checkpoint"] = str(detector.path)
    results["runtime"] = f"{runtime} {detector.precision}"
    results["split"] = split
    results["images"] = len(data.images)
    results["inference_ms_per_image"] = round(1000 * seconds / max(len(data.images), 1), 2)
    out = Path(out_dir)
    write_json(out / "detect_eval.json", results)
    lights = "" if results["traffic_lights"] is None else format_lights(results["traffic_lights"])
    table = "\n".join(
        (
            format_table(results),
            format_groups(groups),
            _localisation_table(results["localisation_error_m"]),
            _lens_table(results["distance_head_by_lens"]),
            lights,
        )
    )
    write_bytes(out / "detect_eval.txt", table.encode())
    pr_plot(results["pr"], out / "pr_curve.png")
    results["table"] = table
    return results


def _match_positions(image: dict, anns: list[dict], det: dict, matched: dict[str, list]) -> None:
    """Localise the confident detections that match a ground-truth box (IoU >= MATCH_IOU, same
    class); append to `matched` their ground positions, the actors' true positions and distances,
    the camera's focal length and the distance head's output."""
    anns = [a for a in anns if not a.get("iscrowd")]
    if not anns or "cam_to_world" not in image or not len(det["scores"]):
        return
    keep = (det["scores"] >= LOCALISE_MIN_SCORE) & (det["class_ids"] < FIRST_LIGHT_CLASS)  # objects only
    boxes, classes, head_m = det["boxes_xyxy"][keep], det["class_ids"][keep], det["distances_m"][keep]
    if not len(boxes):
        return
    gt = xywh_to_xyxy(np.array([a["bbox"] for a in anns], dtype=float))
    gt_cls = np.array([a["category_id"] - 1 for a in anns])
    iou = iou_matrix(boxes, gt) * (classes[:, None] == gt_cls[None, :])
    xy, _ = localise(
        boxes,
        head_m,
        classes,
        np.array(image["K"]),
        np.array(image["cam_to_world"]),
        image_size_px=(image["width"], image["height"]),
        distance_lens=DISTANCE_LENS,  # as the closed loop localises
    )
    used = set()
    for i in np.argsort(-det["scores"][keep]):
        j = int(np.argmax(iou[i]))
        if iou[i, j] >= MATCH_IOU and j not in used and "position_m" in anns[j] and np.isfinite(xy[i]).all():
            used.add(j)
            matched["est_xy"].append(xy[i])
            matched["true_xy"].append(anns[j]["position_m"])
            matched["distance_m"].append(anns[j]["distance_m"])
            matched["focal_px"].append(image["K"][0][0])
            matched["head_m"].append(head_m[i])


def _localisation_table(bands: dict | None) -> str:
    if not bands:
        return "localisation: no matched detections\n"
    lines = [
        "localisation error on the ground [m]",
        f"{'band':10s} {'n':>6s} {'mean':>7s} {'median':>7s} {'p90':>7s}",
    ]
    for band, v in bands.items():
        cells = " ".join(_metres(v[k]) for k in ("mean_m", "median_m", "p90_m"))
        lines.append(f"{band:10s} {v['count']:6d} {cells}")
    return "\n".join(lines) + "\n"


def lens_calibration(focal_px: np.ndarray, ratio: np.ndarray, min_count: int = 20) -> dict | None:
    """The distance head's output over the true distance, by the camera's focal length [px]: the
    median per focal band (25 px wide, those of >= min_count detections), and (F, E) of
    ratio = (F / f)^E fitted to all in logs (perception/localise.py DISTANCE_LENS takes them).
    None without a finite distance."""
    ok = np.isfinite(ratio) & (ratio > 0)
    focal_px, ratio = focal_px[ok], ratio[ok]
    if len(ratio) < 2:
        return None
    bands = {}
    for band in np.unique(np.round(focal_px / LENS_BAND_PX) * LENS_BAND_PX):
        inside = np.abs(focal_px - band) <= LENS_BAND_PX / 2
        if inside.sum() >= min_count:
            bands[f"{band:.0f}"] = {
                "count": int(inside.sum()),
                "median_ratio": float(np.median(ratio[inside])),
            }
    slope, intercept = np.polyfit(np.log(focal_px), np.log(ratio), 1) if np.ptp(focal_px) > 0 else (0.0, 0.0)
    fit = {"exponent": float(-slope), "focal_px": float(np.exp(intercept / -slope)) if slope else None}
    return {"by_focal_px": bands, "fit": fit}


def _lens_table(lens: dict | None) -> str:
    if not lens:
        return ""
    lines = ["distance head / true distance, by lens focal length [px]"]
    lines += [
        f"{band:>10s} {v['count']:6d} {v['median_ratio']:7.3f}" for band, v in lens["by_focal_px"].items()
    ]
    fit = lens["fit"]
    if fit["focal_px"] is not None:
        lines.append(f"fit: ratio = ({fit['focal_px']:.0f} / f)^{fit['exponent']:.2f}")
    return "\n".join(lines) + "\n"


def _metres(v: float | None) -> str:
    return "   -   " if v is None else f"{v:7.2f}"

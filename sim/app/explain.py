"""`bulletdrive explain`: where in a frame the detector finds each of its detections (perception/explain.py).

The frame is a dataset image (data_dir, split, image = index or file name) or a camera frame of a
scenario (scenario, seed, t_s: the first frame at or after t_s, driven with ground-truth perception).
What is explained: the detections (score >= score_threshold), or with targets=truth the labelled
boxes, each at the heatmap cell of its centre: what the detector sees where it misses an object.
Writes one PNG per explained target (the map over the enlarged frame, the labelled boxes in white)
and explain.json, each atomically, after every check has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from perception.types import CLASSES
from sim.app import config as C
from sim.app.schemas import ExplainConfig

HELP = """usage: bulletdrive explain [OVERRIDES...]

Class activation maps (HiResCAM, or Grad-CAM with method=gradcam) of the detections in one frame,
overlaid on it: out_dir/*.png and explain.json (each map's share of its mass inside its box).
The frame: a dataset image (data_dir, split, image=INDEX or FILE_NAME) or a scenario's camera
frame (scenario=NAME seed=S t_s=T). targets=truth explains the labelled boxes (why one is missed).
Examples: bulletdrive explain data_dir=data/sim image=12
          bulletdrive explain scenario=cut_in seed=3 t_s=4 class_name=vehicle index=0
          bulletdrive explain data_dir=data/sim image=12 targets=truth corruption=motion_blur severity=3"""

MATCH_IOU = 0.5  # a detection and a labelled box of one class at this IoU or more are the same object


@dataclass(frozen=True)
class Frame:
    """The frame to explain: rgb (H, W, 3) uint8, its labelled boxes, and where it came from."""

    rgb: np.ndarray
    truth: list[dict]  # {box_xyxy, class_id, distance_m, visible_fraction} per labelled object
    source: dict  # for explain.json
    stem: str  # file names start with it


def run(args: list[str]) -> int:
    loaded = C.load_checked("explain", args)
    e: ExplainConfig = loaded.values
    scenario = loaded.cfg.hydra.runtime.choices.get("scenario")
    C.check_device("device", e.device)
    C.check_out_dir(e.out_dir, "out_dir")
    if (e.image is None) == (e.scenario is None):
        raise C.ConfigError(
            "give image=INDEX|FILE_NAME (a dataset image) or scenario=NAME (a rendered frame), not both"
        )
    from perception.evaluation.corruptions import KINDS

    if e.corruption not in ("none", *KINDS):
        raise C.ConfigError(f"corruption={e.corruption!r} is not one of none, {', '.join(KINDS)}")
    import torch

    from perception.detection.detector import resolve_checkpoint
    from perception.explain import Explainer

    torch.set_num_threads(e.threads)
    device = e.device if e.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    try:
        explainer = Explainer.from_checkpoint(e.checkpoint, device, layer=e.layer, method=e.method)
    except ValueError as err:  # an unknown layer or method
        raise C.ConfigError(str(err)) from None
    frame = _dataset_frame(e) if scenario is None else _scenario_frame(scenario, e, _drive_overrides(args))
    if e.corruption != "none":
        frame = _corrupted(frame, e)
    model_size = (explainer.config.input_height, explainer.config.input_width, 3)
    if frame.rgb.shape != model_size:
        raise C.ConfigError(f"the frame is {frame.rgb.shape[:2]} px, the detector takes {model_size[:2]}")
    _mark_detected(explainer, frame, e.score_threshold)
    explanations, labelled = _explain(explainer, frame, e)
    records = _records(explanations, labelled, frame, e)
    _write(Path(e.out_dir), frame, explanations, records, e, str(resolve_checkpoint(e.checkpoint)))
    for r in records:
        print(
            f"{r['png']}: {r['class']} score {r['score']:.2f}, {100 * (r['mass_in_box'] or 0):.0f} % of the map in its box"
        )
    print(f"results: {e.out_dir}/explain.json")
    return 0


# ---------------------------------------------------------------------------- the frame
def _corrupted(frame: Frame, e: ExplainConfig) -> Frame:
    """The frame under one of the robustness benchmark's corruptions (seeded by `seed`): why a
    detection is lost under blur, fog, noise..."""
    from perception.evaluation.corruptions import corrupt, describe

    rgb = corrupt(np.random.default_rng(e.seed), frame.rgb, e.corruption, e.severity)
    source = {**frame.source, "corruption": describe(e.corruption, e.severity)}
    return Frame(rgb, frame.truth, source, f"{frame.stem}_{e.corruption}{e.severity:g}")


def _dataset_frame(e: ExplainConfig) -> Frame:
    from perception.coco import load_coco, read_image, xywh_to_xyxy

    data = load_coco(e.data_dir, e.split)
    if e.image.isdigit():
        index = int(e.image)
        if index >= len(data.images):
            raise C.ConfigError(
                f"image={e.image}: split '{e.split}' has {len(data.images)} images (0 to {len(data.images) - 1})"
            )
        image = data.images[index]
    else:
        named = [im for im in data.images if im["file_name"] == e.image]
        if not named:
            raise C.ConfigError(f"image={e.image}: no such file name in split '{e.split}' of {e.data_dir}")
        image = named[0]
    truth = [
        {
            "box_xyxy": [round(float(v), 2) for v in xywh_to_xyxy(np.array([a["bbox"]]))[0]],
            "class_id": a["category_id"] - 1,
            "distance_m": a.get("distance_m"),
            "visible_fraction": a.get("visible_fraction"),
        }
        for a in data.annotations.get(image["id"], [])
        if not a.get("iscrowd", 0)
    ]
    source = {
        "data_dir": str(e.data_dir),
        "split": e.split,
        "file_name": image["file_name"],
        "image_id": image["id"],
    }
    return Frame(read_image(data, image), truth, source, Path(image["file_name"]).stem)


class _Captured(Exception):
    """Stops the drive once the wanted frame is captured."""


def _drive_overrides(args: list[str]) -> list[str]:
    """The overrides of the scenario (scenario.KEY=..., +scenario.clutter=...) and hydra.searchpath,
    for the drive that renders the frame."""
    return [
        line
        for key, line in C.override_keys(args)
        if key.startswith("scenario.") or key == "hydra.searchpath"
    ]


def _scenario_frame(name: str, e: ExplainConfig, overrides: list[str]) -> Frame:
    """The first camera frame at or after t_s of the scenario driven with ground-truth perception."""
    from sim.app.drive import drive

    got: dict = {}

    def capture(sim, frames, world, plan) -> None:
        frame = frames[0]  # the rig's first camera
        if frame.t_s >= e.t_s - 1e-9:
            got["frame"], got["boxes"] = frame, sim.boxes(frame)
            raise _Captured

    base = [f"scenario={name}", f"seed={e.seed}", "perception=ground_truth", "sim.camera.enabled=true"]
    try:
        result, _ = drive([*base, *overrides], write=False, on_frame=capture)
    except _Captured:
        pass
    else:
        end_s = float(result.ticks["t_s"][-1])
        raise C.ConfigError(f"t_s={e.t_s}: scenario {name} seed {e.seed} ends at {end_s:.1f} s")
    frame = got["frame"]
    truth = [
        {
            "box_xyxy": [round(float(v), 2) for v in b.box_xyxy],
            "class_id": int(b.class_id),
            "distance_m": float(b.distance_m),
            "visible_fraction": float(b.visible_fraction),
        }
        for b in got["boxes"]
    ]
    source = {"scenario": name, "seed": e.seed, "t_s": round(float(frame.t_s), 3), "overrides": overrides}
    return Frame(frame.rgb, truth, source, f"{name}_seed{e.seed}_t{frame.t_s:.1f}s")


# ---------------------------------------------------------------------------- explaining
def _mark_detected(explainer, frame: Frame, score_threshold: float) -> None:
    """Mark each labelled box `detected`: a detection of its class with score >= score_threshold
    overlaps it at IoU >= MATCH_IOU."""
    from perception.coco import iou_matrix

    found = explainer.detections(frame.rgb, score_threshold)
    for u in frame.truth:
        boxes = np.array([t.box_xyxy for t in found if t.class_id == u["class_id"]]).reshape(-1, 4)
        u["detected"] = bool((iou_matrix(np.array([u["box_xyxy"]]), boxes) >= MATCH_IOU).any())


def _explain(explainer, frame: Frame, e: ExplainConfig) -> tuple[list, list[dict | None]]:
    """The explanations that the config picks (targets, class_name, index), in order, and for each
    the labelled box it stands for (the one it overlaps most; None if it overlaps none)."""
    from perception.explain import Target

    wanted = None if e.class_name is None else CLASSES.index(e.class_name)
    if e.targets == "truth":
        h, w = frame.rgb.shape[:2]
        kept = _pick([u for u in frame.truth if wanted in (None, u["class_id"])], e, "labelled boxes")
        targets = [Target.of_box(u["box_xyxy"], u["class_id"], h, w) for u in kept]
        return explainer.explain(frame.rgb, targets), kept
    found = [t for t in explainer.detections(frame.rgb, e.score_threshold) if wanted in (None, t.class_id)]
    targets = _pick(found, e, "detections")
    return explainer.explain(frame.rgb, targets), [_best_match(t, frame.truth) for t in targets]


def _pick(items: list, e: ExplainConfig, what: str) -> list:
    which = f" of class {e.class_name}" if e.class_name else ""
    which += f" with score >= {e.score_threshold}" if what == "detections" else ""
    if not items:
        raise C.ConfigError(f"the frame has no {what}{which}: nothing to explain")
    if e.index is None:
        return items
    if e.index >= len(items):
        raise C.ConfigError(
            f"index={e.index}: the frame has {len(items)} {what}{which} (0 to {len(items) - 1})"
        )
    return [items[e.index]]


def _best_match(target, truth: list[dict]) -> dict | None:
    """The labelled box of the target's class that it overlaps most, with the IoU; None if none."""
    from perception.coco import iou_matrix

    same = [u for u in truth if u["class_id"] == target.class_id]
    if not same:
        return None
    ious = iou_matrix(np.array([target.box_xyxy]), np.array([u["box_xyxy"] for u in same]))[0]
    best = int(ious.argmax())
    return {**same[best], "iou": round(float(ious[best]), 3)} if ious[best] > 0 else None


def _records(explanations: list, labelled: list[dict | None], frame: Frame, e: ExplainConfig) -> list[dict]:
    """explain.json's entry of each explanation."""
    kind = "truth" if e.targets == "truth" else "det"
    return [
        {
            "png": f"{frame.stem}_{kind}{i:02d}.png",
            "class": CLASSES[x.target.class_id],
            "score": round(x.score, 4),  # at the explained cell (for a labelled box: its centre cell)
            "box_xyxy": [round(v, 2) for v in x.target.box_xyxy],
            "cell_yx": list(x.target.cell_yx),
            "mass_in_box": round(x.mass_in_box, 4),  # NaN (null) for an all-zero map
            "box_share": round(x.box_share, 5),
            "labelled_box": u,  # the labelled box it stands for, with "detected" (and "iou" for a detection)
        }
        for i, (x, u) in enumerate(zip(explanations, labelled, strict=True))
    ]


# ---------------------------------------------------------------------------- writing
def panel(rgb: np.ndarray, explanation, truth: list[dict], scale: int) -> np.ndarray:
    """The map over the frame enlarged `scale` times: labelled boxes in white, the explained box in
    its class colour; top left its class, score and the share of the map inside it (a label beside
    a small box would hide what the map shows)."""
    from perception.explain import overlay
    from sim.record import viz

    size = (rgb.shape[1] * scale, rgb.shape[0] * scale)
    big = overlay(
        cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST),
        cv2.resize(explanation.cam, size, interpolation=cv2.INTER_LINEAR),
    )
    for u in truth:
        x0, y0, x1, y1 = (round(v * scale) for v in u["box_xyxy"])
        cv2.rectangle(big, (x0, y0), (x1, y1), (255, 255, 255), 1)
    t, share = explanation.target, explanation.mass_in_box
    label = (
        f"{explanation.label} {100 * share:.0f}% in box" if share == share else f"{explanation.label} no map"
    )
    return viz.draw_overlay(big, [(*(v * scale for v in t.box_xyxy), t.class_id, "")], [label])


def _write(
    out: Path, frame: Frame, explanations: list, records: list[dict], e: ExplainConfig, checkpoint: str
) -> None:
    from perception.files import write_bytes, write_json

    for x, r in zip(explanations, records, strict=True):
        ok, png = cv2.imencode(
            ".png", cv2.cvtColor(panel(frame.rgb, x, frame.truth, e.scale), cv2.COLOR_RGB2BGR)
        )
        if not ok:
            raise RuntimeError(f"could not encode {r['png']}")
        write_bytes(out / r["png"], png.tobytes())
    write_json(
        out / "explain.json",
        {
            "checkpoint": checkpoint,
            "source": frame.source,
            "layer": e.layer,
            "method": e.method,
            "targets": e.targets,
            "score_threshold": e.score_threshold,
            "explanations": records,
            "labelled_boxes": frame.truth,
        },
    )

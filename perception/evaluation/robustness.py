"""The corruption benchmark of a detector: AP under common image corruptions, mPC and rPC.

Michaelis et al., "Benchmarking Robustness in Object Detection" (2019): with P_{c,s} the AP under
corruption c at severity s,
    mPC = 1 / N_c sum_c 1 / N_s sum_s P_{c,s}     (mean performance under corruption)
    rPC = mPC / P_clean                           (relative performance under corruption)
with AP = COCO's mAP@[.5:.95] (pycocotools, perception/evaluation/coco_eval.py). The same two
measures over AP50 are reported beside them (mPC50, rPC50).

Each image of a val split is corrupted by each kind at each severity (perception/evaluation/
corruptions.py), seeded by (seed, kind, severity, image id): a condition's images do not depend on
which other kinds or severities a run asks for, nor on the batch size. The loop reads a batch of
images once and runs every condition on it through `Detector.detect`, without a DataLoader: on a
2-core machine the detector's threads are the parallelism, and a worker process would only compete
with them.

`max_images` takes an evenly spaced subset of the split (every scene, fewer frames of each), whose
ground truth alone is scored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception import charts
from perception.coco import CocoSplit, DatasetError, read_image
from perception.detection.detector import Detector
from perception.evaluation import corruptions
from perception.evaluation.coco_eval import coco_detections, evaluate
from perception.files import write_bytes, write_json

METRICS = ("AP", "AP50", "AP75")


@dataclass(frozen=True)
class Condition:
    """One way of showing the images to the detector: clean (kind None) or a corruption at a severity."""

    kind: str | None
    severity: int = 0

    @property
    def name(self) -> str:
        return "clean" if self.kind is None else f"{self.kind}/{self.severity}"

    @property
    def label(self) -> str:
        return "clean" if self.kind is None else corruptions.describe(self.kind, self.severity)

    def apply(self, rgb: np.ndarray, image_id: int, seed: int) -> np.ndarray:
        """The image (H, W, 3) uint8 as this condition shows it (clean: itself)."""
        if self.kind is None:
            return rgb
        rng = np.random.default_rng((seed, corruptions.KINDS.index(self.kind), self.severity, image_id))
        return corruptions.corrupt(rng, rgb, self.kind, self.severity)


def conditions(kinds: Sequence[str], severities: Sequence[int]) -> list[Condition]:
    """Clean first, then every kind at every severity; ValueError naming an unknown one."""
    for kind in kinds:
        corruptions.parameters(kind, 0)  # unknown kind -> ValueError
    bad = [s for s in severities if s not in corruptions.SEVERITIES]
    if bad:
        raise ValueError(f"severity {bad[0]} is not one of {corruptions.SEVERITIES}")
    return [Condition(None)] + [Condition(k, s) for k in kinds for s in severities]


def subset(split: CocoSplit, max_images: int) -> tuple[list[dict], dict]:
    """(image records, ground-truth COCO dict of just those images): `max_images` evenly spaced
    images of the split (0 or more than it has: all of them)."""
    images = split.images
    if 0 < max_images < len(images):
        images = [images[i] for i in np.linspace(0, len(images) - 1, max_images).round().astype(int)]
    ids = {im["id"] for im in images}
    gt = {
        "images": [im for im in split.data["images"] if im["id"] in ids],
        "annotations": [a for a in split.data["annotations"] if a["image_id"] in ids],
        "categories": split.data["categories"],
    }
    return images, gt


def check_size(split: CocoSplit, detector: Detector) -> None:
    """DatasetError unless every image of the split has the detector's input size."""
    want = (detector.config.input_width, detector.config.input_height)
    sizes = {(im["width"], im["height"]) for im in split.images}
    if sizes != {want}:
        raise DatasetError(
            f"{split.annotation_path}: images are {sorted(sizes)} (W, H), the detector takes {want}"
        )


def detect_conditions(
    detector: Detector,
    split: CocoSplit,
    images: Sequence[dict],
    conds: Sequence[Condition],
    *,
    seed: int,
    batch_size: int,
    score_threshold: float,
    progress=None,
) -> dict[str, list[dict]]:
    """{condition name: COCO detections over `images`}: each batch read once, then corrupted and
    detected under every condition. `progress(n_images_done)` is called after each batch."""
    detections: dict[str, list[dict]] = {c.name: [] for c in conds}
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        frames = [read_image(split, im) for im in batch]
        for cond in conds:
            shown = np.stack([cond.apply(rgb, im["id"], seed) for rgb, im in zip(frames, batch, strict=True)])
            for im, det in zip(batch, detector.detect(shown, score_threshold), strict=True):
                detections[cond.name].extend(coco_detections(im["id"], det))
        if progress is not None:
            progress(start + len(batch))
    return detections


def score(gt: dict, detections: Sequence[dict]) -> dict:
    """{AP, AP50, AP75, n_gt, AP50_per_class} of the detections (pycocotools, no slices)."""
    return evaluate(gt, detections, slices=())["overall"]


def summarise(clean: dict, corrupted: dict[str, dict[int, dict]]) -> dict:
    """mPC and rPC over AP, and over AP50 (mPC50, rPC50), as Michaelis et al. define them (module
    docstring), from the clean metrics and {kind: {severity: metrics}}; per kind, the mean over its
    severities. None where there are no corruptions, or the clean AP is 0 (rPC)."""
    out: dict = {"per_kind": {}}
    for metric, suffix in (("AP", ""), ("AP50", "50")):
        per_kind = {k: float(np.mean([m[metric] for m in sev.values()])) for k, sev in corrupted.items()}
        mpc = float(np.mean(list(per_kind.values()))) if per_kind else None
        out[f"mPC{suffix}"] = mpc
        out[f"rPC{suffix}"] = mpc / clean[metric] if mpc is not None and clean[metric] else None
        for kind, value in per_kind.items():
            out["per_kind"].setdefault(kind, {})[metric] = value
    return out


def _fmt(v: float | None) -> str:
    return "  -   " if v is None else f"{v:6.3f}"


def format_table(results: dict) -> str:
    """A plain-text table: clean, then each kind at each severity and its mean; mPC and rPC; the
    attack's AP50 by eps when one ran."""
    clean = results["clean"]
    rows = [("clean", clean, None)]
    for kind, by_severity in results["corruptions"].items():
        for m in by_severity.values():
            rows.append((m["setting"], m, m["AP"] / clean["AP"] if clean["AP"] else None))
        mean = results["per_kind"][kind]
        rows.append((f"{kind} mean", mean, mean["AP"] / clean["AP"] if clean["AP"] else None))
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'condition':<{width}}  {'AP':>6}  {'AP50':>6}  {'AP/clean':>8}"]
    for name, m, rel in rows:
        lines.append(f"{name:<{width}}  {_fmt(m['AP'])}  {_fmt(m['AP50'])}  {_fmt(rel):>8}")
    lines.append(
        f"mPC {_fmt(results['mPC'])}  rPC {_fmt(results['rPC'])}   "
        f"(AP50: mPC50 {_fmt(results['mPC50'])}  rPC50 {_fmt(results['rPC50'])})"
    )
    if results.get("adversarial"):
        lines.append(format_attack(results["adversarial"]))
    return "\n".join(lines) + "\n"


def format_attack(adv: dict) -> str:
    head = f"{adv['attack']} ({adv['steps']} steps) on {adv['images']} images, objective: {adv['objective']}"
    rows = [f"  eps {name:>6}  AP {_fmt(m['AP'])}  AP50 {_fmt(m['AP50'])}" for name, m in adv["eps"].items()]
    return "\n".join([head, *rows])


def chart(results: dict, path: str | Path) -> None:
    """AP per kind and severity as grouped bars, the clean AP as the first bar of every group."""
    kinds = list(results["corruptions"])
    severities = sorted({s for by_sev in results["corruptions"].values() for s in by_sev})
    series = {"clean": ([results["clean"]["AP"]] * len(kinds), [np.nan] * len(kinds))}
    for s in severities:
        values = [results["corruptions"][k].get(s, {}).get("AP", np.nan) for k in kinds]
        series[f"severity {s}"] = (values, [np.nan] * len(kinds))
    title = f"AP under corruption: mPC {_fmt(results['mPC']).strip()}, rPC {_fmt(results['rPC']).strip()}"
    charts.grouped_bar_chart(
        kinds, series, path, title=title, ylabel="AP [.5:.95]",
        size_px=(charts.group_width_px(len(kinds), group_px=110), 420), ylim=(0.0, 1.0),
    )  # fmt: skip


def benchmark(
    detector: Detector,
    split: CocoSplit,
    *,
    kinds: Sequence[str],
    severities: Sequence[int],
    max_images: int,
    seed: int,
    batch_size: int,
    score_threshold: float,
    progress=None,
) -> dict:
    """The corruption benchmark of `detector` on `split` (module docstring). Returns {"clean": m,
    "corruptions": {kind: {severity: m + "setting"}}, "per_kind", "mPC", "rPC", "mPC50", "rPC50",
    "images", "boxes", "seconds": {"detect", "evaluate"}} with m = score()'s metrics."""
    conds = conditions(kinds, severities)
    check_size(split, detector)
    images, gt = subset(split, max_images)
    t0 = time.perf_counter()
    detections = detect_conditions(
        detector, split, images, conds, seed=seed, batch_size=batch_size, score_threshold=score_threshold,
        progress=progress,
    )  # fmt: skip
    t1 = time.perf_counter()
    metrics = {c.name: score(gt, detections[c.name]) for c in conds}
    clean = metrics["clean"]
    corrupted: dict[str, dict[int, dict]] = {}
    for c in conds[1:]:
        corrupted.setdefault(c.kind, {})[c.severity] = {"setting": c.label, **metrics[c.name]}
    return {
        "images": len(images),
        "boxes": clean["n_gt"],
        "clean": clean,
        "corruptions": corrupted,
        **summarise(clean, corrupted),
        "seconds": {"detect": round(t1 - t0, 1), "evaluate": round(time.perf_counter() - t1, 1)},
    }


def write_results(results: dict, out_dir: str | Path) -> str:
    """OUT/robustness.json, robustness.txt (the table) and robustness.png (the chart), each written
    atomically; the attack's chart (adversarial.png) when one ran. Returns the table."""
    out = Path(out_dir)
    table = format_table(results)
    write_json(out / "robustness.json", results)
    write_bytes(out / "robustness.txt", table.encode())
    if results["corruptions"]:
        chart(results, out / "robustness.png")
    if results.get("adversarial"):
        adv = results["adversarial"]
        eps = [0.0, *(e * 255 for e in adv["eps_values"])]
        ap50 = [adv["clean"]["AP50"], *(m["AP50"] for m in adv["eps"].values())]
        charts.line_chart(
            {f"{adv['attack']} AP50": (eps, ap50)}, out / "adversarial.png", title="AP50 under attack",
            xlabel="eps [1/255]", ylabel="AP50", limits=(None, (0.0, 1.0)), markers=True,
        )  # fmt: skip
    return table

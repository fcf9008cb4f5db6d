"""`bulletdrive data`: a labelled camera dataset from randomised scenarios, in COCO format.

Each scene is one scenario driven in closed loop by the ground-truth stack with one seed (ranges
and domain randomisation drawn from it); a frame is captured every `frame_every_s` with the
ground-truth boxes of the actors it shows. Scenes run in parallel processes. Layout of OUT:

  images/{split}/{scenario}_s{seed}_{k:03d}.png    the frames (with a rig of several cameras
                                                    (sim/rig=...), one per camera: ..._{k:03d}_{camera}.png)
  shards/{split}/{scenario}_s{seed}.json           one scene's records (written when it is done)
  annotations/{split}.json                          COCO: images (+ lighting, camera name, K
                                                    and cam_to_world), annotations (+ distance_m,
                                                    visible_fraction, truncation, actor
                                                    position_m on the ground, actor_rgb, on_road),
                                                    categories (perception.types.CLASSES): the
                                                    objects, then the traffic lights that face the
                                                    camera, one class per state (light_green, ...;
                                                    + state, signal_id, distance_m, visible_fraction)
  dataset.json, summary.json, box_heights.png, contact_sheet.png

Objects too small, too hidden or too cut off to be fair targets (under MIN_BOX_HEIGHT_PX tall, less
than MIN_VISIBLE_FRACTION visible, or more than MAX_TRUNCATION outside the image: KITTI's "hard"
limit) are kept as COCO "crowd" (iscrowd 1) boxes: don't-care regions, as KITTI's DontCare, where a
detection is neither rewarded nor punished, in training and evaluation.
`clutter` (conf/data.yaml) adds static roadside objects to every train scene of a one-road scenario
(sim/scenario/parse.py; a town has its own parked cars and pedestrians), a domain randomisation;
val scenes drive the scenarios as shipped, so val measures the detector on what it meets in the
closed loop.

Train and val scenes use disjoint seeds, so no scene leaks across the split. Scenes run through the
job runner (sim/evaluation/jobs.py): the folder is locked while it is written, dataset.json fixes
its settings (other settings into the same folder are refused), every file is written atomically
and a scene counts as done only when its shard and images are on disk: a killed or interrupted run
resumes where it stopped. The same config gives the same files.

Labels for the per-group evaluation (perception/evaluation/groups.py), from format 3: `actor_rgb`,
the actor's body colour (3,) in [0, 1] (the evaluation derives its colour group from it, so the
thresholds live in one place); `on_road`, whether the actor's centre is on the carriageway (inside
its edge lines) rather than beside it; and the image's `camera` name. Older datasets lack them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception.coco import write_coco
from perception.errors import InputError
from perception.files import write_bytes, write_json
from perception.types import FIRST_LIGHT_CLASS, SIGNAL_STATES
from sim.config import DATA_SEED_MIN, SCENE_SEED_STRIDE
from sim.data.summary import summarize
from sim.evaluation.jobs import Outcome, Runner, claim_folder

FORMAT_VERSION = 6  # 2: don't-care boxes, clutter; 3: actor_rgb, on_road, camera; 4: lights; 5: as classes;
# 6: a light whose lit lamp is out of view is a don't-care box
MIN_VISIBLE_FRACTION = 0.25  # boxes of actors hidden more than this are don't-care boxes
MIN_BOX_HEIGHT_PX = 5.0  # shorter boxes are don't-care boxes ...
DONT_CARE_MIN_HEIGHT_PX = 2.0  # ... down to this height; shorter ones are left out
MAX_TRUNCATION = 0.5  # boxes more than this share outside the image are don't-care boxes
MANIFEST = "dataset.json"


class DataError(InputError):
    """Bad data settings or an output folder that belongs to another dataset."""


@dataclass(frozen=True)
class DataSettings:
    out_dir: str
    scenarios: tuple[str, ...]
    train_scenes: int
    val_scenes: int
    seed: int
    frame_every_s: float
    workers: int
    sim_overrides: tuple[str, ...] = ()
    clutter: dict = field(default_factory=dict)  # scenario `clutter` densities added to every scene ...
    town_scenarios: tuple[str, ...] = ()  # ... but these (a town has its own parked cars and pedestrians)
    empty_frames: float = 1.0  # the share of frames without a labelled box that are kept

    def __post_init__(self):
        if self.train_scenes < 1 or self.val_scenes < 1:
            raise DataError("train_scenes and val_scenes must be >= 1")
        if not self.scenarios:
            raise DataError("scenarios must list at least one scenario")
        if not self.frame_every_s > 0:
            raise DataError(f"frame_every_s={self.frame_every_s} must be > 0")
        if self.seed < 0 or self.workers < 1:
            raise DataError("seed must be >= 0 and workers >= 1")


@dataclass(frozen=True)
class SceneJob:
    split: str
    scenario: str
    seed: int
    out_dir: str
    frame_every_s: float
    sim_overrides: tuple[str, ...]
    clutter: tuple[tuple[str, object], ...] = ()
    empty_frames: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.scenario}_s{self.seed}"


def scene_jobs(cfg: DataSettings) -> list[SceneJob]:
    """Scene i drives scenarios[i % n] with seed DATA_SEED_MIN + cfg.seed * SCENE_SEED_STRIDE + i:
    val seeds follow the train ones, so the two splits never share a scene, and all lie above the
    seeds suites evaluate on. Train scenes get the clutter and keep `empty_frames` of their frames
    without a labelled box; val scenes drive the scenarios as shipped and keep every frame."""
    jobs = []
    for i in range(cfg.train_scenes + cfg.val_scenes):
        split = "train" if i < cfg.train_scenes else "val"
        scenario = cfg.scenarios[i % len(cfg.scenarios)]
        seed = DATA_SEED_MIN + cfg.seed * SCENE_SEED_STRIDE + i
        clutter = tuple(cfg.clutter.items()) if split == "train" else ()  # val: the scenarios as shipped
        clutter = () if scenario in cfg.town_scenarios else clutter
        empty = cfg.empty_frames if split == "train" else 1.0  # val: every frame, the empty ones too
        jobs.append(
            SceneJob(split, scenario, seed, cfg.out_dir, cfg.frame_every_s, cfg.sim_overrides, clutter, empty)
        )
    return jobs


LOW_SUN_DEG = 40.0  # sun elevation below this: "low_sun" (the world draws 25-80 deg)
DIM_AMBIENT = 0.55  # ambient light below this: "dim" (the world draws 0.45-0.75)


def lighting_of(light_direction, ambient: float) -> str:
    """A coarse lighting label for evaluation slices: low_sun, dim or bright."""
    elevation_deg = float(np.degrees(np.arcsin(np.clip(light_direction[2], -1.0, 1.0))))
    if elevation_deg < LOW_SUN_DEG:
        return "low_sun"
    return "dim" if ambient < DIM_AMBIENT else "bright"


def scene_overrides(job: SceneJob) -> list[str]:
    """The user's sim/scenario overrides plus the clutter of the data settings."""
    if not job.clutter:
        return list(job.sim_overrides)
    clutter = ",".join(f"{key}:{_hydra(key, value)}" for key, value in job.clutter)
    return [*job.sim_overrides, f"++scenario.clutter={{{clutter}}}"]


def run_scene(job: SceneJob) -> str:
    """Drive one scene, write its frames and its shard; returns the scene name. A frame without a
    labelled box is kept with probability `job.empty_frames` (drawn from the scene's seed)."""
    from sim.app.drive import drive

    out = Path(job.out_dir)
    image_dir = out / "images" / job.split
    records: list[dict] = []
    keep_rng = np.random.default_rng(job.seed)
    captures = 0

    def capture(sim, frames, world, plan) -> None:
        nonlocal captures
        for frame in frames:  # one image per camera of the rig (named after it when there are several)
            suffix = "" if len(frames) == 1 else f"_{frame.camera}"
            record = _frame_record(
                sim, frame, job.seed, job.scenario, f"{job.name}_{captures:03d}{suffix}.png"
            )
            labelled = any(not a["iscrowd"] for a in record["annotations"])
            if labelled or keep_rng.random() < job.empty_frames:
                _write_png(image_dir / record["image"]["file_name"], frame.rgb)
                records.append(record)
        captures += 1

    overrides = [
        f"scenario={job.scenario}",
        f"seed={job.seed}",
        "perception=ground_truth",
        "sim.camera.enabled=true",
        f"sim.camera_hz={1.0 / job.frame_every_s}",
        *scene_overrides(job),
    ]
    drive(overrides, write=False, on_frame=capture)
    write_json(out / "shards" / job.split / f"{job.name}.json", records)
    return job.name


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"could not encode {path.name}")
    write_bytes(path, png.tobytes())


def _frame_record(sim, frame, seed: int, scenario: str, file_name: str) -> dict:
    """One camera frame's record: the COCO image, its boxes and its traffic lights."""
    boxes = []
    on_road = sim.actors_on_road()
    for b in sim.boxes(frame, DONT_CARE_MIN_HEIGHT_PX):
        x0, y0, x1, y1 = (float(v) for v in b.box_xyxy)
        visible = float(b.visible_fraction)
        dont_care = (
            y1 - y0 < MIN_BOX_HEIGHT_PX
            or not visible >= MIN_VISIBLE_FRACTION
            or b.truncation > MAX_TRUNCATION
        )
        boxes.append(
            {
                "category_id": int(b.class_id) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": int(dont_care),
                "distance_m": float(b.distance_m),
                "visible_fraction": visible,
                "truncation": float(b.truncation),
                "actor_id": int(b.actor_id),
                "position_m": [float(v) for v in sim.actors.xy_m[b.actor_index]],
                "actor_rgb": [float(v) for v in sim.actors.rgba[b.actor_index, :3]],
                "on_road": bool(on_road[b.actor_index]),
            }
        )
    h, w = frame.rgb.shape[:2]
    light = lighting_of(sim.world.light_direction, sim.world.render_options["lightAmbientCoeff"])
    image = {"file_name": file_name, "width": w, "height": h, "seed": seed, "camera": frame.camera}
    image.update({"scenario": scenario, "t_s": float(frame.t_s), "lighting": light})
    image.update({"K": frame.K.tolist(), "cam_to_world": frame.cam_to_world.tolist()})
    boxes += [_light_annotation(b) for b in sim.light_boxes(frame, DONT_CARE_MIN_HEIGHT_PX)]
    return {"image": image, "annotations": boxes}


def _light_annotation(b) -> dict:
    """One traffic light's COCO record, of the class of its state: a don't-care box by the actors'
    rules, and when its lit lamp is out of view (the state the class names does not show)."""
    x0, y0, x1, y1 = b.box_xyxy
    visible = float(b.visible_fraction)
    dont_care = y1 - y0 < MIN_BOX_HEIGHT_PX or visible < MIN_VISIBLE_FRACTION  # (NaN: no depth, kept)
    dont_care |= not b.lamp_visible
    return {
        "category_id": FIRST_LIGHT_CLASS + SIGNAL_STATES.index(b.state) + 1,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        "iscrowd": int(dont_care),
        "state": b.state,
        "signal_id": int(b.signal_id),
        "distance_m": float(b.distance_m),
        "visible_fraction": visible,
        "lamp_visible": bool(b.lamp_visible),
    }


def _hydra(key: str, value) -> str:
    """A clutter density (a number or a [low, high] range) as Hydra override text."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise DataError(f"clutter.{key}: expected a number or [low, high], got {value!r}")
    text = ",".join(repr(float(v)) for v in items)
    return f"[{text}]" if isinstance(value, (list, tuple)) else text


def generate(cfg: DataSettings) -> dict:
    """Make (or finish) the dataset described by `cfg`; returns the summary.

    DataError if scenes fail (the others are kept: a rerun retries the failed ones); FolderError
    (an InputError) for a folder in use, of other settings, or not a dataset folder."""
    out = Path(cfg.out_dir)
    runner = Runner(cfg.workers)
    jobs = scene_jobs(cfg)
    with claim_folder(out, MANIFEST, _identity(cfg), "dataset") as old:
        if old is None:
            write_json(out / MANIFEST, _identity(cfg))
        todo = [j for j in jobs if not _scene_done(out, j)]
        failed: list[Outcome] = []

        def on_outcome(outcome: Outcome) -> str:
            if not outcome.ok:
                failed.append(outcome)
            return "ok" if outcome.ok else "failed"

        runner.run(run_scene, todo, on_outcome, desc="data", unit="scenes", done=len(jobs) - len(todo))
        if failed:
            first = failed[0]
            raise DataError(
                f"{len(failed)} of {len(todo)} scenes failed (rerun to retry them), "
                f"e.g. {first.job.split}/{first.job.name}: {first.error}"
            )
        for split in ("train", "val"):
            _merge(out, split, [j for j in jobs if j.split == split])
        return summarize(out)


def _identity(cfg: DataSettings) -> dict:
    """What makes the dataset: every setting but where it goes and how many processes make it."""
    manifest = {"format_version": FORMAT_VERSION, **asdict(cfg)}
    manifest.pop("out_dir")
    manifest.pop("workers")
    return manifest


def _scene_done(out: Path, job: SceneJob) -> bool:
    """A scene is done when its shard and every image it lists are on disk (a damaged shard: not)."""
    shard = out / "shards" / job.split / f"{job.name}.json"
    try:
        records = json.loads(shard.read_bytes())
        return all((out / "images" / job.split / r["image"]["file_name"]).exists() for r in records)
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _merge(out: Path, split: str, jobs: list[SceneJob]) -> None:
    """All shards of a split, in scene order, into annotations/{split}.json with fresh ids."""
    images, annotations = [], []
    for job in jobs:
        for rec in json.loads((out / "shards" / split / f"{job.name}.json").read_text()):
            image = {"id": len(images) + 1, **rec["image"]}
            images.append(image)
            for ann in rec["annotations"]:
                annotations.append({"id": len(annotations) + 1, "image_id": image["id"], **ann})
    write_coco(out / "annotations" / f"{split}.json", images, annotations)

"""The structured configs of the commands: one dataclass per command config (conf/<command>.yaml),
registered in Hydra's ConfigStore as `<command>_schema` and named first in that YAML's defaults.

Hydra checks each value's type as it composes; `sim.config.check_fields` (in `__post_init__`)
checks the ranges and choices declared with `bounded`, `one_of` and `identifier`. The values live
in the YAML only: no field here has a default, but a suite's description (a user's suite may leave
it out). The swappable parts (perception, decision, control: `_target_` configs) are free-form
here; the entry point checks them by building them. A scenario is free-form here too: its numbers
may be ranges, and sim/scenario/schema.py is its schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from perception.types import CLASSES
from sim.config import (
    DATA_SEED_MIN,
    MAX_CONTROL_HZ,
    MAX_EVAL_SEED,
    SCENE_SEED_STRIDE,
    SimConfig,
    bounded,
    check,
    check_fields,
    identifier,
    one_of,
)
from sim.metrics.scores import SCORERS

MAX_SEED = 2**31 - 1
MAX_WORKERS = 64
MAX_THREADS = 256
MAX_BATCH = 512
DEVICES = ("auto", "cpu", "cuda")
RUNTIMES = ("torch", "onnxruntime")  # perception/detection/detector.py RUNTIMES (torch-free here)
MAX_SCENES = 100_000
MAX_EPS_LEVELS = 64  # [1/255] the largest attack radius: a quarter of the pixel range
MAX_SECONDS = 30 * 86_400  # [s] the longest wall-time budget of a training run


@dataclass
class DriveConfig:
    """conf/drive.yaml: one closed-loop run."""

    sim: SimConfig
    scenario: dict[str, Any]  # checked by the scenario schema (sim/scenario/schema.py)
    perception: dict[str, Any]  # `_target_` parts, checked by building them
    decision: dict[str, Any]
    control: dict[str, Any]
    seed: int = bounded(0, MAX_SEED)  # every random draw of the run comes from it
    video: bool
    video_explain: bool  # the map of the top detection in the video (sim/record/outputs.py ExplainedView)
    plot: bool

    def __post_init__(self):
        check_fields(self, "")


@dataclass
class SuiteConfig:
    """conf/suite/*.yaml: scenarios x seeds."""

    name: str = identifier()  # the default out_dir is named after it
    scenarios: list[str]
    seeds: list[int]
    description: str = ""  # a user's suite may leave it out

    def __post_init__(self):
        check_fields(self, "suite.")
        check(len(self.scenarios) > 0, "suite.scenarios", self.scenarios, "at least one scenario")
        ok = len(self.seeds) > 0 and all(0 <= s <= MAX_EVAL_SEED for s in self.seeds)
        check(
            ok,
            "suite.seeds",
            self.seeds,
            f"at least one seed, each in [0, {MAX_EVAL_SEED}] (higher seeds are the datasets')",
        )


@dataclass
class EvaluateConfig:
    """conf/evaluate.yaml: a suite of runs in parallel, then a report."""

    suite: SuiteConfig
    seeds: Any  # null (the suite's seeds), N (seeds 1..N) or a list of seeds: sim/app/evaluate.py
    perceivers: list[str]
    overrides: list[str]  # drive overrides for every run (not what the suite varies)
    workers: int = bounded(1, MAX_WORKERS)
    backend: str = one_of("local", "ray")
    ray_address: str | None
    timeout_s: float = bounded(0, 86_400, low_open=True)
    scorer: str = one_of(*SCORERS)
    clips: bool
    out_dir: str

    def __post_init__(self):
        check_fields(self, "")


@dataclass
class DataConfig:
    """conf/data.yaml: a labelled camera dataset from randomised scenarios."""

    out_dir: str
    scenarios: list[str]
    train_scenes: int = bounded(1, MAX_SCENES)
    val_scenes: int = bounded(1, MAX_SCENES)
    # scene i's seed: DATA_SEED_MIN + seed x SCENE_SEED_STRIDE + i
    seed: int = bounded(0, (MAX_SEED - DATA_SEED_MIN - 2 * MAX_SCENES) // SCENE_SEED_STRIDE)
    frame_every_s: float = bounded(1 / MAX_CONTROL_HZ, 600)  # the camera rate is its inverse
    workers: int = bounded(1, MAX_WORKERS)
    empty_frames: float = bounded(0, 1)  # the share of frames without a labelled box that are kept
    clutter: dict[str, Any] | None  # a scenario `clutter` mapping (checked by the scenario schema)
    mount_jitter: dict[str, float] | None  # sim.mount_jitter of every scene (checked by the sim schema)

    def __post_init__(self):
        check_fields(self, "")
        check(len(self.scenarios) > 0, "scenarios", self.scenarios, "at least one scenario")


@dataclass
class AugmentConfig:
    """perception/training/augment.py Augment's parameters."""

    flip_p: float = bounded(0, 1)
    jitter: float = bounded(0, 1)
    hue_shift_deg: float = bounded(0, 180)
    noise_std: float = bounded(0, 1)
    scale_p: float = bounded(0, 1)
    scale_range: list[float]
    min_kept_fraction: float = bounded(0, 1)
    min_box_size_px: float = bounded(0, 100)
    corrupt_p: float = bounded(0, 1)
    corrupt_kinds: list[str]  # checked against perception/evaluation/corruptions.py by the command
    corrupt_severity: list[float]

    def __post_init__(self):
        check_fields(self, "augment.")
        ok = len(self.scale_range) == 2 and 0.1 <= self.scale_range[0] <= self.scale_range[1] <= 10
        check(ok, "augment.scale_range", self.scale_range, "[low, high] with 0.1 <= low <= high <= 10")
        ok = (
            len(self.corrupt_severity) == 2 and 0 <= self.corrupt_severity[0] <= self.corrupt_severity[1] <= 3
        )
        check(ok, "augment.corrupt_severity", self.corrupt_severity, "[low, high] with 0 <= low <= high <= 3")


@dataclass
class DropBlockConfig:
    """perception/training/dropblock.py DropBlockHooks' parameters."""

    drop_p: float = bounded(0, 1, high_open=True)  # 0: off
    block_cells: int = bounded(1, 64)

    def __post_init__(self):
        check_fields(self, "dropblock.")


@dataclass
class AdversarialConfig:
    """perception/evaluation/adversarial.py adversarial_batch's parameters."""

    eps: float = bounded(0, MAX_EPS_LEVELS)  # [1/255]; 0: off
    steps: int = bounded(1, 100)
    fraction: float = bounded(0, 1)

    def __post_init__(self):
        check_fields(self, "adversarial.")


@dataclass
class TrainConfig:
    """conf/train.yaml: train the detector."""

    data_dir: str
    out_dir: str
    model: dict[str, Any]  # perception/detection/model.py DetectorConfig (which imports torch): built there
    epochs: int = bounded(1, 10_000)
    batch_size: int = bounded(1, MAX_BATCH)
    lr: float = bounded(0, 1, low_open=True)
    weight_decay: float = bounded(0, 1)
    warmup_steps: int = bounded(0, 1_000_000)
    seed: int = bounded(0, MAX_SEED)
    device: str = one_of(*DEVICES)
    amp: bool
    resume: bool
    num_workers: int = bounded(0, MAX_WORKERS)  # DataLoader worker processes
    threads: int = bounded(1, MAX_THREADS)  # torch CPU threads
    max_steps: int = bounded(0, 100_000_000)  # 0: no limit
    max_seconds: float = bounded(0, MAX_SECONDS)  # [s] 0: no limit
    augment: AugmentConfig
    dropblock: DropBlockConfig
    adversarial: AdversarialConfig
    init_checkpoint: str | None  # `shipped` or a path: fine-tune from those weights
    repeat_threshold: float = bounded(0, 1)  # repeat-factor sampling (perception/training/train.py); 0: off
    teacher: (
        str | None
    )  # `shipped` or a path: distil from this model's outputs (perception/training/distill.py)
    distill: float = bounded(0, 100)  # weight of the distillation loss; > 0 exactly when a teacher is given

    def __post_init__(self):
        check_fields(self, "")
        want = "> 0 exactly when a teacher is given (teacher=PATH distill=1)"
        check((self.distill > 0) == (self.teacher is not None), "distill", self.distill, want)


@dataclass
class DetectEvalConfig:
    """conf/detect_eval.yaml: COCO metrics of a detector on a dataset split."""

    checkpoint: str
    data_dir: str
    split: str = one_of("train", "val")
    out_dir: str
    batch_size: int = bounded(1, MAX_BATCH)
    score_threshold: float = bounded(0, 1)
    device: str = one_of(*DEVICES)
    threads: int = bounded(1, MAX_THREADS)
    recall_score_threshold: float = bounded(0, 1)  # recall of the groups (perception/evaluation/groups.py)
    min_group_boxes: int = bounded(1, 1_000_000)  # smaller groups are flagged small
    runtime: str = one_of(*RUNTIMES)

    def __post_init__(self):
        check_fields(self, "")
        ok = self.recall_score_threshold >= self.score_threshold
        check(
            ok,
            "recall_score_threshold",
            self.recall_score_threshold,
            "at least score_threshold (detections below it are not kept)",
        )


@dataclass
class ExportConfig:
    """conf/export.yaml: the detector as an ONNX model (fp32, or int8 calibrated on train frames)."""

    format: str = one_of("onnx")
    checkpoint: str
    out: str
    opset: int = bounded(17, 25)  # the exporter writes 18 and converts to 17-25
    quantize: str = one_of("none", "int8")
    data_dir: str
    calibration_images: int = bounded(1, MAX_SCENES)
    threads: int = bounded(1, MAX_THREADS)

    def __post_init__(self):
        check_fields(self, "")


@dataclass
class RobustnessConfig:
    """conf/robustness.yaml: AP under image corruptions and adversarial attacks."""

    checkpoint: str
    data_dir: str
    split: str = one_of("train", "val")
    out_dir: str
    kinds: list[str]  # checked against perception/evaluation/corruptions.py by the command
    severities: list[int]
    max_images: int = bounded(0, 10_000_000)  # 0: all
    seed: int = bounded(0, MAX_SEED)
    batch_size: int = bounded(1, MAX_BATCH)
    score_threshold: float = bounded(0, 1)
    device: str = one_of(*DEVICES)
    threads: int = bounded(1, MAX_THREADS)
    attack: str = one_of("none", "fgsm", "pgd")
    eps: list[float]  # [1/255]
    steps: int = bounded(1, 1000)
    attack_images: int = bounded(0, 10_000_000)  # 0: all

    def __post_init__(self):
        check_fields(self, "")
        ok = all(0 < e <= MAX_EPS_LEVELS for e in self.eps) and (len(self.eps) > 0 or self.attack == "none")
        check(ok, "eps", self.eps, f"at least one radius in (0, {MAX_EPS_LEVELS}] (units of 1/255)")


@dataclass
class ExplainConfig:
    """conf/explain.yaml: class activation maps of a detector's detections in one frame."""

    checkpoint: str
    data_dir: str
    split: str = one_of("train", "val")
    image: str | None  # a dataset image: its index in the split or its file name
    scenario: dict[str, Any] | None  # or a scenario's camera frame (seed, t_s): its config group
    seed: int = bounded(0, MAX_SEED)
    t_s: float = bounded(0, 86_400)
    targets: str = one_of("detections", "truth")
    score_threshold: float = bounded(0, 1, low_open=True)
    index: int | None = bounded(0, 100_000)
    class_name: str | None = one_of(*CLASSES)
    layer: str  # perception/explain.py LAYERS (which imports torch): checked there
    method: str  # perception/explain.py METHODS: checked there
    scale: int = bounded(1, 8)
    out_dir: str
    device: str = one_of(*DEVICES)
    threads: int = bounded(1, MAX_THREADS)
    corruption: str  # none, or a kind of perception/evaluation/corruptions.py: checked by the command
    severity: float = bounded(0, 3)

    def __post_init__(self):
        check_fields(self, "")


PRUNE_IMPORTANCES = ("l2", "l1", "bn_scale", "random")  # perception/detection/prune.py IMPORTANCES


@dataclass
class PruneConfig:
    """conf/prune.yaml: prune a detector's channels to a MAC budget, then fine-tune it."""

    checkpoint: str
    macs_ratio: float = bounded(0, 1, low_open=True)
    round_to: int = bounded(1, 64)
    importance: str = one_of(*PRUNE_IMPORTANCES)
    data_dir: str
    out_dir: str
    epochs: int = bounded(0, 10_000)  # 0: prune only
    lr: float = bounded(0, 1, low_open=True)
    seed: int = bounded(0, MAX_SEED)
    threads: int = bounded(1, MAX_THREADS)
    max_steps: int = bounded(0, 100_000_000)
    prune_head: bool  # false: the heads' shared conv keeps its width, the rest is cut further
    distill: float = bounded(
        0, 100
    )  # the fine-tune's distillation weight, the unpruned model teaching (0: off)
    train: list[str]  # overrides of conf/train.yaml for the fine-tune (e.g. augment.corrupt_p=0.5)

    def __post_init__(self):
        check_fields(self, "")


@dataclass
class PretrainConfig:
    """conf/pretrain.yaml: self-supervised pretraining of the detector's backbone (masked images)."""

    data_dir: str
    out_dir: str
    model: dict[str, Any]  # perception/detection/model.py DetectorConfig (which imports torch): built there
    epochs: int = bounded(1, 10_000)
    batch_size: int = bounded(1, MAX_BATCH)
    lr: float = bounded(0, 1, low_open=True)
    weight_decay: float = bounded(0, 1)
    warmup_steps: int = bounded(0, 1_000_000)
    seed: int = bounded(0, MAX_SEED)
    device: str = one_of(*DEVICES)
    amp: bool
    resume: bool
    num_workers: int = bounded(0, MAX_WORKERS)
    threads: int = bounded(1, MAX_THREADS)
    max_steps: int = bounded(0, 100_000_000)  # 0: no limit
    max_seconds: float = bounded(0, MAX_SECONDS)  # [s] 0: no limit
    flip_p: float = bounded(0, 1)
    mask_ratio: float = bounded(0, 1, low_open=True, high_open=True)
    patch_px: int = bounded(1, 1024)  # must divide the input size: checked by the command

    def __post_init__(self):
        check_fields(self, "")


SCHEMAS = {
    "drive": DriveConfig,
    "evaluate": EvaluateConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "detect_eval": DetectEvalConfig,
    "export": ExportConfig,
    "robustness": RobustnessConfig,
    "explain": ExplainConfig,
    "prune": PruneConfig,
    "pretrain": PretrainConfig,
}


def register() -> None:
    """Store every schema in Hydra's ConfigStore (as `<command>_schema`); safe to call again."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=f"{name}_schema", node=schema)

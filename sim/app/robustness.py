"""`bulletdrive robustness`: the Hydra edge of the corruption and attack benchmark
(perception/evaluation/robustness.py, perception/evaluation/adversarial.py)."""

from __future__ import annotations

import time

from sim.app import config as C
from sim.app.schemas import RobustnessConfig

HELP = """usage: bulletdrive robustness [OVERRIDES...]

AP and AP50 (pycocotools) of a detector under image corruptions: nine kinds (gaussian_noise,
gaussian_blur, motion_blur, brightness, contrast, jpeg, fog, rain, low_light) at severities 1-3,
with mPC (mean AP under corruption) and rPC (mPC / clean AP) of Michaelis et al. 2019; with
attack=fgsm|pgd also AP50 under an L-inf attack on the detection loss at each eps (1/255 units).
Writes out_dir/robustness.json, robustness.txt, robustness.png (adversarial.png) (conf/robustness.yaml).
Examples: bulletdrive robustness data_dir=data/sim
          bulletdrive robustness kinds=[fog,rain] severities=[2] max_images=100
          bulletdrive robustness kinds=[] attack=pgd eps=[2] steps=10 attack_images=200"""


def run(args: list[str]) -> int:
    r: RobustnessConfig = C.load_checked("robustness", args).values
    _check_choices(r)
    C.check_device("device", r.device)
    C.check_out_dir(r.out_dir, "out_dir")
    import torch

    from perception.coco import load_coco
    from perception.detection.detector import Detector
    from perception.evaluation.robustness import check_size, write_results

    torch.set_num_threads(r.threads)
    split = load_coco(r.data_dir, r.split)
    detector = Detector(r.checkpoint, r.device)
    check_size(split, detector)
    t0 = time.perf_counter()
    results = _corruptions(r, detector, split)
    if r.attack != "none":
        results["adversarial"] = _attack(r, detector, split)
    results["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    results |= {"checkpoint": str(detector.path), "data_dir": r.data_dir, "split": r.split, "seed": r.seed}
    print(write_results(results, r.out_dir), end="")
    print(f"results: {r.out_dir}/robustness.json, robustness.txt ({results['seconds']['total']:.0f} s)")
    return 0


def _corruptions(r: RobustnessConfig, detector, split) -> dict:
    """The corruption benchmark with a progress bar (clean only with kinds=[])."""
    from tqdm import tqdm

    from perception.evaluation.robustness import benchmark, subset

    conditions = len(r.kinds) * len(r.severities) + 1
    with tqdm(
        total=len(subset(split, r.max_images)[0]), desc=f"{conditions} conditions", unit="images"
    ) as bar:
        return benchmark(
            detector, split, kinds=r.kinds, severities=r.severities, max_images=r.max_images, seed=r.seed,
            batch_size=r.batch_size, score_threshold=r.score_threshold, progress=lambda n: bar.update(n - bar.n),
        )  # fmt: skip


def _attack(r: RobustnessConfig, detector, split) -> dict:
    """AP under the attack at each eps, with a progress bar."""
    from tqdm import tqdm

    from perception.evaluation.adversarial import attack_benchmark
    from perception.evaluation.robustness import subset

    with tqdm(total=len(subset(split, r.attack_images)[0]), desc=f"{r.attack}", unit="images") as bar:
        return attack_benchmark(
            detector, split, kind=r.attack, eps_values=[e / 255 for e in r.eps], steps=r.steps,
            max_images=r.attack_images, seed=r.seed, batch_size=r.batch_size,
            score_threshold=r.score_threshold, progress=lambda n: bar.update(n - bar.n),
        )  # fmt: skip


def _check_choices(r: RobustnessConfig) -> None:
    """The kinds and severities the corruption module knows (it loads OpenCV, not torch)."""
    from perception.evaluation.corruptions import KINDS, SEVERITIES

    for kind in r.kinds:
        if kind not in KINDS:
            raise C.ConfigError(f"kinds: unknown corruption '{kind}'; known: {', '.join(KINDS)}")
    for severity in r.severities:
        if severity not in SEVERITIES:
            raise C.ConfigError(f"severities={r.severities}: each one of {', '.join(map(str, SEVERITIES))}")
    if r.kinds and not r.severities:
        raise C.ConfigError("severities=[]: give at least one severity, or kinds=[] for clean only")

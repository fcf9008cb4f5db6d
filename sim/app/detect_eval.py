"""`bulletdrive detect-eval`: the Hydra edge of detector evaluation (perception/evaluation/detect_eval.py)."""

from __future__ import annotations

from sim.app import config as C
from sim.app.schemas import DetectEvalConfig

HELP = """usage: bulletdrive detect-eval [OVERRIDES...]

COCO mAP@[.5:.95], AP50, AP75 (pycocotools) per class and per slice, per-group AP50 or recall with
the worst-group gap (class, distance, height, lighting, camera, occlusion, colour, pedestrian on
the road or the sidewalk), a PR plot and the localisation error by distance band
(conf/detect_eval.yaml).
Example: bulletdrive detect-eval checkpoint=runs/detector/model.pt data_dir=data/sim
An exported model (`bulletdrive export`): runtime=onnxruntime checkpoint=runs/export/model.onnx"""


def run(args: list[str]) -> int:
    d: DetectEvalConfig = C.load_checked("detect_eval", args).values
    C.check_device("device", d.device)
    C.check_out_dir(d.out_dir, "out_dir")
    import torch

    from perception.evaluation.detect_eval import detect_eval

    torch.set_num_threads(d.threads)
    results = detect_eval(
        d.checkpoint,
        d.data_dir,
        d.split,
        d.out_dir,
        batch_size=d.batch_size,
        score_threshold=d.score_threshold,
        recall_score_threshold=d.recall_score_threshold,
        min_group_boxes=d.min_group_boxes,
        device=d.device,
        runtime=d.runtime,
    )
    print(results["table"])
    print(f"results: {d.out_dir}/detect_eval.json, detect_eval.txt, pr_curve.png")
    return 0

"""`bulletdrive train`: the Hydra edge of detector training (perception/training/train.py)."""

from __future__ import annotations

from dataclasses import asdict

from sim.app import config as C
from sim.app.schemas import TrainConfig

HELP = """usage: bulletdrive train [OVERRIDES...]

Train the CenterNet detector (conf/train.yaml, model=small|tiny) on a dataset from
`bulletdrive data`. Writes out_dir/last.pt (resumable), model.pt, history.json and
loss_curve.png. Example: bulletdrive train data_dir=data/sim out_dir=runs/det epochs=16"""


def run(args: list[str]) -> int:
    t: TrainConfig = C.load_checked("train", args).values
    C.check_device("device", t.device)
    C.check_out_dir(t.out_dir, "out_dir")
    import torch

    from perception.detection.model import DetectorConfig
    from perception.training.augment import Augment
    from perception.training.train import TrainSettings, train

    C.check_arguments("model", DetectorConfig, set(t.model))
    try:
        model = DetectorConfig(**t.model)
    except (TypeError, ValueError) as err:
        raise C.ConfigError(f"model: {err}") from None
    try:
        Augment(**asdict(t.augment))  # the corruption kinds are known there
    except ValueError as err:
        raise C.ConfigError(f"augment.{err}") from None
    torch.set_num_threads(t.threads)
    settings = TrainSettings(
        data_dir=t.data_dir,
        out_dir=t.out_dir,
        model=model,
        epochs=t.epochs,
        batch_size=t.batch_size,
        lr=t.lr,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_steps,
        seed=t.seed,
        device=t.device,
        amp=t.amp,
        resume=t.resume,
        num_workers=t.num_workers,
        augment=asdict(t.augment),
        max_steps=t.max_steps,
        max_seconds=t.max_seconds,
        dropblock=asdict(t.dropblock),
        adversarial=asdict(t.adversarial),
        repeat_threshold=t.repeat_threshold,
        init_checkpoint=t.init_checkpoint,
        teacher=t.teacher,
        distill=t.distill,
    )
    result = train(settings)
    last = result["history"][-1] if result["history"] else None
    if last:
        print(
            f"epoch {last['epoch']}: train loss {last['train']['total']:.4f}, val loss {last['val']['total']:.4f}"
        )
    print(f"model: {settings.out_dir}/model.pt (history.json, loss_curve.png beside it)")
    return 0

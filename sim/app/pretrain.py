"""`bulletdrive pretrain`: the Hydra edge of self-supervised pretraining (perception/training/pretrain.py)."""

from __future__ import annotations

from sim.app import config as C
from sim.app.schemas import PretrainConfig

HELP = """usage: bulletdrive pretrain [OVERRIDES...]

Pretrain the CenterNet detector's backbone and neck without labels (conf/pretrain.yaml,
model=small|tiny): hide a random mask_ratio of the patch_px x patch_px patches of each train frame
of a `bulletdrive data` dataset and learn to paint them back (masked-image modelling, SimMIM).
Writes out_dir/pretrained.pt (heads at their fresh init), last.pt (resumable), history.json and
loss_curve.png. Then fine-tune: bulletdrive train init_checkpoint=OUT/pretrained.pt.
Example: bulletdrive pretrain data_dir=data/sim out_dir=runs/pretrain max_seconds=600"""


def run(args: list[str]) -> int:
    p: PretrainConfig = C.load_checked("pretrain", args).values
    C.check_device("device", p.device)
    C.check_out_dir(p.out_dir, "out_dir")
    import torch

    from perception.detection.model import DetectorConfig
    from perception.training.pretrain import PretrainSettings, pretrain

    C.check_arguments("model", DetectorConfig, set(p.model))
    try:
        model = DetectorConfig(**p.model)
    except (TypeError, ValueError) as err:
        raise C.ConfigError(f"model: {err}") from None
    torch.set_num_threads(p.threads)
    settings = PretrainSettings(
        data_dir=p.data_dir,
        out_dir=p.out_dir,
        model=model,
        epochs=p.epochs,
        batch_size=p.batch_size,
        lr=p.lr,
        weight_decay=p.weight_decay,
        warmup_steps=p.warmup_steps,
        seed=p.seed,
        device=p.device,
        amp=p.amp,
        resume=p.resume,
        num_workers=p.num_workers,
        flip_p=p.flip_p,
        mask_ratio=p.mask_ratio,
        patch_px=p.patch_px,
        max_steps=p.max_steps,
        max_seconds=p.max_seconds,
    )
    result = pretrain(settings)
    last = result["history"][-1] if result["history"] else None
    if last:
        print(
            f"epoch {last['epoch']}: train L1 {last['train']['total']:.4f}, val L1 {last['val']['total']:.4f}"
        )
    print(
        f"pretrained: {settings.out_dir}/pretrained.pt; fine-tune with "
        f"bulletdrive train init_checkpoint={settings.out_dir}/pretrained.pt"
    )
    return 0

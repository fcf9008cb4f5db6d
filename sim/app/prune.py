"""`bulletdrive prune`: the Hydra edge of structured pruning (perception/detection/prune.py) and of
its fine-tune (perception/training/train.py, started from the pruned weights)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from sim.app import config as C
from sim.app.schemas import PruneConfig, TrainConfig

HELP = """usage: bulletdrive prune [OVERRIDES...]

Prune a detector's channels (torch-pruning, structured: the layers get narrower) until its conv
multiply-accumulates per frame are at most macs_ratio of the original, then fine-tune it on a
dataset with the training loop (conf/prune.yaml; the fine-tune's other settings are
conf/train.yaml's, with the overrides in `train`; distill > 0 lets the unpruned model teach).
Writes out_dir/pruned.pt (before the fine-tune), prune.json (params, MACs and widths before and
after) and, with epochs >= 1, train's files: model.pt, last.pt (resumable), history.json,
loss_curve.png.
Example: bulletdrive prune checkpoint=shipped macs_ratio=0.5 epochs=3 data_dir=data/sim out_dir=runs/pruned"""


def run(args: list[str]) -> int:
    p: PruneConfig = C.load_checked("prune", args).values
    t = C.load_checked("train", list(p.train)).values  # the fine-tune's settings, checked before any work
    C.check_out_dir(p.out_dir, "out_dir")
    import torch

    from perception.detection.detector import resolve_checkpoint
    from perception.detection.model import load_checkpoint, save_checkpoint
    from perception.detection.prune import prune, summary
    from perception.files import write_json
    from perception.types import CLASSES

    torch.set_num_threads(p.threads)
    torch.manual_seed(p.seed)  # only importance=random draws
    source = resolve_checkpoint(p.checkpoint)
    model, _, _ = load_checkpoint(source, expect_classes=CLASSES)
    pruned = prune(model, p.macs_ratio, p.round_to, p.importance, p.prune_head)
    asked = {
        "macs_ratio": p.macs_ratio,
        "round_to": p.round_to,
        "importance": p.importance,
        "prune_head": p.prune_head,
    }
    figures = {"checkpoint": str(source), "asked": asked, **summary(model, pruned)}
    before, after = figures["before"], figures["after"]
    print(
        f"pruned: MACs {before['macs'] / 1e6:.1f} M -> {after['macs'] / 1e6:.1f} M ({figures['macs_ratio']:.3f}), "
        f"params {before['params'] / 1e6:.3f} M -> {after['params'] / 1e6:.3f} M, widths "
        f"{before['widths']} -> {after['widths']}, neck {after['neck_width']}, head {after['head_width']}"
    )
    out = Path(p.out_dir)
    save_checkpoint(out / "pruned.pt", pruned, pruned.config, {"classes": list(CLASSES), "pruned": figures})
    write_json(out / "prune.json", figures)
    print(f"pruned model: {out}/pruned.pt (prune.json beside it)")
    if p.epochs:
        fine_tune(p, t, pruned.config, out / "pruned.pt", str(source))
    return 0


def fine_tune(p: PruneConfig, t: TrainConfig, config, pruned_path: Path, source: str) -> None:
    """Train the pruned model on p.data_dir from its weights, with `t`'s other settings (conf/train.yaml
    and p.train's overrides of it); the unpruned `source` teaches when p.distill > 0. Resumes from
    out_dir/last.pt."""
    from perception.training.train import TrainSettings, train

    settings = TrainSettings(
        data_dir=p.data_dir,
        out_dir=p.out_dir,
        model=config,
        epochs=p.epochs,
        batch_size=t.batch_size,
        lr=p.lr,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_steps,
        seed=p.seed,
        device=t.device,
        amp=t.amp,
        resume=t.resume,
        num_workers=t.num_workers,
        augment=asdict(t.augment),
        max_steps=p.max_steps,
        max_seconds=t.max_seconds,
        dropblock=asdict(t.dropblock),
        adversarial=asdict(t.adversarial),
        repeat_threshold=t.repeat_threshold,
        init_checkpoint=str(pruned_path),
        teacher=source if p.distill > 0 else None,
        distill=p.distill,
    )
    result = train(settings)
    last = result["history"][-1] if result["history"] else None
    if last:
        print(
            f"epoch {last['epoch']}: train loss {last['train']['total']:.4f}, val loss {last['val']['total']:.4f}"
        )
    print(f"fine-tuned model: {p.out_dir}/model.pt (history.json, loss_curve.png beside it)")

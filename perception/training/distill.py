"""Knowledge distillation for the CenterNet detector: a student (a pruned or narrower copy) learns the
teacher's outputs beside the labels (Hinton et al., "Distilling the Knowledge in a Neural Network",
2015; for dense detectors, the teacher's maps are the soft targets).

The teacher's heatmap says, at every cell, how likely an object of each class is centred there, also
where the labels say nothing (a half-hidden car, a light at the edge of its label range): the
student's sigmoid heatmap is pulled to it by squared error. Its size, offset and distance maps are
pulled to the teacher's by L1 where the teacher sees an object, each cell weighted by the teacher's
highest class probability there (a class's own size by that class's probability, where the model has
a size per class). Both sums are divided by the teacher's heatmap mass, which counts
objects as the focal loss's normalisation does, so the term keeps its scale whatever the scene.
"""

from __future__ import annotations

import torch

from perception.training.targets import LOSS_WEIGHTS


def distill_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """The distillation loss of one batch: CenterNet.forward's dicts of the student and the teacher
    (same shapes; the teacher's without gradient) -> a differentiable scalar."""
    p_teacher = torch.sigmoid(teacher["heatmap"].float())
    p_student = torch.sigmoid(student["heatmap"].float())
    weight = p_teacher.amax(dim=1, keepdim=True)  # (B, 1, H, W): where the teacher sees an object
    mass = weight.sum().clamp_min(1.0)
    loss = LOSS_WEIGHTS["heatmap"] * ((p_student - p_teacher) ** 2).sum() / mass
    for name in ("size", "offset", "distance"):
        if name not in teacher:
            continue
        gap = (student[name].float() - teacher[name].float()).abs()  # (B, channels, H, W)
        b, channels, h, w = gap.shape
        if name == "size" and channels == 2 * p_teacher.shape[1]:  # a (w, h) per class
            weighted = gap.view(b, -1, 2, h, w).mean(dim=2) * p_teacher
        else:
            weighted = gap.mean(dim=1, keepdim=True) * weight
        loss = loss + LOSS_WEIGHTS[name] * weighted.sum() / mass
    return loss

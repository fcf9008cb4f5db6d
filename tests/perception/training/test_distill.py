"""Distillation: the loss is zero where the student already gives the teacher's outputs, pulls the
student towards the teacher, weighs only where the teacher sees an object, and a teacher of other
outputs is refused before training starts."""

import pytest
import torch

from perception.detection.model import CenterNet, CheckpointError, save_checkpoint
from perception.training.distill import distill_loss
from perception.training.train import train
from perception.types import CLASSES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def outputs(classes=6, h=4, w=5, per_class_size=True):
    """CenterNet-shaped outputs: a confident object of class 1 at cell (2, 3), nothing elsewhere."""
    heatmap = torch.full((1, classes, h, w), -9.0)
    heatmap[0, 1, 2, 3] = 4.0
    size = torch.zeros(1, 2 * classes if per_class_size else 2, h, w)
    return {
        "heatmap": heatmap,
        "size": size,
        "offset": torch.zeros(1, 2, h, w),
        "distance": torch.zeros(1, 1, h, w),
    }


def test_the_teacher_taught_to_itself_costs_nothing():
    teacher = outputs()
    assert distill_loss(teacher, teacher).item() == 0.0


def test_a_size_counts_where_the_teacher_sees_that_class_only():
    teacher = outputs()
    other_class_far = {**teacher, "size": teacher["size"].clone()}
    other_class_far["size"][0, 0:2, 2, 3] = 50.0  # class 0's size, at class 1's object
    own_class_far = {**teacher, "size": teacher["size"].clone()}
    own_class_far["size"][0, 2:4, 2, 3] = 50.0  # class 1's size there
    background = {**teacher, "size": teacher["size"].clone()}
    background["size"][0, 2:4, 0, 0] = 50.0  # class 1's size where no object is
    assert distill_loss(other_class_far, teacher).item() < 1e-2
    assert distill_loss(background, teacher).item() < 1e-2
    assert distill_loss(own_class_far, teacher).item() > 10


def test_one_size_for_all_classes_is_weighted_by_the_strongest_class():
    teacher = outputs(per_class_size=False)
    student = {**teacher, "size": teacher["size"].clone()}
    student["size"][0, :, 2, 3] = 10.0
    assert distill_loss(student, teacher).item() == pytest.approx(10.0, rel=0.05)


def test_gradient_steps_bring_the_student_to_the_teacher():
    torch.manual_seed(0)
    teacher = {k: v + 0.3 * torch.randn_like(v) for k, v in outputs().items()}
    student = {k: torch.zeros_like(v, requires_grad=True) for k, v in teacher.items()}
    optimiser = torch.optim.SGD(student.values(), lr=0.5)
    first = distill_loss(student, teacher).item()
    for _ in range(200):
        optimiser.zero_grad()
        distill_loss(student, teacher).backward()
        optimiser.step()
    assert distill_loss(student, teacher).item() < 0.1 * first


def quiet(*_):
    pass


def test_training_with_a_teacher_reports_the_distillation_part(data, tmp_path, settings, detector_config):
    config = detector_config(input_height=48, input_width=64)
    torch.manual_seed(1)
    teacher_path = tmp_path / "teacher.pt"
    save_checkpoint(teacher_path, CenterNet(config), config, {"classes": list(CLASSES)})
    taught = train(settings(data, tmp_path / "a", teacher=str(teacher_path), distill=1.0), log=quiet)
    plain = train(settings(data, tmp_path / "b"), log=quiet)
    assert taught["history"][0]["train"]["distill"] > 0
    assert "distill" not in taught["history"][0]["val"]  # val loss: the labels' only, comparable
    assert "distill" not in plain["history"][0]["train"]


def test_a_teacher_with_other_outputs_is_refused_before_anything_is_written(
    data, tmp_path, settings, detector_config
):
    other = detector_config(input_height=96, input_width=128)
    teacher_path = tmp_path / "teacher.pt"
    save_checkpoint(teacher_path, CenterNet(other), other, {"classes": list(CLASSES)})
    with pytest.raises(CheckpointError, match="other outputs than the model"):
        train(settings(data, tmp_path / "run", teacher=str(teacher_path), distill=1.0), log=quiet)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="distill must be >= 0, and > 0 exactly when a teacher"):
        settings(data, tmp_path / "run", distill=1.0)

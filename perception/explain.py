"""Which image regions raise one detection of the CenterNet: class activation maps for a heatmap peak.

A CenterNet detection is one logit of the class heatmap, y = heatmap[class, cell]. Its map is built
from a feature map A (C, h, w) of the model and the gradient dy/dA, both at one layer:

    gradcam   (Selvaraju et al., "Grad-CAM", 2017): channel weights = the gradient pooled over space,
              map = ReLU(sum_c mean_ij(dy/dA_c) A_c)
    hirescam  (Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations ...",
              2020; ODAM, Zhao et al. 2023, does the same for detectors):
              map = ReLU(sum_c dy/dA_c * A_c), the gradient kept per cell

then upsampled (bilinear) to the image and divided by its maximum. Pooling the gradient throws away
*where* the peak looks: the map becomes "where are features of this class", every object of the
class alike. On the shipped model over 70 detections of 60 unseen val frames, gradcam puts a
median 19 % of its mass inside the explained box at its best layer (the neck) and 1 % at the stride-4
backbone stage; hirescam puts 36 % there at the stride-4 backbone stage, where a box is a median
0.14 % of the image, and the map's maximum lies in the box for 84 % of the detections. So hirescam is
the default, and gradcam is kept for comparison.

Layers (`LAYERS`), each a module whose output is A:
    backbone_s4   the backbone stage at stride 4 (default). Its gradient reaches the peak's whole
                  receptive field (19 % of the map for a typical peak) at 4 px resolution, so the map
                  can show any evidence the detector uses: the object's parts, its shadow, the road.
    neck_s4       the neck's output at stride 4, the heads' input. The heads' one 3x3 conv limits its
                  gradient to the 3x3 cells around the peak (12 x 12 px): a map that can only say
                  "here", whatever the detector looked at.
    backbone_top  the last backbone stage (stride 16): too coarse for objects a few pixels tall.

The model is the as-trained one (BatchNorm in eval mode, not folded), a private copy, with autograd;
the Detector's inference path (folded, TorchScript) is not touched. A forward hook swaps the layer's
output for a leaf tensor that requires grad, so the backward pass stops there.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from perception.detection.detector import resolve_checkpoint, torch_threads
from perception.detection.model import OUTPUT_STRIDE, CenterNet, decode, load_checkpoint, max3x3
from perception.types import CLASSES

METHODS = ("hirescam", "gradcam")
LAYERS = ("backbone_s4", "neck_s4", "backbone_top")
OVERLAY_ALPHA = 0.6  # blend weight of the colour map where the map is 1 (it scales with the map)


@dataclass(frozen=True)
class Target:
    """One heatmap logit to explain: its class channel and output cell (row, col at stride 4), and
    the box it stands for in input pixels (a detection's decoded box, or a labelled box)."""

    class_id: int
    cell_yx: tuple[int, int]
    box_xyxy: tuple[float, float, float, float]

    @classmethod
    def of_box(cls, box_xyxy, class_id: int, height_px: int, width_px: int) -> Target:
        """The target of a labelled box: the cell of its centre, as the training targets place it
        (perception/training/targets.py encode)."""
        x0, y0, x1, y1 = (float(v) for v in box_xyxy)
        col = min(max(int((x0 + x1) / (2 * OUTPUT_STRIDE)), 0), width_px // OUTPUT_STRIDE - 1)
        row = min(max(int((y0 + y1) / (2 * OUTPUT_STRIDE)), 0), height_px // OUTPUT_STRIDE - 1)
        return cls(int(class_id), (row, col), (x0, y0, x1, y1))


@dataclass(frozen=True)
class Explanation:
    """The map of one target.

    score: sigmoid of the explained logit; cam: (H, W) float32 in [0, 1] at the input size (all zero
    where nothing raises the logit); mass_in_box: the share of the map's mass inside the target's box
    (NaN for an all-zero map); box_share: the box's share of the image, what a map spread evenly
    would put inside it."""

    target: Target
    score: float
    cam: np.ndarray
    mass_in_box: float
    box_share: float

    @property
    def label(self) -> str:
        return f"{CLASSES[self.target.class_id]} {self.score:.2f}"


def layer_module(model: CenterNet, layer: str) -> nn.Module:
    """The module whose output is the feature map of `layer` (one of LAYERS)."""
    if layer == "backbone_s4":
        return model.stages[1]  # stages[i] is at stride 2^(i+1)
    if layer == "neck_s4":
        return model.smooth[0] if len(model.smooth) else model.top  # the last neck level is at stride 4
    if layer == "backbone_top":
        return model.stages[-1]
    raise ValueError(f"layer={layer!r} is not one of {', '.join(LAYERS)}")


class Explainer:
    """Class activation maps of one CenterNet's detections. `explain_detections(rgb, ...)` finds and
    explains the detections of a frame; `explain(rgb, targets)` explains given logits."""

    def __init__(
        self,
        model: CenterNet,
        layer: str = "backbone_s4",
        method: str = "hirescam",
        threads: int | None = None,
    ):
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)  # only the feature map needs a gradient
        self.config = model.config
        self.layer, self.method, self.threads = layer, method, threads
        self.module = layer_module(self.model, layer)
        self.device = next(self.model.parameters()).device

    @classmethod
    def from_checkpoint(cls, checkpoint: str, device: str = "cpu", **kwargs) -> Explainer:
        """An Explainer of a checkpoint (`shipped` or a path); CheckpointError if it cannot be read."""
        model, _, _ = load_checkpoint(
            resolve_checkpoint(checkpoint), map_location=device, expect_classes=CLASSES
        )
        return cls(model, **kwargs)

    def detections(self, rgb: np.ndarray, score_threshold: float, max_count: int = 100) -> list[Target]:
        """The detections of rgb (H, W, 3) uint8 with scores >= score_threshold, best first, as the
        Detector decodes them (up to float rounding), as targets."""
        with self._forward(rgb) as (outputs, _):
            return decoded_targets(outputs, score_threshold, max_count, self.config.max_distance_m)

    def explain_detections(
        self, rgb: np.ndarray, score_threshold: float, max_count: int = 100
    ) -> list[Explanation]:
        """`detections`, each explained (one forward pass for both)."""
        with self._forward(rgb) as (outputs, feature):
            targets = decoded_targets(outputs, score_threshold, max_count, self.config.max_distance_m)
            return [self._explain(outputs, feature, t) for t in targets]

    def explain(self, rgb: np.ndarray, targets: list[Target]) -> list[Explanation]:
        """The map of each target's logit in rgb (H, W, 3) uint8 (e.g. the centre of a missed box)."""
        with self._forward(rgb) as (outputs, feature):
            return [self._explain(outputs, feature, t) for t in targets]

    @contextlib.contextmanager
    def _forward(self, rgb: np.ndarray) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """One forward pass with autograd from the layer's output on: (outputs, feature (1, C, h, w))."""
        want = (self.config.input_height, self.config.input_width, 3)
        if rgb.shape != want or rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 frame of shape {want}, got {rgb.dtype} {rgb.shape}")
        captured = []

        def swap_for_leaf(module, inputs, output):
            leaf = output.detach().requires_grad_()
            captured.append(leaf)
            return leaf

        handle = self.module.register_forward_hook(swap_for_leaf)
        try:
            with torch_threads(self.threads), torch.enable_grad():
                x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
                x = x.permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
                yield self.model(x), captured[0]
        finally:
            handle.remove()

    def _explain(
        self, outputs: dict[str, torch.Tensor], feature: torch.Tensor, target: Target
    ) -> Explanation:
        row, col = target.cell_yx
        logit = outputs["heatmap"][0, target.class_id, row, col]
        (grad,) = torch.autograd.grad(logit, feature, retain_graph=True)  # (1, C, h, w)
        if self.method == "gradcam":
            weighted = grad.mean(dim=(2, 3), keepdim=True) * feature  # pooled channel weights
        else:
            weighted = grad * feature  # hirescam: the gradient kept per cell
        cam = F.relu(weighted.sum(dim=1, keepdim=True))  # (1, 1, h, w)
        H, W = self.config.input_height, self.config.input_width
        cam = F.interpolate(cam, size=(H, W), mode="bilinear", align_corners=False)[0, 0]
        cam = cam.detach().cpu().numpy().astype(np.float32)  # (H, W)
        inside = box_mask(target.box_xyxy, H, W)
        total = float(cam.sum())
        mass = float(cam[inside].sum()) / total if total > 0 else math.nan
        peak = float(cam.max())
        cam = cam / peak if peak > 0 else cam
        score = float(torch.sigmoid(logit.detach()))
        return Explanation(target, score, cam, mass, float(inside.mean()))


def decoded_targets(
    outputs: dict[str, torch.Tensor], score_threshold: float, max_count: int, max_distance_m: float
) -> list[Target]:
    """The decoded detections of one image's outputs as targets: decode()'s boxes beside the cell of
    each peak, found by the same 3x3 peak test and top-k over the same logits, so in the same order."""
    logits = outputs["heatmap"].detach().float()  # (1, C, h, w)
    _, C, h, w = logits.shape
    k = min(max_count, C * h * w)
    peaks = logits.masked_fill(max3x3(logits) != logits, -math.inf)
    _, flat = peaks.reshape(-1).topk(k)  # (k,) flattened class * h * w + row * w + col
    decoded = decode(
        {name: t.detach() for name, t in outputs.items()}, k, score_threshold, max_distance_m=max_distance_m
    )[0]
    targets = []
    for index, box, class_id in zip(flat.tolist(), decoded["boxes_xyxy"], decoded["class_ids"], strict=False):
        cls, cell = divmod(index, h * w)
        assert cls == class_id  # decode's order is this one
        targets.append(Target(int(cls), divmod(cell, w), tuple(float(v) for v in box)))
    return targets


def box_mask(box_xyxy, height_px: int, width_px: int) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie inside the box."""
    x0, y0, x1, y1 = box_xyxy
    xs = np.arange(width_px) + 0.5
    ys = np.arange(height_px) + 0.5
    return ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]


def overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """rgb (H, W, 3) uint8 with the map (H, W) in [0, 1] blended in as OpenCV's JET colour map; the
    blend weight is alpha x the map, so where the map is 0 the frame is left as it was."""
    colours = cv2.applyColorMap(np.round(cam * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]  # RGB
    weight = (alpha * cam)[..., None]
    return np.round(rgb * (1 - weight) + colours * weight).astype(np.uint8)

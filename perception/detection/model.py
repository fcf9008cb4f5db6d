"""A small CenterNet ("Objects as Points") detector in plain torch, read top to bottom.

An object is the peak of a per-class heatmap at output stride 4; at that cell three more heads
give the box size, the sub-cell offset of the centre and (optionally) the distance to the object.
Decoding is a 3x3 max-pool peak test and a top-k: no NMS op, so the model exports cleanly.

    image (B, 3, H, W) in [0, 1]
      -> backbone: conv-BN-ReLU stages, strides 2, 4, 8, 16 (one stage per entry of `widths`)
      -> neck: 1x1 laterals + nearest 2x upsampling from the top stage back to stride 4
      -> heads at stride 4: one shared 3x3 conv + ReLU, then a 1x1 conv per head -> dict of (B, C, H/4, W/4)

For inference, fold_batchnorm() folds every BatchNorm into the conv before it: the same outputs
with one op less per layer (what each form costs: benchmarks/detector_speed.py).

Targets and the loss live in perception/training/targets.py; the encodings of the regression heads are
defined here (decode) and there (encode) and must agree:
    size     = log(box size / stride)          (w, h); log space, so the L1 loss is a relative error
    offset   = centre / stride - centre cell   (x, y) in [0, 1)
    distance = log(distance_m / max_distance_m)
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from perception.errors import InputError
from perception.files import atomic_path

OUTPUT_STRIDE = 4  # [input px per output cell]
HEATMAP_PRIOR = 0.1  # initial p(object) of every heatmap cell ...
HEATMAP_BIAS = -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR)  # ... given by the bias alone: -2.19
FINAL_LAYER_STD = 0.001  # small init of the heads' last layers: the start is the bias alone
LOG_CLAMP = 10.0  # decode clamps log-space predictions to +-this, so exp() never overflows
# Input normalisation (ImageNet statistics; any fixed constants would do, the model learns the rest).
INPUT_MEAN = (0.485, 0.456, 0.406)
INPUT_STD = (0.229, 0.224, 0.225)
CHECKPOINT_FORMAT = "bulletdrive.centernet"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class DetectorConfig:
    """Shape of the detector: the values live in conf/model/*.yaml (small is the shipped one), and a
    checkpoint stores its own. A plain dataclass, so an unknown or missing key is a TypeError."""

    input_height: int  # [px] training/inference frame size; any multiple of the top stride runs
    input_width: int  # [px]
    num_classes: int  # perception.types.CLASSES
    widths: tuple[int, ...]  # channels of the stages at strides 2, 4, 8, 16
    neck_width: int  # channels of the upsampling path (strides 8 and 4)
    head_width: int  # channels of the heads' shared hidden 3x3 conv
    with_distance: bool  # add the distance head
    max_distance_m: float  # [m] scale of the distance head: it predicts log(d / max_distance_m)
    class_sizes: bool = False  # a box size per class (2 channels each: CenterNet's category-specific
    # size) rather than one for all; a pedestrian, a car and a traffic light differ in shape

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))  # YAML gives lists
        if len(self.widths) < 2:
            raise ValueError(f"widths needs >= 2 stages to reach stride {OUTPUT_STRIDE}, got {self.widths}")
        if min(self.widths + (self.neck_width, self.head_width, self.num_classes)) < 1:
            raise ValueError("widths, neck_width, head_width and num_classes must be positive")
        top = self.top_stride
        if self.input_height % top or self.input_width % top or min(self.input_height, self.input_width) < 1:
            raise ValueError(
                f"input size {self.input_height}x{self.input_width} must be positive multiples of the "
                f"top stride {top} (2 ** len(widths))"
            )
        if not self.max_distance_m > 0:
            raise ValueError(f"max_distance_m must be > 0, got {self.max_distance_m}")

    @property
    def top_stride(self) -> int:
        return 2 ** len(self.widths)


class ConvBNReLU(nn.Sequential):
    """k x k conv (no bias: BN has one) -> BatchNorm -> ReLU. Shape (B, c_in, H, W) -> (B, c_out, H/s, W/s)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


def head_out(c_in: int, c_out: int, bias_init: float = 0.0) -> nn.Conv2d:
    """A head's last layer, a 1x1 conv (B, c_in, h, w) -> (B, c_out, h, w), raw (no activation).

    Starts from the bias alone: the loss at init is the one the bias predicts (Karpathy's recipe).
    """
    conv = nn.Conv2d(c_in, c_out, 1)
    nn.init.normal_(conv.weight, std=FINAL_LAYER_STD)
    nn.init.constant_(conv.bias, bias_init)
    return conv


class CenterNet(nn.Module):
    """forward(x: (B, 3, H, W) float in [0, 1]) -> {name: (B, C, H/4, W/4)} raw head outputs.

    heatmap: (B, num_classes, ...) logits; size: (B, 2, ...) log(w, h / stride), or (B, 2 num_classes,
    ...) with config.class_sizes (class k's at channels 2k, 2k + 1); offset: (B, 2, ...);
    distance: (B, 1, ...) log(d / max_distance_m), only with config.with_distance.
    Works in channels_last (model.to(memory_format=torch.channels_last) and a channels_last input).
    """

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        w = config.widths
        # (x - mean) / std as one multiply-add: x * (1 / std) + (-mean / std)
        std, mean = torch.tensor(INPUT_STD).view(1, 3, 1, 1), torch.tensor(INPUT_MEAN).view(1, 3, 1, 1)
        self.register_buffer("in_scale", 1.0 / std, persistent=False)
        self.register_buffer("in_shift", -mean / std, persistent=False)
        # Backbone: stage 0 is one strided conv (stride 2, cheap: the full-resolution convs cost the
        # most); every later stage halves the size with a strided conv, then one more 3x3 conv.
        self.stages = nn.ModuleList([ConvBNReLU(3, w[0], stride=2)])
        for c_in, c_out in zip(w[:-1], w[1:], strict=True):
            self.stages.append(nn.Sequential(ConvBNReLU(c_in, c_out, stride=2), ConvBNReLU(c_out, c_out)))
        # Neck: from the top stage back down to stride 4 (stage 1). At each level: upsample the coarser
        # map, add the 1x1 lateral of the backbone map at this stride, smooth with a 3x3 conv.
        n = config.neck_width
        self.top = ConvBNReLU(w[-1], n, kernel=1)
        self.laterals = nn.ModuleList([ConvBNReLU(c, n, kernel=1) for c in w[1:-1]])
        self.smooth = nn.ModuleList([ConvBNReLU(n, n) for _ in w[1:-1]])
        # Heads at stride 4: one shared hidden 3x3 conv (separate ones cost 4x the time, the most of
        # any layer, for no gain measured here), then a 1x1 conv per output.
        hw = config.head_width
        self.head_trunk = nn.Sequential(nn.Conv2d(n, hw, 3, padding=1), nn.ReLU(inplace=True))
        heads = {
            "heatmap": head_out(hw, config.num_classes, bias_init=HEATMAP_BIAS),
            "size": head_out(hw, 2 * config.num_classes if config.class_sizes else 2),
            "offset": head_out(hw, 2),
        }
        if config.with_distance:
            heads["distance"] = head_out(hw, 1)
        self.heads = nn.ModuleDict(heads)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.head_trunk(self.features(x))  # (B, head_width, H/4, W/4)
        return {name: head(h) for name, head in self.heads.items()}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone and neck: x (B, 3, H, W) in [0, 1] -> the stride-4 map (B, neck_width, H/4, W/4)
        that the heads read (and that masked-image pretraining, perception/training/pretrain.py, trains)."""
        top = self.config.top_stride
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % top or x.shape[3] % top:
            raise ValueError(f"expected (B, 3, H, W) with H, W multiples of {top}, got {tuple(x.shape)}")
        x = torch.addcmul(self.in_shift, x, self.in_scale)  # (B, 3, H, W), normalised
        feats = []
        for stage in self.stages:
            x = stage(x)  # (B, w[i], H / 2^(i+1), W / 2^(i+1))
            feats.append(x)
        p = self.top(feats[-1])  # (B, n, H/16, W/16) for 4 stages
        # Walk down: feats[-2] (stride 8), ..., feats[1] (stride 4).
        for i in range(len(self.laterals) - 1, -1, -1):
            p = F.interpolate(p, scale_factor=2.0, mode="nearest")  # (B, n, 2h, 2w)
            p = self.smooth[i](p + self.laterals[i](feats[i + 1]))
        return p  # (B, n, H/4, W/4)


@torch.no_grad()
def fold_batchnorm(model: CenterNet) -> CenterNet:
    """A copy of `model` for inference with each BatchNorm folded into the conv before it.

    BN in eval mode is y = (conv(x) - mean) * g / sqrt(var + eps) + b, an affine map per channel, so
    the conv's weights scale by s = g / sqrt(var + eps) and it gains the bias b - mean * s. The copy
    gives the same outputs (to float rounding) with one op less per layer; it is not for training.
    """
    fused = copy.deepcopy(model).eval()
    for block in fused.modules():
        if isinstance(block, ConvBNReLU):
            conv, bn = block[0], block[1]
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (c_out,)
            folded = nn.Conv2d(
                conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True
            ).to(conv.weight.device)
            folded.weight.copy_(conv.weight * s.view(-1, 1, 1, 1))
            folded.bias.copy_(bn.bias - bn.running_mean * s)
            block[0], block[1] = folded, nn.Identity()
    return fused


def decode(
    outputs: dict[str, torch.Tensor],
    k: int = 100,
    score_threshold: float = 0.05,
    stride: int = OUTPUT_STRIDE,
    max_distance_m: float | None = None,
) -> list[dict[str, np.ndarray]]:
    """Raw head outputs -> per image the top-k peaks, best first, scores >= score_threshold.

    Returns one dict per image: boxes_xyxy (K, 4) float32 input pixels, clipped to the image;
    scores (K,) float32; class_ids (K,) int64; distances_m (K,) float32 (NaN without a distance head).
    `max_distance_m` (the model's config.max_distance_m) is required when outputs hold "distance".
    """
    logits = outputs["heatmap"].float().contiguous()  # (B, C, h, w), plain layout for the flat top-k
    B, C, h, w = logits.shape
    # A peak is a cell that equals the max of its 3x3 neighbourhood (this replaces NMS). The sigmoid
    # is monotonic, so peaks and ranks are found on the logits and only the top k are squashed.
    hmax = max3x3(logits)
    peaks = logits.masked_fill(hmax != logits, -math.inf)
    top, flat = peaks.reshape(B, C * h * w).topk(min(k, C * h * w))  # (B, K), sorted, over all classes
    scores = torch.sigmoid(top)  # non-peaks (-inf) give 0
    # The regression heads at the K peak cells, then one transfer to the host. With a size per class,
    # the sizes laid out (B, 2, C h w) have the peak's own class's at the heatmap's flat index.
    names = ["size", "offset"] + (["distance"] if "distance" in outputs else [])
    sizes = outputs["size"].float()
    class_sizes = sizes.shape[1] > 2
    if class_sizes:
        names = names[1:]
        sizes = sizes.reshape(B, C, 2, h * w).transpose(1, 2).reshape(B, 2, C * h * w)
        sizes = sizes.gather(2, flat[:, None, :].expand(B, 2, flat.shape[1]))  # (B, 2, K)
    reg = torch.cat([outputs[n].float() for n in names], 1).reshape(B, -1, h * w)  # (B, 2 to 5, h w)
    cell = flat.remainder(h * w)  # (B, K) flattened y * w + x
    reg = reg.gather(2, cell[:, None, :].expand(B, reg.shape[1], cell.shape[1]))
    if class_sizes:
        reg = torch.cat([sizes, reg], 1)  # (B, 4 or 5, K): size, offset, distance as without
    scores, flat, cell, reg = (t.detach().cpu().numpy() for t in (scores, flat, cell, reg))
    class_ids = flat // (h * w)  # (B, K)
    size = np.exp(np.clip(reg[:, 0:2], -LOG_CLAMP, LOG_CLAMP)) * stride  # (B, 2, K) w, h [px]
    cx = (cell % w + reg[:, 2]) * stride  # (B, K) [px]
    cy = (cell // w + reg[:, 3]) * stride
    boxes = np.stack([cx - size[:, 0] / 2, cy - size[:, 1] / 2, cx + size[:, 0] / 2, cy + size[:, 1] / 2], -1)
    boxes[..., 0::2] = boxes[..., 0::2].clip(0, w * stride)
    boxes[..., 1::2] = boxes[..., 1::2].clip(0, h * stride)  # (B, K, 4)
    if "distance" in outputs:
        if max_distance_m is None:
            raise ValueError("outputs have a distance head: pass max_distance_m=config.max_distance_m")
        dist = np.exp(np.clip(reg[:, 4], -LOG_CLAMP, LOG_CLAMP)) * max_distance_m  # (B, K)
    else:
        dist = np.full_like(scores, np.nan)
    result = []
    for b in range(B):
        keep = scores[b] >= score_threshold  # scores are sorted, so this keeps a prefix
        result.append(
            {
                "boxes_xyxy": boxes[b][keep].astype(np.float32),
                "scores": scores[b][keep].astype(np.float32),
                "class_ids": class_ids[b][keep].astype(np.int64),
                "distances_m": dist[b][keep].astype(np.float32),
            }
        )
    return result


def max3x3(x: torch.Tensor) -> torch.Tensor:
    """The max over each 3x3 neighbourhood of (B, C, h, w), edges padded with -inf: the same values
    as F.max_pool2d(x, 3, 1, 1), as two separable passes of elementwise maxima, which cost less on
    the CPU than the pooling op (benchmarks/detector_speed.py, "decode")."""
    p = F.pad(x, (1, 1, 1, 1), value=-math.inf)
    rows = torch.maximum(torch.maximum(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])  # (B, C, h + 2, w)
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- Checkpoints --------------------------------------------------------------------------------


class CheckpointError(InputError):
    """A checkpoint that cannot be used; the message is one line naming the file and the problem."""


def save_checkpoint(path: str | os.PathLike, model: CenterNet, config: DetectorConfig, extra: dict) -> None:
    """Write {format, version, config (plain dict), state_dict, extra} atomically (temp file + rename).

    `extra` holds plain Python values (e.g. classes, epoch, metrics) and tensors (e.g. optimiser state):
    what torch.load(weights_only=True) accepts. Anything else (a numpy scalar, say) is a ValueError here,
    not an unreadable file later.
    """
    _check_plain(extra, "extra")
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd model saves its original weights
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "extra": dict(extra),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())


def _check_plain(value, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(k, where)
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not (type(value) in (type(None), str, bytes, int, float, bool) or isinstance(value, torch.Tensor)):
        # exact types: numpy scalars subclass float but weights_only loading refuses them
        raise ValueError(
            f"checkpoint {where} is a {type(value).__name__}: use plain Python values or tensors"
        )


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    expect_classes: tuple[str, ...] | None = None,
) -> tuple[CenterNet, DetectorConfig, dict]:
    """Read a checkpoint -> (model in eval mode, config, extra). Any problem raises CheckpointError.

    With `expect_classes`, the checkpoint's extra["classes"] must be it or its first ones (same names,
    same order: a detector of fewer classes, e.g. one trained before the traffic-light classes).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types (zip, pickle, EOF, ...) with long messages
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    known = {f.name for f in fields(DetectorConfig)}
    cfg, extra = state.get("config"), state.get("extra", {})
    if not isinstance(cfg, dict) or not isinstance(extra, dict):
        raise CheckpointError(f"{path}: checkpoint has no config or extra dict")
    if set(cfg) - known:
        raise CheckpointError(f"{path}: config has unknown keys {sorted(set(cfg) - known)}")
    try:
        config = DetectorConfig(**cfg)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid config ({err})") from None
    if expect_classes is not None:
        classes = extra.get("classes")
        n = len(classes) if isinstance(classes, list | tuple) else 0
        if n == 0 or tuple(classes) != tuple(expect_classes)[:n]:
            raise CheckpointError(f"{path}: trained for classes {classes}, expected {tuple(expect_classes)}")
        if config.num_classes != n:
            raise CheckpointError(f"{path}: config has {config.num_classes} classes, its classes are {n}")
    model = CenterNet(config)
    _check_weights(path, model.state_dict(), state.get("state_dict"))
    model.load_state_dict(state["state_dict"])
    return model.to(map_location).eval(), config, extra


def _check_weights(path, want: dict[str, torch.Tensor], got) -> None:
    """One-line summary of a weights/config mismatch (load_state_dict's own message is many lines)."""
    if not isinstance(got, dict):
        raise CheckpointError(f"{path}: checkpoint has no state_dict")
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    shapes = [
        f"{k} {tuple(got[k].shape)} vs {tuple(v.shape)}"
        for k, v in want.items()
        if k in got and got[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else ""]
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else ""]
        parts += [f"{len(shapes)} of other shape (e.g. {shapes[0]}, stored vs config)" if shapes else ""]
        raise CheckpointError(
            f"{path}: weights do not match the stored config: " + "; ".join(p for p in parts if p)
        )

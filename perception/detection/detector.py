"""The CenterNet detector at inference time: a checkpoint loaded on a device, ready for batches.

`Detector` runs the model on one of two runtimes, behind one `detect`: uint8 frames of the model's
input size in, the decoded boxes out (perception/detection/model.py `decode`, shared by both).
- torch (the default): BatchNorm folded into the convolutions, channels_last, the model frozen with
  TorchScript on the CPU; on CUDA, autocast to bf16, the uint8 frames copied from page-locked memory,
  and, as an option, the forward replayed as a CUDA graph. Takes a checkpoint (.pt).
- onnxruntime: the model as ONNX (perception/detection/export.py) on onnxruntime's CPU execution
  provider. Takes an .onnx file from `bulletdrive export` (fp32 or int8), or a checkpoint (.pt),
  which it exports in memory first (a few seconds).

On the CPU, torch's results change with its thread count, in the last bits (oneDNN and torch split
their work by thread): a score near the threshold can then flip a detection, and a closed-loop run
would depend on the machine's cores or on how many runs share it. A Detector given `threads` runs
every batch on that many threads, whatever torch's setting elsewhere in the process. So does
onnxruntime: its session runs on `threads` intra-op threads (None: torch's setting when it is built)
and one inter-op thread, sequentially.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from perception.detection.model import CheckpointError, decode, fold_batchnorm, load_checkpoint
from perception.types import CLASSES

SHIPPED = "shipped"  # checkpoint name of the weights that ship with the package
RUNTIMES = ("torch", "onnxruntime")
ONNX_SUFFIX = ".onnx"


def resolve_checkpoint(path: str) -> Path:
    """`shipped` -> the packaged weights (perception/weights/centernet_small.pt); else the path."""
    if path == SHIPPED:
        return Path(str(files("perception").joinpath("weights", "centernet_small.pt")))
    return Path(path).expanduser()


_SHARED: dict[tuple, Detector] = {}  # Detector.shared's detectors, oldest first
MAX_SHARED = 4


def frozen(model: torch.nn.Module, height: int, width: int) -> torch.jit.ScriptModule:
    """The model traced and frozen by TorchScript: the same outputs in ~2/3 of eager's CPU time at
    batch 1 (no Python per layer, convs fused with their ReLU; benchmarks/detector_speed.py).
    Traced at batch 1; convolutions take any batch size."""
    example = torch.zeros(1, 3, height, width).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's note that the input-shape check is constant
        return torch.jit.freeze(torch.jit.trace(model.eval(), example, strict=False))


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to `threads` while the block runs (None: left as they are)."""
    old = torch.get_num_threads()
    if threads is None or threads == old:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Detector:
    """A loaded CenterNet on a device and runtime; `detect` takes a batch of frames of the model's size.

    `threads`: CPU threads per batch, fixed so that the same frames give the same detections whatever
    the core count or the runs beside it (None: torch's setting, e.g. for batch evaluation).
    `runtime`: "torch" or "onnxruntime" (CPU only; no `compile`).
    `cuda_graphs`: on CUDA without `compile`, replay the forward as a CUDA graph per batch size."""

    def __init__(
        self,
        checkpoint: str,
        device: str = "auto",
        compile: bool = False,
        threads: int | None = None,
        runtime: str = "torch",
        cuda_graphs: bool = False,
    ):
        if threads is not None and not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f"threads={threads!r} is out of range: an int >= 1")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime={runtime!r} is not one of {', '.join(RUNTIMES)}")
        self.threads = threads
        self.runtime = runtime
        self.path = resolve_checkpoint(checkpoint)
        self.precision = "fp32"
        self._pinned: dict[tuple, torch.Tensor] = {}  # CUDA: a page-locked input buffer per batch shape
        if runtime == "onnxruntime":
            self._load_onnxruntime(device, compile)
        else:
            self._load_torch(device, compile, cuda_graphs)

    def _load_torch(self, device: str, compile: bool, cuda_graphs: bool) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.path.suffix == ONNX_SUFFIX:
            raise CheckpointError(f"{self.path}: an ONNX model runs with runtime=onnxruntime")
        model, self.config, _ = load_checkpoint(self.path, map_location=self.device, expect_classes=CLASSES)
        self.model = fold_batchnorm(model).to(memory_format=torch.channels_last)
        if compile:
            self.model = torch.compile(self.model)
        elif self.device.type == "cpu":
            self.model = frozen(self.model, self.config.input_height, self.config.input_width)
        self.autocast = self.device.type == "cuda"
        self.graphs = (
            CudaGraphs(self._preprocess_and_run) if self.autocast and cuda_graphs and not compile else None
        )

    def _load_onnxruntime(self, device: str, compile: bool) -> None:
        from perception.detection import export

        if device not in ("auto", "cpu"):
            raise ValueError(f"device={device}: runtime=onnxruntime runs on the CPU; use device=cpu or auto")
        if compile:
            raise ValueError("compile=true applies to runtime=torch only")
        self.device = torch.device("cpu")
        if self.path.suffix == ONNX_SUFFIX:
            proto = export.load_onnx(self.path)
        else:
            proto = export.to_onnx(self.path, opset=None)
        self.config, self.precision = export.read_config(proto, self.path)
        threads = self.threads or torch.get_num_threads()
        self.model = OnnxRuntimeModel(proto.SerializeToString(), threads)

    @classmethod
    def shared(
        cls,
        checkpoint: str,
        device: str = "auto",
        compile: bool = False,
        threads: int | None = None,
        runtime: str = "torch",
        cuda_graphs: bool = False,
    ) -> Detector:
        """The Detector of these arguments, built once per process and reused while its file is
        unchanged: a suite's worker drives hundreds of runs, and every TorchScript trace keeps
        ~10 MB that the process never gets back (benchmarks/rig_memory.py). `detect` keeps no state
        between calls, so runs may share one."""
        path = resolve_checkpoint(checkpoint)
        try:
            stat = path.stat()
            key = (
                str(path.resolve()),
                stat.st_mtime_ns,
                stat.st_size,
                device,
                compile,
                threads,
                runtime,
                cuda_graphs,
            )
        except OSError:
            return cls(checkpoint, device, compile, threads, runtime, cuda_graphs)  # (its own error message)
        if key not in _SHARED:
            if len(_SHARED) >= MAX_SHARED:
                _SHARED.pop(next(iter(_SHARED)))
            _SHARED[key] = cls(checkpoint, device, compile, threads, runtime, cuda_graphs)
        return _SHARED[key]

    @torch.inference_mode()
    def detect(self, images: np.ndarray | list[np.ndarray], score_threshold: float) -> list[dict]:
        """images: (B, H, W, 3) uint8 RGB (or a list of (H, W, 3)). Returns decode()'s dicts."""
        batch = np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images)
        want = (self.config.input_height, self.config.input_width, 3)
        if batch.ndim != 4 or batch.shape[1:] != want or batch.dtype != np.uint8:
            raise ValueError(
                f"detector {self.path.name} expects uint8 frames of shape (H, W, 3) = {want}, "
                f"got {batch.dtype} {batch.shape[1:] if batch.ndim == 4 else batch.shape}"
            )
        with torch_threads(self.threads):
            out = self.model(batch) if self.runtime == "onnxruntime" else self._forward_torch(batch)
            return decode(out, score_threshold=score_threshold, max_distance_m=self.config.max_distance_m)

    def _forward_torch(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        if self.device.type == "cpu":
            return self._preprocess_and_run(torch.from_numpy(batch))
        # CUDA: the uint8 frames through a page-locked buffer, whose copy to the GPU runs
        # asynchronously (a quarter of float32's bytes), then the model's graph for this batch size.
        pinned = self._pinned.get(batch.shape)
        if pinned is None:
            pinned = self._pinned[batch.shape] = torch.empty(batch.shape, dtype=torch.uint8).pin_memory()
        pinned.numpy()[...] = batch
        x = pinned.to(self.device, non_blocking=True)
        return self.graphs(x) if self.graphs is not None else self._preprocess_and_run(x)

    def _preprocess_and_run(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, H, W, 3) uint8 frames on the model's device -> the model's heads."""
        x = frames.permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        # (no cache of the bf16 weights across calls: a CUDA graph captures the casts with the rest)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast, cache_enabled=False):
            return self.model(x)


class CudaGraphs:
    """`fn` (a tensor in, a dict of tensors out) replayed as one CUDA graph per input shape: the
    launch of every kernel of the forward in one call, which pays at the small batches of a closed
    loop (benchmarks/detector_speed.py, "gpu"). The first call of a shape warms `fn` up on a side
    stream and captures it; later calls copy their input into the captured one and replay. The
    outputs are the graph's own tensors, overwritten by the next call: read them before it."""

    def __init__(self, fn):
        self.fn = fn
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, dict]] = {}

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        key = (tuple(x.shape), x.dtype)
        if key not in self.graphs:
            static_in = x.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.fn(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.fn(static_in)
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out


class OnnxRuntimeModel:
    """An ONNX model of perception/detection/export.py in an onnxruntime session on the CPU execution
    provider: uint8 frames (B, H, W, 3) -> {head name: (B, C, H/4, W/4) float32 tensor}.

    `threads` intra-op threads, one inter-op thread, sequential execution: the work is split the same
    way on every machine, so the same frames give the same outputs. Full graph optimisation (ORT's
    default): it fuses each conv with its ReLU and, for an int8 model, turns QDQ pairs into int8 ops."""

    def __init__(self, model: bytes, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: not its notes on the graph's unused initialisers
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        outputs = self.session.run(self.output_names, {self.input_name: frames})
        return {name: torch.from_numpy(o) for name, o in zip(self.output_names, outputs, strict=True)}

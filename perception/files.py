"""Atomic file writes and JSON helpers, torch-free: every package may import them.

A write goes to a temporary file beside the target, then is renamed over it: a run killed half-way
leaves the last good file in place, never a truncated one. The temporary names start with "." and
hold ".tmp" (`is_temporary`), so a resumed job can sweep up what a killed one left behind. Lives in
`perception` because it is the lowest package, which every other one may import.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary name keeps the target's extension (or `suffix`) so that writers that pick a
    format from the file name (OpenCV, torch) still work. On an exception the temporary is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix or path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def is_temporary(path: str | os.PathLike) -> bool:
    """A temporary file of `atomic_path` (left behind only by a killed process)."""
    name = Path(path).name
    return name.startswith(".") and ".tmp" in name


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> None:
    """`obj` through `json_safe`, written atomically."""
    write_bytes(path, (json.dumps(json_safe(obj), indent=indent, sort_keys=False) + "\n").encode())


def json_safe(obj):
    """A copy of nested dicts/lists with numpy scalars made plain and non-finite floats made None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj

"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A run killed half-way leaves the last good file in place, never a truncated one. Lives in
`perception` because it is the package every other one may import.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


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


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> None:
    write_bytes(path, (json.dumps(obj, indent=indent, sort_keys=False) + "\n").encode())

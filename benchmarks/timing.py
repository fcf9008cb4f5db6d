"""What every benchmark here times the same way (imported by the scripts beside it)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_frame_ms(fn: Callable[[], object], batch: int, repeats: int = 30) -> float:
    """Median wall time of `fn()` over `repeats` calls after 3 warm-up calls, per frame [ms]."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / batch

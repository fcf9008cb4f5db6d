"""A wall-time budget for a training loop (train.py, pretrain.py): when to stop, and how many steps
the learning-rate schedule should plan for so that its cosine ends when the time does.

Comparing two recipes at equal wall time (benchmarks/ssl_compare.py) needs a cap in seconds, not in
steps: a pretraining step and a detection step cost different times. A schedule planned for the
epochs' steps but cut by the clock would stop at a high learning rate, so the budget projects the
total from the pace so far (steps done / seconds spent) and the schedule plans for that instead.
Runs under a budget are not bit-for-bit repeatable: how many steps fit depends on the machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

MIN_STEPS_TO_PROJECT = 5  # the first steps are slow (allocation, loader start-up): no projection before these


class TimeBudget:
    """`max_seconds` of wall time from construction (0: no limit); `start_step` optimiser steps
    already done (a resumed run) when the clock starts; `clock` in seconds (tests pass their own)."""

    def __init__(
        self, max_seconds: float, start_step: int = 0, clock: Callable[[], float] = time.perf_counter
    ):
        if not max_seconds >= 0:
            raise ValueError(f"max_seconds must be >= 0 (0: no limit), got {max_seconds}")
        self.max_seconds = float(max_seconds)
        self.start_step = start_step
        self.clock = clock
        self.start = clock()

    def elapsed_s(self) -> float:
        return self.clock() - self.start

    def spent(self) -> bool:
        """True once the budget is used up (never without a limit)."""
        return self.max_seconds > 0 and self.elapsed_s() >= self.max_seconds

    def total_steps(self, step: int, planned: int) -> int:
        """The steps the schedule should plan for at `step`: `planned`, or fewer where at this pace
        the budget ends first (the projection, never below the steps already done + 1)."""
        done = step - self.start_step
        elapsed = self.elapsed_s()
        if self.max_seconds == 0 or done < MIN_STEPS_TO_PROJECT or elapsed <= 0:
            return planned
        projected = self.start_step + math.ceil(done * self.max_seconds / elapsed)
        return max(min(planned, projected), step + 1)

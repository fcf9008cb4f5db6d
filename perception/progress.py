"""A small progress bar for long commands (data generation, training, suites): done/total, rate
and ETA on stderr; redrawn in place on a terminal, a line every ~10 % otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "it", stream=None, done: int = 0):
        """`done`: units already finished before this run (a resumed job); they do not count in
        the rate or the ETA."""
        self.total, self.desc, self.unit = max(int(total), 0), desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.start = int(done)
        self.t0 = time.perf_counter()
        self._last_decile = -1
        self.note = ""

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note or self.note
        decile = (10 * self.done) // max(self.total, 1)
        if self.tty or decile != self._last_decile or self.done >= self.total:
            self._last_decile = decile
            self._draw()

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        eta = "?" if left == float("inf") else _clock(left)
        line = (
            f"{self.desc} [{bar}] {self.done}/{self.total} {self.unit} "
            f"{rate:.2f}/s elapsed {_clock(elapsed)} eta {eta} {self.note}"
            + (f" (resumed at {self.start})" if self.start else "")
        )
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

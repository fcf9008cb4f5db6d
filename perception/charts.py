"""Charts as PNG files, drawn with matplotlib and written atomically (perception.files). Torch-free.

The project's charts, all here so that they look alike: line charts (precision-recall curves,
training losses), bar charts (a histogram of box heights) and grouped bars with confidence
whiskers (closed-loop scores per scenario and perceiver). Video frames and overlays stay with
OpenCV (sim/record/viz.py).

A figure is a `matplotlib.figure.Figure` rendered by the Agg canvas directly: no pyplot, so no
GUI backend, no global figure registry to leak into, and it works on a machine without a display.
Lives in `perception`, the lowest package, because both perception and sim draw charts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from perception.files import atomic_path

DPI = 100  # pixels per inch: a figure of W x H px is (W / DPI) x (H / DPI) inches
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")  # series order
GRID = {"color": "0.88", "linewidth": 0.8}


def colour(k: int) -> str:
    """The colour of the k-th series (cycles)."""
    return COLOURS[k % len(COLOURS)]


def figure(size_px: tuple[int, int]) -> tuple[Figure, object]:
    """A (figure, axes) pair of `size_px` (width, height) pixels, on an Agg canvas."""
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Write `fig` to `path` as PNG, atomically (a temporary file beside it, then renamed)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float] | None]],
    path: str | os.PathLike,
    title: str,
    xlabel: str,
    ylabel: str,
    size_px: tuple[int, int] = (640, 480),
    limits: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None),
    log_y: bool = False,
    markers: bool = False,
) -> None:
    """One line per series: name -> (x (K,), y (K,)). A series whose y is None has no data: it is
    named in the legend as "(no data)" and not drawn. limits: (x range, y range), None = automatic.
    log_y: a logarithmic y axis (non-positive values are left out)."""
    fig, ax = figure(size_px)
    drawn = 0
    for k, (name, (x, y)) in enumerate(series.items()):
        if y is None:
            ax.plot([], [], color=colour(k), label=f"{name} (no data)")
            continue
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = np.isfinite(y) & ((y > 0) if log_y else True)
        ax.plot(x[keep], y[keep], color=colour(k), linewidth=2, marker="o" if markers else None, label=name)
        drawn += int(keep.sum())
    if log_y and drawn:  # a log axis needs a positive value
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PlainLogFormatter())
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    if limits[0] is not None:
        ax.set_xlim(*limits[0])
    if limits[1] is not None:
        ax.set_ylim(*limits[1])
    _label(ax, title, xlabel, ylabel)
    if series:
        ax.legend(loc="best", frameon=False)
    save_png(fig, path)


def bar_chart(
    counts: dict[str, float],
    path: str | os.PathLike,
    title: str,
    xlabel: str,
    ylabel: str,
    size_px: tuple[int, int] = (640, 360),
) -> None:
    """One bar per label (e.g. a histogram's bins), its value written above it."""
    fig, ax = figure(size_px)
    bars = ax.bar(list(counts), list(counts.values()), color=colour(0))
    ax.bar_label(bars, fmt="%g", padding=2)
    ax.margins(y=0.12)  # room for the labels above the tallest bar
    _label(ax, title, xlabel, ylabel)
    save_png(fig, path)


def grouped_bar_chart(
    groups: Sequence[str],
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    title: str,
    ylabel: str,
    size_px: tuple[int, int] = (640, 480),
    ylim: tuple[float, float] | None = None,
) -> None:
    """Bars per group (x) and series (one colour each): name -> (values (G,), half widths (G,)).

    A non-finite value leaves its bar out; a non-finite half width draws no whisker. Whiskers are
    clipped to `ylim` (a 0-100 score's interval may reach past 100)."""
    fig, ax = figure(size_px)
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for k, (name, (values, half)) in enumerate(series.items()):
        values, half = np.asarray(values, dtype=float), np.asarray(half, dtype=float)
        xs = x - 0.4 + (k + 0.5) * width
        ok = np.isfinite(values)
        ax.bar(xs[ok], values[ok], width * 0.95, color=colour(k), label=name)
        ci = ok & np.isfinite(half)
        if ci.any():
            lo, hi = values[ci] - half[ci], values[ci] + half[ci]
            if ylim is not None:
                lo, hi = np.clip(lo, *ylim), np.clip(hi, *ylim)
            ax.vlines(xs[ci], lo, hi, colors="black", linewidth=1)
    tilt = len(groups) > 4
    ax.set_xticks(
        x, [_shorten(g) for g in groups], rotation=20 if tilt else 0, ha="right" if tilt else "center"
    )
    if ylim is not None:
        ax.set_ylim(*ylim)
    _label(ax, title, "", ylabel)
    if series:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # beside the bars
    save_png(fig, path)


class PlainLogFormatter(LogFormatter):
    """Labels of a log axis as plain numbers (0.3, 2, 10 rather than 3e-01): matplotlib picks which
    ticks get a label, this only writes them."""

    def __call__(self, x, pos=None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _label(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, **GRID)
    ax.set_axisbelow(True)


def _shorten(label: str, max_chars: int = 24) -> str:
    """`label`, cut to `max_chars` with an ellipsis where it is longer."""
    return label if len(label) <= max_chars else label[: max_chars - 1] + "\u2026"


def group_width_px(n_groups: int, group_px: int = 140, min_px: int = 640) -> int:
    """Width [px] of a grouped bar chart of `n_groups`: `group_px` a group, at least `min_px`."""
    return max(min_px, 100 + n_groups * group_px)

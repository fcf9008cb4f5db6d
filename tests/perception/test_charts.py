import cv2
import numpy as np
import pytest

from perception import charts


def rgb_of(k: int) -> tuple[int, int, int]:
    return tuple(int(charts.colour(k)[i : i + 2], 16) for i in (1, 3, 5))


def read_rgb(path):
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not a readable PNG"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def has_colour(img, rgb, min_px=20) -> bool:
    return int((np.abs(img.astype(int) - rgb).sum(axis=2) < 30).sum()) >= min_px


def test_line_chart_draws_each_series_at_its_size(tmp_path):
    path = tmp_path / "plots" / "lines.png"
    x = np.linspace(0, 1, 101)
    charts.line_chart(
        {"a": (x, 1 - x), "b": (x, x**2), "c": (x, None)},
        path,
        "t",
        "x",
        "y",
        size_px=(500, 300),
        limits=((0, 1), (0, 1)),
    )
    img = read_rgb(path)
    assert img.shape == (300, 500, 3)
    assert has_colour(img, rgb_of(0)) and has_colour(img, rgb_of(1))
    assert [p.name for p in path.parent.iterdir()] == ["lines.png"]  # written atomically, nothing left


def test_log_line_chart_skips_non_positive_values_and_survives_no_data(tmp_path):
    charts.line_chart({"loss": ([1, 2, 3], [1.0, 0.0, 0.1])}, tmp_path / "log.png", "t", "x", "y", log_y=True)
    charts.line_chart({"loss": ([1, 2], [0.0, -1.0])}, tmp_path / "none.png", "t", "x", "y", log_y=True)
    assert read_rgb(tmp_path / "log.png").shape == (480, 640, 3)
    assert read_rgb(tmp_path / "none.png").shape == (480, 640, 3)


def test_bar_chart(tmp_path):
    charts.bar_chart({"0-10": 3, "10-20": 12, "20+": 0}, tmp_path / "bars.png", "boxes", "height [px]", "n")
    img = read_rgb(tmp_path / "bars.png")
    assert img.shape == (360, 640, 3) and has_colour(img, rgb_of(0), min_px=2000)


def test_grouped_bar_chart_leaves_out_missing_bars(tmp_path):
    path = tmp_path / "grouped.png"
    series = {"gt": ([90.0, 80.0], [5.0, 40.0]), "cnn": ([np.nan, np.nan], [np.nan, np.nan])}
    charts.grouped_bar_chart(["a", "b"], series, path, "score", "score", ylim=(0, 100))
    img = read_rgb(path)
    assert has_colour(img, rgb_of(0), min_px=2000)
    assert not has_colour(img, rgb_of(1), min_px=2000)  # only the legend's patch, no bars


def test_a_failed_write_leaves_nothing(tmp_path):
    fig, ax = charts.figure((100, 100))
    ax.set_title(r"$\notacommand$")  # mathtext that fails when the figure is drawn
    with pytest.raises(ValueError):
        charts.save_png(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []

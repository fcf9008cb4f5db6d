import json
import math

import cv2
import numpy as np
import pytest

from perception import charts
from perception.files import json_safe
from sim.evaluation.report import (
    ALL,
    bar_chart_png,
    chart_size_px,
    fmt_ci,
    mean_ci,
    paired_differences,
    summary_rows,
    write_report,
)
from sim.metrics.events import EventKind
from sim.metrics.scores import CARLA_V2_0, CARLA_V2_1, NUPLAN_CLS

# Student's t quantiles t(0.975, dof), from tables.
T975 = {1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445}


def metrics(score, rc=100.0, distance_m=200.0, **counts):
    """A minimal metrics dict of sim.scores.summarize: 2.1 and nuPlan scores are score/2 and score/4."""
    infractions = {EventKind.COLLISION_VEHICLE: 0, EventKind.OFF_ROAD: 0, EventKind.LANE_INVASION: 0} | counts
    return {
        "driving_score": score,
        "route_completion": rc,
        "infractions": infractions,
        "distance_m": distance_m,
        "carla_v2_1": {"driving_score": score / 2},
        "nuplan": {"score": score / 4},
    }


def run(scenario, seed, perception, m=None, error=None):
    return {
        "scenario": scenario,
        "seed": seed,
        "perception": perception,
        "status": "error" if error else "ok",
        "error": error,
        "run_dir": f"{scenario}/{perception}/seed_{seed}",
        "metrics": m,
    }


# cut_in: ground truth 90, 80, 70; cnn 60, 70 and an error on seed 2.
# ped_crossing: ground truth 100, an error on seed 1, 50; cnn 40, 30, 50.
RECORDS = [
    run("cut_in", 0, "ground_truth", metrics(90.0, rc=100.0)),
    run("cut_in", 1, "ground_truth", metrics(80.0, rc=90.0)),
    run("cut_in", 2, "ground_truth", metrics(70.0, rc=80.0)),
    run("cut_in", 0, "cnn", metrics(60.0, **{EventKind.COLLISION_VEHICLE: 1, EventKind.LANE_INVASION: 3})),
    run("cut_in", 1, "cnn", metrics(70.0, **{EventKind.OFF_ROAD: 1})),
    run(
        "cut_in",
        2,
        "cnn",
        error="Traceback (most recent call last):\n  ...\nRuntimeError: physics exploded\n",
    ),
    run("ped_crossing", 0, "ground_truth", metrics(100.0)),
    run("ped_crossing", 1, "ground_truth", error="MemoryError: out of memory"),
    run("ped_crossing", 2, "ground_truth", metrics(50.0)),
    run("ped_crossing", 0, "cnn", metrics(40.0, distance_m=100.0)),
    run("ped_crossing", 1, "cnn", metrics(30.0, distance_m=100.0)),
    run("ped_crossing", 2, "cnn", metrics(50.0, distance_m=100.0)),
]
ATTRIBUTIONS = [
    {
        "scenario": "cut_in",
        "seed": 0,
        "perception": "cnn",
        "t_s": 12.5,
        "kind": EventKind.COLLISION_VEHICLE,
        "actor_id": 3,
        "cause": "missed detection",
        "missed_fraction": 0.8,
        "localisation_error_m": None,
        "track_latency_s": 0.25,
        "clip": "cut_in/cnn/seed_0/clip 12.5s.mp4",
    }
]


def test_mean_ci_by_hand():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half == pytest.approx(T975[3] * math.sqrt(5 / 3) / 2, rel=1e-6)  # sd sqrt(5/3), n 4
    assert mean_ci([1.0, 2.0, 3.0, 4.0], confidence=0.9)[1] == pytest.approx(2.353363 * math.sqrt(5 / 3) / 2)
    mean, half = mean_ci([7.0])
    assert mean == 7.0 and math.isnan(half)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert fmt_ci(87.34, 4.06) == "87.3 ± 4.1"
    assert fmt_ci(7.0, math.nan) == "7.0 ± n/a"
    assert fmt_ci(math.nan, math.nan) == "n/a"
    assert fmt_ci(-2.0, 1.5, sign=True) == "-2.0 ± 1.5" and fmt_ci(2.0, 1.5, sign=True) == "+2.0 ± 1.5"


def test_paired_differences_leave_out_failed_seeds():
    rows = paired_differences(RECORDS, CARLA_V2_0)
    assert [(r["scenario"], r["perception"]) for r in rows] == [
        ("cut_in", "cnn"),
        ("ped_crossing", "cnn"),
        (ALL, "cnn"),
    ]
    cut, ped, pooled = rows
    # cut_in: seed 2 left out (cnn errored): diffs -30, -10
    assert cut["n_pairs"] == 2 and cut["diff_mean"] == pytest.approx(-20.0)
    assert cut["diff_ci"] == pytest.approx(T975[1] * math.sqrt(200) / math.sqrt(2), rel=1e-6)
    assert cut["baseline_mean"] == pytest.approx(85.0) and cut["perception_mean"] == pytest.approx(65.0)
    # ped_crossing: seed 1 left out (ground truth errored): diffs -60, 0
    assert ped["n_pairs"] == 2 and ped["diff_mean"] == pytest.approx(-30.0) and ped["baseline_mean"] == 75.0
    # pooled: -30, -10, -60, 0: mean -25, sample variance 2100 / 3
    assert pooled["n_pairs"] == 4 and pooled["diff_mean"] == pytest.approx(-25.0)
    assert pooled["diff_ci"] == pytest.approx(T975[3] * math.sqrt(700 / 4), rel=1e-6)
    # another scorer reads its own score (nuPlan = score / 4 here)
    assert paired_differences(RECORDS, NUPLAN_CLS)[-1]["diff_mean"] == pytest.approx(-25.0 / 4)
    assert paired_differences(RECORDS, CARLA_V2_0, baseline="lidar") == []
    with pytest.raises(ValueError, match="known"):
        paired_differences(RECORDS, "carla-leaderboard-1.0")


def test_summary_rows_numbers():
    rows = {(r["scenario"], r["perception"]): r for r in summary_rows(RECORDS, CARLA_V2_0)}
    assert list(rows) == [
        ("cut_in", "ground_truth"),
        ("cut_in", "cnn"),
        ("ped_crossing", "ground_truth"),
        ("ped_crossing", "cnn"),
        (ALL, "ground_truth"),
        (ALL, "cnn"),
    ]
    gt = rows["cut_in", "ground_truth"]
    assert (gt["n_ok"], gt["n_errors"]) == (3, 0)
    assert gt["score_mean"] == pytest.approx(80.0)
    assert gt["score_ci"] == pytest.approx(T975[2] * 10 / math.sqrt(3), rel=1e-6)
    assert gt["route_completion_mean"] == pytest.approx(90.0) and gt["infractions_per_km"] == 0.0
    cnn = rows["cut_in", "cnn"]
    assert (cnn["n_ok"], cnn["n_errors"]) == (2, 1)
    # a collision and an off road over 0.4 km (lane invasions do not count)
    assert cnn["infractions"] == 2 and cnn["infractions_per_km"] == pytest.approx(5.0)
    assert cnn["collisions"] == 1 and cnn["distance_km"] == pytest.approx(0.4)
    assert rows["ped_crossing", "ground_truth"]["n_errors"] == 1
    # overall ground truth: 90, 80, 70, 100, 50: mean 78, sample variance 370
    overall = rows[ALL, "ground_truth"]
    assert (overall["n_ok"], overall["n_errors"]) == (5, 1)
    assert overall["score_mean"] == pytest.approx(78.0)
    assert overall["score_ci"] == pytest.approx(T975[4] * math.sqrt(370 / 5), rel=1e-6)
    # overall cnn: 2 infractions over 0.4 + 0.3 km (pooled, not a mean of rates)
    assert rows[ALL, "cnn"]["infractions_per_km"] == pytest.approx(2 / 0.7)
    assert rows[ALL, "cnn"]["score_mean"] == pytest.approx(50.0)
    assert summary_rows(RECORDS, CARLA_V2_1)[0]["score_mean"] == pytest.approx(40.0)


def test_bar_chart_size_and_bars(tmp_path):
    rows = [
        {"scenario": f"scenario_{i}", "perception": p, "score_mean": 20.0 + 10 * i, "score_ci": 5.0}
        for i in range(5)
        for p in ("ground_truth", "cnn")
    ]
    rows.append(
        {
            "scenario": "a_very_long_scenario_name_" * 3,
            "perception": "cnn",
            "score_mean": math.nan,
            "score_ci": math.nan,
        }
    )
    path = tmp_path / "chart.png"
    bar_chart_png(rows, path)
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    w, h = chart_size_px(6)
    assert w > 640 and img.shape == (h, w, 3)
    for k in range(2):  # one bar colour per perceiver
        rgb = tuple(int(charts.colour(k)[i : i + 2], 16) for i in (1, 3, 5))
        assert (img == rgb).all(axis=2).sum() > 1000
    assert not (img == tuple(int(charts.colour(2)[i : i + 2], 16) for i in (1, 3, 5))).all(axis=2).any()
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]  # nothing left of the atomic write


def test_write_report(tmp_path):
    md_path = write_report(RECORDS, ATTRIBUTIONS, tmp_path, CARLA_V2_0, "Nightly suite")
    assert md_path == tmp_path / "report.md"
    md = md_path.read_text()
    assert md.startswith("# Nightly suite")
    assert f"`{CARLA_V2_0}`" in md and "Runs: 12, errors: 2" in md
    assert "Seeds: 0, 1, 2. All below 1,000,000,000, where the datasets' scene seeds start" in md
    assert "| cut_in | ground_truth | 3 | 0 | 80.0 ± 24.8 | 90.0 ± 24.8 | 0.00 | 0 |" in md
    assert "| cut_in | cnn | 2 | 1 | 65.0 ± 63.5 | 100.0 ± 0.0 | 5.00 | 1 |" in md
    assert "| all scenarios | ground_truth | 5 | 1 | 78.0 ± 23.9 |" in md
    assert "| cut_in | cnn | 2 | 85.0 | 65.0 | -20.0 ± 127.1 |" in md
    assert "| all scenarios | cnn | 4 | 80.0 | 55.0 | -25.0 ± 42.1 |" in md
    assert "![" in md and "](driving_score.png)" in md
    assert "missed detection" in md and "[clip](cut_in/cnn/seed_0/clip%2012.5s.mp4)" in md
    errors = md.split("## Errors")[1]
    assert "cut_in, seed 2, cnn: `RuntimeError: physics exploded`" in errors
    assert "ped_crossing, seed 1, ground_truth: `MemoryError: out of memory`" in errors
    assert "(ped_crossing/ground_truth/seed_1)" in errors

    img = cv2.imread(str(tmp_path / "driving_score.png"))
    assert img is not None and img.shape == (*chart_size_px(3)[::-1], 3)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scorer"] == CARLA_V2_0 and report["n_runs"] == 12 and report["n_errors"] == 2
    assert report["seeds"] == [0, 1, 2]
    assert report["summary"] == json_safe(summary_rows(RECORDS, CARLA_V2_0))
    assert report["perception_swap"] == json_safe(paired_differences(RECORDS, CARLA_V2_0))
    assert report["infractions"] == ATTRIBUTIONS
    assert [e["run_dir"] for e in report["errors"]] == [
        "cut_in/cnn/seed_2",
        "ped_crossing/ground_truth/seed_1",
    ]


def test_write_report_other_scorer_and_no_errors(tmp_path):
    ok = [r for r in RECORDS if r["status"] == "ok"]
    md = write_report(ok, [], tmp_path, NUPLAN_CLS, "nuPlan").read_text()
    assert f"`{NUPLAN_CLS}`" in md and CARLA_V2_0 not in md
    assert "| cut_in | ground_truth | 3 | 0 | 20.0 ± 6.2 |" in md  # 80 / 4
    assert md.split("## Errors")[1].strip() == "None."
    assert md.split("## Infractions and failures")[1].split("##")[0].strip().endswith("moment.\n\nNone.")
    with pytest.raises(ValueError):
        write_report(ok, [], tmp_path / "x", "carla-leaderboard-1.0", "bad")
    assert not (tmp_path / "x").exists()
    assert np.isfinite(json.loads((tmp_path / "report.json").read_text())["summary"][0]["score_ci"])

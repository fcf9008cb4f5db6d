"""The report's per-ability table (Bench2Drive) on crafted metrics, and the suite's abilities lookup."""

import json
import math

import pytest

from sim.evaluation.report import OVERALL, ability_rows, report_data, report_markdown, write_report
from sim.evaluation.suite import SuiteError, abilities_lookup
from sim.metrics.bench2drive import ABILITIES
from sim.metrics.scores import CARLA_V2_0, NUPLAN_CLS


def metrics(score, success, efficiency=None, smoothness=1.0, traffic_signs=None):
    return {
        "driving_score": score,
        "route_completion": 100.0,
        "distance_m": 200.0,
        "infractions": {},
        "nuplan": {"score": score / 2},
        "bench2drive": {
            "success": success,
            "traffic_signs_success": success if traffic_signs is None else traffic_signs,
            "efficiency_pct": efficiency,
            "smoothness": smoothness,
        },
    }


def run(scenario, seed, m, perception="ground_truth"):
    return {"scenario": scenario, "seed": seed, "perception": perception, "status": "ok", "error": None,
            "run_dir": f"runs/{scenario}/{seed}", "metrics": m}  # fmt: skip


ABILITY_OF = {
    "SignalizedJunctionLeftTurn": ("merging", "traffic_signs"),
    "ParkedObstacleTwoWays": ("overtaking",),
    "DynamicObjectCrossing": ("emergency_brake",),
    "cut_in": (),
}
RECORDS = [
    # a failed left turn that got past the junction: a traffic-sign success, not a merging one
    run("SignalizedJunctionLeftTurn", 0, metrics(60.0, False, 90.0, 0.5, traffic_signs=True)),
    run("SignalizedJunctionLeftTurn", 1, metrics(100.0, True, 110.0, 1.0)),
    run("ParkedObstacleTwoWays", 0, metrics(80.0, True, None, 1.0)),
    run("DynamicObjectCrossing", 0, metrics(40.0, False, 70.0, 0.0)),
    run("cut_in", 0, metrics(100.0, True)),
    run("cut_in", 1, None) | {"status": "error", "error": "boom"},
]


def rows_by_ability(rows, perception="ground_truth"):
    return {r["ability"]: r for r in rows if r["perception"] == perception}


def test_ability_rows_per_ability_overall_and_headline():
    rows = rows_by_ability(ability_rows(RECORDS, CARLA_V2_0, ABILITY_OF))
    assert list(rows) == [*ABILITIES, OVERALL, "headline"]
    merging, signs = rows["merging"], rows["traffic_signs"]
    assert merging["n_runs"] == 2 and merging["score_mean"] == pytest.approx(80.0)
    assert merging["success_rate"] == pytest.approx(50.0) and signs["success_rate"] == pytest.approx(100.0)
    assert merging["efficiency_pct"] == pytest.approx(100.0) and merging["comfort"] == pytest.approx(0.75)
    assert rows["overtaking"]["success_rate"] == 100.0 and math.isnan(rows["overtaking"]["efficiency_pct"])
    assert rows["emergency_brake"]["success_rate"] == 0.0
    assert rows["give_way"]["n_runs"] == 0 and math.isnan(rows["give_way"]["success_rate"])
    overall = rows[OVERALL]
    assert overall["n_runs"] == 5  # the error left out, the scenario without abilities in
    assert overall["score_mean"] == pytest.approx(76.0) and overall["success_rate"] == pytest.approx(60.0)
    # the mean of the success rates of the abilities that have runs: (50 + 100 + 0 + 100) / 4
    assert rows["headline"]["success_rate"] == pytest.approx(62.5)


def test_ability_rows_other_scorer_and_per_perceiver():
    records = RECORDS + [run("ParkedObstacleTwoWays", 0, metrics(10.0, False), perception="cnn")]
    rows = ability_rows(records, NUPLAN_CLS, ABILITY_OF)
    gt, cnn = rows_by_ability(rows), rows_by_ability(rows, "cnn")
    assert gt["overtaking"]["score_mean"] == pytest.approx(40.0)
    assert cnn["overtaking"]["success_rate"] == 0.0 and cnn["headline"]["success_rate"] == 0.0
    assert cnn["merging"]["n_runs"] == 0


def test_old_metrics_without_bench2drive_count_as_failures():
    rows = rows_by_ability(
        ability_rows([run("cut_in", 0, {"driving_score": 90.0})], CARLA_V2_0, {"cut_in": ()})
    )
    assert rows[OVERALL]["success_rate"] == 0.0 and rows[OVERALL]["score_mean"] == 90.0
    assert math.isnan(rows["headline"]["success_rate"])


def test_report_has_an_abilities_section_only_with_a_lookup(tmp_path):
    with_abilities = report_data(RECORDS, [], CARLA_V2_0, "abilities", "ground_truth", ABILITY_OF)
    md = report_markdown(with_abilities)
    assert "## Abilities (Bench2Drive)" in md and "mean ability success rate 62.5 %" in md
    assert "| traffic_signs | ground_truth | 2 |" in md
    without = report_data(RECORDS, [], CARLA_V2_0, "plain", "ground_truth")
    assert without["abilities"] == [] and "Abilities" not in report_markdown(without)
    write_report(RECORDS, [], tmp_path, CARLA_V2_0, "abilities", abilities=ABILITY_OF)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [r["ability"] for r in saved["abilities"]][:5] == list(ABILITIES)


def test_abilities_lookup():
    lookup = abilities_lookup({"a": ["merging", "traffic_signs", "merging"], "b": None, "c": []})
    assert lookup == {"a": ("merging", "traffic_signs"), "b": (), "c": ()}
    with pytest.raises(SuiteError, match="scenario a: unknown ability 'flying'"):
        abilities_lookup({"a": ["merging", "flying"]})
    with pytest.raises(SuiteError, match="scenario a: 'abilities' is 'merging'"):
        abilities_lookup({"a": "merging"})

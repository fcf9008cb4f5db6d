"""The suite report: tables, a bar chart and the perception-swap study over the runs of a suite.

Pure functions over run records; nothing here simulates. A run record is a dict
  {"scenario", "seed", "perception", "status" ("ok" | "error"), "error", "run_dir", "metrics"}
with `metrics` the dict of sim.metrics.scores.summarize (None on error). An attribution record gives the likely
cause of one infraction: {"scenario", "seed", "perception", "t_s", "kind", "actor_id", "cause",
"outside_view_fraction", "missed_fraction", "localisation_error_m", "track_latency_s", "clip"}. Paths (run_dir, clip) are
relative to the suite folder, where the report is written.

Numbers are mean ± half width of the 95 % confidence interval (Student's t over the runs). As in the
CARLA leaderboard (statistics_manager.py) the global score is the mean over runs and infractions
per km are pooled: total count over total distance. The perception-swap study pairs every run with
the run of the baseline perceiver (ground truth) on the same scenario and seed, so that the
difficulty of a seed cancels out: a paired t interval of the score difference.

Abilities (Bench2Drive, Thinklab-SJTU/Bench2Drive tools/ability_benchmark.py): with an `abilities`
lookup (scenario name -> the abilities it tests, from the scenarios' `abilities:` lists), the report
gives per ability and overall the driving score, the success rate, the efficiency and the comfort
(smoothness) of the runs (metrics["bench2drive"], sim/metrics/bench2drive.py). A scenario counts for
every ability it names; for traffic_signs a run succeeds as Bench2Drive's traffic-sign rule says
(`traffic_signs_success`). The headline is the mean of the five abilities' success rates.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from urllib.parse import quote

import numpy as np
from scipy import stats

from perception import charts
from perception.files import write_bytes, write_json
from sim.config import DATA_SEED_MIN
from sim.metrics.bench2drive import ABILITIES
from sim.metrics.events import COLLISION_KINDS, EventKind
from sim.metrics.scores import SCORERS, score_of

ALL = "all scenarios"
OVERALL = "overall"  # the ability row over every run
BASELINE = "ground_truth"
INFRACTION_KINDS = (*COLLISION_KINDS, EventKind.OFF_ROAD)  # what "infractions per km" counts
CHART_NAME = "driving_score.png"
CHART_HEIGHT_PX = 480
CHART_GROUP_PX = 140  # width of one scenario's group of bars


# ---------------------------------------------------------------------------- statistics
def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half width of the `confidence` interval) with Student's t; half width nan for < 2 values."""
    x = np.asarray(list(values), dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    t = stats.t.ppf(0.5 + confidence / 2, len(x) - 1)
    return float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(len(x)))


def fmt_ci(mean: float, half: float, digits: int = 1, sign: bool = False) -> str:
    """Mean ± half width: "87.3 ± 4.1" ("+2.0 ± 1.5" with sign), "87.3 ± n/a" for one run, "n/a" for none."""
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:{'+' if sign else ''}.{digits}f} ± " + (
        f"{half:.{digits}f}" if math.isfinite(half) else "n/a"
    )


def _is_ok(record: dict) -> bool:
    return record["status"] == "ok" and record["metrics"] is not None


def _ok(records: list[dict]) -> list[dict]:
    return [r for r in records if _is_ok(r)]


def _order(values) -> list:
    """The distinct values in order of first appearance (the suite's order)."""
    return list(dict.fromkeys(values))


def _check_scorer(scorer: str) -> None:
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; known: {', '.join(SCORERS)}")


# ---------------------------------------------------------------------------- tables
def summary_rows(records: list[dict], scorer: str) -> list[dict]:
    """One row per scenario x perceiver that ran, then one per perceiver over all scenarios (ALL).

    Row: scenario, perception, n_ok, n_errors, score_mean/_ci, route_completion_mean/_ci [percent],
    distance_km, infractions (collisions + off road), infractions_per_km (pooled; nan without
    distance), collisions. Only runs that ended ok count in the numbers.
    """
    _check_scorer(scorer)
    perceivers = _order(r["perception"] for r in records)
    groups = [
        (s, p, [r for r in records if (r["scenario"], r["perception"]) == (s, p)])
        for s in _order(r["scenario"] for r in records)
        for p in perceivers
    ]
    groups = [g for g in groups if g[2]]
    groups += [(ALL, p, [r for r in records if r["perception"] == p]) for p in perceivers]
    return [_summary_row(s, p, rs, scorer) for s, p, rs in groups]


def _summary_row(scenario: str, perception: str, records: list[dict], scorer: str) -> dict:
    ok = [r["metrics"] for r in _ok(records)]
    score = mean_ci(score_of(m, scorer) for m in ok)
    rc = mean_ci(m["route_completion"] for m in ok)
    km = sum(m["distance_m"] for m in ok) / 1000.0
    infractions = sum(m["infractions"].get(k, 0) for m in ok for k in INFRACTION_KINDS)
    return {
        "scenario": scenario,
        "perception": perception,
        "n_ok": len(ok),
        "n_errors": len(records) - len(ok),
        "score_mean": score[0],
        "score_ci": score[1],
        "route_completion_mean": rc[0],
        "route_completion_ci": rc[1],
        "distance_km": km,
        "infractions": infractions,
        "infractions_per_km": infractions / km if km > 0 else math.nan,
        "collisions": sum(m["infractions"].get(k, 0) for m in ok for k in COLLISION_KINDS),
    }


def paired_differences(records: list[dict], scorer: str, baseline: str = BASELINE) -> list[dict]:
    """The perception-swap study: score(perceiver) - score(baseline) paired by scenario and seed.

    One row per scenario x other perceiver that ran there, then one per perceiver with the pairs of
    all scenarios pooled (ALL). Only seeds where both runs ended ok pair up. Row: scenario,
    perception, baseline, n_pairs, baseline_mean, perception_mean (over the paired runs),
    diff_mean, diff_ci. Empty when the baseline never ran.
    """
    _check_scorer(scorer)
    if not any(r["perception"] == baseline for r in records):
        return []
    score = {
        (r["scenario"], r["seed"], r["perception"]): score_of(r["metrics"], scorer) for r in _ok(records)
    }
    ran = {(r["scenario"], r["perception"]) for r in records}
    others = [p for p in _order(r["perception"] for r in records) if p != baseline]
    rows, pooled = [], {p: [] for p in others}
    for s in _order(r["scenario"] for r in records):
        seeds = _order(r["seed"] for r in records if r["scenario"] == s)
        for p in [p for p in others if (s, p) in ran]:
            pairs = [
                (score[s, k, baseline], score[s, k, p])
                for k in seeds
                if {(s, k, baseline), (s, k, p)} <= score.keys()
            ]
            pooled[p] += pairs
            rows.append(_paired_row(s, p, baseline, pairs))
    return rows + [_paired_row(ALL, p, baseline, pooled[p]) for p in others]


def _paired_row(scenario: str, perception: str, baseline: str, pairs: list[tuple[float, float]]) -> dict:
    base, other = np.array(pairs, dtype=float).reshape(-1, 2).T
    diff = mean_ci(other - base)
    return {
        "scenario": scenario,
        "perception": perception,
        "baseline": baseline,
        "n_pairs": len(pairs),
        "baseline_mean": float(base.mean()) if len(pairs) else math.nan,
        "perception_mean": float(other.mean()) if len(pairs) else math.nan,
        "diff_mean": diff[0],
        "diff_ci": diff[1],
    }


# ---------------------------------------------------------------------------- abilities
def ability_rows(records: list[dict], scorer: str, abilities: Mapping[str, Sequence[str]]) -> list[dict]:
    """Per perceiver: one row per Bench2Drive ability (ABILITIES order), one OVERALL row over all the
    perceiver's runs, and the headline.

    Row: ability, perception, n_runs (ok runs of the scenarios that test it), score_mean/_ci,
    success_rate [percent], efficiency_pct (mean over the runs that have one), comfort (mean
    smoothness, in [0, 1]). The headline row (ability "headline") has success_rate = the mean of the
    abilities' success rates (those with runs; nan if none has), the rest nan.
    Scenarios without abilities count in OVERALL only; a run without Bench2Drive metrics (older runs)
    counts in the score and as not successful.
    """
    _check_scorer(scorer)
    rows = []
    for p in _order(r["perception"] for r in records):
        mine = [r for r in _ok(records) if r["perception"] == p]
        per_ability = [
            _ability_row(a, p, [r for r in mine if a in abilities.get(r["scenario"], ())], scorer)
            for a in ABILITIES
        ]
        rates = [row["success_rate"] for row in per_ability if row["n_runs"]]
        headline = float(np.mean(rates)) if rates else math.nan
        rows += [*per_ability, _ability_row(OVERALL, p, mine, scorer)]
        rows.append(_ability_row("headline", p, [], scorer) | {"success_rate": headline})
    return rows


def _ability_row(ability: str, perception: str, records: list[dict], scorer: str) -> dict:
    metrics = [r["metrics"] for r in records]
    b2d = [m.get("bench2drive") or {} for m in metrics]
    success_key = "traffic_signs_success" if ability == "traffic_signs" else "success"
    score = mean_ci(score_of(m, scorer) for m in metrics)
    return {
        "ability": ability,
        "perception": perception,
        "n_runs": len(metrics),
        "score_mean": score[0],
        "score_ci": score[1],
        "success_rate": 100.0 * float(np.mean([bool(b.get(success_key)) for b in b2d])) if b2d else math.nan,
        "efficiency_pct": _mean_of(b.get("efficiency_pct") for b in b2d),
        "comfort": _mean_of(b.get("smoothness") for b in b2d),
    }


def _mean_of(values) -> float:
    """Mean of the finite numbers among `values` (None and nan left out); nan if there are none."""
    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(x)) if x else math.nan


# ---------------------------------------------------------------------------- chart
def chart_size_px(n_groups: int) -> tuple[int, int]:
    """(width, height) of the bar chart of `n_groups` scenarios."""
    return charts.group_width_px(n_groups, CHART_GROUP_PX), CHART_HEIGHT_PX


def bar_chart_png(rows: list[dict], path: str | os.PathLike, title: str = "score") -> None:
    """Grouped bars of `score_mean` (0-100) with a `score_ci` whisker: scenario on x, a bar per perceiver.

    rows: summary_rows (or any rows with scenario, perception, score_mean, score_ci). Drawn by
    perception.charts (matplotlib); written atomically as PNG.
    """
    scenarios, perceivers = _order(r["scenario"] for r in rows), _order(r["perception"] for r in rows)
    by_key = {(r["scenario"], r["perception"]): r for r in rows}
    nan = {"score_mean": math.nan, "score_ci": math.nan}
    series = {
        p: (
            [by_key.get((s, p), nan)["score_mean"] for s in scenarios],
            [by_key.get((s, p), nan)["score_ci"] for s in scenarios],
        )
        for p in perceivers
    }
    charts.grouped_bar_chart(
        scenarios, series, path, title, "score", size_px=chart_size_px(len(scenarios)), ylim=(0.0, 100.0)
    )


# ---------------------------------------------------------------------------- report
def _cell(value, digits: int = 2) -> str:
    """A Markdown table cell: None / nan as "-", floats with `digits` decimals, no pipes or newlines."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: dict[str, Callable[[dict], object]], rows: list[dict]) -> str:
    """A GitHub Markdown table: one column per (header, cell of a row) in `columns`."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(_cell(f(r)) for f in columns.values()) + " |" for r in rows])


SUMMARY_COLUMNS = {
    "scenario": itemgetter("scenario"),
    "perception": itemgetter("perception"),
    "runs ok": itemgetter("n_ok"),
    "errors": itemgetter("n_errors"),
    "score": lambda r: fmt_ci(r["score_mean"], r["score_ci"]),
    "route completion %": lambda r: fmt_ci(r["route_completion_mean"], r["route_completion_ci"]),
    "infractions / km": itemgetter("infractions_per_km"),
    "collisions": itemgetter("collisions"),
}
SWAP_COLUMNS = {
    "scenario": itemgetter("scenario"),
    "perception": itemgetter("perception"),
    "pairs": itemgetter("n_pairs"),
    "baseline score": lambda r: _cell(r["baseline_mean"], 1),
    "perception score": lambda r: _cell(r["perception_mean"], 1),
    "difference": lambda r: fmt_ci(r["diff_mean"], r["diff_ci"], sign=True),
}
INFRACTION_COLUMNS = {
    "scenario": itemgetter("scenario"),
    "seed": itemgetter("seed"),
    "perception": itemgetter("perception"),
    "t [s]": itemgetter("t_s"),
    "kind": itemgetter("kind"),
    "actor": itemgetter("actor_id"),
    "likely cause": itemgetter("cause"),
    "outside view fraction": lambda a: a.get("outside_view_fraction"),
    "missed fraction": itemgetter("missed_fraction"),
    "localisation error [m]": itemgetter("localisation_error_m"),
    "track latency [s]": itemgetter("track_latency_s"),
    "phantom fraction": lambda a: a.get("phantom_fraction"),
    "clip": lambda a: f"[clip]({quote(a['clip'])})" if a["clip"] else None,
}


def _error_line(error: str | None) -> str:
    """The last non-empty line of an error (a traceback ends with the exception)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1].replace("`", "'") if lines else "(no message)"


def write_report(
    records: list[dict],
    attributions: list[dict],
    out_dir: str | os.PathLike,
    scorer: str,
    title: str,
    baseline: str = BASELINE,
    abilities: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write out_dir/report.md, out_dir/report.json (same rows) and out_dir/driving_score.png.

    All three atomically. Returns the path of report.md. abilities: scenario name -> the Bench2Drive
    abilities it tests (the per-ability section; none without it).
    """
    report = report_data(records, attributions, scorer, title, baseline, abilities)
    out_dir = Path(out_dir)
    bar_chart_png(report["summary"], out_dir / CHART_NAME, title=f"{scorer}: mean and 95% CI")
    write_bytes(out_dir / "report.md", report_markdown(report).encode())
    write_json(out_dir / "report.json", report)
    return out_dir / "report.md"


def report_data(
    records: list[dict],
    attributions: list[dict],
    scorer: str,
    title: str,
    baseline: str,
    abilities: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """Everything the report shows, as the dict of report.json: summary rows, the abilities (empty
    without an `abilities` lookup), the perception swap, the infractions (attribution records) and
    the runs that failed."""
    _check_scorer(scorer)
    errors = [
        {k: r[k] for k in ("scenario", "seed", "perception", "error", "run_dir")}
        for r in records
        if not _is_ok(r)
    ]
    return {
        "title": title,
        "scorer": scorer,
        "baseline": baseline,
        "n_runs": len(records),
        "n_errors": len(errors),
        "seeds": _order(r["seed"] for r in records),
        "summary": summary_rows(records, scorer),
        "abilities": ability_rows(records, scorer, abilities) if abilities else [],
        "perception_swap": paired_differences(records, scorer, baseline),
        "infractions": attributions,
        "errors": errors,
    }


def report_markdown(report: dict) -> str:
    """report.md: the sections of `report_data`, one after the other."""
    sections = (
        _md_summary(report),
        _md_abilities(report),
        _md_swap(report),
        _md_infractions(report),
        _md_errors(report),
    )
    sections = tuple(s for s in sections if s)
    return "\n\n".join(sections) + "\n"


def _md_summary(report: dict) -> str:
    scorer, summary = report["scorer"], report["summary"]
    return "\n\n".join(
        [
            f"# {report['title']}",
            f"Scorer: `{scorer}` (score 0-100). Runs: {report['n_runs']}, errors: {report['n_errors']}. "
            "Numbers are mean ± half width of the 95 % confidence interval (Student's t over runs); "
            "infractions (collisions and off road) per km are pooled over the runs.",
            _md_seeds(report),
            "## Per scenario",
            _table(SUMMARY_COLUMNS, [r for r in summary if r["scenario"] != ALL]),
            "## Overall",
            _table(SUMMARY_COLUMNS, [r for r in summary if r["scenario"] == ALL]),
            f"![{scorer} per scenario and perception]({CHART_NAME})",
        ]
    )


def _md_seeds(report: dict) -> str:
    seeds = report.get("seeds") or []
    shown = ", ".join(str(s) for s in seeds[:20]) + (f", ... ({len(seeds)} seeds)" if len(seeds) > 20 else "")
    disjoint = all(s < DATA_SEED_MIN for s in seeds)
    return f"Seeds: {shown}. " + (
        f"All below {DATA_SEED_MIN:,}, where the datasets' scene seeds start (`bulletdrive data`): no run "
        "drives a scene the detector was trained or validated on."
        if disjoint
        else f"Some are dataset scene seeds (>= {DATA_SEED_MIN:,}): those runs drive scenes a detector may have been trained on."
    )


ABILITY_COLUMNS = {
    "ability": itemgetter("ability"),
    "perception": itemgetter("perception"),
    "runs": itemgetter("n_runs"),
    "score": lambda r: fmt_ci(r["score_mean"], r["score_ci"]),
    "success rate %": lambda r: _cell(r["success_rate"], 1),
    "efficiency %": lambda r: _cell(r["efficiency_pct"], 1),
    "comfort": lambda r: _cell(r["comfort"], 3),
}


def _md_abilities(report: dict) -> str:
    """The Bench2Drive section; empty (left out) without ability rows."""
    rows = report.get("abilities") or []
    if not rows:
        return ""
    headlines = [r for r in rows if r["ability"] == "headline"]
    lines = [
        f"- `{r['perception']}`: mean ability success rate {_cell(r['success_rate'], 1)} %" for r in headlines
    ]
    return "\n\n".join(
        [
            "## Abilities (Bench2Drive)",
            "Per ability, the runs of the scenarios that test it (a scenario may test several); overall: "
            "every run. Success: route completed with no infraction (min speed aside); efficiency: ego "
            "speed as % of the surrounding traffic's at the min-speed checkpoints; comfort: the share of "
            "comfortable 2 s segments. Headline: the mean of the abilities' success rates.",
            "\n".join(lines),
            _table(ABILITY_COLUMNS, [r for r in rows if r["ability"] != "headline"]),
        ]
    )


def _md_swap(report: dict) -> str:
    baseline, swap = report["baseline"], report["perception_swap"]
    return "\n\n".join(
        [
            "## Perception swap: what perception costs",
            f"Score of each perception minus `{baseline}` on the same scenario and seed (seeds where both "
            "ran ok); negative: the perception costs points.",
            _table(SWAP_COLUMNS, swap)
            if swap
            else f"No run with `{baseline}` perception: nothing to compare.",
        ]
    )


def _md_infractions(report: dict) -> str:
    attributions = report["infractions"]
    return "\n\n".join(
        [
            "## Infractions and failures",
            "Collisions and off-road driving, and runs that ended blocked or timed out, with the perception "
            "errors in the seconds before (sim/evaluation/attribution.py) and a bird's-eye clip of the moment.",
            _table(INFRACTION_COLUMNS, attributions) if attributions else "None.",
        ]
    )


def _md_errors(report: dict) -> str:
    lines = [
        f"- {_cell(r['scenario'])}, seed {r['seed']}, {_cell(r['perception'])}: "
        f"`{_error_line(r['error'])}` ([run folder]({quote(r['run_dir'])}))"
        for r in report["errors"]
    ]
    return "## Errors\n\n" + ("\n".join(lines) or "None.")

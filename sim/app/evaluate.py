"""`bulletdrive evaluate` and `bulletdrive replay`: the Hydra edge of suites (sim/evaluation/suite.py), reports
(sim/evaluation/report.py) and replays (sim/record/replay.py)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from sim.app import config as C
from sim.evaluation import report, suite
from sim.metrics import scores

EVALUATE_KEYS = {
    "suite", "seeds", "perceivers", "overrides", "workers", "backend", "ray_address", "timeout_s", "scorer",
    "clips", "out_dir",
}  # fmt: skip
SUITE_KEYS = {"name", "description", "scenarios", "seeds"}
LIST_KEYS = ("perceivers=", "seeds=")  # `perceivers=a,b` means the list [a, b]


def _as_lists(args: list[str]) -> list[str]:
    """Hydra reads `key=a,b` as a sweep; for these keys it means a list, as users write it.
    `perception=...` (the drive command's group name) is the same as `perceivers=...`."""
    out = []
    for a in args:
        if a.startswith("perception="):
            a = "perceivers=" + a.split("=", 1)[1]
        if a.startswith(LIST_KEYS) and "," in a and "[" not in a:
            key, value = a.split("=", 1)
            a = f"{key}=[{value}]"
        out.append(a)
    return out


def _seeds(value, suite_seeds) -> list[int]:
    if value is None:
        value = list(suite_seeds)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise C.ConfigError(f"seeds={value} is out of range: a number of seeds >= 1, or a list of seeds")
        value = list(range(1, value + 1))
    if not value or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise C.ConfigError(f"seeds={value}: give a number >= 1 or a non-empty list of integer seeds >= 0")
    return [int(s) for s in value]


def _value(cfg, key: str):
    """cfg[key] as plain Python, whether it is a list or a single value."""
    return C.plain(cfg, key) if OmegaConf.is_list(cfg[key]) else cfg[key]


def plan(args: list[str]) -> tuple[list[suite.Job], dict]:
    """Validate the evaluate config and list its jobs; (jobs, settings). ConfigError on bad input."""
    cfg, _ = C.load("evaluate", _as_lists(args))
    C.check_keys(cfg, EVALUATE_KEYS)
    spec = C.plain(cfg, "suite")
    unknown = sorted(set(spec) - SUITE_KEYS)
    if unknown or not spec.get("scenarios"):
        raise C.ConfigError(f"suite {spec.get('name')}: needs scenarios and seeds; unknown keys {unknown}")
    known = set(C.available("scenario"))
    for name in spec["scenarios"]:
        if name not in known:
            raise C.ConfigError(
                f"unknown scenario '{name}' in suite {spec['name']}; available: {', '.join(sorted(known))}"
            )
    seeds = _seeds(_value(cfg, "seeds"), spec.get("seeds", []))
    perceptions = _value(cfg, "perceivers")
    perceptions = [perceptions] if isinstance(perceptions, str) else list(perceptions)
    options = C.available("perception")
    for p in perceptions:
        if p not in options:
            raise C.ConfigError(f"unknown perception '{p}'; available: {', '.join(options)}")
    if len(set(perceptions)) != len(perceptions):
        raise C.ConfigError(f"perception lists one option twice: {perceptions}")
    if cfg.scorer not in scores.SCORERS:
        raise C.ConfigError(f"unknown scorer '{cfg.scorer}'; available: {', '.join(scores.SCORERS)}")
    overrides = [str(o) for o in C.plain(cfg, "overrides")]
    for p in perceptions:  # fail now, not in every run: bad overrides, a missing checkpoint, ...
        drive_cfg, _ = C.load("drive", [f"perception={p}", f"scenario={spec['scenarios'][0]}", *overrides])
        C.build_stack(drive_cfg, C.sim_config(drive_cfg))
    jobs = suite.make_jobs(spec["scenarios"], seeds, perceptions, overrides)
    settings = {
        "suite": spec["name"],
        "out_dir": Path(str(cfg.out_dir)),
        "workers": int(cfg.workers),
        "backend": str(cfg.backend),
        "ray_address": None if cfg.ray_address is None else str(cfg.ray_address),
        "timeout_s": float(cfg.timeout_s),
        "scorer": str(cfg.scorer),
        "clips": bool(cfg.clips),
        "perceptions": perceptions,
    }
    if not settings["timeout_s"] > 0:
        raise C.ConfigError(f"timeout_s={settings['timeout_s']} is out of range: > 0")
    return jobs, settings


def evaluate(args: list[str]) -> tuple[list[dict], Path]:
    """Run (or resume) a suite and write its report; returns the records and the report path."""
    jobs, s = plan(args)
    try:
        records = suite.run_suite(
            jobs, s["out_dir"], s["workers"], s["backend"], s["ray_address"], s["timeout_s"], s["clips"]
        )
    except suite.SuiteError as err:
        raise C.ConfigError(str(err)) from None
    attributions = [
        {"scenario": r["scenario"], "seed": r["seed"], "perception": r["perception"], **row}
        for r in records
        if r["status"] == "ok"
        for row in r.get("attribution", [])
    ]
    title = f"suite {s['suite']}: {len(jobs)} runs ({', '.join(s['perceptions'])})"
    path = report.write_report(
        records, attributions, s["out_dir"], s["scorer"], title, baseline=s["perceptions"][0]
    )
    return records, path

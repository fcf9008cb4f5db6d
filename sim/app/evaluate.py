"""`bulletdrive evaluate`: the Hydra edge of suites (sim/evaluation/suite.py) and their reports
(sim/evaluation/report.py).

Everything a run could fail on for its config is checked before the first run: the suite's
scenarios and perceivers exist, and the drive config of every scenario composes with the given
`overrides` and samples for every seed, and every perceiver's stack builds. Overrides may not pin
what the suite varies (seed, scenario, perception, the run folder). `hydra.searchpath` reaches the
suite, its scenarios and every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perception.errors import InputError
from sim.app import config as C
from sim.app.schemas import EvaluateConfig
from sim.config import MAX_EVAL_SEED
from sim.evaluation import report, suite
from sim.simulation import RandomStreams

HELP = """usage: bulletdrive evaluate [OVERRIDES...]

Run every scenario x seed x perceiver of a suite (conf/suite/) and write one run folder
per run plus report.md / report.json / PNG plots in out_dir (conf/evaluate.yaml).
Re-running the same command skips finished runs and retries failed ones.
  suite=standard|smoke   seeds=N (1..N) or seeds=[3,7]   perception=ground_truth,noisy,cnn
  workers=2   backend=local|ray   ray_address=auto   timeout_s=600   out_dir=FOLDER
  scorer=carla-leaderboard-2.0|carla-leaderboard-2.1|nuplan-closed-loop-weighted-average
  'overrides=["sim.ego_model=kinematic"]'   drive overrides for every run
  hydra.searchpath=[file://MY_CONF]     your own suites and scenarios (MY_CONF/suite, MY_CONF/scenario)
Example: bulletdrive evaluate suite=standard seeds=20 perception=ground_truth,cnn"""

LIST_KEYS = ("perceivers", "seeds")  # `perceivers=a,b` means the list [a, b]
PINNED = ("seed", "scenario", "perception")  # what the suite varies: not for `overrides`
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Settings:
    """How to run the jobs of a checked evaluate config."""

    suite: str
    out_dir: Path
    workers: int
    backend: str
    ray_address: str | None
    timeout_s: float
    scorer: str
    clips: bool
    perceptions: list[str]


def _as_lists(args: list[str]) -> list[str]:
    """Hydra reads `key=a,b` as a sweep; for these keys it means a list, as users write it, and
    `perceivers=a` means [a]. `perception=...` (the drive command's group name) is `perceivers=...`."""
    out = []
    for a in args:
        if a.startswith("perception="):
            a = "perceivers=" + a.split("=", 1)[1]
        key, _, value = a.partition("=")
        if key in LIST_KEYS and "[" not in value and ("," in value or key == "perceivers"):
            a = f"{key}=[{value}]"
        out.append(a)
    return out


def _seeds(value, suite_seeds: list[int]) -> list[int]:
    """null: the suite's seeds; N: seeds 1..N; a list: those seeds."""
    if value is None:
        return list(suite_seeds)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SEEDS:
            raise C.ConfigError(
                f"seeds={value} is out of range: a number of seeds in [1, {MAX_SEEDS}], or a list of seeds"
            )
        return list(range(1, value + 1))
    ok = isinstance(value, list) and 0 < len(value) <= MAX_SEEDS
    if not ok or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_EVAL_SEED for s in value
    ):
        raise C.ConfigError(
            f"seeds={value}: give a number >= 1 or a non-empty list of integer seeds in [0, {MAX_EVAL_SEED}] "
            "(higher seeds are the datasets')"
        )
    return list(value)


def _run_overrides(overrides: list[str]) -> list[str]:
    """The user's drive overrides for every run; those that pin what the suite varies are refused."""
    for key, line in C.override_keys(overrides):
        if key.lstrip("+~") in PINNED or key.startswith("hydra."):
            raise C.ConfigError(
                f"overrides: '{line}' would pin what the suite varies or where runs go; "
                "use evaluate's seeds=, suite=, perception=, out_dir= or hydra.searchpath= instead"
            )
    return list(overrides)


def _check_runs(scenarios: list[str], seeds: list[int], perceptions: list[str], overrides: list[str]) -> None:
    """Fail now, not in every run: compose each scenario's drive config with the overrides and
    sample it for every seed (composing is the slow part: once per scenario); build each
    perceiver's stack once."""
    for scenario in scenarios:
        seed = seeds[0]
        try:
            cfg, _ = C.load("drive", [f"scenario={scenario}", f"perception={perceptions[0]}", *overrides])
            for seed in seeds:
                C.scenario_spec(cfg, RandomStreams.from_seed(seed).scenario)
        except InputError as err:
            raise C.ConfigError(
                f"{err} (in run {perceptions[0]}/{scenario}/seed{seed:03d}, overrides {overrides})"
            ) from None
    for p in perceptions:
        try:
            cfg, _ = C.load("drive", [f"perception={p}", f"scenario={scenarios[0]}", *overrides])
            C.build_stack(cfg, C.sim_config(cfg))
        except InputError as err:
            raise C.ConfigError(f"{err} (perception {p}, overrides {overrides})") from None


def plan(args: list[str]) -> tuple[list[suite.Job], Settings]:
    """Check the evaluate config and list its jobs. InputError on bad input, with nothing written."""
    searchpath = C.searchpath_overrides(args)
    ev: EvaluateConfig = C.load_checked("evaluate", _as_lists(args)).values
    C.check_known("scenario", ev.suite.scenarios, searchpath, f" in suite {ev.suite.name}")
    seeds = _seeds(ev.seeds, ev.suite.seeds)
    perceptions = list(ev.perceivers)
    if not perceptions or len(set(perceptions)) != len(perceptions):
        raise C.ConfigError(f"perception={','.join(perceptions)}: give each option once, at least one")
    C.check_known("perception", perceptions, searchpath, "")
    overrides = [*searchpath, *_run_overrides(ev.overrides)]
    _check_runs(ev.suite.scenarios, seeds, perceptions, overrides)
    C.check_out_dir(ev.out_dir, "out_dir")
    jobs = suite.make_jobs(ev.suite.scenarios, seeds, perceptions, overrides)
    settings = Settings(
        ev.suite.name, Path(ev.out_dir), ev.workers, ev.backend, ev.ray_address, ev.timeout_s, ev.scorer,
        ev.clips, perceptions,
    )  # fmt: skip
    return jobs, settings


def evaluate(args: list[str]) -> tuple[list[dict], Path]:
    """Run (or resume) a suite and write its report; returns the records and the report path."""
    jobs, s = plan(args)
    try:
        records = suite.run_suite(
            jobs,
            s.out_dir,
            workers=s.workers,
            backend=s.backend,
            timeout_s=s.timeout_s,
            clips=s.clips,
            ray_address=s.ray_address,
        )
    except suite.SuiteError as err:
        raise C.ConfigError(str(err)) from None
    attributions = [
        {"scenario": r["scenario"], "seed": r["seed"], "perception": r["perception"], **row}
        for r in records
        if r["status"] == "ok"
        for row in r.get("attribution", [])
    ]
    title = f"suite {s.suite}: {len(jobs)} runs ({', '.join(s.perceptions)})"
    scenarios = C.group_configs("scenario", C.searchpath_overrides(args))
    abilities = suite.abilities_lookup(
        {job.scenario: (scenarios.get(job.scenario) or {}).get("abilities") for job in jobs}
    )
    path = report.write_report(
        records, attributions, s.out_dir, s.scorer, title, baseline=s.perceptions[0], abilities=abilities
    )
    return records, path


def run(args: list[str]) -> int:
    records, path = evaluate(args)
    errors = [r for r in records if r["status"] != "ok"]
    print(f"{len(records) - len(errors)} runs ok, {len(errors)} errors")
    for r in errors[:10]:
        print(f"  error: {r['run_dir']}: {r['error']}")
    print(f"report: {path}")
    return 1 if errors else 0

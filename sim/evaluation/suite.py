"""Scenario suites: every scenario x seed x perceiver of a suite as independent runs, on a local
process pool (the default) or on Ray, resumable, each run's result written atomically.

Folder layout (OUT = the suite's out_dir):
    OUT/suite.json                          the manifest: format, project version, the overrides of
                                            every run, the jobs run so far
    OUT/runs/PERCEPTION/SCENARIO/seedNNN/   one run folder (metrics.json, log.npz, trajectory.png,
                                            .hydra/, result.json last, clip_K.mp4 per infraction)
    OUT/report.md, report.json, *.png       the suite report (sim/evaluation/report.py)

A run's result.json is its record: status "ok" (with metrics and failure attribution) or "error"
(with the error line and, if the run raised, the traceback). Runs go through the job runner
(sim/evaluation/jobs.py): the folder is locked while a suite runs, its manifest fixes the drive
overrides of its runs (other overrides into the same folder are refused), and re-running the same
command skips runs whose record says ok and retries the rest (a damaged record counts as not run).
A run past the per-run timeout has its worker ended and is recorded as an error; a worker process
that dies takes only its own run with it.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from perception.errors import InputError
from perception.files import write_json
from sim.evaluation.jobs import FolderError, Outcome, Runner, claim_folder, one_line
from sim.metrics.bench2drive import ABILITIES

SUITE_FORMAT = "bulletdrive.suite"
SUITE_VERSION = 2  # 2: the manifest holds the overrides that every run of the folder shares
MANIFEST = "suite.json"
CLIP_BEFORE_S, CLIP_AFTER_S = 3.0, 1.0  # the clip of an infraction covers [t - before, t + after]
RUN_KEYS = ("scenario", "seed", "perception", "overrides", "run_dir")  # a record names its run by these


class SuiteError(InputError):
    """A suite that cannot run as asked; the message is one line."""


def project_version() -> str:
    try:
        return version("bulletdrive")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Job:
    """One run of a suite: drive `scenario` with `seed` and the perception config `perception`."""

    scenario: str
    seed: int
    perception: str
    overrides: tuple[str, ...] = ()  # extra drive overrides for every run of the suite

    @property
    def name(self) -> str:
        return f"{self.perception}/{self.scenario}/seed{self.seed:03d}"


def abilities_lookup(scenario_abilities: Mapping[str, Iterable[str] | None]) -> dict[str, tuple[str, ...]]:
    """scenario name -> the Bench2Drive abilities it tests (its YAML's `abilities:` list; None or
    missing: none), for the report (sim/evaluation/report.py). SuiteError naming the scenario on an
    ability that Bench2Drive does not have, or on a value that is not a list of names."""
    out = {}
    for scenario, names in scenario_abilities.items():
        if names is None:
            names = ()
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise SuiteError(f"scenario {scenario}: 'abilities' is {names!r}, expected a list of names")
        unknown = [n for n in names if n not in ABILITIES]
        if unknown:
            raise SuiteError(
                f"scenario {scenario}: unknown ability {unknown[0]!r} in 'abilities'; known: {', '.join(ABILITIES)}"
            )
        out[scenario] = tuple(dict.fromkeys(names))
    return out


def make_jobs(scenarios, seeds, perceptions, overrides=()) -> list[Job]:
    """Every perceiver x scenario x seed, in that order (a perceiver's runs finish together)."""
    return [Job(sc, int(sd), p, tuple(overrides)) for p in perceptions for sc in scenarios for sd in seeds]


def run_job(job: Job, out_dir: str, clips: bool) -> dict:
    """Run one job in this process and write its record (RUN_DIR/result.json) last; never raises.

    This is what a pool worker or a Ray task executes. torch is not imported here: it takes ~3 s,
    more than a ground-truth run, and only a CNN perceiver needs it (which fixes its own threads:
    perception/cnn_perceiver.py)."""
    from sim.app.drive import drive
    from sim.evaluation import attribution
    from sim.record import replay

    run_dir = Path(out_dir) / "runs" / job.name
    record = _error_record(job, None)  # until the run succeeds
    t0 = time.perf_counter()
    try:
        overrides = [f"scenario={job.scenario}", f"seed={job.seed}", f"perception={job.perception}"]
        overrides += [*job.overrides, "video=false", f"hydra.run.dir={run_dir}"]
        result, _ = drive(overrides)
        run = replay.load_run(run_dir)
        attribution = attribution.attribute(run)
        for k, row in enumerate(attribution):
            row["clip"] = None
            if clips:
                clip = run_dir / f"clip_{k}.mp4"
                replay.render(run, clip, row["t_s"] - CLIP_BEFORE_S, row["t_s"] + CLIP_AFTER_S)
                row["clip"] = str(Path(record["run_dir"]) / clip.name)
        record |= {"status": "ok", "metrics": result.summary, "attribution": attribution}
    except Exception as err:  # any failure of the run is its record, the suite goes on
        record["error"] = one_line(err)
        record["traceback"] = traceback.format_exc()
    record["wall_s"] = round(time.perf_counter() - t0, 3)
    write_json(run_dir / "result.json", record)
    return record


def read_record(out_dir: Path, job: Job) -> dict | None:
    """The record of `job` in `out_dir`, or None if there is none or it is not a record of this job
    (damaged: not JSON, not an object, another run's, an ok record without metrics)."""
    try:
        record = json.loads((Path(out_dir) / "runs" / job.name / "result.json").read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    mine = all(record.get(k) == v for k, v in _error_record(job, None).items() if k in RUN_KEYS)
    shape = record.get("status") == "error" or isinstance(record.get("metrics"), dict)
    return record if mine and shape else None


def _finished(record: dict | None) -> bool:
    return record is not None and record.get("status") == "ok"


def run_suite(
    jobs: list[Job],
    out_dir: str | Path,
    *,
    workers: int,
    backend: str,
    timeout_s: float,
    clips: bool,
    ray_address: str | None = None,
) -> list[dict]:
    """Run the jobs that have no ok record yet; return the records of all jobs, in job order.

    workers: runs at once; backend: "local" (process pool) or "ray"; timeout_s: a run past it is
    stopped and recorded as an error; clips: a bird's-eye clip of every infraction; ray_address:
    the Ray cluster to join (None: a local Ray). The values live in conf/evaluate.yaml.

    Every job must have the same overrides: they are the folder's (SuiteError otherwise; FolderError
    for a folder in use, of other overrides or another version, or not a suite folder)."""
    out_dir = Path(out_dir)
    runner = Runner(workers, backend, ray_address, float(timeout_s))
    with claim_folder(out_dir, MANIFEST, _identity(jobs), "suite") as old:
        known = _jobs_of(old, out_dir) | set(jobs)
        manifest = {**_identity(jobs), "jobs": [asdict(j) for j in sorted(known, key=lambda j: j.name)]}
        write_json(out_dir / MANIFEST, manifest)
        records = {j: read_record(out_dir, j) for j in jobs}
        todo = [j for j in jobs if not _finished(records[j])]

        def on_outcome(outcome: Outcome) -> str:
            records[outcome.job] = outcome.value if outcome.ok else _failed(outcome, out_dir)
            return records[outcome.job]["status"]

        runner.run(
            partial(run_job, out_dir=str(out_dir), clips=bool(clips)),
            todo,
            on_outcome,
            desc=f"suite ({backend}, {workers} workers)",
            unit="runs",
            done=len(jobs) - len(todo),
        )
    return [records[j] for j in jobs]


def _identity(jobs: list[Job]) -> dict:
    """What every run of a suite folder shares: format, versions, the drive overrides."""
    overrides = {j.overrides for j in jobs}
    if len(overrides) > 1:
        raise SuiteError(f"the runs of a suite share one set of overrides, these have {len(overrides)}")
    return {
        "format": SUITE_FORMAT,
        "version": SUITE_VERSION,
        "project_version": project_version(),
        "overrides": list(next(iter(overrides), ())),
    }


def _jobs_of(manifest: dict | None, out_dir: Path) -> set[Job]:
    """The jobs an earlier run listed in the manifest."""
    if manifest is None:
        return set()
    try:
        return {
            Job(j["scenario"], int(j["seed"]), j["perception"], tuple(j["overrides"]))
            for j in manifest["jobs"]
        }
    except (KeyError, TypeError, ValueError):
        raise FolderError(f"{out_dir / MANIFEST} is damaged (its job list): use another out_dir") from None


def _failed(outcome: Outcome, out_dir: Path) -> dict:
    """The record of a run that left none: it timed out or its worker died."""
    record = _error_record(outcome.job, outcome.error) | {"traceback": outcome.traceback, "wall_s": None}
    write_json(out_dir / "runs" / outcome.job.name / "result.json", record)
    return record


def _error_record(job: Job, error: str | None) -> dict:
    return {
        "scenario": job.scenario,
        "seed": job.seed,
        "perception": job.perception,
        "overrides": list(job.overrides),
        "run_dir": str(Path("runs") / job.name),
        "status": "error",
        "error": error,
        "metrics": None,
    }

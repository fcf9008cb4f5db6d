"""Scenario suites: every scenario x seed x perceiver of a suite as independent runs, on a local
process pool (the default) or on Ray, resumable, each run's result written atomically.

Folder layout (OUT = the suite's out_dir):
    OUT/suite.json                          the manifest: format, project version, the suite's jobs
    OUT/runs/PERCEPTION/SCENARIO/seedNNN/   one run folder (metrics.json, log.npz, trajectory.png,
                                            .hydra/, result.json last, clip_K.mp4 per infraction)
    OUT/report.md, report.json, *.png       the suite report (sim/evaluation/report.py)

A run's result.json is its record: status "ok" (with metrics and failure attribution) or "error"
(with the error line and the traceback). Re-running the same command skips runs whose record says
ok and retries the rest. A run past the per-run timeout is stopped (SIGALRM in its worker) and
recorded as an error; a worker process that dies takes only its own run with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from multiprocessing import get_context
from pathlib import Path

from perception.errors import InputError
from perception.files import write_json
from perception.progress import Progress

SUITE_FORMAT = "bulletdrive.suite"
SUITE_VERSION = 1
CLIP_BEFORE_S, CLIP_AFTER_S = 3.0, 1.0  # the clip of an infraction covers [t - before, t + after]
RAY_CONNECT_TIMEOUT_S = 5.0


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


def make_jobs(scenarios, seeds, perceptions, overrides=()) -> list[Job]:
    """Every perceiver x scenario x seed, in that order (a perceiver's runs finish together)."""
    return [Job(sc, int(sd), p, tuple(overrides)) for p in perceptions for sc in scenarios for sd in seeds]


def _timeout(signum, frame):
    raise TimeoutError("run timed out")


def run_job(job: Job, out_dir: str, timeout_s: float, clips: bool, threads: int = 1) -> dict:
    """Run one job in this process and write its record (RUN_DIR/result.json) last; never raises.

    This is what a pool worker or a Ray task executes. `threads`: torch's CPU threads in this
    worker (cores / workers: more threads than cores make every OpenMP op wait on the others).
    torch is not imported here: it takes ~3 s, more than a ground-truth run, and only a CNN
    perceiver needs it; OMP_NUM_THREADS sets its threads when that perceiver imports it."""
    from sim.app.drive import drive
    from sim.evaluation import attribution
    from sim.record import replay

    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    run_dir = Path(out_dir) / "runs" / job.name
    record = _error_record(job, None)  # until the run succeeds
    t0 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, float(timeout_s))
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
    except TimeoutError:
        record["error"] = f"timed out after {timeout_s:g} s"
        record["traceback"] = traceback.format_exc()
    except Exception as err:  # any failure of the run is its record, the suite goes on
        record["error"] = (
            f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        )
        record["traceback"] = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    record["wall_s"] = round(time.perf_counter() - t0, 3)
    write_json(run_dir / "result.json", record)
    return record


def read_record(out_dir: Path, job: Job) -> dict | None:
    path = Path(out_dir) / "runs" / job.name / "result.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _finished(record: dict | None, job: Job) -> bool:
    """An ok record of this very job (a run with other overrides is not this job)."""
    return bool(record) and record.get("status") == "ok" and record.get("overrides") == list(job.overrides)


def check_folder(out_dir: Path, jobs: list[Job]) -> None:
    """Create or check OUT/suite.json. A folder of another project version or format, or one that
    holds other files but no manifest, is refused (SuiteError) and left as it is."""
    manifest = out_dir / "suite.json"
    want = {"format": SUITE_FORMAT, "version": SUITE_VERSION, "project_version": project_version()}
    if manifest.is_file():
        try:
            have = json.loads(manifest.read_text())
        except ValueError:
            raise SuiteError(f"{manifest}: not readable; use another out_dir") from None
        for key in want:
            if have.get(key) != want[key]:
                raise SuiteError(
                    f"{out_dir} holds results of {have.get('format')} v{have.get('version')}, bulletdrive "
                    f"{have.get('project_version')}; this is bulletdrive {want['project_version']}: use another out_dir"
                )
        known = {Job(**{**j, "overrides": tuple(j["overrides"])}) for j in have.get("jobs", [])}
        jobs = sorted(known | set(jobs), key=lambda j: j.name)
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        raise SuiteError(
            f"{out_dir} is not empty and is not a suite folder (no suite.json): use another out_dir"
        )
    write_json(manifest, {**want, "jobs": [asdict(j) for j in jobs]})


def run_suite(
    jobs: list[Job],
    out_dir: str | Path,
    workers: int = 2,
    backend: str = "local",
    ray_address: str | None = None,
    timeout_s: float = 600.0,
    clips: bool = True,
) -> list[dict]:
    """Run the jobs that have no ok record yet; return the records of all jobs, in job order."""
    out_dir = Path(out_dir)
    if workers < 1:
        raise SuiteError(f"workers={workers} is out of range: >= 1")
    if backend not in ("local", "ray"):
        raise SuiteError(f"backend={backend!r}: use local or ray")
    if backend == "ray":
        _check_ray(ray_address)  # before anything is written
    check_folder(out_dir, jobs)
    records = {j: read_record(out_dir, j) for j in jobs}
    todo = [j for j, r in records.items() if not _finished(r, j)]
    bar = Progress(
        len(jobs), f"suite ({backend}, {workers} workers)", unit="runs", done=len(jobs) - len(todo)
    )
    if todo:
        threads = max(1, (os.cpu_count() or 1) // workers)
        args = (str(out_dir), float(timeout_s), bool(clips), threads)
        run = _run_ray if backend == "ray" else _run_local
        for job, record in run(todo, args, workers, ray_address):
            records[job] = record
            bar.update(1, note=f"{job.name}: {record['status']}")
    return [records[j] for j in jobs]


def _run_local(todo: list[Job], args: tuple, workers: int, _address):
    """Yield (job, record) as the pool finishes them. A dead worker (BrokenProcessPool) fails the
    runs it was holding, and a new pool takes the rest."""
    pending = list(todo)
    while pending:
        ctx = get_context("spawn")  # a fresh interpreter per worker: no state inherited from the parent
        with ProcessPoolExecutor(min(workers, len(pending)), mp_context=ctx) as pool:
            futures = {pool.submit(run_job, job, *args): job for job in pending}
            pending = []
            broken = False
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        yield job, future.result()
                    except BrokenProcessPool:
                        broken = True
                        pending.append(job)
            if broken:  # every job of a broken pool failed: retry each alone once to find the culprit
                for job in pending:
                    yield job, _run_isolated(job, args)
                pending = []


def _run_isolated(job: Job, args: tuple) -> dict:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(run_job, job, *args).result()
        except BrokenProcessPool:
            record = _error_record(job, "the worker process died (e.g. a crash in native code)")
            write_json(Path(args[0]) / "runs" / job.name / "result.json", record)
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


def _check_ray(address: str | None) -> None:
    """Ray importable and, for a HOST:PORT or ray://HOST:PORT address, the port reachable (ray.init
    itself retries an unreachable address for minutes)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SuiteError("backend=ray needs Ray: pip install 'bulletdrive[ray]'") from None
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SuiteError(f"ray_address={address!r}: use auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise SuiteError(f"cannot reach Ray at {address}: {err.strerror or type(err).__name__}") from None


def _run_ray(todo: list[Job], args: tuple, workers: int, address: str | None):
    """Yield (job, record) as Ray tasks finish. `address`: None starts a local Ray with `workers`
    CPUs; "auto" or "ray://HOST:10001" joins a cluster (the project must be installed there)."""
    import ray

    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        except Exception as err:  # ConnectionError and friends, with long messages
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SuiteError(f"cannot reach Ray at {address or 'a new local instance'}: {first}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_job)
        refs = {task.remote(job, *args): job for job in todo}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    yield job, ray.get(ref)
                except Exception as err:  # the worker died (ray.exceptions.WorkerCrashedError, ...)
                    record = _error_record(job, f"Ray task failed: {type(err).__name__}")
                    write_json(Path(args[0]) / "runs" / job.name / "result.json", record)
                    yield job, record
    finally:
        if started:
            ray.shutdown()

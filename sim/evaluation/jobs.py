"""The one job runner of suites and datasets: independent jobs on a local process pool or on Ray,
in an output folder that one process at a time may claim, resumable.

A command that writes a folder of job results (`bulletdrive evaluate`, `bulletdrive data`):
  1. claims the folder (`claim_folder`): an exclusive lock (flock on the folder itself, released by
     the OS when the process ends, however it ends), a manifest that records the settings every job
     of the folder shares (other settings into the same folder are refused), and a sweep of the
     temporary files that a killed process left (perception.files.is_temporary);
  2. works out which jobs have no result yet (the caller's records say so);
  3. runs them (`Runner.run`), with a tqdm bar in which the resumed jobs count as `initial`.

How jobs run (`Runner`):
- local: `workers` spawned processes, each holding one job at a time, so nothing waits in a queue
  that a stop would have to drain. A worker that dies takes only its job with it (an error outcome)
  and a new one takes its place: parallelism stays. A job past `timeout_s` (counted from when its
  worker got it) has its worker ended, whatever it is doing (loading a model, native code), and is
  an error outcome "timed out after T s".
- ray: the same jobs as Ray tasks, at most `workers` at a time; a task past its time is cancelled.

Stopping: SIGINT (Ctrl-C) or SIGTERM to the command stops scheduling, ends every worker and raises
KeyboardInterrupt in the command (the CLI prints one line). Workers ignore SIGINT, which a terminal
sends to the whole process group, so that the parent alone decides; a worker whose parent is gone
(even by SIGKILL) exits by itself. What was written stays: the next run resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import get_context, parent_process
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from tqdm import tqdm

from perception.errors import InputError
from perception.files import is_temporary, json_safe

BACKENDS = ("local", "ray")
LOG_PROGRESS_S = 10.0  # the progress bar is redrawn at most this often when stderr is a log, not a terminal
STOP_GRACE_S = 2.0  # a worker asked to stop (SIGTERM) is killed (SIGKILL) after this long
RAY_CONNECT_TIMEOUT_S = 5.0
# Waits for workers or Ray tasks last at most this long, so that a signal is handled promptly: the OS
# may deliver it to another thread (tqdm's monitor), which does not wake the main thread's wait.
POLL_S = 0.25


class JobsError(InputError):
    """Runner settings or an output folder that cannot be used; the message is one line."""


class FolderError(JobsError):
    """An out_dir that another process holds, that holds other results, or that is damaged."""


@dataclass(frozen=True)
class Outcome:
    """What became of one job: its function's return value, or one line saying why there is none
    (what the job raised, "timed out after T s", or how its worker died) and, if it raised, the
    traceback."""

    job: Any
    value: Any = None
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------------------------------------------
# The output folder: lock, manifest, temporaries.


@contextlib.contextmanager
def claim_folder(
    out_dir: str | os.PathLike, manifest: str, identity: dict, what: str
) -> Iterator[dict | None]:
    """Hold `out_dir` for this process while the block runs; yield its manifest (None if new).

    `identity`: the settings every result in the folder must share (e.g. a suite's overrides); a
    folder whose manifest OUT/`manifest` says otherwise is refused, as is a folder that holds files
    but no manifest, or one that another process holds. The caller writes the manifest (it may add
    what is not identity, such as the list of jobs). Refusals write nothing."""
    out = Path(out_dir)
    fd = _lock(out)
    try:
        old = _read_manifest(out / manifest)
        if old is None and any(not is_temporary(p) for p in out.iterdir()):
            raise FolderError(
                f"{out} is not empty and is not a {what} folder (no {manifest}): use another out_dir"
            )
        if old is not None:
            _check_identity(out, old, identity, what)
        remove_temporaries(out)
        yield old
    finally:
        os.close(fd)  # releases the lock


def _lock(out: Path) -> int:
    """Create `out` if needed and take an exclusive lock on it; the open descriptor holds the lock."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise FolderError(f"out_dir={out}: cannot use it as a folder ({err.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderError(
            f"{out} is in use by another process (an evaluate or data run): wait for it or use another out_dir"
        ) from None
    return fd


def _read_manifest(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict):
        raise FolderError(f"{path} is damaged (not a JSON object): delete the folder or use another out_dir")
    return manifest


def _check_identity(out: Path, old: dict, identity: dict, what: str) -> None:
    want = json.loads(json.dumps(json_safe(identity)))  # tuples as lists, as the manifest holds them
    changed = [k for k in want if old.get(k) != want[k]]
    if changed:
        key = changed[0]
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise FolderError(
            f"{out} holds {what} results made with other settings ({key}: {_short(old.get(key))} there, "
            f"{_short(want[key])} now{more}): use another out_dir"
        )


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def remove_temporaries(out: Path) -> int:
    """Delete the temporary files of atomic writes that a killed process left under `out`."""
    removed = 0
    for folder, _, names in os.walk(out):
        for name in names:
            if is_temporary(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
                    removed += 1
    return removed


# ---------------------------------------------------------------------------------------------------
# Running jobs.


@dataclass(frozen=True)
class Runner:
    """How jobs run: at most `workers` at a time, on `backend` ("local": a process pool; "ray": Ray
    tasks, on a new local Ray instance or on the cluster at `ray_address`), each within `timeout_s`
    (None: no limit)."""

    workers: int = 1
    backend: str = "local"
    ray_address: str | None = None
    timeout_s: float | None = None

    def __post_init__(self):
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise JobsError(f"workers={self.workers!r} is out of range: an integer >= 1")
        if self.backend not in BACKENDS:
            raise JobsError(f"backend={self.backend!r}: use local or ray")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise JobsError(f"timeout_s={self.timeout_s} is out of range: > 0")
        if self.backend == "ray":
            check_ray(self.ray_address)

    def run(
        self,
        fn: Callable[[Any], Any],
        jobs: Sequence,
        on_outcome: Callable[[Outcome], str],
        desc: str,
        unit: str = "jobs",
        done: int = 0,
    ) -> None:
        """Run `fn(job)` for every job; call `on_outcome` (in this process) as each one ends, in the
        order they end; it returns a short note for the progress bar (e.g. "ok").

        `fn` must be importable by name (a module-level function, or a functools.partial of one) and
        the jobs picklable. `done`: jobs finished by an earlier run, shown as already done.
        KeyboardInterrupt (SIGINT, or SIGTERM while this runs) ends the workers and propagates."""
        if not jobs:
            return
        with (
            interrupt_on_sigterm(),
            tqdm(
                total=done + len(jobs),
                initial=done,
                desc=desc,
                unit=unit,
                dynamic_ncols=True,
                mininterval=0.1 if sys.stderr.isatty() else LOG_PROGRESS_S,
            ) as bar,
        ):

            def deliver(outcome: Outcome) -> None:
                note = on_outcome(outcome)
                bar.set_postfix_str(f"{getattr(outcome.job, 'name', outcome.job)}: {note}", refresh=False)
                bar.update(1)

            run = _run_ray if self.backend == "ray" else _run_local
            run(fn, list(jobs), self, deliver)


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt, as SIGINT does: one way to stop."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _call(fn: Callable[[Any], Any], job: Any) -> tuple[Any, str | None, str | None]:
    """fn(job) as (value, None, None), or (None, error line, traceback) if it raised."""
    try:
        return fn(job), None, None
    except Exception as err:
        return None, one_line(err), traceback.format_exc()


def one_line(err: BaseException) -> str:
    """The error as one line: its type name and the first line of its message."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _time_left(started_s: Sequence[float], timeout_s: float | None, now_s: float) -> float | None:
    """Seconds until the first of these jobs runs out of time (None: no limit)."""
    if timeout_s is None or math.isinf(timeout_s) or not started_s:
        return None
    return max(0.0, min(started_s) + timeout_s - now_s)


def _timed_out(timeout_s: float) -> str:
    return f"timed out after {timeout_s:g} s"


# ---------------------------------------------------------------------------------------------------
# The local process pool.


def _serve(conn, fn: Callable[[Any], Any]) -> None:
    """A worker's life: run the jobs that the parent sends, one at a time, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    _exit_with_parent()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        outcome = _call(fn, job)
        try:
            conn.send(outcome)
        except (pickle.PicklingError, TypeError, AttributeError) as err:  # pickled before any byte is sent
            conn.send((None, f"its result cannot be sent back ({one_line(err)})", traceback.format_exc()))


def _exit_with_parent() -> None:
    """Exit as soon as the parent process is gone, even mid-job (a parent killed by SIGKILL cannot
    end its workers itself)."""
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class _Worker:
    """One spawned worker process and the pipe to it; holds at most one job."""

    def __init__(self, ctx, fn: Callable[[Any], Any]):
        self.conn, child_end = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve, args=(child_end, fn), name="bulletdrive-worker", daemon=True
        )
        # SIGINT blocked while the child starts: it must not die of a Ctrl-C before _serve ignores it.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child_end.close()
        self.job: Any = None
        self.started_s = 0.0
        self.broken = False

    def give(self, job: Any) -> None:
        """Hand `job` to the worker. If the worker died meanwhile, `take` will say so."""
        self.job, self.started_s = job, time.monotonic()
        with contextlib.suppress(OSError):
            self.conn.send(job)

    def take(self) -> Outcome:
        """The outcome of the job the worker holds, once its pipe or its sentinel is ready. A worker
        that gives no readable result is `broken`: it is to be ended."""
        job, self.job = self.job, None
        try:
            value, error, trace = self.conn.recv()
        except (EOFError, OSError):  # the worker died, maybe half-way through its message
            self.broken = True
            self.process.join(STOP_GRACE_S)
            code = self.process.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return Outcome(job, error=f"the worker process died ({how})")
        except Exception as err:  # e.g. a result of a class this process cannot import
            self.broken = True
            return Outcome(job, error=f"its result could not be read ({one_line(err)})")
        return Outcome(job, value, error, trace)

    def stop(self, timeout_s: float) -> Outcome:
        """The job has run out of time: kill the worker, whatever it is doing."""
        job, self.job, self.broken = self.job, None, True
        self.process.kill()
        return Outcome(job, error=_timed_out(timeout_s))

    def end(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()


def _end_all(workers: list[_Worker]) -> None:
    """SIGTERM every worker, SIGKILL those still alive after STOP_GRACE_S; reap them all. A second
    Ctrl-C or SIGTERM waits until this is done."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for w in workers:
            w.end()
        deadline = time.monotonic() + STOP_GRACE_S
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _run_local(fn, jobs: list, runner: Runner, deliver: Callable[[Outcome], None]) -> None:
    ctx = get_context("spawn")  # a fresh interpreter per worker: no state inherited from the parent
    pending = deque(jobs)
    pool: list[_Worker] = []
    try:
        while True:
            _assign(ctx, fn, pool, pending, runner.workers)
            busy = [w for w in pool if w.job is not None]
            if not busy:  # nothing pending either: _assign gave every worker a job while there was one
                return
            left_s = _time_left([w.started_s for w in busy], runner.timeout_s, time.monotonic())
            step_s = POLL_S if left_s is None else min(POLL_S, left_s)
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], step_s))
            now_s = time.monotonic()
            for w in busy:
                if w.conn in ready or w.process.sentinel in ready:
                    outcome = w.take()
                elif runner.timeout_s is not None and now_s - w.started_s >= runner.timeout_s:
                    outcome = w.stop(runner.timeout_s)
                else:
                    continue
                if w.broken:  # _assign starts another in its place
                    _end_all([w])
                    pool.remove(w)
                deliver(outcome)
    finally:
        _end_all(pool)


def _assign(ctx, fn, pool: list[_Worker], pending: deque, workers: int) -> None:
    """Give a job to every idle worker, starting new workers (up to `workers`) for the rest. An idle
    worker that died is let go first, so that its death is no job's."""
    for w in [w for w in pool if w.job is None and not w.process.is_alive()]:
        _end_all([w])
        pool.remove(w)
    for w in pool:
        if w.job is None and pending:
            w.give(pending.popleft())
    while pending and len(pool) < workers:
        pool.append(_Worker(ctx, fn))
        pool[-1].give(pending.popleft())


# ---------------------------------------------------------------------------------------------------
# Ray.


def check_ray(address: str | None) -> None:
    """Ray importable and, for a HOST:PORT or ray://HOST:PORT address, the port reachable (ray.init
    itself retries an unreachable address for minutes)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise JobsError("backend=ray needs Ray: pip install 'bulletdrive[ray]'") from None
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise JobsError(f"ray_address={address!r}: use auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise JobsError(f"cannot reach Ray at {address}: {err.strerror or type(err).__name__}") from None


def _run_ray(fn, jobs: list, runner: Runner, deliver: Callable[[Outcome], None]) -> None:
    """Jobs as Ray tasks, at most `workers` in flight. No address: a new local Ray with `workers`
    CPUs, shut down at the end; "auto" or "ray://HOST:10001" joins a cluster (the project must be
    installed there)."""
    import ray

    started = _ray_init(runner)
    task = ray.remote(num_cpus=1, max_retries=0)(_call)
    pending = deque(jobs)
    running: dict = {}  # ObjectRef -> (job, started_s)
    try:
        with interrupt_on_sigterm():  # again: ray.init installs its own handler (it exits the process)
            _ray_loop(fn, task, pending, running, runner, deliver)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _ray_loop(
    fn, task, pending: deque, running: dict, runner: Runner, deliver: Callable[[Outcome], None]
) -> None:
    """Keep `workers` tasks in flight; deliver each outcome as it ends (or runs out of time)."""
    import ray

    while pending or running:
        while pending and len(running) < runner.workers:
            job = pending.popleft()
            running[task.remote(fn, job)] = (job, time.monotonic())
        left_s = _time_left([s for _, s in running.values()], runner.timeout_s, time.monotonic())
        step_s = POLL_S if left_s is None else min(POLL_S, left_s)
        done, _ = ray.wait(list(running), num_returns=1, timeout=step_s)
        for ref in done:
            job, _ = running.pop(ref)
            try:
                outcome = Outcome(job, *ray.get(ref))
            except ray.exceptions.RayError as err:  # the worker died, the task was cancelled, ...
                outcome = Outcome(job, error=f"the Ray task failed ({type(err).__name__})")
            deliver(outcome)
        now_s = time.monotonic()
        for ref, (job, started_s) in list(running.items()):
            if runner.timeout_s is not None and now_s - started_s >= runner.timeout_s:
                ray.cancel(ref, force=True)
                del running[ref]
                deliver(Outcome(job, error=_timed_out(runner.timeout_s)))


def _ray_init(runner: Runner) -> bool:
    """Connect to Ray unless this process already has; True if this call started it."""
    import ray

    if ray.is_initialized():
        return False
    try:
        if runner.ray_address:
            ray.init(address=runner.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=runner.workers, include_dashboard=False, log_to_driver=False)
    except Exception as err:  # ConnectionError and friends, with long messages
        where = runner.ray_address or "a new local instance"
        raise JobsError(f"cannot reach Ray at {where}: {one_line(err)}") from None
    return True

"""The job runner (sim/evaluation/jobs.py): outcomes, dead and hanging workers, signals, the folder
lock, the manifest and the sweep of temporary files.

The jobs are small functions of this module (spawned workers import it by name): no simulation.
Waits are bounded (they only keep a broken runner from hanging the test); nothing asserts a time.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sim.evaluation import jobs
from sim.evaluation.jobs import FolderError, JobsError, Outcome, Runner, claim_folder

WAIT_S = 30.0  # the longest any wait below may take before the test gives up


def wait_until(condition, what: str, detail=lambda: "") -> None:
    """Wait for `condition()`, at most WAIT_S; `detail()` adds what is left to the failure message."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}{detail()}"
        time.sleep(0.02)


def job_fn(job: tuple):
    """A job: ("square", x) -> x * x; ("raise", msg); ("hang", pid_file); ("exit", code); ("lambda", x);
    ("pair", (folder, k)) -> (met the other job of `folder`, pid): a barrier of two jobs."""
    kind, arg = job
    if kind == "square":
        return arg * arg
    if kind == "raise":
        raise ValueError(f"{arg}\nsecond line")
    if kind == "hang":
        Path(arg).write_text(str(os.getpid()))
        time.sleep(3600)
    if kind == "exit":
        os._exit(arg)
    if kind == "lambda":
        return lambda: arg  # cannot be pickled back to the parent
    if kind == "pair":
        folder = Path(arg[0])
        folder.mkdir(exist_ok=True)
        (folder / str(arg[1])).touch()
        deadline = time.monotonic() + WAIT_S
        while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(list(folder.iterdir())) >= 2, os.getpid()
    raise AssertionError(kind)


def run(runner: Runner, todo: list, **kwargs) -> dict:
    outcomes: dict = {}

    def on_outcome(outcome: Outcome) -> str:
        outcomes[outcome.job] = outcome
        return "ok" if outcome.ok else "error"

    runner.run(job_fn, todo, on_outcome, desc="test", **kwargs)
    assert set(outcomes) == set(todo)
    return outcomes


def test_outcomes_of_jobs_that_return_raise_hang_and_die(tmp_path):
    todo = [
        ("square", 3),
        ("raise", "bad value"),
        ("hang", str(tmp_path / "pid")),
        ("exit", 3),
        ("lambda", 1),
        ("square", 4),
    ]
    # The limit counts from when a worker gets its job, so it includes a new worker's start-up
    # (an interpreter, ~0.3 s, longer on a loaded machine): 5 s leaves room for that.
    out = run(Runner(workers=2, timeout_s=5.0), todo)
    assert out[("square", 3)].value == 9 and out[("square", 4)].value == 16 and out[("square", 4)].ok
    raised = out[("raise", "bad value")]
    assert raised.error == "ValueError: bad value" and "Traceback" in raised.traceback
    assert out[todo[2]].error == "timed out after 5 s" and out[todo[2]].traceback is None
    assert out[("exit", 3)].error == "the worker process died (exit code 3)"
    assert out[("lambda", 1)].error.startswith("its result cannot be sent back (AttributeError: Can't pickle")
    hung = int((tmp_path / "pid").read_text())  # the hanging job's worker was ended with it
    wait_until(lambda: not alive(hung), "the hanging worker to end")


def test_progress_counts_resumed_jobs_as_done(capsys):
    run(Runner(), [("square", 2)], done=3, unit="runs")
    err = capsys.readouterr().err
    assert "3/4" in err and "4/4" in err and "0/4" not in err


def test_a_killed_worker_is_replaced_and_parallelism_stays(tmp_path):
    """The victim's worker is killed from outside; each pair of jobs then only finishes if its two
    jobs run at the same time, on two workers."""
    pid_file = tmp_path / "victim.pid"
    pairs = [("pair", (str(tmp_path / name), k)) for name in ("a", "b", "c") for k in (0, 1)]
    todo = [("hang", str(pid_file)), *pairs]

    def kill_the_victim():
        wait_until(pid_file.exists, "the victim to start")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_victim)
    killer.start()
    out = run(Runner(workers=2), todo)
    killer.join()
    assert out[todo[0]].error == "the worker process died (signal 9)"
    met = [out[job].value[0] for job in todo[1:]]
    assert met == [True] * 6, met


def test_runner_settings_are_checked():
    for kwargs, words in [
        ({"workers": 0}, "workers=0"),
        ({"workers": "2"}, "workers='2'"),
        ({"backend": "gpu"}, "backend='gpu'"),
        ({"timeout_s": 0.0}, "timeout_s=0.0"),
        ({"backend": "ray", "ray_address": "127.0.0.1:1"}, "cannot reach Ray at 127.0.0.1:1"),
    ]:
        with pytest.raises(JobsError, match=words):
            Runner(**kwargs)


# ---------------------------------------------------------------------------------------------------
# Signals: a runner in another process, stopped as a user or a scheduler would stop it.

SCRIPT = """
import sys
from pathlib import Path
from sim.evaluation.jobs import Runner, claim_folder

def job(pid_file):
    import os, time
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(3600)

if __name__ == "__main__":
    out, backend = Path(sys.argv[1]), sys.argv[2]
    with claim_folder(out, "m.json", {}, "test"):
        (out / "m.json").write_text("{}")
        try:
            Runner(2, backend).run(job, [str(out / f"{k}.pid") for k in range(4)], lambda o: "", "test")
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(2)
"""


def alive(pid: int) -> bool:
    """Running (a zombie, dead and waiting for its parent to reap it, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def group(pgid: int) -> list[int]:
    """The running processes of process group `pgid`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def command_lines(pids: list[int]) -> str:
    """': pid command line' of each of `pids` still there (for a failure message)."""
    lines = []
    for pid in pids:
        try:
            lines.append(
                f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ').decode()}"
            )
        except OSError:
            continue
    return ": " + "; ".join(lines) if lines else ""


def ignores_sigint(pid: int) -> bool:
    """SIGINT ignored or blocked by `pid` (/proc/PID/status: SigIgn and SigBlk, hex masks)."""
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    bit = 1 << (signal.SIGINT - 1)
    return bool((int(status["SigIgn"], 16) | int(status["SigBlk"], 16)) & bit)


def start_runner(tmp_path: Path, backend: str) -> tuple[subprocess.Popen, list[int]]:
    """The script in its own session (as `setsid`), once both its workers hold a job."""
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(SCRIPT))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out), backend],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    pid_files = [out / f"{k}.pid" for k in range(2)]
    started = lambda: all(p.exists() and p.read_text() for p in pid_files)  # noqa: E731
    wait_until(lambda: proc.poll() is not None or started(), "both workers to start")
    assert proc.poll() is None, proc.communicate()[1]
    return proc, [int(p.read_text()) for p in pid_files]


@pytest.fixture
def runner_process(tmp_path, backend):
    """A runner in its own process; whatever a failed test leaves of its group is killed."""
    proc, workers = start_runner(tmp_path, backend)
    yield proc, workers
    if group(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in workers:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "backend, how",
    [
        ("local", "SIGTERM to the parent"),
        ("local", "SIGINT to the process group (Ctrl-C)"),
        ("local", "SIGKILL to the parent"),
        pytest.param("ray", "SIGTERM to the parent", marks=pytest.mark.slow),
        pytest.param("ray", "SIGINT to the process group (Ctrl-C)", marks=pytest.mark.slow),
    ],
)
def test_a_signal_stops_the_runner_and_leaves_no_process(runner_process, tmp_path, backend, how):
    proc, workers = runner_process
    if backend == "local":  # a Ctrl-C reaches the workers too: the parent decides
        assert all(ignores_sigint(pid) for pid in workers)
    if how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    elif how.startswith("SIGINT"):
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.kill()
    wait_until(
        lambda: not group(proc.pid),
        "every process of the group to end",
        lambda: command_lines(group(proc.pid)),
    )
    _, err = proc.communicate(timeout=WAIT_S)
    assert not any(alive(pid) for pid in workers)
    if how.startswith("SIGKILL"):  # the workers ended themselves: their parent could not
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 2 and err.strip().splitlines()[-1] == "interrupted", err
        assert "Traceback" not in err
    assert not (tmp_path / "out" / "2.pid").exists()  # no queued job started after the signal
    with claim_folder(tmp_path / "out", "m.json", {}, "test"):  # the lock went with the process
        pass


# ---------------------------------------------------------------------------------------------------
# The folder: lock, manifest, temporaries.


def test_a_folder_is_held_by_one_process_at_a_time(tmp_path):
    out = tmp_path / "out"
    with claim_folder(out, "m.json", {"a": 1}, "test"):
        with pytest.raises(FolderError, match="is in use by another process"):
            with claim_folder(out, "m.json", {"a": 1}, "test"):
                pass
    with claim_folder(out, "m.json", {"a": 1}, "test") as old:
        assert old is None  # the caller writes the manifest


def test_the_manifest_refuses_other_settings_and_damage(tmp_path):
    out = tmp_path / "out"
    with claim_folder(out, "m.json", {"overrides": ["seed=1"]}, "suite"):
        (out / "m.json").write_text(json.dumps({"overrides": ["seed=1"], "jobs": [1, 2]}))
    with claim_folder(out, "m.json", {"overrides": ("seed=1",)}, "suite") as old:
        assert old["jobs"] == [1, 2]
    with pytest.raises(FolderError) as refused:
        with claim_folder(out, "m.json", {"overrides": ["seed=2"]}, "suite"):
            pass
    assert str(refused.value) == (
        f'{out} holds suite results made with other settings (overrides: ["seed=1"] there, '
        '["seed=2"] now): use another out_dir'
    )
    for damaged in (b"\x89PNG\x00\xff", b"[1, 2]", b'{"overrides": ["se'):
        (out / "m.json").write_bytes(damaged)
        with pytest.raises(FolderError, match="m.json is damaged"):
            with claim_folder(out, "m.json", {}, "suite"):
                pass
        assert (out / "m.json").read_bytes() == damaged
    (out / "m.json").unlink()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match="is not empty and is not a suite folder"):
        with claim_folder(out, "m.json", {}, "suite"):
            pass
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(FolderError, match="cannot use it as a folder"):
            with claim_folder(out, "m.json", {}, "suite"):
                pass


def test_temporary_files_of_a_killed_run_are_removed(tmp_path):
    out = tmp_path / "out"
    with claim_folder(out, "m.json", {}, "suite"):
        (out / "m.json").write_text("{}")
        (out / "runs" / "a").mkdir(parents=True)
        (out / "runs" / "a" / "metrics.json").write_text("{}")
        (out / "runs" / "a" / ".metrics.123.tmp.json").write_text("{")
        (out / ".suite.9.tmp.json").write_text("")
    with claim_folder(out, "m.json", {}, "suite"):
        assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
            "m.json",
            "runs/a/metrics.json",
        ]


def test_remove_temporaries_counts_what_it_removed(tmp_path):
    (tmp_path / ".x.1.tmp.png").write_bytes(b"")
    (tmp_path / "x.png").write_bytes(b"")
    assert jobs.remove_temporaries(tmp_path) == 1 and (tmp_path / "x.png").exists()

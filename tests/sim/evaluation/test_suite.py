"""Scenario suites (sim/evaluation/suite.py, sim/app/evaluate.py), run logs and replays (sim/record/runlog.py, sim/record/replay.py).

One two-scenario, two-seed suite runs through the process pool and through a local Ray instance
(module fixtures); the other tests reuse its folders.
"""

import json
import shutil

import numpy as np
import pytest

from perception.types import PEDESTRIAN, VEHICLE
from sim.app.cli import main
from sim.evaluation import attribution, suite
from sim.evaluation.jobs import FolderError, claim_folder
from sim.metrics.events import Event, EventKind
from sim.record import replay, runlog
from sim.simulation import TICK_KEYS

SCENARIOS, SEEDS = ["follow_lead", "cut_in"], [1, 2]
BLOCKED, COLLISION_VEHICLE, ROUTE_COMPLETED = (
    EventKind.BLOCKED,
    EventKind.COLLISION_VEHICLE,
    EventKind.ROUTE_COMPLETED,
)


TIMEOUT_S = 600.0  # no run here comes near it, but the ones that test the timeout


def run_suite(
    jobs, out_dir, workers: int, backend: str = "local", timeout_s: float = TIMEOUT_S
) -> list[dict]:
    """suite.run_suite without infraction clips (they cost a video encode per infraction)."""
    return suite.run_suite(jobs, out_dir, workers=workers, backend=backend, timeout_s=timeout_s, clips=False)


def scores_of(records):
    return {(r["perception"], r["scenario"], r["seed"]): r["metrics"]["driving_score"] for r in records}


def metrics_without_wall_clock(records):
    return {
        (r["perception"], r["scenario"], r["seed"]): {
            k: v for k, v in r["metrics"].items() if k not in replay.WALL_CLOCK_KEYS
        }
        for r in records
    }


@pytest.fixture(scope="module")
def local_suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite") / "local"
    jobs = suite.make_jobs(SCENARIOS, SEEDS, ["ground_truth"])
    return out, jobs, run_suite(jobs, out, workers=2)


def test_every_job_has_a_run_folder_and_a_record(local_suite):
    out, jobs, records = local_suite
    assert [(r["scenario"], r["seed"]) for r in records] == [(j.scenario, j.seed) for j in jobs]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    for r in records:
        run_dir = out / r["run_dir"]
        assert {"metrics.json", "log.npz", "result.json", "trajectory.png"} <= {
            p.name for p in run_dir.iterdir()
        }
        assert json.loads((run_dir / "result.json").read_text())["metrics"] == r["metrics"]
        assert r["metrics"]["scenario"] == r["scenario"] and r["metrics"]["seed"] == r["seed"]
    manifest = json.loads((out / "suite.json").read_text())
    assert manifest["format"] == suite.SUITE_FORMAT and len(manifest["jobs"]) == len(jobs)


def test_ray_backend_gives_the_same_results_as_the_pool(local_suite, tmp_path):
    _, jobs, records = local_suite
    ray_records = run_suite(jobs, tmp_path / "ray", workers=2, backend="ray")
    assert all(r["status"] == "ok" for r in ray_records), [r["error"] for r in ray_records]
    assert metrics_without_wall_clock(ray_records) == metrics_without_wall_clock(records)


def test_resume_skips_finished_runs_and_retries_missing_ones(local_suite, tmp_path):
    src, jobs, records = local_suite
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    redo = out / records[1]["run_dir"]
    shutil.rmtree(redo)  # a run that never finished
    stamps = {
        r["run_dir"]: (out / r["run_dir"] / "result.json").stat().st_mtime_ns
        for r in records
        if r != records[1]
    }
    again = run_suite(jobs, out, workers=1)
    assert (redo / "result.json").is_file()
    for run_dir, stamp in stamps.items():  # untouched: skipped
        assert (out / run_dir / "result.json").stat().st_mtime_ns == stamp
    assert scores_of(again) == scores_of(records)


def test_resume_reruns_damaged_records_and_sweeps_temporaries(local_suite, tmp_path):
    src, jobs, records = local_suite
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    damaged = [b"\x89PNG\r\n\x00\xff", b"[1, 2]", b'{"status": "ok", "metr']  # binary, a list, truncated
    for r, data in zip(records[:3], damaged, strict=True):
        (out / r["run_dir"] / "result.json").write_bytes(data)
    kept = out / records[3]["run_dir"] / "result.json"
    stamp = kept.stat().st_mtime_ns
    temporary = out / records[3]["run_dir"] / ".metrics.999.tmp.json"  # left by a killed run
    temporary.write_text("{")
    again = run_suite(jobs, out, workers=2)
    assert scores_of(again) == scores_of(records)
    for r in records[:3]:
        assert json.loads((out / r["run_dir"] / "result.json").read_text())["status"] == "ok"
    assert kept.stat().st_mtime_ns == stamp and not temporary.exists()


def test_failing_and_hanging_runs_are_recorded_and_the_suite_completes(tmp_path):
    good = suite.Job("follow_lead", 1, "ground_truth")
    bad = suite.Job("follow_lead", 2, "no_such_perception")  # raises in the run
    records = run_suite([good, bad], tmp_path / "s", workers=2)
    assert [r["status"] for r in records] == ["ok", "error"]
    assert records[1]["error"].startswith("ConfigError: ") and "no_such_perception" in records[1]["error"]
    assert len(records[1]["error"].splitlines()) == 1 and "Traceback" in records[1]["traceback"]
    stored = json.loads((tmp_path / "s" / records[1]["run_dir"] / "result.json").read_text())
    assert stored["status"] == "error"
    # A run past its time limit is stopped and recorded. No run finishes in 10 ms: its worker alone
    # takes longer to start.
    slow = run_suite([good], tmp_path / "t", workers=1, timeout_s=0.01)
    assert slow[0]["status"] == "error" and slow[0]["error"] == "timed out after 0.01 s"
    # A retry (here with time enough) replaces the failed record.
    again = run_suite([good], tmp_path / "t", workers=1)
    assert again[0]["status"] == "ok"
    # Other overrides into the same folder are refused: they would overwrite its runs.
    other = suite.Job("follow_lead", 1, "ground_truth", ("sim.decision_hz=20",))
    with pytest.raises(FolderError, match=r"other settings \(overrides: \[\] there"):
        run_suite([other], tmp_path / "t", workers=1)
    assert json.loads((tmp_path / "t" / again[0]["run_dir"] / "result.json").read_text()) == again[0]


def logs_of(out, records) -> dict:
    """Every array of every run's log.npz, by run."""
    logs = {}
    for r in records:
        with np.load(out / r["run_dir"] / "log.npz") as npz:
            logs[r["run_dir"]] = {k: npz[k] for k in npz.files}
    return logs


def same_logs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[run].keys() == b[run].keys() and all(np.array_equal(a[run][k], b[run][k]) for k in a[run])
        for run in a
    )


@pytest.mark.slow
def test_camera_runs_are_the_same_with_one_or_two_workers_and_on_ray(tmp_path, overrides=()):
    """The CNN's results change with torch's thread count in the last bits; the detector runs on
    one thread, so neither the worker count nor Ray (which gives its workers one thread) changes a
    run."""
    jobs = suite.make_jobs(["cut_in"], [2, 3], ["cnn"], overrides)
    runs = {}
    for name, workers, backend in [("w1", 1, "local"), ("w2", 2, "local"), ("ray", 2, "ray")]:
        records = run_suite(jobs, tmp_path / name, workers=workers, backend=backend)
        assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
        runs[name] = metrics_without_wall_clock(records), logs_of(tmp_path / name, records)
    for name in ("w2", "ray"):
        assert runs[name][0] == runs["w1"][0], name
        assert same_logs(runs[name][1], runs["w1"][1]), name


def test_a_timeout_while_the_detector_loads_is_a_timeout(tmp_path):
    """The time limit ends the worker wherever the run is: loading the detector too (which once came
    back as a ConfigError, the error that loading raised)."""
    (record,) = run_suite(suite.make_jobs(["cut_in"], [1], ["cnn"]), tmp_path, workers=2, timeout_s=0.01)
    assert record["status"] == "error" and record["error"] == "timed out after 0.01 s"


def test_replay_recomputes_the_scores_and_renders_a_video(local_suite, capsys):
    out, _, records = local_suite
    run_dir = out / records[0]["run_dir"]
    run = replay.load_run(run_dir)
    assert replay.differences(replay.rescore(run), run.metrics) == []
    assert main(["replay", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "scores match metrics.json" in text and (run_dir / "replay.mp4").stat().st_size > 10_000


def test_replay_detects_a_log_that_does_not_match_its_metrics(local_suite, tmp_path, capsys):
    out, _, records = local_suite
    run_dir = tmp_path / "run"
    shutil.copytree(out / records[0]["run_dir"], run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["route_completion"] = 12.5
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert main(["replay", str(run_dir), "--no-video"]) == 1
    assert "differ from metrics.json in: route_completion" in capsys.readouterr().out


def test_a_collision_with_an_unseen_actor_is_blamed_on_perception(tmp_path):
    """Blind perception (every object missed) on follow_lead: the ego hits the lead car; replay
    reproduces the scores and the attribution names the miss."""
    from sim.app.drive import drive

    result, run_dir = drive(
        ["scenario=lead_hard_brake", "seed=1", "perception=noisy", "perception.miss_probability=1.0",
         "video=false", "plot=false", f"hydra.run.dir={tmp_path / 'run'}"]
    )  # fmt: skip
    assert result.summary["infractions"][COLLISION_VEHICLE] >= 1
    run = replay.load_run(run_dir)
    assert replay.differences(replay.rescore(run), run.metrics) == []
    rows = [r for r in attribution.attribute(run) if r["kind"] == COLLISION_VEHICLE]
    assert rows and rows[0]["missed_fraction"] == 1.0 and rows[0]["cause"].startswith("perception: missed")


def crafted_run(offset_m: float, first_seen_tick: int) -> replay.Run:
    """20 ticks at 10 Hz, one vehicle 10 m ahead of the ego, hit at t = 1.9 s; perception reports
    it `offset_m` to the side from `first_seen_tick` on."""
    T = 20
    ticks = {k: np.zeros(T) for k in TICK_KEYS}
    ticks["t_s"] = np.arange(T) * 0.1
    ticks["x_m"] = np.arange(T) * 1.0
    end = float(ticks["t_s"][-1])
    actor_xy = np.stack([ticks["x_m"] + 10.0, np.zeros(T)], axis=1)[:, None, :]  # (T, 1, 2)
    rows = [
        (k, 7, VEHICLE, actor_xy[k, 0, 0], offset_m, 0, 0, 0, 4.5, 1.8, 1.0)
        for k in range(first_seen_tick, T)
    ]
    log = runlog.RunLog(
        ticks=ticks,
        actor_xy_m=actor_xy,
        actor_yaw_rad=np.zeros((T, 1)),
        actor_ids=np.array([3]),
        actor_class_ids=np.array([VEHICLE]),
        actor_size_m=np.array([[4.5, 1.8, 1.5]]),
        perception=np.array(rows, dtype=float).reshape(-1, 11),
        detections=np.zeros((0, len(runlog.DETECTION_COLUMNS))),
        events=[Event(end, COLLISION_VEHICLE, actor_id=3, speed_mps=10.0), Event(end, ROUTE_COMPLETED)],
        meta={"control_hz": 10.0},
    )
    return replay.Run(None, {}, {}, log)


@pytest.mark.parametrize(
    "offset_m, first_seen, cause, missed",
    [
        (0.2, 0, "planning/control", 0.0),
        (2.0, 0, "perception: localisation error 2.0 m", 0.0),
        (0.2, 12, "perception: missed", 0.6),  # seen on 8 of the 20 ticks of the window
        (0.2, 19, "perception: missed", 0.95),
        (9.0, 0, "perception: missed", 1.0),  # reported 9 m away: not a match
    ],
)
def test_attribution_of_a_crafted_collision(offset_m, first_seen, cause, missed):
    rows = attribution.attribute(crafted_run(offset_m, first_seen))
    assert len(rows) == 1  # route_completed is not an infraction
    row = rows[0]
    assert row["kind"] == COLLISION_VEHICLE and row["actor_class"] == "vehicle"
    assert row["cause"].startswith(cause), row
    assert row["missed_fraction"] == pytest.approx(missed)
    if missed < 1.0:
        assert row["track_latency_s"] == pytest.approx(0.1 * first_seen)


def test_a_blocked_run_with_a_phantom_ahead_is_blamed_on_perception():
    run = crafted_run(0.2, 0)
    ghost = run.log.perception.copy()
    ghost[:, 1], ghost[:, 3] = 99, ghost[:, 3] - 5.0  # a second object 5 m short of the vehicle
    run.log.perception = np.concatenate([run.log.perception, ghost])
    run.log.events = [Event(run.log.events[0].t_s, BLOCKED)]
    (row,) = attribution.attribute(run)
    assert row["kind"] == BLOCKED and row["phantom_fraction"] == 1.0
    assert row["cause"].startswith("perception: phantom object ahead")
    run.log.perception = run.log.perception[:20]  # without the phantom: perceived, so not perception
    assert attribution.attribute(run)[0]["cause"].startswith("planning/control")


FRONT_CAMERA = {
    "name": "front",
    "mount_x_m": 0.8,
    "mount_y_m": 0.0,
    "yaw_deg": 0.0,
    "hfov_deg": 75.0,
    "range_m": 80.0,
}


def test_a_camera_perceiver_is_blamed_only_for_what_its_cameras_could_see():
    # The vehicle 10 m behind the ego instead of ahead, never perceived: a front camera never saw it.
    run = crafted_run(0.2, 20)
    run.log.actor_xy_m[:, 0, 0] -= 20.0
    run.log.meta["cameras"] = [FRONT_CAMERA]
    (row,) = attribution.attribute(run)
    assert row["outside_view_fraction"] == 1.0 and row["missed_fraction"] is None
    assert row["cause"] == "perception: outside the field of view on 100% of the last ticks"
    # Ground truth sees all around: the same run is a miss.
    del run.log.meta["cameras"]
    (row,) = attribution.attribute(run)
    assert row["outside_view_fraction"] == 0.0 and row["cause"].startswith("perception: missed")
    # A blocked run: an unseen actor behind the cameras is not examined at all.
    run.log.meta["cameras"] = [FRONT_CAMERA]
    run.log.events = [Event(run.log.events[0].t_s, BLOCKED)]
    (row,) = attribution.attribute(run)
    assert row["missed_fraction"] is None and row["cause"].startswith("planning/control")


def test_in_view_follows_each_camera_mount_and_field_of_view():
    ego_xy, ego_yaw = np.zeros((1, 2)), np.array([np.pi / 2])  # heading +y
    # Ahead (+y), to the left (-x), behind (-y), and ahead but beyond the labelled range.
    xy = np.array([[[0.0, 20.0], [-20.0, 0.0], [0.0, -20.0], [0.0, 200.0]]])
    radius = np.full(4, 1.0)
    front = runlog.in_view({"cameras": [FRONT_CAMERA]}, ego_xy, ego_yaw, xy, radius)
    assert front.tolist() == [[True, False, False, False]]
    left = {**FRONT_CAMERA, "name": "left", "mount_x_m": 0.0, "mount_y_m": 0.9, "yaw_deg": 90.0}
    both = runlog.in_view({"cameras": [FRONT_CAMERA, left]}, ego_xy, ego_yaw, xy, radius)
    assert both.tolist() == [[True, True, False, False]]
    assert runlog.in_view({}, ego_xy, ego_yaw, xy, radius).all()  # no cameras: sees all around


def test_attribution_matches_by_class():
    run = crafted_run(0.2, 0)
    run.log.perception[:, 2] = PEDESTRIAN  # right place, wrong class
    assert attribution.attribute(run)[0]["missed_fraction"] == 1.0


def test_run_log_errors_are_one_line(tmp_path):
    with pytest.raises(runlog.RunLogError, match="no run log"):
        runlog.read(tmp_path / "log.npz")
    (tmp_path / "log.npz").write_bytes(b"not a zip")
    with pytest.raises(runlog.RunLogError, match="not a readable run log"):
        runlog.read(tmp_path / "log.npz")
    with pytest.raises(runlog.RunLogError, match="no such run folder"):
        replay.load_run(tmp_path / "nope")


def test_evaluate_bad_input_is_one_line_and_writes_nothing(cli_error, tmp_path):
    out = f"out_dir={tmp_path / 'e'}"
    assert "unknown suite 'nope'; available: abilities, smoke, standard, town" in cli_error(
        ["evaluate", "suite=nope", out]
    )
    assert "seeds=0 is out of range" in cli_error(["evaluate", "suite=smoke", "seeds=0", out])
    assert "seeds=-3 is out of range" in cli_error(["evaluate", "suite=smoke", "seeds=-3", out])
    err = cli_error(["evaluate", "suite=smoke", "perception=ground_truth,lidar", out])
    assert "unknown perception 'lidar'" in err
    err = cli_error(["evaluate", "suite=smoke", "suite.scenarios=[cut_in,nope]", out])
    assert "unknown scenario 'nope' in suite smoke" in err
    err = cli_error(["evaluate", "suite=smoke", "backend=ray", "ray_address=127.0.0.1:1", out])
    assert "cannot reach Ray at 127.0.0.1:1" in err
    assert not (tmp_path / "e").exists()


def test_a_results_folder_of_another_version_is_refused_and_kept(cli_error, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    old = {
        "format": suite.SUITE_FORMAT,
        "version": suite.SUITE_VERSION,
        "project_version": "0.0.1",
        "jobs": [],
    }
    (folder / "suite.json").write_text(json.dumps(old))
    (folder / "report.md").write_text("old results")
    err = cli_error(["evaluate", "suite=smoke", f"out_dir={folder}"])
    assert '"0.0.1" there' in err and "use another out_dir" in err
    assert json.loads((folder / "suite.json").read_text()) == old
    assert (folder / "report.md").read_text() == "old results"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert "not a suite folder" in cli_error(["evaluate", "suite=smoke", f"out_dir={tmp_path / 'other'}"])


def test_a_damaged_or_busy_suite_folder_is_one_line(cli_error, local_suite, tmp_path):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "suite.json").write_bytes(b"\x00\xff\x00")
    err = cli_error(["evaluate", "suite=smoke", f"out_dir={damaged}"])
    assert "suite.json is damaged" in err
    busy = tmp_path / "busy"
    shutil.copytree(local_suite[0], busy)
    with claim_folder(busy, "suite.json", {}, "suite"):  # as another evaluate would hold it
        err = cli_error(["evaluate", "suite=smoke", f"out_dir={busy}"])
    assert "is in use by another process" in err

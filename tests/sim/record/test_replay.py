"""Replay of a finished run folder (sim/record/replay.py, sim/record/runlog.py): bad input gives one
line and exit 2, never a traceback, and nothing is written."""

import json
import shutil

import numpy as np
import pytest
import yaml

from sim.app.cli import main
from sim.metrics.events import EventKind
from sim.record import replay, runlog


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "run"
    args = ["scenario=follow_lead", "seed=1", "scenario.duration_s=3", "video=false", "plot=false"]
    assert main(["drive", *args, f"hydra.run.dir={out}"]) == 0
    return out


@pytest.fixture
def copy(run_dir, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def replay_fails(folder, cli_error, *words):
    """`replay` on `folder` exits 2 with one line naming `words`, and writes nothing."""
    before = sorted(p.name for p in folder.iterdir())
    err = cli_error(["replay", str(folder), "--no-video"])
    assert err.startswith("bulletdrive: error:") and all(w in err for w in words), err
    assert sorted(p.name for p in folder.iterdir()) == before


def rewrite_log(folder, change):
    """Rewrite log.npz with `change(dict of arrays)` applied."""
    with np.load(folder / "log.npz") as z:
        data = {k: z[k] for k in z.files}
    change(data)
    np.savez_compressed(folder / "log.npz", **data)


def test_a_good_run_replays(copy, capsys):
    assert main(["replay", str(copy), "--no-video"]) == 0
    assert "scores match metrics.json" in capsys.readouterr().out
    assert (copy / "replay_metrics.json").is_file()


@pytest.mark.parametrize(
    "content, words",
    [
        (b"[1, 2, 3]", ("metrics.json", "mapping", "list")),
        (b'"text"', ("metrics.json", "mapping", "str")),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", ("metrics.json", "not readable")),
        (b"{not json", ("metrics.json", "not readable")),
    ],
)
def test_metrics_that_are_not_a_mapping(copy, cli_error, content, words):
    (copy / "metrics.json").write_bytes(content)
    replay_fails(copy, cli_error, *words)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"- a\n- b\n", ("config.yaml", "mapping", "list")),
        (b"42\n", ("config.yaml", "mapping", "int")),
        (b"key: [unclosed\n", ("config.yaml", "not readable")),
        (b"\xff\xfe\x00binary", ("config.yaml", "not readable")),
    ],
)
def test_config_that_is_not_a_mapping(copy, cli_error, content, words):
    (copy / ".hydra" / "config.yaml").write_bytes(content)
    replay_fails(copy, cli_error, *words)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda c: c.pop("scenario"), ("'scenario'", "mapping")),
        (lambda c: c.update(scenario="cut_in"), ("'scenario'", "mapping")),
        (lambda c: c.update(seed="abc"), ("'seed'", "integer")),
        (lambda c: c.update(seed=-1), ("'seed'", "integer")),
        (lambda c: c["scenario"].update(duration_s=-5), ("no usable scenario", "duration_s")),
    ],
)
def test_config_without_a_usable_scenario_or_seed(copy, cli_error, change, words):
    path = copy / ".hydra" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))
    replay_fails(copy, cli_error, *words)


@pytest.mark.parametrize("key", ["t_s", "actor_xy_m", "perception", "events", "meta"])
def test_log_missing_a_key(copy, cli_error, key):
    rewrite_log(copy, lambda d: d.pop(key))
    replay_fails(copy, cli_error, "log.npz", key)


@pytest.mark.parametrize(
    "content", [b"not a zip at all", b"PK\x03\x04 a truncated zip", b"\x93NUMPY\x01\x00 a bare npy"]
)
def test_log_that_is_not_an_npz(copy, cli_error, content):
    (copy / "log.npz").write_bytes(content)
    replay_fails(copy, cli_error, "log.npz", "not a readable run log")


def test_log_that_is_a_bare_npy(copy, cli_error):
    with open(copy / "log.npz", "wb") as f:
        np.save(f, np.zeros(3))
    replay_fails(copy, cli_error, "log.npz", "not a readable run log")


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.update(x_m=d["x_m"][:-1]), ("x_m", "shape")),
        (lambda d: d.update(actor_xy_m=d["actor_xy_m"][:, :, :1]), ("actor_xy_m", "shape")),
        (lambda d: d.update(perception=np.zeros((2, 4))), ("perception", "shape")),
        (lambda d: d.update(t_s=np.array(["a", "b"])), ("t_s", "numbers")),
        (lambda d: d.update(meta=np.array("[1, 2]")), ("meta", "list")),
        (lambda d: d.update(meta=np.array("{nope")), ("meta", "not JSON")),
        (lambda d: d.update(events=np.array('[{"t_s": 1.0, "kind": "explosion"}]')), ("event", "explosion")),
        (lambda d: d.update(events=np.array('[{"t_s": 1.0}]')), ("event", "fields")),
    ],
)
def test_log_with_bad_content(copy, cli_error, change, words):
    rewrite_log(copy, change)
    replay_fails(copy, cli_error, "log.npz", *words)


@pytest.mark.parametrize("key", ["control_hz", "driven_distance_m", "ego_size_m"])
def test_log_meta_missing_what_replay_reads(copy, cli_error, key):
    def drop(d):
        meta = json.loads(str(d["meta"]))
        del meta[key]
        d["meta"] = np.array(json.dumps(meta))

    rewrite_log(copy, drop)
    replay_fails(copy, cli_error, "log.npz", f"meta.{key}")


def test_an_old_format_version_names_both_versions(copy, cli_error):
    def old(d):
        meta = json.loads(str(d["meta"]))
        meta["version"] = 0
        d["meta"] = np.array(json.dumps(meta))

    rewrite_log(copy, old)
    replay_fails(copy, cli_error, "v0", f"v{runlog.LOG_VERSION}")


def test_missing_files_and_folders(copy, tmp_path, cli_error):
    (copy / "log.npz").unlink()
    replay_fails(copy, cli_error, "log.npz")
    (copy / "metrics.json").unlink()
    replay_fails(copy, cli_error, "metrics.json is missing")
    assert "no such run folder" in cli_error(["replay", str(tmp_path / "nowhere")])


def test_event_kinds_survive_the_log_round_trip(run_dir, tmp_path):
    """Kinds are written as their plain strings and read back as EventKind members."""
    log = replay.load_run(run_dir).log
    assert [e.kind for e in log.events] == [EventKind.TIMEOUT]
    path = tmp_path / "log.npz"
    runlog.write(path, log)
    with np.load(path) as z:
        assert json.loads(str(z["events"]))[0]["kind"] == "timeout"
    again = runlog.read(path).events
    assert again == log.events and type(again[0].kind) is EventKind

"""Bad input to every command: one line on stderr naming the key, exit code 2, nothing written.

The cases of the acceptance checks cli-bad-input and stack-bad-input, and more. Each error comes
from the command's options, before any data is read: the message must name the option."""

import os

import pytest


@pytest.fixture
def place(tmp_path):
    """(tmp_path, the output folder that must stay absent, a file)."""
    (tmp_path / "a_file").write_text("mine")
    return tmp_path, tmp_path / "o", tmp_path / "a_file"


DRIVE = [
    (["video=off"], "video"),
    (["video=1"], "video"),
    (["plot=yes"], "plot"),
    (["scenario.duration_s=1e12"], "duration_s"),
    (["sim.physics_hz=100000"], "physics_hz"),
    (["sim.camera.width=20000", "sim.camera.height=20000"], "width"),
    (["scenario=dense_traffic", "scenario.traffic.count=1000000"], "count"),
    (["+scenario.traffic.count=1e6"], "count"),
    (["scenario=no_such_scenario"], "cut_in"),  # lists the available ones
    (["sim.camera.widht=100"], "widht"),
    (["+sim.no_such_key=1"], "no_such_key"),
    (["+no_such_top=1"], "no_such_top"),
    (["seed=-1"], "seed"),
    (["seed=abc"], "seed"),
    (["seed=1.5"], "seed"),
    (["sim.camera.width=0"], "width"),
    (["sim.camera=5"], "sim.camera"),
    (["sim.ego_model=tank"], "ego_model"),
    (["sim.renderer=vulkan"], "renderer"),
    (["sim/rig=surround9"], "surround6"),  # lists the rigs there are
    (["sim.rig=[{name: a},{name: a}]"], "sim.rig"),  # two cameras of one name
    (["sim.rig=[]"], "sim.rig"),
    (["sim.mount_jitter.yaw_deg=-3"], "yaw_deg"),
    (["sim.rig=[{name: a, yaw_deg: 400}]"], "yaw_deg"),
    (["sim.rig=[{name: a, hfov_deg: 75, roll_deg: 3}]"], "roll_deg"),
    (["sim.decision_hz=40"], "decision_hz"),  # above control_hz
    (["sim.decision_hz=0"], "decision_hz"),
    (["sim.control_hz=nan"], "control_hz"),
    (["scenario.road.lanes=0"], "lanes"),
    (["scenario.ego.target_speed_mps=-5"], "target_speed_mps"),
    (["scenario.name=../../x"], "scenario.name"),
    (["+perception.no_such=1"], "no_such"),
    (["perception.miss_probability=2"], "miss_probability"),
    (["perception=cnn", "perception.device=tpu"], "perception.device"),
    (["perception=cnn", "perception.threads=0"], "threads=0"),
    (["perception=cnn", "perception.threads=abc"], "threads='abc'"),
    (["scenario=["], "scenario=["),
]


@pytest.mark.parametrize("overrides, word", DRIVE, ids=[" ".join(o) for o, _ in DRIVE])
def test_drive(overrides, word, place, cli_error):
    _, out, _ = place
    assert word in cli_error(["drive", *overrides, f"hydra.run.dir={out}"])
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_drive_run_dir_that_cannot_be_a_folder(where, place, cli_error):
    _, _, a_file = place
    run_dir = a_file if where == "file" else a_file / "run"
    err = cli_error(["drive", "video=false", f"hydra.run.dir={run_dir}"])
    assert "hydra.run.dir" in err and str(a_file) in err
    assert a_file.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_folder_that_cannot_be_written(place, cli_error):
    tmp_path, _, _ = place
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    err = cli_error(["drive", "video=false", f"hydra.run.dir={locked / 'run'}"])
    assert "not writable" in err
    assert not (locked / "run").exists()


EVALUATE = [
    (["workers=abc"], "workers"),
    (["workers=0"], "workers"),
    (["timeout_s=abc"], "timeout_s"),
    (["timeout_s=0"], "timeout_s"),
    (["backend=slurm"], "backend"),
    (["scorer=mine"], "scorer"),
    (["clips=off"], "clips"),
    (["seeds=1", 'overrides=["scenario.duration_s=-5"]'], "duration_s"),
    (["seeds=1", 'overrides=["sim.camera.widht=5"]'], "widht"),
    (["seeds=2", 'overrides=["seed=5"]'], "seed=5"),
    (["seeds=1", 'overrides=["scenario=cut_in"]'], "scenario=cut_in"),
    (["seeds=1", 'overrides=["perception=noisy"]'], "perception=noisy"),
    (["seeds=1", 'overrides=["hydra.run.dir=x"]'], "hydra.run.dir"),
    (["seeds=1", 'overrides=["+perception.no_such=1"]'], "no_such"),
    (["seeds=1e9"], "seeds"),
    (["seeds=[1,-2]"], "seeds"),
    (["seeds=[1,1000000007]"], "datasets'"),  # a dataset scene's seed (sim/config.py DATA_SEED_MIN)
    (["suite.seeds=[1000000000]"], "datasets'"),
    (["suite.name=../x"], "suite.name"),
    (["+suite.no_such=1"], "no_such"),
    (["perception=ground_truth,ground_truth"], "perception"),
]


@pytest.mark.parametrize("args, word", EVALUATE, ids=[" ".join(a) for a, _ in EVALUATE])
def test_evaluate(args, word, place, cli_error):
    _, out, _ = place
    assert word in cli_error(["evaluate", "suite=smoke", *args, f"out_dir={out}"])
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_evaluate_out_dir_that_cannot_be_a_folder(where, place, cli_error):
    _, _, a_file = place
    out = a_file if where == "file" else a_file / "ev"
    assert "out_dir" in cli_error(["evaluate", "suite=smoke", "seeds=1", f"out_dir={out}"])
    assert a_file.read_text() == "mine"


DATA = [
    (["train_scenes=abc"], "train_scenes"),
    (["train_scenes=0"], "train_scenes"),
    (["val_scenes=1e9"], "val_scenes"),
    (["frame_every_s=0"], "frame_every_s"),
    (["workers=-1"], "workers"),
    (["clutter=5"], "clutter"),
    (["clutter.cones=-1"], "cones"),
    (["+clutter.trees=1"], "trees"),
    (["scenarios=[cut_in,nope]"], "nope"),
    (["scenario.duration_s=1e12"], "duration_s"),
    (["sim.camera.width=0"], "width"),
    (["mount_jitter.z_m=5"], "z_m"),
    (["mount_jitter.roll_deg=1"], "roll_deg"),
    (["+no_such=1"], "no_such"),
]


@pytest.mark.parametrize("args, word", DATA, ids=[" ".join(a) for a, _ in DATA])
def test_data(args, word, place, cli_error):
    _, out, _ = place
    assert word in cli_error(["data", *args, f"out_dir={out}"])
    assert not out.exists()


TRAIN = [
    (["threads=0"], "threads"),
    (["epochs=1e9"], "epochs"),
    (["epochs=1000000000"], "epochs"),
    (["max_steps=-5"], "max_steps"),
    (["max_seconds=-1"], "max_seconds"),
    (["batch_size=0"], "batch_size"),
    (["lr=0"], "lr"),
    (["device=tpu"], "device"),
    (["amp=maybe"], "amp"),
    (["augment.flip_p=2"], "flip_p"),
    (["+augment.no_such=1"], "no_such"),
    (["+model.no_such=1"], "no_such"),
    (["model.widths=[4]"], "widths"),
    (["model=huge"], "huge"),
    (["teacher=shipped"], "exactly when a teacher is given"),
    (["distill=1"], "exactly when a teacher is given"),
]


@pytest.mark.parametrize("args, word", TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_train(args, word, place, cli_error):
    tmp_path, out, _ = place
    assert word in cli_error(["train", f"data_dir={tmp_path / 'ds'}", *args, f"out_dir={out}"])
    assert not out.exists()


DETECT_EVAL = [
    (["batch_size=0"], "batch_size"),
    (["device=tpu"], "device"),
    (["split=test"], "split"),
    (["score_threshold=2"], "score_threshold"),
    (["threads=abc"], "threads"),
    (["score_threshold=0.5", "recall_score_threshold=0.35"], "recall_score_threshold"),
    (["min_group_boxes=0"], "min_group_boxes"),
]


@pytest.mark.parametrize("args, word", DETECT_EVAL, ids=[" ".join(a) for a, _ in DETECT_EVAL])
def test_detect_eval(args, word, place, cli_error):
    tmp_path, out, _ = place
    assert word in cli_error(["detect-eval", f"data_dir={tmp_path / 'ds'}", *args, f"out_dir={out}"])
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "detect-eval", "data"])
def test_out_dir_that_is_a_file(command, place, cli_error):
    tmp_path, _, a_file = place
    err = cli_error([command, f"data_dir={tmp_path / 'ds'}" if command != "data" else "seed=0",
                                  f"out_dir={a_file}"])  # fmt: skip
    assert "out_dir" in err and a_file.read_text() == "mine"


def test_replay_of_a_missing_run(place, cli_error):
    tmp_path, _, _ = place
    assert "no_such_run" in cli_error(["replay", str(tmp_path / "no_such_run")])


def test_scenarios_takes_only_a_search_path(cli_error):
    assert "seed=1" in cli_error(["scenarios", "seed=1"])


def test_unknown_command(cli_error):
    assert "drvie" in cli_error(["drvie"])

"""Every config group composes and builds, scenarios sample from the seed, the scenarios and help
commands list what there is. Bad input to every command: tests/sim/app/test_bad_input.py."""

import numpy as np
import pytest

from sim.app import config as C
from sim.app import schemas
from sim.app.cli import main
from sim.simulation import RandomStreams

GROUPS = ("scenario", "perception", "decision", "control", "sim")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, conf_values):
    """An untrained tiny detector: enough to build the camera perceiver without shipped weights."""
    from perception.detection.model import CenterNet, DetectorConfig, save_checkpoint
    from perception.types import CLASSES

    config = DetectorConfig(**conf_values("model/tiny.yaml"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, CenterNet(config), config, {"classes": list(CLASSES)})
    return path


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group, tiny_checkpoint):
    for option in C.available(group):
        extra = (
            [f"perception.checkpoint={tiny_checkpoint}"] if (group, option) == ("perception", "cnn") else []
        )
        cfg, _ = C.load("drive", [f"{group}={option}", *extra])
        sim_cfg = C.sim_config(cfg)
        spec = C.scenario_spec(cfg, RandomStreams.from_seed(1).scenario)
        C.build_stack(cfg, sim_cfg)
        assert spec.route.goal_s_m <= spec.road.length_m


@pytest.mark.parametrize("command", sorted(schemas.SCHEMAS))
def test_every_command_config_composes_into_its_schema(command):
    loaded = C.load_checked(command, [])
    assert isinstance(loaded.values, schemas.SCHEMAS[command])


def test_every_suite_composes_and_names_known_scenarios():
    for option in C.available("suite"):
        suite = C.load_checked("evaluate", [f"suite={option}"]).values.suite
        C.check_known("scenario", suite.scenarios, (), f" in suite {option}")
        assert suite.name == option


def test_every_model_composes_and_builds():
    from perception.detection.model import DetectorConfig

    for option in C.available("model"):
        DetectorConfig(**C.load_checked("train", [f"model={option}"]).values.model)


def test_all_seven_scenarios_ship():
    assert set(C.available("scenario")) >= {
        "lane_keep_curve",
        "follow_lead",
        "lead_hard_brake",
        "cut_in",
        "pedestrian_crossing",
        "static_obstacle",
        "dense_traffic",
    }


def test_scenario_ranges_are_sampled_from_the_seed():
    cfg, _ = C.load("drive", ["scenario=cut_in"])
    a = C.scenario_spec(cfg, RandomStreams.from_seed(1).scenario)
    b = C.scenario_spec(cfg, RandomStreams.from_seed(1).scenario)
    c = C.scenario_spec(cfg, RandomStreams.from_seed(2).scenario)
    assert a.actors == b.actors
    assert a.actors != c.actors
    lo, hi = 35.0, 50.0
    assert lo <= a.actors[0].s_m - a.route.start_s_m <= hi


def test_clutter_adds_static_roadside_objects_by_density():
    clutter = "++scenario.clutter={pedestrians:4,cones:[1.0,2.0],parked_cars:1}"
    cfg, _ = C.load("drive", ["scenario=follow_lead", clutter])
    plain = C.scenario_spec(C.load("drive", ["scenario=follow_lead"])[0], RandomStreams.from_seed(1).scenario)
    spec = C.scenario_spec(cfg, RandomStreams.from_seed(1).scenario)
    assert spec.actors[: len(plain.actors)] == plain.actors  # the scenario's own actors unchanged
    extra = spec.actors[len(plain.actors) :]
    per_100m = (spec.route.length_m - 5.0) / 100
    peds = [a for a in extra if a.kind == "pedestrian"]
    cones = [a for a in extra if a.model == "cone"]
    assert 0.5 * 4 * per_100m < len(peds) < 1.5 * 4 * per_100m  # Poisson around the density
    assert 0.5 * per_100m < len(cones) < 2.5 * per_100m and not any(a.model == "barrier" for a in extra)
    half = spec.road.half_width_m
    assert all(a.behaviour == "static" and abs(a.d_m) > half for a in extra)  # off the carriageway
    assert {a.d_m > 0 for a in extra} == {True, False}  # both sides
    assert all(spec.route.start_s_m <= a.s_m <= spec.route.goal_s_m for a in extra)
    assert C.scenario_spec(cfg, RandomStreams.from_seed(1).scenario).actors == spec.actors  # from the seed
    assert C.scenario_spec(cfg, RandomStreams.from_seed(2).scenario).actors != spec.actors


@pytest.mark.parametrize(
    "clutter, word",
    [("{trees:1}", "trees"), ("{cones:-1}", "cones"), ("{cones:[2,1]}", "cones"), ("{ds_m:5}", "ds_m")],
)
def test_bad_clutter_names_the_key(clutter, word):
    cfg, _ = C.load("drive", [f"++scenario.clutter={clutter}"])
    with pytest.raises(C.ConfigError, match=word):
        C.scenario_spec(cfg, RandomStreams.from_seed(1).scenario)


def test_hydra_run_dir_override(tmp_path):
    _, run_dir = C.load("drive", [f"hydra.run.dir={tmp_path}/x"])
    assert str(run_dir) == f"{tmp_path}/x"


def test_scenarios_command_lists_one_line_each(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(C.available("scenario"))
    assert all(len(line.split()) > 2 for line in lines)


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("drive", "scenarios", "data", "train", "detect-eval", "evaluate", "replay"))


def test_sampled_values_are_finite():
    for name in C.available("scenario"):
        cfg, _ = C.load("drive", [f"scenario={name}"])
        spec = C.scenario_spec(cfg, RandomStreams.from_seed(0).scenario)
        assert np.isfinite(spec.duration_s) and spec.route.length_m > 0


def test_user_scenarios_from_a_search_path_and_malformed_yaml(tmp_path, cli_error):
    from importlib.resources import files

    (tmp_path / "scenario").mkdir()
    text = files("conf").joinpath("scenario", "follow_lead.yaml").read_text()
    (tmp_path / "scenario" / "mine.yaml").write_text(text.replace("name: follow_lead", "name: mine"))
    (tmp_path / "scenario" / "broken.yaml").write_text("name: broken\nduration_s: [1, 2\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    cfg, _ = C.load("drive", ["scenario=mine", search])
    assert C.scenario_spec(cfg, RandomStreams.from_seed(0).scenario).name == "mine"
    err = cli_error(["drive", "scenario=broken", search, f"hydra.run.dir={tmp_path}/run"])
    assert "malformed YAML" in err and "scenario=broken" in err and "line 3" in err

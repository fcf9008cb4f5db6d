"""`bulletdrive evaluate` and `scenarios` with the user's own config folder (hydra.searchpath), and
the up-front checks of every run of a suite."""

from importlib.resources import files

import pytest

from sim.app import config as C
from sim.app.cli import main
from sim.app.evaluate import plan
from sim.simulation import RandomStreams


@pytest.fixture
def my_conf(tmp_path):
    """A user's config folder with a scenario (a renamed follow_lead) and a suite using it."""
    (tmp_path / "scenario").mkdir()
    (tmp_path / "suite").mkdir()
    text = files("conf").joinpath("scenario", "follow_lead.yaml").read_text()
    (tmp_path / "scenario" / "my_follow.yaml").write_text(
        text.replace("name: follow_lead", "name: my_follow")
    )
    (tmp_path / "suite" / "my_suite.yaml").write_text(
        "name: my_suite\ndescription: a user suite\nscenarios: [my_follow, cut_in]\nseeds: [1, 2]\n"
    )
    return tmp_path


def test_a_user_suite_plans_runs_that_find_the_user_scenario(my_conf, tmp_path):
    search = f"hydra.searchpath=[file://{my_conf}]"
    jobs, settings = plan([search, "suite=my_suite", f"out_dir={tmp_path / 'ev'}"])
    assert settings.suite == "my_suite"
    assert [(j.scenario, j.seed) for j in jobs] == [
        ("my_follow", 1),
        ("my_follow", 2),
        ("cut_in", 1),
        ("cut_in", 2),
    ]
    assert all(j.overrides == (search,) for j in jobs)  # every run composes with the search path
    cfg, _ = C.load("drive", [f"scenario={jobs[0].scenario}", *jobs[0].overrides])
    assert cfg.scenario.name == "my_follow"
    assert not (tmp_path / "ev").exists()


def test_without_the_search_path_the_user_suite_is_unknown(my_conf, tmp_path, cli_error):
    assert "unknown suite 'my_suite'" in cli_error(
        ["evaluate", "suite=my_suite", f"out_dir={tmp_path / 'ev'}"]
    )


def test_overrides_reach_every_job_after_the_search_path(my_conf, tmp_path):
    search = f"hydra.searchpath=[file://{my_conf}]"
    args = [
        search,
        "suite=my_suite",
        "seeds=1",
        'overrides=["sim.ego_model=kinematic"]',
        f"out_dir={tmp_path}/e",
    ]
    jobs, _ = plan(args)
    assert all(j.overrides == (search, "sim.ego_model=kinematic") for j in jobs)


def test_a_scenario_that_fails_for_one_seed_fails_before_any_run(my_conf, tmp_path, cli_error):
    """The start is drawn from [10, 400]: the route ends past the road for some seeds only; the
    suite's second seed is such a one."""
    path = my_conf / "scenario" / "my_follow.yaml"
    path.write_text(path.read_text().replace("  s_m: 10\n", "  s_m: [10, 400]\n"))
    search = f"hydra.searchpath=[file://{my_conf}]"
    cfg, _ = C.load("drive", [search, "scenario=my_follow"])
    fails = {}
    for seed in range(50):
        try:
            C.scenario_spec(cfg, RandomStreams.from_seed(seed).scenario)
            fails[False] = seed
        except C.ConfigError:
            fails[True] = seed
    args = [search, "suite=my_suite", f"seeds=[{fails[False]},{fails[True]}]", f"out_dir={tmp_path / 'ev'}"]
    err = cli_error(["evaluate", *args])
    assert "route_length_m" in err and f"my_follow/seed{fails[True]:03d}" in err
    assert not (tmp_path / "ev").exists()


def test_scenarios_lists_the_user_scenarios_and_flags_invalid_ones(my_conf, capsys):
    (my_conf / "scenario" / "broken.yaml").write_text("name: ../broken\nduration_s: 5\n")
    assert main(["scenarios", f"hydra.searchpath=[file://{my_conf}]"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("my_follow ") and "slower vehicle" in line for line in lines)
    assert any(line.startswith("broken ") and "INVALID" in line and "scenario.name" in line for line in lines)
    assert len(lines) == len(C.available("scenario")) + 2

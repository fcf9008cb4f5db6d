"""The whole chain with ground-truth perception: every scenario drives safely, runs repeat exactly."""

import json

import numpy as np
import pytest

from sim.app import config as C
from sim.app.drive import drive

ALL_SCENARIOS = C.available("scenario")
LONG = ["town_route"]  # minutes of simulated driving: in the slow tests only
SCENARIOS = [s for s in ALL_SCENARIOS if s not in LONG]
FAST = ["sim.camera.enabled=false", "video=false", "plot=false"]
# In a town the minimum-speed test compares the ego with the background traffic (CARLA leaderboard
# 2.0): waiting at lights and giving way costs up to ~25 points on a short route, so a town run is
# held to no infraction but that one and this floor; a one-road run to 90.
TOWN_MIN_SCORE = 60.0
TOWNS = {name for name, data in C.group_configs("scenario").items() if "town" in data}


def check_safe(summary: dict, scenario: str) -> None:
    counts = summary["infractions"]
    collisions = counts["collision_vehicle"] + counts["collision_pedestrian"] + counts["collision_static"]
    assert collisions == 0, summary["events"]
    assert summary["outcome"] == "completed", summary["outcome"]
    rules = counts.get("red_light", 0) + counts.get("stop_sign", 0) + counts.get("route_deviation", 0)
    assert rules == 0, summary["events"]
    assert summary["driving_score"] >= (TOWN_MIN_SCORE if scenario in TOWNS else 90.0)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", [1, 2])
def test_every_scenario_drives_safely(scenario, seed):
    result, _ = drive([f"scenario={scenario}", f"seed={seed}", *FAST], write=False)
    check_safe(result.summary, scenario)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ALL_SCENARIOS)
@pytest.mark.parametrize("seed", [3, 4, 5, 6, 7])
@pytest.mark.parametrize("ego_model", ["physics", "kinematic"])
def test_every_scenario_drives_safely_on_more_seeds(scenario, seed, ego_model):
    result, _ = drive(
        [f"scenario={scenario}", f"seed={seed}", f"sim.ego_model={ego_model}", *FAST], write=False
    )
    check_safe(result.summary, scenario)


def wall_free(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if "wall" not in k}


def test_same_seed_gives_the_same_trajectory_and_metrics():
    a, _ = drive(["scenario=cut_in", "seed=2", *FAST], write=False)
    b, _ = drive(["scenario=cut_in", "seed=2", *FAST], write=False)
    assert wall_free(a.summary) == wall_free(b.summary)
    for key in a.ticks:
        np.testing.assert_array_equal(a.ticks[key], b.ticks[key])
    c, _ = drive(["scenario=cut_in", "seed=3", *FAST], write=False)
    assert not np.array_equal(a.ticks["x_m"][:200], c.ticks["x_m"][:200])


def test_drive_writes_video_plot_and_metrics(tmp_path):
    run = tmp_path / "run"
    result, run_dir = drive(
        [
            "scenario=pedestrian_crossing",
            "seed=1",
            "scenario.duration_s=4",
            "sim.camera.width=96",
            "sim.camera.height=64",
            f"hydra.run.dir={run}",
        ]
    )
    assert run_dir == run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["scorer"] == "carla-leaderboard-2.0"
    assert metrics["outcome"] == "timeout" and metrics["route_completion"] < 100
    assert (run / "trajectory.png").stat().st_size > 1000
    import cv2

    cap = cv2.VideoCapture(str(run / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40  # 4 s at camera_hz 10
    log = np.load(run / "log.npz")
    assert log["t_s"][-1] == pytest.approx(4.0)
    assert (run / ".hydra" / "config.yaml").exists()


def test_a_collision_is_scored(tmp_path):
    """Blind perception (range 1 cm) drives into the stopped car: the score must show it."""
    result, _ = drive(
        ["scenario=static_obstacle", "seed=1", "perception.max_range_m=0.01", *FAST], write=False
    )
    s = result.summary
    assert s["infractions"]["collision_vehicle"] + s["infractions"]["collision_static"] >= 1
    assert s["driving_score"] <= 65.0

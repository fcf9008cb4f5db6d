"""Towns in the closed loop: the stack obeys a light the naive stack runs, keeps clear of cars it
hits, lets by an emergency vehicle it holds up and waits for the gap it pulls out into; runs are
deterministic, the signals reach ground-truth perception, the Gymnasium env runs on a town."""

import warnings

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import sim  # noqa: F401  (registers bulletdrive/Drive-v0)
from sim.app.drive import drive

FAST = ["sim.camera.enabled=false", "video=false", "plot=false"]
# From the south arm of conf/town/crossing.yaml straight across: its light (phase 1, north-south)
# is red for the first 18 s, and the ego reaches the line after ~4 s.
RED_ARRIVAL = """
name: red_arrival
duration_s: 60
town:
  map: crossing
  route: {street: 3, start_from: 4, turns: [straight], goal_m: 60}
ego: {s_m: 100, speed_mps: 10, target_speed_mps: 14}
"""


def red_arrival(tmp_path, *overrides):
    (tmp_path / "scenario").mkdir(exist_ok=True)
    (tmp_path / "scenario" / "red_arrival.yaml").write_text(RED_ARRIVAL)
    args = ["scenario=red_arrival", "seed=1", f"hydra.searchpath=[file://{tmp_path}]", *FAST, *overrides]
    result, _ = drive(args, write=False)
    return result


def kinds(result) -> dict[str, float]:
    return {e["kind"]: e["t_s"] for e in result.summary["events"]}


def test_the_stack_waits_for_green_where_the_naive_stack_runs_the_red(tmp_path):
    full = red_arrival(tmp_path)
    assert "red_light" not in kinds(full) and full.summary["outcome"] == "completed"
    t = full.ticks["t_s"]
    crossed = t[np.argmax(full.ticks["s_m"] > 143.0 - 4.0)]  # its front at the stop line
    assert crossed >= 18.0  # not before its light turned green
    naive = red_arrival(tmp_path, "decision=naive")
    assert kinds(naive)["red_light"] < 18.0
    assert naive.summary["driving_score"] < full.summary["driving_score"]


def test_the_stack_keeps_clear_of_invading_cars_the_naive_stack_hits():
    """InvadingTurn: oncoming cars that keep their way cut 0.5-1 m into the ego's lane."""
    full, _ = drive(["scenario=InvadingTurn", "seed=1", *FAST], write=False)
    naive, _ = drive(["scenario=InvadingTurn", "seed=1", "decision=naive", *FAST], write=False)
    assert "collision_vehicle" not in kinds(full) and full.summary["outcome"] == "completed"
    assert "collision_vehicle" in kinds(naive)
    assert full.ticks["d_m"].min() < -2.3  # it moved over to the right of its lane centre (-1.75 m)


def test_the_stack_lets_an_emergency_vehicle_by_the_naive_stack_holds_up():
    """YieldToEmergencyVehicle: an ambulance comes up from behind in the ego's lane."""
    full, _ = drive(["scenario=YieldToEmergencyVehicle", "seed=3", *FAST], write=False)
    naive, _ = drive(["scenario=YieldToEmergencyVehicle", "seed=3", "decision=naive", *FAST], write=False)
    assert "yield_emergency_vehicle" not in kinds(full) and full.summary["outcome"] == "completed"
    assert full.ticks["d_m"].max() > -2.5  # it moved into the left lane of its direction (-1.75 m)
    assert "yield_emergency_vehicle" in kinds(naive)
    assert naive.summary["driving_score"] < full.summary["driving_score"]


def test_the_stack_waits_for_a_gap_to_leave_its_parking_spot_where_the_naive_stack_pulls_out():
    """ParkingExit: the first car coming from behind keeps its right of way."""
    full, _ = drive(["scenario=ParkingExit", "seed=12", *FAST], write=False)
    naive, _ = drive(["scenario=ParkingExit", "seed=12", "decision=naive", *FAST], write=False)
    assert "collision_vehicle" not in kinds(full) and full.summary["outcome"] == "completed"
    assert "collision_vehicle" in kinds(naive)


def test_a_town_run_is_deterministic():
    a, _ = drive(["scenario=T_Junction", "seed=4", *FAST], write=False)
    b, _ = drive(["scenario=T_Junction", "seed=4", *FAST], write=False)
    wall = {k for k in a.summary if "wall" in k}
    assert {k: v for k, v in a.summary.items() if k not in wall} == {
        k: v for k, v in b.summary.items() if k not in wall
    }
    for key in a.ticks:
        np.testing.assert_array_equal(a.ticks[key], b.ticks[key])


def test_drive_env_passes_check_env_on_a_town():
    env = gym.make(
        "bulletdrive/Drive-v0",
        scenario="SignalizedJunctionLeftTurn",
        overrides=["sim.camera.width=64", "sim.camera.height=48"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=2)
    assert obs["camera"].shape == (48, 64, 3) and obs["camera"].std() > 5  # the town is drawn
    env.close()

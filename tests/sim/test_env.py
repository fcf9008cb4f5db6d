"""The Gymnasium env: Gymnasium's own checker, vector envs, determinism, bad actions."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim  # noqa: F401  (registers bulletdrive/Drive-v0)

SMALL = ["sim.camera.width=64", "sim.camera.height=48"]


def make(**kw):
    return gym.make("bulletdrive/Drive-v0", overrides=SMALL, **kw)


def test_default_env_passes_check_env_without_warnings():
    env = gym.make("bulletdrive/Drive-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from the checker is a failure here
        check_env(env.unwrapped)
    env.close()


def test_same_seed_same_episode_and_progress_reward():
    env = make(scenario="follow_lead")
    obs_a, _ = env.reset(seed=5)
    rewards = [env.step(np.array([0.0, 0.3], np.float32))[1] for _ in range(20)]
    obs_b, _ = env.reset(seed=5)
    np.testing.assert_array_equal(obs_a["ego"], obs_b["ego"])
    np.testing.assert_array_equal(obs_a["cameras"], obs_b["cameras"])
    assert sum(rewards) > 0  # moving along the route earns reward
    env.close()


def test_vector_env_steps_in_lockstep():
    envs = gym.vector.SyncVectorEnv([lambda: make(scenario="cut_in"), lambda: make(scenario="follow_lead")])
    obs, _ = envs.reset(seed=[1, 2])
    assert obs["cameras"].shape == (2, 6, 48, 64, 3)  # every camera of the surround rig, per env
    assert obs["camera"].shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(obs["camera"], obs["cameras"][:, 0])
    assert not np.array_equal(obs["cameras"][0, 0], obs["cameras"][0, 5])  # front and rear differ
    for _ in range(5):
        obs, rew, term, trunc, _ = envs.step(np.zeros((2, 2), np.float32))
    assert obs["ego"].shape == (2, 7) and rew.shape == (2,)
    envs.close()


def test_a_rig_of_one_camera_observes_one():
    env = gym.make("bulletdrive/Drive-v0", overrides=[*SMALL, "sim/rig=front"])
    obs, _ = env.reset(seed=0)
    assert obs["cameras"].shape == (1, 48, 64, 3)
    env.close()


def test_nan_action_is_rejected_before_the_sim():
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0], np.float32))
    env.close()

"""The PyBullet world, scenarios, closed loop and metrics. Importing it registers the Gymnasium
env `bulletdrive/Drive-v0` (see sim/env.py)."""

from gymnasium.envs.registration import register, registry

if "bulletdrive/Drive-v0" not in registry:
    register(id="bulletdrive/Drive-v0", entry_point="sim.env:DriveEnv")

"""Hydra at the edge: compose a config from conf/, validate it, and turn it into plain objects.

Library code never sees a DictConfig: `load` returns one for the entry point, which hands plain
dataclasses and instantiated parts (perceiver, planner, controller) to the library.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from perception.errors import InputError
from sim.config import SimConfig
from sim.scenario.parse import parse_scenario
from sim.scenario.spec import ScenarioError, ScenarioSpec

CONFIG_MODULE = "conf"


class ConfigError(InputError):
    """A config the user gave that cannot be used. The message is one line naming the key."""


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def load(config_name: str, overrides: list[str]) -> tuple[DictConfig, Path]:
    """Compose `conf/<config_name>.yaml` with Hydra overrides; return it and the run folder."""
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as err:
        match = re.search(r"Could not find '([^/']+)/([^']+)'", str(err))
        if match:
            group, name = match.groups()
            options = ", ".join(available(group))
            raise ConfigError(f"unknown {group} '{name}'; available: {options}") from None
        raise ConfigError(_first_line(err)) from None
    except (HydraException, OmegaConfBaseException) as err:
        cause = f": {_first_line(err.__cause__)}" if err.__cause__ is not None else ""
        raise ConfigError(_first_line(err).rstrip(".") + cause) from None
    except yaml.YAMLError as err:
        chosen = [o for o in overrides if "=" in o and "." not in o.split("=")[0]]
        where = f" (config chosen by {', '.join(chosen)})" if chosen else ""
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or _first_line(err)
        raise ConfigError(f"malformed YAML{where}{at}: {problem}") from None
    HydraConfig.instance().set_config(cfg)
    try:
        run_dir = Path(cfg.hydra.run.dir)
    except OmegaConfBaseException as err:
        raise ConfigError(f"hydra.run.dir: {_first_line(err)}") from None
    return cfg, run_dir


def available(group: str) -> list[str]:
    """Names of the options of a config group (e.g. the scenarios), sorted."""
    from importlib.resources import files

    folder = files(CONFIG_MODULE).joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def plain(cfg: DictConfig, key: str) -> Any:
    """A resolved plain-Python copy of cfg[key] (dicts and lists)."""
    try:
        return OmegaConf.to_container(cfg[key], resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {_first_line(err)}") from None


def check_keys(cfg: DictConfig, allowed: set[str]) -> None:
    """Top-level keys must be known (struct mode catches `key=`, this catches `+key=`)."""
    unknown = sorted(set(cfg.keys()) - allowed - {"hydra"})
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'")


def seed_of(cfg: DictConfig) -> int:
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} is out of range: an integer >= 0")
    return seed


def sim_config(cfg: DictConfig) -> SimConfig:
    """Validate cfg.sim against the SimConfig schema: unknown keys, types and ranges."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SimConfig), cfg.sim)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        text = str(err)
        key = re.search(r"full_key: (\S+)", text)
        where = f"sim.{key.group(1)}" if key else "sim"
        missing = re.search(r"Key '([^']+)' not in", text)
        if missing:
            raise ConfigError(
                f"unknown config key '{where}' ('{missing.group(1)}' is not a sim setting)"
            ) from None
        raise ConfigError(f"{where}: {_first_line(err)}") from None
    except ValueError as err:
        raise ConfigError(_first_line(err)) from None


def scenario_spec(cfg: DictConfig, rng: np.random.Generator) -> ScenarioSpec:
    try:
        return parse_scenario(plain(cfg, "scenario"), rng)
    except ScenarioError as err:
        raise ConfigError(_first_line(err)) from None


def build(cfg: DictConfig, group: str, **kwargs) -> Any:
    """Instantiate a swappable part (`_target_`) of a config group with extra plain arguments."""
    try:
        return instantiate(cfg[group], **kwargs, _convert_="all")
    except (HydraException, OmegaConfBaseException, TypeError, ValueError) as err:
        text = str(err)
        key = re.search(r"unexpected keyword argument '([^']+)'", text)
        if key:
            raise ConfigError(f"unknown config key '{group}.{key.group(1)}'") from None
        # Hydra wraps the constructor's error: report the constructor's own message.
        cause = err
        while isinstance(cause, HydraException) and cause.__cause__ is not None:
            cause = cause.__cause__
        raise ConfigError(f"{group}: {_first_line(cause)}") from None


def build_stack(cfg: DictConfig, sim_cfg: SimConfig) -> tuple[Any, Any, Any]:
    """The perceiver, planner and controller of a drive config, given the vehicle they drive."""
    v = sim_cfg.vehicle
    perceiver = build(cfg, "perception")
    planner = build(
        cfg, "decision", ego_length_m=v.length_m, ego_width_m=v.width_m, max_decel_mps2=v.max_decel_mps2
    )
    controller = build(
        cfg,
        "control",
        wheelbase_m=v.wheelbase_m,
        max_steer_rad=v.max_steer_rad,
        max_accel_mps2=v.max_accel_mps2,
        max_decel_mps2=v.max_decel_mps2,
    )
    return perceiver, planner, controller

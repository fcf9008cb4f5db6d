"""Hydra at the edge: compose a command's config from conf/, check it against its schema
(sim/app/schemas.py), and turn it into plain objects.

Library code never sees a DictConfig: an entry point hands plain dataclasses and instantiated parts
(perceiver, planner, controller) to the library. Every error here is a ConfigError whose message is
one line naming the key, read from the attributes of Hydra's and OmegaConf's exceptions.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from perception.errors import InputError
from sim.app import schemas
from sim.config import SimConfig
from sim.scenario.parse import parse_scenario
from sim.scenario.spec import ScenarioError, ScenarioSpec

CONFIG_MODULE = "conf"
HYDRA_KEYS = {"_target_", "_convert_", "_recursive_", "_partial_", "_args_"}


class ConfigError(InputError):
    """A config the user gave that cannot be used. The message is one line naming the key."""


@dataclass(frozen=True)
class Loaded:
    """A composed and checked command config."""

    cfg: DictConfig  # with the hydra node: for instantiate and hydra.runtime.choices
    values: Any  # the command's schema dataclass (sim/app/schemas.py), checked
    run_dir: Path  # hydra.run.dir


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# ---------------------------------------------------------------------------- composing
def load_checked(config_name: str, overrides: list[str]) -> Loaded:
    """Compose `conf/<config_name>.yaml` with Hydra overrides and check it against its schema:
    types (booleans must be booleans), unknown keys (also those added with `+`), ranges."""
    schema = schemas.SCHEMAS[config_name]
    _check_override_types(schema, overrides)
    with _hydra():
        cfg = _compose(config_name, overrides, schema)
    HydraConfig.instance().set_config(cfg)
    try:
        run_dir = Path(cfg.hydra.run.dir)
    except OmegaConfBaseException as err:
        raise ConfigError(f"hydra.run.dir: {_first_line(err)}") from None
    return Loaded(cfg, to_schema(cfg, schema), run_dir)


def load(config_name: str, overrides: list[str]) -> tuple[DictConfig, Path]:
    """`load_checked`, as the DictConfig and the run folder."""
    loaded = load_checked(config_name, overrides)
    return loaded.cfg, loaded.run_dir


@contextlib.contextmanager
def _hydra():
    schemas.register()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        yield


def _compose(config_name: str, overrides: list[str], schema: type) -> DictConfig:
    try:
        return compose(config_name, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as err:
        group, _, name = (err.missing_cfg_file or "").rpartition("/")
        if not group or err.options is None:
            raise ConfigError(_first_line(err)) from None
        raise ConfigError(f"unknown {group} '{name}'; available: {', '.join(sorted(err.options))}") from None
    except yaml.YAMLError as err:
        chosen = [o for o in overrides if "=" in o and "." not in o.split("=")[0]]
        where = f" (config chosen by {', '.join(chosen)})" if chosen else ""
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or _first_line(err)
        raise ConfigError(f"malformed YAML{where}{at}: {problem}") from None
    except OverrideParseException as err:
        raise ConfigError(f"cannot read the override '{err.override}': {_first_line(err)}") from None
    except (HydraException, OmegaConfBaseException) as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, OmegaConfBaseException):
            cause = cause.__cause__
        if cause is not None:
            raise ConfigError(_explain(cause, schema)) from None
        raise ConfigError(_first_line(err).rstrip(".")) from None


def to_schema(cfg: DictConfig, schema: type) -> Any:
    """The config (without its hydra node) as an instance of `schema`: every key known, every value
    of its type and in its range."""
    try:
        data = OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True
        )
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), data))
    except OmegaConfBaseException as err:
        raise ConfigError(_explain(err, schema)) from None


def _explain(err: OmegaConfBaseException, schema: type) -> str:
    """One line from an OmegaConf error's attributes: the key, the value and what is allowed."""
    key = err.full_key or ""
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)) and key:
        parent, _, _ = key.rpartition(".")
        node = field_type(schema, parent) if parent else schema
        if is_dataclass(node):
            return f"unknown config key '{key}'; {parent or 'the config'} takes: {', '.join(f.name for f in fields(node))}"
        return f"unknown config key '{key}' (to add a key this config lacks: '+{key}=VALUE')"
    if isinstance(err, MissingMandatoryValue) and key:
        return f"{key} is missing"
    if isinstance(err, ValidationError) and key:
        return f"{key}={err.value!r}: expected {_describe(field_type(schema, key))}"
    return f"{key}: {_first_line(err)}" if key else _first_line(err)


def field_type(schema: type, dotted: str) -> Any:
    """The declared type of a dotted key in a schema dataclass, `X | None` read as X; None where the
    schema has no such key or is free-form there (`dict[str, Any]`, `Any`)."""
    hint: Any = schema
    for part in dotted.split("."):
        if not is_dataclass(hint):
            return None
        hint = _unwrap_optional(typing.get_type_hints(hint).get(part))
        if hint is None:
            return None
    return hint


def _unwrap_optional(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _describe(hint: Any) -> str:
    words = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
    if hint in words:
        return words[hint]
    origin = typing.get_origin(hint)
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if origin is dict or is_dataclass(hint):
        return "a mapping"
    return "another value"


def _check_override_types(schema: type, overrides: list[str]) -> None:
    """Booleans must be written as booleans: OmegaConf would read `video=off` as false (and any
    number as a boolean); Hydra's override parser gives the value as typed."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return  # compose reports it
    for o in parsed:
        if (
            not o.is_delete()
            and field_type(schema, o.key_or_group) is bool
            and not isinstance(o.value(), bool)
        ):
            raise ConfigError(f"{o.input_line}: expected true or false")


def override_keys(overrides: list[str]) -> list[tuple[str, str]]:
    """(key or group, the override as written) of each override; ConfigError if one is unreadable."""
    try:
        return [(o.key_or_group, o.input_line) for o in OverridesParser.create().parse_overrides(overrides)]
    except OverrideParseException as err:
        raise ConfigError(f"cannot read the override '{err.override}': {_first_line(err)}") from None


def searchpath_overrides(overrides: list[str]) -> list[str]:
    """The `hydra.searchpath=[...]` overrides among `overrides`, as written (to pass them on)."""
    return [line for key, line in override_keys(overrides) if key == "hydra.searchpath"]


def available(group: str, searchpath: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Names of the options of a config group (e.g. the scenarios), sorted; with `searchpath`
    (`hydra.searchpath=[...]` overrides) those of the user's config folders too."""
    with _hydra():
        try:
            loader = GlobalHydra.instance().config_loader()
            return sorted(loader.get_group_options(group, overrides=list(searchpath)))
        except HydraException as err:
            raise ConfigError(_first_line(err)) from None


def group_configs(group: str, searchpath: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Every option of a config group as a plain mapping (e.g. the scenarios, for their
    descriptions), the user's too with `searchpath`; an option that does not compose is its error."""
    configs: dict[str, Any] = {}
    with _hydra():
        loader = GlobalHydra.instance().config_loader()
        for name in sorted(loader.get_group_options(group, overrides=list(searchpath))):
            try:
                cfg = compose(overrides=[*searchpath, f"+{group}={name}"])
                configs[name] = OmegaConf.to_container(cfg[group], resolve=False)
            except (yaml.YAMLError, HydraException, OmegaConfBaseException) as err:
                configs[name] = f"does not compose: {_first_line(err)}"
    return configs


def check_known(group: str, names: list[str], searchpath, where: str) -> None:
    """Each name must be an option of the config group: ConfigError listing the options if not."""
    options = available(group, searchpath)
    for name in names:
        if name not in options:
            raise ConfigError(f"unknown {group} '{name}'{where}; available: {', '.join(options)}")


def check_out_dir(path: str | Path, key: str) -> None:
    """The folder a command writes into must be a folder, or creatable as one, and writable. Checks
    only: creates nothing, so that bad input leaves nothing behind."""
    target = Path(path).absolute()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{key}={path}: is a file, not a folder")
    folder = target
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{key}={path}: lies under the file {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path}: {folder} is not writable")


def check_device(key: str, device: str) -> None:
    """A torch device name: auto, cpu, or cuda where CUDA is available (torch imported only then)."""
    if device not in schemas.DEVICES:
        raise ConfigError(f"{key}={device!r} is not one of {', '.join(schemas.DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{key}=cuda: no CUDA device is available here; use auto or cpu")


def plain(cfg: DictConfig, key: str) -> Any:
    """A resolved plain-Python copy of cfg[key] (dicts and lists)."""
    try:
        return OmegaConf.to_container(cfg[key], resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {_first_line(err)}") from None


# ---------------------------------------------------------------------------- building
def sim_config(cfg: DictConfig) -> SimConfig:
    """The checked SimConfig of a composed drive config."""
    try:
        return OmegaConf.to_object(cfg.sim)
    except OmegaConfBaseException as err:
        raise ConfigError(_explain(err, schemas.DriveConfig)) from None


def scenario_spec(cfg: DictConfig, rng: np.random.Generator) -> ScenarioSpec:
    try:
        return parse_scenario(plain(cfg, "scenario"), rng)
    except ScenarioError as err:
        raise ConfigError(_first_line(err)) from None


def check_arguments(key: str, target: Any, names: set[str]) -> None:
    """Every name must be a parameter of `target` (a class or function) unless it takes **kwargs."""
    params = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(names - set(known) - HYDRA_KEYS)
    if unknown:
        raise ConfigError(f"unknown config key '{key}.{unknown[0]}'; {key} takes: {', '.join(known)}")


def build(cfg: DictConfig, group: str, **kwargs) -> Any:
    """Instantiate a swappable part (`_target_`) of a config group with extra plain arguments. Its
    keys are checked against the target's parameters first; its own checks give the rest."""
    node = cfg[group]
    try:
        target = get_object(str(node["_target_"]))
    except (HydraException, OmegaConfBaseException, ImportError, AttributeError) as err:
        raise ConfigError(f"{group}._target_: {_first_line(err)}") from None
    check_arguments(group, target, set(node.keys()))
    try:
        return instantiate(node, **kwargs, _convert_="all")
    except (HydraException, OmegaConfBaseException, TypeError, ValueError) as err:
        cause: BaseException = err  # Hydra wraps the constructor's error: report the constructor's own
        while isinstance(cause, HydraException) and cause.__cause__ is not None:
            cause = cause.__cause__
        raise ConfigError(f"{group}: {_first_line(cause)}") from None


def build_stack(cfg: DictConfig, sim_cfg: SimConfig) -> tuple[Any, Any, Any]:
    """The perceiver, planner and controller of a drive config, given the vehicle they drive."""
    v = sim_cfg.vehicle
    if "device" in cfg.perception:
        check_device("perception.device", str(cfg.perception.device))
    if cfg.perception.get("visibility") == "rig":  # the truth limited to what the rig's cameras see
        perceiver = build(cfg, "perception", views=tuple(sim_cfg.camera_views()))
    else:
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

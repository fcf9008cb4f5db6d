"""`bulletdrive scenarios`: the scenarios one can drive, one line each, the user's own too
(`hydra.searchpath=[file://MY_CONF]` with MY_CONF/scenario/*.yaml). Each is checked against the
scenario schema (seed 0); a scenario that fails is listed with its error. Imports no torch."""

from __future__ import annotations

import numpy as np

from perception.errors import InputError
from sim.app import config as C
from sim.scenario.parse import parse_scenario

HELP = """usage: bulletdrive scenarios [hydra.searchpath=[file://MY_CONF]]

List the scenarios (conf/scenario, and MY_CONF/scenario on the search path), one line each:
name and description, or the first error of a scenario that does not pass the schema."""


def run(args: list[str]) -> int:
    searchpath = C.searchpath_overrides(args)
    other = [a for a in args if a not in searchpath]
    if other:
        raise C.ConfigError(f"scenarios takes only hydra.searchpath=[...], not '{other[0]}'")
    invalid = 0
    for name, data in C.group_configs("scenario", searchpath).items():
        try:
            if isinstance(data, str):  # the YAML itself is broken
                raise C.ConfigError(data)
            parse_scenario(data, np.random.default_rng(0))
            print(f"{name:22s} {data.get('description', '')}")
        except InputError as err:
            invalid += 1
            print(f"{name:22s} INVALID: {err}")
    return 1 if invalid else 0

"""Fixtures shared by the tests of every package."""

from importlib.resources import files

import pytest
import yaml


@pytest.fixture(scope="session")
def conf_values():
    """conf_values("decision/default.yaml") -> that file of conf/ as plain Python values: for tests
    that build a part from the values the commands use, rather than repeat them."""

    def load(path: str) -> dict:
        return yaml.safe_load(files("conf").joinpath(path).read_text())

    return load

"""The field bounds of the config schemas (sim/config.py) and the command schemas (sim/app/schemas.py)."""

import math
from dataclasses import fields

import pytest

from sim.app import schemas
from sim.config import Bounds, SchemaError, SimConfig, bounds_of


@pytest.mark.parametrize(
    "bounds, inside, outside, text",
    [
        (
            Bounds(0, 10, low_open=True),
            [1e-9, 10],
            [0, 10.5, -1, math.nan, math.inf, True, "5"],
            "in (0, 10]",
        ),
        (Bounds(16, 1920), [16, 1920], [15, 1921], "in [16, 1920]"),
        (Bounds(0), [0, 1e9], [-1e-9], ">= 0"),
        (Bounds(0, 2**31 - 1), [2**31 - 1], [2**31], "in [0, 2147483647]"),
        (Bounds(choices=("a", "b")), ["a"], ["c", None], "one of a, b"),
        (
            Bounds(identifier=True),
            ["cut_in", "my-suite2"],
            ["../x", "a b", "", "a/b", 3],
            "letters, digits, _ and - only",
        ),
    ],
)
def test_bounds_admit_what_they_say(bounds, inside, outside, text):
    assert all(bounds.admits(v) for v in inside)
    assert not any(bounds.admits(v) for v in outside)
    assert str(bounds) == text


def test_every_size_rate_duration_and_count_has_an_upper_bound():
    """Nothing accepted may exhaust memory or run for ever: numeric fields of these schemas are bounded above."""
    for schema in (SimConfig, *schemas.SCHEMAS.values()):
        for f in fields(schema):
            if f.type in ("int", "float"):
                bounds = bounds_of(f)
                assert bounds is not None and bounds.high is not None, f"{schema.__name__}.{f.name}"


def test_a_schema_names_the_key_out_of_range():
    with pytest.raises(SchemaError, match=r"^threads=0 is out of range: in \[1, 256\]$"):
        schemas.DetectEvalConfig("shipped", "d", "val", "o", 16, 0.1, "auto", 0, 0.35, 50, "torch")
    with pytest.raises(SchemaError, match=r"^split='test' is not one of train, val$"):
        schemas.DetectEvalConfig("shipped", "d", "test", "o", 16, 0.1, "auto", 1, 0.35, 50, "torch")

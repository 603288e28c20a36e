"""Fuzzed command-line values: --grid, --param NAME=VALUE, sweep values and seeds end in a valid
value or one clear error (exit status 2), never another exception or a gigantic allocation."""

import argparse
import contextlib
import io
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdeforge.cli import main
from pdeforge.cli.options import MAX_CELLS, UsageError, parse_grid, parse_params
from pdeforge.cli.sweep import parse_param_values
from pdeforge.ensembles.values import MAX_RANGE, SweepSpecError, parse_seeds

FUZZ = settings(derandomize=True, max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

PIECES = ["0", "1", "2", "7", "64", "x", "X", ":", ",", "=", "-", "+", ".", "e", "E", "9" * 30, "9" * 5000, "nan",
          "inf", "-inf", "1e999", "1_000", "0x10", " ", "\t", "５", "٣", "𝟠", "ü", "__class__", "F", "k", "\x00",
          "1e9", "1e12", "0:1e12:3", "0:10000000000", "1:2:1000000001"]

option_text = st.one_of(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), st.text(max_size=60))


@FUZZ
@given(option_text)
def test_grid_is_sizes_in_range_or_a_type_error(text):
    try:
        value = parse_grid(text)
    except argparse.ArgumentTypeError as exc:
        assert "grid must look like" in str(exc)
        return
    sizes = value if isinstance(value, tuple) else (value,)
    assert 1 <= len(sizes) <= 3 and all(2 <= n <= MAX_CELLS for n in sizes)


@FUZZ
@given(st.lists(option_text, max_size=4))
def test_params_are_finite_numbers_or_one_usage_error(items):
    try:
        params = parse_params(items)
    except UsageError as exc:
        assert str(exc).startswith("--param") and "\n" not in str(exc)
        return
    assert all(isinstance(v, float) and math.isfinite(v) for v in params.values())


@FUZZ
@given(st.lists(option_text, max_size=3), option_text)
def test_sweep_values_and_seeds_are_bounded_or_one_spec_error(items, seeds):
    try:
        values = parse_param_values(items)
    except SweepSpecError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(0 < len(v) <= MAX_RANGE * max(1, len(items)) and all(map(math.isfinite, v)) for v in values.values())
    try:
        parsed = parse_seeds(seeds)
    except SweepSpecError as exc:
        assert str(exc).startswith(("--seeds", "seeds")) and "\n" not in str(exc)
    else:
        assert all(isinstance(s, int) and s >= 0 for s in parsed) and len(set(parsed)) == len(parsed)


@settings(derandomize=True, max_examples=60, deadline=None, database=None)
@given(option_text, option_text, option_text)
def test_the_command_exits_2_on_any_bad_value(grid, param, t_end):
    # an unknown model: every combination must stop at the options or the model with exit status 2
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(["run", "no-such-model", "--grid", grid, "--param", param, "--t-end", t_end])
    err = stderr.getvalue()
    assert status == 2 and err.startswith("pdeforge: error:") and err.count("\n") == 1


@pytest.mark.parametrize("text", ["0:1:1000000001", "0:1:10000000000000"])
def test_a_huge_range_is_refused_before_it_is_allocated(text):
    with pytest.raises(SweepSpecError):
        parse_param_values([f"F={text}"])
    with pytest.raises(SweepSpecError, match="more than"):
        parse_seeds("0:10000000000")

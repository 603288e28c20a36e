"""The value syntax of sweeps: parameter lists, linspace ranges and seed ranges.

Parameter values (``--param NAME=VALUES``): comma-separated items, each either a number or
``start:stop:count`` (``count`` evenly spaced values from ``start`` to ``stop``, both ends
included, as ``numpy.linspace``, rounded to 12 significant digits). ``F=0.02,0.03`` is two values, ``k=0.05:0.07:5`` is five,
``F=0.01,0.02:0.04:3`` is four.

Seeds (``--seeds SEEDS``): comma-separated items, each either a non-negative integer or
``start:stop`` (the integers ``start, start+1, ..., stop-1``, as Python's ``range``). ``0:100``
is the hundred seeds 0..99, ``1,5,9`` three seeds, ``0:3,10`` four.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from pdeforge.errors import PDEForgeError

#: Most values one range (``start:stop:count``, ``start:stop``) may expand to: a sweep is run member by
#: member, and a mistyped count (``0:1:1e9``) must be an error, not an allocation of gigabytes.
MAX_RANGE = 1_000_000


class SweepSpecError(PDEForgeError):
    """A sweep's parameter values, seeds, store or options are invalid."""


def parse_values(name: str, text: str) -> list[float]:
    """Parse one parameter's values, e.g. ``"0.02,0.03"`` or ``"0.05:0.07:5"``.

    Args:
        name: the parameter name (for error messages).
        text: comma-separated numbers and ``start:stop:count`` ranges.

    Returns:
        The values in the order written.

    Raises:
        SweepSpecError: empty items, non-numbers, non-finite values, counts < 1, repeats.
    """
    values: list[float] = []
    items = [s.strip() for s in str(text).split(",")]
    if not any(items):
        raise SweepSpecError(f"--param {name}: no values (write e.g. {name}=0.02,0.03 or {name}=0.05:0.07:5)")
    for item in items:
        if not item:
            raise SweepSpecError(f"--param {name}: empty item in {text!r} (items are separated by single commas)")
        parts = item.split(":")
        if len(parts) == 1:
            values.append(_number(name, parts[0], item))
        elif len(parts) == 3:
            start, stop = _number(name, parts[0], item), _number(name, parts[1], item)
            try:
                count = int(parts[2])
            except ValueError:
                raise SweepSpecError(
                    f"--param {name}: in {item!r} the count {parts[2]!r} is not a whole number (start:stop:count)"
                ) from None
            if count < 1:
                raise SweepSpecError(f"--param {name}: in {item!r} the count must be at least 1")
            if count > MAX_RANGE:
                raise SweepSpecError(f"--param {name}: in {item!r} the count is more than {MAX_RANGE}")
            # rounded to 12 significant digits, so that 0.05:0.07:3 gives the 0.06 one means
            # (linspace's 0.060000000000000005 would not match ds.k == 0.06)
            values.extend(float(f"{v:.12g}") for v in np.linspace(start, stop, count))
        else:
            raise SweepSpecError(
                f"--param {name}: {item!r} is neither a number nor start:stop:count (e.g. 0.05:0.07:5)"
            )
    return check_values(name, values)


def _number(name: str, text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SweepSpecError(f"--param {name}: {text!r} in {item!r} is not a number") from None
    if not math.isfinite(value):
        raise SweepSpecError(f"--param {name}: {text!r} in {item!r} is not finite")
    return value


def check_values(name: str, values: Iterable[float]) -> list[float]:
    """Validate a list of parameter values: finite numbers, at least one, no repeats."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise SweepSpecError(f"params[{name!r}]: expected numbers, got {values!r}") from None
    if not out:
        raise SweepSpecError(f"params[{name!r}]: no values")
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise SweepSpecError(f"params[{name!r}]: value {bad[0]!r} is not finite")
    if len(set(out)) != len(out):
        repeated = next(v for v in out if out.count(v) > 1)
        raise SweepSpecError(f"params[{name!r}]: value {repeated!r} appears more than once (each member would run twice)")
    return out


def parse_seeds(text: str) -> list[int]:
    """Parse seeds, e.g. ``"0:100"`` (0..99), ``"1,5,9"`` or ``"0:3,10"``.

    Raises:
        SweepSpecError: negative or non-integer seeds, empty ranges, repeats.
    """
    seeds: list[int] = []
    for item in (s.strip() for s in str(text).split(",")):
        parts = item.split(":")
        try:
            bounds = [int(p) for p in parts]
        except ValueError:
            bounds = []
        if len(bounds) not in (1, 2) or len(bounds) != len(parts):
            raise SweepSpecError(
                f"--seeds: {item!r} is neither a whole number nor start:stop (e.g. --seeds 0:100 or --seeds 1,5,9)"
            )
        if len(bounds) == 1:
            seeds.append(bounds[0])
        elif bounds[1] <= bounds[0]:
            raise SweepSpecError(f"--seeds: range {item!r} is empty (start:stop means start..stop-1)")
        elif bounds[1] - bounds[0] > MAX_RANGE:
            raise SweepSpecError(f"--seeds: range {item!r} has more than {MAX_RANGE} seeds")
        else:
            seeds.extend(range(bounds[0], bounds[1]))
    return check_seeds(seeds)


def check_seeds(seeds: Iterable[int]) -> list[int]:
    """Validate seeds: non-negative integers, at least one, no repeats."""
    out: list[int] = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise SweepSpecError(f"seeds: expected whole numbers, got {s!r}")
        if s < 0:
            raise SweepSpecError(f"seeds: {int(s)} is negative (seeds are non-negative integers)")
        out.append(int(s))
    if not out:
        raise SweepSpecError("seeds: no seeds given")
    if len(set(out)) != len(out):
        raise SweepSpecError(f"seeds: {next(s for s in out if out.count(s) > 1)} appears more than once")
    return out


def normalize_params(params: Mapping[str, object] | None) -> dict[str, list[float]]:
    """``{"F": [0.02, 0.03], "k": "0.05:0.07:5", "Du": 2e-5}`` -> name -> list of floats.

    Each value may be a sequence of numbers, a single number, or a string in the value syntax.
    """
    out: dict[str, list[float]] = {}
    for name, spec in (params or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SweepSpecError(f"params: {name!r} is not a parameter name")
        if isinstance(spec, str):
            out[name] = parse_values(name, spec)
        elif isinstance(spec, (int, float, np.number)) and not isinstance(spec, bool):
            out[name] = check_values(name, [spec])
        elif isinstance(spec, (Sequence, np.ndarray, range)):
            out[name] = check_values(name, list(np.asarray(spec, dtype=object).ravel()) if isinstance(spec, np.ndarray) else spec)
        else:
            raise SweepSpecError(f"params[{name!r}]: expected numbers, a number or a value string, got {type(spec).__name__}")
    return out

"""Command-line option types and the options every simulation command shares (run, sweep).

Each bad value becomes one clear line (``UsageError`` or an argparse type error) and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

EXIT_USAGE = 2
EXIT_BLOWUP = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input (printed as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def _positive(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{name} must be a positive number, got {text!r}")
        return value

    return parse


#: Largest cells per axis (the generated kernels index with 32-bit integers).
MAX_CELLS = 2**31 - 1


def parse_grid(text: str) -> tuple[int, ...] | int:
    """``"256"`` -> 256, ``"64x32"`` -> (64, 32)."""
    parts = text.lower().split("x")
    try:
        sizes = tuple(int(p) for p in parts) if len(parts) <= 3 else ()
    except ValueError:
        sizes = ()
    if not sizes:
        raise argparse.ArgumentTypeError(f"grid must look like N, NxM or NxMxK, got {text[:40]!r}") from None
    if any(n < 2 or n > MAX_CELLS for n in sizes):
        raise argparse.ArgumentTypeError(
            f"grid must look like N, NxM or NxMxK with sizes from 2 to {MAX_CELLS}, got {text[:40]!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def parse_params(items: Sequence[str] | None) -> dict[str, float]:
    """``["F=0.04", "k=0.06"]`` -> ``{"F": 0.04, "k": 0.06}``."""
    params: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param expects NAME=VALUE, got {item!r}")
        try:
            v = float(value)
        except ValueError:
            raise UsageError(f"--param {name.strip()}: value {value!r} is not a number") from None
        if not math.isfinite(v):
            raise UsageError(f"--param {name.strip()}: value {value!r} is not finite")
        params[name.strip()] = v
    return params


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {text!r}")
    return value


def add_simulation_options(p: argparse.ArgumentParser, torch_options: bool = True) -> None:
    """The options every command that runs a model shares (run, sweep): grid, time, method, scheme.

    ``torch_options`` adds ``--device`` and ``--dtype`` (the torch and spectral kernels).
    """
    from pdeforge.codegen.build import TARGETS
    from pdeforge.codegen.spectral.compile import SPECTRAL_TARGETS
    from pdeforge.discretize.finite_volume import SCHEMES
    from pdeforge.solvers.methods import METHODS

    p.add_argument("--grid", type=parse_grid, help="cells per axis: N, NxM or NxMxK")
    p.add_argument("--t-end", type=_positive("t-end"), dest="t_end")
    p.add_argument("--dt", type=_positive("dt"))
    from pdeforge.solvers.spectral.solve import SPECTRAL_METHODS

    p.add_argument("--method", choices=list(METHODS) + [m for m in SPECTRAL_METHODS if m not in METHODS])
    p.add_argument("--backend", choices=sorted(set(TARGETS) | set(SPECTRAL_TARGETS)),
                   help="kernel target (default: numba for finite differences, numpy for spectral models)")
    if torch_options:
        p.add_argument("--device", help="torch device of the torch backend (cpu, cuda, ...)")
        p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="precision of the kernels: torch, spectral, or numba with a fixed-step method")
    p.add_argument("--order", type=int, choices=(2, 4), default=2, help="accuracy order of the differences")
    p.add_argument("--scheme", choices=list(SCHEMES), help="spatial scheme (default: the model's)")
    p.add_argument("--save-every", type=_positive("save-every"), dest="save_every")

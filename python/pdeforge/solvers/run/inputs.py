"""The inputs every solver shares, checked and resolved in one place.

:func:`run_inputs` turns what a user passes to :func:`pdeforge.solve` (parameters, grid, time
span, output times, dt, output path) into checked values; :func:`check_dt_against` applies
the ``stability`` policy to a step above an estimated limit; :func:`run_attributes` are the
Dataset attributes every run records.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import dataclass

import numpy as np

from pdeforge.discretize.grid import UniformGrid, grid_of
from pdeforge.errors import SolverError, StabilityWarning, warn
from pdeforge.solvers.run.output import CONVENTIONS, check_output_path
from pdeforge.symbolic.system import PDESystem

#: Fraction of the estimated stability limit used when no dt is given.
SAFETY = 0.8
#: Default number of saved intervals when save_every is not given.
DEFAULT_FRAMES = 50
STABILITY_POLICIES = ("warn", "error", "ignore")


def time_span(t_span) -> tuple[float, float]:
    """``t_end`` or ``(t0, t_end)`` -> checked ``(t0, t1)`` with ``t0 < t1``."""
    try:
        if isinstance(t_span, (int, float)):
            t0, t1 = 0.0, float(t_span)
        else:
            t0, t1 = (float(v) for v in t_span)
    except (TypeError, ValueError):
        raise SolverError(f"t_span: expected (t0, t_end) or t_end, got {t_span!r}") from None
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 <= t0:
        raise SolverError(f"t_span: need finite t0 < t_end, got ({t0}, {t1})")
    return t0, t1


def save_times(t0: float, t1: float, save_every: float | None) -> np.ndarray:
    """Output times from ``t0`` every ``save_every`` (default: 50 intervals), ending at ``t1``."""
    if save_every is None:
        return np.linspace(t0, t1, DEFAULT_FRAMES + 1)
    save_every = float(save_every)
    if not (save_every > 0 and math.isfinite(save_every)):
        raise SolverError(f"save_every must be a positive number, got {save_every!r}")
    n = int(math.floor((t1 - t0) / save_every + 1e-9))
    times = t0 + save_every * np.arange(n + 1)
    if t1 - times[-1] > 1e-9 * max(1.0, abs(t1)):
        times = np.append(times, t1)
    else:
        times[-1] = t1
    return times


# the names the modules that used these before the split import
_time_span = time_span
_save_times = save_times


@dataclass
class RunInputs:
    """Checked inputs of one run (unpacks as ``system, grid, t0, t1, times, out_path``)."""

    system: PDESystem
    grid: UniformGrid
    t0: float
    t1: float
    times: np.ndarray
    out_path: object

    def __iter__(self):
        return iter((self.system, self.grid, self.t0, self.t1, self.times, self.out_path))


def run_inputs(system: PDESystem, grid, t_span, save_every, params, dt, out, in_memory: bool,
               stability: str = "warn") -> RunInputs:
    """Check and resolve the inputs every solver shares.

    Returns the system with ``params`` applied, the :class:`UniformGrid`, ``t0``, ``t1``, the
    output times and the checked output path (or None).
    """
    if stability not in STABILITY_POLICIES:
        raise SolverError(f"stability: 'warn', 'error' or 'ignore', got {stability!r}")
    if params:
        system = system.with_params(**params)
    grid = grid_of(system, grid)
    if grid.domain != system.domain:
        raise SolverError(f"grid: its domain {grid.domain} differs from the system's {system.domain}; build the "
                          "grid on the system's domain, or pass the number of cells (an int or one per axis)")
    t0, t1 = time_span(t_span)
    times = save_times(t0, t1, save_every)
    if dt is not None and not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise SolverError(f"dt must be a positive number, got {dt!r}")
    out_path = check_output_path(out) if out is not None else None
    if not in_memory and out_path is None:
        raise SolverError("in_memory=False needs an output file (out=...)")
    return RunInputs(system, grid, t0, t1, times, out_path)


def check_dt_against(dt: float, limit: float, stability: str, what: str, stacklevel: int = 3) -> None:
    """Apply the ``stability`` policy to a step ``dt`` above the estimated ``limit``.

    Args:
        dt: the step asked for.
        limit: the estimated stability limit.
        stability: "warn", "error" or "ignore".
        what: the limit's description for the message ("rk4 stability limit 0.1 (from ...)").
    """
    if dt <= limit or stability == "ignore":
        return
    msg = f"dt = {dt:g} exceeds the estimated {what}; try dt <= {SAFETY * limit:.3g}"
    if stability == "error":
        raise SolverError(msg)
    warn(msg, StabilityWarning)


def run_attributes(system: PDESystem, grid: UniformGrid, backend: str, method: str, dt, compile_time: float,
                   cache_hit: bool, **more) -> dict:
    """The Dataset attributes every run records (``more`` adds or overrides entries)."""
    from pdeforge import __version__

    command = shlex.join(sys.argv) if sys.argv and sys.argv[0] else ""
    attrs = {
        "Conventions": CONVENTIONS,
        "title": f"pdeforge run of {system.name}",
        "source": f"pdeforge {__version__}",
        "history": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {command}".rstrip(),
        "command": command,
        "model": system.name,
        "equations": system.equations_text(),
        "parameters": json.dumps(system.params),
        # a complex system runs as its real form: the equations as written, and the split ones
        **({"complex_fields": json.dumps(system.complex_parts), "equations": system.complex_equations,
            "real_form_equations": system.equations_text()}
           if getattr(system, "complex_parts", None) else {}),
        **({"coefficient_fields": json.dumps({k: _describe_coefficient(v) for k, v in system.coefficients.items()})}
           if getattr(system, "coefficients", None) else {}),
        "backend": backend,
        "method": method,
        "grid": "x".join(map(str, grid.shape)),
        "domain": json.dumps(grid.domain),
        **({"geometry": grid.geometry} if getattr(grid, "curvilinear", False) else {}),
        "dt": float(dt) if dt is not None else float("nan"),
        "compile_time_s": compile_time,
        "kernel_cache_hit": int(cache_hit),
        "pdeforge_version": __version__,
    }
    attrs.update(more)
    return attrs


def _describe_coefficient(value) -> str:
    """A coefficient field for the run's attributes: its expression, or what kind of data it was."""
    if isinstance(value, np.ndarray):
        return f"array {value.shape}"
    if callable(value) and not hasattr(value, "free_symbols"):
        return f"callable {getattr(value, '__name__', type(value).__name__)}"
    return str(value)


def call_text(function: str, system: PDESystem, **arguments) -> str:
    """The call that produced a run, as text: ``solve('gray-scott', grid=(64, 64), ...)``
    (arguments that are None are left out; arrays are shown by their shape)."""
    def show(value) -> str:
        if isinstance(value, np.ndarray):
            return f"<array {value.shape}>"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {show(v)}" for k, v in value.items()) + "}"
        text = repr(value)
        return text if len(text) <= 200 else text[:197] + "..."

    shown = ", ".join(f"{k}={show(v)}" for k, v in arguments.items() if v is not None)
    return f"{function}({system.name!r}" + (f", {shown})" if shown else ")")

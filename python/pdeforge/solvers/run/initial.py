"""Initial conditions: arrays, callables of the coordinates, or expressions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy as sp

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import InitialConditionError, PDEForgeError
from pdeforge.symbolic.system import PDESystem


def initial_state(system: PDESystem, grid: UniformGrid, ic, params: Mapping[str, float] | None = None,
                  complex_values: bool = False) -> np.ndarray:
    """Cell values (fields, *grid.shape) of the initial condition.

    Args:
        system: the PDE system.
        grid: the grid.
        ic: field -> array of the grid's shape, number, callable of the coordinate arrays
            (``f(x, y)`` with ``indexing='ij'`` meshes) or string expression of the coordinates
            and parameters. ``None`` uses the system's default ``ic``.
        params: parameter values for string expressions (the system's by default).
        complex_values: return complex values (the fields of a complex system); otherwise a
            complex value is an error.

    Raises:
        InitialConditionError: missing fields, unknown fields, wrong shapes, non-finite values.
    """
    if ic is None:
        ic = system.ic
    if ic is None:
        raise InitialConditionError(
            f"ic: no initial condition; give ic={{field: array | callable | expression}} for {', '.join(system.fields)}"
        )
    if not isinstance(ic, Mapping):
        raise InitialConditionError("ic: expected a dict of field name -> array, callable or expression")
    unknown = [k for k in ic if k not in system.fields]
    if unknown:
        raise InitialConditionError(f"ic: {unknown[0]!r} is not a field (fields: {', '.join(system.fields)})")
    missing = [f for f in system.fields if f not in ic]
    if missing:
        raise InitialConditionError(f"ic: no initial condition for field {missing[0]!r}")
    params = dict(system.params) | dict(params or {})
    mesh = grid.mesh()
    state = np.empty((len(system.fields), *grid.shape), dtype=complex if complex_values else float)
    for i, f in enumerate(system.fields):
        value = ic[f]
        try:
            if isinstance(value, str):
                expr = system.parse(value, f"initial condition of {f!r}", with_fields=False)
                arr = _evaluate(system, expr, mesh, params)
            elif isinstance(value, sp.Basic):
                arr = _evaluate(system, system._from_sympy(value, f"initial condition of {f!r}"), mesh, params)
            elif callable(value):
                arr = value(*mesh)
            else:
                arr = value
            arr = np.asarray(arr)
            if np.iscomplexobj(arr) and not complex_values:
                if np.any(arr.imag != 0):
                    raise InitialConditionError(
                        f"ic for {f!r}: complex values, but system {system.name!r} is real (no I in its equations); "
                        "give PDESystem(..., dtype='complex128') for complex fields"
                    )
                arr = arr.real
            arr = np.asarray(arr, dtype=complex if complex_values else float)
        except PDEForgeError as exc:
            raise InitialConditionError(str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise InitialConditionError(f"ic for {f!r}: could not evaluate ({exc})") from None
        if arr.ndim == 0:
            arr = np.full(grid.shape, arr[()])
        if arr.shape != grid.shape:
            raise InitialConditionError(f"ic for {f!r}: shape {arr.shape} does not match the grid {grid.shape}")
        if not np.all(np.isfinite(arr)):
            raise InitialConditionError(f"ic for {f!r}: contains NaN or infinite values")
        state[i] = arr
    return state


def _evaluate(system: PDESystem, expr: sp.Expr, mesh, params) -> np.ndarray:
    bad = expr.free_symbols - set(system.coords) - set(system.param_symbols.values())
    if bad:
        raise InitialConditionError(f"initial condition depends on {sorted(map(str, bad))}; only coordinates and parameters")
    expr = expr.xreplace({system.param_symbols[p]: v for p, v in params.items()})
    fn = sp.lambdify(system.coords, expr, modules=numpy_modules(expr))
    values = np.asarray(fn(*mesh))
    return np.broadcast_to(values if np.iscomplexobj(values) else values.astype(float), mesh[0].shape).copy()


def numpy_modules(expr: sp.Expr) -> list:
    """Modules for ``sympy.lambdify`` of ``expr``: NumPy, plus SciPy's erf only when it is used."""
    if expr.has(sp.erf):
        import scipy.special

        return [{"erf": scipy.special.erf}, "numpy"]
    return ["numpy"]


def block_initial_state(system: PDESystem, decomposition, ic) -> np.ndarray:
    """This rank's block of the initial condition: arrays of the global grid are cut, callables
    and expressions are evaluated on the block's own coordinates.

    Args:
        system: the PDE system.
        decomposition: the run's :class:`~pdeforge.parallel.decomposition.Decomposition`
            (its global ``grid`` and this rank's ``block``).
        ic: as for :func:`initial_state` (None: the system's).
    """
    ic = system.ic if ic is None else ic
    grid, block = decomposition.grid, decomposition.block
    if isinstance(ic, Mapping):
        ic = {f: (np.asarray(v)[block.slices] if isinstance(v, np.ndarray) and v.shape == grid.shape else v)
              for f, v in ic.items()}
    return initial_state(system, block, ic)

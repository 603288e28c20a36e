"""Coefficient fields on a grid: the frozen rows of a padded state.

A coefficient field (``params={"k": array | callable | "1 + 0.5*sin(x)"}``) is data, not an
unknown: the kernels read it like a field (stencil symbols, face interpolation, derivatives),
from rows ``len(fields) + j`` of the padded state, which are filled once when a kernel is
bound and never written. Its ghost cells hold its values outside the domain: exact for a
callable or expression (evaluated at the ghost centres), periodic copies on periodic axes, and
polynomial extrapolation from the nearest cells (linear for one ghost layer, cubic for two)
for an array on a walled axis, so a face value between the last cell and its ghost is as
accurate as the stencil. On one rank's block of a decomposed grid an array is the whole
grid's, and the block takes its window of it.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.system import PDESystem


def coefficient_cells(system: PDESystem, grid: UniformGrid, name: str, params: dict | None = None) -> np.ndarray:
    """Values of coefficient field ``name`` at the cell centres, shape ``grid.shape``."""
    return _values(system, grid, name, (0,) * grid.dim, params)


def padded_coefficients(system: PDESystem, grid: UniformGrid, ghost: tuple[int, ...],
                        params: dict | None = None) -> np.ndarray:
    """Every coefficient field of ``system`` on the padded grid, shape ``(coefficients, *padded)``.

    Args:
        system: the PDE system (its ``coefficients`` give the values).
        grid: the grid.
        ghost: ghost layers per axis.
        params: numeric parameter values for expressions (the system's by default).
    """
    shape = tuple(n + 2 * g for n, g in zip(grid.shape, ghost))
    out = np.empty((len(system.coefficients), *shape))
    for j, name in enumerate(system.coefficients):
        out[j] = _values(system, grid, name, ghost, params)
    return out


def _values(system: PDESystem, grid: UniformGrid, name: str, ghost: tuple[int, ...], params) -> np.ndarray:
    value = system.coefficients[name]
    what = f"parameter {name!r}"
    shape = tuple(n + 2 * g for n, g in zip(grid.shape, ghost))
    if isinstance(value, np.ndarray):
        whole = getattr(grid, "whole", None)
        if whole is not None and value.shape == whole.shape:
            # a block of a decomposed grid cuts its window, ghosts included, from the whole grid's
            # padded array: the same values one process has there (neighbours' cells, wraps, walls)
            window = tuple(slice(s, s + n + 2 * g) for s, n, g in zip(grid.start, grid.shape, ghost))
            return _extend(system, value, ghost)[window].copy()
        if value.shape != grid.shape:
            raise SystemDefinitionError(
                f"{what}: an array of shape {value.shape} does not match the grid {grid.shape}; give an array of "
                f"shape {grid.shape}, a callable of the coordinates or an expression string"
            )
        return _extend(system, value, ghost)
    mesh = np.meshgrid(*(grid.axis_coordinates(a, g) for a, g in enumerate(ghost)), indexing="ij")
    if isinstance(value, sp.Basic):
        values = dict(system.params) | dict(params or {})
        expr = value.xreplace({system.param_symbols[p]: v for p, v in values.items() if p in system.param_symbols})
        modules = ["numpy"]
        if expr.has(sp.erf):
            import scipy.special

            modules = [{"erf": scipy.special.erf}, "numpy"]
        result = sp.lambdify(system.coords, expr, modules=modules)(*mesh)
    else:
        try:
            result = value(*mesh)
        except Exception as exc:  # a user's callable may raise anything
            raise SystemDefinitionError(f"{what}: calling it on the coordinate meshes failed ({exc})") from None
    try:
        arr = np.broadcast_to(np.asarray(result, dtype=float), shape)
    except (TypeError, ValueError):
        raise SystemDefinitionError(
            f"{what}: it returned {np.shape(result)}, expected values of the grid's shape {shape} "
            "(the callable receives 'ij' coordinate meshes)"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise SystemDefinitionError(f"{what}: NaN or infinite values on the grid")
    return arr


def _extend(system: PDESystem, cells: np.ndarray, ghost: tuple[int, ...]) -> np.ndarray:
    """Cell values of an array coefficient with ``ghost`` layers added per axis."""
    out = cells.astype(float)
    for a, g in enumerate(ghost):
        if g == 0:
            continue
        periodic = all(system.bcs[(f, a)][0].periodic for f in system.fields)
        if periodic:
            out = np.concatenate([_take(out, a, slice(-g, None)), out, _take(out, a, slice(0, g))], axis=a)
            continue
        n = out.shape[a]
        m = min(2 * g, n)  # points of the extrapolating polynomial
        nodes = np.arange(m, dtype=float)
        low, high = [], []
        for layer in range(g, 0, -1):
            w = _lagrange(nodes, -float(layer))
            low.append(sum(w[j] * _take(out, a, slice(j, j + 1)) for j in range(m)))
        for layer in range(1, g + 1):
            w = _lagrange(nodes, -float(layer))
            high.append(sum(w[j] * _take(out, a, slice(n - 1 - j, n - j)) for j in range(m)))
        out = np.concatenate([*low, out, *high], axis=a)
    return out


def _lagrange(nodes: np.ndarray, at: float) -> np.ndarray:
    """Weights of the interpolating polynomial through ``nodes`` evaluated at ``at``."""
    w = np.ones(nodes.size)
    for j in range(nodes.size):
        for k in range(nodes.size):
            if k != j:
                w[j] *= (at - nodes[k]) / (nodes[j] - nodes[k])
    return w


def _take(arr: np.ndarray, axis: int, sel: slice) -> np.ndarray:
    index = [slice(None)] * arr.ndim
    index[axis] = sel
    return arr[tuple(index)]


def coefficients_as_fields(system: PDESystem, grid: UniformGrid, cells: np.ndarray) -> tuple[PDESystem, np.ndarray]:
    """``system`` with its coefficient fields as extra fields of zero time derivative, and
    ``cells`` (fields, *shape) with their cell values appended.

    For analyses that evaluate the equations on a state (the explicit stability estimate):
    a coefficient field is then one more known array at every cell.
    """
    if not system.coefficients:
        return system, cells
    new = object.__new__(type(system))
    new.__dict__.update(system.__dict__)
    new.fields = [*system.fields, *system.coefficients]
    new.field_functions = {**system.field_functions, **system.coefficient_functions}
    new.rhs = {**system.rhs, **{k: sp.Integer(0) for k in system.coefficients}}
    new.coefficients, new.coefficient_functions = {}, {}
    values = [coefficient_cells(system, grid, k) for k in system.coefficients]
    return new, np.concatenate([np.asarray(cells, dtype=float), np.stack(values)])

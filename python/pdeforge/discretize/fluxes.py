"""The numerical fluxes a scheme puts on the boundary faces, evaluated on a state.

A flux-form scheme updates cell ``i`` by ``-(F_{i+1/2} - F_{i-1/2}) / h``; summed over the
cells the interior faces cancel and the discrete mass changes by the boundary faces' fluxes
alone. This module rebuilds exactly those boundary-face fluxes from the same stencil
machinery the scheme was generated with (the finite-difference face values of each
divergence term, the MUSCL numerical flux of the advective part) and evaluates them on a
state whose ghost cells are filled by the boundary closures, so that
``h * sum(rhs(u)) == -(total outward boundary flux)`` holds to round-off.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy as sp

from ..errors import NotConservativeError, PDEForgeError
from .finite_difference import FiniteDifference
from .finite_volume import FiniteVolume, get_scheme, split_advective
from .grid import UniformGrid
from .stencil import StencilSymbols


def face_flux_expressions(law, scheme: str = "fd") -> tuple[StencilSymbols, tuple[sp.Symbol, ...], list[sp.Expr]]:
    """Stencil expressions of the law's flux at the low face of the current cell, per axis.

    Args:
        law: a :class:`pdeforge.conservation.ConservationLaw`.
        scheme: "fd" or a finite-volume scheme name (second order).

    Returns:
        ``(symbols, spacing, faces)``: the stencil-symbol registry, the cell-width symbols and
        one expression per axis for ``F_a`` at offset ``-1/2`` along that axis.
    """
    system = law.system
    spec = get_scheme(scheme)
    symbols = StencilSymbols(system.fields, system.dim)
    spacing = tuple(sp.Symbol(f"h_{a}", positive=True) for a in system.axes)
    fd = FiniteDifference(system, 2, symbols, spacing)
    fv = FiniteVolume(system, spec, symbols, spacing) if spec.finite_volume else None
    field_index = system.fields.index(law.field)
    fields = list(system.field_functions.values())
    advective = split_advective(system, law.field)[0] if fv is not None else None
    faces = []
    for a in range(system.dim):
        off = tuple(sp.Rational(-1, 2) if b == a else sp.Integer(0) for b in range(system.dim))
        total = sp.Integer(0)
        for term, axis, contribution in law.terms:
            if axis != a or (fv is not None and not contribution.has(sp.Derivative)):
                continue
            constant, rest = term.as_independent(*fields, *system.coords, as_Add=False)
            if not isinstance(rest, sp.Derivative):
                raise NotConservativeError(
                    f"the term {term} is an exact derivative but not written as one; scheme {scheme!r} "
                    "discretizes it as written, which does not telescope: write it as d(flux, x)"
                )
            total += -constant * fd._at(-contribution / constant, off)
        if fv is not None and advective[a] != 0:
            total += fv.face_flux(field_index, a, advective[a], 0)
        faces.append(total)
    return symbols, spacing, faces


def face_flux_values(
    law,
    grid: UniformGrid,
    cells: np.ndarray,
    t: float,
    scheme: str = "fd",
    params: Mapping[str, float] | None = None,
) -> dict:
    """Outward fluxes through the boundary faces of ``grid`` at state ``cells``.

    Args:
        law: the conservation law.
        grid: the grid of ``cells``.
        cells: state ``(fields, *grid.shape)``.
        t: time.
        scheme: the scheme the state is evolved with.
        params: parameter values (the system's by default).

    Returns:
        ``{(axis, "low"|"high"): outward flux summed over the face, "total": their sum}``;
        periodic axes have no entries.
    """
    from ..codegen.build import compile_system

    system = law.system
    cells = np.asarray(cells, dtype=float)
    if cells.shape == grid.shape:
        cells = cells[None]
    if cells.shape != (len(system.fields), *grid.shape):
        raise PDEForgeError(f"cells: expected shape {(len(system.fields), *grid.shape)}, got {cells.shape}")
    values = dict(system.params) | dict(params or {})
    bound = compile_system(system, target="numpy", scheme=scheme).bind(grid, values)
    U = bound.pad(cells, t)
    ghost = bound.layout.ghost
    symbols, spacing, faces = face_flux_expressions(law, scheme)
    subs = {system.param_symbols[p]: v for p, v in values.items()}
    subs.update({h: v for h, v in zip(spacing, grid.spacing)})
    subs[system.t] = t
    out: dict = {}
    total = 0.0
    for a, expr in enumerate(faces):
        if system.bcs[(law.field, a)][0].periodic:
            continue
        expr = sp.sympify(expr).xreplace(subs)
        stencil = sorted(expr.free_symbols & set(symbols.table), key=lambda s: symbols.table[s])
        coords = [c for c in system.coords if c in expr.free_symbols]
        fn = sp.lambdify([*stencil, *coords], expr, modules=[{"Heaviside": _heaviside}, "numpy"])
        area = float(np.prod([h for b, h in enumerate(grid.spacing) if b != a]))
        for side, name in ((0, "low"), (1, "high")):
            index = 0 if side == 0 else grid.shape[a]  # the cell whose low face is the boundary
            arrays = []
            for sym in stencil:
                f, off = symbols.table[sym]
                sel = tuple(
                    ghost[b] + index + off[b] if b == a else slice(ghost[b] + off[b], ghost[b] + off[b] + grid.shape[b])
                    for b in range(grid.dim)
                )
                arrays.append(U[(f, *sel)])
            coord_values = []
            for c in coords:
                b = system.coords.index(c)
                centres = grid.axis_coordinates(b, ghost[b])
                if b == a:
                    coord_values.append(centres[ghost[b] + index])
                else:
                    shape = [1] * (grid.dim - 1)
                    shape[b if b < a else b - 1] = -1
                    coord_values.append(centres[ghost[b]:ghost[b] + grid.shape[b]].reshape(shape))
            face = np.broadcast_to(np.asarray(fn(*arrays, *coord_values), dtype=float),
                                   tuple(n for b, n in enumerate(grid.shape) if b != a))
            outward = (-1.0 if side == 0 else 1.0) * float(np.sum(face)) * area
            out[(a, name)] = outward
            total += outward
    out["total"] = total
    return out


def _heaviside(x, h0=0.5):
    return np.heaviside(x, h0)

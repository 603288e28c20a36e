"""The boundary-face fluxes of a scheme evaluated on a computed state.

The stencil expressions of the fluxes come from :mod:`pdeforge.discretize.fluxes`; here they
are evaluated on a state whose ghost cells the compiled boundary closures fill, so that
``sum(cell volumes * rhs(u)) == -(total outward boundary flux)`` holds to round-off.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy as sp

from pdeforge.codegen.build import compile_system
from pdeforge.discretize.fluxes import face_flux_expressions
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import PDEForgeError


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
        for side, name in ((0, "low"), (1, "high")):
            area = grid.face_areas(a, side)  # per boundary cell; zero on the face r = 0
            if not np.any(area):
                out[(a, name)] = 0.0
                continue
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
            outward = (-1.0 if side == 0 else 1.0) * float(np.sum(face * area))
            out[(a, name)] = outward
            total += outward
    out["total"] = total
    return out


def _heaviside(x, h0=0.5):
    return np.heaviside(x, h0)

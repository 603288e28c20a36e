"""Explicit stability limits from the symbolic diffusion, advection and reaction coefficients.

For each equation the derivatives are expanded (``div(k(u) grad u)`` gives ``k(u) u_xx + ...``)
and the coefficients of the second derivatives (diffusivities), first derivatives (advection
speeds) and of the field itself (reaction rate) are differentiated out symbolically and
evaluated on the current state. With the largest central-difference eigenvalues of each
term, the spectrum of the semi-discrete operator is bounded by

    lambda_real = sum_a |D_a| * c2 / h_a**2 + max(0, -r),   lambda_imag = sum_a |V_a| * c1 / h_a

(c2 = 4 for second order, 16/3 for fourth; c1 = 1 and 1.372), and a method whose stability
region extends ``R`` along the negative real axis and ``I`` along the imaginary axis is
stable for ``dt <= 1 / (lambda_real / R + lambda_imag / I)``; forward Euler, whose region is
the disc ``|1 + z| <= 1``, for ``dt <= 2 lambda_real / (lambda_real**2 + lambda_imag**2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..discretize.grid import UniformGrid
from ..symbolic.system import PDESystem, field_of
from .methods import Method

_EIG = {2: (1.0, 4.0), 4: (1.3722, 16.0 / 3.0)}


@dataclass
class StabilityEstimate:
    """Result of :func:`explicit_dt_limit`.

    Attributes:
        dt_max: largest stable step (inf when no term limits it).
        lambda_real: bound of the spectrum along the negative real axis.
        lambda_imag: bound along the imaginary axis.
        limiting_field: the field whose equation gives the bound.
    """

    dt_max: float
    lambda_real: float
    lambda_imag: float
    limiting_field: str | None


def _coefficients(system: PDESystem, f: str):
    """Diffusion, advection and reaction coefficients of equation ``f``.

    Returns ``(diffusion, advection, reaction, derivative_symbols)``: the first two map
    ``(field, axis)`` to the coefficient of the second / first derivative, ``reaction`` is the
    derivative with respect to the field itself, and ``derivative_symbols`` maps each symbol
    standing for a derivative to ``(field, {axis: order})`` so it can be evaluated numerically.
    """
    expr = system.rhs[f].doit()
    subs, d1, d2, derivs = {}, {}, {}, {}
    for der in sorted(expr.atoms(sp.Derivative), key=sp.default_sort_key):
        g = field_of(der.expr)
        if g is None:
            continue
        counts = {system.coords.index(v): int(n) for v, n in der.variable_count}
        sym = sp.Symbol(f"_d_{g}_{len(subs)}")
        if counts and sum(counts.values()) == 1:
            d1[(g, next(iter(counts)))] = sym
        elif len(counts) == 1 and sum(counts.values()) == 2:
            d2[(g, next(iter(counts)))] = sym
        subs[der] = sym
        derivs[sym] = (g, counts)
    expr = expr.xreplace(subs)
    center = sp.Symbol(f"_u_{f}")
    expr = expr.xreplace({system.field_functions[f]: center})
    back = {center: system.field_functions[f]}
    diffusion = {key: sp.diff(expr, s).xreplace(back) for key, s in d2.items()}
    advection = {key: sp.diff(expr, s).xreplace(back) for key, s in d1.items()}
    reaction = sp.diff(expr, center).xreplace(back)
    return diffusion, advection, reaction, derivs


def explicit_dt_limit(
    system: PDESystem,
    grid: UniformGrid,
    cells: np.ndarray,
    t: float,
    method: Method,
    order: int = 2,
    params: dict | None = None,
) -> StabilityEstimate:
    """Largest stable step of an explicit ``method`` at state ``cells`` (fields, *shape).

    Args:
        system: the PDE system.
        grid: the grid.
        cells: the state at which coefficients are evaluated.
        t: the time.
        method: the explicit method (its stability extents are used).
        order: accuracy order of the spatial differences.
        params: parameter values (the system's by default).
    """
    import scipy.special

    params = dict(system.params) | dict(params or {})
    c1, c2 = _EIG[order]
    values = {system.field_functions[g]: cells[i] for i, g in enumerate(system.fields)}
    mesh = grid.mesh()
    values.update({c: mesh[a] for a, c in enumerate(system.coords)})
    values[system.t] = t
    values.update({system.param_symbols[p]: v for p, v in params.items()})
    h = grid.spacing

    def derivative(g: str, counts: dict) -> np.ndarray:
        # one-sided at the edges; only magnitudes of coefficients matter here
        arr = cells[system.fields.index(g)]
        for a, n in counts.items():
            for _ in range(n):
                arr = np.gradient(arr, h[a], axis=a)
        return arr

    def evaluate(expr, extra):
        if expr == 0:
            return np.zeros(grid.shape)
        symbols = list(values) + list(extra)
        fn = sp.lambdify(symbols, expr, modules=[{"erf": scipy.special.erf}, "numpy"])
        out = fn(*values.values(), *extra.values())
        return np.broadcast_to(np.asarray(out, dtype=float), grid.shape)

    lam_r_max, lam_i_max, worst, dt_best = 0.0, 0.0, None, np.inf
    for f in system.fields:
        diffusion, advection, reaction, derivs = _coefficients(system, f)
        extra = {sym: derivative(g, counts) for sym, (g, counts) in derivs.items()}
        lam_r = np.zeros(grid.shape)
        lam_i = np.zeros(grid.shape)
        for (g, a), coeff in diffusion.items():
            lam_r = lam_r + np.abs(evaluate(coeff, extra)) * c2 / h[a] ** 2
        for (g, a), coeff in advection.items():
            lam_i = lam_i + np.abs(evaluate(coeff, extra)) * c1 / h[a]
        lam_r = lam_r + np.maximum(0.0, -evaluate(reaction, extra))
        lr = float(np.nanmax(lam_r)) if lam_r.size else 0.0
        li = float(np.nanmax(lam_i)) if lam_i.size else 0.0
        dt = _dt_from(lr, li, method)
        if dt < dt_best:
            dt_best, worst = dt, f
        lam_r_max, lam_i_max = max(lam_r_max, lr), max(lam_i_max, li)
    return StabilityEstimate(dt_best, lam_r_max, lam_i_max, worst)


def _dt_from(lr: float, li: float, method: Method) -> float:
    if lr <= 0 and li <= 0:
        return np.inf
    if method.imag_extent == 0.0:
        return 2.0 * lr / (lr * lr + li * li) if lr > 0 else 0.0
    return 1.0 / (lr / method.real_extent + li / method.imag_extent)

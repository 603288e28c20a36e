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

from pdeforge.discretize.grid import UniformGrid
from pdeforge.symbolic.calculus import piecewise_diff
from pdeforge.symbolic.system import PDESystem, field_of
from pdeforge.solvers.run.initial import numpy_modules
from pdeforge.solvers.methods import Method

_EIG = {2: (1.0, 4.0), 4: (1.3722, 16.0 / 3.0)}


@dataclass
class StabilityEstimate:
    """Result of :func:`explicit_dt_limit`.

    Attributes:
        dt_max: largest stable step (inf when no term limits it).
        lambda_real: bound of the spectrum along the negative real axis.
        lambda_imag: bound along the imaginary axis.
        limiting_field: the field whose equation gives the bound.
        flux_speed: ``max sum_a |f_a'(u)| / h_a`` of the upwinded fluxes (finite-volume
            schemes; 0 otherwise).
    """

    dt_max: float
    lambda_real: float
    lambda_imag: float
    limiting_field: str | None
    flux_speed: float = 0.0


def _coefficients(system: PDESystem, f: str, rhs: sp.Expr | None = None):
    """Diffusion, advection and reaction coefficients of equation ``f``.

    ``rhs`` replaces the equation's right-hand side (the part a scheme does not upwind).
    Coefficients of piecewise expressions are differentiated branch by branch
    (:func:`pdeforge.symbolic.calculus.piecewise_diff`).

    Returns ``(diffusion, advection, reaction, derivative_symbols)``: the first two map
    ``(field, axis)`` to the coefficient of the second / first derivative, ``reaction`` is the
    derivative with respect to the field itself, and ``derivative_symbols`` maps each symbol
    standing for a derivative to ``(field, {axis: order})`` so it can be evaluated numerically.
    """
    expr = sp.sympify(system.rhs[f] if rhs is None else rhs).doit()
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
    diffusion = {key: piecewise_diff(expr, s).xreplace(back) for key, s in d2.items()}
    advection = {key: piecewise_diff(expr, s).xreplace(back) for key, s in d1.items()}
    reaction = piecewise_diff(expr, center).xreplace(back)
    return diffusion, advection, reaction, derivs


def explicit_dt_limit(
    system: PDESystem,
    grid: UniformGrid,
    cells: np.ndarray,
    t: float,
    method: Method,
    order: int = 2,
    params: dict | None = None,
    scheme: str = "fd",
    t_end: float | None = None,
) -> StabilityEstimate:
    """Largest stable step of an explicit ``method`` at state ``cells`` (fields, *shape).

    Coefficients are evaluated on ``cells`` and also on the Dirichlet boundary values at
    five times in ``[t, t_end]`` (as uniform states): a degenerate problem that starts
    from ``u = 0`` (porous medium, Stefan) has no diffusivity in its initial state, only
    in what flows in through the boundary.

    With a finite-volume ``scheme`` the upwinded fluxes ``f_a(u)`` are bounded by their
    CFL condition instead, ``dt * sum_a max|f_a'(u)| / h_a <= cfl`` with the scheme's
    TVD limit (1/2 for MUSCL, 1 for first order; SSP methods such as ``ssprk3`` keep it),
    combined with the other terms as ``1/dt = lambda_real/R + lambda_imag/I + speed/cfl``.

    Args:
        system: the PDE system.
        grid: the grid.
        cells: the state at which coefficients are evaluated.
        t: the time.
        method: the explicit method (its stability extents are used).
        order: accuracy order of the spatial differences.
        params: parameter values (the system's by default).
        scheme: the spatial scheme ("fd" or a finite-volume scheme name).
        t_end: end of the run (for the boundary values; default ``t``).
    """
    from pdeforge.discretize.finite_volume import get_scheme, split_advective

    spec = get_scheme(scheme)
    params = dict(system.params) | dict(params or {})
    c1, c2 = _EIG[order]
    h = grid.spacing
    base: dict = {}
    for a, c in enumerate(system.coords):  # broadcastable 1-D coordinates: no full meshes
        shape = [1] * grid.dim
        shape[a] = -1
        base[c] = grid.coordinates[a].reshape(shape)
    base.update({system.param_symbols[p]: v for p, v in params.items()})
    states = [(np.asarray(cells, dtype=float), t, True)] + _boundary_states(system, grid, cells, t, t_end, params)

    def derivative(state: np.ndarray, g: str, counts: dict, with_gradients: bool) -> np.ndarray:
        # one-sided at the edges; only magnitudes of coefficients matter here. Boundary
        # states are uniform: their derivatives are zero.
        arr = state[system.fields.index(g)]
        if not with_gradients:
            return np.zeros_like(arr)
        for a, n in counts.items():
            for _ in range(n):
                arr = np.gradient(arr, h[a], axis=a) if arr.shape[a] > 1 else 0 * arr
        return arr

    def evaluate(expr, values, extra):
        """Value of ``expr`` on the grid; only the arrays it needs are passed (and computed)."""
        if expr == 0:
            return np.zeros(grid.shape)
        needed = [s for s in list(values) + list(extra) if expr.has(s)]
        fn = sp.lambdify(needed, expr, modules=numpy_modules(expr))
        out = fn(*[values[s] if s in values else extra[s]() for s in needed])
        return np.broadcast_to(np.asarray(out, dtype=float), grid.shape)

    lam_r_max, lam_i_max, speed_max, worst, dt_best = 0.0, 0.0, 0.0, None, np.inf
    for f in system.fields:
        fluxes, rest = split_advective(system, f) if spec.finite_volume else ([0] * system.dim, system.rhs[f])
        diffusion, advection, reaction, derivs = _coefficients(system, f, rest)
        speeds = [
            piecewise_diff(F.xreplace({system.field_functions[f]: _U}), _U).xreplace({_U: system.field_functions[f]})
            for F in fluxes if F != 0
        ]
        axes = [a for a, F in enumerate(fluxes) if F != 0]
        lr = li = lf = 0.0
        for state, ts, with_gradients in states:
            values = dict(base)
            values.update({system.field_functions[g]: state[i] for i, g in enumerate(system.fields)})
            values[system.t] = ts
            extra = {sym: (lambda g=g, counts=counts, state=state, wg=with_gradients: derivative(state, g, counts, wg))
                     for sym, (g, counts) in derivs.items()}
            lam_r = np.zeros(grid.shape)
            lam_i = np.zeros(grid.shape)
            lam_f = np.zeros(grid.shape)
            for (g, a), coeff in diffusion.items():
                lam_r = lam_r + np.abs(evaluate(coeff, values, extra)) * c2 / h[a] ** 2
            for (g, a), coeff in advection.items():
                lam_i = lam_i + np.abs(evaluate(coeff, values, extra)) * c1 / h[a]
            for a, speed in zip(axes, speeds):
                lam_f = lam_f + np.abs(evaluate(speed, values, extra)) / h[a]
            lam_r = lam_r + np.maximum(0.0, -evaluate(reaction, values, extra))
            lr = max(lr, float(np.nanmax(lam_r)) if lam_r.size else 0.0)
            li = max(li, float(np.nanmax(lam_i)) if lam_i.size else 0.0)
            lf = max(lf, float(np.nanmax(lam_f)) if lam_f.size else 0.0)
        dt = method.stable_dt(lr, li, lf, spec.cfl)
        if dt < dt_best:
            dt_best, worst = dt, f
        lam_r_max, lam_i_max, speed_max = max(lam_r_max, lr), max(lam_i_max, li), max(speed_max, lf)
    return StabilityEstimate(dt_best, lam_r_max, lam_i_max, worst, speed_max)


_U = sp.Symbol("_u_flux", real=True)


def _boundary_states(system: PDESystem, grid: UniformGrid, cells, t: float, t_end: float | None, params) -> list:
    """Uniform states at the Dirichlet boundary values, at five times in [t, t_end]."""
    states = []
    times = np.linspace(t, t if t_end is None else t_end, 5)
    values = {system.param_symbols[p]: v for p, v in params.items()}
    for (fname, a), pair in system.bcs.items():
        i = system.fields.index(fname)
        for side, bc in enumerate(pair):
            if bc.periodic or bc.beta != 0:
                continue
            g = sp.sympify((bc.value / bc.alpha).xreplace(values))
            face = {system.coords[a]: system.domain[a][side]}
            g = sp.sympify(g.xreplace(face))
            others = [c for c in system.coords if c in g.free_symbols]
            fn = sp.lambdify([system.t, *others], g, modules=numpy_modules(g))
            mesh = grid.mesh()
            for ts in times:
                with np.errstate(all="ignore"):
                    v = np.broadcast_to(np.asarray(fn(ts, *[mesh[system.coords.index(c)] for c in others]), dtype=float),
                                        grid.shape)
                if not np.all(np.isfinite(v)):
                    continue
                state = np.array(cells, dtype=float, copy=True)
                state[i] = v
                states.append((state, float(ts), False))
    return states

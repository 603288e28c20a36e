"""A pdeforge problem as a ModelingToolkit ``PDESystem`` for MethodOfLines.jl.

:func:`describe` checks that MethodOfLines can express a system and fixes everything a run
needs (grid alignment, domains, point counts, boundary equations, initial values, method);
:mod:`pdeforge.julia.script` writes it as a standalone script and
:mod:`pdeforge.julia.mol_route` runs it through module PDEForge.

Grids. pdeforge's grids are cell-centred with boundaries on cell faces. MethodOfLines'
``edge_align`` grid is exactly that (plus one point half a cell outside each face, where the
boundary condition is imposed between the two nearest points), so systems without periodic
axes use it. A periodic axis needs ``center_align`` (its first and last points coincide):
the domain is shifted by half a cell, ``[lo + h/2, hi + h/2]``, so that its N + 1 points are
pdeforge's N cell centres plus the periodic copy. Every axis's ends are then moved by a few
units in the last place where needed so that Julia's float range ``lo:dx:hi`` is exact
(:mod:`pdeforge.julia.float_range`): MethodOfLines makes an inexact one non-uniform. Only systems that mix periodic and
non-periodic axes get a grid that differs from pdeforge's (nodes on the faces).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import PDEForgeError, SolverError
from pdeforge.julia.float_range import exact_ends
from pdeforge.symbolic.global_unknowns import has_coupling
from pdeforge.symbolic.system import PDESystem

#: pdeforge method -> (OrdinaryDiffEq algorithm, the package that exports it)
ALGORITHMS = {
    "euler": ("Euler", "OrdinaryDiffEqLowOrderRK"),
    "rk4": ("RK4", "OrdinaryDiffEqLowOrderRK"),
    "ssprk3": ("SSPRK33", "OrdinaryDiffEqSSPRK"),
    "rk45": ("DP5", "OrdinaryDiffEqLowOrderRK"),
    "bdf": ("FBDF", "OrdinaryDiffEq"),
    "scipy-bdf": ("FBDF", "OrdinaryDiffEq"),
    "rosenbrock23": ("Rosenbrock23", "OrdinaryDiffEq"),
}
#: the implicit algorithms of :data:`ALGORITHMS` (they get MethodOfLines' sparse symbolic Jacobian)
IMPLICIT_ALGORITHMS = ("FBDF", "Rosenbrock23")
#: discretizations of other helpers' models that are not finite differences
NOT_FINITE_DIFFERENCES = ("spectral", "fourier", "pseudo-spectral", "pseudospectral")


class MethodOfLinesUnsupported(PDEForgeError):
    """A system uses something MethodOfLines.jl cannot express."""


@dataclass
class BoundaryEquation:
    """One boundary condition as MethodOfLines reads it.

    Attributes:
        field: field name.
        axis: axis index.
        side: "low" or "high".
        kind: "periodic", "dirichlet", "neumann" or "robin".
        lhs: left-hand side (SymPy, fields as ``u(x, y)`` at the face, ``Derivative`` for du/dx).
        rhs: right-hand side (SymPy).
        text: pdeforge's description of the condition.
    """

    field: str
    axis: int
    side: str
    kind: str
    lhs: sp.Expr
    rhs: sp.Expr
    text: str


@dataclass
class InitialValue:
    """The initial value of a field: an expression of the coordinates or a table of cell values."""

    field: str
    expr: sp.Expr | None = None
    table: np.ndarray | None = None


@dataclass
class MOLProblem:
    """Everything a MethodOfLines run of a pdeforge problem needs.

    Attributes:
        system: the PDE system.
        grid: pdeforge's grid.
        align: "edge" or "center" (MethodOfLines ``grid_align``).
        bounds: per axis the (low, high) of the MethodOfLines domain.
        points: per axis the point count given to ``MOLFiniteDifference``.
        periodic: per axis whether every field is periodic on it.
        boundary: the boundary equations.
        initial: one initial value per field.
        t_span: (t0, t_end).
        save_times: output times.
        method: pdeforge method name; ``dt`` for the fixed-step ones, ``rtol``/``atol`` else.
        order: accuracy order (MethodOfLines ``approx_order``).
        mixed_derivatives: whether the equations have mixed derivatives (WENO scheme needed).
        matches_grid: whether the MethodOfLines grid contains pdeforge's cell centres.
    """

    system: PDESystem
    grid: UniformGrid
    align: str
    bounds: list[tuple[float, float]]
    points: list[int]
    periodic: list[bool]
    boundary: list[BoundaryEquation]
    initial: list[InitialValue]
    t_span: tuple[float, float]
    save_times: np.ndarray
    method: str
    dt: float | None
    rtol: float
    atol: float
    order: int
    mixed_derivatives: bool = False
    matches_grid: bool = True
    notes: list[str] = field(default_factory=list)


def check_expressible(system: PDESystem, discretization: str | None = None) -> bool:
    """Raise :class:`MethodOfLinesUnsupported` if MethodOfLines cannot discretize ``system``.

    Args:
        system: the PDE system.
        discretization: the model's spatial discretization, when it is not finite differences.

    Returns:
        Whether the equations contain mixed derivatives (MethodOfLines then needs its WENO
        scheme).
    """
    kind = (discretization or getattr(system, "discretization", None) or "finite-difference").lower()
    if kind in NOT_FINITE_DIFFERENCES:
        raise MethodOfLinesUnsupported(
            f"{system.name}: its {kind} discretization has no MethodOfLines equivalent "
            "(MethodOfLines discretizes with finite differences on Cartesian grids only)"
        )
    _refuse_unwritable(system)
    geometry = getattr(system, "geometry", None)
    if geometry is not None and geometry.curvilinear:
        raise MethodOfLinesUnsupported(
            f"{system.name}: geometry {geometry.name!r} has no MethodOfLines route here (pdeforge writes "
            "Cartesian MethodOfLines scripts only); solve it with pdeforge's own backends"
        )
    mixed = False
    for f, rhs in system.rhs.items():
        for d in rhs.atoms(sp.Derivative):
            if len(d.variable_count) > 1:
                mixed = True
        for term in sp.preorder_traversal(rhs):
            if isinstance(term, (sp.Mul, sp.Pow)):
                odd = 0
                for factor in (term.args if isinstance(term, sp.Mul) else (term,)):
                    base, power = factor.as_base_exp()
                    if isinstance(base, sp.Derivative) and sum(int(n) for _, n in base.variable_count) % 2 == 1:
                        odd += int(power) if power.is_Integer and power > 0 else 2
                if odd >= 2:
                    raise MethodOfLinesUnsupported(
                        f"{system.name}: the equation for {f!r} multiplies odd-order derivatives ({term}); "
                        "MethodOfLines' upwind scheme cannot discretize products of odd-order derivatives"
                    )
    return mixed


def _refuse_unwritable(system: PDESystem) -> None:
    """Refuse the features of a pdeforge system that the MethodOfLines export does not write.

    Each would otherwise reach the script as an undeclared name (coefficient fields, scalars), as
    a real variable with ``im`` in its equation (complex fields), or not at all (noise: the
    script would solve a different, deterministic equation).
    """
    coefficients = list(getattr(system, "coefficients", {}) or {})
    if coefficients:
        raise MethodOfLinesUnsupported(
            f"{system.name}: coefficient field(s) {', '.join(coefficients)} have no MethodOfLines form here "
            "(arrays and callables are grid data); write an expression of the coordinates into the "
            "equations instead, or solve with pdeforge's own backends"
        )
    if has_coupling(system):
        scalars = list(getattr(system, "scalars", ()) or ())
        what = f"scalar unknown(s) {', '.join(scalars)}" if scalars else "integral()/mean() of the fields"
        raise MethodOfLinesUnsupported(
            f"{system.name}: {what} are not written to MethodOfLines here (MethodOfLines' integral "
            "terms do not cover pdeforge's couplings); solve with pdeforge's own backends"
        )
    t = getattr(system, "t", None)
    for (f, a), pair in sorted(getattr(system, "bcs", {}).items()):
        for side, bc in zip(("low", "high"), pair):
            if not bc.periodic and t is not None and t in (bc.alpha.free_symbols | bc.beta.free_symbols):
                raise MethodOfLinesUnsupported(
                    f"{system.name}: the robin condition on {f!r} at the {side} {system.axes[a]} wall has coefficients "
                    f"that depend on t ({bc.describe()}), which the MethodOfLines export does not write; solve with "
                    "pdeforge's own backends"
                )
    noise = list(getattr(system, "noise", {}) or {})
    if noise:
        raise MethodOfLinesUnsupported(
            f"{system.name}: the noise on {', '.join(noise)} has no MethodOfLines form (a PDESystem is "
            "deterministic); exporting would solve the equations without it. Solve with pdeforge's own "
            "backends, or drop noise= to export the deterministic system"
        )
    if getattr(system, "is_complex", False):
        raise MethodOfLinesUnsupported(
            f"{system.name}: complex fields ({', '.join(system.fields)}) are not written to MethodOfLines "
            "here; export system.real_form() (their real and imaginary parts as real fields) instead"
        )


def face_symbols(system: PDESystem) -> list[tuple[sp.Symbol, sp.Symbol]]:
    """Per axis the symbols ``x_min``, ``x_max`` that stand for the MethodOfLines domain ends."""
    return [(sp.Symbol(f"{a}_min", real=True), sp.Symbol(f"{a}_max", real=True)) for a in system.axes]


def _boundary_equations(system: PDESystem) -> list[BoundaryEquation]:
    eqs = []
    faces = face_symbols(system)
    for (f, a), pair in sorted(system.bcs.items(), key=lambda kv: (system.fields.index(kv[0][0]), kv[0][1])):
        axis = system.coords[a]
        func = system.field_functions[f]
        low, high = faces[a]
        at = {"low": func.subs(axis, low), "high": func.subs(axis, high)}
        if pair[0].periodic:
            eqs.append(BoundaryEquation(f, a, "low", "periodic", at["low"], at["high"], "periodic"))
            continue
        for side, bc, face in (("low", pair[0], low), ("high", pair[1], high)):
            value = bc.value.subs(axis, face)
            sign = -1 if side == "low" else 1  # outward normal derivative = sign * d/dx
            gradient = sp.Subs(sp.Derivative(func, axis), axis, face)
            normal = sign * gradient
            if bc.kind == "dirichlet":
                lhs = at[side]
            elif bc.kind == "neumann":
                # written as MethodOfLines' examples are: Dx(u(t, x_min)) ~ value
                lhs, value = gradient, sign * value
            else:
                lhs = bc.alpha * at[side] + bc.beta * normal
            eqs.append(BoundaryEquation(f, a, side, bc.kind, lhs, value, bc.describe()))
            if bc.reflect:
                # the wall's second condition (equations of order above two, symbolic/walls.py),
                # as the normal derivative it fixes: d3u/dn3 (even reflection) or d2u/dn2 (odd;
                # laplace u less the data's Laplacian along the wall); MethodOfLines reads
                # derivative conditions of any order
                # (with data: u_nn = bc.second, and the outward u_nnn = sign * d3u/dx3 = bc.second);
                # a clamped wall fixes the outward du/dn = sign * du/dx = bc.second
                order = 1 if bc.clamped else 3 if bc.reflect == 1 else 2
                second = sp.Subs(sp.Derivative(func, (axis, order)), axis, face)
                datum = bc.second.subs(axis, face) * (sign if order % 2 else 1)
                eqs.append(BoundaryEquation(f, a, side, bc.kind, second, datum, bc.describe()))
    return eqs


def describe(
    system: PDESystem,
    grid: UniformGrid,
    t_span: tuple[float, float],
    ic: Mapping[str, object],
    method: str = "rk45",
    dt: float | None = None,
    save_times=None,
    order: int = 2,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    discretization: str | None = None,
) -> MOLProblem:
    """Check and fix a MethodOfLines run of ``system`` on ``grid``.

    Args:
        system: the PDE system.
        grid: pdeforge's grid of the same domain.
        t_span: (t0, t_end).
        ic: per field an expression string (coordinates and parameters), SymPy expression,
            number, callable of the coordinate meshes, or array of ``grid.shape``.
        method: "euler", "ssprk3", "rk4" (fixed step, need ``dt``), "rk45" or "bdf".
        dt: step of the fixed-step methods.
        save_times: output times (default: 11 frames over the span).
        order: accuracy order (2 or 4).
        rtol, atol: tolerances of the adaptive methods.
        discretization: the model's spatial discretization ("finite-difference" if None).

    Raises:
        MethodOfLinesUnsupported: for systems MethodOfLines cannot express.
    """
    mixed = check_expressible(system, discretization)
    if method not in ALGORITHMS:
        raise SolverError(f"method {method!r} has no MethodOfLines counterpart here (valid: {', '.join(ALGORITHMS)})")
    if ALGORITHMS[method][1] != "OrdinaryDiffEq" and method != "rk45" and dt is None:
        raise SolverError(f"method {method!r} is a fixed-step method: give dt")
    if order not in (2, 4):
        raise SolverError(f"order {order!r}: 2 or 4 are supported")
    if grid.domain != system.domain:
        raise SolverError("grid: its domain differs from the system's")
    periodic = [all(system.bcs[(f, a)][0].periodic for f in system.fields) for a in range(system.dim)]
    any_periodic = [any(system.bcs[(f, a)][0].periodic for f in system.fields) for a in range(system.dim)]
    notes = []
    if any(p != q for p, q in zip(periodic, any_periodic)):
        raise MethodOfLinesUnsupported(
            f"{system.name}: some fields are periodic on an axis where others are not; MethodOfLines "
            "needs one grid per axis for all fields"
        )
    if all(periodic) or not any(periodic):
        align = "center" if all(periodic) else "edge"
        matches = True
    else:
        align = "center"
        matches = False
        notes.append("periodic and non-periodic axes: center-aligned grid with nodes on the faces (not pdeforge's cell centres)")
    bounds, points = [], []
    for a, ((lo, hi), n, h) in enumerate(zip(grid.domain, grid.shape, grid.spacing)):
        if align == "edge":
            bounds.append((lo, hi))
            points.append(n)  # edge_align: step (hi - lo)/n, points at the n cell centres
        elif periodic[a]:
            bounds.append((lo + h / 2, hi + h / 2))
            points.append(n + 1)  # centre_align: step L/n, the last point is the periodic copy
        else:
            bounds.append((lo, hi))
            points.append(n + 1)
    # ends within ulps of these for which MethodOfLines' float range lo:dx:hi is exact: otherwise
    # it appends a point and the axis is non-uniform, which its periodic closure refuses
    bounds = [exact_ends(lo, hi, n) for (lo, hi), n in zip(bounds, grid.shape)]
    t0, t1 = (float(v) for v in t_span)
    if save_times is None:
        save_times = np.linspace(t0, t1, 11)
    save_times = np.asarray(save_times, dtype=float)
    if dt is not None and len(save_times) > 1:
        # whole steps between save times, as pdeforge's fixed-step runs take them
        interval = float(np.min(np.diff(save_times)))
        dt = interval / math.ceil(interval / dt - 1e-9)
    initial = [_initial_value(system, grid, f, ic) for f in system.fields]
    return MOLProblem(
        system=system, grid=grid, align=align, bounds=bounds, points=points, periodic=periodic,
        boundary=_boundary_equations(system), initial=initial, t_span=(t0, t1),
        save_times=save_times, method=method, dt=dt, rtol=rtol, atol=atol,
        order=order, mixed_derivatives=mixed, matches_grid=matches, notes=notes,
    )


def _initial_value(system: PDESystem, grid: UniformGrid, f: str, ic: Mapping[str, object]) -> InitialValue:
    from pdeforge.errors import InitialConditionError
    from pdeforge.solvers.run.initial import initial_state

    if ic is None or f not in ic:
        raise InitialConditionError(f"initial condition for field {f!r} is missing")
    value = ic[f]
    if isinstance(value, str):
        return InitialValue(f, expr=system.parse(value, f"initial condition for {f!r}", with_fields=False))
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return InitialValue(f, expr=sp.Float(float(value)))
    if isinstance(value, sp.Basic):
        return InitialValue(f, expr=system._from_sympy(value, f"initial condition for {f!r}"))
    # arrays and callables: the cell values pdeforge starts from
    cells = initial_state(system, grid, {g: (value if g == f else 0.0) for g in system.fields})
    return InitialValue(f, table=np.ascontiguousarray(cells[system.fields.index(f)], dtype=float))


#: grid points from which MethodOfLines is asked for ``ArrayDiscretization()``: one symbolic
#: array equation per PDE interior instead of one equation per point, which "scales much better
#: to large systems during symbolic processing" (MethodOfLines 0.11.20
#: src/interface/disc_strategy_types.jl:15-40; periodic, mixed-derivative and WENO equations fall
#: back to pointwise equations with identical results)
ARRAY_DISCRETIZATION_POINTS = 4096


def array_discretization(problem: MOLProblem) -> bool:
    """Whether the problem's grid is large enough for MethodOfLines' ``ArrayDiscretization()``."""
    return math.prod(problem.points) >= ARRAY_DISCRETIZATION_POINTS


def sparse_jacobian(problem: MOLProblem) -> bool:
    """Whether the method is implicit (FBDF, Rosenbrock23), so ``discretize`` should build a sparse Jacobian.

    ``discretize(pdesys, disc; jac = true, sparse = true)`` reaches ModelingToolkit's
    ``ODEFunction`` (PDEBase 0.1.32 src/discretization_state.jl:158-182), which then generates
    the symbolic Jacobian and its sparse prototype instead of finite-difference coloring.
    """
    return ALGORITHMS[problem.method][0] in IMPLICIT_ALGORITHMS



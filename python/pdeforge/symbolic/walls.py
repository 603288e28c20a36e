"""Walls for equations of more than second order: the pair of conditions each wall needs.

A field whose equation differentiates it more than twice along an axis (Cahn-Hilliard
``laplace(c**3 - c - laplace(c))``, ``u_t = -d(u, x, 4)``, Kuramoto-Sivashinsky, KdV) needs a
second condition on each wall of that axis. Three pairs are supported; the first two close the
ghost cells by a reflection about the wall face, to every ghost depth, plus the Taylor terms of
the wall's data, the third by a cubic (:func:`pdeforge.discretize.closure.wall_layer`):

* ``u_n = g`` and ``d(laplace(u))/dn = g2`` (the natural pair; ``"neumann"`` / ``"zero-flux"``
  alone is the homogeneous one): even reflection, ``ghost_l = u_(l-1) + 2 s g + s**3/3 u_nnn``.
  With zero data every odd normal derivative of the extension vanishes, so every centred flux of
  a divergence -- of ``u``, of ``laplace(u)`` and of any intermediate such as the chemical
  potential ``mu = f(c) - laplace(c)`` -- is zero on the wall: mass is conserved to round-off at
  every flux level and every order.
* ``u = g`` and ``laplace(u) = g2`` (hinged, or KdV's ``u`` and ``u_xx``): odd reflection,
  ``ghost_l = -u_(l-1) + 2 g + s**2 u_nn``; for an equation of odd order along the normal (KdV:
  the odd extension of a solution is no solution, and mirrored walls do not converge) the ghost
  cells follow the parabola through the first cell and the two data instead.
* ``u = g`` and ``d(u, x) = g1`` on the walls of axis ``x`` (clamped; equations of even order
  along the normal, such as the beam ``u_t = -d(u, x, 4)`` or the plate
  ``-laplace(laplace(u))``): the ghost cells follow the cubic through the first two cells that
  takes the value ``g`` and the outward slope ``du/dn`` (``-g1`` on the low wall, ``g1`` on the
  high one) at the face.

The second condition is stated with an expression key in ``bcs``: ``{"u": "dirichlet",
"laplace(u)": "dirichlet"}``, ``{"u": {"dirichlet": "sin(t)"}, "laplace(u)": {"dirichlet":
"cos(t)"}}``, ``{"u": "dirichlet", "d(u, x)": {"dirichlet": "t"}}`` (a first derivative
holds on the walls of its own axis only: a clamped plate takes ``"d(u, x)"`` and ``"d(u, y)"``),
or on a named intermediate written out as an expression linear in
``laplace(u)`` with a constant coefficient, ``{"c": "neumann", "c**3 - c - laplace(c)":
"neumann"}`` (its normal derivative is ``-(laplace c)_n`` on a wall where ``c_n = 0``). The data
may depend on the coordinates along the wall, on t and on the parameters; the normal
derivatives the closure needs follow from them (``u_nn = laplace(u) - laplace_wall(g)``,
``u_nnn = (laplace u)_n - laplace_wall(g)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import sympy as sp

from pdeforge.errors import BoundaryConditionError
from pdeforge.symbolic.boundary import BoundaryCondition, BoundarySpec

SIDES = ("low", "high")

#: (field, axis) -> (low, high) second conditions, with the expression they constrain
SecondSpec = dict[tuple[str, int], tuple[str, sp.Expr, tuple[BoundaryCondition, BoundaryCondition]]]


def normal_orders(rhs: Mapping[str, sp.Expr], coords: Sequence[sp.Symbol]) -> dict[tuple[str, int], int]:
    """Highest number of derivatives along each axis that the equations apply to each field.

    Nested derivatives add up: ``laplace(c**3 - laplace(c))`` differentiates ``c`` four times
    along every axis.

    Args:
        rhs: field name -> right-hand side (fields as applied functions ``u(x, y)``).
        coords: the coordinate symbols, in axis order.

    Returns:
        (field name, axis index) -> order (absent where the field is not differentiated).
    """
    orders: dict[tuple[str, int], int] = {}

    def walk(expr: sp.Basic, counts: tuple[int, ...]) -> None:
        if isinstance(expr, sp.Derivative):
            add = [0] * len(coords)
            for v, n in expr.variable_count:
                if v in coords:
                    add[coords.index(v)] += int(n)
            walk(expr.expr, tuple(c + d for c, d in zip(counts, add)))
            return
        if isinstance(expr, sp.core.function.AppliedUndef):
            name = type(expr).__name__
            for a, c in enumerate(counts):
                if c:
                    orders[(name, a)] = max(orders.get((name, a), 0), c)
            return
        for arg in expr.args:
            walk(arg, counts)

    for expr in rhs.values():
        walk(expr, (0,) * len(coords))
    return orders


def laplace_form(expr: sp.Expr, field: sp.Expr, coords: Sequence[sp.Symbol]) -> tuple[sp.Expr, sp.Expr] | None:
    """``(k, R)`` with ``expr = k*laplace(field) + R(field)``, ``k`` a nonzero constant, else None."""
    marks = [sp.Dummy(f"L{i}") for i in range(len(coords))]
    plain = sp.sympify(expr).xreplace({sp.Derivative(field, (c, 2)): m for c, m in zip(coords, marks)})
    if plain.has(sp.Derivative):
        return None
    ks = [sp.diff(plain, m) for m in marks]
    if any(k != ks[0] for k in ks) or ks[0] == 0:
        return None
    k = ks[0]
    if k.has(*marks) or k.atoms(sp.core.function.AppliedUndef) or k.free_symbols & set(coords):
        return None
    rest = sp.sympify(plain.xreplace({m: 0 for m in marks}))
    if rest.xreplace({field: sp.Dummy()}).free_symbols & set(coords) or rest.atoms(sp.core.function.AppliedUndef) - {field}:
        return None
    return k, rest


def close_walls(
    spec: BoundarySpec,
    orders: Mapping[tuple[str, int], int],
    second: SecondSpec,
    fields: Mapping[str, sp.Expr],
    axes: Sequence[str],
    scalars: set = frozenset(),
) -> BoundarySpec:
    """Mark the walls of higher-order fields with the reflection that closes them.

    Args:
        spec: canonical conditions from :func:`pdeforge.symbolic.boundary.parse_bcs`.
        orders: :func:`normal_orders` of the equations.
        second: the user's second conditions, (field, axis) -> (key text, expression, pair).
        fields: field name -> applied field function.
        axes: axis names.
        scalars: symbols of the system's scalar unknowns (refused in the data of such walls).

    Returns:
        ``spec`` with ``reflect = +1 / -1`` and the second datum ``second`` (the normal
        derivative the closure reads) on every non-periodic side of an axis along which the
        field is differentiated more than twice.

    Raises:
        BoundaryConditionError: if the conditions given do not close such a wall, or a second
            condition is given for a field that needs none.
    """
    result = dict(spec)
    used = set()
    for (f, a), pair in spec.items():
        order = orders.get((f, a), 0)
        if pair[0].periodic or order <= 2:
            continue
        extra = second.get((f, a))
        if extra is not None:
            used.add(extra[0])
        closed = []
        for side, bc in enumerate(pair):
            reflect, datum, clamped = _reflection(f, a, axes, SIDES[side], order, bc, extra, fields[f], scalars)
            closed.append(dataclasses.replace(bc, reflect=reflect, second=sp.sympify(datum), clamped=clamped,
                                              extrapolate=reflect == -1 and order % 2 == 1 and not clamped))
        result[(f, a)] = tuple(closed)
    for (f, a), (text, _, pair) in second.items():
        if text not in used and not pair[0].periodic:
            raise BoundaryConditionError(
                f"bcs for {text!r}: the equation for {f!r} differentiates {f} at most twice along each axis, "
                f"so one condition per wall closes it; drop the condition on {text!r}"
            )
    return result


def _reflection(f: str, a: int, axes, side: str, order: int, bc: BoundaryCondition, extra, field,
                scalars) -> tuple[int, sp.Expr, bool]:
    """The reflection sign, the second datum (``u_nn``, outward ``u_nnn`` or outward ``u_n``) and
    whether the pair is the clamped one, of one wall."""
    axis = axes[a]
    where = f"bcs for field {f!r} on axis {axis!r} ({side} side)"
    pairs = (
        f"closing pairs: {f} neumann with laplace({f}) neumann (the default for 'neumann'), "
        f"{f} dirichlet with laplace({f}) dirichlet, or {f} dirichlet with d({f}, {axis}) dirichlet (clamped)"
    )
    if bc.kind not in ("neumann", "dirichlet"):
        raise BoundaryConditionError(
            f"{where}: {bc.describe()} on a field whose equation has derivatives of order {order} along {axis}; "
            f"walls of such fields take a dirichlet or neumann pair ({pairs})"
        )
    coords = _coords_of(field)
    wall = [c for b, c in enumerate(coords) if b != a]
    _check_data(bc.value, where, scalars)
    if extra is None:
        if bc.kind == "neumann":
            return 1, -_wall_laplacian(bc.value, wall), False
        raise BoundaryConditionError(
            f"{where}: {bc.describe()} is one condition, but the equation for {f!r} has derivatives of order "
            f"{order} along {axis} and needs two per wall; add the second, e.g. "
            f"bcs={{{f!r}: 'dirichlet', 'laplace({f})': 'dirichlet'}} ({pairs})"
        )
    text, expr, sides = extra
    second = sides[0 if side == "low" else 1]
    if expr == sp.Derivative(field, coords[a]):
        return _clamped(f, a, axis, side, order, bc, text, second, where, pairs, scalars)
    form = laplace_form(expr, field, coords)
    if form is None:
        raise BoundaryConditionError(
            f"bcs for {text!r}: a second condition must be on k*laplace({f}) + R({f}) with a constant k "
            f"(laplace({f}) itself, or an intermediate such as a chemical potential)"
        )
    k, rest = form
    _check_data(second.value, f"bcs for {text!r} on axis {axis!r} ({side} side)", scalars)
    if second.kind == bc.kind == "dirichlet":
        # u = g on the wall, so k*laplace(u) = g2 - R(g), and laplace(u) = u_nn + laplace_wall(g)
        lap = (second.value - rest.xreplace({field: bc.value})) / k
        return -1, sp.simplify(lap - _wall_laplacian(bc.value, wall)), False
    if second.kind == bc.kind == "neumann":
        # d/dn (k*laplace(u) + R(u)) = k*(laplace u)_n + R'(u)*g: R'(u) must not need the wall's u
        slope = sp.diff(rest, field)
        if bc.value != 0 and slope.has(field):
            raise BoundaryConditionError(
                f"{where}: {bc.describe()} with {second.describe()} on {text!r}: with du/dn = {bc.value} the "
                f"normal derivative of {text!r} reads {f} on the wall, which a neumann pair does not give; "
                f"use du/dn = 0, or state the condition on laplace({f})"
            )
        lap_n = (second.value - (slope * bc.value if bc.value != 0 else 0)) / k
        return 1, sp.simplify(lap_n - _wall_laplacian(bc.value, wall)), False
    raise BoundaryConditionError(
        f"{where}: {bc.describe()} with {second.describe()} on {text!r} does not close the ghost cells ({pairs})"
    )


def _clamped(f: str, a: int, axis: str, side: str, order: int, bc: BoundaryCondition, text: str,
             second: BoundaryCondition, where: str, pairs: str, scalars) -> tuple[int, sp.Expr, bool]:
    """The clamped pair ``u = g`` and ``d(u, axis) = g1``: the second datum is the outward
    ``du/dn``, ``-g1`` on the low wall and ``g1`` on the high one."""
    if order % 2:
        raise BoundaryConditionError(
            f"{where}: the clamped pair ({f} and d({f}, {axis})) closes walls of equations of even order along "
            f"the normal; the equation for {f!r} has order {order} along {axis} ({pairs})"
        )
    if not (bc.kind == second.kind == "dirichlet"):
        raise BoundaryConditionError(
            f"{where}: {bc.describe()} with {second.describe()} on {text!r} does not close the ghost cells; "
            f"the clamped pair is {f} dirichlet with {text} dirichlet ({pairs})"
        )
    _check_data(second.value, f"bcs for {text!r} on axis {axis!r} ({side} side)", scalars)
    return -1, (1 if side == "high" else -1) * second.value, True


def _wall_laplacian(value: sp.Expr, wall: Sequence[sp.Symbol]) -> sp.Expr:
    """The Laplacian of a wall datum along the wall's own coordinates."""
    return sp.Add(*[sp.diff(value, c, 2) for c in wall])


def _check_data(value: sp.Expr, where: str, scalars) -> None:
    from pdeforge.symbolic.global_unknowns import REDUCTION_TYPES

    if value.atoms(*REDUCTION_TYPES) or value.free_symbols & set(scalars):
        raise BoundaryConditionError(
            f"{where}: the data of a wall closed by reflection (an equation of order above two) may depend "
            "on the coordinates, t and the parameters, not on scalars or integral()/mean()"
        )


def _coords_of(field: sp.Expr) -> tuple[sp.Symbol, ...]:
    return tuple(field.args)

"""Walls for equations of more than second order: the pair of conditions each wall needs.

A field whose equation differentiates it more than twice along an axis (Cahn-Hilliard
``laplace(c**3 - c - laplace(c))``, ``u_t = -d(u, x, 4)``, Kuramoto-Sivashinsky, KdV) needs a
second condition on each wall of that axis. Two pairs are supported, both homogeneous, and
both close the ghost cells by a reflection about the wall face, to every ghost depth:

* ``u_n = 0`` and ``d(laplace(u))/dn = 0`` (the natural pair, the default for ``"neumann"`` /
  ``"zero-flux"``): even reflection, ``ghost_l = u_(l-1)``. Every odd normal derivative of the
  extension vanishes, so every centred flux of a divergence -- of ``u``, of ``laplace(u)`` and of
  any intermediate such as the chemical potential ``mu = f(c) - laplace(c)`` -- is zero on the
  wall: mass is conserved to round-off at every flux level and every order.
* ``u = 0`` and ``laplace(u) = 0`` (hinged): odd reflection, ``ghost_l = -u_(l-1)``.

The second condition is stated with an expression key in ``bcs``: ``{"u": "dirichlet",
"laplace(u)": "dirichlet"}``, or on a named intermediate written out as an expression linear in
``laplace(u)`` with a constant coefficient, ``{"c": "neumann", "c**3 - c - laplace(c)":
"neumann"}`` (its normal derivative is ``-(laplace c)_n`` on a wall where ``c_n = 0``).
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
) -> BoundarySpec:
    """Mark the walls of higher-order fields with the reflection that closes them.

    Args:
        spec: canonical conditions from :func:`pdeforge.symbolic.boundary.parse_bcs`.
        orders: :func:`normal_orders` of the equations.
        second: the user's second conditions, (field, axis) -> (key text, expression, pair).
        fields: field name -> applied field function.
        axes: axis names.

    Returns:
        ``spec`` with ``reflect = +1 / -1`` on every non-periodic side of an axis along which the
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
        result[(f, a)] = tuple(
            dataclasses.replace(bc, reflect=_reflection(f, axes[a], SIDES[side], order, bc, extra, fields[f]))
            for side, bc in enumerate(pair)
        )
    for (f, a), (text, _, pair) in second.items():
        if text not in used and not pair[0].periodic:
            raise BoundaryConditionError(
                f"bcs for {text!r}: the equation for {f!r} differentiates {f} at most twice along each axis, "
                f"so one condition per wall closes it; drop the condition on {text!r}"
            )
    return result


def _reflection(f: str, axis: str, side: str, order: int, bc: BoundaryCondition, extra, field) -> int:
    where = f"bcs for field {f!r} on axis {axis!r} ({side} side)"
    pairs = (
        f"closing pairs: {f} neumann with laplace({f}) neumann (the default for 'neumann'), "
        f"or {f} dirichlet with laplace({f}) dirichlet"
    )
    if bc.kind not in ("neumann", "dirichlet") or bc.value != 0:
        raise BoundaryConditionError(
            f"{where}: {bc.describe()} on a field whose equation has derivatives of order {order} along {axis}; "
            f"walls of such fields take homogeneous pairs ({pairs})"
        )
    if extra is None:
        if bc.kind == "neumann":
            return 1
        raise BoundaryConditionError(
            f"{where}: {bc.describe()} is one condition, but the equation for {f!r} has derivatives of order "
            f"{order} along {axis} and needs two per wall; add the second, e.g. "
            f"bcs={{{f!r}: 'dirichlet', 'laplace({f})': 'dirichlet'}} ({pairs})"
        )
    text, expr, sides = extra
    second = sides[0 if side == "low" else 1]
    form = laplace_form(expr, field, _coords_of(field))
    if form is None:
        raise BoundaryConditionError(
            f"bcs for {text!r}: a second condition must be on k*laplace({f}) + R({f}) with a constant k "
            f"(laplace({f}) itself, or an intermediate such as a chemical potential)"
        )
    _, rest = form
    if second.kind == bc.kind == "neumann" and second.value == 0:
        return 1
    if second.kind == bc.kind == "dirichlet" and second.value == 0 and rest.xreplace({field: 0}) == 0:
        return -1
    raise BoundaryConditionError(
        f"{where}: {bc.describe()} with {second.describe()} on {text!r} does not close the ghost cells ({pairs}; "
        f"values 0, and for the dirichlet pair R(0) = 0)"
    )


def _coords_of(field: sp.Expr) -> tuple[sp.Symbol, ...]:
    return tuple(field.args)

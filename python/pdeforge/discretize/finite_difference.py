"""Finite differences on cell-centred grids, in flux form where the equations are.

A derivative of a plain field is a centred difference (wide on cell centres, compact on
faces). A derivative of anything else (``div(k(u)*grad(u))``, ``d(u**2/2, x)``) is taken in
flux form: the inner expression is evaluated on the two faces of the cell (by recursion, at
half-integer offsets) and differenced. Flux form telescopes, so the discrete integral of a
divergence equals its boundary flux: the scheme is a finite-volume scheme wherever the
equations are written in divergence form.

Offsets are SymPy Rationals in units of the cell width: integers on cell centres, halves on
faces. A field sampled at a half-integer offset is interpolated to the requested accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..errors import SystemDefinitionError
from ..symbolic.system import PDESystem, field_of
from .stencil import StencilSymbols, centered_points, fd_weights

Offset = tuple[sp.Rational, ...]


class FiniteDifference:
    """Turns continuous SymPy expressions into stencil expressions.

    Args:
        system: the PDE system (fields, coordinates).
        order: accuracy order of every difference and interpolation (2 or 4).
        symbols: the stencil-symbol registry to fill.
        spacing: one symbol per axis for the cell width (kernels receive the numbers).
    """

    def __init__(self, system: PDESystem, order: int, symbols: StencilSymbols, spacing: Sequence[sp.Symbol]):
        if order not in (2, 4):
            raise SystemDefinitionError(f"order: 2 or 4 are supported, got {order}")
        self.system = system
        self.order = order
        self.symbols = symbols
        self.h = tuple(spacing)
        self.coords = system.coords
        self.field_index = {f: i for i, f in enumerate(system.fields)}
        self._cache: dict = {}

    def discretize(self, expr: sp.Expr) -> sp.Expr:
        """The stencil expression of ``expr`` at the current cell."""
        return self._at(expr, (sp.Integer(0),) * len(self.coords))

    # core recursion -----------------------------------------------------------------------
    def _at(self, expr: sp.Basic, off: Offset) -> sp.Expr:
        key = (expr, off)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self._evaluate(expr, off)
        self._cache[key] = result
        return result

    def _evaluate(self, expr: sp.Basic, off: Offset) -> sp.Expr:
        name = field_of(expr)
        if name is not None:
            return self._sample(self.field_index[name], off)
        if isinstance(expr, sp.Symbol):
            if expr in self.coords:
                a = self.coords.index(expr)
                return expr + off[a] * self.h[a]
            return expr
        if isinstance(expr, sp.Derivative):
            return self._derivative(expr, off)
        if not expr.args:
            return expr
        if not self._depends_on_space(expr):
            return expr
        return expr.func(*[self._at(arg, off) for arg in expr.args])

    def _depends_on_space(self, expr: sp.Basic) -> bool:
        return bool(expr.free_symbols & set(self.coords)) or bool(expr.atoms(sp.core.function.AppliedUndef))

    def _sample(self, field_index: int, off: Offset) -> sp.Expr:
        """Field value at ``off``; interpolated along axes where the offset is a half-integer."""
        for a, o in enumerate(off):
            if sp.Rational(o).q == 2:
                points = centered_points(o, 0, self.order)
                weights = fd_weights(0, points, o)
                return sp.Add(*[w * self._sample(field_index, _moved(off, a, p)) for w, p in zip(weights, points) if w])
        return self.symbols.get(field_index, [int(o) for o in off])

    def _derivative(self, expr: sp.Derivative, off: Offset) -> sp.Expr:
        inner = expr.expr
        variables = [(v, int(n)) for v, n in expr.variable_count]
        for v, _ in variables:
            if v not in self.coords:
                raise SystemDefinitionError(
                    f"derivative with respect to {v} is not a spatial derivative (coordinates {self.coords})"
                )
        if not inner.atoms(sp.core.function.AppliedUndef):
            # no field inside: differentiate exactly and discretize what remains
            return self._at(sp.diff(inner, *[(v, n) for v, n in variables]), off)
        (var, n), rest = variables[0], variables[1:]
        a = self.coords.index(var)
        plain_field = field_of(inner) is not None
        if plain_field:
            # centred difference of order n, the remaining derivatives taken at each point
            points = centered_points(off[a], n, self.order)
            weights = fd_weights(n, points, off[a])
            remainder = sp.Derivative(inner, *rest) if rest else inner
            total = sp.Add(*[w * self._at(remainder, _moved(off, a, p)) for w, p in zip(weights, points) if w])
            return total / self.h[a] ** n
        # flux form: one derivative at a time, on the faces around the point
        points = _face_points(off[a], self.order)
        weights = fd_weights(1, points, off[a])
        remaining = ([(var, n - 1)] if n > 1 else []) + rest
        remainder = sp.Derivative(inner, *remaining) if remaining else inner
        total = sp.Add(*[w * self._at(remainder, _moved(off, a, p)) for w, p in zip(weights, points) if w])
        return total / self.h[a]


def _face_points(center: sp.Rational, order: int) -> tuple[sp.Rational, ...]:
    """Points at half a cell (and 3/2 cells for order 4) on either side of ``center``."""
    half = sp.Rational(1, 2)
    if order == 2:
        return (center - half, center + half)
    return (center - 3 * half, center - half, center + half, center + 3 * half)


def _moved(off: Offset, axis: int, value: sp.Rational) -> Offset:
    return tuple(value if i == axis else o for i, o in enumerate(off))

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

from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.geometry import cell_measure, radial_measure
from pdeforge.symbolic.system import PDESystem, field_of
from pdeforge.discretize.stencil import StencilSymbols, centered_points, fd_weights

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
        # coefficient fields come after the unknowns: frozen rows of the padded state
        self.field_index = {f: i for i, f in enumerate(frozen_fields(system))}
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
        if isinstance(expr, radial_measure):
            return self._radial_measure(expr, off)
        if not expr.args:
            return expr
        if not self._depends_on_space(expr):
            return expr
        if isinstance(expr, sp.Mul) and any(sp.Rational(o).q == 2 for o in off):
            potential = self._kirchhoff(expr)
            if potential is not None:
                return self._at(potential, off)
            averaged = self._face_coefficient(expr, off)
            if averaged is not None:
                return averaged
        return expr.func(*[self._at(arg, off) for arg in expr.args])

    def _radial_measure(self, expr: radial_measure, off: Offset) -> sp.Expr:
        """``r^m`` of a curvilinear geometry: exact on a face, the cell average at a cell centre.

        The cell average ``(r_{i+1/2}^(m+1) - r_{i-1/2}^(m+1)) / ((m+1) h)`` is the cell's
        volume per unit width, so ``(1/V_i) (A_{i+1/2} F_{i+1/2} - A_{i-1/2} F_{i-1/2})`` is
        what the flux form of ``(1/r^m) d(r^m F)/dr`` produces: the conservative scheme.
        At order 4 the point value ``r_i^m`` is kept instead (the same for ``m = 1``): the
        fourth-order flux difference approximates the point derivative, and the cell average
        (``r_i^2 + h^2/12``) would be an O(1) relative error next to ``r = 0`` for ``m = 2``.
        """
        r, m = expr.args
        a = self.coords.index(r)
        at = r + off[a] * self.h[a]
        if sp.Rational(off[a]).q == 2 or self.order == 4:
            return at**m
        return cell_measure(at, self.h[a], int(m))

    def _kirchhoff(self, expr: sp.Mul) -> sp.Expr | None:
        """``c(u) * d(u, x)`` as ``d(K(u), x)`` with ``K(u) = integral of c from 0 to u``, if clean.

        Differencing the Kirchhoff potential, ``(K(u_i+1) - K(u_i)) / h``, is the face flux
        with the exact mean of ``c`` over the states between the two cells. For a
        piecewise ``c`` (Stefan: ``c = 1 if u >= p_star else 0``, ``K = max(u - p_star, 0)``)
        the right-hand side stays continuous and the discrete front moves with the right
        speed (the enthalpy method); for smooth ``c`` it is second order like the mean.
        Used only when ``c`` depends on ``u`` alone (and parameters) and SymPy integrates it
        without conditions on the parameters; otherwise None (see :meth:`_face_coefficient`).
        """
        derivatives = [a for a in expr.args if isinstance(a, sp.Derivative)]
        if len(derivatives) != 1:
            return None
        der = derivatives[0]
        name = field_of(der.expr)
        if name is None or len(der.variables) != 1:
            return None
        u = der.expr
        c = expr / der
        if c.has(sp.Derivative) or not c.has(u) or (c.atoms(sp.core.function.AppliedUndef) - {u}):
            return None
        if c.xreplace({u: sp.Dummy()}).free_symbols & (set(self.coords) | {self.system.t}):
            return None
        K = kirchhoff_potential(c, u)
        return None if K is None else sp.Derivative(K, der.variables[0])

    def _face_coefficient(self, expr: sp.Mul, off: Offset) -> sp.Expr | None:
        """A diffusive flux ``c(u) * (derivatives)`` on a face, with c averaged from the cells.

        The coefficient is interpolated from its cell-centre values (the arithmetic mean of
        ``c(u_i)`` and ``c(u_i+1)`` at second order) rather than evaluated at the
        interpolated field: ``c((u_i + u_i+1)/2)``. The two agree to second order for smooth
        ``c``, but only the mean lets a degenerate or piecewise diffusivity (porous medium
        ``u**m`` next to ``u = 0``, Stefan's ``k = 1 if u >= p_star else 0``) open the face
        to a front: with ``u_i+1 = 0`` ahead of it, ``(u_i + u_i+1)/2`` stays below the
        threshold while ``c(u_i)`` does not. Returns None if ``expr`` has no such split.
        """
        with_derivative = [a for a in expr.args if a.has(sp.Derivative)]
        coefficient = [a for a in expr.args if not a.has(sp.Derivative) and a.atoms(sp.core.function.AppliedUndef)]
        if not with_derivative or not coefficient:
            return None
        rest = [a for a in expr.args if a not in with_derivative and a not in coefficient]
        c = sp.Mul(*coefficient)
        a = next(i for i, o in enumerate(off) if sp.Rational(o).q == 2)
        points = centered_points(off[a], 0, self.order)
        weights = fd_weights(0, points, off[a])
        c_face = sp.Add(*[w * self._at(c, _moved(off, a, p)) for w, p in zip(weights, points) if w])
        return c_face * sp.Mul(*[self._at(arg, off) for arg in with_derivative + rest])

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


def frozen_fields(system: PDESystem) -> list[str]:
    """The unknowns followed by the coefficient fields: the rows of a padded state."""
    return [*system.fields, *getattr(system, "coefficients", {})]


def _face_points(center: sp.Rational, order: int) -> tuple[sp.Rational, ...]:
    """Points at half a cell (and 3/2 cells for order 4) on either side of ``center``."""
    half = sp.Rational(1, 2)
    if order == 2:
        return (center - half, center + half)
    return (center - 3 * half, center - half, center + half, center + 3 * half)


def _moved(off: Offset, axis: int, value: sp.Rational) -> Offset:
    return tuple(value if i == axis else o for i, o in enumerate(off))


_POTENTIALS: dict = {}


def kirchhoff_potential(c: sp.Expr, u: sp.Expr) -> sp.Expr | None:
    """``K(u) = integral from 0 to u of c(s) ds`` when SymPy gives it cleanly, else None.

    Clean means: no unevaluated integral and no branch conditions on the parameters alone
    (``u**m`` integrates to a ``Piecewise`` on ``m != -1``; such results are refused so the
    caller falls back to the averaged coefficient). ``Max``/``Min``/``Heaviside`` are
    rewritten as ``Piecewise`` first, which SymPy integrates branch by branch.
    """
    key = (c, u)
    if key in _POTENTIALS:
        return _POTENTIALS[key]
    s = sp.Dummy("s", real=True)
    integrand = c.xreplace({u: s}).rewrite(sp.Piecewise)
    result = None
    try:
        K = sp.integrate(integrand, (s, 0, u))
    except Exception:  # SymPy raises many types on integrals it cannot do
        K = None
    if K is not None and not K.has(sp.Integral) and not K.has(sp.oo, sp.zoo, sp.nan):
        conditions = [cond for _, cond in K.args] if isinstance(K, sp.Piecewise) else []
        if all(cond == sp.true or cond.has(u) for cond in conditions):
            result = K
    _POTENTIALS[key] = result
    return result

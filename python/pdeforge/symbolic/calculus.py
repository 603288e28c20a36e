"""Derivatives of piecewise expressions, as the Jacobian and the stability estimate need them.

``Piecewise``, ``Heaviside``, ``Min``/``Max``, ``Abs`` and ``sign`` are differentiated branch
by branch. The derivative of a jump is a ``DiracDelta`` at it; numerically that is zero
everywhere except on a set of measure zero, so it is dropped: at a jump the derivative is
that of the branch the value falls in (one-sided), and ``Heaviside(0)`` counts as 1/2.
Newton's method therefore sees a piecewise coefficient as frozen across its jump; the
right-hand side itself still jumps when a value crosses it.
"""

from __future__ import annotations

import sympy as sp


def drop_deltas(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``DiracDelta`` (and its derivatives) replaced by 0."""
    if not expr.has(sp.DiracDelta):
        return expr
    return expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))


def piecewise_diff(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """Derivative of ``expr`` with respect to ``symbol``, taken piecewise (see the module doc).

    Powers ``b**m * b**-1`` that :func:`sympy.diff` leaves for symbolic exponents are merged
    into ``b**(m - 1)``, which keeps degenerate coefficients such as ``u**m`` finite (not
    0/0) where ``u = 0``.
    """
    d = drop_deltas(sp.diff(expr, symbol))
    if d.has(sp.Pow):
        d = sp.powsimp(d)
    return d

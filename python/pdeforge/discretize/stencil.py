"""Stencil symbols and finite-difference weights.

A discrete right-hand side is an ordinary SymPy expression in *stencil symbols*: one symbol per
(field, integer offset) pair, read relative to the cell being updated. ``u_p1_0`` is field u
at offset (+1, 0); ``u_0_m2`` at (0, -2). Code generators map each symbol to an array access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp


def offset_name(offset: Sequence[int]) -> str:
    """``(1, 0, -2)`` -> ``'p1_0_m2'``."""
    return "_".join(("p" if o > 0 else "m" if o < 0 else "") + str(abs(o)) for o in offset)


@dataclass
class StencilSymbols:
    """Registry of stencil symbols of one system.

    Attributes:
        fields: field names in order.
        dim: number of spatial axes.
        table: symbol -> (field index, offset).
    """

    fields: Sequence[str]
    dim: int
    table: dict[sp.Symbol, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    _by_key: dict[tuple[int, tuple[int, ...]], sp.Symbol] = field(default_factory=dict)

    def get(self, field_index: int, offset: Sequence[int]) -> sp.Symbol:
        """The symbol of field ``field_index`` at integer ``offset``."""
        key = (field_index, tuple(int(o) for o in offset))
        sym = self._by_key.get(key)
        if sym is None:
            sym = sp.Symbol(f"{self.fields[field_index]}_{offset_name(key[1])}", real=True)
            self._by_key[key] = sym
            self.table[sym] = key
        return sym

    def center(self, field_index: int) -> sp.Symbol:
        return self.get(field_index, (0,) * self.dim)

    def offsets_in(self, expr: sp.Basic) -> list[tuple[int, tuple[int, ...]]]:
        """The (field, offset) pairs that ``expr`` reads, sorted."""
        return sorted(self.table[s] for s in expr.free_symbols if s in self.table)


@lru_cache(maxsize=None)
def fd_weights(derivative: int, points: tuple[sp.Rational, ...], at: sp.Rational) -> tuple[sp.Rational, ...]:
    """Exact weights of the ``derivative``-th derivative at ``at`` from values at ``points``.

    Points and result are in units of the grid spacing (divide by h**derivative). Uses SymPy's
    Fornberg algorithm (:func:`sympy.finite_diff_weights`).
    """
    w = sp.finite_diff_weights(derivative, list(points), at)
    return tuple(sp.nsimplify(v) for v in w[derivative][-1])


def centered_points(center: sp.Rational, derivative: int, accuracy: int) -> tuple[sp.Rational, ...]:
    """Symmetric points around ``center`` for a derivative of the given accuracy order.

    On an integer center the points are integers (odd count); on a half-integer center they
    are the surrounding half-integers at distance 1/2, 3/2, ... (even count), i.e. the compact
    staggered stencil.
    """
    staggered = sp.Rational(center).q == 2
    need = derivative + accuracy - 1
    if staggered:
        count = need + (need % 2)
        half = count // 2
        return tuple(center + sp.Rational(2 * k + 1, 2) for k in range(-half, half))
    count = need + (1 - need % 2)
    half = count // 2
    return tuple(center + k for k in range(-half, half + 1))

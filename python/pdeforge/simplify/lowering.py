"""From stencil expressions to straight-line code: hoisting of invariants, then CSE.

Every code-generation target starts here. Sub-expressions that depend only on parameters, cell
widths and time (``Du/h_x**2``) are computed once per kernel call, outside the loop over
cells; what remains is reduced by SymPy's common-subexpression elimination across all fields,
so each cell evaluates every field and every term once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sympy as sp


@dataclass
class Lowered:
    """Straight-line code for one kernel.

    Attributes:
        invariants: (symbol, expression) computed once per call, in order.
        temporaries: (symbol, expression) computed per cell, in order.
        outputs: one expression per output.
    """

    invariants: list[tuple[sp.Symbol, sp.Expr]]
    temporaries: list[tuple[sp.Symbol, sp.Expr]]
    outputs: list[sp.Expr]

    def free_symbols(self) -> set[sp.Symbol]:
        syms: set[sp.Symbol] = set()
        for _, e in self.invariants + self.temporaries:
            syms |= e.free_symbols
        for e in self.outputs:
            syms |= e.free_symbols
        return syms

    def point_ops(self) -> int:
        """Operations evaluated per cell (temporaries and outputs, not invariants)."""
        return int(sum(sp.count_ops(e) for _, e in self.temporaries) + sum(sp.count_ops(e) for e in self.outputs))


class _Hoister:
    def __init__(self, invariant: set[sp.Symbol], prefix: str):
        self.invariant = invariant
        self.prefix = prefix
        self.table: dict[sp.Expr, sp.Symbol] = {}
        self.order: list[tuple[sp.Symbol, sp.Expr]] = []

    def is_invariant(self, e: sp.Basic) -> bool:
        return e.free_symbols <= self.invariant and not e.has(sp.core.function.AppliedUndef)

    def name(self, e: sp.Expr) -> sp.Expr:
        if e.is_Atom:
            return e
        if e.is_Mul and e.args[0] == -1 and len(e.args) == 2 and e.args[1].is_Atom:
            return e
        sym = self.table.get(e)
        if sym is None:
            sym = sp.Symbol(f"{self.prefix}{len(self.order)}", real=True)
            self.table[e] = sym
            self.order.append((sym, e))
        return sym

    def __call__(self, e: sp.Basic) -> sp.Basic:
        if isinstance(e, sp.functions.elementary.piecewise.ExprCondPair):
            # a (value, condition) pair is structure of its Piecewise, never a value to name
            return e.func(*[self(a) for a in e.args])
        if self.is_invariant(e):
            return self.name(e)
        if not e.args:
            return e
        if isinstance(e, (sp.Add, sp.Mul)):
            inv = [a for a in e.args if self.is_invariant(a)]
            var = [self(a) for a in e.args if not self.is_invariant(a)]
            if inv:
                var.insert(0, self.name(e.func(*inv)))
            return e.func(*var)
        if isinstance(e, sp.Pow):
            return sp.Pow(self(e.base), self(e.exp) if not self.is_invariant(e.exp) else self.name(e.exp))
        if isinstance(e, sp.Piecewise):
            # (value, condition) pairs and conditions must stay pairs and booleans: hoist
            # only inside them
            return sp.Piecewise(*[(self(pair.expr), self.condition(pair.cond)) for pair in e.args])
        return e.func(*[self(a) for a in e.args])

    def condition(self, c: sp.Basic) -> sp.Basic:
        """A boolean condition with invariants hoisted out of its relations' sides."""
        if isinstance(c, sp.logic.boolalg.BooleanAtom):
            return c
        if isinstance(c, sp.core.relational.Relational):
            return c.func(self(c.lhs), self(c.rhs))
        return c.func(*[self.condition(a) for a in c.args])


def lower(
    outputs: Sequence[sp.Expr],
    invariant_symbols: Iterable[sp.Symbol],
    temp_prefix: str = "_t",
    invariant_prefix: str = "_c",
) -> Lowered:
    """Hoist loop invariants out of ``outputs`` and eliminate common subexpressions.

    Args:
        outputs: expressions to evaluate per cell.
        invariant_symbols: symbols constant over the cells (parameters, cell widths, t).
        temp_prefix: prefix of per-cell temporary names.
        invariant_prefix: prefix of hoisted invariant names.
    """
    from pdeforge.symbolic.closure_terms import freeze_closure_calls

    hoist = _Hoister(set(invariant_symbols), invariant_prefix)
    reduced = [hoist(sp.sympify(e)) for e in outputs]
    names = sp.numbered_symbols(temp_prefix, real=True)
    reduced, calls = freeze_closure_calls(reduced)
    if not calls:
        temps, reduced = sp.cse(reduced, symbols=names, optimizations="basic", order="none")
        return Lowered(invariants=hoist.order, temporaries=list(temps), outputs=list(reduced))
    return _lower_with_calls(hoist.order, reduced, calls, names, temp_prefix)


def _lower_with_calls(invariants, frozen, calls, names, temp_prefix: str) -> Lowered:
    """CSE with closure calls as opaque values, each call one temporary evaluated once.

    SymPy's CSE may rewrite the arguments of equal calls differently at different places, which
    would evaluate a (costly, neural) closure several times; so every call is a placeholder while
    the arguments join the CSE as extra outputs, and the calls are put back as temporaries in
    dependency order.
    """
    placeholders = list(calls)
    arg_counts = [len(calls[ph].args) for ph in placeholders]
    args = [a for ph in placeholders for a in calls[ph].args]
    temps, reduced = sp.cse(args + list(frozen), symbols=names, optimizations="basic", order="none")
    reduced_args, outputs = reduced[: len(args)], reduced[len(args):]
    rename = {ph: sp.Symbol(f"{temp_prefix}nn{i}", real=True) for i, ph in enumerate(placeholders)}
    defs = []
    k = 0
    for ph, n in zip(placeholders, arg_counts):
        defs.append((rename[ph], calls[ph].func(*[a.xreplace(rename) for a in reduced_args[k:k + n]])))
        k += n
    temps = [(s, e.xreplace(rename)) for s, e in temps]
    ordered = _topological(temps + defs)
    return Lowered(invariants=invariants, temporaries=ordered, outputs=[e.xreplace(rename) for e in outputs])


def _topological(definitions: list[tuple[sp.Symbol, sp.Expr]]) -> list[tuple[sp.Symbol, sp.Expr]]:
    """Order definitions so each follows those it reads, keeping the given order where free."""
    defined_by = {s for s, _ in definitions}
    pending = list(definitions)
    done: set = set()
    ordered = []
    while pending:
        for i, (s, e) in enumerate(pending):
            if (e.free_symbols & defined_by) <= done:
                ordered.append((s, e))
                done.add(s)
                del pending[i]
                break
        else:  # pragma: no cover - CSE output is acyclic
            raise RuntimeError("cyclic temporaries in lowering")
    return ordered

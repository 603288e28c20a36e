"""The default simplifier: SymPy rewrites chosen by the operations they leave per cell.

For each right-hand side a few algebraically equal forms are tried (as written, expanded,
expanded and collected on the stencil values, common factors pulled out); the one with the
fewest operations per cell after hoisting the loop invariants wins. Common-subexpression
elimination across all fields follows in :mod:`pdeforge.simplify.lowering`; the operation
counts of every stage are recorded on the result.
"""

from __future__ import annotations

import sympy as sp

from pdeforge.simplify.lowering import lower
from pdeforge.discretize.semidiscrete import SemiDiscrete

#: Expressions with more operations than this are not expanded: expanding products of sums
#: grows combinatorially (the order-4 burgers-les stencil, 1256 operations with square roots,
#: expands to 183 315 operations in 13 s and then takes 50 s to collect, per field).
EXPAND_LIMIT = 1000
#: An expansion that grows the expression by more than this factor is not collected.
EXPAND_GROWTH = 4


def invariant_symbols(semi: SemiDiscrete) -> set[sp.Symbol]:
    """Symbols constant over the cells of one kernel call: parameters, cell widths, time."""
    return set(semi.param_symbols) | set(semi.spacing) | {semi.system.t}


def point_ops(expr: sp.Expr, invariants: set[sp.Symbol]) -> int:
    """Operations per cell of ``expr`` once its invariant sub-expressions are hoisted."""
    return lower([expr], invariants).point_ops()


#: Branch functions that products do not distribute over: expanding around them only
#: multiplies terms (a MUSCL flux's squares of limited slopes grow tenfold) and costs seconds.
BRANCHES = (sp.Abs, sp.sign, sp.Piecewise, sp.Heaviside, sp.Min, sp.Max)


def _candidates(expr: sp.Expr, stencil: list[sp.Symbol]):
    yield expr
    if sp.count_ops(expr) > EXPAND_LIMIT or expr.has(*BRANCHES):
        yield sp.factor_terms(expr)
        return
    yield sp.factor_terms(expr)
    expanded = sp.expand(expr)
    if sp.count_ops(expanded) > EXPAND_GROWTH * max(sp.count_ops(expr), 1):
        return
    yield expanded
    yield sp.collect(expanded, stencil)


def simplify(semi: SemiDiscrete) -> SemiDiscrete:
    """Rewrite each right-hand side into its cheapest form; record the operation counts.

    Returns the same object with ``rhs`` replaced and ``simplification`` set to a dict with,
    per field, ``ops_raw`` (SymPy count of the discretized stencil), ``ops_per_cell_raw`` and
    ``ops_per_cell`` (after hoisting invariants, before and after the rewrite), and for all
    fields together ``ops_per_cell_cse`` (after common-subexpression elimination).
    """
    from pdeforge.symbolic.closure_terms import freeze_closure_calls

    invariants = invariant_symbols(semi)
    stencil = sorted(semi.symbols.table, key=lambda s: semi.symbols.table[s])
    report: dict = {"fields": {}}
    new_rhs = []
    # closure calls are rewritten as opaque symbols, so equal calls stay equal across fields
    frozen, restore = freeze_closure_calls(semi.rhs)
    for f, expr in zip(semi.fields, frozen):
        raw_cost = point_ops(expr, invariants)
        best, best_cost = expr, raw_cost
        for cand in _candidates(expr, stencil):
            cost = point_ops(cand, invariants)
            if cost < best_cost:
                best, best_cost = cand, cost
        new_rhs.append(best)
        report["fields"][f] = {
            "ops_raw": int(sp.count_ops(expr)),
            "ops_per_cell_raw": raw_cost,
            "ops_per_cell": best_cost,
        }
    report["ops_per_cell_before_cse"] = sum(v["ops_per_cell"] for v in report["fields"].values())
    new_rhs = [e.xreplace(restore) for e in new_rhs] if restore else new_rhs
    report["ops_per_cell_cse"] = lower(new_rhs, invariants).point_ops()
    semi.rhs = new_rhs
    semi.simplification = report
    return semi

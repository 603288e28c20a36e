"""The Julia simplifier: Symbolics.jl ``simplify`` of the stencils, chosen by operations per cell.

The alternative to :mod:`pdeforge.simplify.rewrite` (``simplifier="julia"`` in
:func:`pdeforge.compile`, :func:`pdeforge.solve`). Each semi-discrete right-hand side goes to
Julia as text (:class:`~pdeforge.julia.printer.JuliaPrinter`, exact rationals, stencil
values as ``stencil(u, 1, 0)``); Symbolics returns ``simplify(e)`` and
``simplify(e; expand = true)``, which come back through the Julia-syntax reader
(:func:`pdeforge.julia.reader.parse_julia`) into SymPy. The candidate with the
fewest operations per cell after hoisting (the same measure as the SymPy simplifier) wins;
a candidate that does not evaluate to the original at random points is discarded.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from pdeforge.julia.printer import JuliaPrinter, julia_identifier
from pdeforge.discretize.semidiscrete import SemiDiscrete
from pdeforge.errors import PDEForgeError
from pdeforge.julia.reader import parse_julia
from pdeforge.symbolic.operators import CONSTANTS, MATH_FUNCTIONS
from pdeforge.symbolic.parser import Namespace
from pdeforge.simplify.rewrite import invariant_symbols, point_ops

#: relative agreement required between a simplified candidate and the original
AGREEMENT = 1e-9


def _julia_names(semi: SemiDiscrete) -> dict[sp.Symbol, str]:
    """Julia names of the parameters, cell widths, coordinates and t (keywords renamed)."""
    system = semi.system
    symbols = [*semi.param_symbols, *semi.spacing, *system.coords, system.t]
    taken = set(_rows(semi))
    names = {}
    for s in symbols:
        names[s] = julia_identifier(s.name, taken)
        taken.add(names[s])
    return names


def _rows(semi: SemiDiscrete) -> list[str]:
    """Names of the padded state's rows: the fields, then the coefficient fields (data rows that
    stencils read like fields)."""
    return [*semi.fields, *semi.coefficients]


def _namespace(semi: SemiDiscrete, names: dict[sp.Symbol, str]) -> Namespace:
    system = semi.system
    markers = {f: sp.Dummy(f) for f in _rows(semi)}
    index = {m: i for i, m in enumerate(markers.values())}

    def stencil(field, *offsets):
        if field not in index or len(offsets) != system.dim:
            raise PDEForgeError(f"stencil(): expected a field and {system.dim} offsets")
        return semi.symbols.get(index[field], [int(o) for o in offsets])

    symbols: dict = dict(markers)
    symbols.update({text: sym for sym, text in names.items()})
    symbols.update(CONSTANTS)
    functions = dict(MATH_FUNCTIONS)
    functions["stencil"] = stencil
    return Namespace(symbols, functions, {"fields": _rows(semi)})


def _agrees(a: sp.Expr, b: sp.Expr, symbols: list[sp.Symbol], rng: np.random.Generator) -> bool:
    """Whether ``a`` and ``b`` agree at random points (values in [0.5, 1.5], away from poles)."""
    if not symbols:
        return bool(abs(complex(a - b)) <= AGREEMENT * (1 + abs(complex(a))))
    fa = sp.lambdify(symbols, a, "numpy")
    fb = sp.lambdify(symbols, b, "numpy")
    for _ in range(3):
        values = rng.uniform(0.5, 1.5, len(symbols))
        with np.errstate(all="ignore"):
            va, vb = float(fa(*values)), float(fb(*values))
        if not np.isfinite(va):
            continue
        if not abs(va - vb) <= AGREEMENT * max(1.0, abs(va)):
            return False
    return True


def simplify(semi: SemiDiscrete) -> SemiDiscrete:
    """Rewrite each right-hand side with Symbolics.jl and keep the cheapest equal form.

    Returns the same object with ``rhs`` replaced and ``simplification`` set as the SymPy
    simplifier does, plus ``backend = "julia"`` and, per field, ``ops_julia`` (operations
    per cell of Symbolics' plain and expanded results).

    Raises:
        JuliaUnavailable: if no Julia installation can be found.
    """
    from pdeforge.simplify.lowering import lower
    from pdeforge.julia.bridge import session

    jl = session()
    system = semi.system
    rows = _rows(semi)
    stencil = {sym: (rows[f], off) for sym, (f, off) in semi.symbols.table.items()}
    names = _julia_names(semi)
    printer = JuliaPrinter(names=names, stencil=stencil, exact=True)
    texts = [printer.doprint(e) for e in semi.rhs]
    pairs = jl.simplify_texts(rows, list(names.values()), texts)
    namespace = _namespace(semi, names)
    invariants = invariant_symbols(semi)
    rng = np.random.default_rng(0)
    report: dict = {"backend": "julia", "fields": {}}
    new_rhs = []
    for f, expr, (plain, expanded) in zip(semi.fields, semi.rhs, pairs):
        raw_cost = point_ops(expr, invariants)
        best, best_cost = expr, raw_cost
        julia_costs = []
        free = sorted(expr.free_symbols, key=lambda s: s.name)
        for text in (plain, expanded):
            cand = sp.sympify(parse_julia(text, namespace, f"Symbolics result for {f!r}", coordinates=system.axes))
            cost = point_ops(cand, invariants)
            julia_costs.append(cost)
            if cost < best_cost and _agrees(expr, cand, free, rng):
                best, best_cost = cand, cost
        new_rhs.append(best)
        report["fields"][f] = {
            "ops_raw": int(sp.count_ops(expr)),
            "ops_per_cell_raw": raw_cost,
            "ops_per_cell": best_cost,
            "ops_julia": julia_costs,
        }
    report["ops_per_cell_before_cse"] = sum(v["ops_per_cell"] for v in report["fields"].values())
    report["ops_per_cell_cse"] = lower(new_rhs, invariants).point_ops()
    semi.rhs = new_rhs
    semi.simplification = report
    return semi


def check_available() -> None:
    """Raise :class:`~pdeforge.errors.JuliaUnavailable` at once when no usable Julia is found."""
    from pdeforge.julia.environment import find_julia

    find_julia()

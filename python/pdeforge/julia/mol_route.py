"""MethodOfLines.jl and whole-grid Symbolics tracing, run from Python through module PDEForge.

* :func:`solve_methodoflines`: the problem :func:`pdeforge.julia.export.mol_problem` describes,
  solved in this process by ``PDEForge.mol_solve`` (``PDESystem`` -> ``MOLFiniteDifference``
  -> ``discretize`` -> ``solve``), returned as an ``xarray.Dataset`` on the MethodOfLines grid.
* :class:`TracedSystem`: the semi-discrete system of one grid traced into Symbolics, compiled
  with ``build_function(...; parallel = MultithreadedForm())`` with its ``sparsejacobian``
  (the Symbolics.jl auto-parallel tutorial, applied to any pdeforge system); ``rhs(t, y)`` and
  ``jacobian(t, y)`` have SciPy's conventions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sps

from pdeforge.discretize.grid import UniformGrid
from pdeforge.symbolic.system import PDESystem


def mol_spec_text(problem) -> str:
    """The ``PDEForge.mol_solve`` specification of a :class:`~pdeforge.julia.methodoflines.MOLProblem`."""
    from pdeforge.julia.methodoflines import array_discretization, sparse_jacobian
    from pdeforge.julia.script import make_printer, script_names

    import sympy as sp

    system = problem.system
    names = script_names(problem)
    printer = make_printer(problem, exact=True, inline_faces=True)
    # MethodOfLines' own Differential objects: no operator names, every derivative inline
    printer.derivative_names = {}
    lines = [
        "coords " + " ".join(system.axes),
        "fields " + " ".join(names[sp.Symbol(f)] for f in system.fields),
        f"align {problem.align}",
        f"order {problem.order}",
        f"time {problem.t_span[0]!r} {problem.t_span[1]!r}",
        "saveat " + " ".join(repr(float(v)) for v in problem.save_times),
    ]
    for a, (lo, hi), n in zip(system.axes, problem.bounds, problem.points):
        lines.append(f"domain {a} {float(lo)!r} {float(hi)!r} {n}")
    # parameters as numbers: the equations are solved for pdeforge's values
    values = {sym: sp.Float(system.params[p]) for p, sym in system.param_symbols.items()}
    for f in system.fields:
        lines.append(f"eq {names[sp.Symbol(f)]} {printer.doprint(system.rhs[f].xreplace(values))}")
    for b in problem.boundary:
        lines.append(f"bc {printer.doprint(b.lhs.xreplace(values))}\t{printer.doprint(b.rhs.xreplace(values))}")
    # the same discretization choices as the exported script (pdeforge.julia.script)
    if problem.mixed_derivatives:
        lines.append("advection weno")
    if array_discretization(problem):
        lines.append("strategy array")
    if sparse_jacobian(problem):
        lines.append("jacobian sparse")
    method = f"method {problem.method}"
    if problem.method in ("euler", "rk4", "ssprk3"):
        method += f" dt {problem.dt!r}"
    else:
        method += f" rtol {problem.rtol!r} atol {problem.atol!r}"
    lines.append(method)
    return "\n".join(lines)


def solve_methodoflines(
    system: PDESystem | str,
    grid: int | Sequence[int] | UniformGrid | None = None,
    t_span=None,
    ic: Mapping[str, object] | None = None,
    method: str | None = None,
    dt: float | None = None,
    save_every: float | None = None,
    order: int = 2,
    params: Mapping[str, float] | None = None,
    seed: int | None = None,
):
    """Solve with MethodOfLines.jl in this process; arguments as in :func:`pdeforge.solve`.

    Returns:
        ``xarray.Dataset`` on the MethodOfLines grid (see
        :func:`pdeforge.julia.export.on_pdeforge_grid` to pick pdeforge's cell centres).

    Raises:
        JuliaUnavailable: without Julia; MethodOfLinesUnsupported for systems it cannot express.
    """
    import xarray as xr

    from pdeforge.julia.export import mol_problem
    from pdeforge.julia.bridge import session

    problem = mol_problem(system, grid, t_span, ic, method, dt, save_every, order, params, seed)
    jl = session()
    text = mol_spec_text(problem)
    add_table = jl.julia_function("add_table")
    extra = []
    dim = problem.system.dim
    from pdeforge.julia.script import make_printer, script_names

    import sympy as sp

    names = script_names(problem)
    g = problem.grid
    for iv in problem.initial:
        if iv.table is not None:
            data = np.ascontiguousarray(iv.table, dtype=float)
            k = int(add_table(data.ctypes.data, data.size, tuple(g.shape), tuple(a for a, _ in g.domain),
                              tuple(g.spacing), tuple(problem.periodic)))
            extra.append(f"ic {names[sp.Symbol(iv.field)]} sampled{dim}({k}, {', '.join(problem.system.axes)})")
        else:
            values = {sym: sp.Float(problem.system.params[p]) for p, sym in problem.system.param_symbols.items()}
            text_ic = make_printer(problem, inline_faces=True).doprint(iv.expr.xreplace(values))
            extra.append(f"ic {names[sp.Symbol(iv.field)]} {text_ic}")
    try:
        times, grids, values = jl.julia_function("mol_solve")(text + "\n" + "\n".join(extra))
    finally:
        jl.julia_function("clear_tables!")()
    coords = {"t": np.array(times, dtype=float)}
    coords.update({a: np.array(v, dtype=float) for a, v in zip(problem.system.axes, grids)})
    dims = ("t", *problem.system.axes)
    data = {f: (dims, np.array(v, dtype=float)) for f, v in zip(problem.system.fields, values)}
    return xr.Dataset(data, coords=coords, attrs={"backend": "methodoflines", "align": problem.align})


class TracedSystem:
    """The semi-discrete system of ``system`` on ``grid``, traced and compiled by Symbolics.jl.

    Args:
        system: the PDE system.
        grid: the grid (every cell becomes explicit symbolic expressions: keep it small).
        order: accuracy order of the differences.
    """

    def __init__(self, system: PDESystem, grid: UniformGrid, order: int = 2):
        from pdeforge.codegen.build import compile_system
        from pdeforge.julia.target import julia_spec
        from pdeforge.codegen.module import kernel_spec
        from pdeforge.simplify.rewrite import simplify
        from pdeforge.discretize.semidiscrete import discretize
        from pdeforge.julia.bridge import session

        self.jl = session()
        self.system = system
        self.grid = grid
        # ghost filling and boundary values: the NumPy kernel's layout, shared with every target
        self.bound = compile_system(system, target="numpy", order=order).bind(grid)
        spec = kernel_spec(simplify(discretize(system, order)))
        coords = tuple(tuple(float(v) for v in c) for c in grid.coordinates)
        self.id = int(self.jl.julia_function("trace_system")(julia_spec(spec), tuple(grid.shape), coords))
        colptr, rowval, shape = self.jl.julia_function("traced_pattern")(self.id)
        colptr = np.array(colptr, dtype=np.int64) - 1
        rowval = np.array(rowval, dtype=np.int64) - 1
        self._pattern = (colptr, rowval, tuple(int(n) for n in shape))
        self._P = self.bound.layout.embedding()
        self._rhs = self.jl.julia_function("traced_rhs!")
        self._jac = self.jl.julia_function("traced_jac!")

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """SciPy-style right-hand side (flat cell values in, flat time derivative out)."""
        b = self.bound
        U = b.pad(y, t)
        out = np.empty(b.size)
        self._rhs(self.id, U.ctypes.data, U.size, out.ctypes.data, out.size, float(t),
                  b.p.ctypes.data, b.p.size, b.h.ctypes.data, b.h.size)
        return out

    def jacobian(self, t: float, y: np.ndarray) -> sps.csr_matrix:
        """Exact Jacobian d rhs / d cells: Symbolics' sparse d rhs / d padded, times the ghost embedding."""
        b = self.bound
        U = b.pad(y, t)
        colptr, rowval, shape = self._pattern
        nz = np.empty(rowval.size)
        self._jac(self.id, U.ctypes.data, U.size, nz.ctypes.data, nz.size, float(t),
                  b.p.ctypes.data, b.p.size, b.h.ctypes.data, b.h.size)
        J_pad = sps.csc_matrix((nz, rowval, colptr), shape=shape)
        P = b.layout.embedding(float(t)) if b.layout.time_dependent_weights else self._P  # Robin of t
        return (J_pad @ P).tocsr()

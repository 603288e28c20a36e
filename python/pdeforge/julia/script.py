"""A standalone Julia script (ModelingToolkit + MethodOfLines) of a pdeforge problem.

The script declares ``@independent_variables`` (t and the coordinates), ``@parameters`` (with
pdeforge's values), ``@variables``, the ``Differential`` operators, the equations, every
boundary condition, the initial values (expressions, or pdeforge's initial cell values as a
lookup table registered with ``@register_symbolic``: up to :data:`LITERAL_VALUES` values as a
literal, more in a binary file next to the script read with ``read!``), the domains, the
``PDESystem``, ``MOLFiniteDifference`` (axes checked by ``mol_axis``, ``ArrayDiscretization()``
on large grids), ``discretize`` (a sparse symbolic Jacobian for the implicit method), ``solve``
with the OrdinaryDiffEq counterpart of pdeforge's method, and writes the solution to a plain
CSV file (``t,x,...,field...``, one row per grid point and save time) that
:func:`pdeforge.julia.export.read_mol_csv` turns into an ``xarray.Dataset``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from pdeforge import __version__
from pdeforge.errors import PDEForgeError
from pdeforge.julia.printer import JuliaPrinter, julia_identifier
from pdeforge.julia.methodoflines import ALGORITHMS, MOLProblem, array_discretization, face_symbols, sparse_jacobian

#: names the script defines itself; user names that collide get a trailing underscore
SCRIPT_NAMES = frozenset(
    """t x y z Dt eqs bcs domains pdesys discretization prob sol alg saveat out io ts grids field_values
    values PDEForgeTable pdeforge_lookup pdeforge_read mol_axis Interval erf solve discretize""".split()
)
VALUES_PER_LINE = 6
#: initial-value tables up to this many values are written into the script as a literal; larger
#: ones go to a binary file next to it (Julia parses and lowers long literals slowly)
LITERAL_VALUES = 256

# the same check as PDEForge.mol_axis (julia/PDEForge.jl), for the standalone script
MOL_AXIS = """\
# MethodOfLines turns a point count into the float range lo:dx:hi and, when rounding leaves its
# last point short of hi, appends hi as one more, nearly coincident point
# (MethodOfLines src/discretization/discretize_vars.jl); give the points as a vector then
function mol_axis(lo, hi, n, edge)
    m = edge ? n + 1 : n  # edge_align: the n + 1 cell faces; center_align: the n nodes
    r = lo:((hi - lo) / (m - 1)):hi
    (length(r) == m && r[end] == hi) && return n
    g = collect(Float64, range(lo, hi; length = m))
    g[1], g[end] = lo, hi
    return g
end
"""


def _float(v: float) -> str:
    return repr(float(v))


def script_names(problem: MOLProblem) -> dict[sp.Symbol, str]:
    """Julia names of parameters and fields (renamed away from keywords and script names)."""
    system = problem.system
    taken = set(SCRIPT_NAMES) | {f"D{a}" for a in system.axes} | {f"D{a}{a}" for a in system.axes}
    taken |= {f"{a}_min" for a in system.axes} | {f"{a}_max" for a in system.axes}
    names: dict[sp.Symbol, str] = {}
    for f in system.fields:
        names[sp.Symbol(f)] = julia_identifier(f, taken)
        taken.add(names[sp.Symbol(f)])
    for p, sym in system.param_symbols.items():
        names[sym] = julia_identifier(p, taken)
        taken.add(names[sym])
    for f in system.fields:
        taken.add(f"{names[sp.Symbol(f)]}_ic")
    return names


def _derivative_names(problem: MOLProblem) -> dict[tuple[sp.Symbol, int], str]:
    return {
        **{(c, 1): f"D{c.name}" for c in problem.system.coords},
        **{(c, 2): f"D{c.name}{c.name}" for c in problem.system.coords},
    }


def make_printer(problem: MOLProblem, exact: bool = True, inline_faces: bool = False) -> JuliaPrinter:
    """The printer of the problem's expressions (script names; faces by name or by value)."""
    names = script_names(problem)
    if inline_faces:
        for (lo, hi), (a, b) in zip(face_symbols(problem.system), problem.bounds):
            names[lo] = _float(a)
            names[hi] = _float(b)
    return JuliaPrinter(names=names, fields="call", derivative_names=_derivative_names(problem), exact=exact)


def _uses(problem: MOLProblem, cls) -> bool:
    exprs = list(problem.system.rhs.values()) + [b.lhs for b in problem.boundary] + [b.rhs for b in problem.boundary]
    exprs += [iv.expr for iv in problem.initial if iv.expr is not None]
    return any(e.has(cls) for e in exprs)


def _table_literal(values) -> list[str]:
    flat = [_float(v) for v in values.ravel(order="C")]
    rows = [", ".join(flat[i:i + VALUES_PER_LINE]) for i in range(0, len(flat), VALUES_PER_LINE)]
    return ["    " + r + "," for r in rows]


def table_files(problem: MOLProblem, stem: str) -> dict[str, np.ndarray]:
    """The initial-value tables too large for a literal: file name (next to the script) -> values.

    Args:
        problem: the problem.
        stem: the script's file name without ``.jl``.
    """
    tables = {iv.field: iv.table for iv in problem.initial}
    return {name: tables[f] for f, name in _file_names(problem, stem).items()}


def _file_names(problem: MOLProblem, stem: str) -> dict[str, str]:
    names = script_names(problem)
    return {
        iv.field: f"{stem}_{names[sp.Symbol(iv.field)]}_ic.f64"
        for iv in problem.initial
        if iv.table is not None and iv.table.size > LITERAL_VALUES
    }


def julia_script(problem: MOLProblem, out: str = "pdeforge_mol.csv", stem: str | None = None) -> str:
    """The script text of ``problem``; it writes its solution to ``out`` (or ``$PDEFORGE_MOL_OUT``).

    Args:
        problem: the problem.
        out: the CSV file the script writes.
        stem: the script's file name without ``.jl``; tables listed by :func:`table_files`
            are read from files named after it in the script's folder (``@__DIR__``).
    """
    system = problem.system
    names = script_names(problem)
    printer = make_printer(problem)
    fields = [names[sp.Symbol(f)] for f in system.fields]
    axes = list(system.axes)
    args = ", ".join(["t", *axes])
    alg, package = ALGORITHMS[problem.method]
    lines = [
        f"# pdeforge {__version__}: {system.name} as a ModelingToolkit PDESystem for MethodOfLines.jl",
        "#",
        *[f"#   {line}" for line in system.equations_text().splitlines()],
        "#",
        f"# pdeforge grid: {problem.grid.describe()}; MethodOfLines grid_align = {problem.align}_align"
        + ("" if problem.matches_grid else " (nodes differ from pdeforge's cell centres)"),
        *[f"# note: {n}" for n in problem.notes],
        "# Run with the Julia environment of pdeforge's repository (Project.toml):",
        "#   julia --project=/path/to/pdeforge this_script.jl",
        "",
        "using ModelingToolkit, MethodOfLines, DomainSets, OrdinaryDiffEq",
    ]
    if package != "OrdinaryDiffEq":
        lines.append(f"using {package}: {alg}")
    if _uses(problem, sp.erf):
        lines.append("using SpecialFunctions: erf")
    lines.append("")
    if _uses(problem, sp.Heaviside):
        lines += [
            "# Heaviside step with value h0 at 0, traceable by Symbolics (no `if`)",
            "heaviside(a, h0) = ifelse(a > zero(a), one(a), ifelse(a < zero(a), zero(a), oftype(one(a), h0)))",
            "",
        ]
    # ModelingToolkit 11 checks that the independent variables are made with @independent_variables
    lines.append("@independent_variables " + " ".join(["t", *axes]))
    for p, sym in system.param_symbols.items():
        lines.append(f"@parameters {names[sym]} = {_float(system.params[p])}")
    lines.append("@variables " + " ".join(f"{f}(..)" for f in fields))
    lines.append("Dt = Differential(t)")
    for a in axes:
        lines.append(f"D{a} = Differential({a})")
        lines.append(f"D{a}{a} = Differential({a})^2")
    lines.append("")
    lines.append("# domain ends (periodic axes are shifted by half a cell so that the nodes are pdeforge's cell centres)")
    for a, (lo, hi), n, h in zip(axes, problem.bounds, problem.grid.shape, problem.grid.spacing):
        lines.append(f"{a}_min = {_float(lo)}")
        lines.append(f"{a}_max = {_float(hi)}   # {n} cells of width {_float(h)}")
    lines.append("")
    tables = [iv for iv in problem.initial if iv.table is not None]
    if tables:
        lines += _table_code(problem, names, tables, stem)
    # each equation in parentheses: `a ~ b,` inside brackets trips some Julia parsers (tree-sitter)
    lines.append("eqs = [")
    for f, name in zip(system.fields, fields):
        lines.append(f"    (Dt({name}({args})) ~ {printer.doprint(system.rhs[f])}),")
    lines.append("]")
    lines.append("")
    lines.append("bcs = [")
    for iv, name in zip(problem.initial, fields):
        init = f"{name}_ic({', '.join(axes)})" if iv.table is not None else printer.doprint(iv.expr)
        lines.append(f"    ({name}({', '.join([_float(problem.t_span[0]), *axes])}) ~ {init}),  # initial value")
    for b in problem.boundary:
        lines.append(f"    ({printer.doprint(b.lhs)} ~ {printer.doprint(b.rhs)}),  # {b.field}, {axes[b.axis]} {b.side}: {b.text}")
    lines.append("]")
    lines.append("")
    lines.append("domains = [")
    lines.append(f"    t ∈ Interval({_float(problem.t_span[0])}, {_float(problem.t_span[1])}),")
    for a in axes:
        lines.append(f"    {a} ∈ Interval({a}_min, {a}_max),")
    lines.append("]")
    lines.append("")
    params = ", ".join(names[sym] for sym in system.param_symbols.values())
    dependent = ", ".join(f"{f}({args})" for f in fields)
    lines.append(
        f"@named pdesys = PDESystem(eqs, bcs, domains, [{args}], [{dependent}]" + (f", [{params}])" if params else ")")
    )
    edge = "true" if problem.align == "edge" else "false"
    lines += MOL_AXIS.splitlines()
    dxs = ", ".join(f"{a} => mol_axis({a}_min, {a}_max, {n}, {edge})" for a, n in zip(axes, problem.points))
    options = [f"approx_order = {problem.order}", f"grid_align = {problem.align}_align"]
    if problem.mixed_derivatives:
        lines.append("# mixed derivatives: MethodOfLines discretizes them with its WENO scheme")
        options.append("advection_scheme = WENOScheme()")
    if array_discretization(problem):
        lines.append("# a large grid: one symbolic array equation per PDE interior instead of one per point")
        options.append("discretization_strategy = ArrayDiscretization()")
    lines.append(f"discretization = MOLFiniteDifference([{dxs}], t; {', '.join(options)})")
    if sparse_jacobian(problem):
        lines.append("# implicit method: the symbolic Jacobian, sparse, instead of finite-difference coloring")
        lines.append("prob = discretize(pdesys, discretization; jac = true, sparse = true)")
    else:
        lines.append("prob = discretize(pdesys, discretization)")
    lines.append("saveat = [" + ", ".join(_float(v) for v in problem.save_times) + "]")
    if problem.method in ("euler", "rk4", "ssprk3"):
        lines.append(f"sol = solve(prob, {alg}(); dt = {_float(problem.dt)}, adaptive = false, tstops = saveat, saveat = saveat)")
    else:
        lines.append(
            f"sol = solve(prob, {alg}(); reltol = {_float(problem.rtol)}, abstol = {_float(problem.atol)}, saveat = saveat)"
        )
    lines.append("")
    lines.append("# one row per save time and grid point: t, coordinates, fields")
    lines.append(f'out = get(ENV, "PDEFORGE_MOL_OUT", {_julia_string(out)})')
    lines.append("ts = sol[t]")
    lines.append("grids = (" + ", ".join(f"sol[{a}]" for a in axes) + ",)")
    lines.append("field_values = (" + ", ".join(f"sol[{f}({args})]" for f in fields) + ",)")
    lines.append('open(out, "w") do io')
    lines.append(f'    println(io, "t,{",".join(axes)},{",".join(system.fields)}")')
    lines.append("    for (it, tv) in enumerate(ts), I in CartesianIndices(length.(grids))")
    lines.append("        point = ntuple(a -> grids[a][I[a]], length(grids))")
    lines.append("        row = (tv, point..., (v[it, Tuple(I)...] for v in field_values)...)")
    lines.append('        println(io, join(row, ","))')
    lines.append("    end")
    lines.append("end")
    lines.append('println("MethodOfLines solution written to ", out)')
    return "\n".join(lines) + "\n"


def _julia_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _table_code(problem: MOLProblem, names, tables, stem: str | None) -> list[str]:
    grid = problem.grid
    axes = list(problem.system.axes)
    lo = ", ".join(_float(a) for a, _ in grid.domain)
    h = ", ".join(_float(v) for v in grid.spacing)
    per = ", ".join("true" if p else "false" for p in problem.periodic)
    lines = [
        "# pdeforge's initial cell values, looked up by the cell that contains a point",
        "struct PDEForgeTable{N}",
        "    data::Array{Float64,N}",
        "    lo::NTuple{N,Float64}",
        "    h::NTuple{N,Float64}",
        "    periodic::NTuple{N,Bool}",
        "end",
        "function pdeforge_lookup(tab::PDEForgeTable{N}, xs::NTuple{N,Real}) where {N}",
        "    idx = ntuple(N) do a",
        "        n = size(tab.data, a)",
        "        i = floor(Int, (xs[a] - tab.lo[a]) / tab.h[a]) + 1",
        "        tab.periodic[a] ? mod1(i, n) : clamp(i, 1, n)",
        "    end",
        "    return tab.data[idx...]",
        "end",
        "",
    ]
    files = _file_names(problem, stem or "")
    if files:
        if stem is None:
            raise PDEForgeError(
                f"{problem.system.name}: the initial values have {max(iv.table.size for iv in tables)} cells, "
                f"more than the {LITERAL_VALUES} written into a script: give the script's file name (script=FILE.jl, "
                "--out FILE.jl) so that they are written next to it"
            )
        lines += [
            "# little-endian Float64 values in a file next to this script",
            "function pdeforge_read(file, n)",
            "    path = joinpath(@__DIR__, file)",
            "    filesize(path) == 8n || error(\"$path: expected $n Float64 values ($(8n) bytes)\")",
            "    return ltoh.(read!(path, Vector{Float64}(undef, n)))",
            "end",
            "",
        ]
    shape = ", ".join(str(n) for n in reversed(grid.shape))
    perm = ", ".join(str(k) for k in range(grid.dim, 0, -1))
    for iv in tables:
        name = names[sp.Symbol(iv.field)]
        lines.append(f"# {iv.field} at t = {_float(problem.t_span[0])}: {grid.describe()}, C order")
        rest = f"{shape}), ({perm},)), ({lo},), ({h},), ({per},))"
        start = f"const {name}_ic_table = PDEForgeTable{{{grid.dim}}}(permutedims(reshape("
        if iv.field in files:
            lines.append(f"{start}pdeforge_read({_julia_string(files[iv.field])}, {iv.table.size}), {rest}")
        else:
            lines.append(start + "[")
            lines += _table_literal(iv.table)
            lines.append("], " + rest)
        lines.append(f"{name}_ic({', '.join(axes)}) = pdeforge_lookup({name}_ic_table, ({', '.join(axes)},))")
        lines.append(f"@register_symbolic {name}_ic({', '.join(axes)})")
        lines.append("")
    return lines

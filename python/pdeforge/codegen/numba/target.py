"""Numba target: one fused loop nest per kernel, every field and term evaluated per cell.

Kernels read the padded state ``S`` (fields, n0 + 2 g0, ...) and loop over the cells; the
outermost loop is a ``prange`` in the parallel variant. Besides the plain right-hand side,
the explicit integrators get *stage* kernels that fuse the Runge-Kutta linear combinations
into the same loop (one pass over memory per stage instead of three). Every kernel exists
in a parallel and a serial variant; Numba compiles only what is called, and caches it on
disk beside the generated module.

Closure terms bound to small dense networks (:mod:`pdeforge.codegen.dense_network`) are
printed as the network's layers inside the loop; their weights follow the PDE parameters in
``p`` and are read into locals before the loop.
"""

from __future__ import annotations

from pdeforge.symbolic.closure_terms import ClosureDerivativeBase, ClosureTermBase
from pdeforge.simplify.lowering import Lowered
from pdeforge.codegen.dense_network import network_lines, weight_count
from pdeforge.codegen.module import KernelSpec, boundary_value_functions, header, unpack_lines, used_symbols
from pdeforge.codegen.numba.stepping import stepping_source
from pdeforge.codegen.printing import ScalarPrinter
from pdeforge.errors import SolverError

#: Flags for LLVM: contract (FMA) and no signed zeros/reciprocal tricks; NaN/Inf semantics kept
#: so that blow-ups are still detected.
FASTMATH = "{'contract', 'arcp', 'nsz'}"
#: Cells from which the parallel variant is used. Below it a kernel call is tens of
#: microseconds, which thread start-up and barriers would dominate (and on a machine shared
#: with other busy processes, a barrier waits for a time slice: milliseconds per call).
PARALLEL_THRESHOLD = 65536


def _index(spec: KernelSpec, field: int, off: tuple[int, ...]) -> str:
    parts = []
    for a, o in enumerate(off):
        shift = spec.semi.ghost[a] + o
        parts.append(f"i{a} + {shift}" if shift else f"i{a}")
    return f"[{field}, " + ", ".join(parts) + "]"


def _center(spec: KernelSpec) -> str:
    return _index(spec, 0, (0,) * spec.dim).replace("[0, ", "[f, ")


def _printer(spec: KernelSpec, array: str = "S") -> ScalarPrinter:
    names = dict(spec.names)
    for sym, (f, off) in spec.semi.symbols.table.items():
        names[sym] = array + _index(spec, f, off)
    return ScalarPrinter(names, float_type=_float_type(spec))


def _float_type(spec: KernelSpec) -> str | None:
    """The constructor numbers are wrapped in (None: float64 literals)."""
    return "np.float32" if spec.dtype == "float32" else None


_SCALARS = ("t", "a", "b", "c", "c1", "c2")


def _def_lines(spec: KernelSpec, name: str, args: str) -> list[str]:
    """``def name(args, p, h, coords):``; a single-precision kernel takes its scalar arguments
    (time, stage coefficients) as ``<name>_in`` and casts them to float32 under their own
    names at entry (a new variable: Numba would unify a reassigned float64 argument back to
    float64), so that no float64 value enters the loop."""
    cast = _float_type(spec)
    names = [x.strip() for x in args.split(",")]
    if cast is None:
        return [f"def {name}({_signature(spec, args)}):"]
    renamed = ", ".join(f"{a}_in" if a in _SCALARS else a for a in names)
    return [f"def {name}({_signature(spec, renamed)}):"] + [f"    {a} = {cast}({a}_in)" for a in names if a in _SCALARS]


def _loop(spec: KernelSpec, lowered: Lowered, parallel: bool, write, indent: str = "    ",
          rows: bool = False) -> list[str]:
    """The loop nest over cells; ``write(k, expr_text, indent)`` returns the lines storing output k.
    ``rows``: the outermost axis runs over cells ``lo <= i0 < hi`` only (arguments of the kernel)."""
    printer = _printer(spec)
    used = used_symbols(lowered)
    lines = []
    for sym, expr in lowered.invariants:
        lines.append(f"{indent}{sym.name} = {printer.doprint(expr)}")
    dim = spec.dim
    for a, ax in enumerate(spec.semi.system.axes):
        # the cell count from the coordinates, not the array: padded arrays may carry unused
        # columns after the last ghost (rows aligned to 64 bytes, see BoundKernel.new_aligned)
        lines.append(f"{indent}n{a} = c{ax}.shape[0]")
    coords = spec.semi.system.coords
    depth = indent
    for a in range(dim):
        loop = "prange" if (parallel and a == 0) else "range"
        extent = "lo, hi" if (rows and a == 0) else f"n{a}"
        lines.append(f"{depth}for i{a} in {loop}({extent}):")
        depth += "    "
        if coords[a] in used:
            lines.append(f"{depth}{coords[a].name} = c{coords[a].name}[i{a}]")
    for sym, expr in lowered.temporaries:
        if isinstance(expr, (ClosureTermBase, ClosureDerivativeBase)):
            lines += _network_call(spec, printer, sym.name, expr, depth)
        else:
            lines.append(f"{depth}{sym.name} = {printer.doprint(expr)}")
    # every value first, every store last: interleaved stores would make LLVM assume the
    # output may alias the state and give up vectorizing
    stores = []
    for k, expr in enumerate(lowered.outputs):
        compute, store = write(k, printer.doprint(expr), depth)
        lines += compute
        stores += store
    return lines + stores


def _weight_names(spec: KernelSpec) -> dict[str, list[str]]:
    """Closure name -> the locals holding its network's weights (unpacked from ``p``)."""
    return {name: [f"_w{c}_{q}" for q in range(weight_count(layout))]
            for c, (name, layout) in enumerate(sorted(spec.closure_layouts.items()))}


def _weight_lines(spec: KernelSpec, lowered: Lowered, indent: str) -> list[str]:
    """Reads of the weights of the networks ``lowered`` calls, from ``p`` after the parameters."""
    used = {e.closure_name for _, e in lowered.temporaries if isinstance(e, (ClosureTermBase, ClosureDerivativeBase))}
    offset = len(spec.semi.param_symbols)
    lines = []
    for name, names in _weight_names(spec).items():
        if name in used:
            lines += [f"{indent}{w} = p[{offset + q}]" for q, w in enumerate(names)]
        offset += len(names)
    return lines


def _network_call(spec: KernelSpec, printer: ScalarPrinter, target: str, call, indent: str) -> list[str]:
    """``target = network(args)`` (or one partial derivative) as straight-line lines."""
    name = call.closure_name
    if name not in spec.closure_layouts:
        raise SolverError(f"closure {name!r} has no network bound for the 'numba' target")
    wrt = call.closure_index if isinstance(call, ClosureDerivativeBase) else None
    body, result = network_lines(spec.closure_layouts[name], _weight_names(spec)[name],
                                 [printer.doprint(a) for a in call.args], f"{target}_", wrt)
    return [f"{indent}{line}" for line in body] + [f"{indent}{target} = {result}"]


def _signature(spec: KernelSpec, extra: str) -> str:
    coords = ", ".join(f"c{ax}" for ax in spec.semi.system.axes)
    return f"{extra}, p, h, {coords}"


def generate(spec: KernelSpec, key: str) -> str:
    """Source of the Numba kernel module for ``spec``."""
    lines = header(spec, "numba", key, ["from numba import njit, prange"])
    lines.append(f"PARALLEL_THRESHOLD = {PARALLEL_THRESHOLD}")
    lines.append("")
    lines += boundary_value_functions(spec)
    nf = len(spec.semi.fields)
    interior = ", ".join(f"i{a}" for a in range(spec.dim))
    center = _center(spec)
    used_rhs = used_symbols(spec.rhs)
    used_jac = used_symbols(spec.jacobian)

    def rhs_write(k, text, ind):
        return [f"{ind}k{k} = {text}"], [f"{ind}OUT[{k}, {interior}] = k{k}"]

    def axpy_write(k, text, ind):
        c = center.replace("[f, ", f"[{k}, ")
        return (
            [f"{ind}k{k} = {text}", f"{ind}y{k} = a * Y0{c} + b * S{c} + c * k{k}"],
            [f"{ind}OUT{c} = y{k}"],
        )

    def euler_write(k, text, ind):  # forward Euler alone: no second state to read
        c = center.replace("[f, ", f"[{k}, ")
        return [f"{ind}k{k} = {text}", f"{ind}y{k} = S{c} + c * k{k}"], [f"{ind}OUT{c} = y{k}"]

    def two_write(k, text, ind):
        c = center.replace("[f, ", f"[{k}, ")
        return (
            [f"{ind}k{k} = {text}", f"{ind}y{k} = Y0{c} + c1 * k{k}", f"{ind}z{k} = A{c} + c2 * k{k}"],
            [f"{ind}OUT{c} = y{k}", f"{ind}OUTA{c} = z{k}"],
        )

    kernels = [
        ("rhs", "S, OUT, t", spec.rhs, used_rhs, rhs_write),
        ("stage_axpy", "S, Y0, OUT, t, a, b, c", spec.rhs, used_rhs, axpy_write),
        ("stage_two", "S, Y0, A, OUT, OUTA, t, c1, c2", spec.rhs, used_rhs, two_write),
        ("stage_euler", "S, OUT, t, c", spec.rhs, used_rhs, euler_write),
        ("jac", "S, OUT, t", spec.jacobian, used_jac, rhs_write),
    ]
    for name, args, lowered, used, write in kernels:
        for parallel in (True, False):
            suffix = "par" if parallel else "ser"
            lines.append(
                f"@njit(cache=True, parallel={parallel}, fastmath={FASTMATH}, error_model='numpy', nogil=True)"
            )
            lines += _def_lines(spec, f"_{name}_{suffix}", args)
            lines += unpack_lines(spec, "    ", used)
            lines += _weight_lines(spec, lowered, "    ")
            lines += _loop(spec, lowered, parallel, write)
            lines.append("")
            lines.append("")
    # forward Euler over a range of outermost cells (rows, planes): the wavefront sweep's unit
    lines.append(f"@njit(cache=True, parallel=False, fastmath={FASTMATH}, error_model='numpy', nogil=True)")
    lines += _def_lines(spec, "_stage_euler_rows", "S, OUT, t, c, lo, hi")
    lines += unpack_lines(spec, "    ", used_rhs)
    lines += _weight_lines(spec, spec.rhs, "    ")
    lines += _loop(spec, spec.rhs, False, euler_write, rows=True)
    lines += ["", ""]
    lines += stepping_source(spec)
    names = [k[0] for k in kernels]
    lines.append("KERNELS = {")
    for name in names:
        lines.append(f"    ({name!r}, True): _{name}_par,")
        lines.append(f"    ({name!r}, False): _{name}_ser,")
    lines.append("}")
    lines.append(f"NFIELDS = {nf}")
    return "\n".join(lines) + "\n"


def count_loads(spec: KernelSpec) -> int:
    """Distinct stencil values read per cell by the right-hand side (for traffic estimates)."""
    return len(spec.rhs.free_symbols() & set(spec.semi.symbols.table))


__all__ = ["generate", "count_loads", "FASTMATH", "PARALLEL_THRESHOLD"]

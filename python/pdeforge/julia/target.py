"""Julia target: stencil kernels compiled by Symbolics.jl's ``build_function`` in module PDEForge.

The generated Python module (cached on disk like every target's) carries the usual metadata
and NumPy boundary-value functions, plus ``JULIA_SPEC``: the loop invariants and the
per-cell right-hand sides in Julia syntax (stencil values as ``stencil(u, 1, 0)``, printed
by :class:`~pdeforge.julia.printer.JuliaPrinter`) and the Jacobian entries wanted.
On first use Julia reads the specification with its allow-list reader, differentiates it
with ``Symbolics.sparsejacobian``, compiles per-cell functions with ``build_function``
(in-place, serial form, common subexpressions eliminated) and loops them over the cells,
serially or with ``Threads.@threads`` over the first axis. Kernels read and write the
NumPy arrays in place.
"""

from __future__ import annotations

import sympy as sp

from pdeforge.julia.printer import JuliaPrinter
from pdeforge.codegen.module import KernelSpec, boundary_value_functions, header

#: Cells from which the threaded loop is used (when Julia runs more than one thread).
PARALLEL_THRESHOLD = 16384


def check_available() -> None:
    """Fail fast, before any symbolic work, when no Julia can be found (nothing is started)."""
    from pdeforge.julia.environment import find_julia

    find_julia()


def _untangle(lowered) -> list[sp.Expr]:
    """The outputs with the common subexpressions substituted back (Symbolics redoes its own CSE)."""
    sub: dict = {}
    for sym, expr in lowered.temporaries:
        sub[sym] = expr.xreplace(sub)
    return [e.xreplace(sub) for e in lowered.outputs]


def julia_spec(spec: KernelSpec) -> str:
    """The kernel specification text read by ``PDEForge.parse_spec``."""
    semi = spec.semi
    system = semi.system
    stencil = {sym: (semi.fields[f], off) for sym, (f, off) in semi.symbols.table.items()}
    printer = JuliaPrinter(names=spec.names, stencil=stencil, exact=False)
    lines = [
        "fields " + " ".join(semi.fields),
        "ghost " + " ".join(str(g) for g in semi.ghost),
        "params " + " ".join(spec.names[p] for p in semi.param_symbols),
        "spacing " + " ".join(h.name for h in semi.spacing),
        "coords " + " ".join(c.name for c in system.coords),
    ]
    for sym, expr in spec.rhs.invariants:
        lines.append(f"invariant {sym.name} {printer.doprint(expr)}")
    for expr in _untangle(spec.rhs):
        lines.append(f"rhs {printer.doprint(expr)}")
    for f, g, off in spec.jac_entries:
        lines.append(f"jac {f} {g} " + " ".join(str(int(o)) for o in off))
    return "\n".join(lines)


def generate(spec: KernelSpec, key: str) -> str:
    """Source of the Python module that runs the Julia kernels of ``spec``."""
    lines = header(spec, "julia", key, ["from pdeforge.julia.kernels import julia_kernels"])
    lines.append(f"PARALLEL_THRESHOLD = {PARALLEL_THRESHOLD}")
    lines.append("")
    lines += boundary_value_functions(spec)
    lines.append(f"JULIA_SPEC = {julia_spec(spec)!r}")
    lines.append("")
    lines.append("# built in Julia on first call (Symbolics build_function + sparsejacobian)")
    lines.append("KERNELS = julia_kernels(JULIA_SPEC)")
    lines.append(f"NFIELDS = {len(spec.semi.fields)}")
    return "\n".join(lines) + "\n"


__all__ = ["generate", "julia_spec", "check_available", "PARALLEL_THRESHOLD"]

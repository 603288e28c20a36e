"""NumPy target: vectorised slices of the padded state, one array expression per output.

The reference implementation every other target is checked against. Stencil values are
views (``S[0, 2:2+n0, 1:1+n1]``), so nothing is copied; temporaries are whole arrays.
"""

from __future__ import annotations

from pdeforge.simplify.lowering import Lowered
from pdeforge.codegen.module import KernelSpec, boundary_value_functions, header, unpack_lines, used_symbols
from pdeforge.codegen.printing import ArrayPrinter


def _slice(spec: KernelSpec, field: int, off: tuple[int, ...]) -> str:
    parts = []
    for a, o in enumerate(off):
        start = spec.semi.ghost[a] + o
        parts.append(f"{start}:{start}+n{a}" if start else f":n{a}")
    return f"S[{field}, " + ", ".join(parts) + "]"


def slab_prologue(spec: KernelSpec, lowered: Lowered, indent: str = "    ") -> tuple[list[str], dict]:
    """Lines binding the interior sizes, each stencil value (a view of the padded state ``S``)
    and the coordinates a whole-array kernel reads; and the symbol -> name map including them.

    Shared by the array targets (NumPy, PyTorch): only their printers differ.
    """
    names = dict(spec.names)
    lines = []
    used = used_symbols(lowered)
    stencil = sorted((s for s in used if s in spec.semi.symbols.table), key=lambda s: spec.semi.symbols.table[s])
    for a in range(spec.dim):
        lines.append(f"{indent}n{a} = S.shape[{a + 1}] - {2 * spec.semi.ghost[a]}")
    for k, sym in enumerate(stencil):
        f, off = spec.semi.symbols.table[sym]
        names[sym] = f"_s{k}"
        lines.append(f"{indent}_s{k} = {_slice(spec, f, off)}")
    for a, c in enumerate(spec.semi.system.coords):
        if c in used:
            shape = ["1"] * spec.dim
            shape[a] = "-1"
            lines.append(f"{indent}{c.name} = c{c.name}.reshape({', '.join(shape)})")
    return lines, names


def _body(spec: KernelSpec, lowered: Lowered, out: str, indent: str = "    ") -> list[str]:
    lines, names = slab_prologue(spec, lowered, indent)
    printer = ArrayPrinter(names)
    for sym, expr in lowered.invariants:
        lines.append(f"{indent}{sym.name} = {printer.doprint(expr)}")
    for sym, expr in lowered.temporaries:
        lines.append(f"{indent}{sym.name} = {printer.doprint(expr)}")
    for k, expr in enumerate(lowered.outputs):
        lines.append(f"{indent}{out}[{k}] = {printer.doprint(expr)}")
    return lines


def generate(spec: KernelSpec, key: str) -> str:
    """Source of the NumPy kernel module for ``spec``."""
    lines = header(spec, "numpy", key, [])
    lines += boundary_value_functions(spec)
    coords = ", ".join(f"c{ax}" for ax in spec.semi.system.axes)
    for name, lowered in (("rhs", spec.rhs), ("jac", spec.jacobian)):
        lines.append(f"def {name}(S, OUT, t, p, h, {coords}):")
        lines += unpack_lines(spec, "    ", used_symbols(lowered))
        lines += _body(spec, lowered, "OUT")
        lines.append("")
        lines.append("")
    lines.append("KERNELS = {('rhs', False): rhs, ('jac', False): jac}")
    lines.append(f"NFIELDS = {len(spec.semi.fields)}")
    return "\n".join(lines) + "\n"

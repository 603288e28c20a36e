"""Pieces shared by every generated kernel module: names, metadata, boundary values.

A generated module is plain Python source written to the kernel cache. Besides the kernels
it carries everything needed to use them without redoing any symbolic work: field and
parameter order, ghost widths, the Jacobian's stencil entries and the boundary-value
functions. Loading it from the cache is therefore all a warm start costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy as sp

from pdeforge.discretize.semidiscrete import SemiDiscrete
from pdeforge.simplify.lowering import Lowered, lower
from pdeforge.codegen.printing import ArrayPrinter


@dataclass
class KernelSpec:
    """What the target generators need, derived once from a :class:`SemiDiscrete`.

    Attributes:
        semi: the semi-discrete system (already simplified).
        invariants: symbols constant per call (parameters, widths, t).
        names: symbol -> identifier for parameters, widths, coordinates and time.
        rhs: lowered right-hand side (one output per field).
        jacobian: lowered Jacobian values (one output per entry).
        jac_entries: (row field, column field, offset) per Jacobian output.
        closure_layouts: closure name -> layout of the dense network printed for it (Numba
            target; :mod:`pdeforge.codegen.dense_network`); empty otherwise.
        dtype: "float64", or "float32" for single-precision Numba kernels (numbers and scalar
            arguments cast, so that the loops compute in float32).
    """

    semi: SemiDiscrete
    invariants: set[sp.Symbol]
    names: dict[sp.Symbol, str]
    rhs: Lowered
    jacobian: Lowered
    jac_entries: list[tuple[int, int, tuple[int, ...]]]
    closure_layouts: dict = field(default_factory=dict)
    dtype: str = "float64"

    @property
    def dim(self) -> int:
        return self.semi.dim


def kernel_spec(semi: SemiDiscrete, closure_layouts: dict | None = None, dtype: str = "float64") -> KernelSpec:
    """Lower the right-hand side and its exact Jacobian of ``semi`` into straight-line code
    (``closure_layouts``, ``dtype``: see :class:`KernelSpec`)."""
    system = semi.system
    invariants = set(semi.param_symbols) | set(semi.spacing) | {system.t}
    names: dict[sp.Symbol, str] = {system.t: "t"}
    for p in semi.param_symbols:
        names[p] = f"p_{p.name}"
    for h in semi.spacing:
        names[h] = h.name
    for c in system.coords:
        names[c] = c.name
    rhs = lower(semi.rhs, invariants)
    entries = semi.jacobian_entries()
    jac = lower([e[3] for e in entries], invariants, temp_prefix="_j", invariant_prefix="_d")
    return KernelSpec(
        semi=semi,
        invariants=invariants,
        names=names,
        rhs=rhs,
        jacobian=jac,
        jac_entries=[(f, g, off) for f, g, off, _ in entries],
        closure_layouts=dict(closure_layouts or {}),
        dtype=dtype,
    )


def header(spec: KernelSpec, target: str, key: str, imports: Sequence[str]) -> list[str]:
    """Module docstring, imports and metadata constants."""
    semi = spec.semi
    from pdeforge import __version__

    lines = [
        f"# pdeforge {__version__}: generated kernels ({target}), cache key {key}",
        "# equations:",
        *[f"#   {line.encode('ascii', 'backslashreplace').decode()}" for line in semi.system.equations_text().splitlines()],
        "import math",
        "import numpy as np",
        *(["from scipy.special import erf as _erf"] if uses_erf(spec) else []),
        *imports,
        "",
        f"TARGET = {target!r}",
        f"FIELDS = {tuple(semi.fields)!r}",
        f"PARAMS = {tuple(p.name for p in semi.param_symbols)!r}",
        f"COEFFICIENTS = {tuple(semi.coefficients)!r}",
        f"DIM = {semi.dim}",
        f"ORDER = {semi.order}",
        f"SCHEME = {semi.scheme!r}",
        f"GHOST = {tuple(semi.ghost)!r}",
        f"CLOSURE_POINTS = {semi.closure_points}",
        f"JAC_ENTRIES = {tuple(spec.jac_entries)!r}",
        f"SIMPLIFICATION = {semi.simplification!r}",
        f"OPS_PER_CELL = {spec.rhs.point_ops()}",
        f"DTYPE = {spec.dtype!r}",
        "",
    ]
    return lines


def uses_erf(spec: KernelSpec) -> bool:
    """Whether any generated expression calls erf (SciPy's is then imported for NumPy code)."""
    exprs = [e for _, e in spec.rhs.invariants + spec.rhs.temporaries] + list(spec.rhs.outputs)
    exprs += [e for _, e in spec.jacobian.invariants + spec.jacobian.temporaries] + list(spec.jacobian.outputs)
    exprs += [e for pair in spec.semi.bcs.values() for bc in pair for e in (bc.value, bc.second)]
    return any(sp.sympify(e).has(sp.erf) for e in exprs)


def boundary_value_functions(spec: KernelSpec) -> list[str]:
    """NumPy functions for the non-homogeneous boundary values, and their registry."""
    semi = spec.semi
    system = semi.system
    printer = ArrayPrinter(spec.names)
    lines = []
    registry = []
    time_dependent = []
    args = ", ".join([c.name for c in system.coords] + ["t", "p"])
    for (f, a), pair in sorted(semi.bcs.items()):
        for side, bc in enumerate(pair):
            if bc.periodic:
                continue
            # a wall closed by reflection has a second datum (symbolic/walls.py), under key (..., 2)
            for value, tag, key in ((bc.value, "bc", f"({f}, {a}, {side})"), (bc.second, "bc2", f"({f}, {a}, {side}, 2)")):
                if value == 0:
                    continue
                name = f"_{tag}_{semi.fields[f]}_{system.axes[a]}_{side}"
                lines.append(f"def {name}({args}):")
                lines += [f"    {spec.names[p]} = p[{i}]" for i, p in enumerate(semi.param_symbols)]
                lines.append(f"    return {printer.doprint(value)}")
                lines.append("")
                registry.append(f"{key}: {name}")
                if system.t in value.free_symbols:
                    time_dependent.append(key)
    lines.append("BC_VALUES = {" + ", ".join(registry) + "}")
    lines.append("BC_TIME_DEPENDENT = {" + ", ".join(time_dependent) + "}" if time_dependent else "BC_TIME_DEPENDENT = set()")
    lines.append("")
    return lines


def unpack_lines(spec: KernelSpec, indent: str, used: set[sp.Symbol]) -> list[str]:
    """Assignments of parameters and cell widths from the kernel arguments ``p`` and ``h``."""
    semi = spec.semi
    lines = []
    for i, p in enumerate(semi.param_symbols):
        if p in used:
            lines.append(f"{indent}{spec.names[p]} = p[{i}]")
    for a, h in enumerate(semi.spacing):
        if h in used:
            lines.append(f"{indent}{h.name} = h[{a}]")
    return lines


def used_symbols(lowered: Lowered) -> set[sp.Symbol]:
    """Every symbol a lowered kernel reads (including those inside invariants)."""
    return lowered.free_symbols()

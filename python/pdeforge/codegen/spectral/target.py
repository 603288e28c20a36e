"""Source of the generated pseudo-spectral kernels, for the ``numpy`` and ``torch`` targets.

A generated module holds three functions, all straight-line code printed from the plan of
:mod:`pdeforge.discretize.spectral`:

* ``multipliers(P, K)``: the Fourier multiplier arrays of the derivative nodes and of the
  linear spectral terms, built once per parameter set;
* ``rhs(UH, t, P, K, M)``: field transforms in (a list, one array per field, any leading batch
  dimensions), field tendencies out (transforms): inverse transforms of the nodes, pointwise
  evaluation of products (hoisted invariants, common subexpressions eliminated across all
  fields), dealiased forward transforms, linear terms, Leray projection of the velocity;
* ``radius(UH, t, P, K, M)``: per field, the largest real and imaginary extents of the
  linearized operator (for the CFL step).

``K`` is the runtime of :mod:`pdeforge.codegen.spectral.backend` (transforms, wavenumbers,
masks, coordinates) for the array library, device and precision chosen at bind time, so one
module serves CPU and CUDA, float32 and float64. The two targets differ in their printers
(``np.sqrt`` vs ``torch.sqrt``) and in that the NumPy code accumulates in place while the
torch code stays out of place, so autograd can differentiate through it (PINO losses).
"""

from __future__ import annotations

import sympy as sp

from pdeforge.discretize.spectral import K_MAX, K_ODD, K_SQ, KINV2, KINV2_MAX, MODE0, SpectralSemiDiscrete
from pdeforge.simplify.lowering import lower
from pdeforge.codegen.printing import ArrayPrinter, _float

TARGETS = ("numpy", "torch")


class _NumpyPrinter(ArrayPrinter):
    def _print_ImaginaryUnit(self, expr):  # noqa: N802
        return "1j"


class TorchArrayPrinter(_NumpyPrinter):
    """Tensor expressions: the NumPy printer with ``torch`` functions (same names for the
    elementary ones; Min/Max, Heaviside, Piecewise and erf in torch's vocabulary)."""

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "torch." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        return self._power(expr, "torch.sqrt")

    def _print_erf(self, expr):  # noqa: N802
        return f"torch.erf({self._print(expr.args[0])})"

    def _print_atan(self, expr):  # noqa: N802
        return f"torch.atan({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):  # noqa: N802
        h0 = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        x = self._print(expr.args[0])
        return f"torch.where({x} > 0, 1.0, torch.where({x} < 0, 0.0, {_float(h0)}))"

    def _minmax(self, expr, fn: str, clamp: str, pick):
        numbers = [a for a in expr.args if a.is_Number]
        others = [self._print(a) for a in expr.args if not a.is_Number]
        if not others:
            return _float(pick(numbers))
        out = others[0]
        for o in others[1:]:
            out = f"torch.{fn}({out}, {o})"
        if numbers:
            out = f"torch.clamp({out}, {clamp}={_float(pick(numbers))})"
        return out

    def _print_Max(self, expr):  # noqa: N802
        return self._minmax(expr, "maximum", "min", max)

    def _print_Min(self, expr):  # noqa: N802
        return self._minmax(expr, "minimum", "max", min)

    def _print_Piecewise(self, expr):  # noqa: N802
        out = "float('nan')"
        for value, cond in reversed(expr.args):
            v = self._print(value)
            out = v if cond == sp.true else f"torch.where({self._print(cond)}, {v}, {out})"
        return out

    def _print_Relational(self, expr):  # noqa: N802
        ops = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
        if expr.rel_op in ops:
            return f"({self._print(expr.lhs)} {ops[expr.rel_op]} {self._print(expr.rhs)})"
        return super()._print_Relational(expr)

    def _print_And(self, expr):  # noqa: N802
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):  # noqa: N802
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):  # noqa: N802
        return f"(~{self._print(expr.args[0])})"


def _printer(target: str, names):
    return _NumpyPrinter(names) if target == "numpy" else TorchArrayPrinter(names)


def _names(semi: SpectralSemiDiscrete) -> dict[sp.Symbol, str]:
    names: dict[sp.Symbol, str] = {semi.system.t: "t"}
    for p in semi.param_symbols:
        names[p] = f"p_{p.name}"
    for g in semi.grid_symbols:
        names[g] = f"p_{g.name}"
    for a, c in enumerate(semi.coord_symbols):
        names[c] = f"X{a}"
    for a in range(3):
        names[K_ODD[a]] = f"k{a}"
        names[K_SQ[a]] = f"kk{a}"
        names[K_MAX[a]] = f"kmax{a}"
    names[KINV2], names[MODE0], names[KINV2_MAX] = "kinv2", "mode0", "kinv2_max"
    return names


def _preamble(semi: SpectralSemiDiscrete, used: set[sp.Symbol], indent: str = "    ") -> list[str]:
    lines = []
    for p in semi.param_symbols + semi.grid_symbols:
        if p in used:
            lines.append(f'{indent}p_{p.name} = P["{p.name}"]')
    for a, c in enumerate(semi.coord_symbols):
        if c in used:
            lines.append(f"{indent}X{a} = K.x[{a}]")
    for a in range(semi.dim):
        if K_MAX[a] in used:
            lines.append(f"{indent}kmax{a} = K.kmax[{a}]")
    if KINV2_MAX in used:
        lines.append(f"{indent}kinv2_max = K.kinv2_max")
    return lines


def _node_multiplier_key(node) -> str:
    return f"n_{node.symbol.name}"


def _linear_key(field: int, source: str) -> str:
    return f"l_{field}_{source}"


def _source_key(field: int) -> str:
    return f"s_{field}"


def _used_symbols(exprs) -> set[sp.Symbol]:
    out: set[sp.Symbol] = set()
    for e in exprs:
        out |= sp.sympify(e).free_symbols
    return out


def _multipliers_source(semi: SpectralSemiDiscrete, target: str) -> list[str]:
    printer = _printer(target, _names(semi))
    entries: list[tuple[str, sp.Expr]] = []
    plans = [semi] if semi.radius_plan in (None, semi) else [semi, semi.radius_plan]
    for plan in plans:
        for node in plan.nodes:
            key = _node_multiplier_key(node)
            if node.multiplier != 1 and all(k != key for k, _ in entries):
                entries.append((key, node.multiplier))
    folded = _folded_composites(semi)
    for i, terms in enumerate(semi.linear):
        for term in terms:
            entries.append((_linear_key(i, term.source), term.multiplier))
    sources = [(i, e) for i, e in enumerate(semi.sources) if e != 0]
    used = _used_symbols([e for _, e in entries] + [e for _, e in sources])
    lines = ["def multipliers(P, K):",
             '    """Fourier multipliers of the derivative nodes and linear terms; transforms of steady sources."""']
    lines += _preamble(semi, used)
    for a in range(semi.dim):
        if K_ODD[a] in used:
            lines.append(f"    k{a} = K.k[{a}]")
        if K_SQ[a] in used:
            lines.append(f"    kk{a} = K.kk[{a}]")
    for sym, name in ((KINV2, "kinv2"), (MODE0, "mode0")):
        if sym in used:
            lines.append(f"    {name} = K.{name}")
    lines.append("    M = {}")
    for key, expr in entries:
        value = f"K.constant({printer.doprint(expr)})" if expr.is_Number else printer.doprint(expr)
        if key.startswith("l_") and key.split("_", 2)[2] in folded:
            value = f"K.dealias_multiplier({value})"  # the 2/3 rule of this product, folded in
        lines.append(f'    M["{key}"] = {value}')
    for i, e in sources:
        lines.append(f'    M["{_source_key(i)}"] = K.dealias(K.rfft({printer.doprint(e)}))')
    if target == "numpy":
        lines += _combination_lines(semi)
    lines.append("    return M")
    return lines


def _folded_composites(semi: SpectralSemiDiscrete) -> set[str]:
    """Composites whose transform only feeds linear terms: their dealiasing folds into the multipliers."""
    differentiated = {n.source for n in semi.nodes}
    return {c.symbol.name for c in semi.composites if c.symbol.name not in differentiated}


def _stage_code(
    semi: SpectralSemiDiscrete,
    target: str,
    nodes,
    composites,
    outputs_by_stage: dict[int, list[tuple[str, sp.Expr]]],
    prefix: str,
    pointwise: dict[str, str] | None = None,
) -> list[str]:
    """Nodes, then pointwise groups, then forward transforms of composites, stage by stage.

    ``outputs_by_stage[s]`` lists (name, expression) evaluated at stage ``s``; names of
    composites get their dealiased transform (upper-case name) right after. ``pointwise``
    (numpy target): the Numba kernels of the module (source -> name), where the groups that
    qualify (see :func:`_pointwise_kernel`) are added.
    """
    names = _names(semi)
    printer = _printer(target, names)
    field_index = {f: i for i, f in enumerate(semi.fields)}
    composite_names = {c.symbol.name for c in composites}
    folded = _folded_composites(semi)
    invariants = semi.invariant_symbols()
    lines: list[str] = []
    stages = sorted({n.stage for n in nodes} | set(outputs_by_stage))
    # numpy: every transform goes into a work array of the runtime named after its result
    key = (lambda name: f', "{prefix}{name}"') if target == "numpy" else (lambda name: "")
    for s in stages:
        for node in (n for n in nodes if n.stage == s):
            src = f"UH[{field_index[node.source]}]" if node.source in field_index else node.source.upper()
            name = node.symbol.name
            if node.multiplier != 1:
                lines.append(f'    {name} = K.irfft(M["{_node_multiplier_key(node)}"] * {src}{key(name)})')
            else:
                lines.append(f"    {name} = K.irfft({src}{key(name)})")
        group = outputs_by_stage.get(s, [])
        if not group:
            continue
        lowered = lower([e for _, e in group], invariants, temp_prefix=f"_t{prefix}{s}_", invariant_prefix=f"_c{prefix}{s}_")
        fused = _pointwise_kernel(semi, nodes, group, lowered, pointwise) if pointwise is not None else None
        if fused is not None:
            kernel, arrays, scalars = fused
            outs = [n for n, _ in group]
            lines.append(f"    {', '.join(outs)}{',' if len(outs) == 1 else ''} = K.pointwise({kernel}, "
                         f"({', '.join(arrays)},), ({', '.join(scalars)}{',' if len(scalars) == 1 else ''}), "
                         f"({', '.join(repr(prefix + n) for n in outs)},))")
        for sym, expr in (lowered.invariants if fused is None else []):
            lines.append(f"    {sym.name} = {printer.doprint(expr)}")
        for sym, expr in (lowered.temporaries if fused is None else []):
            lines.append(f"    {sym.name} = {printer.doprint(expr)}")
        for (name, _), expr in zip(group, lowered.outputs):
            if fused is None:
                lines.append(f"    {name} = {printer.doprint(expr)}")
            if name in composite_names:
                if name in folded:
                    lines.append(f"    {name.upper()} = K.rfft({name}{key(name.upper())})")
                else:
                    lines.append(f"    {name.upper()} = K.dealias(K.rfft({name}{key(name.upper())}))")
    return lines


def _pointwise_kernel(semi: SpectralSemiDiscrete, nodes, group, lowered, registry: dict[str, str]):
    """One Numba loop for a pointwise group (numpy target): every product of a stage in one pass.

    Qualifies: a group whose expressions read node values (physical arrays of one shape),
    parameters, grid symbols, ``k_max`` and time only (coordinates stay with NumPy, where they
    broadcast). Returns ``(kernel name, array arguments, scalar arguments)`` or None; the
    kernel's source goes into ``registry`` (one kernel per distinct source).
    """
    from pdeforge.codegen.printing import ScalarPrinter

    node_syms = {n.symbol: n.symbol.name for n in nodes}
    scalars_named = {semi.system.t: "t"}
    for p in list(semi.param_symbols) + list(semi.grid_symbols):
        scalars_named[p] = f"p_{p.name}"
    for a in range(semi.dim):
        scalars_named[K_MAX[a]] = f"kmax{a}"
    local = {sym for sym, _ in lowered.invariants + lowered.temporaries}
    used = lowered.free_symbols() | _used_symbols(lowered.outputs)
    used -= local
    if any(u not in node_syms and u not in scalars_named for u in used):
        return None
    arrays = sorted(node_syms[u] for u in used if u in node_syms)
    if not arrays:
        return None
    scalars = sorted(scalars_named[u] for u in used if u in scalars_named)
    printer = ScalarPrinter(scalars_named | node_syms)
    outs = [f"o_{name}" for name, _ in group]
    body = [f"def KERNEL({', '.join([f'a_{a}' for a in arrays] + outs + scalars)}):"]
    body += [f"    {sym.name} = {printer.doprint(expr)}" for sym, expr in lowered.invariants]
    body.append(f"    for _i in range(a_{arrays[0]}.shape[0]):")
    body += [f"        {a} = a_{a}[_i]" for a in arrays]
    body += [f"        {sym.name} = {printer.doprint(expr)}" for sym, expr in lowered.temporaries]
    body += [f"        {o}[_i] = {printer.doprint(expr)}" for o, expr in zip(outs, lowered.outputs)]
    source = "\n".join(body)
    name = registry.setdefault(source, f"_pointwise{len(registry)}")
    return name, arrays, scalars


def _pointwise_sources(registry: dict[str, str]) -> list[str]:
    """The module-level definitions of the Numba pointwise kernels."""
    lines = []
    for source, name in registry.items():
        lines += ["@numba.njit(cache=True)", source.replace("def KERNEL(", f"def {name}(", 1), "", ""]
    return lines


def _rhs_source(semi: SpectralSemiDiscrete, target: str, name: str = "rhs", skip_stiff: bool = False,
                pointwise: dict[str, str] | None = None) -> list[str]:
    outputs: dict[int, list[tuple[str, sp.Expr]]] = {}
    for c in semi.composites:
        outputs.setdefault(c.stage, []).append((c.symbol.name, c.expr))
    for i, e in enumerate(semi.physical):
        if e != 0:
            outputs.setdefault(semi.physical_stage[i], []).append((f"phys{i}", e))
    used = _used_symbols([e for group in outputs.values() for _, e in group])
    what = "without the stiff linear parts" if skip_stiff else "of every field"
    lines = [
        f"def {name}(UH, t, P, K, M):",
        f'    """Spectral tendencies {what} (list of transforms in, list out)."""',
    ]
    lines += _preamble(semi, used)
    lines += _stage_code(semi, target, semi.nodes, semi.composites, outputs, "", pointwise)
    field_index = {f: i for i, f in enumerate(semi.fields)}
    if target == "numpy":  # one fused pass: projection and 2/3 rule folded into M[comb] at bind time
        xs = _combination_inputs(semi, skip_stiff)
        lines[0] = f"def {name}(UH, t, P, K, M, out=None, then=None):"
        lines[1] = (f'    """Spectral tendencies {what} (list of transforms in, stacked array out; '
                    f'``then``: a stage update fused into the last pass)."""')
        args = ", ".join(xs) + ("," if len(xs) == 1 else "")
        lines.append(f'    return M["{_combination_key(skip_stiff)}"](({args}), out, UH[0], then)')
        return lines
    inplace = False
    for i, f in enumerate(semi.fields):
        parts = []
        if semi.physical[i] != 0:
            parts.append(f"K.dealias(K.rfft(phys{i}))")
        for term in semi.linear[i]:
            if skip_stiff and semi.stiff[i] and term.source == f:
                continue
            src = f"UH[{field_index[term.source]}]" if term.source in field_index else term.source.upper()
            parts.append(f'M["{_linear_key(i, term.source)}"] * {src}')
        if semi.sources and semi.sources[i] != 0:
            parts.append(f'M["{_source_key(i)}"]')
        if parts and all(p.startswith('M["s_') for p in parts):  # a source alone: a fresh array
            parts[0] = f"0.0 * UH[{i}] + {parts[0]}"
        if not parts:
            lines.append(f"    R{i} = 0.0 * UH[{i}]")
        elif inplace:
            lines.append(f"    R{i} = {parts[0]}")
            for p in parts[1:]:
                lines.append(f"    R{i} += {p}")
        else:
            lines.append(f"    R{i} = " + " + ".join(parts))
    if semi.velocity:
        vel = semi.velocity
        dot = " + ".join(f"K.k[{a}] * R{i}" for a, i in enumerate(vel))
        lines.append(f"    _div = ({dot}) * K.kinv2")
        for a, i in enumerate(vel):
            if inplace:
                lines.append(f"    R{i} -= K.k[{a}] * _div")
            else:
                lines.append(f"    R{i} = R{i} - K.k[{a}] * _div")
    lines.append("    return [" + ", ".join(f"R{i}" for i in range(len(semi.fields))) + "]")
    return lines


def _combination_key(skip_stiff: bool) -> str:
    return "comb_explicit" if skip_stiff else "comb"


def _combination_terms(semi: SpectralSemiDiscrete, skip_stiff: bool):
    """Inputs of the fused combination (code names) and, per field, (input index, multiplier code)."""
    field_index = {f: i for i, f in enumerate(semi.fields)}
    inputs: list[str] = []
    terms: list[list[tuple[int, str]]] = []

    def slot(name: str) -> int:
        if name not in inputs:
            inputs.append(name)
        return inputs.index(name)

    for i, f in enumerate(semi.fields):
        pairs = []
        if semi.physical[i] != 0:
            pairs.append((slot(f"K.rfft(phys{i}, \"PHYS{i}\")"), "K.dealias_multiplier(1.0)"))
        for term in semi.linear[i]:
            if skip_stiff and semi.stiff[i] and term.source == f:
                continue
            src = f"UH[{field_index[term.source]}]" if term.source in field_index else term.source.upper()
            pairs.append((slot(src), f'M["{_linear_key(i, term.source)}"]'))
        terms.append(pairs)
    return inputs, terms


def _combination_inputs(semi: SpectralSemiDiscrete, skip_stiff: bool) -> list[str]:
    return _combination_terms(semi, skip_stiff)[0]


def _combination_lines(semi: SpectralSemiDiscrete) -> list[str]:
    """``M["comb"]`` and ``M["comb_explicit"]``: the fused final combinations (numpy target)."""
    lines = []
    for skip in (False, True):
        inputs, terms = _combination_terms(semi, skip)
        rows = "[" + ", ".join("[" + ", ".join(f"({c}, {m})" for c, m in pairs) + "]" for pairs in terms) + "]"
        srcs = "[" + ", ".join(f'M["{_source_key(i)}"]' if semi.sources and e != 0 else "0"
                               for i, e in enumerate(semi.sources or [0] * len(semi.fields))) + "]"
        lines.append(f'    M["{_combination_key(skip)}"] = K.combination({rows}, {len(inputs)}, {srcs}, VELOCITY)')
    return lines


def _radius_source(semi: SpectralSemiDiscrete, target: str, bounds=None, name: str = "radius") -> list[str]:
    bounds = semi.radius if bounds is None else bounds
    semi = semi.radius_plan or semi
    exprs = [e for pair in bounds for e in pair]
    used = _used_symbols(exprs)
    by_symbol = {n.symbol: n for n in semi.nodes}
    composites = {c.symbol.name: c for c in semi.composites}
    needed_nodes = {by_symbol[s] for s in used if s in by_symbol}
    needed_comps = set()
    todo = list(needed_nodes)
    while todo:
        node = todo.pop()
        comp = composites.get(node.source)
        if comp is not None and comp not in needed_comps:
            needed_comps.add(comp)
            for s in comp.expr.free_symbols:
                if s in by_symbol and by_symbol[s] not in needed_nodes:
                    needed_nodes.add(by_symbol[s])
                    todo.append(by_symbol[s])
    nodes = [n for n in semi.nodes if n in needed_nodes]
    comps = [c for c in semi.composites if c in needed_comps]
    outputs: dict[int, list[tuple[str, sp.Expr]]] = {}
    for c in comps:
        outputs.setdefault(c.stage, []).append((c.symbol.name, c.expr))
    last = max([n.stage for n in nodes] + [c.stage for c in comps], default=0)
    outputs.setdefault(last, [])
    outputs[last] = outputs[last] + [
        (f"lam{j}", e) for j, e in enumerate(exprs)
    ]
    lines = [
        f"def {name}(UH, t, P, K, M):",
        '    """Per field, the largest (real, imaginary) extents of the linearized operator."""',
    ]
    lines += _preamble(semi, used | _used_symbols([c.expr for c in comps]))
    lines += _stage_code(semi, target, nodes, comps, outputs, "r")
    pairs = ", ".join(f"(K.amax(lam{2 * i}), K.amax(lam{2 * i + 1}))" for i in range(len(semi.fields)))
    lines.append(f"    return [{pairs}]")
    return lines


def generate(semi: SpectralSemiDiscrete, target: str, key: str) -> str:
    """Source of the spectral kernel module of ``semi`` for ``target`` ("numpy" or "torch")."""
    if target not in TARGETS:
        raise ValueError(f"spectral target {target!r} (valid: {', '.join(TARGETS)})")
    system = semi.system
    lines = [
        f'"""pdeforge generated pseudo-spectral kernels: {system.name}, target {target}.',
        "",
        "Generated code; do not edit (it is regenerated when the equations change).",
    ]
    lines += ["", *[f"    {line}" for line in system.equations_text().splitlines()], '"""', ""]
    lines.append("import math  # noqa: F401")
    if target == "numpy":
        lines.append("import numpy as np  # noqa: F401")
        lines.append("from scipy.special import erf as _erf  # noqa: F401")
    else:
        lines.append("import torch  # noqa: F401")
    counts = semi.transform_counts()
    lines += [
        "",
        f"KEY = {key!r}",
        f"TARGET = {target!r}",
        f"FIELDS = {tuple(semi.fields)!r}",
        f"VELOCITY = {tuple(semi.velocity)!r}",
        f"PARAMS = {tuple(p.name for p in semi.param_symbols)!r}",
        f"GRID_SYMBOLS = {tuple(g.name for g in semi.grid_symbols)!r}",
        f"DIM = {semi.dim}",
        f"USES_TIME = {bool(semi.uses_time)!r}",
        f"TRANSFORMS = {counts!r}",
        f"FORM = {semi.form!r}",
        "STIFF = " + repr(tuple(_linear_key(i, f) if semi.stiff[i] else None for i, f in enumerate(semi.fields))),
        "NODES = " + repr(tuple((n.symbol.name, n.source, n.orders) for n in semi.nodes)),
        "",
        "",
    ]
    lines += _multipliers_source(semi, target) + ["", ""]
    pointwise: dict[str, str] | None = {} if target == "numpy" else None
    lines += _rhs_source(semi, target, pointwise=pointwise) + ["", ""]
    lines += _rhs_source(semi, target, "rhs_explicit", skip_stiff=True, pointwise=pointwise) + ["", ""]
    lines += _radius_source(semi, target) + ["", ""]
    lines += _radius_source(semi, target, semi.radius_explicit, "radius_explicit")
    if pointwise:
        lines += ["", "", "import numba  # noqa: E402", "", ""] + _pointwise_sources(pointwise)
    return "\n".join(lines) + "\n"

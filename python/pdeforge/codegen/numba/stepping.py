"""Compiled ghost fill and time-stepping loops for the Numba target.

With these, a fixed-step run is a handful of calls into machine code per output interval:
the ghost fill (periodic copies and boundary closures, boundary values evaluated inline at
the stage time) and the fused stage kernels run in one compiled loop over steps, with no
Python work and no allocation per step.

Closure weights depend on the grid and the parameters, so they arrive as arrays: ``W`` of
shape (fields, dim, 2, ghost, m) and ``B`` of shape (fields, dim, 2, ghost), filled by the
bound kernel from the same :class:`~pdeforge.discretize.padding.GhostLayout` the NumPy path uses.
A Robin condition whose coefficients depend on t has weights that change with t: they are
printed inline instead, as the closure's symbolic weights
(:func:`~pdeforge.discretize.closure.ghost_closure`) in its coefficients at the fill's time.
A wall closed by reflection prints its second datum the same way, with its weight in the cell
width (:func:`~pdeforge.discretize.closure.wall_layer`).
"""

from __future__ import annotations

import itertools

import sympy as sp

from pdeforge.tableaus import TABLEAUS, accumulating_stages, coefficient_text, convex_stages
from pdeforge.codegen.module import KernelSpec
from pdeforge.codegen.numba.tiling import tiled_source
from pdeforge.codegen.numba.wavefront import wavefront_source
from pdeforge.codegen.printing import ScalarPrinter
from pdeforge.discretize.closure import ghost_closure, wall_layer

STEP_METHODS = ("euler", "ssprk3", "rk4")


def _fill_lines(spec: KernelSpec, name: str = "_fill", axes: tuple[int, ...] | None = None,
                rows: bool = False, sides: tuple[int, ...] = (0, 1)) -> list[str]:
    """Source of a ghost fill: every axis in order (``_fill``), or only ``axes``; ``rows``: the
    outermost axis's loop runs over padded indices ``lo <= j0 < hi`` only (extra arguments);
    ``sides``: the closure sides filled (periodic copies are always both)."""
    semi = spec.semi
    system = semi.system
    dim = semi.dim
    axes = tuple(range(dim)) if axes is None else axes
    coords = ", ".join(f"p{ax}" for ax in system.axes)
    extra = "lo, hi, " if rows else ""
    lines = ["@njit(cache=True, nogil=True, error_model='numpy')", f"def {name}(S, t, {extra}p, W, B, dom, {coords}):"]
    used_params = set()
    for pair in semi.bcs.values():
        for bc in pair:
            if not bc.periodic:
                used_params |= (bc.value.free_symbols | bc.second.free_symbols | bc.alpha.free_symbols
                                | bc.beta.free_symbols) \
                    & set(semi.param_symbols)
    for i, p in enumerate(semi.param_symbols):
        if p in used_params:
            lines.append(f"    {spec.names[p]} = p[{i}]")
    for a, ax in enumerate(system.axes):  # sizes from the padded coordinates (rows may be wider)
        lines.append(f"    m{a} = p{ax}.shape[0]")
        lines.append(f"    n{a} = m{a} - {2 * semi.ghost[a]}")
    body = False
    for a in axes:
        g = semi.ghost[a]
        others = [b for b in range(dim) if b != a]
        for f in range(len(semi.fields)):
            low, high = semi.bcs[(f, a)]
            indent = "    "
            loop = []
            for b in others:
                extent = "lo, hi" if (rows and b == 0) else f"m{b}"
                loop.append(f"{indent}for j{b} in range({extent}):")
                indent += "    "

            def at(idx: str) -> str:
                parts = [idx if b == a else f"j{b}" for b in range(dim)]
                return f"S[{f}, " + ", ".join(parts) + "]"

            if low.periodic:
                lines += loop
                for layer in range(1, g + 1):
                    lines.append(f"{indent}{at(str(g - layer))} = {at(f'n{a} + {g - layer}')}")
                    lines.append(f"{indent}{at(f'n{a} + {g - 1 + layer}')} = {at(str(g + layer - 1))}")
                body = True
                continue
            for side, bc in enumerate((low, high)):
                if side not in sides:
                    continue
                lines += loop
                names = {system.t: "t"}
                names.update({p: spec.names[p] for p in semi.param_symbols})
                for b in others:
                    names[system.coords[b]] = f"p{system.axes[b]}[j{b}]"
                names[system.coords[a]] = f"dom[{a}, {side}]"
                value = None if bc.value == 0 else ScalarPrinter(names).doprint(bc.value)
                timed = _timed_weights(bc, system.t, f, a, side, g, semi.closure_points, names) \
                    if not bc.reflect else None
                if timed is not None:  # before the loops: the weights are the same along the side
                    lines[len(lines) - len(loop):len(lines) - len(loop)] = timed[0]
                if value is not None:
                    lines.append(f"{indent}gv = {value}")
                second = ScalarPrinter(names).doprint(bc.second) if bc.reflect and bc.second != 0 else None
                if second is not None:  # a reflected wall's second datum, its weight inline (in h)
                    lines.append(f"{indent}gv2 = {second}")
                    width = sp.Symbol(f"hw{a}")
                    printer = ScalarPrinter({**names, width: f"((dom[{a}, 1] - dom[{a}, 0]) / n{a})"})
                for layer in range(1, g + 1):
                    terms = []
                    for j in range(semi.closure_points if timed is not None else semi.closure_width):
                        src = f"{g + j}" if side == 0 else f"n{a} + {g - 1 - j}"
                        weight = timed[1][layer - 1][j] if timed is not None else f"W[{f}, {a}, {side}, {layer - 1}, {j}]"
                        terms.append(f"{weight} * {at(src)}")
                    if value is not None:
                        weight = timed[2][layer - 1] if timed is not None else f"B[{f}, {a}, {side}, {layer - 1}]"
                        terms.append(f"{weight} * gv")
                    if second is not None:
                        weight = printer.doprint(wall_layer(bc.reflect, layer, width, bc.extrapolate, bc.clamped)[2])
                        terms.append(f"({weight}) * gv2")
                    dst = f"{g - layer}" if side == 0 else f"n{a} + {g - 1 + layer}"
                    lines.append(f"{indent}{at(dst)} = " + " + ".join(terms))
                body = True
    if not body:
        lines.append("    return")
    lines += ["", ""]
    return lines


def _at(node) -> str:
    """``t + node * dt`` as printed in the step loops."""
    return "t" if node == 0 else f"t + {coefficient_text(node)}"


def _timed_weights(bc, t, f: int, a: int, side: int, g: int, m: int, names: dict):
    """For a side whose Robin coefficients depend on ``t``: the lines computing its closure
    weights at the fill's time, and the names of the cell weights ``[layer][j]`` and of the
    boundary-value weights ``[layer]``; None for fixed coefficients."""
    if t not in (bc.alpha.free_symbols | bc.beta.free_symbols):
        return None
    tag = f"{f}_{a}_{side}"
    alpha, beta, h = (sp.Symbol(f"{n}{tag}") for n in ("ra", "rb", "rh"))
    A, B = ghost_closure(alpha, beta, h, m, g)
    printer = ScalarPrinter(names)
    lines = [f"    {alpha} = {printer.doprint(bc.alpha)}",
             f"    {beta} = {printer.doprint(bc.beta)}",
             f"    {h} = (dom[{a}, 1] - dom[{a}, 0]) / n{a}"]
    cell_names, value_names = [], []
    for layer in range(g):
        row = []
        for j in range(m):
            row.append(f"rw{tag}_{layer}_{j}")
            lines.append(f"    {row[-1]} = {printer.doprint(A[layer][j])}")
        cell_names.append(row)
        value_names.append(f"rv{tag}_{layer}")
        lines.append(f"    {value_names[-1]} = {printer.doprint(B[layer])}")
    return lines, cell_names, value_names


def _advance_lines(spec: KernelSpec, method: str, parallel: bool) -> list[str]:
    suffix = "par" if parallel else "ser"
    axes = spec.semi.system.axes
    coords = ", ".join(f"c{ax}" for ax in axes)
    pcoords = ", ".join(f"p{ax}" for ax in axes)
    kargs = f"p, h, {coords}"
    fargs = f"p, W, B, dom, {pcoords}"
    bufs = {"euler": "Y, Z", "ssprk3": "Y, S1, S2", "rk4": "Y, SA, SB, AA, AB"}[method]
    lines = [
        "@njit(cache=True, nogil=True, error_model='numpy')",
        f"def _advance_{method}_{suffix}({bufs}, t0, dt, n, {kargs}, W, B, dom, {pcoords}):",
    ]
    ax, two = f"_stage_axpy_{suffix}", f"_stage_two_{suffix}"
    if method == "euler":
        lines += [
            "    for s in range(n):",
            "        t = t0 + s * dt",
            f"        _fill(Y, t, {fargs})",
            f"        _stage_euler_{suffix}(Y, Z, t, dt, {kargs})",
            "        Y, Z = Z, Y",
            "    return n % 2",
        ]
    elif method == "ssprk3":
        # the two-register (Shu-Osher) form of the tableau: u_{i+1} = keep u_0 + mix u_i + weight dt f(u_i)
        lines += ["    for s in range(n):", "        t = t0 + s * dt"]
        src, registers = "Y", ("S1", "S2")
        for i, st in enumerate(convex_stages(TABLEAUS[method])):
            out = registers[i % 2]
            t_stage = _at(st.node)
            lines += [f"        _fill({src}, {t_stage}, {fargs})",
                      f"        {ax}({src}, Y, {out}, {t_stage}, {float(st.keep)!r}, {float(st.mix)!r}, "
                      f"{coefficient_text(st.weight)}, {kargs})"]
            src = out
        lines += [f"        Y, {src} = {src}, Y", "    return n % 2"]
    else:
        # the accumulator form: k_i = f(s_i), s_{i+1} = u_0 + advance dt k_i, sum += weight dt k_i
        lines += ["    for s in range(n):", "        t = t0 + s * dt"]
        *inner, last = accumulating_stages(TABLEAUS[method])
        src, acc = "Y", "Y"
        for i, st in enumerate(inner):
            value, total = ("SA", "SB")[i % 2], ("AA", "AB")[i % 2]
            t_stage = _at(st.node)
            lines += [f"        _fill({src}, {t_stage}, {fargs})",
                      f"        {two}({src}, Y, {acc}, {value}, {total}, {t_stage}, {coefficient_text(st.advance)}, "
                      f"{coefficient_text(st.weight)}, {kargs})"]
            src, acc = value, total
        out = ("SA", "SB")[len(inner) % 2]
        t_stage = _at(last.node)
        lines += [f"        _fill({src}, {t_stage}, {fargs})",
                  f"        {ax}({src}, {acc}, {out}, {t_stage}, 1.0, 0.0, {coefficient_text(last.weight)}, {kargs})",
                  f"        Y, {out} = {out}, Y", "    return n % 2"]
    lines += ["", ""]
    return lines


def stepping_source(spec: KernelSpec) -> list[str]:
    """Source lines of ``_fill``, the ``_advance_<method>_<par|ser>`` loops and their temporally
    blocked ``_advance_<method>_tiled`` (serial) and ``_advance_<method>_tiledpar`` (threaded)
    variants, plus their registries."""
    lines = _fill_lines(spec)
    registry = []
    for method, parallel in itertools.product(STEP_METHODS, (True, False)):
        lines += _advance_lines(spec, method, parallel)
        registry.append(f"    ({method!r}, {parallel}): _advance_{method}_{'par' if parallel else 'ser'},")
    tiled = []
    for method, parallel in itertools.product(STEP_METHODS, (True, False)):
        lines += tiled_source(spec, method, parallel)
        tiled.append(f"    ({method!r}, {parallel}): _advance_{method}_tiled{'par' if parallel else ''},")
    lines += ["ADVANCE = {", *registry, "}", "TILED = {", *tiled, "}", "FILL = _fill", ""]
    wave = wavefront_source(spec, False)
    if wave:
        dim = spec.semi.dim
        lines += _fill_lines(spec, "_fill_rows", axes=tuple(range(1, dim)), rows=True)
        lines += _fill_lines(spec, "_fill_wall0", axes=(0,), sides=(0,))
        lines += _fill_lines(spec, "_fill_wall1", axes=(0,), sides=(1,))
        lines += wave + wavefront_source(spec, True)
        lines += ["WAVE = {False: _advance_euler_wave, True: _advance_euler_wavepar}", ""]
    else:
        lines += ["WAVE = None", ""]
    return lines

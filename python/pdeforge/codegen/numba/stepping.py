"""Compiled ghost fill and time-stepping loops for the Numba target.

With these, a fixed-step run is a handful of calls into machine code per output interval:
the ghost fill (periodic copies and boundary closures, boundary values evaluated inline at
the stage time) and the fused stage kernels run in one compiled loop over steps, with no
Python work and no allocation per step.

Closure weights depend on the grid and the parameters, so they arrive as arrays: ``W`` of
shape (fields, dim, 2, ghost, m) and ``B`` of shape (fields, dim, 2, ghost), filled by the
bound kernel from the same :class:`~pdeforge.discretize.padding.GhostLayout` the NumPy path uses.
"""

from __future__ import annotations

import itertools

from pdeforge.tableaus import TABLEAUS, accumulating_stages, coefficient_text, convex_stages
from pdeforge.codegen.module import KernelSpec
from pdeforge.codegen.numba.tiling import tiled_source
from pdeforge.codegen.numba.wavefront import wavefront_source
from pdeforge.codegen.printing import ScalarPrinter

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
                used_params |= bc.value.free_symbols & set(semi.param_symbols)
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
                if value is not None:
                    lines.append(f"{indent}gv = {value}")
                for layer in range(1, g + 1):
                    terms = []
                    for j in range(semi.closure_width):
                        src = f"{g + j}" if side == 0 else f"n{a} + {g - 1 - j}"
                        terms.append(f"W[{f}, {a}, {side}, {layer - 1}, {j}] * {at(src)}")
                    if value is not None:
                        terms.append(f"B[{f}, {a}, {side}, {layer - 1}] * gv")
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

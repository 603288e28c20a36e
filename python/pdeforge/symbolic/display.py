"""How a :class:`~pdeforge.symbolic.system.PDESystem` shows itself: plain text, Markdown, LaTeX.

A notebook shows ``_repr_markdown_`` (equations typeset as LaTeX inside Markdown); a terminal or
a log shows the plain ``__repr__``. Both list everything that defines the problem: equations,
domain and geometry, boundary conditions, parameters, coefficient fields, noise and the default
initial condition.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

# `PDESystem` in the annotations is never imported: pdeforge.symbolic.system imports this module

# The system is passed in, never imported: pdeforge.symbolic.system imports this module.



def _condition_text(bc) -> str:
    """One boundary condition as a user would write it."""
    if bc.kind == "periodic":
        return "periodic"
    if bc.kind in ("dirichlet", "neumann"):
        return bc.kind if bc.value == 0 else f"{bc.kind} = {sp.sstr(bc.value)}"
    return f"robin {sp.sstr(bc.alpha)}*u + {sp.sstr(bc.beta)}*du/dn = {sp.sstr(bc.value)}"


def boundary_lines(system: PDESystem) -> list[str]:
    """One line per axis (fields with the same conditions grouped): ``x: low dirichlet, high neumann (u, v)``."""
    by_axis: dict[tuple, list[str]] = {}
    for key, (low, high) in system.bcs.items():
        field, axis = key
        name = system.axes[axis] if isinstance(axis, int) and axis < len(system.axes) else str(axis)
        text = ("periodic" if low.kind == high.kind == "periodic"
                else f"low {_condition_text(low)}, high {_condition_text(high)}")
        by_axis.setdefault((name, text), []).append(str(field))
    return [f"{axis}: {text} ({', '.join(fields)})" for (axis, text), fields in by_axis.items()]


def _domain_text(system: PDESystem) -> str:
    box = " x ".join(f"{a} in [{lo:g}, {hi:g}]" for a, (lo, hi) in zip(system.axes, system.domain))
    return box + ("" if system.geometry.name == "cartesian" else f" ({system.geometry.name} geometry)")


def _value_text(value) -> str:
    """A value as text: an expression as written, an array by its shape, a callable by its name."""
    if isinstance(value, sp.Basic):
        return sp.sstr(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if callable(value):
        return f"the function {getattr(value, '__name__', type(value).__name__)}"
    return str(value)


def _sections(system: PDESystem) -> list[tuple[str, list[str]]]:
    """(heading, lines) of everything but the equations, shared by every display."""
    sections = [("domain", [_domain_text(system)]), ("boundary conditions", boundary_lines(system))]
    if system.params:
        sections.append(("parameters", [", ".join(f"{p} = {v:g}" for p, v in system.params.items())]))
    if getattr(system, "coefficients", None):
        sections.append(("coefficient fields", [f"{p}: {_value_text(v)}" for p, v in system.coefficients.items()]))
    if getattr(system, "noise", None):
        sections.append(("noise (Ito, space-time white)", [f"{f}: {sp.sstr(s)}" for f, s in system.noise.items()]))
    if system.ic:
        sections.append(("initial condition", [f"{f}: {_value_text(v) if not isinstance(v, str) else v}"
                                                for f, v in system.ic.items()]))
    return sections


def equation_lines(system: PDESystem) -> list[str]:
    """``u_t = ...`` per field and scalar, as written."""
    scalars = list(getattr(system, "scalars", ()))
    return [f"{f}_t = {system.equation_text[f]}" + ("   (scalar)" if f in scalars else "")
            for f in [*system.fields, *scalars]]


def plain(system: PDESystem) -> str:
    """The complete plain-text description (``repr``)."""
    kind = "complex " if system.is_complex else ""
    lines = [f"PDESystem {system.name!r}: {system.dim}-D {kind}system, fields {', '.join(system.fields)}"]
    lines += [f"  {line}" for line in equation_lines(system)]
    for heading, body in _sections(system):
        lines.append(f"{heading}:")
        lines += [f"  {line}" for line in body]
    return "\n".join(lines)


def _latex_equations(system: PDESystem) -> list[str]:
    """``\\partial_t u = ...`` per field, with the fields written without their arguments."""
    plain_names = {fn: sp.Symbol(str(fn.func)) for fn in system.field_functions.values()}
    plain_names.update({fn: sp.Symbol(str(fn.func)) for fn in getattr(system, "coefficient_functions", {}).values()})
    rows = []
    for f in system.fields:
        text = sp.latex(system.rhs[f])
        for fn, sym in plain_names.items():  # u{\left(x,y \right)} -> u
            text = text.replace(sp.latex(fn), sp.latex(sym))
        rows.append(rf"\partial_t {sp.latex(sp.Symbol(f))} &= {text}")
    for s, rhs in getattr(system, "scalar_rhs", {}).items():
        rows.append(rf"\frac{{d{sp.latex(sp.Symbol(s))}}}{{dt}} &= {sp.latex(rhs)}")
    return rows


def latex(system: PDESystem) -> str:
    """The equations as one LaTeX ``aligned`` block in ``$$ ... $$``."""
    return "$$\\begin{aligned}" + r" \\ ".join(_latex_equations(system)) + "\\end{aligned}$$"


def markdown(system: PDESystem) -> str:
    """Markdown for a notebook: the typeset equations, then each section as a list."""
    parts = [f"**PDESystem `{system.name}`** ({system.dim}-D, fields {', '.join(system.fields)})", "", latex(system), ""]
    for heading, body in _sections(system):
        parts.append(f"*{heading}*: " + ("; ".join(f"`{line}`" for line in body)))
        parts.append("")
    return "\n".join(parts)

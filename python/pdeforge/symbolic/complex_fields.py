"""Complex-valued fields: the equation language's complex pieces and the real form of a system.

A complex system (``psi_t = I*laplace(psi) - I*abs(psi)**2*psi``) is solved through its *real
form*: every complex field ``psi`` becomes two real fields ``psi_real`` and ``psi_imag`` and
every equation splits into its real and imaginary parts, symbolically, before anything is
discretized. Derivatives are linear and the coordinates real, so ``laplace(psi)`` splits into
``laplace(psi_real)`` and ``laplace(psi_imag)`` with the flux form kept; the rest is SymPy's
``as_real_imag`` on real placeholders (``abs(psi)**2`` becomes ``psi_real**2 + psi_imag**2``).

The kernels then do complex arithmetic as (real, imaginary) float pairs, which is exactly what
complex128 (complex64 on float32 torch) arithmetic does, and every target, every time
stepper and the exact sparse Jacobian work unchanged. The Jacobian is that of the real form:
the right one for equations with ``abs``, ``conj``, ``re``, ``im`` (not complex-analytic, so
no complex derivative exists).
"""

from __future__ import annotations

import sympy as sp

from pdeforge.errors import SystemDefinitionError

#: complex functions of the equation language (``abs`` is one of the math functions)
COMPLEX_FUNCTIONS = {"re": sp.re, "im": sp.im, "conj": sp.conjugate, "arg": sp.arg}
#: suffixes of the two real fields of a complex field (the variables a file stores)
PARTS = ("real", "imag")


def part_names(field: str) -> tuple[str, str]:
    """``"psi"`` -> ``("psi_real", "psi_imag")``."""
    return tuple(f"{field}_{p}" for p in PARTS)  # type: ignore[return-value]


def is_complex_expression(expr) -> bool:
    """Whether ``expr`` (parsed with real fields) needs complex numbers."""
    return isinstance(expr, sp.Basic) and expr.has(sp.I)


def split(expr: sp.Expr, parts: dict) -> tuple[sp.Expr, sp.Expr]:
    """Real and imaginary parts of ``expr``.

    Args:
        expr: an expression in complex field functions, real coordinates, parameters and
            coefficient fields, and unevaluated derivatives.
        parts: complex field function ``psi(x)`` -> (``psi_real(x)``, ``psi_imag(x)``),
            real functions.
    """
    if expr in parts:
        return parts[expr]
    if isinstance(expr, sp.Derivative):
        re, im = split(expr.expr, parts)
        variables = expr.variable_count
        return (sp.Derivative(re, *variables) if re != 0 else sp.Integer(0),
                sp.Derivative(im, *variables) if im != 0 else sp.Integer(0))
    back: dict = {}

    def placeholders(e):
        if e in parts or isinstance(e, sp.Derivative):
            re_part, im_part = split(e, parts)
            r, i = sp.Dummy(real=True), sp.Dummy(real=True)
            back[r], back[i] = re_part, im_part
            return r + sp.I * i
        if not e.args:
            return e
        return e.func(*[placeholders(a) for a in e.args])

    flat = placeholders(sp.sympify(expr))
    flat = flat.replace(lambda e: isinstance(e, sp.arg), lambda e: sp.atan2(sp.im(e.args[0]), sp.re(e.args[0])))
    re, im = flat.as_real_imag()
    re, im = sp.expand(re).xreplace(back), sp.expand(im).xreplace(back)
    if re.has(sp.re, sp.im, sp.I) or im.has(sp.re, sp.im, sp.I):
        raise SystemDefinitionError(f"cannot split {expr} into real and imaginary parts")
    return re, im


def real_form_parts(system) -> dict:
    """The structure of the real form of a complex ``system`` (independent of parameter values).

    Returns:
        ``fields``, ``field_functions``, ``rhs``, ``bcs``, ``equation_text`` and ``parts``
        (complex field -> its two real field names) of the real system.
    """
    from dataclasses import replace

    coords = system.coords
    fns = {}
    for f in system.fields:
        re_name, im_name = part_names(f)
        fns[f] = (sp.Function(re_name, real=True)(*coords), sp.Function(im_name, real=True)(*coords))
    parts = {system.field_functions[f]: fns[f] for f in system.fields}
    fields, functions, rhs, text, bcs = [], {}, {}, {}, {}
    for f in system.fields:
        pair = split(system.rhs[f], parts)
        for name, fn, value in zip(part_names(f), fns[f], pair):
            fields.append(name)
            functions[name] = fn
            rhs[name] = value
            text[name] = str(value).replace(f"({', '.join(system.axes)})", "")
    for (f, a), sides in system.bcs.items():
        for k, name in enumerate(part_names(f)):
            bcs[(name, a)] = tuple(
                side if side.periodic else replace(side, value=sp.sympify(side.value).as_real_imag()[k])
                for side in sides
            )
    return {"fields": fields, "field_functions": functions, "rhs": rhs, "bcs": bcs, "equation_text": text,
            "parts": {f: part_names(f) for f in system.fields}}

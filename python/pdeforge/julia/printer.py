"""SymPy -> Julia text, for Symbolics.jl, ModelingToolkit and generated Julia kernels.

Built on SymPy's :class:`~sympy.printing.julia.JuliaCodePrinter`, with what pdeforge's
expressions need on top:

* scalar operators (``*``, ``/``, ``^``): SymPy's printer emits the broadcasting ``.*`` / ``./``
  / ``.^`` of Julia arrays, but every pdeforge expression is a scalar, and Symbolics traces
  scalars;
* exact rationals ``(1 // 3)`` for symbolic work, or shortest round-trip floats for kernels;
* ``Piecewise`` as nested ``ifelse`` and ``Heaviside(a, h0)`` as ``heaviside(a, h0)`` (defined
  in module PDEForge and in every exported script from ``ifelse``), because Julia's ``? :`` and
  ``&&`` need concrete Booleans and cannot be traced by Symbolics; ``And``/``Or``/``Not`` as the
  traceable ``&``, ``|``, ``!``;
* fields ``u(x, y)`` as ModelingToolkit dependent variables ``u(t, x, y)`` (or bare names);
* ``Derivative`` as applications of ``Differential`` operators (``Differential(x)(u(t, x))``
  or named operators such as ``Dxx``);
* stencil symbols (``u_p1_0``, field u at offset (+1, 0)) as ``stencil(u, 1, 0)``, the form
  module PDEForge maps onto a cell's neighbours.

:func:`pdeforge.julia.reader.parse_julia` reads all of this back into SymPy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.julia import JuliaCodePrinter

#: Julia keywords and names that cannot be used as variable names in generated Julia code.
JULIA_RESERVED = frozenset(
    """baremodule begin break catch const continue do else elseif end export false finally for
    function global if import let local macro module quote return struct true try using while
    abstract mutable primitive type where in isa outer public
    pi im e Inf NaN nothing missing ans ifelse heaviside stencil Differential""".split()
)


def julia_identifier(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A Julia identifier for the pdeforge name ``name`` that avoids ``taken`` and keywords.

    pdeforge names are Python identifiers, which are valid Julia identifiers unless they are a
    Julia keyword or collide with a name the generated code defines; those get a ``_`` suffix.
    """
    out = name
    while out in JULIA_RESERVED or out in taken:
        out += "_"
    return out


def _float(value: float) -> str:
    v = float(value)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Inf" if v > 0 else "-Inf"
    return repr(v)


class JuliaPrinter(JuliaCodePrinter):
    """Print pdeforge SymPy expressions as Julia source text.

    Args:
        names: symbol -> Julia text, for symbols whose Julia name differs from their name
            (parameters renamed away from Julia keywords, kernel argument names).
        fields: how to print a field ``u(x, y)``: ``"call"`` gives ``u(t, x, y)`` (the
            ModelingToolkit dependent variable), ``"name"`` gives ``u``; or a callable
            taking the applied function and returning text.
        time: the time symbol's Julia text (first argument of fields in ``"call"`` style).
        stencil: optional map stencil symbol -> (field name, offset); such symbols print as
            ``stencil(field, o0, o1, ...)``.
        derivative_names: optional map (coordinate symbol, order) -> operator name, e.g.
            ``{(x, 2): "Dxx"}``; other derivatives print as ``(Differential(x)^n)(...)``.
        exact: print rationals exactly as ``(p // q)`` (symbolic work) instead of floats
            (numerical kernels).
    """

    def __init__(
        self,
        names: Mapping[sp.Symbol, str] | None = None,
        fields: str | Callable[[sp.Expr], str] = "call",
        time: str = "t",
        stencil: Mapping[sp.Symbol, tuple[str, tuple[int, ...]]] | None = None,
        derivative_names: Mapping[tuple[sp.Symbol, int], str] | None = None,
        exact: bool = True,
    ):
        super().__init__({"inline": True, "strict": True})
        self.names = dict(names or {})
        self.fields = fields
        self.time = time
        self.stencil = dict(stencil or {})
        self.derivative_names = dict(derivative_names or {})
        self.exact = exact
        # Symbolics knows min/max of two arguments; keep the names instead of SymPy's `? :`
        self.known_functions.update({"Min": "min", "Max": "max", "erf": "erf", "sign": "sign"})

    # leaves ---------------------------------------------------------------------------------
    def _print_Symbol(self, expr):  # noqa: N802 (SymPy printer protocol)
        if expr in self.names:
            return self.names[expr]
        if expr in self.stencil:
            field, offset = self.stencil[expr]
            return f"stencil({field}, " + ", ".join(str(int(o)) for o in offset) + ")"
        return super()._print_Symbol(expr)

    def _print_Integer(self, expr):  # noqa: N802
        return str(int(expr))

    def _print_Rational(self, expr):  # noqa: N802
        if expr.q == 1:
            return self._print_Integer(sp.Integer(expr.p))
        if not self.exact:
            return _float(expr)
        # a leading '-' lets sums print as 'a - (p // q)'; powers parenthesize it (_wrap)
        return f"-({-expr.p} // {expr.q})" if expr.p < 0 else f"({expr.p} // {expr.q})"

    def _print_Half(self, expr):  # noqa: N802
        return self._print_Rational(expr)

    def _print_Float(self, expr):  # noqa: N802
        return _float(expr)

    def _print_Exp1(self, expr):  # noqa: N802
        # Julia spells Euler's number as the Unicode ℯ; exp(1) is the same value in ASCII
        return "exp(1)"

    def _print_Infinity(self, expr):  # noqa: N802
        return "Inf"

    def _print_NegativeInfinity(self, expr):  # noqa: N802
        return "-Inf"

    # arithmetic -----------------------------------------------------------------------------
    def _print_Mul(self, expr):  # noqa: N802
        # pdeforge expressions are scalars: Julia's broadcasting operators are not wanted
        return super()._print_Mul(expr).replace(" .* ", " * ").replace(" ./ ", " / ")

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        base, exp = expr.base, expr.exp
        if exp == sp.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if exp == sp.Rational(-1, 2):
            return f"(1 / sqrt({self._print(base)}))"
        if exp == -1:
            return f"(1 / {self._wrap(base)})"
        if exp.is_Number and exp.is_negative:
            # a negative exponent reads as a division: cheaper than pow and exact for Symbolics
            return f"(1 / {self._wrap(base)} ^ {self._wrap(-exp)})"
        return f"{self._wrap(base)} ^ {self._wrap(exp)}"

    def _wrap(self, expr) -> str:
        """``expr`` parenthesized unless it is an atom that needs no parentheses."""
        text = self._print(expr)
        if (expr.is_Symbol and not text.startswith("-")) or (expr.is_Integer and expr >= 0):
            return text
        if isinstance(expr, sp.Function) and not text.startswith("("):
            return text  # a call binds tighter than any operator
        return text if (text.startswith("(") and _balanced_outer(text)) else f"({text})"

    # logic ----------------------------------------------------------------------------------
    def _print_Relational(self, expr):  # noqa: N802
        op = {"==": "==", "!=": "!="}.get(expr.rel_op, expr.rel_op)
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    def _print_And(self, expr):  # noqa: N802
        return "(" + " & ".join(self._wrap(a) for a in expr.args) + ")"

    def _print_Or(self, expr):  # noqa: N802
        return "(" + " | ".join(self._wrap(a) for a in expr.args) + ")"

    def _print_Not(self, expr):  # noqa: N802
        return f"!{self._wrap(expr.args[0])}"

    def _print_BooleanTrue(self, expr):  # noqa: N802
        return "true"

    def _print_BooleanFalse(self, expr):  # noqa: N802
        return "false"

    def _print_Piecewise(self, expr):  # noqa: N802
        # ifelse, not `? :`: a symbolic condition has no Bool value to branch on
        pieces = list(expr.args)
        if pieces[-1].cond == sp.true:
            text = self._print(pieces.pop().expr)
        else:
            text = "NaN"  # SymPy's Piecewise is undefined where no condition holds
        for value, cond in reversed(pieces):
            text = f"ifelse({self._print(cond)}, {self._print(value)}, {text})"
        return text

    def _print_Heaviside(self, expr):  # noqa: N802
        h0 = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        return f"heaviside({self._print(expr.args[0])}, {self._print(h0)})"

    def _print_Min(self, expr):  # noqa: N802
        return self._nested("min", expr.args)

    def _print_Max(self, expr):  # noqa: N802
        return self._nested("max", expr.args)

    def _nested(self, name: str, args) -> str:
        text = self._print(args[-1])
        for a in reversed(args[:-1]):
            text = f"{name}({self._print(a)}, {text})"
        return text

    # fields and derivatives -----------------------------------------------------------------
    def _print_Function(self, expr):  # noqa: N802
        if isinstance(expr, AppliedUndef):
            return self._print_field(expr)
        return super()._print_Function(expr)

    def _print_field(self, expr) -> str:
        name = self.names.get(sp.Symbol(type(expr).__name__), type(expr).__name__)
        if callable(self.fields):
            return self.fields(expr)
        if self.fields == "name":
            return name
        args = ", ".join([self.time, *[self._print(a) for a in expr.args]])
        return f"{name}({args})"

    def _print_Derivative(self, expr):  # noqa: N802
        text = self._print(expr.expr)
        for var, count in expr.variable_count:
            n = int(count)
            op = self.derivative_names.get((var, n))
            if op is None:
                v = self._print(var)
                op = f"Differential({v})" if n == 1 else f"(Differential({v})^{n})"
            text = f"{op}({text})"
        return text


    def _print_Subs(self, expr):  # noqa: N802
        # a boundary condition's du/dx at a face: MethodOfLines reads Dx(u(t, x_min, y))
        inner = expr.expr
        point = dict(zip(expr.variables, expr.point))
        if isinstance(inner, sp.Derivative) and isinstance(inner.expr, AppliedUndef):
            return self._print(sp.Derivative(inner.expr.xreplace(point), *inner.variable_count, evaluate=False))
        return self._print(expr.doit())


def _balanced_outer(text: str) -> bool:
    """Whether the first '(' of ``text`` closes at its last character."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def julia_code(expr: sp.Basic, **settings) -> str:
    """Julia text of ``expr``; ``settings`` are :class:`JuliaPrinter`'s arguments."""
    return JuliaPrinter(**settings).doprint(sp.sympify(expr))

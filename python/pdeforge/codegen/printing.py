"""Expression printers for the code-generation targets.

Built on SymPy's Python and NumPy printers, with what generated kernels need on top: symbol
names remapped to array accesses, small integer powers as products (no ``pow`` call in the
hot loop), exact rationals as full-precision floats, and the functions of the equation
language (erf, Heaviside, min/max) in each target's vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

_MAX_PRODUCT_POWER = 4


def _float(value) -> str:
    return repr(float(value))


class _RemapMixin:
    """Print symbols through a name map; everything else as the base printer does.

    ``float_type``: None (numbers as Python literals, float64 arithmetic), or a constructor
    such as ``"np.float32"`` that every number is wrapped in, so that single-precision values
    stay single precision (Numba promotes ``float32 * 0.5`` to float64, and ``float32 * 2``
    too; LLVM folds the wrapped constants).
    """

    names: Mapping[sp.Symbol, str]
    float_type: str | None = None

    def _number(self, text: str) -> str:
        return f"{self.float_type}({text})" if self.float_type else text

    def _print_Symbol(self, expr):  # noqa: N802 (SymPy printer protocol)
        name = self.names.get(expr)
        return name if name is not None else super()._print_Symbol(expr)

    def _print_Rational(self, expr):  # noqa: N802
        return self._number(_float(expr))

    def _print_Half(self, expr):  # noqa: N802
        return self._number("0.5")

    def _print_Float(self, expr):  # noqa: N802
        return self._number(_float(expr))

    def _print_Integer(self, expr):  # noqa: N802
        return self._number(str(int(expr)) + (".0" if self.float_type else ""))

    def _power(self, expr, sqrt: str):
        base, exp = expr.base, expr.exp
        b = self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Mul"] + 1)
        if exp.is_Integer and 1 <= int(exp) <= _MAX_PRODUCT_POWER:
            return "(" + "*".join([b] * int(exp)) + ")"
        one = self._number("1.0")
        if exp.is_Integer and -_MAX_PRODUCT_POWER <= int(exp) <= -1:
            return f"({one}/(" + "*".join([b] * -int(exp)) + "))"
        if exp == sp.Rational(1, 2):
            return f"{sqrt}({self._print(base)})"
        if exp == sp.Rational(-1, 2):
            return f"({one}/{sqrt}({self._print(base)}))"
        e = self.parenthesize(exp, sp.printing.precedence.PRECEDENCE["Pow"])
        return f"{b}**{e}"


class ScalarPrinter(_RemapMixin, PythonCodePrinter):
    """Scalar Python for Numba loop bodies (``math`` functions)."""

    def __init__(self, names: Mapping[sp.Symbol, str] | None = None, float_type: str | None = None):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.names = dict(names or {})
        self.float_type = float_type

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        return self._power(expr, "math.sqrt")

    def _print_Pi(self, expr):  # noqa: N802
        return self._number("math.pi")

    def _print_Exp1(self, expr):  # noqa: N802
        return self._number("math.e")

    def _print_Heaviside(self, expr):  # noqa: N802
        x = self._print(expr.args[0])
        h0 = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        one, zero, half = self._number("1.0"), self._number("0.0"), self._number(_float(h0))
        return f"({one} if {x} > 0 else ({zero} if {x} < 0 else {half}))"

    def _print_sign(self, expr):  # noqa: N802
        x = self._print(expr.args[0])
        one, zero, minus = self._number("1.0"), self._number("0.0"), self._number("-1.0")
        return f"({one} if {x} > 0 else ({minus} if {x} < 0 else {zero}))"

    def _print_Min(self, expr):  # noqa: N802
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Max(self, expr):  # noqa: N802
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"


class ArrayPrinter(_RemapMixin, NumPyPrinter):
    """Vectorised NumPy expressions (``np`` functions, ``scipy.special.erf``)."""

    def __init__(self, names: Mapping[sp.Symbol, str] | None = None):
        super().__init__({"fully_qualified_modules": True})
        self.names = dict(names or {})

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        return self._power(expr, "np.sqrt")

    def _print_erf(self, expr):  # noqa: N802
        return f"_erf({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):  # noqa: N802
        h0 = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        return f"np.heaviside({self._print(expr.args[0])}, {_float(h0)})"

    def _print_Min(self, expr):  # noqa: N802
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            out = f"np.minimum({out}, {self._print(a)})"
        return out

    def _print_Max(self, expr):  # noqa: N802
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            out = f"np.maximum({out}, {self._print(a)})"
        return out

    def _print_Piecewise(self, expr):  # noqa: N802
        # nested np.where evaluates every branch (fine: branches are finite stencil values)
        out = "np.nan"
        for value, cond in reversed(expr.args):
            v = self._print(value)
            if cond == sp.true:
                out = v
            else:
                out = f"np.where({self._print(cond)}, {v}, {out})"
        return out

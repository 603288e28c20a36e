"""Differential operators and functions of the equation language.

Derivatives stay unevaluated (``sympy.Derivative``) so that the discretizer sees the form the
user wrote: ``div(k(u)*grad(u))`` becomes ``Derivative(k(u)*Derivative(u, x), x) + ...`` and is
discretized in flux form, which keeps it conservative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp

from pdeforge.errors import EquationParseError


def _scalar(arg, op: str) -> sp.Expr:
    if isinstance(arg, sp.MatrixBase):
        raise EquationParseError(f"{op}() takes a scalar expression, got a vector")
    # a SymPy Symbol is also a Boolean: only non-expression Booleans (relations, And, ...) are refused
    if isinstance(arg, tuple) or (isinstance(arg, sp.logic.boolalg.Boolean) and not isinstance(arg, sp.Expr)):
        raise EquationParseError(f"{op}() takes a scalar expression")
    return sp.sympify(arg)


def _vector(arg, op: str, dim: int) -> sp.ImmutableMatrix:
    if not isinstance(arg, sp.MatrixBase):
        raise EquationParseError(f"{op}() takes a vector (grad(...) or vec(...)), got a scalar")
    if arg.shape != (dim, 1):
        raise EquationParseError(f"{op}() takes a vector with {dim} components, got {arg.shape[0]}")
    return arg


class InverseLaplacian(sp.Function):
    """``inv_laplace(f)``: the periodic solution ``g`` of ``laplace(g) = f - mean(f)`` with mean zero.

    Defined on periodic boxes (the spectral discretization: ``-hat(f) / |k|^2``, zero at
    ``k = 0``), e.g. the streamfunction of a 2-D vorticity, ``psi = -inv_laplace(w)``.
    """

    nargs = 1
    is_real = True

    def _sympystr(self, printer) -> str:
        return f"inv_laplace({printer.doprint(self.args[0])})"


def make_operators(coords: Sequence[sp.Symbol]) -> dict[str, Callable]:
    """The differential operators for a domain with spatial coordinates ``coords``.

    Returns a mapping name -> callable: ``laplace``, ``inv_laplace``, ``grad``, ``div``, ``d``,
    ``dot``, ``vec``.
    """
    coords = tuple(coords)
    dim = len(coords)

    def laplace(f):
        """Laplacian: sum of unevaluated second derivatives."""
        f = _scalar(f, "laplace")
        return sp.Add(*[sp.Derivative(f, (c, 2)) for c in coords])

    def inv_laplace(f):
        """Inverse Laplacian of periodic fields (see :class:`InverseLaplacian`)."""
        return InverseLaplacian(_scalar(f, "inv_laplace"))

    def grad(f):
        """Gradient: a column vector of first derivatives."""
        f = _scalar(f, "grad")
        return sp.ImmutableMatrix([sp.Derivative(f, c) for c in coords])

    def div(v):
        """Divergence of a vector: sum of first derivatives of its components."""
        v = _vector(v, "div", dim)
        return sp.Add(*[sp.Derivative(v[i], c) for i, c in enumerate(coords)])

    def dot(a, b):
        """Dot product of two vectors."""
        a = _vector(a, "dot", dim)
        b = _vector(b, "dot", dim)
        return sp.Add(*[a[i] * b[i] for i in range(dim)])

    def vec(*components):
        """A vector from its components, e.g. vec(u, v) for a 2-D velocity."""
        if len(components) != dim:
            raise EquationParseError(f"vec() takes {dim} components on this {dim}-D domain")
        return sp.ImmutableMatrix([_scalar(c, "vec") for c in components])

    def d(f, *spec):
        """Partial derivative: d(u, x), d(u, x, 2), d(u, x, y), d(u, x, x)."""
        f = _scalar(f, "d")
        if not spec:
            raise EquationParseError("d() needs a coordinate: d(u, x)")
        variables: list[tuple[sp.Symbol, int]] = []
        for item in spec:
            if isinstance(item, sp.Integer) and int(item) >= 1:
                if not variables:
                    raise EquationParseError("d(): an order must follow a coordinate, d(u, x, 2)")
                c, n = variables[-1]
                variables[-1] = (c, n + int(item) - 1)
            elif item in coords:
                variables.append((item, 1))
            else:
                names = ", ".join(str(c) for c in coords)
                raise EquationParseError(
                    f"d(): {item} is not a spatial coordinate or a positive integer order "
                    f"(coordinates: {names})"
                )
        return sp.Derivative(f, *variables)

    return {"laplace": laplace, "inv_laplace": inv_laplace, "grad": grad, "div": div, "dot": dot, "vec": vec, "d": d}


def _heaviside(x, h0=None):
    return sp.Heaviside(x) if h0 is None else sp.Heaviside(x, h0)


def _piecewise(*pairs):
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise EquationParseError("Piecewise takes (value, condition) pairs: Piecewise((1, u > 0), (0, True))")
    return sp.Piecewise(*pairs)


#: Functions allowed in equations, by the names users write.
MATH_FUNCTIONS: dict[str, Callable] = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "atan": sp.atan,
    "erf": sp.erf,
    "abs": sp.Abs,
    "sign": sp.sign,
    "Heaviside": _heaviside,
    "Piecewise": _piecewise,
    "min": sp.Min,
    "max": sp.Max,
    "Min": sp.Min,
    "Max": sp.Max,
}

#: Named constants allowed in equations.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E, "I": sp.I}

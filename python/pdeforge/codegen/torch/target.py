"""PyTorch target: vectorised tensor slices of the padded state, like the NumPy target.

Stencil values are views of the padded state tensor (``S[0, 2:2+n0, 1:1+n1]``), every
temporary is one whole-tensor operation, so the same module runs on any ``device`` and in
float32 or float64 (the dtype of the state tensor; coordinates come in the same dtype).
Per-call invariants (parameters, cell widths, time) are plain Python floats evaluated with
``math``, so they cost no tensor operations and adapt to the state's dtype as weak scalars.

Closure terms (:mod:`pdeforge.symbolic.closure_terms`) become calls of the callables in the
``C`` argument (name -> callable on stacked arguments); their partial derivatives, which the
exact Jacobian needs, are forward-mode derivatives of the same callables
(:mod:`pdeforge.codegen.torch.runtime`).
"""

from __future__ import annotations

import sympy as sp

from pdeforge.symbolic.closure_terms import closure_names
from pdeforge.simplify.lowering import Lowered
from pdeforge.codegen.module import KernelSpec, boundary_value_functions, header, unpack_lines, used_symbols
from pdeforge.codegen.numpy_target import slab_prologue
from pdeforge.codegen.printing import ArrayPrinter, ScalarPrinter, _float

_REF = "S"  # tensor whose dtype and device constants take


class _ClosurePrinting:
    """Closure calls: ``_rt.closure(C['name'], (args...), S)``."""

    def _print_ClosureTermBase(self, expr):  # noqa: N802 (SymPy printer protocol)
        args = ", ".join(self._print(a) for a in expr.args)
        return f"_rt.closure(C[{expr.closure_name!r}], ({args},), {_REF})"

    def _print_ClosureDerivativeBase(self, expr):  # noqa: N802
        args = ", ".join(self._print(a) for a in expr.args)
        return f"_rt.closure_derivative(C[{expr.closure_name!r}], {expr.closure_index}, ({args},), {_REF})"


class InvariantPrinter(_ClosurePrinting, ScalarPrinter):
    """Per-call scalars (Python floats and ``math``)."""


class TorchPrinter(_ClosurePrinting, ArrayPrinter):
    """Whole-tensor expressions with ``torch`` functions.

    Python numbers mixed into tensor functions that need tensors (``where``, ``minimum``) are
    turned into 0-d tensors of the state's dtype and device by ``_rt.as_tensor``, so float64
    kernels stay float64 (``torch.where(c, 0.3, 0.5)`` alone would be float32).
    """

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "torch." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _t(self, expr) -> str:
        return f"_rt.as_tensor({self._print(expr)}, {_REF})"

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        return self._power(expr, "torch.sqrt")

    def _print_erf(self, expr):  # noqa: N802
        return f"torch.special.erf({self._t(expr.args[0])})"

    def _print_Heaviside(self, expr):  # noqa: N802
        h0 = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        return f"torch.heaviside({self._t(expr.args[0])}, {self._t(h0)})"

    def _print_Min(self, expr):  # noqa: N802
        out = self._t(expr.args[0])
        for a in expr.args[1:]:
            out = f"torch.minimum({out}, {self._t(a)})"
        return out

    def _print_Max(self, expr):  # noqa: N802
        out = self._t(expr.args[0])
        for a in expr.args[1:]:
            out = f"torch.maximum({out}, {self._t(a)})"
        return out

    def _print_Piecewise(self, expr):  # noqa: N802
        out = f"_rt.as_tensor(float('nan'), {_REF})"
        for value, cond in reversed(expr.args):
            if cond == sp.true:
                out = self._t(value)
            else:
                out = f"torch.where(_rt.as_tensor({self._print(cond)}, {_REF}), {self._t(value)}, {out})"
        return out

    def _print_NumberSymbol(self, expr):  # noqa: N802 (pi, E: torch has no module constants for all)
        return _float(expr.evalf(17))

    def _print_Exp1(self, expr):  # noqa: N802
        return _float(sp.E.evalf(17))

    def _print_Pi(self, expr):  # noqa: N802
        return _float(sp.pi.evalf(17))

    def _print_Mod(self, expr):  # noqa: N802
        return f"torch.remainder({self._t(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Abs(self, expr):  # noqa: N802
        return f"torch.abs({self._t(expr.args[0])})"

    def _print_sign(self, expr):  # noqa: N802
        return f"torch.sign({self._t(expr.args[0])})"

    def _print_Relational(self, expr):  # noqa: N802
        ops = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
        if expr.rel_op not in ops:
            return super()._print_Relational(expr)
        return f"torch.{ops[expr.rel_op]}({self._t(expr.lhs)}, {self._print(expr.rhs)})"

    def _logical(self, expr, op: str) -> str:
        out = self._t(expr.args[0])
        for a in expr.args[1:]:
            out = f"torch.{op}({out}, {self._t(a)})"
        return out

    def _print_And(self, expr):  # noqa: N802
        return self._logical(expr, "logical_and")

    def _print_Or(self, expr):  # noqa: N802
        return self._logical(expr, "logical_or")

    def _print_Not(self, expr):  # noqa: N802
        return f"torch.logical_not({self._t(expr.args[0])})"


def _body(spec: KernelSpec, lowered: Lowered, indent: str = "    ", tensor_invariants: bool = False) -> list[str]:
    lines, names = slab_prologue(spec, lowered, indent)
    # tensor_invariants: parameters, widths and t are 0-d tensors, so the invariants are torch
    # expressions too and autograd follows them (``math`` would silently turn them into floats)
    scalar = TorchPrinter(names) if tensor_invariants else InvariantPrinter(names)
    for sym, expr in lowered.invariants:
        lines.append(f"{indent}{sym.name} = {scalar.doprint(expr)}")
    printer = TorchPrinter(names)
    for sym, expr in lowered.temporaries:
        lines.append(f"{indent}{sym.name} = {printer.doprint(expr)}")
    for k, expr in enumerate(lowered.outputs):
        lines.append(f"{indent}OUT[{k}] = {printer.doprint(expr)}")
    return lines


def generate(spec: KernelSpec, key: str) -> str:
    """Source of the PyTorch kernel module for ``spec``.

    The module defines ``rhs(S, OUT, t, p, h, cx[, cy[, cz]], C)`` and ``jac(...)`` with the
    same meaning as the NumPy target's, on tensors: ``S`` the padded state, ``OUT`` the cell
    output, ``p`` parameter values and ``h`` cell widths as Python floats, ``c*`` the cell-centre
    coordinates as tensors, and ``C`` the closure callables by name. ``rhs_ad`` is the same
    right-hand side with ``t``, ``p`` and ``h`` as 0-d tensors: the path that autograd (gradients
    to parameters) and ``torch.compile`` (no recompilation per time value) take.
    """
    lines = header(spec, "torch", key, ["import torch", "from pdeforge.codegen.torch import runtime as _rt"])
    lines += boundary_value_functions(spec)
    coords = ", ".join(f"c{ax}" for ax in spec.semi.system.axes)
    for name, lowered, tensors in (("rhs", spec.rhs, False), ("rhs_ad", spec.rhs, True), ("jac", spec.jacobian, False)):
        lines.append(f"def {name}(S, OUT, t, p, h, {coords}, C):")
        lines += unpack_lines(spec, "    ", used_symbols(lowered))
        lines += _body(spec, lowered, tensor_invariants=tensors)
        lines.append("")
        lines.append("")
    lines.append("KERNELS = {('rhs', False): rhs, ('rhs_ad', False): rhs_ad, ('jac', False): jac}")
    lines.append(f"NFIELDS = {len(spec.semi.fields)}")
    lines.append(f"CLOSURES = {closure_names(spec.semi.rhs)!r}")
    return "\n".join(lines) + "\n"


__all__ = ["generate", "TorchPrinter", "InvariantPrinter"]

"""Compile-time specialisation: parameters fixed to numbers before anything is generated.

``fix_constants(system, {"Cs": 0})`` substitutes the values into the right-hand sides (SymPy
then drops every term that a zero multiplies: with ``Cs = 0`` the whole Smagorinsky stress
``d(2*nu_t*d(u,x), x)`` vanishes, so its transforms or stencils are never generated). The
parameters stay in ``system.params`` with their fixed values, so run attributes still show
them; asking for another value later (``with_params``, ``bind(params=...)``) is refused.
Both compile paths take it (``compile_spectral(constants=...)`` and
``compile_system(constants=...)``) and the constants are part of their cache keys.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.system import PDESystem, _check_value, check_not_fixed

__all__ = ["check_not_fixed", "constants_key", "fix_constants"]


def fix_constants(system: PDESystem, constants: Mapping[str, float] | None) -> PDESystem:
    """A copy of ``system`` with the parameters in ``constants`` replaced by their values.

    Args:
        system: any :class:`PDESystem` (incompressible systems keep their class).
        constants: parameter name -> the value it is fixed to. None or empty: ``system``
            itself.

    Returns:
        The specialised system; ``system.constants`` holds every fixed value.

    Raises:
        SystemDefinitionError: a name that is not a parameter, or a value that is not a
            finite number.
    """
    if not constants:
        return system
    if not isinstance(constants, Mapping):
        raise SystemDefinitionError(f"constants: give a dict of parameter name -> value, got {type(constants).__name__}")
    unknown = [p for p in constants if p not in system.params]
    if unknown:
        raise SystemDefinitionError(
            f"constants: {unknown[0]!r} is not a parameter of {system.name} "
            f"(parameters: {', '.join(system.params) or 'none'})"
        )
    values = {p: _check_value(p, v) for p, v in constants.items()}
    before = dict(getattr(system, "constants", {}))
    clash = [p for p in values if p in before and before[p] != values[p]]
    if clash:
        raise SystemDefinitionError(f"constants: {clash[0]!r} is already fixed to {before[clash[0]]!r}")
    subs = {system.param_symbols[p]: sp.Float(v) if v != int(v) else sp.Integer(int(v)) for p, v in values.items()}
    new = object.__new__(type(system))
    new.__dict__.update(system.__dict__)
    new.rhs = {f: _drop_zero_derivatives(sp.sympify(e).xreplace(subs)) for f, e in system.rhs.items()}
    new.params = {**system.params, **values}
    new.constants = {**before, **values}
    return new


def _drop_zero_derivatives(expr: sp.Expr) -> sp.Expr:
    """``Derivative(0, x)`` (what a vanished flux leaves; SymPy keeps it unevaluated) -> 0."""
    return expr.replace(lambda e: isinstance(e, sp.Derivative) and e.expr.is_number, lambda e: sp.Integer(0))


def constants_key(system: PDESystem) -> str:
    """The fixed constants of ``system`` as a stable string for cache keys ("" if none)."""
    fixed = getattr(system, "constants", {})
    return ";".join(f"{p}={fixed[p]!r}" for p in sorted(fixed))

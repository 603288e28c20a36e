"""Simplification of the semi-discrete stencils: SemiDiscrete -> SemiDiscrete.

- :mod:`pdeforge.simplify.rewrite`: the default simplifier, SymPy rewrites chosen by the
  operations they leave per cell (``simplifier="sympy"``);
- :mod:`pdeforge.simplify.lowering`: hoisting of loop invariants and common-subexpression
  elimination, and the operation counts both stages report;
- other simplifiers are plugins: Symbolics.jl's (``simplifier="julia"``) lives in
  :mod:`pdeforge.julia.simplifier` and is found through the ``pdeforge.simplifiers`` entry points.

``pdeforge.simplify(semi)`` calls :func:`simplify` (this package is callable).
"""

from __future__ import annotations

import sys
import types

from pdeforge.registry import Registry

#: simplifier name -> function ``SemiDiscrete -> SemiDiscrete``
SIMPLIFIERS = Registry(
    "simplifier",
    "pdeforge.simplifiers",
    {"sympy": "pdeforge.simplify.rewrite:simplify", "none": "pdeforge.simplify:keep"},
)


def keep(semi):
    """The ``"none"`` simplifier: the stencils as discretized."""
    return semi


def simplify(semi, simplifier: str = "sympy"):
    """Simplify the right-hand sides of ``semi`` with the named simplifier.

    Args:
        semi: a :class:`~pdeforge.discretize.SemiDiscrete`.
        simplifier: "sympy" (default), "none", or a plugin's name ("julia").

    Returns:
        The simplified SemiDiscrete, with operation counts in ``semi.simplification``.
    """
    return SIMPLIFIERS.get(simplifier)(semi)


class _CallableModule(types.ModuleType):
    # ``pdeforge.simplify`` is both this stage's package and the stage function of the
    # public API (``pf.simplify(semi)``): importing a submodule rebinds the package
    # attribute to this module, so the module itself must be callable.
    def __call__(self, semi, simplifier: str = "sympy"):
        return simplify(semi, simplifier)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["SIMPLIFIERS", "keep", "simplify"]

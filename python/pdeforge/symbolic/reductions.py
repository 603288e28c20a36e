"""Domain reductions as symbols: ``integral(expr)`` and ``mean(expr)`` over the whole box.

Their meaning for the solvers (scalar unknowns, lifted systems) is in
:mod:`pdeforge.symbolic.global_unknowns`; the classes live here so that boundary conditions
can recognise them without importing it.
"""

from __future__ import annotations

import sympy as sp


class DomainIntegral(sp.Function):
    """``integral(expr)``: the integral of ``expr`` over the whole domain (a number, not a field)."""

    nargs = 1
    is_real = True

    def _sympystr(self, printer) -> str:
        return f"integral({printer.doprint(self.args[0])})"


class DomainMean(sp.Function):
    """``mean(expr)``: the mean of ``expr`` over the domain, ``integral(expr) / volume``."""

    nargs = 1
    is_real = True

    def _sympystr(self, printer) -> str:
        return f"mean({printer.doprint(self.args[0])})"


REDUCTION_TYPES = (DomainIntegral, DomainMean)

"""The numerical fluxes a scheme puts on the boundary faces, as stencil expressions.

A flux-form scheme updates cell ``i`` by ``-(F_{i+1/2} - F_{i-1/2}) / h``; summed over the
cells the interior faces cancel and the discrete mass changes by the boundary faces' fluxes
alone. This module rebuilds exactly those boundary-face fluxes from the same stencil
machinery the scheme was generated with (the finite-difference face values of each
divergence term, the MUSCL numerical flux of the advective part);
:mod:`pdeforge.solvers.boundary_flux` evaluates them on a state whose ghost cells the
boundary closures fill.
"""

from __future__ import annotations


import sympy as sp

from pdeforge.errors import NotConservativeError
from pdeforge.symbolic.geometry import strip_measure
from pdeforge.discretize.finite_difference import FiniteDifference
from pdeforge.discretize.finite_volume import FiniteVolume, get_scheme, split_advective
from pdeforge.discretize.stencil import StencilSymbols


def face_flux_expressions(law, scheme: str = "fd") -> tuple[StencilSymbols, tuple[sp.Symbol, ...], list[sp.Expr]]:
    """Stencil expressions of the law's flux at the low face of the current cell, per axis.

    Args:
        law: a :class:`pdeforge.conservation.ConservationLaw`.
        scheme: "fd" or a finite-volume scheme name (second order).

    Returns:
        ``(symbols, spacing, faces)``: the stencil-symbol registry, the cell-width symbols and
        one expression per axis for ``F_a`` at offset ``-1/2`` along that axis.
    """
    system = law.system
    spec = get_scheme(scheme)
    symbols = StencilSymbols(system.fields, system.dim)
    spacing = tuple(sp.Symbol(f"h_{a}", positive=True) for a in system.axes)
    fd = FiniteDifference(system, 2, symbols, spacing)
    fv = FiniteVolume(system, spec, symbols, spacing) if spec.finite_volume else None
    field_index = system.fields.index(law.field)
    fields = list(system.field_functions.values())
    advective = split_advective(system, law.field)[0] if fv is not None else None
    faces = []
    for a in range(system.dim):
        off = tuple(sp.Rational(-1, 2) if b == a else sp.Integer(0) for b in range(system.dim))
        total = sp.Integer(0)
        for term, axis, contribution in law.terms:
            if axis != a or (fv is not None and not contribution.has(sp.Derivative)):
                continue
            constant, rest = term.as_independent(*fields, *system.coords, as_Add=False)
            rest = strip_measure(rest)[0]  # curvilinear: the flux on the face is F of (1/r^m) d(r^m F)/dr
            if not isinstance(rest, sp.Derivative):
                raise NotConservativeError(
                    f"the term {term} is an exact derivative but not written as one; scheme {scheme!r} "
                    "discretizes it as written, which does not telescope: write it as d(flux, x)"
                )
            total += -constant * fd._at(-contribution / constant, off)
        if fv is not None and advective[a] != 0:
            total += fv.face_flux(field_index, a, advective[a], 0)
        faces.append(total)
    return symbols, spacing, faces

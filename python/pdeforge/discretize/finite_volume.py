"""Finite volumes for hyperbolic conservation laws: MUSCL reconstruction and upwind fluxes.

For a term ``-d(f(u), x_a)`` of an equation (written so, or as ``-a*d(u, x)``, or as any
exact derivative such as ``-u*d(u, x)`` in 1-D; see :func:`pdeforge.conservation.conservation_law`)
the finite-volume schemes replace the centred flux difference of the ``fd`` scheme by

    -(F(u_L, u_R)_{i+1/2} - F(u_L, u_R)_{i-1/2}) / h_a

with face states reconstructed from the cell averages by limited linear slopes (MUSCL):
``u_L = u_{i} + sigma_i / 2``, ``u_R = u_{i+1} - sigma_{i+1} / 2``, ``sigma_i = limiter(u_i -
u_{i-1}, u_{i+1} - u_i)``. The numerical flux ``F`` is chosen from the symbolic flux:

* ``f`` linear in ``u`` (``f = c u + f0``, ``c`` may depend on x, t, parameters): exact upwind,
  ``F = f0 + max(c, 0) u_L + min(c, 0) u_R``, whatever the sign of ``c`` at run time.
* ``f`` convex (``f'' >= 0``, e.g. Burgers' ``u^2/2``) or concave with one sonic point
  ``f'(u_s) = 0`` that SymPy solves for: the exact Godunov flux, ``min`` of ``f`` over
  ``[u_L, u_R]`` when ``u_L <= u_R`` and ``max`` over ``[u_R, u_L]`` otherwise, which for a
  convex ``f`` is ``max(f(max(u_L, u_s)), f(min(u_R, u_s)))`` (concave: ``min`` and ``max``
  swapped).
* anything else (``f'`` changes sign in a way SymPy cannot resolve, several sonic points),
  and always with ``fv-rusanov``: the local Lax-Friedrichs (Rusanov) flux
  ``(f(u_L) + f(u_R))/2 - max(|f'(u_L)|, |f'(u_R)|) (u_R - u_L)/2``, which is monotone but
  adds more dissipation at shocks and contacts.

Limiters: ``minmod(a, b)`` (the most dissipative TVD limiter), ``MC`` (monotonized central,
``minmod(2a, 2b, (a + b)/2)``, sharper), or none (first order). With forward Euler every
limited scheme here is TVD for CFL numbers ``max|f'| dt / h <= 1/2`` (the bound of Sweby's
region) and the first-order one for ``<= 1``; SSP Runge-Kutta methods (``ssprk3``, SSP
coefficient 1) keep that bound, which is what :mod:`pdeforge.solvers.explicit.stability` uses.

The remaining terms of the equation (diffusion, sources) are discretized by the ``fd``
scheme as before, so a convection-diffusion equation gets upwinded convection and centred
diffusion. The flux differences telescope: the discrete mass ``h * sum(u)`` changes only
through the two boundary faces, to round-off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from pdeforge.errors import NotConservativeError, SystemDefinitionError
from pdeforge.symbolic.system import PDESystem


@dataclass(frozen=True)
class Scheme:
    """A spatial discretization.

    Attributes:
        name: the name users pass (``scheme=``).
        flux: "godunov" (upwind/Godunov where the flux allows, else Rusanov), "rusanov",
            or None for the plain flux-form finite differences.
        limiter: "minmod", "mc" or None (first order) for the MUSCL reconstruction.
        cfl: largest CFL number ``max|f'| dt / h`` of a forward-Euler (or SSP) step.
        description: one line for help texts.
    """

    name: str
    flux: str | None
    limiter: str | None
    cfl: float
    description: str

    @property
    def finite_volume(self) -> bool:
        return self.flux is not None


SCHEMES: dict[str, Scheme] = {
    "fd": Scheme("fd", None, None, 0.0, "flux-form finite differences (centred; conservative in divergence form)"),
    "fv-upwind": Scheme("fv-upwind", "godunov", "minmod", 0.5, "MUSCL finite volumes, minmod limiter, upwind/Godunov flux"),
    "fv-upwind-mc": Scheme("fv-upwind-mc", "godunov", "mc", 0.5, "MUSCL finite volumes, MC limiter, upwind/Godunov flux"),
    "fv-upwind1": Scheme("fv-upwind1", "godunov", None, 1.0, "first-order finite volumes, upwind/Godunov flux"),
    "fv-rusanov": Scheme("fv-rusanov", "rusanov", "minmod", 0.5, "MUSCL finite volumes, minmod limiter, Rusanov flux"),
}


def get_scheme(name: str) -> Scheme:
    """The :class:`Scheme` called ``name``; a clear error for unknown names."""
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise SystemDefinitionError(f"scheme {name!r} is unknown (valid: {', '.join(SCHEMES)})") from None


# --------------------------------------------------------------------------------------------
# limiters and numerical fluxes (SymPy expressions of the stencil values)


# Min and Max are written with Abs: SymPy's Min/Max compare their arguments pairwise on
# every rebuild (hoisting, CSE, differentiation), which made code generation of a MUSCL flux
# take tens of seconds; Abs and sign print to every target and differentiate piecewise.


def smin(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``min(a, b)`` as ``(a + b - |a - b|)/2``."""
    return (a + b - sp.Abs(a - b)) / 2


def smax(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``max(a, b)`` as ``(a + b + |a - b|)/2``."""
    return (a + b + sp.Abs(a - b)) / 2


def _minmod(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    # the slope of smaller magnitude when both share a sign, else 0
    return (sp.sign(a) + sp.sign(b)) / 2 * smin(sp.Abs(a), sp.Abs(b))


def _mc(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    # minmod(2a, 2b, (a + b)/2): (a + b)/2 shares the sign of a and b when they agree
    return (sp.sign(a) + sp.sign(b)) / 2 * smin(smin(2 * sp.Abs(a), 2 * sp.Abs(b)), sp.Abs(a + b) / 2)


LIMITERS: dict[str | None, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    "minmod": _minmod,
    "mc": _mc,
    None: lambda a, b: sp.Integer(0),
}


@dataclass(frozen=True)
class FluxForm:
    """How the numerical flux of one scalar flux ``f(u)`` is built, decided symbolically.

    Attributes:
        kind: "upwind" (linear f), "godunov-convex", "godunov-concave" or "rusanov".
        speed: ``f'(u)``.
        sonic: the sonic point of a convex/concave ``f`` (None when ``f'`` never vanishes).
    """

    kind: str
    speed: sp.Expr
    sonic: sp.Expr | None = None


def flux_form(f: sp.Expr, u: sp.Symbol, flux: str = "godunov") -> FluxForm:
    """Classify the scalar flux ``f(u)`` (see the module docstring)."""
    speed = sp.diff(f, u)
    if flux == "rusanov":
        return FluxForm("rusanov", speed)
    curvature = sp.simplify(sp.diff(speed, u))
    if curvature == 0:
        return FluxForm("upwind", speed)
    convex = curvature.is_nonnegative
    concave = curvature.is_nonpositive
    if convex or concave:
        try:
            roots = sp.solve(sp.Eq(speed, 0), u)
        except NotImplementedError:
            roots = None
        if roots is not None and len(roots) == 1 and roots[0].is_real is not False:
            return FluxForm("godunov-convex" if convex else "godunov-concave", speed, roots[0])
    return FluxForm("rusanov", speed)


def numerical_flux(f: sp.Expr, u: sp.Symbol, uL: sp.Expr, uR: sp.Expr, form: FluxForm) -> sp.Expr:
    """The numerical flux ``F(uL, uR)`` of ``f(u)`` of the given :class:`FluxForm`."""

    def at(v):
        return f.xreplace({u: v})

    if form.kind == "upwind":
        c = form.speed
        f0 = at(sp.Integer(0))
        return f0 + (c + sp.Abs(c)) / 2 * uL + (c - sp.Abs(c)) / 2 * uR
    # Osher's closed forms of the Godunov flux around the sonic point (no branches on
    # uL <= uR needed): max/min over [uR, uL] resp. [uL, uR] of a convex/concave f
    if form.kind == "godunov-convex":
        us = form.sonic
        return smax(at(smax(uL, us)), at(smin(uR, us)))
    if form.kind == "godunov-concave":
        us = form.sonic
        return smin(at(smin(uL, us)), at(smax(uR, us)))
    alpha = smax(sp.Abs(form.speed.xreplace({u: uL})), sp.Abs(form.speed.xreplace({u: uR})))
    return (at(uL) + at(uR)) / 2 - alpha * (uR - uL) / 2


# --------------------------------------------------------------------------------------------
# splitting an equation into advective fluxes and the rest


def split_advective(system: PDESystem, field: str) -> tuple[list[sp.Expr], sp.Expr]:
    """``(f_a per axis, rest)`` with ``rhs = -sum_a d(f_a)/dx_a + rest``.

    ``f_a`` collects the derivative-free fluxes of the divergence terms (the hyperbolic part);
    ``rest`` keeps every other term as written (diffusion, sources).
    """
    from pdeforge.symbolic.conservation import divergence_term as _divergence_term

    fluxes = [sp.Integer(0)] * system.dim
    rest = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand_mul(system.rhs[field], deep=False)):
        try:
            axis, contribution = _divergence_term(system, field, term)
        except NotConservativeError:
            rest += term
            continue
        if contribution.has(sp.Derivative):
            rest += term
        else:
            fluxes[axis] += contribution
    return fluxes, rest


class FiniteVolume:
    """Builds the MUSCL flux differences of one scheme as stencil expressions.

    Args:
        system: the PDE system.
        scheme: the finite-volume :class:`Scheme`.
        symbols: the stencil-symbol registry (shared with the finite differences).
        spacing: cell-width symbols per axis.
    """

    def __init__(self, system: PDESystem, scheme: Scheme, symbols, spacing):
        self.system = system
        self.scheme = scheme
        self.symbols = symbols
        self.h = tuple(spacing)
        self.limiter = LIMITERS[scheme.limiter]
        self._forms: dict = {}
        self._dummies: dict = {}

    def _value(self, field: int, axis: int, k: int) -> sp.Symbol:
        off = [0] * self.system.dim
        off[axis] = k
        return self.symbols.get(field, off)

    def face_flux(self, field: int, axis: int, f: sp.Expr, k: int = 0) -> sp.Expr:
        """Numerical flux of ``f`` at the face between cells ``k - 1`` and ``k`` along ``axis``.

        Args:
            field: index of the field the flux transports.
            axis: the axis.
            f: the flux in ``u(x, ...)``, coordinates, t and parameters.
            k: offset (in cells, relative to the current cell) of the cell right of the face.
        """
        name = self.system.fields[field]
        u_fn = self.system.field_functions[name]
        coefficients = getattr(self.system, "coefficient_functions", {})
        data = {c: self._dummies.setdefault(n, sp.Dummy(n, real=True)) for n, c in coefficients.items() if f.has(c)}
        others = f.atoms(sp.core.function.AppliedUndef) - {u_fn} - set(data)
        if others:
            raise SystemDefinitionError(
                f"scheme {self.scheme.name!r}: the flux {f} of {name!r} depends on other fields "
                f"({', '.join(sorted(type(o).__name__ for o in others))}); the finite-volume schemes handle "
                "scalar fluxes f(u) (with coefficient fields as data); use scheme='fd'"
            )
        u = self._dummies.setdefault(name, sp.Dummy(name, real=True))
        fu = f.xreplace({u_fn: u, **data})
        form = self._forms.get(fu)
        if form is None:
            form = self._forms[fu] = flux_form(fu, u, self.scheme.flux)
        x = self.system.coords[axis]
        # coordinates and t are exact on the face; coefficient fields (a prescribed velocity, say)
        # are data at the cell centres, averaged over the two cells that share the face
        shift = {x: x + (k - sp.Rational(1, 2)) * self.h[axis]}
        names = list(coefficients)
        shift.update({d: self._face_data(len(self.system.fields) + names.index(type(c).__name__), axis, k)
                      for c, d in data.items()})
        form = FluxForm(form.kind, form.speed.xreplace(shift), None if form.sonic is None else form.sonic.xreplace(shift))
        um2, um1, u0, up1 = (self._value(field, axis, k + j) for j in (-2, -1, 0, 1))
        uL = um1 + self.limiter(um1 - um2, u0 - um1) / 2
        uR = u0 - self.limiter(u0 - um1, up1 - u0) / 2
        uL, uR = self._wall_states(name, axis, x + (k - sp.Rational(1, 2)) * self.h[axis], uL, uR)
        return numerical_flux(fu.xreplace(shift), u, uL, uR, form)

    def _face_data(self, row: int, axis: int, k: int) -> sp.Expr:
        """A coefficient field on the face between cells ``k - 1`` and ``k``: the mean of the two."""
        return (self._value(row, axis, k - 1) + self._value(row, axis, k)) / 2

    def _wall_states(self, name: str, axis: int, face: sp.Expr, uL: sp.Expr, uR: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
        """Face states with the outer state on a Dirichlet wall face set to the wall value g.

        The ghost cells of a Dirichlet wall hold the second-order closure ``2g - u_0``, which
        centred differences need; as the upwind state of an inflow face it would be wrong
        (first order: the inflow would carry ``2g - u_0``, not ``g``). On the wall face itself
        the state outside the domain is the prescribed value, for every scheme and limiter.
        """
        pair = self.system.bcs.get((name, axis))
        if pair is None or pair[0].periodic:
            return uL, uR
        x = self.system.coords[axis]
        lo, hi = (sp.Float(v) for v in self.system.domain[axis])
        half = self.h[axis] / 2
        low, high = pair
        if low.kind == "dirichlet" and not low.reflect:
            uL = sp.Piecewise((low.value.xreplace({x: lo}), face < lo + half), (uL, True))
        if high.kind == "dirichlet" and not high.reflect:
            uR = sp.Piecewise((high.value.xreplace({x: hi}), face > hi - half), (uR, True))
        return uL, uR

    def divergence(self, field: int, axis: int, f: sp.Expr) -> sp.Expr:
        """``-(F_{i+1/2} - F_{i-1/2}) / h``: the flux difference of ``f`` at the current cell."""
        return -(self.face_flux(field, axis, f, 1) - self.face_flux(field, axis, f, 0)) / self.h[axis]


def advective_parts(system: PDESystem) -> dict[str, list[sp.Expr]]:
    """field -> its advective flux per axis (zeros where none), for stability estimates."""
    return {f: split_advective(system, f)[0] for f in system.fields}

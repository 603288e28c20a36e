"""Conservation laws read from the symbols, and the ProbConserv constraint ``G u = b``.

A field ``u`` of a :class:`~pdeforge.PDESystem` is *conserved* when its equation is in
divergence form,

    u_t + div F = 0,    F = (F_x, F_y, F_z) a function of u, its derivatives, x, t,

so that its total mass ``U(t) = integral of u over the domain`` changes only through the
boundary: ``dU/dt = - (outward flux of F through the boundary)``.

:func:`conservation_law` finds ``F`` from the right-hand side term by term: every term must
be a derivative ``c * d(E, x_a)`` (``div(k(u)*grad(u))``, ``laplace(u)``, ``-d(u**2/2, x)``,
``-a*d(u, x)``...) with a coefficient ``c`` free of the fields and the coordinates; it
contributes ``-c * E`` to ``F_a``. In one dimension a term that is not written as a
derivative but is one (``-u*d(u, x)`` is ``-d(u**2/2, x)``) is recognised by the Euler
operator (its variational derivative vanishes) and integrated by the homotopy operator. A
term that is none of these (a reaction ``r*u*(1 - u)``, a coefficient ``a(x)`` outside the
derivative) raises :class:`~pdeforge.errors.NotConservativeError` naming the term.

The discrete constraint ``G u = b`` built from a law lives in
:mod:`pdeforge.discretize.constraint`; :mod:`pdeforge.models.conservation` (``pdeforge.conservation``)
puts both together with the catalogue's exact masses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from pdeforge.errors import NotConservativeError, SystemDefinitionError
from pdeforge.symbolic.geometry import face_measure, strip_measure
from pdeforge.symbolic.system import PDESystem, field_of


@dataclass(frozen=True)
class ConservationLaw:
    """``density_t + div(flux) = 0`` for one field of a system.

    Attributes:
        system: the system the law was read from.
        field: the conserved field.
        density: the conserved density (the field function ``u(x, ...)``).
        flux: one SymPy expression per spatial axis, in the fields (``u(x)``), their
            unevaluated derivatives, coordinates, ``t`` and parameters.
        terms: ``(term of the right-hand side, axis, its contribution to flux[axis])``.
    """

    system: PDESystem
    field: str
    density: sp.Expr
    flux: tuple[sp.Expr, ...]
    terms: tuple[tuple[sp.Expr, int, sp.Expr], ...] = field(default=())

    @property
    def dim(self) -> int:
        return len(self.flux)

    def advective_flux(self, axis: int) -> sp.Expr:
        """The part of ``flux[axis]`` without derivatives: ``f(u, x, t)`` (hyperbolic part)."""
        return sp.Add(*[c for c in sp.Add.make_args(sp.expand_mul(self.flux[axis], deep=False)) if not c.has(sp.Derivative)])

    def diffusive_flux(self, axis: int) -> sp.Expr:
        """The part of ``flux[axis]`` with derivatives, e.g. ``-k(u) d(u, x)``."""
        return sp.Add(*[c for c in sp.Add.make_args(sp.expand_mul(self.flux[axis], deep=False)) if c.has(sp.Derivative)])

    def flux_text(self) -> list[str]:
        """``F_x = ...`` lines, fields written without their arguments."""
        return [f"F_{a} = {_text(self.system, F)}" for a, F in zip(self.system.axes, self.flux)]

    def describe(self) -> str:
        """One line: ``u_t + d(F_x)/dx = 0 with F_x = ...``."""
        div = " + ".join(f"d(F_{a})/d{a}" for a in self.system.axes)
        m = getattr(getattr(self.system, "geometry", None), "m", 0)
        if m:  # the radial part of a curvilinear divergence
            div = div.replace("d(F_r)/dr", f"(1/r{'**2' if m == 2 else ''})*d(r{'**2' if m == 2 else ''}*F_r)/dr")
        return f"{self.field}_t + {div} = 0 with " + "; ".join(self.flux_text())


def conservation_law(source, field: str | None = None) -> ConservationLaw:
    """The conservation law of one field: its density and flux, read from the symbols.

    Args:
        source: a :class:`~pdeforge.PDESystem`, a :class:`ConservationLaw` (its system), or
            anything with a ``system()`` method returning one (a catalogue model; model
            names are resolved by :func:`pdeforge.conservation_law`).
        field: the conserved field; may be omitted for single-field systems.

    Returns:
        The :class:`ConservationLaw` ``u_t + div(F) = 0``.

    Raises:
        NotConservativeError: a term of the field's equation is not a divergence; the
            message names the term and why (source term, coefficient depending on the
            coordinates or multiplying the derivative from outside).
    """
    system = system_of(source)
    name = _field_of(system, field)
    u = system.field_functions[name]
    flux = [sp.Integer(0)] * system.dim
    terms = []
    rhs = system.rhs[name]
    for term in sp.Add.make_args(sp.expand_mul(rhs, deep=False)):
        if term == 0:
            continue
        axis, contribution = divergence_term(system, name, term)
        flux[axis] = flux[axis] + contribution
        terms.append((term, axis, contribution))
    return ConservationLaw(system, name, u, tuple(flux), tuple(terms))


def system_of(source) -> PDESystem:
    """The system of a PDESystem, a ConservationLaw or an object with a ``system()`` method."""
    if isinstance(source, PDESystem):
        return source
    if isinstance(source, ConservationLaw):
        return source.system
    make = getattr(source, "system", None)
    if callable(make):
        system = make()
        if isinstance(system, PDESystem):
            return system
    raise SystemDefinitionError(
        f"expected a PDESystem, a model or a model name, got {type(source).__name__}"
    )


def _field_of(system: PDESystem, field: str | None) -> str:
    if field is None:
        if len(system.fields) == 1:
            return system.fields[0]
        raise SystemDefinitionError(
            f"system {system.name!r} has fields {', '.join(system.fields)}: say which one is conserved (field=...)"
        )
    if field not in system.fields:
        raise SystemDefinitionError(f"field {field!r} is not a field of {system.name!r} ({', '.join(system.fields)})")
    return field


def _text(system: PDESystem, expr: sp.Expr) -> str:
    """``expr`` as text with fields written ``u`` instead of ``u(x)``."""
    plain = {fn: sp.Symbol(name) for name, fn in system.field_functions.items()}
    return sp.sstr(expr.xreplace(plain))


def divergence_term(system: PDESystem, name: str, term: sp.Expr) -> tuple[int, sp.Expr]:
    """(axis, flux contribution) of one additive term of the right-hand side."""
    fields = list(system.field_functions.values())
    constant, rest = term.as_independent(*fields, *system.coords, as_Add=False)
    rest, measure = strip_measure(rest)  # curvilinear: (1/r^m) d(r^m F)/dr has the flux F
    curvilinear = getattr(getattr(system, "geometry", None), "curvilinear", False)
    if isinstance(rest, sp.Derivative):
        (var, n), *others = rest.variable_count
        axis = system.coords.index(var)
        remaining = ([(var, n - 1)] if n > 1 else []) + list(others)
        inner = sp.Derivative(rest.expr, *remaining) if remaining else rest.expr
        if not (curvilinear and axis == 0 and measure == 1):
            return axis, -constant * inner / measure
        raise NotConservativeError(
            f"equation for {name!r} is not in conservation form {name}_t + div(F) = 0: the term "
            f"{_text(system, term)} is a plain r-derivative, which in geometry {system.geometry.name!r} is not a "
            "divergence (write it as div(vec(...)) or laplace(...), whose radial part is (1/r^m) d(r^m F)/dr)"
        )
    reason = _why_not(system, term, rest)
    if system.dim == 1 and not curvilinear and term.atoms(sp.Derivative) == _plain_derivatives(term):
        recovered = _exact_derivative(system, name, term)
        if recovered is not None:
            return 0, recovered
    raise NotConservativeError(
        f"equation for {name!r} is not in conservation form {name}_t + div(F) = 0: the term "
        f"{_text(system, term)} {reason}. Conservative terms are derivatives with a constant "
        "coefficient: div(k(u)*grad(u)), laplace(u), d(f(u), x), a*d(u, x) with a parameter a"
    )


def _plain_derivatives(term: sp.Expr) -> set:
    return {d for d in term.atoms(sp.Derivative) if field_of(d.expr) is not None}


def _why_not(system: PDESystem, term: sp.Expr, rest: sp.Expr) -> str:
    if not rest.has(sp.Derivative):
        if rest.atoms(sp.core.function.AppliedUndef):
            return "has no derivative: it is a source (reaction) term, which creates or destroys mass"
        return "depends on the coordinates only: it is a source term, which adds mass"
    outside = [a for a in sp.Mul.make_args(rest) if not a.has(sp.Derivative)]
    if outside:
        where = [a for a in outside if a.free_symbols & set(system.coords) and not a.atoms(sp.core.function.AppliedUndef)]
        if where:
            return (f"has the coefficient {_text(system, sp.Mul(*where))} outside the derivative, which depends on "
                    "the coordinates, so it is not the derivative of a flux (write the coefficient inside: d(a*u, x))")
        return (f"multiplies a derivative by {_text(system, sp.Mul(*outside))}, which depends on the fields, so it "
                "is not the derivative of a flux (write it as one: d(u**2/2, x) instead of u*d(u, x))")
    return "is not a derivative of a flux"


def _exact_derivative(system: PDESystem, name: str, term: sp.Expr) -> sp.Expr | None:
    """The flux ``-F`` with ``d(F)/dx = term`` for a 1-D term that is an exact derivative, else None.

    The term is written in jet variables ``u_0 = u, u_1 = u_x, ...``; it is a total
    x-derivative exactly when its Euler operator ``sum_k (-D)^k dP/du_k`` vanishes, and then
    the homotopy operator ``int_0^1 sum_k sum_{i<k} u_i (-D)^(k-1-i) dP/du_k [lambda u] dlambda/lambda``
    gives the antiderivative. Terms with other fields or explicit ``x`` are left alone.
    """
    (x,) = system.coords
    u = system.field_functions[name]
    if term.atoms(sp.core.function.AppliedUndef) - {u}:
        return None
    frozen = term.xreplace({d: sp.Dummy() for d in term.atoms(sp.Derivative)}).xreplace({u: sp.Dummy()})
    if x in frozen.free_symbols:
        return None
    order = max([int(d.variable_count[0][1]) for d in term.atoms(sp.Derivative)] + [0])
    jets = sp.symbols(f"_u0:{order + 2}", real=True)
    sub = {sp.Derivative(u, (x, k)): jets[k] for k in range(order, 0, -1)}
    P = term.xreplace(sub).xreplace({u: jets[0]})
    if P.has(sp.Derivative) or P.free_symbols & {x} or P.xreplace({j: 0 for j in jets}) != 0:
        return None

    def total(f: sp.Expr) -> sp.Expr:
        return sp.Add(*[jets[k + 1] * sp.diff(f, jets[k]) for k in range(len(jets) - 1)])

    euler = sp.Integer(0)
    for k in range(order + 1):
        piece = sp.diff(P, jets[k])
        for _ in range(k):
            piece = -total(piece)
        euler += piece
    if sp.simplify(euler) != 0:
        return None
    lam = sp.Symbol("_lambda", positive=True)
    integrand = sp.Integer(0)
    for k in range(1, order + 1):
        dP = sp.diff(P, jets[k])
        for i in range(k):
            piece = dP
            for _ in range(k - 1 - i):
                piece = -total(piece)
            integrand += jets[i] * piece
    scaled = integrand.xreplace({j: lam * j for j in jets})
    F = sp.simplify(sp.integrate(sp.expand(scaled / lam), (lam, 0, 1)))
    if F.has(sp.Integral) or sp.simplify(total(F) - P) != 0:
        return None
    back = {jets[k]: sp.Derivative(u, (x, k)) for k in range(1, len(jets))}
    back[jets[0]] = u
    return -F.xreplace(back)


# --------------------------------------------------------------------------------------------
# boundary fluxes the boundary conditions fix


def _side_flux(law: ConservationLaw, axis: int, side: int) -> sp.Expr:
    """Outward flux ``n . F`` on one side, with what the boundary condition fixes substituted."""
    system = law.system
    u = law.density
    x = system.coords[axis]
    bc = system.bcs[(law.field, axis)][side]
    sign = -1 if side == 0 else 1
    F = sign * law.flux[axis]
    face = sp.Float(system.domain[axis][side])
    alpha, beta, g = bc.alpha, bc.beta, bc.value
    tangential = [c for c in system.coords if c != x]
    if beta == 0:
        value = g / alpha
        subs = {}
        for d in F.atoms(sp.Derivative):
            if d.expr == u and all(v in tangential for v in d.variables):
                subs[d] = sp.diff(value, *d.variables)
        F = F.xreplace(subs).xreplace({u: value})
    else:
        # alpha u + beta du/dn = g with du/dn = sign * du/dx
        normal = sign * (g - alpha * u) / beta
        F = F.xreplace({sp.Derivative(u, x): normal})
    if F.atoms(sp.core.function.AppliedUndef) or F.has(sp.Derivative):
        return F  # still needs the solution
    return F.subs(x, face)


def boundary_flux_from_bcs(law: ConservationLaw, params: Mapping[str, float] | None = None):
    """The total outward flux through the boundary as a function of t, when the BCs fix it.

    Args:
        law: the conservation law.
        params: parameter values (the system's by default).

    Returns:
        ``flux(t) -> float`` (outward flux integrated over the boundary faces), or None when
        some side's flux still depends on the unknown solution (for example ``-k u_x`` on a
        Dirichlet side).
    """
    import scipy.integrate
    import scipy.special

    system = law.system
    values = {system.param_symbols[p]: v for p, v in (dict(system.params) | dict(params or {})).items()}
    pieces = []
    for axis in range(system.dim):
        lo_bc, _ = system.bcs[(law.field, axis)]
        if lo_bc.periodic:
            continue
        for side in (0, 1):
            area = face_measure(system, axis, side)  # 1 on a box; r^m times 2 pi or 4 pi on curvilinear grids
            if area == 0:
                continue  # the face at r = 0 has no area
            F = area * _side_flux(law, axis, side).xreplace(values)
            if F.atoms(sp.core.function.AppliedUndef) or F.has(sp.Derivative):
                return None
            if F == 0:
                continue
            others = [(system.coords[b], system.domain[b]) for b in range(system.dim) if b != axis]
            fn = sp.lambdify([system.t, *[c for c, _ in others]], F, modules=[{"erf": scipy.special.erf}, "numpy"])
            pieces.append((fn, [d for _, d in others]))

    def flux(t: float) -> float:
        total = 0.0
        for fn, ranges in pieces:
            if not ranges:
                total += float(fn(t))
            else:
                total += scipy.integrate.nquad(lambda *ys: float(fn(t, *ys)), ranges)[0]
        return total

    return flux


def integrate_in_time(rate, t0: float, times: np.ndarray) -> np.ndarray:
    """``integral from t0 to t_j of rate(t) dt`` for increasing ``times`` (adaptive quadrature)."""
    import scipy.integrate

    out = np.zeros(times.size)
    acc, prev = 0.0, t0
    order = np.argsort(times)
    for j in order:
        t = float(times[j])
        if t > prev:
            acc += scipy.integrate.quad(rate, prev, t, limit=200)[0]
            prev = t
        out[j] = acc
    return out


_divergence_term = divergence_term  # the name finite_volume used before the split

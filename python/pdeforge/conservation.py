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

:func:`constraint` turns the law into ProbConserv's linear constraint on a prediction
``u(t_j, x_i)``: for each time ``t_j``, ``sum_i w_i u(t_j, x_i) = U(t_j)``, with quadrature
weights ``w`` (:func:`quadrature_weights`) and ``U`` the model's exact mass when it has one,
else ``U(0)`` plus the time integral of the inflow through the boundary (from the boundary
conditions when they determine the flux, else from a computed solution).

Quadrature rules, per axis (the weights of a multi-dimensional grid are their products):

* ``"trapezoid"`` (default): the integral of the piecewise-linear interpolant of the values,
  extended linearly to the domain ends where the points stop short of them. On node grids
  that include the ends (``np.linspace(lo, hi, n)``, as ProbConserv uses) this is the
  textbook trapezoid rule; on a periodic axis it is ``h`` per point.
* ``"midpoint"`` (alias ``"cell"``): each value times the width of the cell around its point
  (faces half-way between points, the outer faces on the domain ends). On pdeforge's
  cell-centred :class:`~pdeforge.UniformGrid` this is ``h`` per cell: exactly the discrete
  mass of the finite-volume schemes, so ``G @ (numerical solution)`` reproduces the scheme's
  own conservation to round-off. ``"trapezoid"`` matches it on periodic axes only (on a
  bounded axis its end weights are ``9h/8, 7h/8``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .errors import NotConservativeError, PDEForgeError, SystemDefinitionError
from .symbolic.system import PDESystem, field_of

RULES = ("trapezoid", "midpoint", "cell")


# --------------------------------------------------------------------------------------------
# the law


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
        return f"{self.field}_t + {div} = 0 with " + "; ".join(self.flux_text())


def conservation_law(source, field: str | None = None) -> ConservationLaw:
    """The conservation law of one field: its density and flux, read from the symbols.

    Args:
        source: a :class:`~pdeforge.PDESystem`, a catalogue :class:`~pdeforge.models.Model`,
            or a model name.
        field: the conserved field; may be omitted for single-field systems.

    Returns:
        The :class:`ConservationLaw` ``u_t + div(F) = 0``.

    Raises:
        NotConservativeError: a term of the field's equation is not a divergence; the
            message names the term and why (source term, coefficient depending on the
            coordinates or multiplying the derivative from outside).
    """
    system = _system_of(source)
    name = _field_of(system, field)
    u = system.field_functions[name]
    coords = system.coords
    flux = [sp.Integer(0)] * system.dim
    terms = []
    rhs = system.rhs[name]
    for term in sp.Add.make_args(sp.expand_mul(rhs, deep=False)):
        if term == 0:
            continue
        axis, contribution = _divergence_term(system, name, term)
        flux[axis] = flux[axis] + contribution
        terms.append((term, axis, contribution))
    return ConservationLaw(system, name, u, tuple(flux), tuple(terms))


def _system_of(source) -> PDESystem:
    if isinstance(source, PDESystem):
        return source
    if isinstance(source, ConservationLaw):
        return source.system
    from .models.base import Model, get_model

    if isinstance(source, str):
        source = get_model(source)
    if isinstance(source, Model):
        return source.system()
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


def _divergence_term(system: PDESystem, name: str, term: sp.Expr) -> tuple[int, sp.Expr]:
    """(axis, flux contribution) of one additive term of the right-hand side."""
    fields = list(system.field_functions.values())
    constant, rest = term.as_independent(*fields, *system.coords, as_Add=False)
    if isinstance(rest, sp.Derivative):
        (var, n), *others = rest.variable_count
        axis = system.coords.index(var)
        remaining = ([(var, n - 1)] if n > 1 else []) + list(others)
        inner = sp.Derivative(rest.expr, *remaining) if remaining else rest.expr
        return axis, -constant * inner
    reason = _why_not(system, term, rest)
    if system.dim == 1 and term.atoms(sp.Derivative) == _plain_derivatives(term):
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
# quadrature


def quadrature_weights(
    points,
    domain: tuple[float, float],
    rule: str = "trapezoid",
    periodic: bool = False,
) -> np.ndarray:
    """Weights ``w`` with ``sum_i w_i f(x_i)`` approximating the integral of f over ``domain``.

    Args:
        points: increasing 1-D coordinates inside ``domain`` (cell centres, nodes, any).
        domain: ``(low, high)``.
        rule: "trapezoid" (default) or "midpoint"/"cell" (see the module docstring).
        periodic: the axis is periodic with period ``high - low``.

    Raises:
        PDEForgeError: unknown rule, points not increasing or outside the domain.
    """
    if rule not in RULES:
        raise PDEForgeError(f"rule {rule!r} is unknown (valid: {', '.join(RULES)})")
    x = np.asarray(points, dtype=float).ravel()
    lo, hi = float(domain[0]), float(domain[1])
    n = x.size
    scale = max(1.0, abs(lo), abs(hi))
    if n < 1 or np.any(np.diff(x) <= 0):
        raise PDEForgeError("quadrature points must be a non-empty, strictly increasing sequence")
    if x[0] < lo - 1e-12 * scale or x[-1] > hi + 1e-12 * scale:
        raise PDEForgeError(f"quadrature points reach outside the domain [{lo:g}, {hi:g}]")
    L = hi - lo
    if periodic and not (x[0] <= lo + 1e-12 * scale and x[-1] >= hi - 1e-12 * scale):
        # each point owns half the gap to each neighbour, wrapping around: this is both the
        # periodic trapezoid rule and the cell sum
        left = np.diff(np.concatenate([[x[-1] - L], x]))
        right = np.diff(np.concatenate([x, [x[0] + L]]))
        return 0.5 * (left + right)
    if n == 1:
        return np.array([L])
    w = np.zeros(n)
    gaps = np.diff(x)
    if rule == "trapezoid":
        w[:-1] += 0.5 * gaps
        w[1:] += 0.5 * gaps
        # linear extrapolation over [lo, x0] and [x_{n-1}, hi]
        d0, g0 = x[0] - lo, gaps[0]
        w[0] += d0 * (1.0 + d0 / (2.0 * g0))
        w[1] -= d0 * d0 / (2.0 * g0)
        d1, g1 = hi - x[-1], gaps[-1]
        w[-1] += d1 * (1.0 + d1 / (2.0 * g1))
        w[-2] -= d1 * d1 / (2.0 * g1)
        return w
    faces = np.concatenate([[lo], 0.5 * (x[1:] + x[:-1]), [hi]])
    return np.diff(faces)


@dataclass
class QuadratureGrid:
    """Points and weights of a tensor grid on a system's domain.

    Attributes:
        axes: one 1-D coordinate array per axis.
        weights: weights per point, shape ``tuple(len(a) for a in axes)``.
        rule: the rule used.
    """

    axes: tuple[np.ndarray, ...]
    weights: np.ndarray
    rule: str

    @property
    def shape(self) -> tuple[int, ...]:
        return self.weights.shape

    def mesh(self) -> tuple[np.ndarray, ...]:
        return tuple(np.meshgrid(*self.axes, indexing="ij"))


def quadrature_grid(system: PDESystem, grid, rule: str = "trapezoid", field: str | None = None) -> QuadratureGrid:
    """Quadrature points and weights of ``grid`` on ``system``'s domain.

    Args:
        system: the system (domain and periodic axes).
        grid: a :class:`~pdeforge.UniformGrid` (its cell centres), an int or tuple of cell
            counts (a UniformGrid on the domain), a 1-D array of points (1-D systems), or a
            tuple with one 1-D coordinate array per axis (a tensor grid).
        rule: "trapezoid" (default) or "midpoint"/"cell".
        field: the field whose boundary conditions say which axes are periodic.
    """
    from .discretize.grid import UniformGrid

    if isinstance(grid, (int, np.integer)) or (
        isinstance(grid, (tuple, list)) and grid and all(isinstance(g, (int, np.integer)) for g in grid)
    ):
        grid = UniformGrid.from_spec(system.domain, grid)
    if isinstance(grid, UniformGrid):
        if tuple(grid.domain) != tuple(system.domain):
            raise PDEForgeError("grid: its domain differs from the system's")
        axes = grid.coordinates
    elif isinstance(grid, (tuple, list)):
        axes = tuple(np.asarray(a, dtype=float).ravel() for a in grid)
    else:
        axes = (np.asarray(grid, dtype=float).ravel(),)
    if len(axes) != system.dim:
        raise PDEForgeError(f"grid: {len(axes)} coordinate axes given, the system is {system.dim}-D")
    name = field or system.fields[0]
    weights = np.ones(())
    for a, pts in enumerate(axes):
        periodic = system.bcs[(name, a)][0].periodic
        w = quadrature_weights(pts, system.domain[a], rule, periodic)
        weights = np.multiply.outer(weights, w)
    return QuadratureGrid(tuple(axes), np.asarray(weights), rule)


# --------------------------------------------------------------------------------------------
# boundary fluxes


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
            F = _side_flux(law, axis, side).xreplace(values)
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


def _integrate_in_time(rate, t0: float, times: np.ndarray) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# the constraint


@dataclass
class Constraint:
    """ProbConserv's linear constraint ``G u = b`` on a space-time prediction.

    Unpacks as ``G, b = constraint(...)``.

    Attributes:
        G: shape ``(T, T*N)``: row ``j`` holds the quadrature weights in the columns of time
            ``t_j`` of the flattened prediction ``u[j, i]`` (times first, then the grid in C
            order). Use :attr:`weights` for a per-time constraint instead.
        b: shape ``(T,)``: the total mass ``U(t_j)``.
        weights: shape ``(N,)``: quadrature weights of one time (``G`` per time is
            ``weights[None, :]`` with right-hand side ``b[j]``).
        times: the times ``t_j``.
        grid: the quadrature points and weights.
        law: the conservation law.
        source: where ``b`` came from: "exact" (the model's U(t)), "boundary conditions"
            (U(0) plus the boundary flux the BCs fix) or "solution" (U(0) plus the boundary
            flux of a computed solution, integrated in time over its frames).
    """

    G: np.ndarray
    b: np.ndarray
    weights: np.ndarray
    times: np.ndarray
    grid: QuadratureGrid
    law: ConservationLaw
    source: str

    def __iter__(self):
        yield self.G
        yield self.b

    def residual(self, u: np.ndarray) -> np.ndarray:
        """``G u - b`` per time for values ``u`` of shape ``(T, *grid.shape)`` (the conservation error)."""
        u = np.asarray(u, dtype=float).reshape(self.times.size, -1)
        return u @ self.weights - self.b


def constraint(
    source,
    grid,
    times: Sequence[float],
    rule: str = "trapezoid",
    params: Mapping[str, float] | None = None,
    field: str | None = None,
    solution=None,
    ic=None,
    t0: float = 0.0,
    b_from: str = "auto",
) -> Constraint:
    """The conservation constraint ``G u = b`` of a system on a grid at a set of times.

    Args:
        source: a catalogue model (or its name), a :class:`~pdeforge.PDESystem`, or a
            :class:`ConservationLaw`.
        grid: where the prediction lives: a :class:`~pdeforge.UniformGrid`, cell counts,
            a 1-D array of points (1-D), or one 1-D coordinate array per axis.
        times: the times ``t_j`` of the prediction's rows.
        rule: quadrature rule, "trapezoid" (default) or "midpoint"/"cell" (matches the
            finite-volume discrete mass exactly on a UniformGrid).
        params: parameter values overriding the defaults (e.g. the model's ``m``).
        field: the conserved field of a multi-field system.
        solution: an ``xarray.Dataset`` from :func:`pdeforge.solve` of this system; used for
            ``U(0)`` (its first frame) and, when the boundary conditions do not fix the
            boundary flux, for the flux itself (evaluated with the second-order face
            formulas of the scheme on every frame and integrated in time with the trapezoid
            rule; accurate to the frames' spacing squared).
        ic: initial condition for ``U(0)`` when ``b`` is not exact and no solution is given
            (as :func:`pdeforge.solve` takes it; default the system's or model's).
        t0: initial time.
        b_from: "auto" (exact when the model has U(t), else boundary flux), "exact" or
            "boundary-flux".

    Returns:
        :class:`Constraint` (unpacks as ``G, b``).

    Raises:
        NotConservativeError: the field's equation is not in conservation form.
        PDEForgeError: bad grid or rule; ``b`` cannot be determined (exact mass asked for a
            system without one, or a boundary flux that needs a solution and none given).
    """
    from .models.base import Model, get_model

    model = get_model(source) if isinstance(source, str) else source if isinstance(source, Model) else None
    if model is not None:
        values = model.check_params(params)
        system = model.system(**values)
    elif isinstance(source, ConservationLaw):
        system = source.system.with_params(**dict(params or {})) if params else source.system
    else:
        system = _system_of(source)
        if params:
            system = system.with_params(**dict(params))
    law = source if isinstance(source, ConservationLaw) and not params else conservation_law(system, field)
    qgrid = quadrature_grid(system, grid, rule, law.field)
    w = qgrid.weights.ravel()
    ts = np.asarray(times, dtype=float).ravel()
    if ts.size == 0 or not np.all(np.isfinite(ts)):
        raise PDEForgeError("times: give at least one finite time")
    if b_from not in ("auto", "exact", "boundary-flux"):
        raise PDEForgeError(f"b_from: 'auto', 'exact' or 'boundary-flux', got {b_from!r}")

    if b_from in ("auto", "exact") and model is not None and model.mass is not None:
        b = np.array([float(model.mass(float(t), values)) for t in ts])
        origin = "exact"
    elif b_from == "exact":
        raise PDEForgeError(f"{system.name!r} has no exact mass U(t); use b_from='boundary-flux'")
    else:
        b, origin = _mass_from_flux(law, system, qgrid, ts, t0, solution, ic, model, params)
    T, N = ts.size, w.size
    G = np.zeros((T, T * N))
    for j in range(T):
        G[j, j * N:(j + 1) * N] = w
    return Constraint(G, b, w, ts, qgrid, law, origin)


def _mass_from_flux(law, system, qgrid, ts, t0, solution, ic, model, params):
    rate = boundary_flux_from_bcs(law)
    if solution is not None:
        frames = np.asarray(solution[law.field].values, dtype=float)
        frame_t = np.asarray(solution["t"].values, dtype=float)
        if frames.shape[1:] != qgrid.shape:
            raise PDEForgeError(
                f"solution: its grid {frames.shape[1:]} differs from the constraint's {qgrid.shape}; "
                "give the solution's grid"
            )
        U0 = float(frames[0].ravel() @ qgrid.weights.ravel())
        t0 = float(frame_t[0])
    else:
        U0 = _initial_mass(law, system, qgrid, ic, model, params)
    if rate is not None:
        return U0 - _integrate_in_time(rate, t0, ts), "boundary conditions"
    if solution is None:
        raise PDEForgeError(
            f"the boundary flux of {law.field!r} is not fixed by the boundary conditions "
            f"({'; '.join(law.flux_text())}); pass solution=<Dataset from pdeforge.solve> to take it from a solution"
        )
    from .discretize.grid import UniformGrid

    grid = UniformGrid(tuple(system.domain), tuple(frames.shape[1:]))
    scheme = solution.attrs.get("scheme", "fd")
    outflow = np.array([
        discrete_boundary_flux(law, grid, np.asarray(solution[law.field].values[k])[None], float(frame_t[k]), scheme=scheme)
        ["total"]
        for k in range(frame_t.size)
    ])
    if ts.min() < frame_t[0] - 1e-12 or ts.max() > frame_t[-1] + 1e-12:
        raise PDEForgeError(f"times reach outside the solution's span [{frame_t[0]:g}, {frame_t[-1]:g}]")
    import scipy.integrate

    cumulative = scipy.integrate.cumulative_trapezoid(outflow, frame_t, initial=0.0)
    return U0 - np.interp(ts, frame_t, cumulative), "solution"


def _initial_mass(law, system, qgrid, ic, model, params) -> float:
    from .discretize.grid import UniformGrid
    from .solvers.initial import initial_state

    shape = qgrid.shape
    uniform = UniformGrid(tuple(system.domain), shape)
    on_centres = all(np.allclose(a, c) for a, c in zip(qgrid.axes, uniform.coordinates))
    if ic is None and model is not None:
        if not on_centres:
            raise PDEForgeError("U(0) of a model off its cell centres: pass ic= as an expression or callable")
        ic = model.initial_condition(uniform, params)
    if ic is None:
        ic = system.ic
    if ic is None:
        raise PDEForgeError(f"U(0): give ic= (the initial condition of {law.field!r}) or solution=")
    if on_centres:
        cells = initial_state(system, uniform, ic)
        values = cells[system.fields.index(law.field)]
    else:
        spec = ic[law.field] if isinstance(ic, Mapping) else ic
        mesh = qgrid.mesh()
        if isinstance(spec, str):
            expr = system.parse(spec, f"initial condition of {law.field!r}", with_fields=False)
            fn = sp.lambdify(system.coords, expr.xreplace(system.parameter_values), "numpy")
            values = np.broadcast_to(np.asarray(fn(*mesh), dtype=float), shape)
        elif callable(spec):
            values = np.broadcast_to(np.asarray(spec(*mesh), dtype=float), shape)
        else:
            values = np.asarray(spec, dtype=float).reshape(shape)
    return float(np.asarray(values).ravel() @ qgrid.weights.ravel())


# --------------------------------------------------------------------------------------------
# the discrete boundary flux of a scheme


def discrete_boundary_flux(
    source,
    grid,
    cells: np.ndarray,
    t: float,
    scheme: str = "fd",
    params: Mapping[str, float] | None = None,
    field: str | None = None,
) -> dict:
    """Outward fluxes through the boundary faces as the second-order scheme computes them.

    The flux form of the scheme makes ``h * sum(rhs)`` telescope to exactly these fluxes, so
    ``d/dt (h * sum u) = -total`` holds to round-off for the semi-discrete system; tests use
    it to check conservation, :func:`constraint` to take ``b`` from a solution.

    Args:
        source: a :class:`ConservationLaw`, system, model or model name.
        grid: the :class:`~pdeforge.UniformGrid` of ``cells``.
        cells: state ``(fields, *grid.shape)`` (or ``(1, *shape)`` for the conserved field
            of a single-field system).
        t: time (for time-dependent boundary values).
        scheme: "fd" or a finite-volume scheme name.
        params: parameter values.
        field: the conserved field of a multi-field system.

    Returns:
        dict with ``(axis, "low" | "high")`` -> outward flux integrated over that face (sum
        over the face cells times their area), and ``"total"``.
    """
    from .discretize.fluxes import face_flux_values

    law = source if isinstance(source, ConservationLaw) else conservation_law(_system_of(source), field)
    return face_flux_values(law, grid, np.asarray(cells, dtype=float), float(t), scheme, params)

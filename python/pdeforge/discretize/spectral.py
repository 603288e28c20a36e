"""Fourier pseudo-spectral discretization of periodic systems: from SymPy to a transform plan.

The right-hand side of every field is split, symbolically, into

* **linear spectral terms** ``c * d^n(g)`` with a constant coefficient ``c`` (parameters,
  numbers, ``Delta``) and ``g`` a field or any expression of the fields: they become a
  multiplier array ``c (i k)^n`` applied to the transform of ``g``; for a field that transform
  is the state itself, so ``nu*laplace(u)`` costs no transform at all, and the flux
  ``d(2*nu_t*d(u,x), x)`` costs one forward transform of its flux and nothing else;
* a **physical part**, everything else (products, functions, forcing): evaluated pointwise on
  the grid, then transformed once per field.

Derivatives inside the physical part become *nodes*: physical arrays obtained by one inverse
transform of ``(i k)^n`` times the transform of their argument (a field, or a *composite*
expression that is evaluated and transformed first). Composites nest: a node of a composite
is available one *stage* after the composite itself, and the code generator emits the stages
in order. Products are dealiased by the 2/3 rule (forward transforms of composites and of
physical parts are truncated); the velocity tendencies of an
:class:`~pdeforge.symbolic.incompressible.IncompressibleSystem` are Leray-projected.

Wavenumbers appear in multipliers as symbols ``k0, k1, k2`` (odd powers; the Nyquist mode is
set to zero there, since an odd derivative of it is not a real field) and ``kk0, kk1, kk2``
(the squares, used for even powers). ``inv_laplace(g)`` is the multiplier ``-kinv2``
(``1/|k|^2``, zero at ``k = 0``) and ``mean(g)`` the multiplier ``mode0`` (1 at ``k = 0``): both
are linear and diagonal in Fourier space, so they act like derivatives (a linear term on a
field's transform, or a node of a physical part).

The same module builds the spectral *stability plan*: a frozen-coefficient linearization of
the plan (partial derivatives of the pointwise expressions with respect to the physical
arrays they read), bounded against the largest retained wavenumbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.system import PDESystem, field_of

#: odd-power wavenumber symbols (Nyquist mode zeroed at bind time), one per axis
K_ODD = tuple(sp.Symbol(f"k{a}", real=True) for a in range(3))
#: squared wavenumbers (full, Nyquist included), one per axis
K_SQ = tuple(sp.Symbol(f"kk{a}", nonnegative=True) for a in range(3))
#: largest retained |k| per axis (stability bounds)
K_MAX = tuple(sp.Symbol(f"kmax{a}", nonnegative=True) for a in range(3))
#: ``1/|k|^2`` with the odd-order wavenumbers, zero at ``k = 0`` (the inverse Laplacian is ``-KINV2``)
KINV2 = sp.Symbol("kinv2", nonnegative=True)
#: 1 at ``k = 0``, else 0 (the domain mean of a transform, as a multiplier)
MODE0 = sp.Symbol("mode0", nonnegative=True)
#: the largest value of ``KINV2`` (stability bounds)
KINV2_MAX = sp.Symbol("kinv2_max", nonnegative=True)
#: the non-polynomial multiplier symbols
MULTIPLIER_SYMBOLS = (KINV2, MODE0)
AXIS_LETTERS = ("x", "y", "z")


def monomial(orders: tuple[int, ...]) -> sp.Expr:
    """The Fourier symbol ``prod_a (i k_a)^n_a`` of the derivative with ``orders``."""
    out = sp.Integer(1)
    for a, n in enumerate(orders):
        if n == 0:
            continue
        if n % 2 == 0:
            out *= (-1) ** (n // 2) * K_SQ[a] ** (n // 2)
        else:
            out *= sp.I**n * K_ODD[a] * K_SQ[a] ** ((n - 1) // 2)
    return out


@dataclass(frozen=True)
class Node:
    """A physical array: the inverse transform of ``(i k)^orders`` times the transform of ``source``.

    Attributes:
        symbol: its name in generated code.
        source: a field name or a composite's name.
        orders: derivative order per axis (all zero: the field's physical values).
        stage: the stage at which it is computed.
        factor: a further diagonal multiplier (``-kinv2`` of an inverse Laplacian, ``mode0``
            of a mean; 1 for a derivative).
    """

    symbol: sp.Symbol
    source: str
    orders: tuple[int, ...]
    stage: int
    factor: sp.Expr = sp.Integer(1)

    @property
    def multiplier(self) -> sp.Expr:
        """The node's Fourier multiplier: the derivative's symbol times :attr:`factor`."""
        return monomial(self.orders) * self.factor


@dataclass(frozen=True)
class Composite:
    """A physical expression whose (dealiased) transform is needed.

    Attributes:
        symbol: its name (the transform is ``symbol.name.upper()`` in generated code).
        expr: the expression in node, coordinate, parameter and time symbols.
        stage: the stage at which it is evaluated and transformed.
    """

    symbol: sp.Symbol
    expr: sp.Expr
    stage: int


@dataclass
class LinearTerm:
    """``multiplier * transform(source)`` added to a field's spectral tendency."""

    source: str
    multiplier: sp.Expr


@dataclass
class SpectralSemiDiscrete:
    """The transform plan of a periodic system.

    Attributes:
        system: the system.
        dim: number of axes.
        fields: field names in order.
        velocity: indices of the projected fields (empty: no projection).
        nodes: physical arrays from inverse transforms, in stage order.
        composites: expressions transformed forward, in stage order.
        physical: per field, the pointwise part (0 if none) in node symbols.
        physical_stage: per field, the stage its physical part is evaluated at.
        linear: per field, the linear spectral terms grouped by source.
        param_symbols: parameter symbols (values at bind time).
        grid_symbols: symbols bound from the grid (``Delta``).
        coord_symbols: the coordinate symbols (physical arrays).
        uses_time: whether any expression depends on ``t``.
        radius: per field, (lam_real, lam_imag) expressions of the stability bound, in node
            symbols and ``kmax0..2``.
        sources: per field, the part of the right-hand side that depends on neither the
            fields nor time (a steady forcing): transformed once at bind time, 0 if none.
        stiff: per field, whether its diagonal linear term (``linear`` entry whose source is
            the field itself: viscosity, hyperviscosity, linear damping) is the stiff part that
            integrating-factor, exponential and IMEX methods treat exactly or implicitly.
        radius_explicit: ``radius`` without the stiff parts (the CFL bound of those methods).
        radius_plan: the plan whose nodes the radius expressions read (this plan, or the
            as-written plan when ``form`` is "solenoidal").
        form: "as-written" or "solenoidal" (see :func:`spectral_discretize`).
    """

    system: PDESystem
    dim: int
    fields: list[str]
    velocity: tuple[int, ...]
    nodes: list[Node]
    composites: list[Composite]
    physical: list[sp.Expr]
    physical_stage: list[int]
    linear: list[list[LinearTerm]]
    param_symbols: list[sp.Symbol]
    grid_symbols: list[sp.Symbol]
    coord_symbols: tuple[sp.Symbol, ...]
    uses_time: bool
    radius: list[tuple[sp.Expr, sp.Expr]] = field(default_factory=list)
    sources: list[sp.Expr] = field(default_factory=list)
    stiff: list[bool] = field(default_factory=list)
    radius_explicit: list[tuple[sp.Expr, sp.Expr]] = field(default_factory=list)
    radius_plan: SpectralSemiDiscrete | None = None
    form: str = "as-written"

    @property
    def stages(self) -> int:
        """Number of stages (1 when no composite is differentiated inside a physical part)."""
        levels = [n.stage for n in self.nodes] + [c.stage for c in self.composites] + list(self.physical_stage)
        return 1 + max(levels, default=0)

    def invariant_symbols(self) -> set[sp.Symbol]:
        """Symbols constant over the grid in one call: parameters, grid symbols, time."""
        return set(self.param_symbols) | set(self.grid_symbols) | {self.system.t}

    def transform_counts(self) -> dict[str, int]:
        """Inverse and forward transforms per right-hand side evaluation."""
        forward = len(self.composites) + sum(1 for e in self.physical if e != 0)
        return {"inverse": len(self.nodes), "forward": forward}

    def stiff_multiplier(self, i: int) -> sp.Expr | None:
        """The stiff linear multiplier of field ``i`` (None if it has none)."""
        if not self.stiff or not self.stiff[i]:
            return None
        return next(t.multiplier for t in self.linear[i] if t.source == self.fields[i])

    def describe(self) -> str:
        """Multi-line summary of the plan (used by ``pdeforge show``)."""
        axes = AXIS_LETTERS[: self.dim]
        lines = []
        counts = self.transform_counts()
        lines.append(
            f"{counts['inverse']} inverse and {counts['forward']} forward real FFTs per right-hand side "
            f"({self.form} form), "
            f"{self.stages} stage(s); 2/3-rule dealiasing of every forward transform of a product"
        )
        if self.velocity:
            lines.append("Leray projection of " + ", ".join(self.fields[i] for i in self.velocity))
        lines.append("physical arrays (inverse transforms):")
        for n in self.nodes:
            what = "".join(a * k for a, k in zip(axes, n.orders))
            ops = {KINV2: "inv_laplace", MODE0: "mean"}
            source = n.source
            for sym in sorted(n.factor.free_symbols & set(ops), key=str):
                source = f"{ops[sym]}({source})"
            lines.append(f"  {n.symbol} = " + (f"d{what}({source})" if what else source))
        if self.composites:
            lines.append("transformed products (forward transforms, dealiased):")
            for c in self.composites:
                lines.append(f"  {c.symbol} = {sp.sstr(c.expr)}")
        for i, f in enumerate(self.fields):
            lines.append(f"{f}:")
            if self.physical[i] != 0:
                lines.append(f"  pointwise: {sp.sstr(self.physical[i])}")
            for term in self.linear[i]:
                stiff = " [stiff: exact/implicit in ifrk4, etdrk4, cnrk4]" if (
                    self.stiff and self.stiff[i] and term.source == f) else ""
                lines.append(f"  spectral: ({sp.sstr(term.multiplier)}) * hat({term.source}){stiff}")
            if self.sources and self.sources[i] != 0:
                lines.append(f"  source (transformed once): {sp.sstr(self.sources[i])}")
        return "\n".join(lines)


class _Planner:
    def __init__(self, system: PDESystem, prefix: str = "q"):
        self.prefix = prefix
        self.system = system
        self.dim = system.dim
        self.coords = system.coords
        self.fields = list(system.fields)
        grid_syms = getattr(system, "grid_symbols", {}) or {}
        self.grid_symbols = list(grid_syms.values())
        self.params = [system.param_symbols[p] for p in system.params]
        self.invariant = set(self.params) | set(self.grid_symbols)
        self.nodes: dict[tuple[str, tuple[int, ...]], Node] = {}
        self.composites: dict[sp.Expr, Composite] = {}
        self.source_stage: dict[str, int] = {f: -1 for f in self.fields}

    # naming ------------------------------------------------------------------------------
    def node(self, source: str, orders: tuple[int, ...], factor: sp.Expr = sp.Integer(1)) -> Node:
        key = (source, orders, factor)
        found = self.nodes.get(key)
        if found is not None:
            return found
        what = "".join(a * n for a, n in zip(AXIS_LETTERS, orders))
        name = f"v_{source}" if not what else f"d_{source}_{what}"
        if factor != 1:
            name += "_" + "_".join(_FACTOR_NAMES[s] for s in sorted(factor.free_symbols, key=str))
        node = Node(sp.Symbol(name, real=True), source, orders, self.source_stage[source] + 1, factor)
        self.nodes[key] = node
        return node

    def composite(self, expr: sp.Expr) -> Composite:
        found = self.composites.get(expr)
        if found is not None:
            return found
        name = f"{self.prefix}{len(self.composites)}"
        comp = Composite(sp.Symbol(name, real=True), expr, self.stage_of(expr))
        self.composites[expr] = comp
        self.source_stage[name] = comp.stage
        return comp

    def stage_of(self, expr: sp.Expr) -> int:
        stages = [n.stage for n in self.nodes.values() if n.symbol in expr.free_symbols]
        return max(stages, default=0)

    # translation -------------------------------------------------------------------------
    def orders(self, der: sp.Derivative) -> tuple[int, ...]:
        out = [0] * self.dim
        for var, n in der.variable_count:
            if var not in self.coords:
                raise SystemDefinitionError(f"derivative with respect to {var}, which is not a spatial coordinate")
            out[self.coords.index(var)] += int(n)
        return tuple(out)

    def is_invariant(self, e: sp.Basic) -> bool:
        return (
            e.free_symbols <= self.invariant
            and not e.has(sp.core.function.AppliedUndef)
            and not e.has(sp.Derivative)
        )

    def physical(self, expr: sp.Basic) -> sp.Basic:
        """``expr`` with fields and their derivatives replaced by physical node symbols."""
        f = field_of(expr)
        if f is not None:
            return self.node(f, (0,) * self.dim).symbol
        if isinstance(expr, sp.Derivative) or _diagonal_factor(expr) is not None:
            orders = self.orders(expr) if isinstance(expr, sp.Derivative) else (0,) * self.dim
            inner = expr.expr if isinstance(expr, sp.Derivative) else expr
            factor = sp.Integer(1)
            scale = sp.Integer(1)  # invariant factors pulled out of linear operators: d(c g) = c d(g)
            while True:
                if inner.is_Mul and sum(not self.is_invariant(a) for a in inner.args) == 1:
                    scale *= sp.Mul(*[a for a in inner.args if self.is_invariant(a)])
                    inner = next(a for a in inner.args if not self.is_invariant(a))
                if not (_diagonal_factor(inner) is not None or isinstance(inner, sp.Derivative)):
                    break
                if isinstance(inner, sp.Derivative):  # d(inv_laplace(d(w, x)), y): one multiplier
                    orders = tuple(a + b for a, b in zip(orders, self.orders(inner)))
                    inner = inner.expr
                else:
                    factor *= _diagonal_factor(inner)
                    inner = inner.args[0]
            if self.is_invariant(inner):  # an operator applied to a constant
                return sp.Integer(0) if any(orders) or factor.has(KINV2) else scale * inner
            g = field_of(inner)
            if g is not None:
                return scale * self.node(g, orders, factor).symbol
            comp = self.composite(self.physical(inner))
            return scale * self.node(comp.symbol.name, orders, factor).symbol
        if not expr.args:
            return expr
        return expr.func(*[self.physical(a) for a in expr.args])

    def split(self, expr: sp.Expr, coeff: sp.Expr, orders: tuple[int, ...], linear: list, rest: list,
              fluxes: dict) -> None:
        """Separate ``coeff * d^orders(expr)`` into linear spectral terms on fields, fluxes
        (``orders`` -> [(coefficient, expression)], transformed by :meth:`flux_terms`) and a
        physical rest."""
        if expr.is_Add:
            for a in expr.args:
                self.split(a, coeff, orders, linear, rest, fluxes)
            return
        if field_of(expr) is not None:
            linear.append((field_of(expr), coeff * monomial(orders)))
            return
        factor = _diagonal_factor(expr)
        if factor is not None:  # inv_laplace(...), mean(...): linear, diagonal in Fourier space
            inner = expr.args[0]
            if self.is_invariant(inner):
                if not (any(orders) or factor.has(KINV2)):
                    rest.append(coeff * inner)
                return
            if inner.is_Add or field_of(inner) is not None or isinstance(inner, sp.Derivative) \
                    or _diagonal_factor(inner) is not None:
                self.split(inner, coeff * factor, orders, linear, rest, fluxes)
            elif inner.is_Mul and any(self.is_invariant(a) for a in inner.args):
                inv = sp.Mul(*[a for a in inner.args if self.is_invariant(a)])
                self.split(expr.func(inner / inv), coeff * inv, orders, linear, rest, fluxes)
            else:  # a product: one composite, its transform times the multiplier
                comp = self.composite(self.physical(inner))
                linear.append((comp.symbol.name, coeff * factor * monomial(orders)))
            return
        if isinstance(expr, sp.Derivative):
            inner_orders = tuple(o + n for o, n in zip(orders, self.orders(expr)))
            self.split(expr.expr, coeff, inner_orders, linear, rest, fluxes)
            return
        if expr.is_Mul:
            inv = [a for a in expr.args if self.is_invariant(a)]
            var = [a for a in expr.args if not self.is_invariant(a)]
            if inv and len(var) == 1:
                self.split(var[0], coeff * sp.Mul(*inv), orders, linear, rest, fluxes)
                return
        if any(orders) and self.is_invariant(expr):
            return  # the derivative of a constant
        if any(orders):
            fluxes.setdefault(orders, []).append((coeff, expr))
            return
        rest.append(coeff * expr)

    def flux_terms(self, fluxes: dict, linear: list) -> None:
        """One composite per derivative: ``d(A) + d(B) = d(A + B)``, one forward transform.

        A single flux keeps its constant coefficient in the multiplier; merged ones carry
        theirs inside, and a numeric factor (a sign) goes back to the multiplier so that
        equations sharing a flux (``tau_xy`` in the u and v equations) share its transform.
        """
        for orders, pairs in fluxes.items():
            if len(pairs) == 1:
                coeff, expr = pairs[0]
            else:
                expr = sp.Add(*[c * e for c, e in pairs])
                if expr == 0:
                    continue
                coeff, expr = sp.factor_terms(expr).as_coeff_Mul()
                if expr.could_extract_minus_sign():
                    coeff, expr = -coeff, -expr
            comp = self.composite(self.physical(expr))
            linear.append((comp.symbol.name, coeff * monomial(orders)))


#: names of the diagonal multiplier symbols in node names
_FACTOR_NAMES = {KINV2: "invlap", MODE0: "mean"}


def _diagonal_factor(expr: sp.Basic) -> sp.Expr | None:
    """The Fourier multiplier of ``inv_laplace(...)`` or ``mean(...)`` (else None)."""
    from pdeforge.symbolic.global_unknowns import DomainMean
    from pdeforge.symbolic.operators import InverseLaplacian

    if isinstance(expr, InverseLaplacian):
        return -KINV2
    if isinstance(expr, DomainMean):
        return MODE0
    return None


#: the forms a plan can take (see :func:`spectral_discretize`)
FORMS = ("as-written", "solenoidal")


def spectral_discretize(system: PDESystem, with_radius: bool = True, form: str = "as-written") -> SpectralSemiDiscrete:
    """The transform plan of a periodic ``system``.

    Args:
        system: a :class:`~pdeforge.PDESystem` (or an incompressible one) with periodic
            boundary conditions on every axis.
        with_radius: also build the stability-bound expressions.
        form: "as-written" (default: the equations as given, for any state; the PINO
            residual uses it) or "solenoidal", for states that are divergence-free and
            2/3-truncated (the solver's): advection ``u_j d_j(g)`` becomes ``d_j(u_j g)``
            (equal when ``div u = 0``; the product of two band-limited fields is transformed
            exactly under the 2/3 rule), and in the projected velocity equations the
            gradient of the last diagonal flux is dropped (the projection annihilates
            gradients). Same tendencies to round-off, fewer transforms: 2-D Navier-Stokes
            5 + 3 -> 2 + 2, 3-D 12 + 3 -> 3 + 5. The stability bound is always that of the
            as-written form.

    Raises:
        SystemDefinitionError: non-periodic boundaries, derivatives in time or of unknown
            variables, an unknown form.
    """
    if form not in FORMS:
        raise SystemDefinitionError(f"form {form!r}: valid forms are {', '.join(FORMS)}")
    geometry = getattr(system, "geometry", None)
    if geometry is not None and geometry.curvilinear:
        raise SystemDefinitionError(
            f"the spectral discretization is Fourier on periodic boxes; geometry {geometry.name!r} needs "
            "finite differences (discretization='fd')"
        )
    bad = [(f, a) for (f, a), pair in system.bcs.items() if any(b.kind != "periodic" for b in pair)]
    if bad:
        f, a = bad[0]
        raise SystemDefinitionError(
            f"the spectral discretization needs periodic boundaries; field {f!r} is not periodic along "
            f"{system.axes[a]!r}"
        )
    velocity = tuple(getattr(system, "velocity", ()))
    solenoidal = form == "solenoidal" and bool(velocity)
    semi = _plan(system, solenoidal, "q")
    semi.form = form
    if with_radius:
        plan = _plan(system, False, "r") if solenoidal else semi
        semi.radius = _radius_plan(plan)
        semi.radius_explicit = _radius_plan(plan, skip_stiff=semi.stiff)
        semi.radius_plan = plan
    return semi


def _plan(system: PDESystem, solenoidal: bool, prefix: str) -> SpectralSemiDiscrete:
    planner = _Planner(system, prefix)
    physical_parts: list[sp.Expr] = []
    linear_terms: list[list[LinearTerm]] = []
    sources: list[sp.Expr] = []
    zero = (0,) * system.dim
    velocity = tuple(getattr(system, "velocity", ()))
    all_fluxes: list[dict] = []
    rests: list[list[sp.Expr]] = []
    linears: list[list[tuple[str, sp.Expr]]] = []
    for f in system.fields:
        linear: list[tuple[str, sp.Expr]] = []
        rest: list[sp.Expr] = []
        fluxes: dict[tuple[int, ...], list] = {}
        rhs = sp.sympify(system.rhs[f])
        if solenoidal:
            rhs = _divergence_form(rhs, velocity, system.coords, planner.is_invariant)
        planner.split(rhs, sp.Integer(1), zero, linear, rest, fluxes)
        all_fluxes.append(fluxes)
        rests.append(rest)
        linears.append(linear)
    if solenoidal:
        _drop_gradient(all_fluxes, [system.fields.index(v) for v in velocity])
    for f, fluxes, rest, linear in zip(system.fields, all_fluxes, rests, linears):
        planner.flux_terms(fluxes, linear)
        grouped: dict[str, sp.Expr] = {}
        for source, mult in linear:
            grouped[source] = grouped.get(source, sp.Integer(0)) + mult
        terms = [LinearTerm(s, sp.expand(m)) for s, m in grouped.items() if sp.expand(m) != 0]
        linear_terms.append(terms)
        steady = [r for r in rest if _is_steady_source(r, system)]
        rest = [r for r in rest if not _is_steady_source(r, system)]
        sources.append(sp.Add(*steady))
        physical_parts.append(planner.physical(sp.Add(*rest)) if rest else sp.Integer(0))
    physical_stage = [planner.stage_of(e) if e != 0 else 0 for e in physical_parts]
    vel_index = tuple(system.fields.index(v) for v in velocity)
    everything = [c.expr for c in planner.composites.values()] + physical_parts
    uses_time = any(system.t in e.free_symbols for e in everything)
    nodes = sorted(planner.nodes.values(), key=lambda n: (n.stage, n.source not in system.fields, n.source, n.orders))
    composites = sorted(planner.composites.values(), key=lambda c: (c.stage, int(c.symbol.name[len(planner.prefix):])))
    return SpectralSemiDiscrete(
        system=system,
        dim=system.dim,
        fields=list(system.fields),
        velocity=vel_index,
        nodes=nodes,
        composites=composites,
        physical=physical_parts,
        physical_stage=physical_stage,
        linear=linear_terms,
        param_symbols=planner.params,
        grid_symbols=planner.grid_symbols,
        coord_symbols=tuple(system.coords),
        uses_time=uses_time,
        sources=sources,
        stiff=_stiff_parts(system.fields, linear_terms, vel_index),
    )


def _is_steady_source(term: sp.Expr, system: PDESystem) -> bool:
    """A term free of fields, derivatives and time: a steady forcing."""
    return (
        not term.has(sp.core.function.AppliedUndef)
        and not term.has(sp.Derivative)
        and system.t not in term.free_symbols
        and term != 0
    )


def _stiff_parts(fields: list[str], linear: list[list[LinearTerm]], velocity: tuple[int, ...]) -> list[bool]:
    """Which fields have a diagonal constant-coefficient linear term to treat as the stiff part.

    The projected velocity components qualify only together and with one common multiplier:
    then the multiplier is a scalar function of ``k`` and commutes with the projection.
    """
    diag = [next((t.multiplier for t in terms if t.source == fields[i]), None) for i, terms in enumerate(linear)]
    out = [m is not None for m in diag]
    if velocity:
        common = {sp.srepr(diag[i]) for i in velocity}
        if len(common) != 1 or diag[velocity[0]] is None:
            for i in velocity:
                out[i] = False
    return out


def _divergence_form(rhs: sp.Expr, velocity: tuple[str, ...], coords, is_invariant) -> sp.Expr:
    """``c * sum_j u_j d_j(g)`` -> ``c * sum_j d_j(u_j g)`` wherever every axis ``j`` appears.

    Valid for a divergence-free velocity (``d_j(u_j g) = u_j d_j g + g div u``); terms
    that do not complete the sum over the axes are left as they are.
    """
    terms = sp.Add.make_args(sp.expand(rhs, deep=False, power_base=False, power_exp=False,
                                       multinomial=False, log=False))
    groups: dict[tuple[sp.Expr, sp.Expr], dict[int, sp.Expr]] = {}
    keep: list[sp.Expr] = []
    for term in terms:
        found = _advective(term, velocity, coords, is_invariant)
        if found is None:
            keep.append(term)
            continue
        coeff, g, j = found
        slot = groups.setdefault((coeff, g), {})
        if j in slot:
            keep.append(term)
        else:
            slot[j] = term
    dim = len(coords)
    vel = [sp.Function(v, real=True)(*coords) for v in velocity]
    for (coeff, g), slot in groups.items():
        if len(slot) == dim:
            keep.append(coeff * sp.Add(*[sp.Derivative(vel[j] * g, coords[j]) for j in range(dim)]))
        else:
            keep.extend(slot.values())
    return sp.Add(*keep)


def _advective(term: sp.Expr, velocity, coords, is_invariant):
    """``(c, g, j)`` if ``term`` is ``c * u_j * d(g, x_j)`` with ``c`` constant, else None."""
    factors = sp.Mul.make_args(term)
    vels = [(i, f) for i, f in enumerate(factors) if field_of(f) in velocity]
    ders = [(i, f) for i, f in enumerate(factors) if isinstance(f, sp.Derivative)]
    if len(vels) != 1 or len(ders) != 1:
        return None
    (iv, v), (idd, d) = vels[0], ders[0]
    j = velocity.index(field_of(v))
    if len(d.variable_count) != 1 or d.variable_count[0] != (coords[j], 1):
        return None
    rest = [f for i, f in enumerate(factors) if i not in (iv, idd)]
    if not all(is_invariant(f) for f in rest):
        return None
    return sp.Mul(*rest), d.expr, j


def _drop_gradient(fluxes: list[dict], velocity: list[int]) -> None:
    """Subtract the last velocity component's diagonal flux ``s`` from every diagonal flux.

    ``d_i(tau_ii) -> d_i(tau_ii - s)`` removes ``grad(s)`` from the velocity tendencies,
    which the Leray projection annihilates anyway; the last equation loses its diagonal
    flux, one forward transform fewer.
    """
    dim = len(velocity)
    if dim == 0:
        return
    unit = [tuple(int(a == i) for a in range(dim)) for i in range(dim)]
    last = fluxes[velocity[-1]].get(unit[-1])
    if not last:
        return
    s = sp.Add(*[c * e for c, e in last])
    for i, f in enumerate(velocity):
        if i == dim - 1:
            del fluxes[f][unit[i]]
        else:
            fluxes[f].setdefault(unit[i], []).append((sp.Integer(-1), s))


def _bounded(orders: tuple[int, ...], factor: sp.Expr) -> tuple[tuple[int, ...], sp.Expr]:
    """Derivative orders and a bound of ``|factor|`` for the multiplier ``factor * (i k)^orders``.

    ``kinv2`` lowers the order by two where there is one to lower (``|k_a|^2 / |k|^2 <= 1``),
    else it is bounded by ``kinv2_max``; ``mode0`` keeps the mean only: bounded by 1, order 0.
    """
    orders = list(orders)
    bound = sp.Abs(factor.subs({KINV2: 1, MODE0: 1}))
    for _ in range(int(sp.degree(factor, KINV2)) if factor.has(KINV2) else 0):
        a = max(range(len(orders)), key=lambda i: orders[i])
        if orders[a] >= 2:
            orders[a] -= 2
        else:
            bound *= KINV2_MAX
    if factor.has(MODE0):
        orders = [0] * len(orders)
    return tuple(orders), bound


def _radius_plan(semi: SpectralSemiDiscrete, skip_stiff: list[bool] | None = None) -> list[tuple[sp.Expr, sp.Expr]]:
    """Per field, bounds of the real and imaginary extents of the linearized spectrum.

    Frozen-coefficient linearization of the plan: a linear term ``c (i k)^n hat(g)`` on a field
    contributes ``|c| kmax^n``; on a composite ``q = G(..., d^m g, ...)`` it contributes
    ``|c| |dG/d(d^m g)| kmax^(n+m)`` for every physical array ``d^m g`` that ``G`` reads
    (nested composites chain their partial derivatives); a physical part ``P`` contributes
    ``|dP/d(d^m g)| kmax^m``. Even total orders bound the real extent (diffusion), odd ones the
    imaginary extent (advection); the reaction rate ``r`` of a field on itself adds
    ``max(0, -r)``, as in :mod:`pdeforge.solvers.explicit.stability`. Derivatives of the coefficients
    themselves (lower-order terms) are left out, as in every CFL estimate. With
    ``skip_stiff``, the diagonal linear term of each field marked there is left out too (the
    part that integrating-factor, exponential and IMEX methods do not step explicitly).
    """
    dim = semi.dim
    by_symbol = {n.symbol: n for n in semi.nodes}
    composites = {c.symbol.name: c for c in semi.composites}
    k_syms = [*K_ODD[:dim], *K_SQ[:dim]]

    def kpow(orders) -> sp.Expr:
        return sp.Mul(*[K_MAX[a] ** n for a, n in enumerate(orders)])

    def add(acc, bound, orders):
        if sum(orders) % 2 == 0:
            acc[0] += bound
        else:
            acc[1] += bound

    def through(expr, coeff, orders, own, acc):
        """Contributions of ``coeff * d^orders(expr)`` (expr in plan symbols)."""
        for sym in sorted(expr.free_symbols & set(by_symbol), key=lambda s: s.name):
            part = sp.diff(expr, sym)
            if part == 0:
                continue
            node = by_symbol[sym]
            total = tuple(a + b for a, b in zip(orders, node.orders))
            scale = sp.Integer(1)
            if node.factor != 1:  # |-kinv2 k^n| <= kinv2_max kmax^(n-2); |mode0| <= 1 (mode 0 only)
                total, scale = _bounded(total, node.factor)
            if node.source in composites:
                through(composites[node.source].expr, coeff * scale * sp.Abs(part), total, own, acc)
            elif any(total):
                add(acc, coeff * scale * sp.Abs(part) * kpow(total), total)
            elif node.source == own and coeff == 1:
                acc[0] += sp.Max(0, -part)

    out = []
    for i, f in enumerate(semi.fields):
        acc = [sp.Integer(0), sp.Integer(0)]
        for term in semi.linear[i]:
            if skip_stiff and skip_stiff[i] and term.source == f:
                continue
            poly = sp.Poly(term.multiplier, *k_syms)
            for monom, coeff in poly.terms():
                orders = tuple(monom[a] + 2 * monom[dim + a] for a in range(dim))
                if coeff.free_symbols & set(MULTIPLIER_SYMBOLS):
                    orders, bound = _bounded(orders, coeff)
                    coeff = sp.sign(coeff.subs({KINV2: 1, MODE0: 1})) * bound
                if term.source in composites:
                    through(composites[term.source].expr, sp.Abs(coeff), orders, f, acc)
                elif any(orders):
                    add(acc, sp.Abs(coeff) * kpow(orders), orders)
                elif term.source == f:
                    acc[0] += sp.Max(0, -coeff)
        if semi.physical[i] != 0:
            through(semi.physical[i], sp.Integer(1), (0,) * dim, f, acc)
        out.append((acc[0], acc[1]))
    return out

"""Scalar unknowns (ODE-PDE systems) and domain reductions ``integral(expr)``, ``mean(expr)``.

A *scalar* is an unknown without space dimensions: ``PDESystem(equations={"u": "D*laplace(u)
- a*u + b*A", "A": "a*integral(u) - b*A"}, scalars=("A",))``. Its equation may use the domain
reductions ``integral(expr)`` (over the whole box) and ``mean(expr)`` (``integral / volume``) of
expressions of the fields; field equations may use the scalars and the reductions too.

Boundary values may use the scalars and the reductions too (an inflow that is an integral of
the solution, as in age-structured population models): ``bcs={"x": ({"dirichlet": "S"},
"neumann")}``. The kernels read them as parameters set before each evaluation; the exact
Jacobian adds the boundary's dependence on them (:mod:`pdeforge.codegen.coupled`).

Downstream the system is *lifted* (:func:`lift`): every scalar and every distinct reduction
becomes a field that is constant in space (its equation is 0, its walls zero-flux), so the
field right-hand sides are ordinary stencils that every target compiles, and their derivatives
with respect to a scalar or a reduction are ordinary Jacobian columns (summed over the cells of
that constant field). The integrands form a second lifted system (one integrand per equation
slot), whose compiled right-hand side and exact Jacobian give the reductions (sum times cell
volume: the same quadrature as the conservation checks) and their gradients (dense rows of
cell weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.reductions import REDUCTION_TYPES, DomainIntegral, DomainMean


def _reduction(cls, name: str):
    def build(arg):
        if isinstance(arg, (sp.MatrixBase, tuple)) or isinstance(arg, sp.logic.boolalg.Boolean):
            raise SystemDefinitionError(f"{name}() takes a scalar expression of the fields")
        return cls(sp.sympify(arg))

    build.__name__ = name
    return build


#: the reductions of the equation language: name -> callable building the SymPy node
REDUCTIONS = {"integral": _reduction(DomainIntegral, "integral"), "mean": _reduction(DomainMean, "mean")}


def check_scalar_names(scalars: Sequence[str], equations: Mapping, params: Mapping | None) -> list[str]:
    """The scalar names, checked: each has an equation and names no parameter."""
    if isinstance(scalars, str):
        scalars = (scalars,)
    names = list(scalars or ())
    for s in names:
        if not isinstance(s, str) or s not in equations:
            raise SystemDefinitionError(
                f"scalar {s!r} has no equation; give equations[{s!r}] (scalars: {', '.join(map(str, names))})"
            )
        if s in (params or {}):
            raise SystemDefinitionError(f"scalar {s!r} has the same name as a parameter")
    if len(set(names)) != len(names):
        raise SystemDefinitionError(f"scalars: a name is given twice ({', '.join(names)})")
    return names


def parse_scalar_equations(system, equations: Mapping) -> dict[str, sp.Expr]:
    """Parse the scalars' equations of ``system`` (and check every reduction in all equations).

    A scalar equation may use scalars, parameters, t and reductions of the fields; a field may
    appear only inside ``integral``/``mean``. Reductions may not be nested and their integrands
    may not be vectors.
    """
    from pdeforge.symbolic.parser import parse_expression

    out: dict[str, sp.Expr] = {}
    for s in system.scalars:
        what = f"equation for scalar {s!r}"
        value = equations[s]
        if isinstance(value, str):
            system.equation_text[s] = value.strip()
            expr = parse_expression(value, system.namespace(), what)
        elif isinstance(value, (int, float)):
            expr = sp.Float(value)
            system.equation_text[s] = str(value)
        else:
            expr = system._from_sympy(value, what)
            system.equation_text[s] = str(expr).replace(f"({', '.join(system.axes)})", "")
        if isinstance(expr, (sp.MatrixBase, tuple)) or isinstance(expr, sp.logic.boolalg.Boolean):
            raise SystemDefinitionError(f"{what}: the right-hand side must be a scalar expression")
        expr = sp.sympify(expr)
        outside = _outside_reductions(expr)
        fields = sorted(type(f).__name__ for f in outside.atoms(sp.core.function.AppliedUndef))
        if fields:
            raise SystemDefinitionError(
                f"{what}: field {fields[0]!r} appears outside integral()/mean(); a scalar's equation sees the "
                f"fields only through integral(...) or mean(...)"
            )
        space = sorted(str(c) for c in outside.free_symbols & set(system.coords))
        if space or outside.has(sp.Derivative):
            raise SystemDefinitionError(
                f"{what}: {'coordinate ' + space[0] if space else 'a derivative'} appears outside integral()/mean(); "
                "a scalar does not depend on space"
            )
        out[s] = expr
    for where, expr in [*((f"equation for {f!r}", system.rhs[f]) for f in system.fields),
                        *((f"equation for scalar {s!r}", e) for s, e in out.items())]:
        for node in expr.atoms(*REDUCTION_TYPES):
            _check_integrand(node, where)
    return out


def boundary_outside_reductions(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``integral``/``mean`` replaced by a dummy (what remains must be free of fields)."""
    return _outside_reductions(expr)


def check_integrand(node: sp.Expr, where: str) -> None:
    """Refuse what a reduction's integrand may not hold (nested reductions, ...)."""
    _check_integrand(node, where)


def _outside_reductions(expr: sp.Expr) -> sp.Expr:
    return expr.xreplace({node: sp.Dummy() for node in expr.atoms(*REDUCTION_TYPES)})


def _check_integrand(node: sp.Expr, where: str) -> None:
    name = "integral" if isinstance(node, DomainIntegral) else "mean"
    inner = node.args[0]
    if inner.atoms(*REDUCTION_TYPES):
        raise SystemDefinitionError(
            f"{where}: {name}() contains another integral()/mean(); nested reductions are not supported "
            "(introduce a scalar for the inner one)"
        )
    if not inner.atoms(sp.core.function.AppliedUndef) and not inner.free_symbols:
        return  # integral(1): the volume
    if inner.has(sp.Derivative):
        # derivatives inside an integrand are discretized like the equations (same closures)
        for der in inner.atoms(sp.Derivative):
            if der.expr.atoms(*REDUCTION_TYPES):
                raise SystemDefinitionError(f"{where}: a derivative of integral()/mean() inside {name}()")


def has_coupling(system) -> bool:
    """Whether ``system`` has scalars or reductions (it is then solved as a lifted system)."""
    if getattr(system, "scalars", None):
        return True
    if any(e.atoms(*REDUCTION_TYPES) for e in getattr(system, "rhs", {}).values()):
        return True
    return any(bc.value.atoms(*REDUCTION_TYPES) for pair in getattr(system, "bcs", {}).values() for bc in pair)


def boundary_nodes(system) -> list[sp.Expr]:
    """The reductions in the boundary values of ``system``, in a fixed order."""
    nodes: list[sp.Expr] = []
    for _, pair in sorted(getattr(system, "bcs", {}).items()):
        for bc in pair:
            for node in sorted(bc.value.atoms(*REDUCTION_TYPES), key=sp.default_sort_key):
                if node not in nodes:
                    nodes.append(node)
    return nodes


@dataclass
class Coupling:
    """How a system with scalars and reductions maps onto lifted fields.

    Attributes:
        fields: the original fields.
        scalars: the scalar unknowns.
        reductions: distinct reduction nodes (``integral(...)`` / ``mean(...)``) in order.
        reduction_names: the lifted field name of each reduction.
        kinds: "integral" or "mean" per reduction.
        integrands: the integrand of each reduction with scalars as (constant) lifted fields.
        scalar_rhs: the scalars' right-hand sides with each reduction as a symbol of its name.
        reduction_symbols: those symbols, in order.
        feedback: whether some field equation uses a reduction (a rank-one coupling of the fields).
    """

    fields: list[str]
    scalars: list[str]
    reductions: list[sp.Expr]
    reduction_names: list[str]
    kinds: list[str]
    integrands: list[sp.Expr]
    scalar_rhs: list[sp.Expr]
    reduction_symbols: list[sp.Symbol]
    feedback: bool

    @property
    def lifted_fields(self) -> list[str]:
        return [*self.fields, *self.scalars, *self.reduction_names]


def coupling_of(system) -> Coupling:
    """The :class:`Coupling` of ``system`` (fields, scalars, every distinct reduction)."""
    if getattr(system, "is_complex", False):
        raise SystemDefinitionError("scalars and integral()/mean() are not supported for complex fields")
    if getattr(system, "noise", None):
        raise SystemDefinitionError("scalars and integral()/mean() are not supported together with noise terms")
    scalars = list(getattr(system, "scalars", ()))
    scalar_rhs = getattr(system, "scalar_rhs", {})
    nodes: list[sp.Expr] = []
    for expr in [*(system.rhs[f] for f in system.fields), *(scalar_rhs[s] for s in scalars)]:
        for node in sorted(expr.atoms(*REDUCTION_TYPES), key=sp.default_sort_key):
            if node not in nodes:
                nodes.append(node)
    nodes += [node for node in boundary_nodes(system) if node not in nodes]
    taken = set(system.fields) | set(scalars) | set(system.params) | set(getattr(system, "coefficients", {}))
    names = []
    for k, node in enumerate(nodes):
        name = f"{'integral' if isinstance(node, DomainIntegral) else 'mean'}{k}_"
        while name in taken:
            name += "_"
        names.append(name)
    symbols = [sp.Symbol(n, real=True) for n in names]
    as_symbols = dict(zip(nodes, symbols))
    scalar_fields = {system.scalar_symbols[s]: sp.Function(s, real=True)(*system.coords) for s in scalars}
    feedback = any(system.rhs[f].atoms(*REDUCTION_TYPES) for f in system.fields) or bool(boundary_nodes(system))
    return Coupling(
        fields=list(system.fields),
        scalars=scalars,
        reductions=nodes,
        reduction_names=names,
        kinds=["integral" if isinstance(n, DomainIntegral) else "mean" for n in nodes],
        integrands=[n.args[0].xreplace(scalar_fields) for n in nodes],
        scalar_rhs=[scalar_rhs[s].xreplace(as_symbols) for s in scalars],
        reduction_symbols=symbols,
        feedback=feedback,
    )


def lift(system, coupling: Coupling, integrands: bool = False):
    """The lifted system: scalars and reductions as space-constant fields (equation 0, zero-flux walls).

    With ``integrands=True`` the equations are instead the integrands of the reductions (one
    per equation slot, the remaining slots 0): its right-hand side at a state gives the
    integrand at every cell, its Jacobian their derivatives.
    """
    from pdeforge.symbolic.boundary import PERIODIC, neumann

    coords = system.coords
    new = object.__new__(type(system))
    new.__dict__.update(system.__dict__)
    extra = [*coupling.scalars, *coupling.reduction_names]
    functions = {n: sp.Function(n, real=True)(*coords) for n in extra}
    sub = {system.scalar_symbols[s]: functions[s] for s in coupling.scalars}
    sub.update({node: functions[n] for node, n in zip(coupling.reductions, coupling.reduction_names)})
    new.fields = coupling.lifted_fields
    new.field_functions = {**system.field_functions, **functions}
    if integrands:
        exprs = list(coupling.integrands) + [sp.Integer(0)] * (len(new.fields) - len(coupling.integrands))
        new.rhs = dict(zip(new.fields, exprs))
        new.name = f"{system.name} (integrands)"
    else:
        new.rhs = {**{f: system.rhs[f].xreplace(sub) for f in system.fields}, **{n: sp.Integer(0) for n in extra}}
    new.equation_text = {f: str(e).replace(f"({', '.join(system.axes)})", "") for f, e in new.rhs.items()}
    # boundary values read scalars and reductions as parameters (set before each evaluation)
    wall = boundary_parameters(coupling)
    new.params = {**system.params, **{n: 0.0 for n in wall.values()}}
    new.param_symbols = {**system.param_symbols, **{n: sp.Symbol(n, real=True) for n in wall.values()}}
    bcs = _bcs_with_parameters(system, coupling, wall)
    for a in range(system.dim):
        periodic = all(system.bcs[(f, a)][0].periodic for f in system.fields)
        for n in extra:
            bcs[(n, a)] = (PERIODIC, PERIODIC) if periodic else (neumann(0), neumann(0))
    new.bcs = bcs
    new.scalars = []
    new.scalar_symbols = {}
    new.scalar_rhs = {}
    new.noise = {}
    new.ic = None
    return new


def parametrize(system, coupling: Coupling):
    """The field equations with every scalar and reduction as a numeric parameter (value 0 here).

    The kernels of this system evaluate the field right-hand sides at given scalar and
    reduction values: one compiled kernel of the fields alone (the lifted system is kept for
    the Jacobian's columns).
    """
    new = object.__new__(type(system))
    new.__dict__.update(system.__dict__)
    extra = [*coupling.scalars, *coupling.reduction_names]
    new.params = {**system.params, **{n: 0.0 for n in extra}}
    new.param_symbols = {**system.param_symbols, **{n: sp.Symbol(n, real=True) for n in extra}}
    sub = dict(zip(coupling.reductions, coupling.reduction_symbols))
    new.rhs = {f: system.rhs[f].xreplace(sub) for f in system.fields}
    new.bcs = _bcs_with_parameters(system, coupling, {n: n for n in extra})
    new.scalars, new.scalar_symbols, new.scalar_rhs = [], {}, {}
    new.noise = {}
    new.ic = None
    return new


def boundary_parameters(coupling: Coupling) -> dict[str, str]:
    """Scalar or reduction name -> the parameter that carries its value into the boundary values
    of the lifted systems (whose fields already use the plain names)."""
    return {n: f"{n}_wall_" for n in (*coupling.scalars, *coupling.reduction_names)}


def _bcs_with_parameters(system, coupling: Coupling, names: Mapping[str, str]) -> dict:
    """``system.bcs`` with scalars and reductions in the boundary values as the parameters ``names``."""
    import dataclasses

    sub = {system.scalar_symbols[s]: sp.Symbol(names[s], real=True) for s in coupling.scalars}
    sub.update({node: sp.Symbol(names[n], real=True) for node, n in zip(coupling.reductions, coupling.reduction_names)})
    return {key: tuple(dataclasses.replace(bc, value=bc.value.xreplace(sub)) if not bc.periodic else bc for bc in pair)
            for key, pair in system.bcs.items()}


def boundary_derivatives(system, coupling: Coupling) -> dict[tuple[str, int, int], list]:
    """(field, axis, side) -> the derivative of that side's value with respect to each scalar,
    then each reduction (SymPy expressions in the coordinates, t, parameters, scalars and
    the reductions' symbols), for the sides whose value depends on one."""
    sub = dict(zip(coupling.reductions, coupling.reduction_symbols))
    unknowns = [*(system.scalar_symbols[s] for s in coupling.scalars), *coupling.reduction_symbols]
    out = {}
    for (f, a), pair in sorted(system.bcs.items()):
        for side, bc in enumerate(pair):
            if bc.periodic:
                continue
            value = bc.value.xreplace(sub)
            if value.free_symbols & set(unknowns):
                out[(f, a, side)] = [sp.diff(value, u) for u in unknowns]
    return out

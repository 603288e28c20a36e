"""Boundary conditions: what the user writes, and the canonical form the discretizer reads.

Every non-periodic side carries one linear condition

    alpha * u + beta * du/dn = g        (n the outward normal)

with ``g`` a SymPy expression of the coordinates, ``t`` and the parameters, and ``alpha``,
``beta`` expressions of ``t`` and the parameters (constant along the side; the ghost-cell
closure's weights follow them in time): Dirichlet is (1, 0, g), Neumann (0, 1, g), Robin
(alpha, beta, g).

Accepted specifications (``bcs=`` of :class:`~pdeforge.PDESystem`):

* ``"periodic"``, ``"neumann"`` / ``"zero-flux"`` / ``"no-flux"``, ``"dirichlet"`` (value 0):
  the same on every side of every field;
* a dict keyed by axis names (``"x"``, ``"y"``, ``"z"``) whose values are an axis spec;
* a dict keyed by field names whose values are any of these forms (per-field conditions);
  the key ``"*"`` gives the default for fields not named.

An axis spec is ``"periodic"``, one condition for both sides, a pair ``(low, high)``, or a
dict ``{"low": ..., "high": ...}``. A condition is ``"neumann"``, ``"dirichlet"``,
``{"dirichlet": g}``, ``{"neumann": g}``, ``{"robin": (alpha, beta, g)}``, or a tuple
``("dirichlet", g)`` / ``("robin", alpha, beta, g)``; values are numbers, SymPy expressions or
strings parsed with the safe parser (coordinates, ``t``, parameters and math functions allowed).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from pdeforge.symbolic.reductions import REDUCTION_TYPES
from pdeforge.errors import BoundaryConditionError, EquationParseError

KINDS = ("periodic", "dirichlet", "neumann", "robin")
_ALIASES = {
    "zero-flux": ("neumann", 0),
    "no-flux": ("neumann", 0),
    "zero_flux": ("neumann", 0),
    "noflux": ("neumann", 0),
    "neumann": ("neumann", 0),
    "dirichlet": ("dirichlet", 0),
}


@dataclass(frozen=True)
class BoundaryCondition:
    """One side's condition ``alpha*u + beta*du/dn = value`` (or periodic).

    Attributes:
        kind: "periodic", "dirichlet", "neumann" or "robin".
        value: right-hand side g (SymPy expression of coordinates, t and parameters).
        alpha: coefficient of u.
        beta: coefficient of the outward normal derivative.
    """

    kind: str
    value: sp.Expr = sp.Integer(0)
    alpha: sp.Expr = sp.Integer(1)
    beta: sp.Expr = sp.Integer(0)
    #: 0: polynomial ghost closure of this one condition; +1 / -1: the field is closed by even /
    #: odd reflection about the wall (a pair of conditions for fourth-order equations, see
    #: :mod:`pdeforge.symbolic.walls`)
    reflect: int = 0
    #: on a reflected wall, the second datum along the outward normal: ``d2u/dn2`` (odd
    #: reflection, ``value`` is ``u``), ``d3u/dn3`` (even reflection, ``value`` is ``du/dn``) or
    #: ``du/dn`` (clamped, ``value`` is ``u``)
    second: sp.Expr = sp.Integer(0)
    #: an odd pair on a field of odd order (KdV): the ghost cells follow the parabola through the
    #: first cell and the two data instead of the reflection
    extrapolate: bool = False
    #: the clamped pair ``u = value`` and ``du/dn = second`` (with ``reflect = -1``): the ghost
    #: cells follow the cubic through the first two cells and the two data
    clamped: bool = False

    @property
    def periodic(self) -> bool:
        return self.kind == "periodic"

    def describe(self) -> str:
        """Short human-readable text, e.g. ``dirichlet(u = sin(t))``."""
        if self.kind == "periodic":
            return "periodic"
        if self.reflect == 1:
            if self.value == 0 and self.second == 0:
                return "neumann(0) and d(laplace)/dn = 0 (even reflection)"
            return f"du/dn = {self.value} and d3u/dn3 = {self.second} (even reflection)"
        if self.clamped:
            return f"u = {self.value} and du/dn = {self.second} (clamped)"
        if self.reflect == -1:
            if self.value == 0 and self.second == 0 and not self.extrapolate:
                return "dirichlet(0) and laplace = 0 (odd reflection)"
            how = "parabola" if self.extrapolate else "odd reflection"
            return f"u = {self.value} and d2u/dn2 = {self.second} ({how})"
        if self.kind == "dirichlet":
            return f"dirichlet({self.value})"
        if self.kind == "neumann":
            return f"neumann({self.value})"
        return f"robin({self.alpha}*u + {self.beta}*du/dn = {self.value})"


PERIODIC = BoundaryCondition("periodic")


def dirichlet(value=0) -> BoundaryCondition:
    """``u = value`` on the side."""
    return BoundaryCondition("dirichlet", sp.sympify(value), sp.Integer(1), sp.Integer(0))


def neumann(value=0) -> BoundaryCondition:
    """``du/dn = value`` on the side (outward normal; 0 is zero flux)."""
    return BoundaryCondition("neumann", sp.sympify(value), sp.Integer(0), sp.Integer(1))


def robin(alpha, beta, value) -> BoundaryCondition:
    """``alpha*u + beta*du/dn = value`` on the side."""
    return BoundaryCondition("robin", sp.sympify(value), sp.sympify(alpha), sp.sympify(beta))


#: (field, axis) -> (low side, high side)
BoundarySpec = dict[tuple[str, int], tuple[BoundaryCondition, BoundaryCondition]]


def parse_bcs(
    spec,
    fields: Sequence[str],
    axes: Sequence[str],
    parse_value: Callable[[object, str], sp.Expr],
) -> BoundarySpec:
    """Turn a user specification into a canonical :data:`BoundarySpec`.

    Args:
        spec: the user's ``bcs`` argument (see the module docstring for the forms).
        fields: field names of the system.
        axes: spatial axis names ("x", "y", "z" up to the dimension).
        parse_value: turns a number, SymPy expression or string into a SymPy expression;
            its second argument describes the value for error messages.

    Raises:
        BoundaryConditionError: for anything that is not one of the accepted forms.
    """
    if spec is None:
        raise BoundaryConditionError(
            "bcs: no boundary conditions given; use 'periodic', 'neumann', 'dirichlet' or a dict per axis"
        )
    per_field: dict[str, object]
    if isinstance(spec, Mapping) and any(k in fields or k == "*" for k in spec):
        unknown = [k for k in spec if k not in fields and k != "*"]
        if unknown:
            raise BoundaryConditionError(
                f"bcs: key {unknown[0]!r} is neither a field ({', '.join(fields)}) nor '*'"
            )
        missing = [f for f in fields if f not in spec and "*" not in spec]
        if missing:
            raise BoundaryConditionError(
                f"bcs: no condition for field {missing[0]!r}; give one or a default under '*'"
            )
        per_field = {f: spec.get(f, spec.get("*")) for f in fields}
    else:
        per_field = {f: spec for f in fields}

    result: BoundarySpec = {}
    for fname, fspec in per_field.items():
        for axis_index, axis in enumerate(axes):
            where = f"bcs for field {fname!r} on axis {axis!r}"
            axis_spec = _axis_spec(fspec, axis, axes, where)
            low, high = _pair(axis_spec, where)
            result[(fname, axis_index)] = (
                _condition(low, f"{where} (low side)", parse_value),
                _condition(high, f"{where} (high side)", parse_value),
            )
            lo, hi = result[(fname, axis_index)]
            if lo.periodic != hi.periodic:
                raise BoundaryConditionError(f"{where}: periodic must be set on both sides or neither")
    return result


def check_coefficients(spec: BoundarySpec, allowed: set, axes: Sequence[str]) -> None:
    """Refuse Robin coefficients that depend on anything but ``allowed`` (t and the parameters).

    Args:
        spec: canonical conditions, (field, axis index) -> (low, high).
        allowed: the symbols alpha and beta may contain.
        axes: axis names (for the message).

    Raises:
        BoundaryConditionError: naming the side and the symbols that are not allowed.
    """
    for (fname, a), pair in spec.items():
        for side, bc in zip(("low", "high"), pair):
            if bc.periodic:
                continue
            bad = sorted(map(str, (bc.alpha.free_symbols | bc.beta.free_symbols) - set(allowed)))
            if any(e.atoms(*REDUCTION_TYPES) for e in (bc.alpha, bc.beta)):
                bad = ["integral()/mean()"]
            if bad or bc.alpha.atoms(sp.core.function.AppliedUndef) or bc.beta.atoms(sp.core.function.AppliedUndef):
                raise BoundaryConditionError(
                    f"bcs for field {fname!r} on axis {axes[a]!r} ({side} side): {bc.describe()}: the coefficients alpha "
                    f"and beta may depend on t and parameters only, not on {bad or 'fields'} (a coordinate "
                    "or a scalar may go into the value g)"
                )


def _axis_spec(fspec, axis: str, axes: Sequence[str], where: str):
    if isinstance(fspec, Mapping) and not _is_condition_dict(fspec):
        unknown = [k for k in fspec if k not in axes]
        if unknown:
            raise BoundaryConditionError(
                f"{where}: key {unknown[0]!r} is not an axis of this domain (axes: {', '.join(axes)})"
            )
        if axis not in fspec:
            raise BoundaryConditionError(f"{where}: missing; give a condition for every axis")
        return fspec[axis]
    return fspec


def _is_condition_dict(d: Mapping) -> bool:
    return len(d) == 1 and next(iter(d)) in ("dirichlet", "neumann", "robin") or set(d) == {"low", "high"}


def _looks_like_condition(c) -> bool:
    if isinstance(c, BoundaryCondition):
        return True
    if isinstance(c, str):
        return c.strip().lower() in _ALIASES or c.strip().lower() == "periodic"
    if isinstance(c, Mapping):
        return len(c) == 1 and str(next(iter(c))).lower() in ("dirichlet", "neumann", "robin")
    return isinstance(c, tuple) and bool(c) and isinstance(c[0], str) and c[0].lower() in KINDS


def _pair(axis_spec, where: str):
    """Split an axis spec into (low, high): a pair of conditions, or one for both sides."""
    if isinstance(axis_spec, Mapping) and set(axis_spec) == {"low", "high"}:
        return axis_spec["low"], axis_spec["high"]
    if (
        isinstance(axis_spec, (list, tuple))
        and len(axis_spec) == 2
        and all(_looks_like_condition(c) for c in axis_spec)
    ):
        return axis_spec[0], axis_spec[1]
    return axis_spec, axis_spec


def _condition(c, where: str, parse_value) -> BoundaryCondition:
    if isinstance(c, BoundaryCondition):
        return c
    try:
        if isinstance(c, str):
            key = c.strip().lower()
            if key == "periodic":
                return PERIODIC
            if key in _ALIASES:
                kind, value = _ALIASES[key]
                return dirichlet(value) if kind == "dirichlet" else neumann(value)
            raise BoundaryConditionError(
                f"{where}: unknown condition {c!r} (valid: periodic, dirichlet, neumann, zero-flux, "
                "or {'dirichlet': value}, {'neumann': value}, {'robin': (alpha, beta, value)})"
            )
        if isinstance(c, Mapping) and len(c) == 1:
            kind, value = next(iter(c.items()))
            return _from_kind(str(kind).lower(), value, where, parse_value)
        if isinstance(c, tuple) and c and isinstance(c[0], str):
            kind = c[0].lower()
            if kind == "robin":
                return _from_kind(kind, c[1:], where, parse_value)
            if len(c) == 2:
                if kind not in KINDS:  # two condition names, one of them misspelt
                    _refuse_misspelt_pair(c, where)
                try:
                    return _from_kind(kind, c[1], where, parse_value)
                except EquationParseError:
                    _refuse_misspelt_pair(c, where)
                    raise
    except EquationParseError as exc:
        raise BoundaryConditionError(str(exc)) from None
    if isinstance(c, tuple) and len(c) == 2:
        _refuse_misspelt_pair(c, where)
    raise BoundaryConditionError(
        f"{where}: cannot read {c!r} (valid: 'periodic', 'dirichlet', 'neumann', "
        "{'dirichlet': value}, {'neumann': value}, {'robin': (alpha, beta, value)})"
    )


def _refuse_misspelt_pair(pair: tuple, where: str) -> None:
    """Report ``(condition, misspelt condition)`` -- a low/high pair with a typo in its second
    name, which otherwise reads as ``(kind, value)`` -- as the misspelt name it is."""
    names = [*_ALIASES, "periodic", "robin"]
    for name in pair:
        if not isinstance(name, str) or name.strip().lower() in names:
            continue
        close = difflib.get_close_matches(name.strip().lower(), names, n=1, cutoff=0.7)
        if not close:
            continue
        raise BoundaryConditionError(
            f"{where}: unknown condition {name!r} in {pair!r} (did you mean {close[0]!r}?); a pair gives the "
            "(low, high) conditions, each one of: periodic, dirichlet, neumann, zero-flux, "
            "{'dirichlet': value}, {'neumann': value}, {'robin': (alpha, beta, value)}"
        )


def _from_kind(kind: str, value, where: str, parse_value) -> BoundaryCondition:
    if kind == "dirichlet":
        return dirichlet(parse_value(value, f"{where} dirichlet value"))
    if kind == "neumann":
        return neumann(parse_value(value, f"{where} neumann value"))
    if kind == "robin":
        if not (isinstance(value, (list, tuple)) and len(value) == 3):
            raise BoundaryConditionError(f"{where}: robin takes (alpha, beta, value) for alpha*u + beta*du/dn = value")
        a, b, g = (parse_value(v, f"{where} robin {n}") for v, n in zip(value, ("alpha", "beta", "value")))
        if a == 0 and b == 0:
            raise BoundaryConditionError(f"{where}: robin with alpha = beta = 0 is no condition")
        return robin(a, b, g)
    raise BoundaryConditionError(f"{where}: unknown condition kind {kind!r} (valid: dirichlet, neumann, robin)")

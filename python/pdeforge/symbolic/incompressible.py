"""Incompressible systems: a velocity whose tendency is projected onto divergence-free fields.

The pressure of incompressible flow is the Lagrange multiplier of ``div(u) = 0``; on a
periodic box it is removed exactly by the Leray projection ``P = I - grad lap^-1 div``, so
the momentum equations are written *without* a pressure term and the system says which fields
form the velocity::

    d(u_i)/dt = P_ij [ rhs_j ],      div(u) = 0

Everything else stays in the ordinary equation language, plus two additions that LES needs:

* ``definitions``: named sub-expressions (``nu_t``, the strain-rate magnitude, a closure),
  parsed in order, each usable in later definitions and in the equations. They are inlined
  into the right-hand sides, so the generated solver and the generated residual always see
  the same equations.
* ``Delta``: the filter width of the grid the system is bound to, ``(h_x h_y h_z)^(1/d)``
  (the cell size on cubic grids), as in the Smagorinsky model ``nu_t = (Cs Delta)^2 |S|``.

Fields that are not in ``velocity`` (a passive scalar, say) are advanced as written. Editing
the equations (another subgrid model, a forcing, a scalar) changes the spectral solver and
the PINO residual together, since both are generated from :attr:`PDESystem.rhs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import sympy as sp

from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.parser import Namespace, parse_expression
from pdeforge.symbolic.system import RESERVED, PDESystem

#: The filter width symbol; its value comes from the grid at bind time.
DELTA = sp.Symbol("Delta", positive=True)

#: Names an incompressible system reserves on top of the core language.
GRID_SYMBOLS = {"Delta": DELTA}


class IncompressibleSystem(PDESystem):
    """A periodic system whose velocity fields are kept divergence-free by projection.

    Args:
        equations: field name -> right-hand side (no pressure term: it is the projection).
        velocity: the velocity components, one per axis, in axis order (default ``u, v, w``
            truncated to the dimension).
        params: parameter name -> value.
        domain: one ``(low, high)`` pair per axis (2 or 3 axes).
        definitions: optional ordered mapping name -> expression text of named
            sub-expressions (may use fields, parameters, ``Delta`` and earlier definitions).
        ic: optional default initial condition (see :class:`PDESystem`).
        fields: optional explicit field order.
        name: name for messages and output.
        bcs: must be ``"periodic"`` (the projection is the periodic one).

    Attributes:
        velocity: the velocity field names, one per axis.
        definitions: name -> parsed SymPy expression.
        definition_text: name -> the text as given.
        discretization: ``"spectral"``, the discretization :func:`pdeforge.solve` picks for it.
    """

    discretization = "spectral"

    def __init__(
        self,
        equations: Mapping[str, str | sp.Expr],
        velocity: Sequence[str] | None = None,
        params: Mapping[str, float] | None = None,
        domain: Sequence[tuple[float, float]] = ((0.0, 1.0), (0.0, 1.0)),
        definitions: Mapping[str, str] | None = None,
        ic: Mapping[str, object] | None = None,
        fields: Sequence[str] | None = None,
        name: str | None = None,
        bcs="periodic",
    ):
        if bcs != "periodic":
            raise SystemDefinitionError(
                "incompressible systems are periodic (the pressure is removed by the periodic Leray projection); "
                f"got bcs={bcs!r}, use bcs='periodic'"
            )
        dim = len(domain) if isinstance(domain, Sequence) else 0
        if dim not in (2, 3):
            raise SystemDefinitionError(f"incompressible systems are 2-D or 3-D, got a {dim}-D domain")
        velocity = tuple(velocity) if velocity is not None else ("u", "v", "w")[:dim]
        if len(velocity) != dim:
            raise SystemDefinitionError(
                f"velocity: give one component per axis ({dim} for this domain), got {list(velocity)}"
            )
        if len(set(velocity)) != dim:
            raise SystemDefinitionError(f"velocity: components must be distinct, got {list(velocity)}")
        if definitions is not None and not isinstance(definitions, Mapping):
            raise SystemDefinitionError("definitions: give a dict of name -> expression text")
        self.velocity: tuple[str, ...] = velocity
        self.definition_text: dict[str, str] = {k: str(v).strip() for k, v in (definitions or {}).items()}
        self.definitions: dict[str, sp.Basic] = {}
        self._definitions_parsed = False
        super().__init__(equations, params=params, domain=domain, bcs=bcs, ic=ic, fields=fields, name=name)
        self._definitions_ready()  # definitions nobody used are still checked
        missing = [f for f in velocity if f not in self.fields]
        if missing:
            raise SystemDefinitionError(
                f"velocity component {missing[0]!r} is not a field (fields: {', '.join(self.fields)})"
            )
        if "Delta" in self.params:
            raise SystemDefinitionError("parameter name 'Delta' is reserved for the filter width of the grid")

    # language ----------------------------------------------------------------------------
    def namespace(self, with_fields: bool = True, with_operators: bool = True) -> Namespace:
        """The core names plus ``Delta`` and the definitions (where fields are allowed)."""
        ns = super().namespace(with_fields, with_operators)
        if with_fields:
            ns.symbols.update(GRID_SYMBOLS)
            ns.groups["grid"] = list(GRID_SYMBOLS)
            self._definitions_ready()
            ns.symbols.update(self.definitions)
            ns.groups["definitions"] = list(self.definitions)
        return ns

    def _definitions_ready(self) -> None:
        """Parse the definitions once, in order (each sees the ones before it)."""
        if self._definitions_parsed:
            return
        self._definitions_parsed = True
        taken = set(self.fields) | set(self.params) | RESERVED | set(GRID_SYMBOLS)
        for def_name, text in self.definition_text.items():
            if not isinstance(def_name, str) or not def_name.isidentifier() or def_name.startswith("_"):
                raise SystemDefinitionError(f"definition name {def_name!r} is not a valid identifier")
            if def_name in taken:
                raise SystemDefinitionError(
                    f"definition name {def_name!r} is already a field, parameter or reserved name"
                )
            value = parse_expression(text, self.namespace(), f"definition of {def_name!r}")
            if isinstance(value, tuple) or isinstance(value, sp.logic.boolalg.Boolean):
                raise SystemDefinitionError(f"definition of {def_name!r}: must be a scalar or vector expression")
            self.definitions[def_name] = value
            taken.add(def_name)

    def _check_symbols(self) -> None:
        allowed = set(self.coords) | {self.t} | set(self.param_symbols.values()) | set(GRID_SYMBOLS.values())
        for f, expr in self.rhs.items():
            bad = [s for s in expr.free_symbols if s not in allowed]
            if bad:
                raise SystemDefinitionError(
                    f"equation for {f!r}: symbol {bad[0].name!r} is not a field, parameter, coordinate or Delta"
                )
            if expr.has(sp.zoo, sp.nan):
                raise SystemDefinitionError(f"equation for {f!r}: contains an undefined value (division by zero?)")

    # information -------------------------------------------------------------------------
    @property
    def grid_symbols(self) -> dict[str, sp.Symbol]:
        """Symbols whose values come from the grid at bind time (``Delta``)."""
        return dict(GRID_SYMBOLS)

    def equations_text(self) -> str:
        """Definitions, equations and the incompressibility constraint, one per line."""
        lines = [f"{k} = {v}" for k, v in self.definition_text.items()]
        lines.append(super().equations_text())
        vel = ", ".join(self.velocity)
        lines.append(f"div(vec({vel})) = 0   (pressure removed by Leray projection of the {vel} tendencies)")
        return "\n".join(lines)

    def structure_key(self) -> str:
        """The core structure key plus the projected velocity (it shapes the generated code)."""
        h = hashlib.sha256(super().structure_key().encode())
        h.update(("incompressible:" + ",".join(self.velocity)).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        head, _, rest = super().__repr__().partition("\n")
        return (f"Incompressible{head} (velocity {', '.join(self.velocity)}, divergence-free by a Leray projection)"
                f"\n{rest}")


def filter_width(spacing: Sequence[float]) -> float:
    """The filter width ``Delta`` of a grid with cell widths ``spacing``: their geometric mean."""
    prod = 1.0
    for h in spacing:
        prod *= float(h)
    return prod ** (1.0 / len(spacing))


__all__ = ["DELTA", "IncompressibleSystem", "filter_width"]

"""Geometries of the domain: Cartesian boxes and the symmetric curvilinear grids.

``PDESystem(..., geometry=...)`` takes

* ``"cartesian"`` (default): coordinates x, y, z, one ``(low, high)`` pair per axis (1 to 3);
* ``"polar"``: a disc or annulus with axial symmetry in the plane, coordinate r,
  ``domain=[(r_low, r_high)]``;
* ``"cylindrical"``: a cylinder with axial symmetry, coordinates r and z,
  ``domain=[(r_low, r_high), (z_low, z_high)]``;
* ``"spherical"``: a ball or shell with spherical symmetry, coordinate r, ``domain=[(r_low, r_high)]``.

In the curvilinear geometries the operators expand to their divergence forms,

    laplace(u) = (1/r^m) d(r^m du/dr)/dr  (+ d2u/dz2),   div(v) = (1/r^m) d(r^m v_r)/dr  (+ dv_z/dz),
    grad(u) = (du/dr, du/dz),

with ``m = 1`` (polar, cylindrical) or ``m = 2`` (spherical). The factor ``1/r^m`` outside the
derivative is written as ``1/radial_measure(r, m)``: it is ``r^m`` for every symbolic purpose
(differentiation, :meth:`~sympy.core.basic.Basic.doit`, exact solutions), and the
finite-difference discretizer evaluates it at a cell centre as the cell's volume per unit
width, ``(r_{i+1/2}^(m+1) - r_{i-1/2}^(m+1)) / ((m+1) h)``. Together with the exact face
radii ``r_{i+1/2}^m`` that the flux form puts on the faces, the scheme is the conservative
face-area finite-volume scheme: ``sum_i V_i du_i/dt`` is the net flux through the outer faces,
to round-off (for polar grids ``V_i/h = r_i`` exactly, for spherical ``r_i^2 + h^2/12``).

At ``r = 0`` (a domain starting there) the inner face has zero area, so the flux through it
vanishes whatever the ghost cell holds; the ghost cell is filled by even reflection (the
field is even in r, which is what regularity of a smooth axisymmetric field means), so
non-divergence terms (``d(u, r)`` in an advection term) are centred correctly there too. No
condition is needed at ``r = 0``: a condition written for all sides at once (``"dirichlet"``,
``{"r": "neumann"}``) applies to ``r = r_high`` only; one written for the ``r = 0`` side
itself (a ``(low, high)`` pair or ``{"low": ..., "high": ...}``) must be zero-flux, else it is
refused with one clear error. A domain with ``r_low > 0`` (annulus, shell) takes conditions on
both sides as a Cartesian axis does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from pdeforge.errors import BoundaryConditionError, EquationParseError, SystemDefinitionError
from pdeforge.symbolic.operators import _scalar


@dataclass(frozen=True)
class Geometry:
    """One geometry of the domain.

    Attributes:
        name: "cartesian", "polar", "cylindrical" or "spherical".
        axes: coordinate names, in axis order (None for Cartesian: x, y, z up to the dimension).
        m: exponent of the radial measure ``r^m`` (0 for Cartesian).
        description: one line for messages.
    """

    name: str
    axes: tuple[str, ...] | None
    m: int
    description: str

    @property
    def curvilinear(self) -> bool:
        return self.m > 0

    def angular_factor(self) -> float:
        """``2 pi`` (polar, cylindrical) or ``4 pi`` (spherical): the measure is ``factor * r^m dr``."""
        return {0: 1.0, 1: 2.0 * math.pi, 2: 4.0 * math.pi}[self.m]


CARTESIAN_AXES = ("x", "y", "z")

GEOMETRIES: dict[str, Geometry] = {
    "cartesian": Geometry("cartesian", None, 0, "a box, coordinates x, y, z (1 to 3 axes)"),
    "polar": Geometry("polar", ("r",), 1, "a disc or annulus, axisymmetric, coordinate r"),
    "cylindrical": Geometry("cylindrical", ("r", "z"), 1, "a cylinder, axisymmetric, coordinates r, z"),
    "spherical": Geometry("spherical", ("r",), 2, "a ball or shell, spherically symmetric, coordinate r"),
}


def get_geometry(name: str) -> Geometry:
    """The :class:`Geometry` called ``name``; one clear error for unknown names."""
    try:
        return GEOMETRIES[name]
    except (KeyError, TypeError):
        raise SystemDefinitionError(f"geometry {name!r} is unknown (valid: {', '.join(GEOMETRIES)})") from None


def axis_names(geometry: Geometry, dim: int) -> tuple[str, ...]:
    """The coordinate names of a ``dim``-dimensional domain of ``geometry``."""
    return geometry.axes if geometry.axes is not None else CARTESIAN_AXES[:dim]


def check_domain_for(geometry: Geometry, domain: Sequence[tuple[float, float]]) -> None:
    """Refuse a domain with the wrong number of axes or a negative radius for ``geometry``."""
    if geometry.axes is None:
        return
    if len(domain) != len(geometry.axes):
        pairs = ", ".join(f"({a}_low, {a}_high)" for a in geometry.axes)
        raise SystemDefinitionError(
            f"domain: geometry {geometry.name!r} has {len(geometry.axes)} {'axes' if len(geometry.axes) > 1 else 'axis'} "
            f"({', '.join(geometry.axes)}), got {len(domain)}; give domain=[{pairs}]"
        )
    if domain[0][0] < 0:
        raise SystemDefinitionError(
            f"domain on axis 'r': the radius starts at {domain[0][0]:g} < 0; geometry {geometry.name!r} needs "
            "0 <= r_low < r_high"
        )


class radial_measure(sp.Function):
    """``r^m``, the radial measure of a curvilinear geometry, kept as a marker for the discretizer.

    Symbolically it is ``r**m`` (its derivative, ``doit()`` and numeric value are those of
    ``r**m``); :class:`pdeforge.discretize.finite_difference.FiniteDifference` evaluates it at a
    cell centre as the cell volume per unit width (see the module docstring).
    """

    nargs = 2
    is_real = True

    def fdiff(self, argindex: int = 1):
        r, m = self.args
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return m * r ** (m - 1)

    def doit(self, **hints):
        r, m = self.args
        return r**m

    def _eval_rewrite_as_Pow(self, r, m, **kwargs):
        return r**m

    def _eval_evalf(self, prec):
        return self.doit()._eval_evalf(prec)

    def _sympystr(self, printer):
        return printer._print(self.doit())


def cell_measure(r_centre: sp.Expr, h: sp.Expr, m: int) -> sp.Expr:
    """``(r_{i+1/2}^(m+1) - r_{i-1/2}^(m+1)) / ((m+1) h)``: the cell's ``r^m`` averaged over the cell."""
    half = h / 2
    return sp.expand(((r_centre + half) ** (m + 1) - (r_centre - half) ** (m + 1)) / ((m + 1) * h))


def curvilinear_operators(coords: Sequence[sp.Symbol], geometry: Geometry,
                          cartesian: Mapping[str, Callable]) -> dict[str, Callable]:
    """The operators of the equation language for a curvilinear ``geometry``.

    Args:
        coords: the coordinate symbols (r, or r and z).
        geometry: the geometry.
        cartesian: the Cartesian operators of the same coordinates (``d``, ``dot``, ``vec`` are
            shared; ``laplace``, ``grad``, ``div`` are replaced by their divergence forms).
    """
    coords = tuple(coords)
    r, others = coords[0], coords[1:]
    m = geometry.m
    inverse = 1 / radial_measure(r, m)

    def radial_div(component):
        return inverse * sp.Derivative(r**m * component, r)

    def laplace(f):
        """Laplacian in divergence form: (1/r^m) d(r^m du/dr)/dr (+ d2u/dz2)."""
        f = _scalar(f, "laplace")
        return sp.Add(radial_div(sp.Derivative(f, r)), *[sp.Derivative(f, (c, 2)) for c in others])

    def grad(f):
        """Gradient: (du/dr[, du/dz]) (no angular component by symmetry)."""
        f = _scalar(f, "grad")
        return sp.ImmutableMatrix([sp.Derivative(f, c) for c in coords])

    def div(v):
        """Divergence in divergence form: (1/r^m) d(r^m v_r)/dr (+ dv_z/dz)."""
        if not isinstance(v, sp.MatrixBase) or v.shape != (len(coords), 1):
            raise EquationParseError(
                f"div() takes a vector with {len(coords)} component{'s' if len(coords) > 1 else ''} "
                f"({', '.join(c.name for c in coords)}) in geometry {geometry.name!r} (grad(...) or vec(...))"
            )
        return sp.Add(radial_div(v[0]), *[sp.Derivative(v[i + 1], c) for i, c in enumerate(others)])

    return {**cartesian, "laplace": laplace, "grad": grad, "div": div}


def regular_centre(bcs, spec, fields: Sequence[str], axes: Sequence[str],
                   parse_value: Callable[[object, str], sp.Expr]) -> dict:
    """The boundary conditions with the symmetry condition at ``r = 0`` (see the module docstring).

    Args:
        bcs: the parsed :data:`~pdeforge.symbolic.boundary.BoundarySpec`.
        spec: the user's ``bcs`` argument (to tell a condition for all sides from one for ``r = 0``).
        fields: the field names.
        axes: the axis names (r first).
        parse_value: reads a condition's value (the system's safe parser).

    Returns:
        the spec with every field's low r side replaced by even reflection (zero flux).

    Raises:
        BoundaryConditionError: a condition given for the ``r = 0`` side that is not zero-flux.
    """
    from pdeforge.symbolic.boundary import _axis_spec, _condition, _pair, neumann

    symmetry = dataclasses.replace(neumann(0), reflect=1)

    per_field = spec if isinstance(spec, Mapping) and any(k in fields or k == "*" for k in spec) else None
    out = dict(bcs)
    for f in fields:
        fspec = spec if per_field is None else per_field.get(f, per_field.get("*"))
        where = f"bcs for field {f!r} on axis 'r'"
        low, high = _pair(_axis_spec(fspec, "r", axes, where), where)
        hi = bcs[(f, 0)][1]
        if hi.periodic:
            raise BoundaryConditionError(f"{where}: the radius cannot be periodic; give a condition at the outer radius")
        if low is not high:
            given = _condition(low, f"{where} (low side)", parse_value)
            if not (given.kind == "neumann" and given.value == 0):
                raise BoundaryConditionError(
                    f"{where} (low side): the domain starts at r = 0, where the solution is regular and no condition "
                    f"is needed (the face has zero area); got {given.describe()}. Give a condition for r = r_high only "
                    "(e.g. {'r': 'dirichlet'}) or 'neumann' at r = 0"
                )
        out[(f, 0)] = (symmetry, hi)
    return out


def strip_measure(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``(D, r^m)`` for ``expr = D / radial_measure(r, m)`` with ``D`` a derivative along r, else ``(expr, 1)``.

    A curvilinear divergence ``(1/r^m) d(r^m F)/dr`` thus reads as the derivative of the
    face-area flux ``r^m F``, and its physical flux is ``F`` (the derivative's inner
    expression divided by ``r^m``).
    """
    if not isinstance(expr, sp.Mul):
        return expr, sp.Integer(1)
    measures = [a for a in expr.args if isinstance(a, sp.Pow) and isinstance(a.base, radial_measure) and a.exp == -1]
    if len(measures) != 1:
        return expr, sp.Integer(1)
    rest = expr / measures[0]
    r, m = measures[0].base.args
    if isinstance(rest, sp.Derivative) and rest.variable_count[0][0] == r:
        return rest, r**m
    return expr, sp.Integer(1)


def face_measure(system, axis: int, side: int) -> sp.Expr:
    """What a boundary face's flux density is multiplied by before it is integrated over the face.

    1 on a box; on a curvilinear grid the face's share of the symmetric directions: ``2 pi R``
    (polar, cylindrical) or ``4 pi R^2`` (spherical) on the face ``r = R`` (0 at ``r = 0``), and
    ``2 pi r`` inside the integral over r on a face ``z = const`` of a cylinder.
    """
    geometry = getattr(system, "geometry", GEOMETRIES["cartesian"])
    if not geometry.curvilinear:
        return sp.Integer(1)
    factor = sp.Float(geometry.angular_factor())
    if axis == 0:
        return factor * sp.Float(system.domain[0][side]) ** geometry.m
    return factor * system.coords[0] ** geometry.m


def check_radial_orders(geometry: Geometry, orders: Mapping[tuple[str, int], int]) -> None:
    """Refuse equations that differentiate a field more than twice along r on a curvilinear grid.

    The wall pairs of fourth-order equations (:mod:`pdeforge.symbolic.walls`) close the ghost
    cells by reflection about a plane wall; about a curved wall ``r = R`` the reflected
    ``laplace(u)`` is not the reflection of ``laplace(u)`` (its ``u_r/r`` term), so neither the
    second condition nor mass conservation would hold. Derivatives along z are not limited.
    """
    if not geometry.curvilinear:
        return
    for (field, axis), order in orders.items():
        if axis == 0 and order > 2:
            raise SystemDefinitionError(
                f"equation of order {order} in r for field {field!r}: geometry {geometry.name!r} supports "
                "equations of at most second order in r (laplace(laplace(...)), d(u, r, 3) need the plane walls "
                "of a Cartesian grid)"
            )

"""The semi-discrete system: symbolic stencils per point class plus the sparsity pattern."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sympy as sp

from pdeforge.errors import SystemDefinitionError
from pdeforge.symbolic.boundary import BoundaryCondition
from pdeforge.symbolic.calculus import piecewise_diff
from pdeforge.symbolic.system import PDESystem
from pdeforge.discretize.closure import CLOSURE_POINTS, closure_width, ghost_closure, wall_layer
from pdeforge.discretize.finite_difference import FiniteDifference, frozen_fields
from pdeforge.discretize.stencil import StencilSymbols

SIDES = ("low", "high")


@dataclass
class SemiDiscrete:
    """A PDE system after spatial discretization, before code generation.

    The right-hand side of every field is one stencil expression valid in the interior; near
    non-periodic boundaries the stencil reads ghost cells whose values follow from the boundary
    conditions through linear closures (:mod:`pdeforge.discretize.closure`). Substituting the
    closures into the interior stencil gives the stencil of each boundary point class
    (:meth:`point_classes`).

    Attributes:
        system: the continuous system.
        order: accuracy order of the differences (2 or 4).
        symbols: stencil-symbol registry (symbol -> field index and offset).
        spacing: cell-width symbols ``h_x, h_y, h_z``.
        rhs: one stencil expression per field, in field order.
        ghost: number of ghost layers per axis (the stencil's reach).
        bcs: (field index, axis) -> (low, high) boundary conditions.
        closure_points: cells used by each closure polynomial.
        simplification: operation counts recorded by the simplifier, if it ran.
        scheme: the spatial scheme ("fd" or a finite-volume scheme name).
    """

    system: PDESystem
    order: int
    symbols: StencilSymbols
    spacing: tuple[sp.Symbol, ...]
    rhs: list[sp.Expr]
    ghost: tuple[int, ...]
    bcs: dict[tuple[int, int], tuple[BoundaryCondition, BoundaryCondition]]
    closure_points: int
    simplification: dict = field(default_factory=dict)
    scheme: str = "fd"

    @property
    def fields(self) -> list[str]:
        return self.system.fields

    @property
    def dim(self) -> int:
        return self.system.dim

    @property
    def coefficients(self) -> list[str]:
        """Coefficient fields, read as frozen rows ``len(fields) + j`` of the padded state."""
        return list(getattr(self.system, "coefficients", {}))

    @property
    def closure_width(self) -> int:
        """Cells each ghost fill reads per side (see :func:`~pdeforge.discretize.closure.closure_width`)."""
        return closure_width(self.bcs, self.ghost, self.closure_points)

    @property
    def param_symbols(self) -> list[sp.Symbol]:
        """Parameter symbols in the order kernels receive their values."""
        return [self.system.param_symbols[p] for p in sorted(self.system.params)]

    def periodic(self, field_index: int, axis: int) -> bool:
        return self.bcs[(field_index, axis)][0].periodic

    def stencil(self, field_index: int) -> list[tuple[int, tuple[int, ...]]]:
        """(field, offset) pairs read by the right-hand side of field ``field_index``."""
        return self.symbols.offsets_in(self.rhs[field_index])

    def jacobian_entries(self) -> list[tuple[int, int, tuple[int, ...], sp.Expr]]:
        """Nonzero partial derivatives of the interior stencils.

        Returns:
            ``(row field, column field, offset, d rhs_row / d column_field[offset])`` for every
            stencil symbol of an unknown each right-hand side depends on (coefficient fields
            are data, not unknowns: they have no column).
        """
        entries = []
        nf = len(self.fields)
        for f, expr in enumerate(self.rhs):
            for sym in sorted(expr.free_symbols & set(self.symbols.table), key=lambda s: self.symbols.table[s]):
                g, off = self.symbols.table[sym]
                if g >= nf:
                    continue
                entries.append((f, g, off, piecewise_diff(expr, sym)))
        return entries

    def count_ops(self) -> dict[str, int]:
        """SymPy operation count of each field's right-hand side."""
        return {f: int(sp.count_ops(e)) for f, e in zip(self.fields, self.rhs)}

    def point_classes(self) -> dict[tuple[str, ...], list[sp.Expr]]:
        """The symbolic stencil of every point class.

        A class is labelled per axis by ``"interior"``, ``"periodic"``, or ``"low+k"`` /
        ``"high-k"`` for the ``k``-th cell from that boundary (``k < ghost``). Ghost values are
        replaced by their closures, so each class's stencil reads only cells of the grid and
        the boundary value ``g_<field>_<axis>_<side>`` (a function of the face position and t; a
        wall closed by reflection also ``g2_<field>_<axis>_<side>``, its second datum).

        Returns:
            class label tuple -> one expression per field.
        """
        per_axis: list[list[tuple[str, int | None]]] = []
        for a in range(self.dim):
            if all(self.periodic(f, a) for f in range(len(self.fields))):
                per_axis.append([("periodic", None)])
            else:
                labels = [(f"low+{k}", k) for k in range(self.ghost[a])]
                labels.append(("interior", None))
                labels += [(f"high-{k}", k) for k in reversed(range(self.ghost[a]))]
                per_axis.append(labels)
        classes = {}
        for combo in itertools.product(*per_axis):
            label = tuple(c[0] for c in combo)
            classes[label] = [self._class_stencil(expr, combo) for expr in self.rhs]
        return classes

    def _class_stencil(self, expr: sp.Expr, combo) -> sp.Expr:
        sub = {}
        for sym in expr.free_symbols & set(self.symbols.table):
            sub[sym] = self._closed_value(*self.symbols.table[sym], combo)
        return expr.xreplace(sub)

    def _closed_value(self, g: int, off: tuple[int, ...], combo) -> sp.Expr:
        """Value read at ``off`` from a cell of class ``combo``, ghosts replaced by closures."""
        if g >= len(self.fields):  # a coefficient field: its ghost values are data
            return self.symbols.get(g, off)
        for a, (label, k) in enumerate(combo):
            if k is None or self.periodic(g, a):
                continue
            side = 0 if label.startswith("low") else 1
            depth = k + off[a] if side == 0 else k - off[a]  # cells from the face, inward
            if depth >= 0:
                continue
            layer = -depth
            bc = self.bcs[(g, a)][side]
            if bc.reflect:
                cells, w1, w2 = wall_layer(bc.reflect, layer, self.spacing[a], bc.extrapolate, bc.clamped)
                total = sp.Integer(0)
                for j, w in cells.items():
                    moved = list(off)
                    moved[a] = (j - k) if side == 0 else (k - j)
                    total += w * self._closed_value(g, tuple(moved), combo)
                name = f"{self.fields[g]}_{self.system.axes[a]}_{SIDES[side]}"
                if bc.value != 0:
                    total += w1 * sp.Symbol(f"g_{name}")
                if bc.second != 0:
                    total += w2 * sp.Symbol(f"g2_{name}")
                return total
            A, B = ghost_closure(bc.alpha, bc.beta, self.spacing[a], self.closure_points, layer)
            total = B[layer - 1] * sp.Symbol(f"g_{self.fields[g]}_{self.system.axes[a]}_{SIDES[side]}")
            for j, w in enumerate(A[layer - 1]):
                moved = list(off)
                moved[a] = (j - k) if side == 0 else (k - j)
                total += w * self._closed_value(g, tuple(moved), combo)
            return total
        return self.symbols.get(g, off)


def discretize(system: PDESystem, order: int = 2, scheme: str = "fd") -> SemiDiscrete:
    """Discretize ``system`` in space.

    Args:
        system: the PDE system.
        order: accuracy order of the finite differences, 2 (default) or 4.
        scheme: "fd" (default: flux-form finite differences) or a finite-volume scheme of
            :data:`pdeforge.discretize.finite_volume.SCHEMES` ("fv-upwind", ...), which
            upwinds the derivative-free fluxes of divergence terms with MUSCL
            reconstruction (order 2 only) and keeps finite differences for the rest.

    Returns:
        The :class:`SemiDiscrete` system.
    """
    from pdeforge.discretize.finite_volume import FiniteVolume, get_scheme, split_advective

    from pdeforge.symbolic.global_unknowns import has_coupling

    if has_coupling(system):
        raise SystemDefinitionError(
            f"system {system.name!r} has scalars or integral()/mean(): discretize its lifted system, "
            "pdeforge.symbolic.global_unknowns.lift(system, coupling_of(system)) (compile and solve do this)"
        )
    system = system.real_form()  # complex fields as their real and imaginary parts
    spec = get_scheme(scheme)
    if spec.finite_volume and order != 2:
        raise SystemDefinitionError(f"scheme {scheme!r} is second order: use order=2 (got {order})")
    symbols = StencilSymbols(frozen_fields(system), system.dim)
    spacing = tuple(sp.Symbol(f"h_{a}", positive=True) for a in system.axes)
    fd = FiniteDifference(system, order, symbols, spacing)
    if spec.finite_volume:
        fv = FiniteVolume(system, spec, symbols, spacing)
        rhs = []
        for i, f in enumerate(system.fields):
            fluxes, rest = split_advective(system, f)
            expr = fd.discretize(rest)
            for a, flux in enumerate(fluxes):
                if flux != 0:
                    expr += fv.divergence(i, a, flux)
            rhs.append(expr)
    else:
        rhs = [fd.discretize(system.rhs[f]) for f in system.fields]
    ghost = [0] * system.dim
    for expr in rhs:
        for _, off in symbols.offsets_in(expr):
            for a, o in enumerate(off):
                ghost[a] = max(ghost[a], abs(o))
    bcs = {(system.fields.index(fname), a): pair for (fname, a), pair in system.bcs.items()}
    return SemiDiscrete(
        system=system,
        order=order,
        symbols=symbols,
        spacing=spacing,
        rhs=rhs,
        ghost=tuple(max(g, 1) for g in ghost),
        bcs=bcs,
        closure_points=CLOSURE_POINTS[order],
        scheme=scheme,
    )

"""Padded state arrays and the ghost-cell fill that closes them.

Kernels work on arrays of shape ``(fields, n0 + 2*g0, n1 + 2*g1, ...)``: the cells plus ``g``
ghost layers per side. Before each right-hand-side evaluation the ghost layers are filled
axis by axis (so corners are filled from already-filled edges): periodic axes copy the
opposite cells, the others apply the linear closures of :mod:`pdeforge.discretize.closure`.
The same fill, written as a sparse matrix, maps cell values to padded values exactly; the
Jacobian assembler uses it. A Robin condition whose coefficients depend on t has closure
weights that depend on t: they are recomputed for the time of each fill (and the matrix is
that of the time asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pdeforge.errors import BoundaryConditionError, GridError
from pdeforge.discretize.closure import closure_width, ghost_weights, reflection_weights
from pdeforge.discretize.grid import UniformGrid

SIDES = ("low", "high")

#: (field index, axis, side) -> f(face coordinates, t, params) -> boundary value(s); a wall closed
#: by reflection has its second datum under (field index, axis, side, 2)
BoundaryValueFunctions = Mapping[tuple, Callable]


@dataclass
class _Closure:
    field: int
    axis: int
    side: int
    A: np.ndarray  # (layers, m)
    B: np.ndarray  # (layers,)
    value: Callable | None  # None: homogeneous
    time_dependent: bool
    cached: object = None
    #: t -> (A, B) where the condition's coefficients depend on t (else None: A, B are fixed)
    weights: Callable | None = None
    weights_t: float | None = None
    #: a reflected wall's second datum: its weights per layer and its function (None: zero)
    B2: np.ndarray | None = None
    value2: Callable | None = None
    time_dependent2: bool = False
    cached2: object = None


class GhostLayout:
    """Ghost layers of one discretized system on one grid.

    Args:
        nfields: number of fields.
        grid: the grid.
        ghost: ghost layers per axis.
        bcs: (field index, axis) -> (low, high) boundary conditions (canonical form).
        closure_points: cells used by each closure polynomial (reflections read as many cells as
            there are ghost layers; :attr:`width` is the widest).
        params: parameter name -> value (for Robin coefficients).
        t: the time symbol (Robin coefficients may depend on it).
        param_symbols: parameter name -> SymPy symbol.
        values: compiled boundary-value functions for every non-homogeneous side.
        time_dependent: keys of ``values`` whose value depends on t.
        param_vector: parameter values in the kernels' order (passed to ``values``).
        frozen: padded values of the coefficient fields, shape ``(coefficients, *padded)``
            (:mod:`pdeforge.discretize.coefficients`): rows after the fields of every padded
            array, written once by :meth:`new_padded` and never filled or updated.
    """

    def __init__(
        self,
        nfields: int,
        grid: UniformGrid,
        ghost: tuple[int, ...],
        bcs: Mapping,
        closure_points: int,
        params: Mapping[str, float],
        param_symbols: Mapping[str, object],
        values: BoundaryValueFunctions,
        time_dependent: set,
        param_vector: np.ndarray,
        frozen: np.ndarray | None = None,
        t=None,
    ):
        self.nfields = nfields
        self.grid = grid
        self.ghost = tuple(ghost)
        self.shape = tuple(n + 2 * g for n, g in zip(grid.shape, self.ghost))
        self.frozen = frozen if frozen is not None and len(frozen) else None
        nrows = nfields + (0 if self.frozen is None else len(self.frozen))
        self.padded_shape = (nrows, *self.shape)
        self.interior = tuple(slice(g, g + n) for n, g in zip(grid.shape, self.ghost))
        #: the cells of the unknowns in a padded array (not the coefficient rows)
        self.cells_index = (slice(0, nfields), *self.interior)
        self.param_vector = param_vector
        self.periodic: dict[tuple[int, int], bool] = {}
        self.closures: list[_Closure] = []
        self.width = closure_width(bcs, self.ghost, closure_points)
        subs = {param_symbols[p]: v for p, v in params.items()}
        self.padded_coords = tuple(grid.axis_coordinates(a, g) for a, g in enumerate(self.ghost))
        for (f, a), (low, high) in sorted(bcs.items()):
            n = grid.shape[a]
            if low.periodic:
                self.periodic[(f, a)] = True
                if n < self.ghost[a]:
                    raise GridError(f"grid: axis {grid.axes[a]!r} needs at least {self.ghost[a]} cells for this stencil")
                continue
            self.periodic[(f, a)] = False
            need = self.ghost[a] if low.reflect or high.reflect else closure_points
            if n < need:
                raise GridError(f"grid: axis {grid.axes[a]!r} needs at least {need} cells for the boundary closures")
            for side, bc in enumerate((low, high)):
                if bc.reflect:
                    A, B, B2 = reflection_weights(bc.reflect, self.ghost[a], grid.spacing[a], bc.extrapolate,
                                                   bc.clamped)
                    key, key2 = (f, a, side), (f, a, side, 2)
                    self.closures.append(_Closure(f, a, side, A, B, values.get(key), key in time_dependent,
                                                  B2=B2, value2=values.get(key2), time_dependent2=key2 in time_dependent))
                    continue
                where = f"bcs for field {f} on axis {grid.axes[a]!r} ({SIDES[side]})"
                weights = _weights_function(bc, subs, t, grid.spacing[a], closure_points, self.ghost[a], where)
                if weights is None:
                    A, B = _weights(float(bc.alpha.xreplace(subs)), float(bc.beta.xreplace(subs)),
                                    grid.spacing[a], closure_points, self.ghost[a], where)
                else:  # the pattern: every weight of the polynomial closure (values follow each fill)
                    A, B = np.ones((self.ghost[a], closure_points)), np.ones(self.ghost[a])
                key = (f, a, side)
                self.closures.append(
                    _Closure(f, a, side, A, B, values.get(key), key in time_dependent, weights=weights)
                )

    # numerical fill -----------------------------------------------------------------------
    def new_padded(self) -> np.ndarray:
        """A padded state array: unknowns zero, coefficient rows set."""
        out = np.zeros(self.padded_shape)
        if self.frozen is not None:
            out[self.nfields:] = self.frozen
        return out

    def pad(self, state: np.ndarray, out: np.ndarray | None = None, t: float = 0.0) -> np.ndarray:
        """Copy cell values ``state`` (fields, *shape) into a padded array and fill its ghosts."""
        if out is None:
            out = self.new_padded()
        out[self.cells_index] = state
        self.fill(out, t)
        return out

    def fill(self, U: np.ndarray, t: float) -> None:
        """Fill the ghost layers of the padded array ``U`` in place for time ``t``."""
        dim = self.grid.dim
        for a in range(dim):
            g, n = self.ghost[a], self.grid.shape[a]
            for f in range(self.nfields):
                if self.periodic[(f, a)]:
                    Uf = U[f]
                    lo_dst = axis_index(dim, a, slice(0, g))
                    lo_src = axis_index(dim, a, slice(n, n + g))
                    hi_dst = axis_index(dim, a, slice(n + g, n + 2 * g))
                    hi_src = axis_index(dim, a, slice(g, 2 * g))
                    Uf[lo_dst] = Uf[lo_src]
                    Uf[hi_dst] = Uf[hi_src]
            for c in self.closures:
                if c.axis == a:
                    self._apply(U, c, t)

    def _apply(self, U: np.ndarray, c: _Closure, t: float) -> None:
        a = c.axis
        apply_closure(U[c.field], self.at(c, t), self.ghost[a], self.grid.shape[a], self._boundary_value(c, t),
                      self._boundary_value(c, t, second=True))

    @property
    def time_dependent_weights(self) -> bool:
        """Whether some closure's weights depend on t (Robin coefficients of t)."""
        return any(c.weights is not None for c in self.closures)

    def at(self, c: _Closure, t: float) -> _Closure:
        """Closure ``c`` with its weights ``A``, ``B`` for time ``t`` (fixed weights: as is)."""
        if c.weights is not None and c.weights_t != t:
            c.A, c.B = c.weights(t)
            c.weights_t = t
        return c

    def _boundary_value(self, c: _Closure, t: float, second: bool = False):
        """Closure ``c``'s boundary value (``second``: a reflected wall's second datum) on its
        padded face at time ``t``; None where it is zero."""
        fn, timed, slot = (c.value2, c.time_dependent2, "cached2") if second else (c.value, c.time_dependent, "cached")
        if fn is None:
            return None
        # a value without t may still read parameters that change between calls (scalars)
        stamp = self.param_vector.tobytes() if self.param_vector is not None else b""
        cached = getattr(c, slot)
        if not timed and cached is not None and cached[0] == stamp:
            return cached[1]
        value = self.face_values(fn, c, t)
        if not timed:
            setattr(c, slot, (stamp, value))
        return value

    # the same fill as a matrix ---------------------------------------------------------------
    def embedding(self, t: float | None = None):
        """Sparse matrix P (CSR) with ``padded.ravel() = P @ cells.ravel() + (boundary-value terms)``.

        Args:
            t: the time of the closure weights that depend on t; None: their pattern (every
                weight of such a closure a one), which contains the pattern at every time.
        """
        P, _ = self._embeddings(t, values=False)
        return P

    def value_embedding(self, t: float | None = None):
        """The boundary-value terms of :meth:`embedding` as a matrix: ``padded.ravel() = P @
        cells.ravel() + Q @ gvec`` with ``gvec`` the boundary values of every closure that has
        them, each over its side's padded face (``face_shape``, C order), one after the other.

        Returns:
            ``(Q, where)``: Q as CSR, and (field, axis, side) -> (first column, face shape), and
            (field, axis, side, 2) for a reflected wall's second datum.
        """
        return self._embeddings(t, values=True)

    def _embeddings(self, t: float | None, values: bool):
        import scipy.sparse as sps

        dim = self.grid.dim
        npad = int(np.prod(self.padded_shape))
        ncell = self.nfields * self.grid.size
        pad_index = np.arange(npad).reshape(self.padded_shape)
        interior_pad = pad_index[self.cells_index].ravel()
        P = sps.csr_matrix((np.ones(ncell), (interior_pad, np.arange(ncell))), shape=(npad, ncell))
        where, nv = {}, 0
        for c in self.closures:
            face = tuple(m for b, m in enumerate(self.shape) if b != c.axis)
            for key, fn in (((c.field, c.axis, c.side), c.value), ((c.field, c.axis, c.side, 2), c.value2)):
                if fn is not None:
                    where[key] = (nv, face)
                    nv += int(np.prod(face))
        Q = sps.csr_matrix((npad, nv))
        for a in range(dim):
            rows, cols, vals = [], [], []
            qrows, qcols, qvals = [], [], []
            replaced = []
            g, n = self.ghost[a], self.grid.shape[a]
            for f in range(self.nfields):
                idx = pad_index[f]
                if self.periodic[(f, a)]:
                    for dst, src in ((slice(0, g), slice(n, n + g)), (slice(n + g, n + 2 * g), slice(g, 2 * g))):
                        d = idx[axis_index(dim, a, dst)].ravel()
                        s = idx[axis_index(dim, a, src)].ravel()
                        rows.append(d), cols.append(s), vals.append(np.ones(d.size)), replaced.append(d)
            for c in self.closures:
                if c.axis != a:
                    continue
                key = (c.field, c.axis, c.side)
                if c.weights is not None:
                    c = self.at(c, t) if t is not None else _Closure(
                        c.field, c.axis, c.side, np.ones_like(c.A), np.ones_like(c.B), c.value, False)
                idx = pad_index[c.field]
                for layer in range(1, g + 1):
                    dst = g - layer if c.side == 0 else g + n - 1 + layer
                    d = idx[axis_index(dim, a, dst)].ravel()
                    replaced.append(d)
                    for j in range(c.A.shape[1]):
                        src = g + j if c.side == 0 else g + n - 1 - j
                        s = idx[axis_index(dim, a, src)].ravel()
                        rows.append(d), cols.append(s), vals.append(np.full(d.size, c.A[layer - 1, j]))
                    if values and key in where:
                        qrows.append(d), qcols.append(where[key][0] + np.arange(d.size))
                        qvals.append(np.full(d.size, c.B[layer - 1]))
                    if values and (*key, 2) in where:
                        qrows.append(d), qcols.append(where[(*key, 2)][0] + np.arange(d.size))
                        qvals.append(np.full(d.size, c.B2[layer - 1]))
            if not rows:
                continue
            keep = np.ones(npad)
            keep[np.concatenate(replaced)] = 0.0
            F = sps.diags(keep, format="csr") + sps.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(npad, npad)
            )
            if values:
                Q = F @ Q
                if qrows:
                    Q = Q + sps.csr_matrix((np.concatenate(qvals), (np.concatenate(qrows), np.concatenate(qcols))),
                                           shape=(npad, nv))
                Q = Q.tocsr()
            else:
                P = (F @ P).tocsr()
        if values:
            return Q, where
        if t is None or not self.time_dependent_weights:
            P.eliminate_zeros()
        return P, where

    def face_values(self, fn: Callable, c: _Closure, t: float) -> np.ndarray:
        """``fn(*face coordinates, t, param_vector)`` on closure ``c``'s padded face (the
        points its boundary values are taken at), as an array of the face's shape."""
        a = c.axis
        face = self.grid.domain[a][c.side]
        coords = []
        for b in range(self.grid.dim):
            if b == a:
                coords.append(np.float64(face))
            else:
                shape = [1] * (self.grid.dim - 1)
                shape[b if b < a else b - 1] = -1
                coords.append(self.padded_coords[b].reshape(shape))
        face_shape = tuple(s for b, s in enumerate(self.shape) if b != a)
        return np.broadcast_to(np.asarray(fn(*coords, t, self.param_vector), dtype=float), face_shape)

    def padded_index(self) -> np.ndarray:
        """Flat padded index of every cell, shape (fields, *grid.shape)."""
        pad_index = np.arange(int(np.prod(self.padded_shape))).reshape(self.padded_shape)
        return pad_index[self.cells_index]


def _weights(alpha: float, beta: float, h: float, m: int, layers: int, where: str):
    try:
        return ghost_weights(alpha, beta, h, m, layers)
    except ZeroDivisionError:
        raise BoundaryConditionError(
            f"{where}: robin({alpha:g}*u + {beta:g}*du/dn) does not determine the boundary values on this grid "
            f"(cell width {h:g})"
        ) from None


def _weights_function(bc, subs: Mapping, t, h: float, m: int, layers: int, where: str) -> Callable | None:
    """t -> closure weights (A, B) of a condition whose coefficients depend on ``t``; None if they do not."""
    alpha, beta = bc.alpha.xreplace(subs), bc.beta.xreplace(subs)
    if t is None or t not in (alpha.free_symbols | beta.free_symbols):
        return None
    import sympy as sp

    coefficients = sp.lambdify(t, (alpha, beta), modules="math")

    def weights(time: float):
        a, b = coefficients(float(time))
        return _weights(float(a), float(b), h, m, layers, f"{where} at t = {float(time):g}")

    return weights


def apply_closure(Uf, c: _Closure, g: int, n: int, value=None, value2=None) -> None:
    """Fill the ``g`` ghost layers of closure ``c`` in one field's padded array ``Uf`` (NumPy
    array or torch tensor; ``n`` interior cells along the closure's axis): each ghost value is
    ``sum_j A[layer, j] * (j-th interior cell from the boundary) + B[layer] * value`` (plus
    ``B2[layer] * value2``, a reflected wall's second datum)."""
    dim, a = Uf.ndim, c.axis
    for layer in range(1, g + 1):
        if c.side == 0:
            dst = g - layer
            src = [g + j for j in range(c.A.shape[1])]
        else:
            dst = g + n - 1 + layer
            src = [g + n - 1 - j for j in range(c.A.shape[1])]
        terms = [j for j in range(len(src)) if c.A[layer - 1, j] != 0] or [0]  # reflections: one term
        acc = float(c.A[layer - 1, terms[0]]) * Uf[axis_index(dim, a, src[terms[0]])]
        for j in terms[1:]:
            acc = acc + float(c.A[layer - 1, j]) * Uf[axis_index(dim, a, src[j])]
        if value is not None:
            acc = acc + float(c.B[layer - 1]) * value
        if value2 is not None:
            acc = acc + float(c.B2[layer - 1]) * value2
        Uf[axis_index(dim, a, dst)] = acc


def axis_index(dim: int, axis: int, sel) -> tuple:
    """Index selecting ``sel`` along ``axis`` and everything along the other axes."""
    return tuple(sel if b == axis else slice(None) for b in range(dim))

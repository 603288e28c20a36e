"""Sparsity pattern and assembly of the exact Jacobian.

The compiled Jacobian kernel evaluates, at every cell, the partial derivatives of the interior
stencil with respect to each padded value it reads (``J_pad``). Because the ghost closures are
linear, the Jacobian with respect to the cell values is ``J = J_pad @ P`` with ``P`` the
constant embedding of :meth:`GhostLayout.embedding`. ``J.data`` is therefore a fixed linear map
of the kernel's values: this module builds that map once (pattern and weights), after which
each Jacobian costs one kernel call and one sparse mat-vec. Where closure weights depend on t
(Robin coefficients of t) the pattern is that of every time and the map's weights are those of
``P(t)``, refreshed when the time changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sps

from pdeforge.discretize.padding import GhostLayout


class JacobianAssembler:
    """Maps stencil-derivative values to the CSR Jacobian of the cell values.

    Args:
        layout: ghost layout (grid, padding, closures).
        entries: ``(row field, column field, offset)`` of each stencil derivative, in the order
            the Jacobian kernel writes them.
    """

    def __init__(self, layout: GhostLayout, entries: Sequence[tuple[int, int, tuple[int, ...]]]):
        self.layout = layout
        grid = layout.grid
        ncell = grid.size
        nunk = layout.nfields * ncell
        self.shape = (nunk, nunk)
        self.n_entries = len(entries)
        pad_index = np.arange(int(np.prod(layout.padded_shape))).reshape(layout.padded_shape)
        cell = np.arange(ncell)
        rows, cols = [], []
        for f, g, off in entries:
            rows.append(f * ncell + cell)
            shifted = tuple(slice(gh + o, gh + o + n) for gh, o, n in zip(layout.ghost, off, grid.shape))
            cols.append(pad_index[(g, *shifted)].ravel())
        if entries:
            r = np.concatenate(rows)
            k = np.concatenate(cols)
        else:
            r = np.zeros(0, dtype=np.int64)
            k = np.zeros(0, dtype=np.int64)
        e = np.arange(r.size)
        self._rows, self._cols = r, k
        P = layout.embedding().tocsr()
        P.sort_indices()
        # expand every J_pad entry (r, k) through row k of P
        counts = np.diff(P.indptr)[k]
        src = np.repeat(e, counts)
        starts = np.repeat(P.indptr[k], counts)
        within = np.arange(src.size) - np.repeat(np.cumsum(counts) - counts, counts)
        pos = starts + within
        target_rows = r[src]
        target_cols = P.indices[pos]
        keys = target_rows.astype(np.int64) * nunk + target_cols
        unique, inverse = np.unique(keys, return_inverse=True)
        self.indices = (unique % nunk).astype(np.int32)
        row_of = unique // nunk
        self.indptr = np.searchsorted(row_of, np.arange(nunk + 1)).astype(np.int32)
        slots = sps.csr_matrix((np.arange(1, pos.size + 1, dtype=float), (inverse, src)), shape=(unique.size, r.size))
        #: position in P.data of each weight of ``map.data``
        self._slots = pos[slots.data.astype(np.int64) - 1]
        self.map = sps.csr_matrix((P.data[self._slots], slots.indices, slots.indptr), shape=slots.shape)
        self._timed = layout.time_dependent_weights
        self._P_keys = (np.repeat(np.arange(P.shape[0], dtype=np.int64), np.diff(P.indptr)) * P.shape[1]
                        + P.indices) if self._timed else None
        self._map_t: float | None = None

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def pattern(self) -> sps.csr_matrix:
        """The sparsity pattern as a CSR matrix of ones."""
        return sps.csr_matrix((np.ones(self.nnz), self.indices, self.indptr), shape=self.shape)

    def at(self, t: float) -> None:
        """Take the closure weights of time ``t`` into the map (where they depend on t)."""
        if not self._timed or self._map_t == t:
            return
        Pt = self.layout.embedding(t).tocsr()
        Pt.sort_indices()
        keys = np.repeat(np.arange(Pt.shape[0], dtype=np.int64), np.diff(Pt.indptr)) * Pt.shape[1] + Pt.indices
        at = np.searchsorted(keys, self._P_keys).clip(0, max(keys.size - 1, 0))
        found = keys[at] == self._P_keys if keys.size else np.zeros(self._P_keys.size, bool)
        data = np.where(found, Pt.data[at] if keys.size else 0.0, 0.0)
        self.map.data[:] = data[self._slots]
        self._map_t = t

    def assemble(self, values: np.ndarray, t: float | None = None) -> sps.csr_matrix:
        """CSR Jacobian from the kernel's values, shape (entries, *grid.shape) or flat, with the
        closure weights of time ``t`` (needed where they depend on t)."""
        if self._timed:
            if t is None:
                raise ValueError("assemble: this layout's closure weights depend on t; give t")
            self.at(float(t))
        data = self.map @ np.ascontiguousarray(values).reshape(-1)
        return sps.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def padded(self, values: np.ndarray) -> sps.csr_matrix:
        """The Jacobian with respect to the padded values (cells and ghosts, before the closures
        are applied), CSR of shape (unknowns, padded size), from the kernel's values."""
        npad = int(np.prod(self.layout.padded_shape))
        return sps.csr_matrix((np.ascontiguousarray(values, dtype=float).reshape(-1), (self._rows, self._cols)),
                              shape=(self.shape[0], npad))

    def boundary(self, values: np.ndarray, t: float | None = None):
        """Derivatives of the right-hand side with respect to the boundary values.

        Returns:
            ``(JB, where)``: ``JB`` (CSR, unknowns x boundary values) and the columns of each
            side, as :meth:`~pdeforge.discretize.padding.GhostLayout.value_embedding`.
        """
        Q, where = self.layout.value_embedding(t)
        return (self.padded(values) @ Q).tocsr(), where

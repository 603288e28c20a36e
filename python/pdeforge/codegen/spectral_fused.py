"""Fused pointwise passes over spectral arrays (numpy target): Numba loops, one pass each.

A spectral right-hand side ends in a linear combination of transforms, ``R_f = sum_c
A_fc X_c + S_f`` with the Leray projection and the 2/3 rule folded into the multipliers
``A`` at bind time (:func:`combination`); time steppers end each stage in a few products and
sums of the same kind. In NumPy each product or sum is a pass over memory with a temporary;
here each is one loop (``numba.njit``, compiled once and cached on disk), so the work left
besides the FFTs is a few passes per stage.

All kernels take C-contiguous arrays flattened to ``(batch, n, modes)`` or ``(modes,)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


#: what a fused combination does with its value ``N`` at each mode (see :func:`kernels`)
EPILOGUES = {"plain": 0, "etd_ab": 1, "etd_c": 2, "etd_final": 3, "cn": 4}


@lru_cache(maxsize=None)
def kernels():
    """The compiled kernels (Numba is imported on first use)."""
    import numba

    @numba.njit(cache=True)
    def combine(a, xs, s, offsets, lo, hi, out, kind, w, cf, c0):
        """``N[b, f, m] = s[f, m] + sum_c a[f, c, m] xs[c][b, m]`` and a stage update, one pass.

        ``a`` and ``s`` are compressed to their support: on row ``r`` (all axes but the last
        flattened) the modes ``lo[r] <= j < hi[r]``, stored from ``offsets[r]``; elsewhere ``N = 0``.
        ``kind`` (:data:`EPILOGUES`), with ``w`` four state arrays like ``out`` and ``cf`` four
        coefficient arrays ``(F, modes)``:

        * 0: ``out = N``;
        * 1 (ETDRK4 a, b): ``out = N``, ``w0 = cf0 w1 + cf1 N``;
        * 2 (ETDRK4 c): ``out = N``, ``w0 = cf0 w0 + cf1 (2 N - w1)``;
        * 3 (ETDRK4 end): ``out = cf0 w0 + cf1 w1 + 2 cf2 (w2 + w3) + cf3 N``;
        * 4 (Crank-Nicolson RK stage): ``w0 = c0 w0 + N`` (``N`` alone for ``c0 = 0``), then
          ``out = cf0 w1 + cf1 w0``.

        ``out`` and ``w0`` may not be an input of the pass (``xs``): the fields are done one
        after the other, so another field's input at the same mode would be read after it
        was written.
        """
        nb, nf, nm = out.shape
        rows = lo.shape[0]
        ncol = nm // rows
        nc = a.shape[1]
        v = np.zeros(ncol, dtype=out.dtype)  # N on one row
        for b in range(nb):
            for f in range(nf):
                for r in range(rows):
                    m0, first, stop = r * ncol, lo[r], hi[r]
                    i0 = offsets[r] - first
                    v[:] = 0.0
                    for j in range(first, stop):
                        v[j] = s[f, i0 + j]
                    for c in range(nc):  # one input per sweep: no tuple indexing in the inner loop
                        x = xs[c]
                        for j in range(first, stop):
                            v[j] += a[f, c, i0 + j] * x[b, m0 + j]
                    o = out[b, f, m0:m0 + ncol]
                    if kind == 0:
                        o[:] = v
                        continue
                    w0, w1, w2, w3 = (w[0][b, f, m0:m0 + ncol], w[1][b, f, m0:m0 + ncol],
                                      w[2][b, f, m0:m0 + ncol], w[3][b, f, m0:m0 + ncol])
                    k0, k1, k2, k3 = (cf[0][f, m0:m0 + ncol], cf[1][f, m0:m0 + ncol], cf[2][f, m0:m0 + ncol],
                                      cf[3][f, m0:m0 + ncol])
                    if kind == 1:
                        for j in range(ncol):
                            o[j] = v[j]
                            w0[j] = k0[j] * w1[j] + k1[j] * v[j]
                    elif kind == 2:
                        for j in range(ncol):
                            o[j] = v[j]
                            w0[j] = k0[j] * w0[j] + k1[j] * (2.0 * v[j] - w1[j])
                    elif kind == 3:
                        for j in range(ncol):
                            o[j] = k0[j] * w0[j] + k1[j] * w1[j] + 2.0 * k2[j] * (w2[j] + w3[j]) + k3[j] * v[j]
                    else:
                        for j in range(ncol):
                            h = v[j] if c0 == 0.0 else c0 * w0[j] + v[j]
                            w0[j] = h
                            o[j] = k0[j] * w1[j] + k1[j] * h

    @numba.njit(cache=True)
    def if_stage(out, e, y, h, k):  # out = e (y + h k), h a number
        for m in range(out.shape[0]):
            out[m] = e[m] * (y[m] + h * k[m])

    @numba.njit(cache=True)
    def axpy_e(acc, h, e, k):  # acc += h e k
        for m in range(acc.shape[0]):
            acc[m] += h * e[m] * k[m]

    return {"combine": combine, "if_stage": if_stage, "axpy_e": axpy_e}


class Combination:
    """``R_f = sum_c A_fc X_c + S_f`` for every field ``f`` (transforms ``X``, any batch axes).

    The multipliers are stored on their support only (per row of the transform, all axes but
    the last flattened, the range of last-axis modes where some multiplier or source is not
    zero): under the 2/3 rule that is 4/9 of the modes in 2-D, and the pass reads that much.

    Args:
        A: multipliers ``(F, C, *kshape)`` complex (projection and 2/3 rule folded in).
        S: constant terms ``(F, *kshape)`` complex.
    """

    def __init__(self, A: np.ndarray, S: np.ndarray):
        self.F, self.C = A.shape[0], A.shape[1]
        self.kshape = A.shape[2:]
        modes = int(np.prod(self.kshape))
        ncol = self.kshape[-1] if self.kshape else 1
        rows = modes // ncol
        full_a = A.reshape(self.F, self.C, rows, ncol)
        full_s = S.reshape(self.F, rows, ncol)
        nonzero = (full_a != 0).any(axis=(0, 1)) | (full_s != 0).any(axis=0)  # (rows, ncol)
        any_row = nonzero.any(axis=1)
        lo = np.where(any_row, np.argmax(nonzero, axis=1), 0)
        hi = np.where(any_row, ncol - np.argmax(nonzero[:, ::-1], axis=1), 0)
        self.lo, self.hi = lo.astype(np.int64), hi.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.hi - self.lo)[:-1]]).astype(np.int64)
        keep = (np.arange(ncol)[None, :] >= lo[:, None]) & (np.arange(ncol)[None, :] < hi[:, None])
        self.A = np.ascontiguousarray(full_a[:, :, keep])  # (F, C, support), row by row
        self.S = np.ascontiguousarray(full_s[:, keep])
        self.modes = modes
        self._typed: dict = {}

    @property
    def support(self) -> float:
        """Fraction of the modes where the combination can be non-zero."""
        return float(self.A.shape[-1]) / max(1, self.modes)

    def _arrays(self, dtype):
        found = self._typed.get(dtype)
        if found is None:
            found = self._typed[dtype] = (self.A.astype(dtype, copy=False), self.S.astype(dtype, copy=False))
        return found

    def __call__(self, xs: tuple, out: np.ndarray | None = None, like: np.ndarray | None = None,
                 then: tuple | None = None) -> np.ndarray:
        """``xs``: C transforms ``(..., *kshape)``; -> ``(..., F, *kshape)`` (into ``out`` if given).

        ``like``: a transform whose batch axes and precision the result takes (needed when
        ``xs`` is empty). ``then``: ``(epilogue, states, coefficients, number)``, a stage update
        done in the same pass (:data:`EPILOGUES`; ``states``: arrays shaped like the result,
        ``coefficients``: ``(F, *kshape)`` arrays, all C-contiguous); ``out`` is then required.
        """
        ref = xs[0] if xs else like
        batch = ref.shape[: ref.ndim - len(self.kshape)]
        dtype = np.result_type(ref.dtype, np.complex64)
        A, S = self._arrays(dtype)
        if out is None or not out.flags.c_contiguous or out.dtype != dtype:
            if then is not None:
                raise ValueError("a fused stage update needs a C-contiguous out array of the state's precision")
            target = np.empty((*batch, self.F, *self.kshape), dtype=dtype)
        else:
            target = out
        nb = int(np.prod(batch)) if batch else 1
        flat = target.reshape(nb, self.F, self.modes)
        full = (*batch, *self.kshape)
        ins = tuple(_flat(x, full, dtype).reshape(nb, self.modes) for x in xs) or (flat[:, 0],)
        if then is None:
            kind, w, cf, c0 = 0, (flat,) * 4, (_NO_COEFFICIENTS,) * 4, 0.0
        else:
            name, states, coefficients, c0 = then
            kind = EPILOGUES[name]
            if not all(x.flags.c_contiguous and x.dtype == dtype for x in states):
                raise ValueError("the states of a fused stage update must be C-contiguous arrays of the state's precision")
            w = tuple(x.reshape(nb, self.F, self.modes) for x in states)
            w = w + (flat,) * (4 - len(w))
            cf = tuple(c.reshape(self.F, self.modes) for c in coefficients)
            cf = cf + (cf[0],) * (4 - len(cf))
        kernels()["combine"](A, ins, S, self.offsets, self.lo, self.hi, flat, kind, w, cf, float(c0))
        if out is not None and target is not out:
            out[...] = target
            return out
        return target


#: the coefficient arrays of a pass without a stage update (never read)
_NO_COEFFICIENTS = np.zeros((1, 0))


def _flat(x: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """``x`` as a writable C-contiguous array of ``shape`` (one Numba signature for every input)."""
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()


def combination(terms: list[list[tuple[int, object]]], n_sources: int, sources: list, velocity: tuple[int, ...],
                k: tuple, kinv2, kshape: tuple[int, ...]) -> Combination:
    """Fold the terms of every field and the Leray projection into one :class:`Combination`.

    Args:
        terms: per field, ``(source index, multiplier)`` pairs (multipliers broadcastable to
            ``kshape``; numbers allowed).
        n_sources: number of transforms ``C`` the combination reads.
        sources: per field, a constant transform (or 0).
        velocity: indices of the projected fields (axis order).
        k, kinv2: odd-order wavenumbers per axis and ``1/|k|^2`` (the projection's).
        kshape: shape of one transform.
    """
    F = len(terms)
    A = np.zeros((F, n_sources, *kshape), dtype=complex)
    S = np.zeros((F, *kshape), dtype=complex)
    for f, pairs in enumerate(terms):
        for c, m in pairs:
            A[f, c] += np.broadcast_to(np.asarray(m), kshape)
        if not (isinstance(sources[f], (int, float)) and sources[f] == 0):
            S[f] += np.broadcast_to(np.asarray(sources[f]), kshape)
    if velocity:
        div_a = sum(np.asarray(k[a]) * A[i] for a, i in enumerate(velocity)) * np.asarray(kinv2)
        div_s = sum(np.asarray(k[a]) * S[i] for a, i in enumerate(velocity)) * np.asarray(kinv2)
        for a, i in enumerate(velocity):
            A[i] = A[i] - np.asarray(k[a]) * div_a
            S[i] = S[i] - np.asarray(k[a]) * div_s
    return Combination(A, S)

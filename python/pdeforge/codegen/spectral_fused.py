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


@lru_cache(maxsize=None)
def kernels():
    """The compiled kernels (Numba is imported on first use)."""
    import numba

    @numba.njit(cache=True)
    def combine(a, xs, s, out):  # out[b, f, m] = s[f, m] + sum_c a[f, c, m] xs[c][b, m]
        nb, nf, nm = out.shape
        for b in range(nb):
            for f in range(nf):
                for m in range(nm):
                    out[b, f, m] = s[f, m]
            for c in range(len(xs)):
                x = xs[c]
                for f in range(nf):
                    for m in range(nm):
                        out[b, f, m] += a[f, c, m] * x[b, m]

    @numba.njit(cache=True)
    def axby(out, a, x, b, y):  # out = a x + b y (a, b arrays)
        for m in range(out.shape[0]):
            out[m] = a[m] * x[m] + b[m] * y[m]

    @numba.njit(cache=True)
    def etd_c(out, e2, a, q, nb, nu):  # out = e2 a + q (2 nb - nu)
        for m in range(out.shape[0]):
            out[m] = e2[m] * a[m] + q[m] * (2.0 * nb[m] - nu[m])

    @numba.njit(cache=True)
    def etd_final(out, e, y, f1, nu, f2, na, nb, f3, nc):  # out = e y + f1 nu + 2 f2 (na + nb) + f3 nc
        for m in range(out.shape[0]):
            out[m] = e[m] * y[m] + f1[m] * nu[m] + 2.0 * f2[m] * (na[m] + nb[m]) + f3[m] * nc[m]

    @numba.njit(cache=True)
    def if_stage(out, e, y, h, k):  # out = e (y + h k), h a number
        for m in range(out.shape[0]):
            out[m] = e[m] * (y[m] + h * k[m])

    @numba.njit(cache=True)
    def axpy_e(acc, h, e, k):  # acc += h e k
        for m in range(acc.shape[0]):
            acc[m] += h * e[m] * k[m]

    return {"combine": combine, "axby": axby, "etd_c": etd_c, "etd_final": etd_final, "if_stage": if_stage,
            "axpy_e": axpy_e}


class Combination:
    """``R_f = sum_c A_fc X_c + S_f`` for every field ``f`` (transforms ``X``, any batch axes).

    Args:
        A: multipliers ``(F, C, *kshape)`` complex (projection and 2/3 rule folded in).
        S: constant terms ``(F, *kshape)`` complex.
    """

    def __init__(self, A: np.ndarray, S: np.ndarray):
        self.F, self.C = A.shape[0], A.shape[1]
        self.kshape = A.shape[2:]
        modes = int(np.prod(self.kshape))
        self.A = np.ascontiguousarray(A.reshape(self.F, self.C, modes))
        self.S = np.ascontiguousarray(S.reshape(self.F, modes))
        self.modes = modes
        self._typed: dict = {}

    def _arrays(self, dtype):
        found = self._typed.get(dtype)
        if found is None:
            found = self._typed[dtype] = (self.A.astype(dtype, copy=False), self.S.astype(dtype, copy=False))
        return found

    def __call__(self, xs: tuple, out: np.ndarray | None = None, like: np.ndarray | None = None) -> np.ndarray:
        """``xs``: C transforms ``(..., *kshape)``; -> ``(..., F, *kshape)`` (into ``out`` if given).

        ``like``: a transform whose batch axes and precision the result takes (needed when
        ``xs`` is empty).
        """
        ref = xs[0] if xs else like
        batch = ref.shape[: ref.ndim - len(self.kshape)]
        dtype = np.result_type(ref.dtype, np.complex64)
        A, S = self._arrays(dtype)
        if out is None or not out.flags.c_contiguous or out.dtype != dtype:
            target = np.empty((*batch, self.F, *self.kshape), dtype=dtype)
        else:
            target = out
        nb = int(np.prod(batch)) if batch else 1
        flat = target.reshape(nb, self.F, self.modes)
        if xs:
            full = (*batch, *self.kshape)
            ins = tuple(_flat(x, full, dtype).reshape(nb, self.modes) for x in xs)
            kernels()["combine"](A, ins, S, flat)
        else:
            flat[...] = S[None]
        if out is not None and target is not out:
            out[...] = target
            return out
        return target


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

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
    def combine(a, xs, s, idx, out, kind, w, cf, c0, on_support):
        """``N[b, f, m] = s[f, m] + sum_c a[f, c, m] xs[c][b, m]`` and a stage update.

        ``a`` and ``s`` are compressed to their support, the modes ``idx`` (flat indices,
        increasing); elsewhere ``N = 0``. ``N`` goes into ``out`` first (one sweep per input,
        no tuple indexing per mode), then ``kind`` (:data:`EPILOGUES`), with ``w`` four state
        arrays like ``out`` and ``cf`` four coefficient arrays ``(F, modes)``, updates in place:

        * 0: ``out = N``;
        * 1 (ETDRK4 a, b): ``out = N``, ``w0 = cf0 w1 + cf1 N``;
        * 2 (ETDRK4 c): ``out = N``, ``w0 = cf0 w0 + cf1 (2 N - w1)``;
        * 3 (ETDRK4 end): ``out = cf0 w0 + cf1 w1 + 2 cf2 (w2 + w3) + cf3 N``;
        * 4 (Crank-Nicolson RK stage): ``w0 = c0 w0 + N`` (``N`` alone for ``c0 = 0``), then
          ``out = cf0 w1 + cf1 w0``.

        ``out`` and ``w0`` may not be an input of the pass (``xs``). With ``on_support`` only the
        support is visited: every array given is zero elsewhere and stays so (a state in the
        span of the support, which the stage updates keep).
        """
        nb, nf, nm = out.shape
        nc = a.shape[1]
        ns = idx.shape[0]
        count = ns if on_support else nm
        for b in range(nb):
            for f in range(nf):
                o = out[b, f]
                if not on_support:
                    o[:] = 0.0
                sf = s[f]
                for i in range(ns):
                    o[idx[i]] = sf[i]
                for c in range(nc):
                    x = xs[c][b]
                    ac = a[f, c]
                    for i in range(ns):
                        m = idx[i]
                        o[m] += ac[i] * x[m]
                if kind == 0:
                    continue
                w0, w1, w2, w3 = w[0][b, f], w[1][b, f], w[2][b, f], w[3][b, f]
                k0, k1, k2, k3 = cf[0][f], cf[1][f], cf[2][f], cf[3][f]
                if kind == 1:
                    for i in range(count):
                        m = idx[i] if on_support else i
                        w0[m] = k0[m] * w1[m] + k1[m] * o[m]
                elif kind == 2:
                    for i in range(count):
                        m = idx[i] if on_support else i
                        w0[m] = k0[m] * w0[m] + k1[m] * (2.0 * o[m] - w1[m])
                elif kind == 3:
                    for i in range(count):
                        m = idx[i] if on_support else i
                        o[m] = k0[m] * w0[m] + k1[m] * w1[m] + 2.0 * k2[m] * (w2[m] + w3[m]) + k3[m] * o[m]
                elif c0 == 0.0:
                    for i in range(count):
                        m = idx[i] if on_support else i
                        w0[m] = o[m]
                        o[m] = k0[m] * w1[m] + k1[m] * o[m]
                else:
                    for i in range(count):
                        m = idx[i] if on_support else i
                        h = c0 * w0[m] + o[m]
                        w0[m] = h
                        o[m] = k0[m] * w1[m] + k1[m] * h

    @numba.njit(cache=True)
    def if_stage(out, e, y, h, k):  # out = e (y + h k), h a number
        for m in range(out.shape[0]):
            out[m] = e[m] * (y[m] + h * k[m])

    @numba.njit(cache=True)
    def axpy_e(acc, h, e, k):  # acc += h e k
        for m in range(acc.shape[0]):
            acc[m] += h * e[m] * k[m]

    @numba.njit(cache=True)
    def etd_stage(out, e, y, q, n):  # out = e y + q n
        for m in range(out.shape[0]):
            out[m] = e[m] * y[m] + q[m] * n[m]

    @numba.njit(cache=True)
    def etd_sum(out, e, y, f1, nu, f2, na, nb, f3, nc):  # the ETDRK4 step's end
        for m in range(out.shape[0]):
            out[m] = e[m] * y[m] + f1[m] * nu[m] + 2.0 * f2[m] * (na[m] + nb[m]) + f3[m] * nc[m]

    @numba.njit(cache=True)
    def etd_error(f3, nc, n5, out):  # (sum |f3 (nc - n5)|^2, sum |out|^2): the embedded estimate's norms
        diff = 0.0
        size = 0.0
        for m in range(out.shape[0]):
            d = f3[m] * (nc[m] - n5[m])
            diff += d.real * d.real + d.imag * d.imag
            size += out[m].real * out[m].real + out[m].imag * out[m].imag
        return diff, size

    return {"combine": combine, "if_stage": if_stage, "axpy_e": axpy_e, "etd_stage": etd_stage, "etd_sum": etd_sum,
            "etd_error": etd_error}


class Combination:
    """``R_f = sum_c A_fc X_c + S_f`` for every field ``f`` (transforms ``X``, any batch axes).

    The multipliers are stored on their support only (the modes where some multiplier or
    source is not zero): under the 2/3 rule that is 4/9 of the modes in 2-D, 8/27 in 3-D, and
    the pass reads that much of them and of the inputs.

    Args:
        A: multipliers ``(F, C, *kshape)`` complex (projection and 2/3 rule folded in).
        S: constant terms ``(F, *kshape)`` complex.
    """

    def __init__(self, A: np.ndarray, S: np.ndarray):
        F, C, kshape = A.shape[0], A.shape[1], A.shape[2:]
        modes = int(np.prod(kshape))
        flat_a = A.reshape(F, C, modes)
        flat_s = S.reshape(F, modes)
        keep = (flat_a != 0).any(axis=(0, 1)) | (flat_s != 0).any(axis=0)
        idx = np.flatnonzero(keep).astype(np.int64)  # the support, in memory order
        self._set(idx, np.ascontiguousarray(flat_a[:, :, keep]), np.ascontiguousarray(flat_s[:, keep]), kshape)

    @classmethod
    def on_support(cls, idx: np.ndarray, A: np.ndarray, S: np.ndarray, kshape: tuple[int, ...]) -> Combination:
        """A combination given on its support already: ``idx`` (flat mode indices, increasing),
        ``A`` ``(F, C, len(idx))`` and ``S`` ``(F, len(idx))`` (zero elsewhere)."""
        self = cls.__new__(cls)
        self._set(np.asarray(idx, dtype=np.int64), np.ascontiguousarray(A), np.ascontiguousarray(S), tuple(kshape))
        return self

    def _set(self, idx, A, S, kshape) -> None:
        self.F, self.C = A.shape[0], A.shape[1]
        self.kshape = tuple(kshape)
        self.modes = int(np.prod(self.kshape))
        self.idx, self.A, self.S = idx, A, S
        self._typed: dict = {}
        #: prepared arguments of fused stage calls, by the identity of their arrays (see _stage)
        self._prepared: dict = {}

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
        ``xs`` is empty). ``then``: ``(epilogue, states, coefficients, number[, on_support])``, a
        stage update done in the same pass (:data:`EPILOGUES`; ``states``: arrays shaped like the
        result, ``coefficients``: ``(F, *kshape)`` arrays, all C-contiguous; ``on_support``: the
        caller guarantees ``out`` and every state are zero outside :attr:`idx`, so only the
        support is visited and the zeros stay); ``out`` is then required.
        """
        if then is not None and out is not None:
            prepared = self._prepared.get(_identity(xs, out, then))
            if prepared is not None:  # a time stepper's call seen before: the same arrays
                kernels()["combine"](*prepared[0])
                return out
            if out.shape == (self.F, *self.kshape) and out.flags.c_contiguous \
                    and all(x.shape == self.kshape and x.dtype == out.dtype and x.flags.c_contiguous for x in xs):
                return self._stage(xs, out, then)  # a time stepper's call: unbatched, contiguous
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
        ins = tuple(_flat(x, full, dtype).reshape(nb, self.modes) for x in xs)
        self._run(A, S, ins, flat, then)
        if out is not None and target is not out:
            out[...] = target
            return out
        return target


    def _stage(self, xs: tuple, out: np.ndarray, then: tuple) -> np.ndarray:
        """:meth:`__call__` for unbatched C-contiguous arrays, in few Python operations.

        A time stepper passes the same few arrays (its buffers, the transforms' work arrays,
        the step's coefficients) over and over: the flattened views and checks of a call are
        kept under the identity of its arrays, and a call with the same arrays runs the kernel
        on them directly. The entry holds the arrays, so their identities stay theirs (at most
        :data:`PREPARED_CALLS` entries; a stepper that drops a set of coefficients clears them,
        :meth:`~pdeforge.codegen.spectral.compile.SpectralOperator.forget_prepared`).
        """
        A, S = self._arrays(out.dtype)
        args = self._run(A, S, tuple(x.reshape(1, self.modes) for x in xs), out.reshape(1, self.F, self.modes), then)
        if len(self._prepared) >= PREPARED_CALLS:
            self._prepared.clear()
        self._prepared[_identity(xs, out, then)] = (args, (xs, out, then))
        return out

    def _run(self, A, S, ins: tuple, flat: np.ndarray, then: tuple | None):
        """The kernel on flattened inputs ``(nb, modes)`` into ``flat`` ``(nb, F, modes)``;
        returns the arguments it was called with (a stage update's call)."""
        ins = ins or (flat[:, 0],)
        if then is None:
            kernels()["combine"](A, ins, S, self.idx, flat, 0, (flat,) * 4, (_NO_COEFFICIENTS,) * 4, 0.0, False)
            return
        name, states, coefficients, c0, *rest = then
        on_support = bool(rest and rest[0])
        if not all(x.flags.c_contiguous and x.dtype == flat.dtype for x in states):
            raise ValueError("the states of a fused stage update must be C-contiguous arrays of the state's precision")
        w = tuple(x.reshape(flat.shape) for x in states)
        w = w + (flat,) * (4 - len(w))
        cf = tuple(c.reshape(self.F, self.modes) for c in coefficients)
        cf = cf + (cf[0],) * (4 - len(cf))
        args = (A, ins, S, self.idx, flat, EPILOGUES[name], w, cf, float(c0), on_support)
        kernels()["combine"](*args)
        return args


#: the coefficient arrays of a pass without a stage update (never read)
_NO_COEFFICIENTS = np.zeros((1, 0))
#: prepared stage calls kept per combination (a stepper uses a few dozen; more: the cache restarts)
PREPARED_CALLS = 64


def _identity(xs: tuple, out: np.ndarray, then: tuple) -> tuple:
    """Key of a fused stage call: the identity of every array in it and its scalars."""
    name, states, coefficients, c0, *rest = then
    return (id(out), *map(id, xs), name, *map(id, states), *map(id, coefficients), c0, bool(rest and rest[0]))


def _flat(x: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """``x`` as a writable C-contiguous array of ``shape`` (one Numba signature for every input)."""
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()


def combination(terms: list[list[tuple[int, object]]], n_sources: int, sources: list, velocity: tuple[int, ...],
                k: tuple, kinv2, kshape: tuple[int, ...]) -> Combination:
    """Fold the terms of every field and the Leray projection into one :class:`Combination`.

    Built on the support only (the modes where some multiplier or source is not zero; the
    projection mixes values of one mode, so it adds none): at 64^3 a LES's multipliers are
    (fields x sources x modes) complex, 80 MB dense, and building them densely cost 0.5 s of
    every run.

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
    given = [not (isinstance(src, (int, float)) and src == 0) for src in sources]
    keep = np.zeros(kshape, dtype=bool)
    for f, pairs in enumerate(terms):
        for _, m in pairs:
            keep |= np.asarray(m) != 0
        if given[f]:
            keep |= np.asarray(sources[f]) != 0
    idx = np.flatnonzero(keep).astype(np.int64)
    where = np.unravel_index(idx, kshape)

    def on(m):  # the values of a multiplier broadcastable to kshape, at the support
        return np.broadcast_to(np.asarray(m), kshape)[where]

    n = idx.size
    A = np.zeros((F, n_sources, n), dtype=complex)
    S = np.zeros((F, n), dtype=complex)
    for f, pairs in enumerate(terms):
        for c, m in pairs:
            A[f, c] += on(m)
        if given[f]:
            S[f] += on(sources[f])
    if velocity:
        ks = [on(k[a]) for a in range(len(velocity))]
        inv = on(kinv2)
        div_a = sum(ks[a] * A[i] for a, i in enumerate(velocity)) * inv
        div_s = sum(ks[a] * S[i] for a, i in enumerate(velocity)) * inv
        for a, i in enumerate(velocity):
            A[i] = A[i] - ks[a] * div_a
            S[i] = S[i] - ks[a] * div_s
    return Combination.on_support(idx, A, S, kshape)

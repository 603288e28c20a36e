"""Linear solves with ``I - gamma*J`` built from the exact sparse Jacobian.

Implicit integrators (CVODE's Newton-Krylov iterations, Rosenbrock stages, IMEX steps) solve
``(I - gamma J) z = r`` many times per step. The Jacobian of a reaction-diffusion system
splits into

    J = R + T,    R: the couplings inside each cell (reactions; one nf x nf block per cell),
                  T: the couplings between cells (transport), each row completed on the
                     diagonal so that it sums to zero as a conservative stencil's rows do,

and ``(I - gamma R)(I - gamma T)`` approximates ``I - gamma J`` to ``O(gamma^2)``: the
*split* preconditioner. Its R part is a batch of tiny dense inverses (closed form); its T
part, for a constant-coefficient stencil on a periodic or zero-flux (mirror) box, is
diagonalised by the FFT or the DCT-II, so it costs two fast transforms per diffusing field
and no fill-in (the transform is checked against ``T @ v`` once, never assumed). Where no
transform diagonalises T, the T part is factorised by SuperLU (small systems) or solved by
one algebraic-multigrid V-cycle (pyamg, large systems).

The other preconditioners solve with the whole ``I - gamma J``: SuperLU's ``splu`` (exact,
so GMRES converges in one iteration), ``spilu`` (incomplete), or pyamg.

Every preconditioner has ``setup(t, y, gamma, jacobian_ok) -> bool`` (True when it
evaluated a new Jacobian) and ``solve(r) -> z``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from pdeforge.errors import SolverError

#: preconditioner names (``preconditioner=``)
PRECONDITIONERS = ("auto", "split", "lu", "ilu", "amg", "none")
#: unknowns up to which SuperLU factorises (above: algebraic multigrid)
LU_LIMIT = 60_000


def block_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of every ``(nf, nf)`` block of ``A`` with shape ``(nf, nf, ncells)``.

    Closed forms for nf <= 3 (NumPy's batched inverse of 16k 3x3 blocks costs ~10x more).
    """
    nf = A.shape[0]
    if nf == 1:
        return 1.0 / A
    if nf == 2:
        a, b, c, d = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
        r = 1.0 / (a * d - b * c)
        return np.array([[d * r, -b * r], [-c * r, a * r]])
    if nf == 3:
        C = np.empty_like(A)
        for i in range(3):
            for j in range(3):
                i1, i2, j1, j2 = (i + 1) % 3, (i + 2) % 3, (j + 1) % 3, (j + 2) % 3
                C[j, i] = A[i1, j1] * A[i2, j2] - A[i1, j2] * A[i2, j1]
        return C / (A[0, 0] * C[0, 0] + A[0, 1] * C[1, 0] + A[0, 2] * C[2, 0])
    return np.ascontiguousarray(np.linalg.inv(A.transpose(2, 0, 1)).transpose(1, 2, 0))


class JacobianSplit:
    """``J = R + T`` for a fixed sparsity pattern (index maps built once).

    Args:
        nfields: fields (unknowns are ordered field-major: ``f * ncells + cell``).
        ncells: cells of the grid.
    """

    def __init__(self, nfields: int, ncells: int):
        self.nf, self.nc = nfields, ncells
        self._maps = None

    def __call__(self, J: sps.csr_matrix) -> tuple[np.ndarray, sps.csr_matrix]:
        """``(R blocks (nf, nf, nc), T)`` of ``J``."""
        nf, nc = self.nf, self.nc
        if self._maps is None:
            rows = np.repeat(np.arange(J.shape[0]), np.diff(J.indptr))
            same = (rows % nc) == (J.indices % nc)
            off, on = np.flatnonzero(~same), np.flatnonzero(same)
            blk = (rows[on] // nc) * nf * nc + (J.indices[on] // nc) * nc + rows[on] % nc
            self._maps = (off, on, rows[off], J.indices[off], blk)
        off, on, orow, ocol, blk = self._maps
        toff = J.data[off]
        rowsum = np.bincount(orow, weights=toff, minlength=J.shape[0])
        R = np.zeros(nf * nf * nc)
        R[blk] = J.data[on]
        R = R.reshape(nf, nf, nc)
        for f in range(nf):
            R[f, f] += rowsum[f * nc:(f + 1) * nc]
        T = (sps.csr_matrix((toff, (orow, ocol)), shape=J.shape) - sps.diags(rowsum)).tocsr()
        return R, T


#: points per axis up to which a transform is applied as dense matrix products (BLAS) rather
#: than by pocketfft: at 32^2 four 32x32 products cost a third of two DCT calls' overhead
DENSE_TRANSFORM_LIMIT = 64


def axis_eigenbasis(n: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and orthonormal eigenvectors (columns) of the 1-D second difference
    ``v[i-1] - 2 v[i] + v[i+1]`` on ``n`` points: periodic ("fft": the real Fourier basis) or
    mirror ("dct": the DCT-II basis). Written out, not computed by LAPACK (whose threads cost
    more than the whole solve on a busy machine)."""
    j = np.arange(n)[:, None] + (0.5 if kind == "dct" else 0.0)
    if kind == "dct":
        k = np.arange(n)
        Q = np.sqrt((2.0 - (k == 0)) / n) * np.cos(np.pi * k * j / n)
        return 2 * np.cos(np.pi * k / n) - 2, np.ascontiguousarray(Q)
    k = np.arange(n // 2 + 1)
    cos = np.sqrt((2.0 - (k == 0) - (2 * k == n)) / n) * np.cos(2 * np.pi * k * j / n)
    ks = np.arange(1, (n + 1) // 2)
    sin = np.sqrt(2.0 / n) * np.sin(2 * np.pi * ks * j / n)
    lam = 2 * np.cos(2 * np.pi * np.concatenate([k, ks]) / n) - 2
    return lam, np.ascontiguousarray(np.hstack([cos, sin]))


class TransformSolver:
    """``(I - gamma T)^-1`` by a fast transform that diagonalises T (FFT periodic, DCT-II mirror).

    On small grids (every axis at most :data:`DENSE_TRANSFORM_LIMIT` points) the transform is
    applied as dense products with the 1-D eigenbases, ``Q0 (Q0^T X Q1 / d) Q1^T`` in 2-D, so a
    solve is a handful of BLAS calls; larger grids use pocketfft.

    Args:
        T: the transport operator.
        shape: the grid's shape.
        nfields: fields.
        kind: "fft" or "dct".

    Raises:
        SolverError: the transform does not diagonalise T (checked on a random vector).
    """

    def __init__(self, T: sps.csr_matrix, shape: tuple[int, ...], nfields: int, kind: str):
        self.shape, self.nf, self.kind = tuple(shape), nfields, kind
        self.dense = max(shape) <= DENSE_TRANSFORM_LIMIT
        bases = [axis_eigenbasis(n, kind) for n in shape] if self.dense else []
        self.Q = [Q for _, Q in bases]
        nc = int(np.prod(shape))
        centre = np.ravel_multi_index(tuple(s // 2 for s in shape), shape)
        self.eig: list[np.ndarray | None] = []
        for f in range(nfields):
            row = f * nc + centre
            cols = T.indices[T.indptr[row]:T.indptr[row + 1]]
            vals = T.data[T.indptr[row]:T.indptr[row + 1]]
            lam, coupled = np.zeros(shape), False
            for ax, n in enumerate(shape):
                stride = int(np.prod(shape[ax + 1:]))
                c = vals[cols == row + stride]
                c = float(c[0]) if c.size else 0.0
                coupled |= c != 0.0
                if self.dense:
                    mu = bases[ax][0]
                else:
                    theta = np.arange(n) * (2 * np.pi / n if kind == "fft" else np.pi / n)
                    mu = 2 * np.cos(theta) - 2
                lam = lam + (c * mu).reshape([-1 if a == ax else 1 for a in range(len(shape))])
            self.eig.append(lam if coupled else None)
        v = np.random.default_rng(0).standard_normal(T.shape[0])
        Tv = T @ v
        err = np.abs(self._apply(v, self.eig, uncoupled=0.0) - Tv).max() / max(np.abs(Tv).max(), 1e-300)
        if not err < 1e-9:
            raise SolverError(f"the {kind} does not diagonalise the transport operator (relative error {err:.1e})")

    def _dense(self, X: np.ndarray, fac: np.ndarray) -> np.ndarray:
        """``Q fac Q^T X`` with Q the tensor product of the 1-D eigenbases."""
        Q = self.Q
        if X.ndim == 1:
            return Q[0] @ ((Q[0].T @ X) * fac)
        if X.ndim == 2:
            return Q[0] @ ((Q[0].T @ X @ Q[1]) * fac) @ Q[1].T
        for ax, q in enumerate(Q):
            X = np.moveaxis(np.tensordot(q.T, X, axes=(1, ax)), 0, ax)
        X = X * fac
        for ax, q in enumerate(Q):
            X = np.moveaxis(np.tensordot(q, X, axes=(1, ax)), 0, ax)
        return X

    def _apply(self, r: np.ndarray, factors, uncoupled: float = 1.0, copy: bool = True) -> np.ndarray:
        """The diagonal ``factors`` applied in transform space; fields that T does not couple
        (``None``) are multiplied by ``uncoupled``. ``copy=False`` works in ``r`` itself."""
        import scipy.fft as sfft

        out = np.array(r, dtype=float, copy=copy).reshape(self.nf, *self.shape)
        for f, fac in enumerate(factors):
            if fac is None:
                if uncoupled != 1.0:
                    out[f] *= uncoupled
            elif self.dense:
                out[f] = self._dense(out[f], fac)
            elif self.kind == "fft":
                out[f] = sfft.irfftn(sfft.rfftn(out[f]) * fac[..., : self.shape[-1] // 2 + 1], s=self.shape)
            else:
                out[f] = sfft.idctn(sfft.dctn(out[f], type=2, norm="ortho") * fac, type=2, norm="ortho")
        return out.reshape(-1)

    def factor(self, gamma: float) -> Callable[[np.ndarray], np.ndarray]:
        """The solve with ``I - gamma T``."""
        factors = [None if lam is None else 1.0 / (1.0 - gamma * lam) for lam in self.eig]
        return lambda r: self._apply(r, factors, copy=False)


def detect_transform(bound, T: sps.csr_matrix) -> TransformSolver | None:
    """A transform solver for T when the grid's boundaries allow one and it checks out, else None."""
    bcs = [pair for pair in bound.kernel.system.bcs.values()]
    if all(lo.periodic and hi.periodic for lo, hi in bcs):
        kind = "fft"
    elif all(not lo.periodic and not hi.periodic for lo, hi in bcs):
        kind = "dct"
    else:
        return None
    try:
        return TransformSolver(T, bound.grid.shape, bound.nfields, kind)
    except SolverError:
        return None


def _amg(M: sps.csr_matrix) -> Callable[[np.ndarray], np.ndarray]:
    try:
        import pyamg
    except ImportError:  # pragma: no cover - pyamg is a dependency
        raise SolverError("preconditioner 'amg' needs pyamg: pip install pyamg") from None
    ml = pyamg.smoothed_aggregation_solver(M.tocsr(), symmetry="nonsymmetric", max_coarse=500, coarse_solver="splu")
    return ml.aspreconditioner(cycle="V").matvec


class Preconditioner:
    """Solves with (an approximation of) ``I - gamma J``; J re-evaluated only when asked.

    Args:
        bound: the bound kernel (its exact ``jacobian``).
        kind: "split", "lu", "ilu", "amg" or "none" (see the module docstring).
        transport: for "split": "auto" (transform if it diagonalises T, else LU or AMG by
            size), "transform", "lu" or "amg".
    """

    def __init__(self, bound, kind: str = "split", transport: str = "auto"):
        if kind not in PRECONDITIONERS or kind == "auto":
            raise SolverError(f"preconditioner {kind!r} (valid: {', '.join(p for p in PRECONDITIONERS if p != 'auto')})")
        self.bound, self.kind, self.transport = bound, kind, transport
        self.n = bound.size
        self.nf, self.nc = bound.nfields, bound.grid.size
        self.identity = sps.identity(self.n, format="csr")
        self.split = JacobianSplit(self.nf, self.nc)
        self.J = None
        self.R = self.T = None
        self._transform: TransformSolver | None = None
        self._T_data = None
        self.jacobian_evaluations = 0
        self.factorizations = 0
        self.solves = 0
        self.solve: Callable[[np.ndarray], np.ndarray] = lambda r: np.array(r, copy=True)
        self.transport_solver = "none"

    def setup(self, t: float, y: np.ndarray, gamma: float, jacobian_ok: bool = False) -> bool:
        """Prepare solves with ``I - gamma J(t, y)``; reuse the last J when ``jacobian_ok``."""
        new = False
        if self.kind == "none":
            return False
        if self.J is None or not jacobian_ok:
            self.jacobian_evaluations += 1
            self.use_jacobian(self.bound.jacobian(t, y))
            new = True
        self._factor(gamma)
        return new

    def use_jacobian(self, J: sps.csr_matrix) -> None:
        """Take ``J`` as the Jacobian of the next factorisations (split once here)."""
        self.J = J
        if self.kind != "split":
            return
        self.R, T = self.split(J)
        if self._T_data is None or T.data.shape != self._T_data.shape or not np.array_equal(T.data, self._T_data):
            self.T, self._T_data = T, T.data.copy()
            self._transform = None
            if self.transport in ("auto", "transform"):
                self._transform = detect_transform(self.bound, T)
                if self._transform is None and self.transport == "transform":
                    raise SolverError("transport='transform': no FFT/DCT diagonalises this transport operator")

    def _factor(self, gamma: float) -> None:
        self.factorizations += 1
        if self.kind == "split":
            nf, nc = self.nf, self.nc
            Ainv = block_inverse(np.eye(nf)[:, :, None] - gamma * self.R)
            if self._transform is not None:
                tsolve = self._transform.factor(gamma)
                self.transport_solver = self._transform.kind
            else:
                M = (self.identity - gamma * self.T).tocsc()
                use_lu = self.transport == "lu" or (self.transport == "auto" and self.n <= LU_LIMIT)
                tsolve = spla.splu(M).solve if use_lu else _amg(M)
                self.transport_solver = "lu" if use_lu else "amg"

            def solve(r: np.ndarray) -> np.ndarray:
                # the cell blocks first, (I - gR)^-1 r, into a fresh array the transport solve may overwrite
                z = np.einsum("fgc,gc->fc", Ainv, np.asarray(r).reshape(nf, nc))
                return tsolve(z.reshape(-1))

            self.solve = self._counted(solve)
            return
        M = (self.identity - gamma * self.J).tocsc()
        if self.kind == "lu":
            self.solve = self._counted(spla.splu(M).solve)
        elif self.kind == "ilu":
            self.solve = self._counted(spla.spilu(M, drop_tol=1e-5, fill_factor=10).solve)
        else:
            self.solve = self._counted(_amg(M))

    def _counted(self, fn):
        def solve(r):
            self.solves += 1
            return fn(r)

        return solve


#: unknowns up to which "auto" takes the exact LU preconditioner
EXACT_LIMIT = 2048


def choose_preconditioner(bound, requested: str = "auto") -> str:
    """The preconditioner for ``bound``: exact LU for 1-D and small systems (banded or tiny:
    cheap, and GMRES then solves exactly, so linear invariants such as the mass of a
    conservative scheme are kept to round-off), else the split one (cheap and, with a
    transform, free of fill-in; linear invariants then hold to the Krylov tolerance)."""
    if requested != "auto":
        if requested not in PRECONDITIONERS:
            raise SolverError(f"preconditioner {requested!r} is unknown (valid: {', '.join(PRECONDITIONERS)})")
        return requested
    return "lu" if bound.grid.dim == 1 or bound.size <= EXACT_LIMIT else "split"

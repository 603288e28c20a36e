"""Linear solves with ``I - gamma*J`` built from the exact sparse Jacobian.

Implicit integrators (CVODE's Newton-Krylov iterations, Rosenbrock stages, IMEX steps) solve
``(I - gamma J) z = r`` many times per step. The Jacobian of a reaction-diffusion system
splits into

    J = R + T,    R: the couplings inside each cell (reactions; one nf x nf block per cell),
                  T: the couplings between cells (transport), each field-to-field block's
                     rows completed on its diagonal so that they sum to zero as a
                     conservative stencil's rows do,

and ``(I - gamma R)(I - gamma T)`` approximates ``I - gamma J`` to ``O(gamma^2)``: the
*split* preconditioner. Its R part is a batch of tiny dense inverses (closed form); its T
part, for a constant-coefficient stencil on a periodic or zero-flux (mirror) box, is
diagonalised by the FFT or the DCT-II, so it costs two fast transforms per diffusing field
and no fill-in (the transform is checked against ``T @ v`` once, never assumed). Where no
transform diagonalises T, the T part is factorised by SuperLU (small systems) or solved by
one algebraic-multigrid V-cycle (pyamg, large systems); a small system whose T no transform
diagonalises is factorised whole by SuperLU (the split would buy nothing there).

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

    Each block of T that couples field f to field g (g = f: diffusion; g != f: cross-diffusion
    such as chemotaxis) is completed on its own diagonal so that its rows sum to zero, and R
    takes the opposite: the stiff centre entry of a cross-diffusion stencil stays with its
    stencil in T instead of landing in the cell-local block R.

    Args:
        nfields: fields (unknowns are ordered field-major: ``f * ncells + cell``).
        ncells: cells of the grid.
    """

    def __init__(self, nfields: int, ncells: int):
        self.nf, self.nc = nfields, ncells
        self._maps = None

    def _build_maps(self, J: sps.csr_matrix) -> None:
        nf, nc = self.nf, self.nc
        rows = np.repeat(np.arange(J.shape[0]), np.diff(J.indptr))
        same = (rows % nc) == (J.indices % nc)
        off, on = np.flatnonzero(~same), np.flatnonzero(same)
        blk = (rows[on] // nc) * nf * nc + (J.indices[on] // nc) * nc + rows[on] % nc
        orow, ocol = rows[off], J.indices[off]
        # (row, column field) of each transport entry, and the blocks that have any
        pair = orow * nf + ocol // nc
        f_of, g_of = np.divmod(np.unique((orow // nc) * nf + ocol // nc), nf)
        cells = np.arange(nc)
        drow = np.concatenate([f * nc + cells for f in f_of]) if f_of.size else np.zeros(0, int)
        dcol = np.concatenate([g * nc + cells for g in g_of]) if f_of.size else np.zeros(0, int)
        dkey = drow * nf + dcol // nc
        rblk = (drow // nc) * nf * nc + (dcol // nc) * nc + drow % nc
        self._maps = (off, on, blk, orow, ocol, pair, drow, dcol, dkey, rblk)

    def __call__(self, J: sps.csr_matrix) -> tuple[np.ndarray, sps.csr_matrix]:
        """``(R blocks (nf, nf, nc), T)`` of ``J``."""
        nf, nc = self.nf, self.nc
        if self._maps is None:
            self._build_maps(J)
        off, on, blk, orow, ocol, pair, drow, dcol, dkey, rblk = self._maps
        toff = J.data[off]
        rowsum = np.bincount(pair, weights=toff, minlength=J.shape[0] * nf)[dkey]
        R = np.zeros(nf * nf * nc)
        R[blk] = J.data[on]
        np.add.at(R, rblk, rowsum)
        T = sps.csr_matrix((np.concatenate([toff, -rowsum]), (np.concatenate([orow, drow]), np.concatenate([ocol, dcol]))),
                           shape=J.shape)
        return R.reshape(nf, nf, nc), T


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
        out = np.array(r, dtype=float, copy=copy).reshape(self.nf, *self.shape)
        for f, fac in enumerate(factors):
            if fac is None:
                if uncoupled != 1.0:
                    out[f] *= uncoupled
            else:
                out[f] = self.field(out[f], fac)
        return out.reshape(-1)

    def field(self, x: np.ndarray, fac: np.ndarray) -> np.ndarray:
        """The diagonal ``fac`` applied to one field ``x`` (grid-shaped) in transform space."""
        import scipy.fft as sfft

        if self.dense:
            return self._dense(x, fac)
        if self.kind == "fft":
            return sfft.irfftn(sfft.rfftn(x) * fac[..., : self.shape[-1] // 2 + 1], s=self.shape)
        return sfft.idctn(sfft.dctn(x, type=2, norm="ortho") * fac, type=2, norm="ortho")

    def factor(self, gamma: float) -> Callable[[np.ndarray], np.ndarray]:
        """The solve with ``I - gamma T``."""
        factors = [None if lam is None else 1.0 / (1.0 - gamma * lam) for lam in self.eig]
        return lambda r: self._apply(r, factors, copy=False)


#: largest relative spread of a field's neighbour coefficients around their mean for which
#: the sweep's constant-coefficient stand-in is a good preconditioner (a few Krylov iterations)
SWEEP_SPREAD = 0.5


def boundary_kind(bound) -> str | None:
    """"fft" on a fully periodic box, "dct" on a box with no periodic side, else None."""
    bcs = list(bound.kernel.system.bcs.values())
    if all(lo.periodic and hi.periodic for lo, hi in bcs):
        return "fft"
    if all(not lo.periodic and not hi.periodic for lo, hi in bcs):
        return "dct"
    return None


def second_difference(n: int, kind: str) -> sps.csr_matrix:
    """The 1-D ``v[i-1] - 2 v[i] + v[i+1]`` on ``n`` points, periodic ("fft") or mirror ("dct")."""
    L = sps.diags([np.ones(n - 1), np.full(n, -2.0), np.ones(n - 1)], [-1, 0, 1], format="lil")
    if kind == "fft":
        L[0, n - 1] += 1.0
        L[n - 1, 0] += 1.0
    else:
        L[0, 0] = L[n - 1, n - 1] = -1.0
    if n == 1:
        L[0, 0] = 0.0
    return L.tocsr()


def mean_stencil(block: sps.csr_matrix, shape: tuple[int, ...], kind: str) -> sps.csr_matrix:
    """The constant-coefficient stand-in of a field's own transport block: along each axis the
    mean of its neighbour coefficients times the second difference.

    Raises:
        SolverError: a mean is not positive (not diffusive) or the coefficients spread more
            than :data:`SWEEP_SPREAD` around it.
    """
    D = block.tocoo()
    nc = int(np.prod(shape))
    stand_in = sps.csr_matrix((nc, nc))
    for ax, n in enumerate(shape):
        stride = int(np.prod(shape[ax + 1:]))
        c = D.data[np.abs(D.col - D.row) == stride] if n > 1 else np.zeros(0)
        mean = float(c.mean()) if c.size else 0.0
        if c.size and not (mean > 0 and np.abs(c - mean).max() <= SWEEP_SPREAD * mean):
            raise SolverError(f"neighbour coefficients along axis {ax} spread too far for a constant-coefficient stand-in")
        if mean == 0.0:
            continue
        ops = [sps.identity(m, format="csr") for m in shape]
        ops[ax] = second_difference(n, kind)
        term = ops[0]
        for op in ops[1:]:
            term = sps.kron(term, op, format="csr")
        stand_in = stand_in + mean * term
    return stand_in.tocsr()


class FieldSweepSolver:
    """``(I - gamma T)^-1`` for transport that couples fields (cross-diffusion, chemotaxis
    ``div(D grad u - chi u grad v)``) or has mildly varying coefficients.

    The fields are solved one after another (block Gauss-Seidel, in the order of their
    couplings: a field whose transport reads another's comes after it). Each field's own block
    ``T_ff`` is replaced by the constant-coefficient stand-in with its mean neighbour
    coefficients along each axis (:func:`mean_stencil`), which a transform diagonalises; the
    blocks coupling fields are applied exactly. The approximation error is left to the Krylov
    iterations.

    Args:
        T: the transport operator.
        shape: the grid's shape.
        nfields: fields.
        kind: "fft" (periodic box) or "dct" (mirror).

    Raises:
        SolverError: a field's own coefficients spread more than :data:`SWEEP_SPREAD` around
            their mean, or a mean is not diffusive (the stand-in would not precondition).
    """

    kind = "sweep"

    def __init__(self, T: sps.csr_matrix, shape: tuple[int, ...], nfields: int, kind: str):
        shape = tuple(shape)
        nc = int(np.prod(shape))
        self.nf, self.nc, self.shape = nfields, nc, shape
        T = T.tocsr()
        own, self.coupling = [], {}
        for f in range(nfields):
            Tf = T[f * nc:(f + 1) * nc]
            row = [Tf[:, g * nc:(g + 1) * nc].tocsr() for g in range(nfields)]
            try:
                own.append(mean_stencil(row[f], shape, kind))
            except SolverError as exc:
                raise SolverError(f"field {f}: {exc}") from None
            self.coupling[f] = [(g, row[g]) for g in range(nfields)
                                if g != f and row[g].nnz and np.abs(row[g].data).max() > 0]
        self.transform = TransformSolver(sps.block_diag(own, format="csr"), shape, nfields, kind)
        self.order = _coupling_order(self.coupling, nfields)

    def factor(self, gamma: float) -> Callable[[np.ndarray], np.ndarray]:
        """The approximate solve with ``I - gamma T``."""
        factors = [None if lam is None else 1.0 / (1.0 - gamma * lam) for lam in self.transform.eig]
        nf, nc, shape = self.nf, self.nc, self.shape

        def solve(r: np.ndarray) -> np.ndarray:
            z = np.array(r, dtype=float, copy=True).reshape(nf, nc)
            done: set[int] = set()
            for f in self.order:
                for g, Tfg in self.coupling[f]:
                    if g in done:
                        z[f] += gamma * (Tfg @ z[g])
                if factors[f] is not None:
                    z[f] = self.transform.field(z[f].reshape(shape), factors[f]).reshape(-1)
                done.add(f)
            return z.reshape(-1)

        return solve


def _coupling_order(coupling: dict[int, list], nfields: int) -> list[int]:
    """Fields ordered so that each comes after the fields its transport reads (where the
    couplings allow such an order; in a cycle the lowest-numbered waiting field goes first)."""
    order, left = [], list(range(nfields))
    while left:
        ready = [f for f in left if all(g in order for g, _ in coupling[f])]
        f = ready[0] if ready else left[0]
        order.append(f)
        left.remove(f)
    return order


def detect_transform(bound, T: sps.csr_matrix) -> TransformSolver | None:
    """A transform solver for T when the grid's boundaries allow one and it checks out, else None."""
    kind = boundary_kind(bound)
    if kind is None:
        return None
    try:
        return TransformSolver(T, bound.grid.shape, bound.nfields, kind)
    except SolverError:
        return None


def detect_sweep(bound, T: sps.csr_matrix, cross_only: bool = False) -> FieldSweepSolver | None:
    """A field-sweep solver for T when the boundaries allow a transform and the stand-in fits,
    else None; with ``cross_only`` also None when T couples no two fields (one field with
    varying coefficients is left to the exact solvers)."""
    kind = boundary_kind(bound)
    if kind is None:
        return None
    try:
        sweep = FieldSweepSolver(T, bound.grid.shape, bound.nfields, kind)
    except SolverError:
        return None
    return None if cross_only and not any(sweep.coupling.values()) else sweep


def sparse_lu(M: sps.spmatrix) -> Callable[[np.ndarray], np.ndarray]:
    """The solve of SuperLU's factorisation of ``M``, columns ordered by minimum degree on
    ``M^T + M`` (stencil matrices are structurally symmetric: half the fill of SciPy's default
    COLAMD, 3.8 against 6.0 ms for the 2048 unknowns of a 32^2 two-field periodic system)."""
    return spla.splu(sps.csc_matrix(M), permc_spec="MMD_AT_PLUS_A").solve


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
        transport: for "split": "auto" (a transform if it diagonalises T, else the field
            sweep where T couples fields and the stand-in fits, else the LU of the whole ``I - gamma J``
            up to :data:`LU_LIMIT` unknowns and AMG on T above), "transform", "sweep"
            (:class:`FieldSweepSolver`), "lu" (LU of ``I - gamma T``) or "amg".
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
        self._transform: TransformSolver | FieldSweepSolver | None = None
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
            if self._transform is None and self.transport in ("auto", "sweep"):
                self._transform = detect_sweep(self.bound, T, cross_only=self.transport == "auto")
                if self._transform is None and self.transport == "sweep":
                    raise SolverError("transport='sweep': the transport operator has no constant-coefficient "
                                      "stand-in on this box (see FieldSweepSolver)")

    def _factor(self, gamma: float) -> None:
        self.factorizations += 1
        if self.kind == "split":
            nf, nc = self.nf, self.nc
            if self._transform is not None:
                tsolve = self._transform.factor(gamma)
                self.transport_solver = self._transform.kind
            elif self.transport == "auto" and self.n <= LU_LIMIT:
                # a sparse LU either way: factorise the whole I - gamma J, not the split's transport
                # part, whose O(gamma^2 R T) error is large where walls leave big diagonal remainders
                # in R (a clamped plate: 6003 CVODE steps against 329 with the whole matrix)
                self.solve = self._counted(sparse_lu(self.identity - gamma * self.J))
                self.transport_solver = "whole-lu"
                return
            else:
                M = (self.identity - gamma * self.T).tocsc()
                tsolve = sparse_lu(M) if self.transport == "lu" else _amg(M)
                self.transport_solver = "lu" if self.transport == "lu" else "amg"
            Ainv = block_inverse(np.eye(nf)[:, :, None] - gamma * self.R)

            def solve(r: np.ndarray) -> np.ndarray:
                # the cell blocks first, (I - gR)^-1 r, into a fresh array the transport solve may overwrite
                z = np.einsum("fgc,gc->fc", Ainv, np.asarray(r).reshape(nf, nc))
                return tsolve(z.reshape(-1))

            self.solve = self._counted(solve)
            return
        M = (self.identity - gamma * self.J).tocsc()
        if self.kind == "lu":
            self.solve = self._counted(sparse_lu(M))
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

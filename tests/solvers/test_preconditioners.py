"""The pieces of the split preconditioner: the 1-D eigenbases behind the dense transforms, the
field-pair completion of the transport blocks, and the field sweep that takes cross-diffusion
(Keller-Segel chemotaxis) into CVODE's Newton-Krylov iterations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sps
import scipy.sparse.linalg as spla

import pdeforge as pf
from pdeforge.solvers.implicit.preconditioners import (
    JacobianSplit,
    Preconditioner,
    TransformSolver,
    axis_eigenbasis,
    second_difference,
)

pytest.importorskip("sksundae", reason="scikit-sundae (SUNDIALS) is a dependency: pip install -e .")


def _keller_segel(chi: float = 10.0) -> pf.PDESystem:
    return pf.PDESystem({"u": "div(D*grad(u) - chi*u*grad(v))", "v": "Dv*laplace(v) + u - v"},
                        params={"D": 1.0, "chi": chi, "Dv": 1.0}, domain=[(0, 1), (0, 1)], bcs="neumann")


KS_IC = {"u": "1 + 0.5*exp(-100*((x-0.5)**2 + (y-0.5)**2))", "v": "1"}


@pytest.mark.parametrize("kind", ["fft", "dct"])
@pytest.mark.parametrize("n", [1, 2, 3, 8, 33])
def test_axis_eigenbasis_diagonalises_the_second_difference(kind, n):
    lam, Q = axis_eigenbasis(n, kind)
    L = second_difference(n, kind).toarray()
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(L @ Q, Q * lam, atol=1e-12)


@pytest.mark.parametrize("kind", ["fft", "dct"])
def test_dense_and_fast_transforms_solve_alike(kind):
    shape = (12, 10)
    L = 0.7 * sps.kron(second_difference(12, kind), sps.identity(10)) + 1.3 * sps.kron(
        sps.identity(12), second_difference(10, kind))
    dense = TransformSolver(L.tocsr(), shape, 1, kind)
    assert dense.dense
    fast = TransformSolver(L.tocsr(), shape, 1, kind)
    fast.dense = False  # the same operator, applied by pocketfft with its own eigenvalue ordering
    theta = [np.arange(n) * (2 * np.pi / n if kind == "fft" else np.pi / n) for n in shape]
    fast.eig = [0.7 * (2 * np.cos(theta[0]) - 2)[:, None] + 1.3 * (2 * np.cos(theta[1]) - 2)[None, :]]
    r = np.random.default_rng(3).standard_normal(120)
    z = dense.factor(0.2)(r.copy())
    np.testing.assert_allclose((sps.identity(120) - 0.2 * L) @ z, r, atol=1e-10)
    np.testing.assert_allclose(fast.factor(0.2)(r.copy()), z, atol=1e-10)


def test_split_keeps_the_centre_of_a_cross_diffusion_stencil_in_the_transport():
    system = _keller_segel()
    grid = pf.UniformGrid.from_spec(system.domain, 12)
    bound = pf.compile(system, target="numpy").bind(grid)
    rng = np.random.default_rng(0)
    y = 1.0 + 0.3 * rng.random(bound.size)
    J = bound.jacobian(0.0, y)
    R, T = JacobianSplit(2, grid.size)(J)
    nc = grid.size
    cells = np.arange(nc)
    Rm = sps.bmat([[sps.diags(R[f, g]) for g in range(2)] for f in range(2)])
    np.testing.assert_allclose((Rm + T - J).toarray(), 0.0, atol=1e-9)
    for f in range(2):
        for g in range(2):  # every field-to-field transport block is conservative on its own
            block = T[f * nc:(f + 1) * nc, g * nc:(g + 1) * nc]
            np.testing.assert_allclose(np.asarray(block.sum(axis=1)).ravel(), 0.0, atol=1e-8 * abs(J).max())
    # the chemotactic coupling of u to v is transport: no stiff 1/h^2 entry is left in R
    assert np.abs(R[0, 1, cells]).max() < 1e-6 * abs(J).max()


def _gmres_iterations(A: sps.spmatrix, b: np.ndarray, solve) -> int:
    iterations: list[float] = []
    spla.gmres(A, b, M=spla.LinearOperator(A.shape, matvec=solve), rtol=1e-8, restart=60, maxiter=1,
               callback=iterations.append, callback_type="pr_norm")
    return len(iterations)


def test_cross_diffusion_is_preconditioned_by_the_field_sweep_as_well_as_by_an_exact_transport_solve():
    system = _keller_segel()
    grid = pf.UniformGrid.from_spec(system.domain, 16)
    bound = pf.compile(system, target="numpy").bind(grid)
    X, Y = grid.mesh()
    u = 1 + 0.5 * np.exp(-20 * ((X - 0.5) ** 2 + (Y - 0.5) ** 2))
    v = 1 + 0.3 * np.exp(-20 * ((X - 0.4) ** 2 + (Y - 0.5) ** 2))  # v's gradient steers u's flux
    y = np.concatenate([u.ravel(), v.ravel()])
    sweep, exact = Preconditioner(bound, "split"), Preconditioner(bound, "split", transport="lu")
    J = bound.jacobian(0.0, y)
    b = np.random.default_rng(2).standard_normal(y.size)
    for g in (1e-3, 1e-2):
        sweep.setup(0.0, y, g)
        exact.setup(0.0, y, g)
        assert sweep.transport_solver == "sweep"
        A = sps.identity(y.size) - g * J
        assert _gmres_iterations(A, b, sweep.solve) <= _gmres_iterations(A, b, exact.solve) + 3


def test_keller_segel_by_bdf_matches_the_direct_solver():
    system = _keller_segel()
    kw = dict(output=pf.Output(save_every=0.5), progress=False)
    a = pf.solve(system, 16, (0, 0.5), KS_IC, method=pf.BDF(rtol=1e-8, atol=1e-10, preconditioner="split"), **kw)
    b = pf.solve(system, 16, (0, 0.5), KS_IC, method=pf.BDF(rtol=1e-8, atol=1e-10, linear_solver="sparse"), **kw)
    assert a.attrs["transport_solver"] == "sweep"
    np.testing.assert_allclose(a.u.isel(t=-1).values, b.u.isel(t=-1).values, rtol=1e-6)
    # the sweep keeps CVODE's steps near the direct solver's (a poor preconditioner multiplies them)
    assert a.attrs["steps"] < 2 * b.attrs["steps"]


def test_clamped_plate_by_default_bdf_takes_the_steps_of_the_direct_solver():
    # no transform diagonalises the clamped biharmonic: the split's transport-only LU left an
    # O(gamma^2 R T) error (R: the walls' large diagonal remainders), and CVODE took 6003 steps at
    # 48^2 against the direct solver's 306; the whole I - gamma J is factorised instead
    n = 48  # above the size where "auto" takes the exact LU preconditioner directly
    system = pf.PDESystem({"u": "-laplace(laplace(u))"}, domain=[(0, 1), (0, 1)],
                          bcs={"u": "dirichlet", "d(u, x)": "dirichlet", "d(u, y)": "dirichlet"})
    grid = pf.UniformGrid([(0, 1), (0, 1)], [n, n])
    X, Y = grid.mesh()
    ic = {"u": (np.sin(np.pi * X) * np.sin(np.pi * Y)) ** 2}
    kw = dict(output=pf.Output(save_every=0.005), progress=False)
    a = pf.solve(system, grid, (0, 0.005), ic, method="bdf", **kw)
    b = pf.solve(system, grid, (0, 0.005), ic, method=pf.BDF(linear_solver="sparse"), **kw)
    assert a.attrs["preconditioner"] == "split" and a.attrs["transport_solver"] == "whole-lu"
    np.testing.assert_allclose(a.u.isel(t=-1).values, b.u.isel(t=-1).values, rtol=1e-4, atol=1e-9)
    assert a.attrs["steps"] < 2 * b.attrs["steps"]

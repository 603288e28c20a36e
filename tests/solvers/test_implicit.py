"""The compiled implicit integrators (CVODE BDF, Rosenbrock 2(3), IMEX SBDF2) against exact
solutions of the semi-discrete equations, across linear solvers and preconditioners."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import pdeforge as pf
from pdeforge.errors import BlowUpWarning, SolverError
from pdeforge.solvers.implicit.cvode import time_breakpoints
from pdeforge.solvers.implicit.preconditioners import Preconditioner

pytest.importorskip("sksundae", reason="scikit-sundae (SUNDIALS) is a dependency: pip install -e .")


def _heat(bcs, dim=1, k=0.1, reaction="0"):
    eq = "k*laplace(u)" + (f" + {reaction}" if reaction != "0" else "")
    domain = [(0.0, 2 * np.pi)] * dim if bcs == "periodic" else [(0.0, 1.0)] * dim
    return pf.PDESystem({"u": eq}, params={"k": k}, domain=domain, bcs=bcs)


def _semi_discrete_exact(system, grid, u0, t):
    """exp(t J) u0 for a linear system: the exact solution of the semi-discrete equations."""
    bound = pf.compile(system, target="numpy").bind(grid)
    J = bound.jacobian(0.0, u0.ravel())
    return spla.expm_multiply(J * t, u0.ravel()).reshape(u0.shape)


def _ic(system, grid):
    mesh = grid.mesh() if grid.dim > 1 else (grid.coordinates[0],)
    if system.domain[0][1] > 3:  # periodic [0, 2 pi]
        u = sum(np.sin(m) + 0.5 * np.cos(2 * m) for m in mesh)
    else:
        u = sum(np.cos(np.pi * m) + m * m for m in mesh)
    return np.asarray(u, dtype=float)


CASES = [
    ("bdf", {}),
    ("bdf", {"preconditioner": "split"}),
    ("bdf", {"preconditioner": "lu"}),
    ("bdf", {"preconditioner": "ilu"}),
    ("bdf", {"preconditioner": "amg"}),
    ("bdf", {"preconditioner": "none"}),
    ("bdf", {"linear_solver": "bicgstab"}),
    ("bdf", {"linear_solver": "sparse"}),
    ("bdf", {"linear_solver": "dense"}),
    ("rosenbrock23", {"linear_solver": "lu"}),
    ("rosenbrock23", {"linear_solver": "gmres"}),
    ("scipy-bdf", {}),
]


@pytest.mark.parametrize("bcs", ["periodic", "neumann", "dirichlet"])
@pytest.mark.parametrize("method,options", CASES, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())) or "default")
def test_implicit_methods_meet_the_exact_semi_discrete_solution(bcs, method, options):
    system = _heat(bcs, dim=2)
    grid = pf.UniformGrid.from_spec(system.domain, 12)
    u0 = _ic(system, grid)
    exact = _semi_discrete_exact(system, grid, u0, 1.0)
    errors = []
    # Rosenbrock 2(3) is the method for moderate tolerances; the BDF routes for tight ones
    rtols = (1e-3, 1e-5) if method == "rosenbrock23" else (1e-4, 1e-6)
    for rtol in rtols:
        ds = pf.solve(system, grid=grid, t_span=(0, 1), ic={"u": u0},
                      method=pf.methods.with_settings(method, rtol=rtol, atol=rtol * 1e-2, **options),
                      output=pf.Output(save_every=0.5), progress=False)
        assert ds.attrs["status"] == "completed"
        errors.append(float(np.abs(ds.u.isel(t=-1).values - exact).max() / np.abs(exact).max()))
    # each tolerance is met (with the usual slack of local error control) and tightening helps
    assert errors[0] < 30 * rtols[0] and errors[1] < 30 * rtols[1], errors
    # the global error falls at least as the square root of the tolerance (error ~ tol^p, p >= 1/2)
    assert errors[1] < errors[0] * (rtols[1] / rtols[0]) ** 0.5, errors


def test_split_preconditioner_uses_the_fast_transforms_where_they_apply():
    # Dirichlet walls leave T the mirror (zero-flux) stencil: the wall term is cell-local, in R
    cases = [(_heat(bcs, dim=2, reaction="-u**2"), expected)
             for bcs, expected in (("periodic", "fft"), ("neumann", "dct"), ("dirichlet", "dct"))]
    cases.append((pf.PDESystem({"u": "div((1 + x)*grad(u)) - u**2"}, domain=[(0, 1), (0, 1)], bcs="neumann"), "whole-lu"))
    for system, expected in cases:
        grid = pf.UniformGrid.from_spec(system.domain, 16)
        bound = pf.compile(system, target="numpy").bind(grid)
        y = (1.0 + _ic(system, grid)).ravel()
        pc = Preconditioner(bound, "split")
        pc.setup(0.0, y, 0.05)
        assert pc.transport_solver == expected
        # (I - gR)(I - gT) is I - gJ up to O(g^2): applied to (I - gJ) v it returns v + O(g^2)
        J = bound.jacobian(0.0, y)
        v = np.random.default_rng(0).standard_normal(y.size)
        for g in (0.05, 0.0125):
            pc.setup(0.0, y, g, jacobian_ok=True)
            residual = np.abs(pc.solve(v - g * (J @ v)) - v).max()
            assert residual < 5 * g * g * (1 + np.abs(J).max()) ** 2


def test_imex_is_second_order_in_dt():
    # u_t = k u_xx - u: the reaction (-u) is explicit, the diffusion implicit
    system = _heat("periodic", dim=1, k=0.5, reaction="-u")
    grid = pf.UniformGrid.from_spec(system.domain, 32)
    u0 = _ic(system, grid)
    exact = _semi_discrete_exact(system, grid, u0, 1.0)
    errs = []
    for dt in (0.1, 0.05, 0.025):
        ds = pf.solve(system, grid=grid, t_span=(0, 1), ic={"u": u0}, method="imex", dt=dt, progress=False, output=pf.Output(save_every=0.5))
        errs.append(float(np.abs(ds.u.isel(t=-1).values - exact).max()))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 2) < 0.2), orders


def test_imex_transform_and_lu_transport_agree():
    system = pf.PDESystem({"u": "0.1*laplace(u) + u*(1 - u)"}, domain=[(0, 1), (0, 1)], bcs="neumann")
    grid = pf.UniformGrid.from_spec(system.domain, 16)
    u0 = 0.5 + 0.4 * np.cos(np.pi * grid.mesh()[0])
    a = pf.solve(system, grid=grid, t_span=(0, 0.5), ic={"u": u0}, method="imex", dt=0.01, progress=False)
    # Dirichlet-free but not diagonalisable when one side is Robin: force the LU path by a Robin side
    system_lu = pf.PDESystem({"u": "0.1*laplace(u) + u*(1 - u)"}, domain=[(0, 1), (0, 1)],
                             bcs={"x": ("neumann", {"robin": (0.0, 1.0, 0.0)}), "y": "neumann"})
    b = pf.solve(system_lu, grid=grid, t_span=(0, 0.5), ic={"u": u0}, method="imex", dt=0.01, progress=False)
    np.testing.assert_allclose(a.u.values, b.u.values, rtol=0, atol=1e-12)


def test_imex_refuses_a_state_dependent_transport():
    system = pf.PDESystem({"u": "div(u**2*grad(u))"}, domain=[(0, 1)], bcs="neumann")
    with pytest.raises(SolverError, match="transport depends on the state"):
        pf.solve(system, grid=16, t_span=(0, 0.1), ic={"u": "1 + x"}, method="imex", dt=0.01, progress=False)


def test_bdf_agrees_with_scipy_on_the_symbolics_rd_model():
    # 768 unknowns would take the exact LU preconditioner by default: ask for the split one
    a = pf.solve("symbolics-rd", grid=16, t_span=(0, 10), method=pf.BDF(rtol=1e-8, atol=1e-10, preconditioner="split"), progress=False, output=pf.Output(save_every=10))
    b = pf.solve("symbolics-rd", grid=16, t_span=(0, 10), method=pf.ScipyBDF(rtol=1e-8, atol=1e-10), progress=False, output=pf.Output(save_every=10))
    for f in ("A", "B", "C"):
        np.testing.assert_allclose(a[f].values, b[f].values, rtol=1e-5, atol=1e-7)
    assert a.attrs["transport_solver"] == "dct"


def test_switches_in_time_are_read_from_the_symbols():
    system = pf.PDESystem({"u": "laplace(u) + 5*Heaviside(t - 1.1)*Heaviside(0.01 - (x - 0.3)**2)",
                           "v": "laplace(v) + Piecewise((1, t < 2.5), (0, True))"},
                          domain=[(0, 1)], bcs="periodic")
    assert time_breakpoints(system, 0.0, 11.5) == pytest.approx([1.1, 2.5])
    assert time_breakpoints(system, 2.0, 11.5) == pytest.approx([2.5])


def test_a_failed_implicit_run_keeps_its_last_good_state_and_says_why():
    # u_t = u^2 + diffusion with u0 = 2 blows up at t = 1/2
    system = pf.PDESystem({"u": "0.01*laplace(u) + u**2"}, domain=[(0, 1)], bcs="periodic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pf.solve(system, grid=8, t_span=(0, 1), ic={"u": 2.0}, method="bdf", progress=False, output=pf.Output(save_every=0.1))
    assert ds.attrs["status"].startswith("blew up")
    assert np.all(np.isfinite(ds.u.values))
    assert ds.t.values[-1] < 0.5 + 1e-9
    messages = [str(w.message) for w in caught if issubclass(w.category, BlowUpWarning)]
    assert len(messages) == 1 and "last finite state" in messages[0]


def test_bad_solver_options_name_the_valid_ones():
    system = _heat("periodic")
    # the method checks its settings when it is made
    with pytest.raises(SolverError, match="BDF: linear_solver 'cholesky' is not valid.*gmres"):
        pf.solve(system, grid=8, t_span=1, ic={"u": "sin(x)"}, method=pf.BDF(linear_solver="cholesky"), progress=False)
    with pytest.raises(SolverError, match="BDF: preconditioner 'jacobi' is not valid.*split"):
        pf.solve(system, grid=8, t_span=1, ic={"u": "sin(x)"}, method=pf.BDF(preconditioner="jacobi"), progress=False)

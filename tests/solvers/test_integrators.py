"""Every time integrator against analytic solutions of the heat equation, with its order observed.

On a periodic grid the mode sin(3x) is an exact eigenvector of the discrete Laplacian, so the
semi-discrete system has the closed-form solution exp(-k lambda_h t) sin(3 x_i) with
lambda_h = (2 - 2 cos 3h)/h^2: measuring against it isolates the time-stepping error. The
PDE's own solution exp(-9 k t) sin(3x) then checks the whole scheme.
"""

import numpy as np
import pytest

import pdeforge as pf

K, T, N = 0.5, 1.0, 16


@pytest.fixture(scope="module")
def heat():
    return pf.PDESystem({"u": "k*laplace(u)"}, params={"k": K}, domain=[(0, 2 * np.pi)], bcs="periodic")


def semi_discrete_exact(x, t):
    h = 2 * np.pi / N
    lam = (2 - 2 * np.cos(3 * h)) / h**2
    return np.exp(-K * lam * t) * np.sin(3 * x)


def final_error(system, method, backend="numba", dt=None, **settings):
    ds = pf.solve(system, grid=N, t_span=(0, T), ic={"u": lambda x: np.sin(3 * x)},
                  method=pf.methods.with_settings(method, **settings), dt=dt, backend=backend,
                  output=pf.Output(save_every=T), progress=False)
    x = ds.x.values
    return np.abs(ds.u[-1].values - semi_discrete_exact(x, T)).max(), ds


@pytest.mark.parametrize("method, order", [("euler", 1), ("ssprk3", 3), ("rk4", 4)])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_fixed_step_order(heat, method, order, backend):
    dts = np.array([0.04, 0.02, 0.01])
    errs = np.array([final_error(heat, method, backend, dt=dt)[0] for dt in dts])
    observed = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(observed - order) < 0.15, (errs, observed)


def test_rk45_meets_its_tolerance_and_tightens(heat):
    e1, ds1 = final_error(heat, "rk45", rtol=1e-5, atol=1e-8)
    e2, ds2 = final_error(heat, "rk45", rtol=1e-8, atol=1e-11)
    assert e1 < 1e-4 and e2 < 1e-7
    assert e2 < e1 / 100
    assert ds2.attrs["steps"] > ds1.attrs["steps"]


def test_bdf_with_exact_jacobian(heat):
    e1, ds1 = final_error(heat, "bdf", rtol=1e-4, atol=1e-7)
    e2, ds2 = final_error(heat, "bdf", rtol=1e-7, atol=1e-10)
    assert e1 < 1e-4 and e2 < 1e-6 and e2 < e1 / 10
    assert ds2.attrs["jacobian_evaluations"] >= 1


@pytest.mark.parametrize("method", ["euler", "ssprk3", "rk4", "rk45", "bdf"])
def test_against_the_pde_solution(method):
    # second order in space: error / h^2 stays bounded as the grid is refined
    system = pf.PDESystem({"u": "k*laplace(u)"}, params={"k": K}, domain=[(0, 2 * np.pi)], bcs="periodic")
    errs = []
    for n in (32, 64):
        dt = 0.2 * (2 * np.pi / n) ** 2 if method in ("euler", "ssprk3", "rk4") else None
        ds = pf.solve(system, grid=n, t_span=(0, T), ic={"u": lambda x: np.sin(3 * x)}, method=pf.methods.with_settings(method, rtol=1e-9, atol=1e-12), dt=dt, progress=False, output=pf.Output(save_every=T))
        errs.append(np.abs(ds.u[-1].values - np.exp(-9 * K * T) * np.sin(3 * ds.x.values)).max())
    assert abs(np.log2(errs[0] / errs[1]) - 2) < 0.15, errs

"""Walls of equations of order three and four with non-zero, time-dependent data.

KdV ``u_t = -d(u, x, 3) - 6 u u_x`` with the soliton ``2 k^2 sech^2(k (x - 4 k^2 t - x0))`` and
its ``u`` and ``u_xx`` given at both walls; ``u_t = -d(u, x, 4) + f`` manufactured, with ``u`` and
``laplace(u)`` (hinged), ``u_n`` and ``d(laplace u)/dn`` (natural) or ``u`` and ``u_x`` (clamped)
from the exact solution.
"""

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.solvers.methods import with_settings

x, t = sp.symbols("x t", real=True)
K, X0 = 0.5, -2.0
SOLITON = 2 * K**2 / sp.cosh(K * (x - 4 * K**2 * t - X0)) ** 2


def _kdv():
    return pf.PDESystem({"u": "-d(u, x, 3) - 6*u*d(u, x)"}, domain=[(-10, 10)],
                        bcs={"u": {"dirichlet": SOLITON}, "laplace(u)": {"dirichlet": sp.diff(SOLITON, x, 2)}})


def _fourth(pair):
    ue = sp.exp(-t) * (sp.cos(2 * x) + x**5) + sp.sin(t) * x
    source = sp.diff(ue, t) + sp.diff(ue, x, 4)
    if pair == "hinged":
        bcs = {"u": {"dirichlet": ue}, "laplace(u)": {"dirichlet": sp.diff(ue, x, 2)}}
    elif pair == "clamped":
        bcs = {"u": {"dirichlet": ue}, "d(u, x)": {"dirichlet": sp.diff(ue, x)}}
    else:  # outward normal derivatives: -d/dx on the low wall, d/dx on the high one
        bcs = {"u": {"x": ({"neumann": -sp.diff(ue, x)}, {"neumann": sp.diff(ue, x)})},
               "laplace(u)": {"x": ({"neumann": -sp.diff(ue, x, 3)}, {"neumann": sp.diff(ue, x, 3)})}}
    return pf.PDESystem({"u": f"-d(u, x, 4) + ({source})"}, domain=[(0, 1)], bcs=bcs), ue


def _errors(system, ue, grids, T, dt_of_h, backend="numpy", method="rk4"):
    exact = sp.lambdify((x, t), ue, "numpy")
    errs = []
    for n in grids:
        grid = pf.UniformGrid.from_spec(system.domain, n)
        if method == "rk4":
            steps = int(np.ceil(T / dt_of_h(grid.spacing[0])))
            method, dt = "rk4", T / steps
        else:
            method, dt = with_settings(method, rtol=1e-10, atol=1e-12), None
        ds = pf.solve(system, grid, (0, T), {"u": lambda X: exact(X, 0.0)}, method=method, dt=dt,
                      backend=backend, progress=False, output=pf.Output(save_every=T))
        errs.append(np.abs(ds.u[-1].values - exact(grid.mesh()[0], T)).max())
    return np.array(errs)


def _order(errs):
    """Observed order: the slope of log(error) against log(1/n) over the grids (each doubling)."""
    return np.polyfit(np.log2(2.0 ** -np.arange(len(errs))), np.log2(errs), 1)[0]


def test_kdv_soliton_with_wall_data_converges_at_second_order():
    errs = _errors(_kdv(), SOLITON, (32, 64, 128), 1.0, lambda h: 0.1 * h**3)
    assert abs(_order(errs) - 2) < 0.15, (errs, _order(errs))


@pytest.mark.parametrize("pair", ["hinged", "natural"])
def test_fourth_order_walls_with_time_dependent_data_converge_at_second_order(pair):
    system, ue = _fourth(pair)
    errs = _errors(system, ue, (12, 24, 48), 5e-5, lambda h: 0.1 * h**4)
    assert abs(_order(errs) - 2) < 0.15, (errs, _order(errs))


def test_clamped_walls_with_time_dependent_data_converge_at_second_order():
    # u and u_x given: the ghost cells follow the cubic through two cells; over a short run the
    # error still grows (order 4 at t = 5e-5), so the order is taken at t = 0.5, with BDF
    system, ue = _fourth("clamped")
    errs = _errors(system, ue, (24, 48, 96), 0.5, None, method="bdf")
    assert abs(_order(errs) - 2) < 0.15, (errs, _order(errs))
    short = _errors(system, ue, (12, 24, 48), 5e-5, lambda h: 0.1 * h**4)
    assert _order(short) > 1.9 and short[-1] < 1e-6, short


def test_clamped_walls_with_zero_data_converge_at_second_order():
    ue = sp.exp(-t) * x**2 * (1 - x) ** 2 * (1 + sp.sin(3 * x))
    source = sp.diff(ue, t) + sp.diff(ue, x, 4)
    system = pf.PDESystem({"u": f"-d(u, x, 4) + ({source})"}, domain=[(0, 1)],
                          bcs={"u": "dirichlet", "d(u, x)": "dirichlet"})
    assert all(bc.clamped and bc.value == 0 and bc.second == 0 for bc in system.bcs[("u", 0)])
    errs = _errors(system, ue, (24, 48, 96), 0.5, None, method="bdf")
    assert abs(_order(errs) - 2) < 0.15, (errs, _order(errs))


@pytest.mark.parametrize("case", ["kdv", "hinged", "natural", "clamped"])
def test_exact_jacobian_matches_finite_differences(case):
    system = _kdv() if case == "kdv" else _fourth(case)[0]
    bound = pf.compile(system, target="numpy").bind(pf.UniformGrid.from_spec(system.domain, 12))
    rng = np.random.default_rng(0)
    y = rng.standard_normal(bound.size)
    tt = 0.3
    J = bound.jacobian(tt, y).toarray()
    eps = 1e-6
    fd = np.column_stack([(bound.rhs(tt, y + eps * e) - bound.rhs(tt, y - eps * e)) / (2 * eps)
                          for e in np.eye(bound.size)])
    assert np.abs(J - fd).max() < 1e-6 * max(1.0, np.abs(fd).max())


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("case", ["kdv", "hinged", "natural", "clamped"])
def test_compiled_backends_equal_numpy(case, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    else:
        pytest.importorskip("numba")
    system, ue = (_kdv(), SOLITON) if case == "kdv" else _fourth(case)
    exact = sp.lambdify((x, t), ue, "numpy")
    runs = {}
    for b in ("numpy", backend):
        T = 0.05 if case == "kdv" else 1e-4
        ds = pf.solve(system, 24, (0, T), {"u": lambda X: exact(X, 0.0)}, method="rk4", dt=T / 500,
                      backend=b, progress=False, output=pf.Output(save_every=T))
        runs[b] = ds.u[-1].values
    assert np.abs(runs[backend] - runs["numpy"]).max() < 1e-11 * max(1.0, np.abs(runs["numpy"]).max())


def test_wall_data_are_the_normal_derivatives_the_closure_reads():
    y = sp.Symbol("y", real=True)
    system = pf.PDESystem({"u": "-laplace(laplace(u))"}, domain=[(0, 1), (0, 1)],
                          bcs={"u": {"dirichlet": "t*y**2"}, "laplace(u)": {"dirichlet": "5*t"}})
    low = system.bcs[("u", 0)][0]
    assert (low.reflect, low.extrapolate) == (-1, False)
    assert sp.simplify(low.second - 3 * t) == 0  # u_xx = laplace(u) - u_yy = 5 t - 2 t
    assert _kdv().bcs[("u", 0)][0].extrapolate

"""Stochastic terms: Euler-Maruyama and Milstein against exact SDE results.

References: the stationary variance of an Ornstein-Uhlenbeck process, the mean of geometric
Brownian motion, and its exact solution driven by the same Brownian path (rebuilt from the
seed, :mod:`pdeforge.solvers.stochastic` documents the draws) for the observed strong order.
Cells are independent samples: with no spatial coupling each cell is one path.
"""

from __future__ import annotations

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.errors import PDEForgeError


def test_ornstein_uhlenbeck_stationary_variance():
    # du = -theta u dt + sigma dW / sqrt(V): stationary variance sigma^2 / (2 theta V)
    n, theta, sigma, length = 2000, 1.0, 0.5, 500.0
    system = pf.PDESystem({"u": "-theta*u"}, params={"theta": theta, "sigma": sigma}, noise={"u": "sigma"},
                          domain=[(0, length)], bcs="periodic")
    ds = pf.solve(system, grid=n, t_span=(0, 25), ic={"u": 0}, dt=0.01, backend="numpy", seed=1, output=pf.Output(save_every=1.0))
    samples = ds.u.sel(t=slice(5, None)).values  # 21 frames, one relaxation time apart
    exact = sigma**2 / (2 * theta * length / n)
    # 42000 samples, correlated over about two frames: relative standard error about 1%
    assert abs(samples.var() / exact - 1) < 0.04, samples.var() / exact
    assert ds.attrs["method"] == "euler" and ds.attrs["seed"] == 1


def _gbm(n=4000):
    # one path per cell: V = 1
    return pf.PDESystem({"u": "mu*u"}, params={"mu": 0.5, "sigma": 0.5}, noise={"u": "sigma*u"},
                        domain=[(0, n)], bcs="periodic")


def test_geometric_brownian_motion_mean():
    n = 4000
    ds = pf.solve(_gbm(n), grid=n, t_span=(0, 1), ic={"u": 1}, dt=1e-3, backend="numpy", seed=2, output=pf.Output(save_every=1.0))
    final = ds.u.isel(t=-1).values
    mean, std_of_mean = np.exp(0.5), np.exp(0.5) * np.sqrt(np.exp(0.25) - 1) / np.sqrt(n)
    assert abs(final.mean() - mean) < 4 * std_of_mean


@pytest.mark.parametrize("method, order", [("euler", 0.5), ("milstein", 1.0)])
def test_strong_order_on_the_same_brownian_path(method, order):
    n, seed = 4000, 7
    steps = [8, 16, 32, 64, 128]
    errors = []
    for k in steps:
        dt = 1.0 / k
        ds = pf.solve(_gbm(n), grid=n, t_span=(0, 1), ic={"u": 1}, method=method, dt=dt, backend="numpy", seed=seed, output=pf.Output(save_every=1.0))
        rng = np.random.default_rng(seed)
        w = np.sqrt(dt) * np.sum([rng.standard_normal((1, n))[0] for _ in range(k)], axis=0)
        exact = np.exp((0.5 - 0.5 * 0.5**2) + 0.5 * w)
        errors.append(np.mean(np.abs(ds.u.isel(t=-1).values - exact)))
    observed = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(observed - order) < 0.1, (errors, observed)


def test_same_seed_same_run_on_every_backend():
    system = pf.PDESystem({"u": "D*laplace(u) - u"}, params={"D": 0.01, "s": 0.3}, noise={"u": "s*(1 + u**2)"},
                          domain=[(0, 1)], bcs="neumann")
    run = dict(grid=24, t_span=(0, 0.2), ic={"u": "cos(pi*x)"}, method="milstein", dt=2e-3, output=pf.Output(save_every=0.1), seed=5)
    ref = pf.solve(system, backend="numpy", **run)
    assert np.max(np.abs(ref.u.values - pf.solve(system, backend="numpy", **run).u.values)) == 0
    assert np.max(np.abs(ref.u.values - pf.solve(system, backend="numba", **run).u.values)) < 1e-12
    if pytest.importorskip("torch"):
        assert np.max(np.abs(ref.u.values - pf.solve(system, backend="torch", **run).u.values)) < 1e-12
    other = pf.solve(system, backend="numpy", **(run | {"seed": 6}))
    assert np.max(np.abs(ref.u.values - other.u.values)) > 1e-3


def test_errors():
    with pytest.raises(PDEForgeError, match=r"noise: 'w' is not a field of this system \(fields: u\)"):
        pf.PDESystem({"u": "-u"}, noise={"w": 1.0})
    noisy = pf.PDESystem({"u": "-u", "v": "-v"}, noise={"u": "v"}, domain=[(0, 1)])
    with pytest.raises(PDEForgeError, match=r"method 'rk4': a system with noise runs with 'euler'"):
        pf.solve(noisy, grid=4, t_span=0.1, ic={"u": 0, "v": 1}, method="rk4", dt=0.01)
    with pytest.raises(PDEForgeError, match=r"'milstein' needs diagonal noise: the noise of 'u' depends on 'v'"):
        pf.solve(noisy, grid=4, t_span=0.1, ic={"u": 0, "v": 1}, method="milstein", dt=0.01, backend="numpy")
    with pytest.raises(PDEForgeError, match=r"has no noise terms"):
        pf.solve(pf.PDESystem({"u": "-u"}), grid=4, t_span=0.1, ic={"u": 0}, dt=0.01, seed=1)
    with pytest.raises(PDEForgeError, match=r"noise of 'u': 'd' is not an allowed function"):
        pf.PDESystem({"u": "-u"}, noise={"u": "d(u, x)"})
    with pytest.raises(PDEForgeError, match=r"noise of 'u': must be a real scalar expression without derivatives"):
        pf.PDESystem({"u": "-u"}, noise={"u": "I*u"})

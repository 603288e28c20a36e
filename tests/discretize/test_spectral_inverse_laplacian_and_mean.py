"""``inv_laplace()`` and ``mean()`` in the spectral language: the 2-D vorticity-streamfunction form."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.discretize.spectral import spectral_discretize

#: 2-D Navier-Stokes in vorticity form, the streamfunction psi = -inv_laplace(w), u = d(psi, y),
#: v = -d(psi, x); plus a linear damping of the mean vorticity, -mean(w)
VORTICITY = "-d(-inv_laplace(w), y)*d(w, x) + d(-inv_laplace(w), x)*d(w, y) + nu*laplace(w) - mean(w)"


def _system(nu: float = 0.1):
    return pf.PDESystem({"w": VORTICITY}, params={"nu": nu}, domain=[(0.0, 2 * math.pi)] * 2, bcs="periodic")


def test_vorticity_form_costs_four_inverse_and_one_forward_transform():
    semi = spectral_discretize(_system())
    assert semi.transform_counts() == {"inverse": 4, "forward": 1}
    text = semi.describe()
    assert "dy(inv_laplace(w))" in text and "mode0" in text


@pytest.mark.parametrize("method,dt", [(None, None), ("rk4", 0.01), ("cnrk4", 0.05)])
def test_taylor_green_vortex_decays_as_the_exact_solution(method, dt):
    # w = 2 A sin x sin y e^(-2 nu t) is an exact solution (its advection vanishes); the constant
    # 0.5 added to it is damped by -mean(w) alone: w_mean = 0.5 e^(-t)
    nu, t_end, n = 0.1, 1.0, 32
    ds = pf.solve(_system(nu), n, (0.0, t_end), {"w": "2*sin(x)*sin(y) + 0.5"}, method=method, dt=dt,
                  discretization="spectral", output=pf.Output(save_every=0.5), progress=False)
    x = (np.arange(n) + 0.5) * 2 * math.pi / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    exact = 2 * np.sin(X) * np.sin(Y) * math.exp(-2 * nu * t_end) + 0.5 * math.exp(-t_end)
    tol = {None: 1e-5, "rk4": 1e-8, "cnrk4": 1e-3}[method]
    assert np.max(np.abs(ds.w.isel(t=-1).values - exact)) < tol


def test_inverse_laplacian_and_mean_of_a_product():
    # w_t = inv_laplace(w * w) - mean(w * w) on sin(x): sin^2 = (1 - cos 2x)/2, so the right-hand side is
    # cos(2x)/8 - 1/2 at t = 0
    s = pf.PDESystem({"w": "inv_laplace(w*w) - mean(w*w)"}, domain=[(0.0, 2 * math.pi)], bcs="periodic")
    from pdeforge.codegen.spectral.compile import spectral_operator

    op = spectral_operator(s, 64, dealias=False)
    x = (np.arange(64) + 0.5) * 2 * math.pi / 64
    rate = op.rhs(np.sin(x)[None, :])[0]
    assert np.max(np.abs(rate - (np.cos(2 * x) / 8 - 0.5))) < 1e-12

"""Inflow through a Dirichlet wall: every finite-volume scheme carries exactly the prescribed state."""

from __future__ import annotations

import pytest

import pdeforge as pf
from pdeforge.discretize.finite_volume import SCHEMES


def _transport(inflow: str) -> pf.PDESystem:
    # u_t = -u_x on [0, 1], u = inflow at x = 0, outflow at x = 1
    return pf.PDESystem({"u": "-d(u, x)"}, domain=[(0, 1)], bcs={"x": ({"dirichlet": inflow}, "neumann")})


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if SCHEMES[s].finite_volume])
def test_inflow_mass_is_exact_for_every_scheme(scheme):
    # before the front reaches x = 1 the mass is the time integral of the inflow flux g(t) = 1 + t:
    # 0.5 + 0.125 at t = 0.5; SSP-RK3 integrates the quadratic flux history exactly
    n = 100
    ds = pf.solve(_transport("1 + t"), n, (0, 0.5), {"u": "0"}, method="ssprk3", dt=0.25 / n,
                  discretization=pf.FiniteDifference(scheme=scheme), backend="numpy")
    mass = float(ds["u"].isel(t=-1).sum()) / n
    assert mass == pytest.approx(0.625, rel=1e-9)


def test_inflow_state_is_the_wall_value_with_a_source_at_the_wall():
    # a source next to the inflow wall: the ghost 2g - u_0 < g must not leak mass out of the domain
    system = pf.PDESystem({"u": "-d(u, x) + 10*Heaviside(0.01 - x)"}, domain=[(0, 1)],
                          bcs={"x": ("dirichlet", "neumann")})
    for backend in ("numpy", "numba"):
        ds = pf.solve(system, 100, (0, 0.5), {"u": "0"}, method="ssprk3", dt=0.002,
                      discretization=pf.FiniteDifference(scheme="fv-upwind1"), backend=backend)
        assert float(ds["u"].isel(t=-1).sum()) / 100 == pytest.approx(0.05, rel=1e-9)

"""After a blow-up the kept state is the last accepted step: a step whose state is not finite or
whose largest value grows more than GROWTH_LIMIT times is rejected (rk45) or ends the run (imex).

u_t = u**2 from u = 1 blows up at t = 1 (exact u = 1/(1 - t))."""

import warnings

import numpy as np
import pdeforge as pf
import pytest
from pdeforge.solvers.stepping import GROWTH_LIMIT, runaway


def _blow_up(method: str, dt: float | None):
    system = pf.PDESystem({"u": "u**2"}, domain=[(0, 1)], bcs="periodic", name="riccati")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pf.solve(system, grid=8, t_span=(0, 2), ic={"u": 1.0}, method=method, dt=dt, backend="numpy")
    assert ds.attrs["status"].startswith("blew up")
    return float(ds.t[-1]), ds.u.values[-1]


def test_rk45_keeps_an_accurate_state_next_to_the_singularity():
    t, u = _blow_up("rk45", None)
    assert np.isfinite(u).all() and np.ptp(u) == 0
    # close to the singularity 1/u is the better measure of the error than u itself
    assert u[0] > 1e6
    assert abs(1.0 / u[0] - (1.0 - t)) < 1e-6


def test_imex_keeps_the_step_before_the_runaway():
    t, u = _blow_up("imex", 0.01)
    assert np.isfinite(u).all()
    assert 0.99 < t < 1.2  # followed the solution to the numerical blow-up, not beyond
    assert 1e3 < u[0] < 1e12  # one more step would multiply it by more than GROWTH_LIMIT


@pytest.mark.parametrize("y, y_new, bad", [
    (1.0, 2.0, False), (1.0, 0.5 * GROWTH_LIMIT, False), (1.0, 2 * GROWTH_LIMIT, True),
    (1.0, np.inf, True), (1.0, np.nan, True), (0.0, 1.0, False),  # from rest: measured by dt*|f| = 1
])
def test_runaway(y, y_new, bad):
    assert runaway(np.array([y]), np.array([10.0]), 0.1, np.array([y_new])) is bad

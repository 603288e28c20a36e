"""The fixed step chosen for accuracy: step doubling at the start against the exact local error."""

from __future__ import annotations

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.errors import SolverError
from pdeforge.solvers.explicit.accuracy import ORDERS, accurate_dt, local_error, rk_step


def _decay():
    system = pf.PDESystem({"u": "-k*u"}, params={"k": 2.0}, domain=[(0, 1)], bcs="periodic")
    bound = pf.compile(system, target="numpy").bind(pf.UniformGrid.from_spec(system.domain, 4))
    return bound, np.ones((1, 4))


@pytest.mark.parametrize("method", sorted(ORDERS))
def test_the_step_meets_the_tolerance_and_the_exact_local_error_agrees(method):
    bound, cells = _decay()
    dt, err = accurate_dt(bound, cells, 0.0, 10.0, method, rtol=1e-6, atol=1e-12, dt_stable=0.5)
    assert 0 < dt < 0.5 and err <= 1.0
    y = cells.ravel()
    exact = np.exp(-2.0 * dt) * y
    true_err = np.abs(rk_step(bound.rhs, method, 0.0, y, dt) - exact).max()
    assert true_err < 3e-6  # the estimate is of the order of the truth
    # and the step is not needlessly small: ten times it would break the tolerance
    assert local_error(bound.rhs, method, 0.0, y, 10 * dt, 1e-6, 1e-12) > 1.0


def test_the_stability_bound_and_the_span_cap_the_step():
    bound, cells = _decay()
    assert accurate_dt(bound, cells, 0.0, 10.0, "rk4", rtol=1.0, atol=1.0, dt_stable=0.1)[0] == 0.1
    assert accurate_dt(bound, cells, 0.0, 0.01, "rk4", rtol=1.0, atol=1.0)[0] == 0.01


def test_unknown_methods_are_refused():
    bound, cells = _decay()
    with pytest.raises(SolverError, match="accurate_dt"):
        accurate_dt(bound, cells, 0.0, 1.0, "rk45")

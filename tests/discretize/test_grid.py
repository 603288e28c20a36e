"""A UniformGrid built directly equals one built from a spec, and a wrong one says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.errors import GridError, SolverError


def test_a_grid_built_from_lists_equals_the_grid_from_spec_and_runs():
    direct = pf.UniformGrid([(0, 1), (0, 2)], [8, np.int64(6)])
    spec = pf.UniformGrid.from_spec([(0.0, 1.0), (0.0, 2.0)], (8, 6))
    assert direct == spec and hash(direct) == hash(spec)
    assert direct.domain == ((0.0, 1.0), (0.0, 2.0)) and direct.shape == (8, 6)
    system = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1), (0, 2)], bcs="periodic")
    ds = pf.solve(system, direct, (0, 0.01), {"u": "sin(2*pi*x)"}, progress=False)
    assert ds.u.shape[1:] == (8, 6)


def test_a_grid_on_another_domain_is_refused_naming_both_domains():
    system = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs="periodic")
    with pytest.raises(SolverError, match=r"\(\(0\.0, 2\.0\),\) differs from the system's \(\(0\.0, 1\.0\),\)"):
        pf.solve(system, pf.UniformGrid([(0, 2)], [8]), (0, 0.01), {"u": "sin(2*pi*x)"}, progress=False)


@pytest.mark.parametrize("domain, shape, match", [
    ([(0, 1), (0, 1)], [8], "1 axes but the domain has 2"),
    ([(0, "a")], [8], "one \\(low, high\\) pair"),
    ([(0, 1)], ["n"], "one int per axis"),
])
def test_malformed_grids_are_refused(domain, shape, match):
    with pytest.raises(GridError, match=match):
        pf.UniformGrid(domain, shape)

"""A misspelt condition name inside a (low, high) pair is reported as a misspelt name."""

from __future__ import annotations

import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.errors import BoundaryConditionError


@pytest.mark.parametrize("pair, typo, meant", [(("dirichlet", "neuman"), "neuman", "neumann"),
                                               (("neumann", "dirichet"), "dirichet", "dirichlet"),
                                               (("zero-flux", "periodc"), "periodc", "periodic")])
def test_misspelt_second_condition_is_named(pair, typo, meant):
    with pytest.raises(BoundaryConditionError, match=f"unknown condition '{typo}'.*did you mean '{meant}'"):
        pf.PDESystem({"u": "d(u, x, 2)"}, domain=[(0, 1)], bcs={"x": pair})


def test_a_dirichlet_value_pair_still_reads_as_kind_and_value():
    system = pf.PDESystem({"u": "d(u, x, 2)"}, domain=[(0, 1)], bcs={"x": ("dirichlet", "sin(t)")})
    low, high = system.bcs[("u", 0)]
    assert low.kind == high.kind == "dirichlet" and str(low.value) == "sin(t)"


def test_bare_coordinates_are_vector_components():
    system = pf.PDESystem({"c": "-div(vec(x, y)*c)"}, domain=[(-1, 1), (-1, 1)], bcs="dirichlet")
    assert system.rhs["c"].has(sp.Derivative)

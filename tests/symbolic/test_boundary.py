"""Boundary-condition specifications in every accepted form, and their errors."""

import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.errors import BoundaryConditionError


def make(bcs, dim=2, fields=("u",)):
    eqs = {f: f"laplace({f})" for f in fields}
    return pf.PDESystem(eqs, params={"g0": 2.0}, domain=[(0, 1)] * dim, bcs=bcs)


def test_forms():
    s = make({"x": "periodic", "y": ({"dirichlet": "sin(t)*x"}, {"robin": (1, "g0", 3)})})
    lo, hi = s.bcs[("u", 0)]
    assert lo.periodic and hi.periodic
    lo, hi = s.bcs[("u", 1)]
    x, t = s.coords[0], s.t
    assert lo.kind == "dirichlet" and lo.value == sp.sin(t) * x
    assert hi.kind == "robin" and hi.alpha == 1 and hi.beta == s.param_symbols["g0"] and hi.value == 3
    s = make("zero-flux")
    assert all(b.kind == "neumann" and b.value == 0 for pair in s.bcs.values() for b in pair)
    s = make({"x": ("dirichlet", "neumann"), "y": {"low": "neumann", "high": ("dirichlet", 1.5)}})
    assert [b.kind for b in s.bcs[("u", 0)]] == ["dirichlet", "neumann"]
    assert s.bcs[("u", 1)][1].value == 1.5


def test_per_field():
    s = make({"u": "periodic", "*": "neumann"}, fields=("u", "v"))
    assert s.bcs[("u", 0)][0].periodic and s.bcs[("v", 1)][0].kind == "neumann"


@pytest.mark.parametrize(
    "bcs, message",
    [
        ("slippery", "unknown condition 'slippery'"),
        ({"q": "periodic"}, "not an axis"),
        ({"x": "periodic"}, "missing"),
        ({"x": ("periodic", "neumann"), "y": "periodic"}, "both sides"),
        ({"x": {"dirichlet": "u"}, "y": "periodic"}, r"not on \['u'\] outside integral"),
        ({"x": {"robin": (0, 0, 1)}, "y": "periodic"}, "alpha = beta = 0"),
        ({"x": {"robin": (1, 2)}, "y": "periodic"}, "robin takes"),
        (None, "no boundary conditions"),
    ],
)
def test_errors(bcs, message):
    with pytest.raises((BoundaryConditionError, pf.errors.EquationParseError), match=message):
        make(bcs)

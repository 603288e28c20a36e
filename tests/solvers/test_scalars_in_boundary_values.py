"""Scalars and integrals in boundary values (Dirichlet, Neumann, Robin), with the exact Jacobian.

u = exp(-t) cos(x) solves u_t = u_xx; S' = -S from S(0) = 1 gives S = exp(-t), so every wall
value below is the exact one: u(0) = S on [0, pi]; -u_x(pi/2) = ... written with S; and on
[0, pi/2] the inflow u(0) = integral(u) (the integral of exp(-t) cos(x) over [0, pi/2] is
exp(-t)), the form of an age-structured model's birth condition.
"""

import numpy as np
import pdeforge as pf
import pytest
from pdeforge.discretize.grid import grid_of
from pdeforge.errors import BoundaryConditionError

HALF = np.pi / 2
CASES = {
    "dirichlet": (np.pi, ({"dirichlet": "S"}, "neumann")),
    "neumann": (HALF, ("neumann", {"neumann": "-S"})),  # du/dn = u_x(pi/2) = -exp(-t)
    "robin": (HALF, ({"robin": (2, 1, "2*S")}, {"robin": (1, 3, "-3*S")})),
    "integral": (HALF, ({"dirichlet": "integral(u)"}, "dirichlet")),
}


def _system(case: str) -> pf.PDESystem:
    length, bc = CASES[case]
    if case == "integral":
        return pf.PDESystem({"u": "laplace(u)"}, domain=[(0, length)], bcs={"x": bc}, name=case)
    return pf.PDESystem({"u": "laplace(u)", "S": "-S"}, domain=[(0, length)], bcs={"x": bc}, scalars=("S",),
                        name=case)


def _ic(case: str) -> dict:
    return {"u": "cos(x)"} if case == "integral" else {"u": "cos(x)", "S": 1.0}


@pytest.mark.parametrize("case", list(CASES))
def test_second_order_with_the_implicit_method(case):
    system = _system(case)
    errors = []
    for n in (16, 32):
        ds = pf.solve(system, grid=n, t_span=(0, 0.5), ic=_ic(case), method="bdf", backend="numpy")
        errors.append(float(np.max(np.abs(ds.u.values[-1] - np.exp(-0.5) * np.cos(ds.x.values)))))
    assert 1.8 < np.log2(errors[0] / errors[1]) < 2.2, errors
    assert errors[-1] < 1e-3


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("case", ["dirichlet", "integral"])
def test_compiled_targets(case, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    ds = pf.solve(_system(case), grid=16, t_span=(0, 0.2), ic=_ic(case), method="rk4", dt=1e-4, backend=backend)
    ref = pf.solve(_system(case), grid=16, t_span=(0, 0.2), ic=_ic(case), method="rk4", dt=1e-4, backend="numpy")
    np.testing.assert_allclose(ds.u.values[-1], ref.u.values[-1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_exact_jacobian_includes_the_boundary(case):
    system = _system(case)
    bound = pf.compile(system, target="numpy").bind(grid_of(system, 9))
    x = np.asarray(bound.fields_bound.coords[0])
    cells = 1 + 0.3 * np.cos(2 * x)
    y = cells if case == "integral" else np.concatenate([cells, [0.8]])
    J = bound.jacobian(0.4, y).toarray()
    eps = 1e-6
    fd = np.column_stack([(bound.rhs(0.4, y + eps * e) - bound.rhs(0.4, y - eps * e)) / (2 * eps)
                          for e in np.eye(y.size)])
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    if case != "integral":
        assert np.abs(J[:-1, -1]).max() > 1.0  # the walls' dependence on S is there


def test_coefficients_may_not_read_scalars():
    with pytest.raises(BoundaryConditionError, match="alpha and beta may depend on t and parameters only"):
        pf.PDESystem({"u": "laplace(u)", "S": "-S"}, domain=[(0, 1)], bcs={"x": {"robin": ("S", 1, 0)}},
                     scalars=("S",))


def test_fields_outside_a_reduction_are_refused():
    with pytest.raises(BoundaryConditionError, match="outside integral"):
        pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs={"x": {"dirichlet": "u"}})

"""Walls of fourth-order equations: the closing pairs, mass conservation, convergence, py-pde.

Manufactured solutions ``u = b + exp(-t) prod G(x_i)`` with ``G = cos(pi x) + 8 x^4 (1-x)^4``
satisfy the natural pair ``u_n = 0, (laplace u)_n = 0`` on the walls of [0, 1]^d (the x^4 part
keeps the fifth derivative nonzero, so the even reflection is not exact); the hinged pair
``u = laplace(u) = 0`` uses ``G = sin(pi x) + 8 x^4 (1-x)^4 (x - 1/2)``.
"""

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.errors import BoundaryConditionError
from pdeforge.symbolic.system import coordinate_symbols

CH = "laplace(c**3 - c - laplace(c))"


def _observed_order(dim, eq, op, grids, bcs="neumann", hinged=False, T=5e-5):
    xs = coordinate_symbols(dim)
    t = sp.Symbol("t", real=True)
    if hinged:
        G = lambda c: sp.sin(sp.pi * c) + 8 * c**4 * (1 - c) ** 4 * (c - sp.Rational(1, 2))  # noqa: E731
    else:
        G = lambda c: sp.cos(sp.pi * c) + 8 * c**4 * (1 - c) ** 4  # noqa: E731
    ue = (0 if hinged else 1) + sp.exp(-t) * sp.Mul(*[G(c) for c in xs])
    source = sp.simplify(sp.diff(ue, t) - op(ue, xs))
    system = pf.PDESystem({"u": f"{eq} + ({source})"}, domain=[(0, 1)] * dim, bcs=bcs)
    exact = sp.lambdify((*xs, t), ue, "numpy")
    errs = []
    for n in grids:
        grid = pf.UniformGrid.from_spec(system.domain, n)
        ds = pf.solve(system, grid=grid, t_span=(0, T), ic={"u": lambda *X: exact(*X, 0.0)}, method="rk4", backend="numpy", progress=False, output=pf.Output(save_every=T))
        errs.append(np.abs(ds.u[-1].values - exact(*grid.mesh(), T)).max())
    return np.polyfit(np.log(1.0 / np.array(grids)), np.log(errs), 1)[0], errs


def _d4(u, xs):
    return -sp.diff(u, xs[0], 4)


@pytest.mark.parametrize("case", ["d4", "kuramoto-sivashinsky", "hinged"])
def test_fourth_order_walls_converge_at_second_order_1d(case):
    if case == "d4":
        order, errs = _observed_order(1, "-d(u, x, 4)", _d4, (12, 24, 48))
    elif case == "hinged":
        order, errs = _observed_order(1, "-d(u, x, 4)", _d4, (12, 24, 48), hinged=True,
                                      bcs={"u": "dirichlet", "laplace(u)": "dirichlet"})
    else:
        op = lambda u, xs: -sp.diff(u, xs[0], 2) - sp.diff(u, xs[0], 4) - u * sp.diff(u, xs[0])  # noqa: E731
        order, errs = _observed_order(1, "-d(u, x, 2) - d(u, x, 4) - u*d(u, x)", op, (12, 24, 48))
    assert abs(order - 2) < 0.1, (order, errs)


def test_biharmonic_walls_converge_at_second_order_2d():
    op = lambda u, xs: -sum(sp.diff(sp.diff(u, a, 2), b, 2) for a in xs for b in xs)  # noqa: E731
    order, errs = _observed_order(2, "-laplace(laplace(u))", op, (12, 16, 24))
    assert abs(order - 2) < 0.1, (order, errs)


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("dim", [1, 2])
def test_cahn_hilliard_conserves_mass_to_round_off(dim, order):
    system = pf.PDESystem({"c": CH}, domain=[(0, 20)] * dim, bcs="neumann")
    n = 32 if dim == 1 else 16
    c0 = 0.1 * np.random.default_rng(0).standard_normal((n,) * dim)
    ds = pf.solve(system, grid=n, t_span=(0, 2), ic={"c": c0}, method="rk4", backend="numpy", progress=False, discretization=pf.FiniteDifference(order=order), output=pf.Output(save_every=1))
    mean = ds.c.mean(dim=list(system.axes)).values
    assert np.abs(ds.c[-1].values - c0).max() > 0.05  # it evolved, it did not freeze
    assert np.abs(mean - c0.mean()).max() < 1e-14


def test_named_chemical_potential_is_the_default_pair():
    default = pf.PDESystem({"c": CH}, domain=[(0, 1)], bcs="neumann")
    stated = pf.PDESystem({"c": CH}, domain=[(0, 1)], bcs={"c": "neumann", "c**3 - c - laplace(c)": "neumann"})
    assert default.bcs == stated.bcs
    assert all(bc.reflect == 1 for pair in stated.bcs.values() for bc in pair)
    assert default.structure_key() != pf.PDESystem({"c": "laplace(c)"}, domain=[(0, 1)], bcs="neumann").structure_key()


def test_cahn_hilliard_matches_py_pde():
    pde = pytest.importorskip("pde")
    for dim, n in ((1, 32), (2, 12)):
        c0 = 0.1 * np.random.default_rng(1).standard_normal((n,) * dim)
        grid = pde.CartesianGrid([(0, 20)] * dim, n)
        eq = pde.CahnHilliardPDE(bc_c={"derivative": 0}, bc_mu={"derivative": 0})
        ref = eq.solve(pde.ScalarField(grid, c0.copy()), t_range=0.5, dt=1e-3, solver="euler", adaptive=False,
                       tracker=None, backend="numpy")
        system = pf.PDESystem({"c": CH}, domain=[(0, 20)] * dim, bcs="neumann")
        ds = pf.solve(system, grid=n, t_span=(0, 0.5), ic={"c": c0}, method="euler", dt=1e-3, backend="numpy", progress=False, output=pf.Output(save_every=0.5))
        assert np.abs(ds.c[-1].values - ref.data).max() < 1e-13 * max(1.0, np.abs(ref.data).max())


@pytest.mark.parametrize("bcs, message", [
    ("dirichlet", "needs two per wall"),
    ({"u": "neumann", "laplace(u)": "dirichlet"}, "does not close"),
    ({"u": {"robin": (1, 1, 0)}}, "dirichlet or neumann pair"),
    ({"u": "neumann", "u*d(u, x)": "neumann"}, "k*laplace(u) + R(u)"),
    ({"u": "neumann", "laplace(": "neumann"}, "nor an expression"),
    ({"u": "neumann", "d(u, x)": "dirichlet"}, "the clamped pair is u dirichlet with d(u, x) dirichlet"),
    ({"u": "dirichlet", "d(u, x)": "neumann"}, "the clamped pair is u dirichlet with d(u, x) dirichlet"),
])
def test_conditions_that_do_not_close_get_one_clear_error(bcs, message):
    with pytest.raises(BoundaryConditionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
                       .replace("+", r"\+")):
        pf.PDESystem({"u": "-d(u, x, 4)"}, domain=[(0, 1)], bcs=bcs)


def test_second_condition_on_a_second_order_equation_is_refused():
    with pytest.raises(BoundaryConditionError, match="drop the condition"):
        pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs={"u": "neumann", "laplace(u)": "neumann"})


def test_clamped_pair_on_an_equation_of_odd_order_is_refused():
    with pytest.raises(BoundaryConditionError, match="even order along the normal"):
        pf.PDESystem({"u": "-d(u, x, 3)"}, domain=[(0, 1)], bcs={"u": "dirichlet", "d(u, x)": "dirichlet"})


def test_clamped_plate_takes_the_slope_of_each_axis_on_its_own_walls():
    bcs = {"u": "dirichlet", "d(u, x)": {"dirichlet": "t"}, "d(u, y)": {"y": ("dirichlet", {"dirichlet": 2})}}
    system = pf.PDESystem({"u": "-laplace(laplace(u))"}, domain=[(0, 1), (0, 1)], bcs=bcs)
    (xl, xh), (yl, yh) = system.bcs[("u", 0)], system.bcs[("u", 1)]
    assert all(bc.clamped for bc in (xl, xh, yl, yh))
    assert (xl.second, xh.second, yl.second, yh.second) == (-sp.Symbol("t", real=True), sp.Symbol("t", real=True), 0, 2)
    with pytest.raises(BoundaryConditionError, match="needs two per wall"):
        pf.PDESystem({"u": "-laplace(laplace(u))"}, domain=[(0, 1), (0, 1)],
                     bcs={"u": "dirichlet", "d(u, x)": "dirichlet"})

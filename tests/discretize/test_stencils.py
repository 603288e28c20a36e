"""The generated stencils themselves: coefficients, flux form, closures, point classes, op counts."""

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.simplify.rewrite import simplify
from pdeforge.discretize.closure import ghost_closure, ghost_weights
from pdeforge.discretize.semidiscrete import discretize


def sym(semi, field, *offset):
    return semi.symbols.get(semi.fields.index(field), offset)


def test_second_order_laplacian_is_five_point():
    s = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1), (0, 1)], bcs="periodic")
    semi = discretize(s)
    hx, hy = semi.spacing
    u = lambda i, j: sym(semi, "u", i, j)  # noqa: E731
    expected = (u(1, 0) - 2 * u(0, 0) + u(-1, 0)) / hx**2 + (u(0, 1) - 2 * u(0, 0) + u(0, -1)) / hy**2
    assert sp.simplify(semi.rhs[0] - expected) == 0
    assert semi.ghost == (1, 1)


def test_fourth_order_weights():
    s = pf.PDESystem({"u": "d(u, x, 2) + d(u, x)"}, domain=[(0, 1)], bcs="periodic")
    semi = discretize(s, order=4)
    (h,) = semi.spacing
    u = lambda i: sym(semi, "u", i)  # noqa: E731
    second = (-u(2) + 16 * u(1) - 30 * u(0) + 16 * u(-1) - u(-2)) / (12 * h**2)
    first = (-u(2) + 8 * u(1) - 8 * u(-1) + u(-2)) / (12 * h)
    assert sp.simplify(semi.rhs[0] - second - first) == 0
    assert semi.ghost == (2,)


def test_divergence_form_is_a_face_flux_difference():
    # c(u) u_x with c = u**2 integrates to the Kirchhoff potential K = u**3/3: the face flux
    # is (K(u_i+1) - K(u_i))/h, the exact mean of c between the two states
    s = pf.PDESystem({"u": "div(u**2*grad(u))"}, domain=[(0, 1)], bcs="neumann")
    semi = discretize(s)
    (h,) = semi.spacing
    u = lambda i: sym(semi, "u", i)  # noqa: E731
    face = lambda a, b: (b**3 - a**3) / (3 * h)  # noqa: E731
    expected = (face(u(0), u(1)) - face(u(-1), u(0))) / h
    assert sp.simplify(semi.rhs[0] - expected) == 0
    # a coefficient SymPy cannot integrate without conditions (u**m) is averaged from the cells
    s = pf.PDESystem({"u": "div(u**m*grad(u))"}, params={"m": 2.5}, domain=[(0, 1)], bcs="neumann")
    semi = discretize(s)
    m = s.param_symbols["m"]
    face = lambda a, b: (a**m + b**m) / 2 * (b - a) / h  # noqa: E731
    expected = (face(u(0), u(1)) - face(u(-1), u(0))) / h
    assert sp.simplify(semi.rhs[0] - expected) == 0


def test_ghost_closures_are_the_classic_ones():
    h = sp.Symbol("h", positive=True)
    A, B = ghost_closure(1, 0, h, 1, 1)
    assert A == ((-1,),) and B == (2,)  # u_ghost = 2 g - u_0
    A, B = ghost_closure(0, 1, h, 1, 1)
    assert A == ((1,),) and B == (h,)  # u_ghost = u_0 + h du/dn
    for alpha, beta, m, layers in ((1.0, 0.0, 4, 2), (0.0, 1.0, 4, 3), (2.0, 0.5, 1, 1), (2.0, 0.5, 4, 2)):
        An, Bn = ghost_weights(alpha, beta, 0.1, m, layers)
        As, Bs = ghost_closure(sp.Float(alpha), sp.Float(beta), sp.Float(0.1), m, layers)
        np.testing.assert_allclose(An, np.array(As, dtype=float), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Bn, np.array(Bs, dtype=float), rtol=1e-12, atol=1e-12)


def test_closures_are_exact_for_polynomials_of_their_degree():
    # degree-4 closure: ghost values of any quartic satisfying the BC are exact
    rng = np.random.default_rng(0)
    c = rng.standard_normal(5)
    q = np.polynomial.Polynomial(c)
    h, alpha, beta = 0.3, 1.5, 0.7
    g = alpha * q(0.0) - beta * q.deriv()(0.0)
    A, B = ghost_weights(alpha, beta, h, 4, 2)
    cells = q((np.arange(4) + 0.5) * h)
    for layer in (1, 2):
        assert abs(A[layer - 1] @ cells + B[layer - 1] * g - q(-(layer - 0.5) * h)) < 1e-12


def test_point_classes_substitute_closures():
    s = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs={"x": ({"dirichlet": "t"}, "neumann")})
    classes = discretize(s).point_classes()
    assert set(classes) == {("low+0",), ("interior",), ("high-0",)}
    semi = discretize(s)
    (h,) = semi.spacing
    u = lambda i: sym(semi, "u", i)  # noqa: E731
    g = sp.Symbol("g_u_x_low")
    # ghost 2g - u0: (u1 - 2u0 + 2g - u0)/h^2
    assert sp.simplify(classes[("low+0",)][0] - (u(1) - 3 * u(0) + 2 * g) / h**2) == 0
    # zero-flux mirror: (u0 + u-1 ... ) -> (u(-1) - u(0))/h^2 at the high end
    assert sp.simplify(classes[("high-0",)][0] - (u(-1) - u(0) + h * sp.Symbol("g_u_x_high")) / h**2) == 0


def test_simplifier_reduces_operations_and_reports_them():
    s = pf.PDESystem(
        {"u": "Du*laplace(u) - u*v**2 + F*(1 - u)", "v": "Dv*laplace(v) + u*v**2 - (F + k)*v"},
        params={"Du": 2e-5, "Dv": 1e-5, "F": 0.04, "k": 0.06}, domain=[(0, 1), (0, 1)], bcs="periodic")
    semi = simplify(discretize(s))
    rep = semi.simplification
    for f in ("u", "v"):
        assert rep["fields"][f]["ops_per_cell"] < rep["fields"][f]["ops_per_cell_raw"]
    # u*v**2 is shared by both equations: CSE must find it
    assert rep["ops_per_cell_cse"] < rep["ops_per_cell_before_cse"]


def test_jacobian_entries_match_the_stencil():
    s = pf.PDESystem({"u": "laplace(u) - u*v", "v": "u"}, domain=[(0, 1)], bcs="periodic")
    entries = {(f, g, off) for f, g, off, _ in discretize(s).jacobian_entries()}
    assert entries == {(0, 0, (-1,)), (0, 0, (0,)), (0, 0, (1,)), (0, 1, (0,)), (1, 0, (0,))}


@pytest.mark.parametrize("order, reach", [(2, 1), (4, 3)])
def test_ghost_width_follows_the_stencil_reach(order, reach):
    s = pf.PDESystem({"u": "div(exp(u)*grad(u))"}, domain=[(0, 1)], bcs="neumann")
    assert discretize(s, order).ghost == (reach,)

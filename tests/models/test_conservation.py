"""Conservation laws from the symbols, quadrature weights, and ProbConserv's G u = b."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.models.conservation import (
    conservation_law,
    constraint,
    discrete_boundary_flux,
    quadrature_weights,
)
from pdeforge.errors import NotConservativeError, PDEForgeError, SystemDefinitionError
from pdeforge.models import get_model


def _flux(law, axis=0):
    """The flux with fields as plain symbols and u_x as ``ux``, for comparisons."""
    F = law.flux[axis]
    F = F.xreplace({d: sp.Symbol("ux") for d in F.atoms(sp.Derivative)})
    plain = {fn: sp.Symbol(name, real=True) for name, fn in law.system.field_functions.items()}
    return sp.simplify(F.xreplace(plain))


# --------------------------------------------------------------------------------------------
# the law


def test_fluxes_of_the_catalogue_models():
    u, x = sp.Symbol("u", real=True), sp.Symbol("x", real=True)
    k, m, a, p = (sp.Symbol(n, real=True) for n in ("k", "m", "a", "p_star"))
    cases = {
        "heat": -k * sp.Symbol("ux"),
        "advection": a * u,
        "burgers": u**2 / 2,
    }
    for name, expected in cases.items():
        law = conservation_law(name)
        assert law.field == "u" and law.density == law.system.field_functions["u"]
        got = _flux(law)
        assert sp.simplify(got - expected) == 0, (name, got)
    pme = conservation_law("porous-medium")
    assert pme.advective_flux(0) == 0 and pme.diffusive_flux(0) == pme.flux[0]
    assert "Max(0, u)**m" in pme.describe()
    st = conservation_law(get_model("stefan"))
    assert st.flux[0].has(sp.Piecewise)
    assert conservation_law("burgers").advective_flux(0) != 0


def test_exact_derivatives_not_written_as_one_are_recognised():
    # u u_x = (u^2/2)_x and u^2 u_x + u_xxx = (u^3/3 + u_xx)_x: the Euler operator vanishes
    law = conservation_law(pf.PDESystem({"u": "-u*d(u, x)"}))
    u = law.system.field_functions["u"]
    assert sp.simplify(law.flux[0] - u**2 / 2) == 0
    law = conservation_law(pf.PDESystem({"u": "-u**2*d(u, x) - d(u, x, 3)"}))
    x = law.system.coords[0]
    assert sp.simplify(law.flux[0] - (u**3 / 3 + sp.Derivative(u, (x, 2)))) == 0


def test_multidimensional_and_multifield_laws():
    s = pf.PDESystem({"u": "laplace(u)", "v": "div(u*grad(v)) - d(v*u, y)"}, domain=[(0, 1), (0, 2)])
    law = conservation_law(s, field="v")
    u, v = s.field_functions["u"], s.field_functions["v"]
    x, y = s.coords
    assert sp.simplify(law.flux[0] + u * sp.Derivative(v, x)) == 0
    assert sp.simplify(law.flux[1] - (-u * sp.Derivative(v, y) + v * u)) == 0
    with pytest.raises(SystemDefinitionError, match="say which one is conserved"):
        conservation_law(s)


@pytest.mark.parametrize(
    "rhs, words",
    [
        ("laplace(u) + r*u*(1 - u)", ["u*(1 - u)", "source (reaction) term"]),
        ("-x*d(u, x)", ["x*Derivative(u, x)", "coefficient x outside the derivative"]),
        ("laplace(u) + sin(x)", ["sin(x)", "source term"]),
        ("-u*d(u, x)*x", ["depends on the coordinates"]),
    ],
)
def test_not_conservative_systems_say_which_term(rhs, words):
    params = {"r": 1.0} if "r*" in rhs else {}
    with pytest.raises(NotConservativeError) as info:
        conservation_law(pf.PDESystem({"u": rhs}, params=params))
    message = str(info.value)
    assert "not in conservation form" in message
    for w in words:
        assert w in message
    with pytest.raises(NotConservativeError):
        constraint(pf.PDESystem({"u": rhs}, params=params), 16, [0.0], ic={"u": "1"})


def test_fisher_kpp_is_reported_not_conservative():
    with pytest.raises(NotConservativeError, match="reaction"):
        conservation_law("fisher-kpp")


# --------------------------------------------------------------------------------------------
# quadrature


def test_quadrature_weights():
    x = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(quadrature_weights(x, (0, 1)), np.trapezoid(np.eye(11), x, axis=1), rtol=1e-14)
    # on nodes, the cell sum and the trapezoid rule coincide
    np.testing.assert_allclose(quadrature_weights(x, (0, 1), "midpoint"), quadrature_weights(x, (0, 1)), rtol=1e-14)
    g = pf.UniformGrid.from_spec([(0.0, 2.0)], 8)
    c = g.coordinates[0]
    np.testing.assert_allclose(quadrature_weights(c, (0, 2), "cell"), 0.25, rtol=1e-14)
    w = quadrature_weights(c, (0, 2))
    np.testing.assert_allclose(w[:2] / 0.25, [9 / 8, 7 / 8])
    np.testing.assert_allclose(quadrature_weights(c, (0, 2), periodic=True), 0.25, rtol=1e-14)
    for rule in ("trapezoid", "midpoint"):
        assert quadrature_weights(c, (0, 2), rule) @ (3 * c - 1) == pytest.approx(4.0, rel=1e-14)  # exact on lines
    # second order on a smooth function, on an irregular point set
    errs = []
    for n in (20, 40, 80):
        pts = np.linspace(0.01, 0.98, n) + 0.3 / n * np.sin(np.arange(n))
        errs.append(abs(quadrature_weights(pts, (0, 1)) @ np.exp(pts) - (np.e - 1)))
    assert np.log2(errs[0] / errs[1]) > 1.8 and np.log2(errs[1] / errs[2]) > 1.8
    with pytest.raises(PDEForgeError, match="rule"):
        quadrature_weights(x, (0, 1), "simpson")
    with pytest.raises(PDEForgeError, match="outside"):
        quadrature_weights(x + 0.5, (0, 1))


# --------------------------------------------------------------------------------------------
# the constraint


@pytest.mark.parametrize("name", ["heat", "porous-medium", "stefan", "advection", "burgers"])
def test_exact_solution_satisfies_the_constraint_to_quadrature_accuracy(name):
    model = get_model(name)
    (lo, hi), = model.domain
    times = np.linspace(0.0, model.t_end, 6)
    gaps = []
    for n in (101, 401, 1601):
        x = np.linspace(lo, hi, n)
        G, b = constraint(name, x, times)
        assert G.shape == (6, 6 * n) and b.shape == (6,)
        np.testing.assert_allclose(b, model.exact_mass(times))
        U = np.stack([model.exact_solution(t, x)["u"] for t in times])
        gaps.append(np.abs(G @ U.ravel() - b).max())
    print(f"\n{name}: max |G u_exact - b| on 101/401/1601 nodes: {[f'{g:.2e}' for g in gaps]}")
    if name == "heat":
        assert max(gaps) < 1e-13  # periodic trapezoid rule on sin x: exact
    else:
        # jumps and cusps: first order at least (trapezoid on a jump errs by dx * jump / 2)
        assert gaps[2] < gaps[0] / 12 and gaps[2] < 2e-3


def test_numerical_solution_meets_the_midpoint_constraint_to_round_off():
    # the cell sum is the finite-volume mass: with inflow of constant state and no outflow yet
    # (advection, Burgers) or a periodic domain (heat) the scheme reproduces U(t) exactly
    for name, t_end in [("advection", 0.1), ("burgers", 1.5), ("heat", 0.5)]:
        model = get_model(name)
        ds = pf.solve(name, grid=64, t_span=t_end, backend="numpy", progress=False, output=pf.Output(save_every=t_end / 5))
        con = constraint(name, pf.UniformGrid.from_spec(model.domain, 64), ds.t.values, rule="midpoint")
        residual = con.residual(ds.u.values)
        assert np.abs(residual).max() < 1e-13 * max(1.0, np.abs(con.b).max()), (name, residual)
        G, b = con
        assert np.abs(G @ ds.u.values.ravel() - b).max() < 1e-13 * max(1.0, np.abs(b).max())
    # the trapezoid rule on cell centres is not the FV mass on a bounded axis
    model = get_model("burgers")
    trap = constraint("burgers", pf.UniformGrid.from_spec(model.domain, 64), ds.t.values[:1])
    assert not np.allclose(trap.weights, 2.0 / 64)


def test_b_from_the_boundary_conditions():
    # Neumann inflow du/dn = t on the left of a heat equation: U(t) = U(0) + t^2/2
    s = pf.PDESystem({"u": "laplace(u)"}, bcs={"x": ({"neumann": "t"}, "neumann")})
    con = constraint(s, 64, [0.0, 0.1, 0.4], ic={"u": "1"})
    assert con.source == "boundary conditions"
    np.testing.assert_allclose(con.b, [1.0, 1.005, 1.08], rtol=1e-12)
    # Burgers between two Dirichlet states: U = U(0) + (2^2/2 - 0) t
    s = pf.PDESystem({"u": "-d(u**2/2, x)"}, bcs={"x": ({"dirichlet": 2}, "dirichlet")})
    con = constraint(s, 100, [0.0, 0.1, 0.2], ic={"u": "Piecewise((1, x <= 0.5), (0, True))"}, rule="midpoint")
    np.testing.assert_allclose(con.b, [0.5, 0.7, 0.9], rtol=1e-12)
    # periodic: U is constant
    s = pf.PDESystem({"u": "-d(u**2/2, x) + 0.1*laplace(u)"}, domain=[(0, 2 * np.pi)])
    con = constraint(s, 32, [0.0, 1.0], ic={"u": "1 + sin(x)"})
    np.testing.assert_allclose(con.b, [2 * np.pi, 2 * np.pi], rtol=1e-12)
    # a flux that needs the solution
    with pytest.raises(PDEForgeError, match="solution="):
        constraint(get_model("porous-medium").system(), 32, [0.5], ic={"u": "0"})
    with pytest.raises(PDEForgeError, match="no exact mass"):
        constraint(s, 32, [0.0], ic={"u": "1"}, b_from="exact")


def test_b_from_a_solution():
    # heat on [0, 1] with u = 0 at both ends, u(0) = sin(pi x): U(t) = 2/pi exp(-pi^2 t); the
    # boundary flux -u_x is taken from the solution's frames and integrated in time
    s = pf.PDESystem({"u": "laplace(u)"}, bcs="dirichlet")
    ds = pf.solve(s, grid=64, t_span=0.2, ic={"u": "sin(pi*x)"}, method="rk4", backend="numpy", progress=False, output=pf.Output(save_every=0.002))
    con = constraint(s, 64, [0.0, 0.1, 0.2], solution=ds, rule="midpoint")
    assert con.source == "solution"
    exact = 2 / np.pi * np.exp(-np.pi**2 * np.array([0.0, 0.1, 0.2]))
    np.testing.assert_allclose(con.b, exact, rtol=2e-3)
    mass = ds.u.sel(t=[0.0, 0.1, 0.2], method="nearest").values.sum(axis=1) / 64
    np.testing.assert_allclose(con.b, mass, rtol=0, atol=5e-5)  # its own mass, up to the time quadrature


def test_constraint_on_a_two_dimensional_tensor_grid():
    s = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1), (0, 2)], bcs="periodic")
    x, y = np.linspace(0, 1, 9, endpoint=False), np.linspace(0, 2, 7, endpoint=False)
    con = constraint(s, (x, y), [0.0, 1.0], ic={"u": lambda X, Y: 1 + np.cos(2 * np.pi * X) * np.sin(np.pi * Y)})
    assert con.G.shape == (2, 2 * 63) and con.grid.shape == (9, 7)
    np.testing.assert_allclose(con.b, [2.0, 2.0], rtol=1e-13)


def test_discrete_boundary_flux_reports_each_side():
    model = get_model("advection")
    g = pf.UniformGrid.from_spec(model.domain, 20)
    u = np.ones((1, 20))
    flux = discrete_boundary_flux("advection", g, u, 0.0, scheme="fv-upwind")
    assert flux[(0, "low")] == pytest.approx(-1.0) and flux[(0, "high")] == pytest.approx(1.0)
    assert flux["total"] == pytest.approx(0.0, abs=1e-15)

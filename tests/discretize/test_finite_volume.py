"""Conservative discretizations: numerical fluxes, telescoping to round-off, CFL, Jacobians."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.codegen.build import compile_system
from pdeforge.models.conservation import conservation_law, discrete_boundary_flux
from pdeforge.discretize.finite_volume import SCHEMES, flux_form, numerical_flux
from pdeforge.errors import PDEForgeError, SolverError, SystemDefinitionError
from pdeforge.models import get_model
from pdeforge.solvers.methods import get_method
from pdeforge.solvers.explicit.stability import explicit_dt_limit


def _godunov(f, ul, ur, n=4001):
    s = np.linspace(min(ul, ur), max(ul, ur), n)
    values = f(s)
    return values.min() if ul <= ur else values.max()


@pytest.mark.parametrize(
    "flux, kind",
    [("u**2/2", "godunov-convex"), ("u - u**2", "godunov-concave"), ("-2*u + 1", "upwind"), ("exp(u)", "rusanov")],
)
def test_numerical_flux_is_godunov_where_promised(flux, kind):
    u, uL, uR = sp.symbols("u uL uR", real=True)
    f = sp.sympify(flux, locals={"u": u})
    form = flux_form(f, u)
    assert form.kind == kind
    F = sp.lambdify([uL, uR], numerical_flux(f, u, uL, uR, form), "numpy")
    fn = sp.lambdify(u, f, "numpy")
    rng = np.random.default_rng(3)
    for ul, ur in rng.uniform(-2, 2, (200, 2)):
        assert F(ul, ul) == pytest.approx(fn(ul), rel=1e-12, abs=1e-12)  # consistent
        if kind != "rusanov":
            assert F(ul, ur) == pytest.approx(_godunov(fn, ul, ur), abs=1e-6)
        else:
            # monotone: non-decreasing in uL, non-increasing in uR
            eps = 1e-6
            assert F(ul + eps, ur) >= F(ul, ur) - 1e-12 and F(ul, ur + eps) <= F(ul, ur) + 1e-12
    assert flux_form(f, u, "rusanov").kind == "rusanov"


# --------------------------------------------------------------------------------------------
# the discrete mass changes only through the boundary faces


CASES = [
    ("porous-medium", "fd"),
    ("stefan", "fd"),
    ("heat", "fd"),
    ("advection", "fv-upwind"),
    ("advection", "fv-upwind-mc"),
    ("burgers", "fv-upwind"),
    ("burgers", "fv-rusanov"),
    ("burgers", "fv-upwind1"),
]


@pytest.mark.parametrize("name, scheme", CASES)
def test_semi_discrete_mass_changes_by_the_boundary_fluxes_alone(name, scheme):
    model = get_model(name)
    system = model.system()
    grid = pf.UniformGrid.from_spec(model.domain, 24)
    bound = compile_system(system, "numpy", scheme=scheme).bind(grid)
    law = conservation_law(system)
    rng = np.random.default_rng(7)
    h = grid.spacing[0]
    for t in (0.03, 0.4):
        y = rng.uniform(0.0, 1.2, (1, 24))
        change = h * bound.rhs(t, y.ravel()).sum()
        flux = discrete_boundary_flux(law, grid, y, t, scheme=scheme)
        scale = h * np.abs(bound.rhs(t, y.ravel())).sum()
        assert abs(change + flux["total"]) <= 4e-15 * scale, (change, flux)


def test_explicit_run_mass_balance_step_by_step():
    # forward Euler saved every step: mass(n+1) - mass(n) = -dt * (outward boundary flux at n)
    model = get_model("porous-medium")
    system = model.system()
    n, dt = 20, 2e-4
    grid = pf.UniformGrid.from_spec(model.domain, n)
    ds = pf.solve(system, grid=grid, t_span=0.02, ic={"u": np.zeros(n)}, method="euler", dt=dt, backend="numpy", progress=False, output=pf.Output(save_every=dt))
    law = conservation_law(system)
    mass = ds.u.values.sum(axis=1) / n
    outflow = np.array([discrete_boundary_flux(law, grid, ds.u.values[k], float(ds.t[k]))["total"]
                        for k in range(len(ds.t) - 1)])
    gap = np.diff(mass) + dt * outflow
    assert np.abs(gap).max() <= 1e-13 * np.abs(np.diff(mass)).max()  # measured 3e-18 vs steps of ~1e-4
    assert mass[-1] > 0.0


def test_closed_and_periodic_domains_keep_their_mass():
    # Burgers on a periodic domain through shock formation (fv-upwind, ssprk3 at CFL 0.4)
    s = pf.PDESystem({"u": "-d(u**2/2, x)"}, domain=[(0, 2 * np.pi)], bcs="periodic")
    ds = pf.solve(s, grid=64, t_span=3.0, ic={"u": "1 + sin(x)"}, method="ssprk3", backend="numpy", progress=False, discretization=pf.FiniteDifference(scheme="fv-upwind"), output=pf.Output(save_every=0.5))
    mass = ds.u.values.sum(axis=1) * 2 * np.pi / 64
    assert np.abs(mass - mass[0]).max() < 1e-14 * mass[0]
    assert ds.u.values.max() <= 2.0 + 1e-12 and ds.u.values.min() >= -1e-12  # no new extrema
    # 2-D advection, periodic: mass constant, maximum principle
    s = pf.PDESystem({"u": "-d(a*u, x) - d(b*u, y)"}, params={"a": 1.0, "b": -0.5},
                     domain=[(0, 1), (0, 1)], bcs="periodic")
    ic = {"u": lambda X, Y: ((np.abs(X - 0.5) < 0.2) & (np.abs(Y - 0.5) < 0.2)).astype(float)}
    ds = pf.solve(s, grid=(24, 24), t_span=0.5, ic=ic, method="ssprk3", backend="numpy", progress=False, discretization=pf.FiniteDifference(scheme="fv-upwind"), output=pf.Output(save_every=0.25))
    mass = ds.u.values.sum(axis=(1, 2)) / 24**2
    assert np.abs(mass - mass[0]).max() < 1e-14
    assert ds.u.values.max() <= 1 + 1e-12 and ds.u.values.min() >= -1e-12
    # porous medium with zero-flux ends, implicit BDF
    s = pf.PDESystem({"u": "div(max(u, 0)**m*grad(u))"}, params={"m": 2.0}, bcs="neumann")
    ds = pf.solve(s, grid=32, t_span=0.05, ic={"u": "Piecewise((1, x < 0.3), (0, True))"}, method="bdf", backend="numpy", progress=False, output=pf.Output(save_every=0.025))
    mass = ds.u.values.sum(axis=1) / 32
    assert np.abs(mass - mass[0]).max() < 1e-13


# --------------------------------------------------------------------------------------------
# time steps


def test_cfl_limit_of_the_finite_volume_schemes():
    model = get_model("advection")
    system = model.system()
    grid = pf.UniformGrid.from_spec(model.domain, 50)
    cells = model.initial_condition(grid)["u"][None]
    ssprk3 = get_method("ssprk3")
    est = explicit_dt_limit(system, grid, cells, 0.0, ssprk3, scheme="fv-upwind", t_end=0.4)
    assert est.dt_max == pytest.approx(0.5 * (1 / 50) / 1.0)  # CFL 1/2 for MUSCL with SSPRK3
    est1 = explicit_dt_limit(system, grid, cells, 0.0, ssprk3, scheme="fv-upwind1", t_end=0.4)
    assert est1.dt_max == pytest.approx(1.0 / 50)
    ds = pf.solve("advection", grid=50, t_span=0.1, backend="numpy", progress=False)
    assert ds.attrs["dt_chosen"] == pytest.approx(0.8 * 0.5 / 50)  # 0.8 of the CFL limit
    # the step taken: each output interval split into equal steps no larger than the chosen one
    interval = float(ds.t[1] - ds.t[0])
    assert ds.attrs["dt"] == pytest.approx(interval / np.ceil(interval / (0.8 * 0.5 / 50) - 1e-9))
    # Burgers: the speed is max |u| over the state and the inflow value a
    model = get_model("burgers")
    grid = pf.UniformGrid.from_spec(model.domain, 40)
    cells = np.zeros((1, 40))
    est = explicit_dt_limit(model.system(a=3.0), grid, cells, 0.0, ssprk3, scheme="fv-upwind", t_end=1.0)
    assert est.dt_max == pytest.approx(0.5 * (2 / 40) / 3.0)
    with pytest.warns(pf.errors.StabilityWarning):
        pf.solve("burgers", grid=40, t_span=0.01, dt=0.5 * (2 / 40) / 1.0 * 1.1, method="ssprk3", backend="numpy",
                 progress=False)


def test_degenerate_initial_states_still_get_a_diffusive_limit():
    # u = 0 everywhere: the diffusivity that matters flows in through the Dirichlet boundary
    for name, k_max in (("stefan", 1.0), ("porous-medium", 3.0)):
        model = get_model(name)
        grid = pf.UniformGrid.from_spec(model.domain, 40)
        est = explicit_dt_limit(model.system(), grid, np.zeros((1, 40)), 0.0, get_method("ssprk3"),
                                t_end=model.t_end)
        assert est.dt_max == pytest.approx(2.5127 / (4 * k_max * 40**2), rel=1e-3)


# --------------------------------------------------------------------------------------------
# Jacobians of degenerate, piecewise and limited right-hand sides


@pytest.mark.parametrize("name, scheme", [("porous-medium", "fd"), ("stefan", "fd"), ("burgers", "fv-upwind")])
def test_exact_jacobian_matches_finite_differences(name, scheme):
    model = get_model(name)
    grid = pf.UniformGrid.from_spec(model.domain, 16)
    bound = compile_system(model.system(), "numpy", scheme=scheme).bind(grid)
    rng = np.random.default_rng(11)
    y = np.where(rng.uniform(size=16) < 0.3, 0.0, rng.uniform(0.05, 1.0, 16))  # exact zeros included
    J = bound.jacobian(0.1, y).toarray()
    assert np.all(np.isfinite(J))  # no 0/0 from d(u^m)/du = m u^m / u at u = 0
    eps = 1e-7
    f0 = bound.rhs(0.1, y)
    for j in range(16):
        yp = y.copy()
        yp[j] += eps
        column = (bound.rhs(0.1, yp) - f0) / eps
        # one-sided differences across a kink or jump can differ: compare where smooth
        ym = y.copy()
        ym[j] -= eps
        back = (f0 - bound.rhs(0.1, ym)) / eps
        smooth = np.abs(column - back) < 1e-4 * (1 + np.abs(column))
        np.testing.assert_allclose(J[smooth, j], column[smooth], rtol=1e-4, atol=1e-4 * np.abs(J).max())


def test_stefan_jacobian_drops_the_jump():
    # d/du of Piecewise((1, u >= p), (0, True)) is zero on both sides: only K'(u) terms remain
    model = get_model("stefan")
    grid = pf.UniformGrid.from_spec(model.domain, 8)
    bound = compile_system(model.system(), "numpy").bind(grid)
    y = np.array([0.9, 0.8, 0.7, 0.3, 0.0, 0.0, 0.0, 0.0])
    J = bound.jacobian(0.0, y).toarray()
    h2 = (1 / 8) ** 2
    # K(u) = max(u - p_star, 0): K' = 1 above p_star, 0 below
    assert J[3, 3] == 0.0 and J[3, 2] == pytest.approx(1 / h2) and J[2, 3] == 0.0
    assert J[1, 1] == pytest.approx(-2 / h2)


# --------------------------------------------------------------------------------------------
# the scheme keyword


def test_scheme_keyword_errors_and_cache_key():
    system = get_model("burgers").system()
    with pytest.raises(SolverError, match="unknown"):
        compile_system(system, "numpy", scheme="weno")
    with pytest.raises(SolverError, match="second order"):
        compile_system(system, "numpy", order=4, scheme="fv-upwind")
    fd = compile_system(system, "numpy", scheme="fd")
    fv = compile_system(system, "numpy", scheme="fv-upwind")
    assert fd.key != fv.key and fv.scheme == "fv-upwind" and fd.scheme == "fd"
    assert fv.ghost == (2,) and fd.ghost == (1,)
    coupled = pf.PDESystem({"u": "-d(u*v, x)", "v": "laplace(v)"})
    with pytest.raises(SystemDefinitionError, match="scalar fluxes"):
        compile_system(coupled, "numpy", scheme="fv-upwind")
    assert set(SCHEMES) >= {"fd", "fv-upwind", "fv-upwind-mc", "fv-upwind1", "fv-rusanov"}
    with pytest.raises(PDEForgeError):
        pf.solve(system, grid=16, t_span=0.1, ic={"u": "0"}, backend="numpy", discretization=pf.FiniteDifference(scheme="nope"))


def test_numba_and_numpy_finite_volume_kernels_agree():
    model = get_model("burgers")
    grid = pf.UniformGrid.from_spec(model.domain, 32)
    y = np.random.default_rng(5).uniform(-0.5, 1.5, 32)
    a = compile_system(model.system(), "numpy", scheme="fv-upwind").bind(grid).rhs(0.2, y)
    b = compile_system(model.system(), "numba", scheme="fv-upwind").bind(grid).rhs(0.2, y)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)

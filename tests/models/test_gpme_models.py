"""The ProbConserv family converges to its exact solutions; the observed orders are asserted.

Errors are L1 norms against the exact *cell averages* (the exact solution averaged over each
cell with 64 sub-samples), which is what a finite-volume cell value approximates; point
values would charge a front or shock that sits inside a cell with an O(1) error there.
Orders are least-squares slopes of log(error) over log(N) on small grids. The lower bounds
are the measured orders (printed with -s) less a small margin, not loosened until they pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.models import get_model
from pdeforge.models.gpme import exact_front, stefan_constants


def cell_averages(model, t: float, n: int, params=None, sub: int = 64) -> np.ndarray:
    (lo, hi), = model.domain
    h = (hi - lo) / n
    x = lo + (np.arange(n * sub) + 0.5) * h / sub
    return model.exact_solution(t, x, params)["u"].reshape(n, sub).mean(axis=1)


def study(name: str, sizes, t_end: float, method=None, scheme=None):
    """(L1 errors, mass errors, final states) of ``name`` on each grid size."""
    model = get_model(name)
    (lo, hi), = model.domain
    errors, mass_errors, states = [], [], []
    for n in sizes:
        disc = None if scheme is None else pf.FiniteDifference(scheme=scheme)
        ds = pf.solve(name, grid=n, t_span=t_end, output=pf.Output(save_every=t_end), progress=False, backend="numpy",
                      method=method, discretization=disc)
        assert ds.attrs["status"] == "completed"
        h = (hi - lo) / n
        u = ds.u.values[-1]
        errors.append(h * np.abs(u - cell_averages(model, t_end, n)).sum())
        mass_errors.append(abs(h * u.sum() - model.exact_mass(t_end)))
        states.append(u)
    return np.array(errors), np.array(mass_errors), states


def order(sizes, errors) -> float:
    return -np.polyfit(np.log(sizes), np.log(errors), 1)[0]


def report(name, sizes, errors, mass_errors):
    print(f"\n{name}: N = {list(sizes)}  L1 = {[f'{e:.3e}' for e in errors]}  order {order(sizes, errors):.2f};"
          f"  |mass - U| = {[f'{e:.2e}' for e in mass_errors]}")


# --------------------------------------------------------------------------------------------
def test_exact_mass_is_the_integral_of_the_exact_solution():
    for name, times in [
        ("heat", [0.0, 0.3, 1.0]),
        ("porous-medium", [0.1, 0.5, 1.0, 1.3]),
        ("stefan", [0.01, 0.05, 0.1]),
        ("advection", [0.0, 0.2, 0.7]),
        ("burgers", [0.0, 0.5, 1.5, 2.5, 4.0]),
    ]:
        model = get_model(name)
        (lo, hi), = model.domain
        x = np.linspace(lo, hi, 400_001)
        for t in times:
            u = model.exact_solution(t, x)["u"]
            integral = np.trapezoid(u, x)
            # the trapezoid rule errs by O(dx) at a jump: dx * jump / 2 at most
            assert abs(integral - model.exact_mass(t)) < 3e-5, (name, t)


def test_exact_solutions_satisfy_the_boundary_conditions_and_fronts():
    pme = get_model("porous-medium")
    for t in (0.2, 0.9):
        assert pme.exact_solution(t, np.array([0.0]))["u"][0] == pytest.approx((3 * t) ** (1 / 3))
        assert pme.exact_solution(t, np.array([t + 1e-9]))["u"][0] == 0.0
    z1, alpha, c1 = stefan_constants(0.6)
    assert 0.6 * math.erf(z1) * z1 * np.exp(z1**2) == pytest.approx((1 - 0.6) / np.sqrt(np.pi), rel=1e-12)
    st = get_model("stefan")
    s = exact_front("stefan", 0.04)
    left, right = st.exact_solution(0.04, np.array([s - 1e-12, s + 1e-12]))["u"]
    assert left == pytest.approx(0.6, abs=1e-9) and right == 0.0  # jumps from p_star to 0
    assert exact_front("burgers", 3.0, {"a": 2.0}) == pytest.approx(2.5)


def test_heat_converges_at_second_order():
    sizes = [16, 32, 64]
    errors, mass_errors, _ = study("heat", sizes, 0.5)
    report("heat", sizes, errors, mass_errors)
    assert order(sizes, errors) > 1.95  # measured 2.00
    assert mass_errors.max() < 1e-14  # periodic: U(t) = 0 to round-off


def test_porous_medium_converges_with_its_degenerate_front():
    sizes = [25, 50, 100]
    errors, mass_errors, states = study("porous-medium", sizes, 0.5)
    report("porous-medium (bdf)", sizes, errors, mass_errors)
    assert order(sizes, errors) > 1.25  # measured 1.35: below 2, the front is a (t - x)^(1/m) cusp
    assert errors[-1] < 1e-3
    assert all(u.min() > -1e-8 for u in states)  # no undershoot ahead of the front


def test_stefan_converges_with_its_jump():
    sizes = [25, 50, 100, 200]
    errors, mass_errors, states = study("stefan", sizes, 0.05, method="ssprk3")
    report("stefan (ssprk3)", sizes, errors, mass_errors)
    assert order(sizes, errors) > 1.2  # measured 1.36
    assert order(sizes, mass_errors) > 2.2  # measured 2.5 (Kirchhoff face flux)
    # the discrete front (last cell above p_star/2) sits within two cells of the exact one
    s = exact_front("stefan", 0.05)
    u = states[-1]
    front = (np.nonzero(u > 0.3)[0].max() + 1) / sizes[-1]
    assert abs(front - s) < 2.0 / sizes[-1]


def test_stefan_implicit_bdf_matches_explicit():
    model = get_model("stefan")
    n = 50
    ds = pf.solve("stefan", grid=n, t_span=0.05, progress=False, backend="numpy", output=pf.Output(save_every=0.05))
    assert ds.attrs["method"] == "bdf" and ds.attrs["status"] == "completed"
    err = np.abs(ds.u.values[-1] - cell_averages(model, 0.05, n)).sum() / n
    assert err < 4e-4  # measured 3.0e-4 (explicit: 3.2e-4)


def test_advection_contact_converges_without_oscillations():
    sizes = [50, 100, 200, 400]
    errors, mass_errors, states = study("advection", sizes, 0.3)
    report("advection (fv-upwind)", sizes, errors, mass_errors)
    # a contact discontinuity: MUSCL-minmod converges at about p/(p+1) = 2/3 in L1
    assert 0.6 < order(sizes, errors) < 0.75  # measured 0.65
    for u in states:
        assert u.max() <= 1.0 + 1e-12 and u.min() >= -1e-12
        assert np.abs(np.diff(u)).sum() <= 1.0 + 1e-12  # total variation of the step, no more
    mc, _, _ = study("advection", [100], 0.3, scheme="fv-upwind-mc")
    first, _, _ = study("advection", [100], 0.3, scheme="fv-upwind1")
    assert mc[0] < errors[1] < first[0]  # MC sharper than minmod sharper than first order


def test_burgers_compression_wave_and_shock_converge():
    sizes = [32, 64, 128]
    # before the shock: a piecewise-linear compression wave with kinks
    errors, mass_errors, _ = study("burgers", sizes, 0.5)
    report("burgers t=0.5 (fv-upwind)", sizes, errors, mass_errors)
    assert order(sizes, errors) > 1.15  # measured 1.26
    # after it: the shock of speed a/2 at x = 0.5 (t = 2), a face of every grid here
    errors, mass_errors, states = study("burgers", sizes, 2.0)
    report("burgers t=2 (fv-upwind)", sizes, errors, mass_errors)
    assert order(sizes, errors) > 0.95  # measured 1.00: a captured shock is first order
    for u in states:
        assert u.max() <= 1.0 + 1e-12 and u.min() >= -1e-12
        # sharp: at most three cells between the states
        assert np.count_nonzero((u > 0.01) & (u < 0.99)) <= 3
    assert mass_errors.max() < 1e-13  # inflow a^2/2 exactly, no outflow yet


def test_cli_runs_every_new_model(tmp_path):
    from pdeforge.cli import main

    for name in ("porous-medium", "stefan", "advection", "burgers"):
        assert main(["run", name, "--grid", "32", "--backend", "numpy", "--quiet", "--t-end", "0.05"]) == 0
    out = tmp_path / "b.nc"
    assert main(["run", "burgers", "--grid", "32", "--backend", "numpy", "--quiet", "--scheme", "fv-rusanov",
                 "--out", str(out)]) == 0
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert ds.attrs["scheme"] == "fv-rusanov" and ds.attrs["method"] == "ssprk3"
    assert main(["run", "advection", "--scheme", "fv-upwind", "--order", "4", "--quiet"]) == 2

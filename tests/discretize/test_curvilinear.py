"""Symmetric curvilinear grids (polar, cylindrical, spherical) against independent references.

* manufactured solutions, with an advection and a reaction term that are not divergences and a
  source that is regular at r = 0 (``sin(a r)/r``): observed order 2 in every geometry, on
  discs and balls (r = 0 regular) and on an annulus and a shell (walls on both sides);
* the exact slowest modes ``J0(a r) exp(-a^2 t)`` (disc, scipy.special) and
  ``sin(k r)/(k r) exp(-k^2 t)`` (ball): order 2, and order 4 at ``order=4``;
* mass in closed domains, with the cell volumes as weights: constant to round-off, and the
  numba kernels equal to the numpy ones;
* py-pde 0.59's DiffusionPDE on PolarSymGrid / SphericalSymGrid / CylindricalSymGrid with its
  EulerSolver, the same explicit Euler steps: equal to round-off (py-pde runs in a subprocess with
  ``NUMBA_DISABLE_JIT=1``: its operators are pure Python loops there, seconds instead of the
  ~50 s its numba compilation takes on a loaded machine; the arithmetic is the same);
* the command line (Dataset dims, file, plot, ``show``) and one-line errors for bad input.

The sources and exact derivatives are derived here with plain SymPy from
``(1/r^m) d(r^m du/dr)/dr``, independently of pdeforge's operators.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp
import xarray as xr

import pdeforge as pf
from pdeforge.discretize.grid import grid_of
from pdeforge.errors import PDEForgeError
from pdeforge.models import get_model

M = {"polar": 1, "cylindrical": 1, "spherical": 2}
T = 0.1


def manufactured(geometry: str, domain):
    """``u_t = D laplace(u) - v u_r - u^2 + f`` with ``f`` forcing ``u = 1 + exp(-t/2) cos(1.3 r) [cos(1.1 z + 0.4)]``."""
    r, z, t = sp.symbols("r z t", real=True)
    m = M[geometry]
    cylinder = geometry == "cylindrical"
    ue = 1 + sp.exp(-t / 2) * sp.cos(sp.Rational(13, 10) * r) * (sp.cos(sp.Rational(11, 10) * z + sp.Rational(2, 5)) if cylinder else 1)
    D, v = sp.Rational(7, 10), sp.Rational(3, 10)
    lap = sp.diff(r**m * sp.diff(ue, r), r) / r**m + (sp.diff(ue, z, 2) if cylinder else 0)
    source = sp.diff(ue, t) - (D * lap - v * sp.diff(ue, r) - ue**2)
    r_lo, r_hi = domain[0]
    bcs = {"r": [{"neumann": -sp.diff(ue, r).subs(r, r_lo)} if r_lo > 0 else "neumann", {"dirichlet": ue.subs(r, r_hi)}]}
    if cylinder:
        z_lo, z_hi = domain[1]
        bcs["z"] = [{"dirichlet": ue.subs(z, z_lo)}, {"neumann": sp.diff(ue, z).subs(z, z_hi)}]
    system = pf.PDESystem({"u": f"D*laplace(u) - v*d(u, r) - u**2 + ({source})"}, params={"D": 0.7, "v": 0.3},
                          domain=domain, geometry=geometry, bcs=bcs)
    return system, sp.lambdify((r, z, t), ue, "numpy")


def observed_order(cells, errors) -> float:
    return float(np.polyfit(np.log(1.0 / np.asarray(cells, dtype=float)), np.log(errors), 1)[0])


@pytest.mark.parametrize("geometry,domain", [
    ("polar", [(0.0, 1.0)]),
    ("spherical", [(0.0, 1.0)]),
    ("cylindrical", [(0.0, 1.0), (0.0, 1.0)]),
    ("polar", [(0.5, 1.5)]),       # annulus: a wall at r = 0.5
    ("spherical", [(0.5, 1.5)]),   # shell
], ids=["disc", "ball", "cylinder", "annulus", "shell"])
def test_manufactured_solutions_converge_at_second_order(geometry, domain):
    system, exact = manufactured(geometry, domain)
    cells = (8, 16, 32) if geometry == "cylindrical" else (16, 32, 64)
    errors = []
    for n in cells:
        grid = grid_of(system, n)
        mesh = grid.mesh()
        r, z = mesh[0], (mesh[1] if len(mesh) > 1 else 0.0)
        ds = pf.solve(system, grid=grid, t_span=(0, T), ic={"u": exact(r, z, 0.0)}, method="rk4", backend="numpy", progress=False, output=pf.Output(save_every=T))
        errors.append(np.abs(ds.u[-1].values - exact(r, z, T)).max())
    order = observed_order(cells, errors)
    assert 1.9 < order < 2.3, (errors, order)


@pytest.mark.parametrize("name,order,cells,expected", [
    ("heat-disc", 2, (16, 32), 2), ("heat-ball", 2, (16, 32), 2), ("heat-ball", 4, (16, 32), 4),
])
def test_exact_bessel_and_sinc_modes(name, order, cells, expected):
    model = get_model(name)
    errors = []
    for n in cells:
        ds = pf.solve(name, grid=n, backend="numpy", dt=0.05 / n**2, progress=False, discretization=pf.FiniteDifference(order=order), output=pf.Output(save_every=None))
        assert ds.u.dims == ("t", "r") and ds.attrs["geometry"] == model.geometry
        exact = model.exact_solution(float(ds.t[-1]), grid_of(model.system(), n))["u"]
        errors.append(np.abs(ds.u[-1].values - exact).max())
    assert errors[-1] < (4e-4 if order == 2 else 1e-5)
    assert observed_order(cells, errors) > expected - 0.4, errors


CLOSED = [
    ("polar", [(0.0, 1.0)], 24, "exp(-8*(r - 0.3)**2)"),
    ("spherical", [(0.0, 1.0)], 24, "exp(-8*(r - 0.3)**2)"),
    ("spherical", [(0.4, 1.0)], 24, "exp(-8*(r - 0.6)**2)"),
    ("cylindrical", [(0.0, 1.0), (0.0, 2.0)], (12, 10), "exp(-8*(r - 0.3)**2 - (z - 1)**2)"),
]


@pytest.mark.parametrize("geometry,domain,cells,ic", CLOSED, ids=["disc", "ball", "shell", "cylinder"])
def test_mass_is_conserved_to_round_off_with_closed_walls(geometry, domain, cells, ic):
    system = pf.PDESystem({"u": "div((1 + u**2)*grad(u))"}, domain=domain, geometry=geometry, bcs="neumann")
    grid = grid_of(system, cells)
    backends = ("numpy", "numba") if geometry == "cylindrical" else ("numpy",)  # numba 1-D: the CLI test
    runs = {b: pf.solve(system, grid=grid, t_span=(0, 0.05), ic={"u": ic}, backend=b, method="rk4", dt=1e-4, progress=False, output=pf.Output(save_every=0.025)) for b in backends}
    ds = runs["numpy"]
    volumes = grid.cell_volumes()
    mass = np.array([(volumes * ds.u[k].values).sum() for k in range(ds.t.size)])
    assert np.abs(ds.u[-1].values - ds.u[0].values).max() > 1e-2  # the field did move
    assert np.abs(mass - mass[0]).max() < 1e-14 * 50 * mass[0]
    constraint = pf.conservation.constraint(system, cells, times=ds.t.values, rule="midpoint", solution=ds)
    assert constraint.source == "boundary conditions"
    assert np.abs(constraint.residual(ds.u.values)).max() < 1e-13 * mass[0]
    if "numba" in runs:
        assert np.abs(runs["numba"].u.values - ds.u.values).max() < 1e-14


PY_PDE = textwrap.dedent("""
    import sys
    import numpy as np
    import pde

    n, dt, steps, path = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    grids = {"polar": pde.PolarSymGrid(1.0, n), "spherical": pde.SphericalSymGrid(1.0, n),
             "cylindrical": pde.CylindricalSymGrid(1.0, (0.0, 2.0), (n, n // 2))}
    out = {}
    for name, grid in grids.items():
        bc = {"r-": {"derivative": 0}, "r+": {"value": 0}}
        if name == "cylindrical":
            bc["z"] = {"derivative": 0}
        coords = grid.cell_coords
        u = np.exp(-5 * coords[..., 0] ** 2) * (np.cos(coords[..., 1]) if name == "cylindrical" else 1.0)
        field = pde.ScalarField(grid, u)
        eq = pde.DiffusionPDE(diffusivity=1.0, bc=bc)
        result = eq.solve(field, t_range=steps * dt, dt=dt, solver="euler", adaptive=False, tracker=None)
        assert eq.diagnostics["solver"]["steps"] == steps and eq.diagnostics["solver"]["class"] == "EulerSolver"
        out[name + "_ic"] = u
        out[name] = result.data
        out[name + "_volumes"] = grid.cell_volumes
    np.savez(path, **out)
""")


def test_matches_py_pde_symmetric_grids_to_round_off(tmp_path):
    pytest.importorskip("pde")
    n, dt, steps = 16, 2e-4, 100
    path = tmp_path / "py_pde.npz"
    script = tmp_path / "py_pde_run.py"
    script.write_text(PY_PDE)
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, str(script), str(n), str(dt), str(steps), str(path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ref = np.load(path)
    for geometry in ("polar", "spherical", "cylindrical"):
        cylinder = geometry == "cylindrical"
        system = pf.PDESystem({"u": "laplace(u)"}, domain=[(0.0, 1.0), (0.0, 2.0)] if cylinder else [(0.0, 1.0)],
                              geometry=geometry, bcs={"r": "dirichlet", "z": "neumann"} if cylinder else {"r": "dirichlet"})
        grid = grid_of(system, (n, n // 2) if cylinder else n)
        np.testing.assert_allclose(grid.cell_volumes(), ref[geometry + "_volumes"], rtol=1e-14)
        ds = pf.solve(system, grid=grid, t_span=(0, steps * dt), ic={"u": ref[geometry + "_ic"]}, method="euler", dt=dt, backend="numpy", progress=False, output=pf.Output(save_every=None))
        assert ds.attrs["steps"] == steps
        assert np.abs(ds.u[-1].values - ref[geometry]).max() < 1e-14, geometry


def test_command_line_runs_writes_and_shows_a_curvilinear_model(tmp_path, capsys):
    from pdeforge.cli import main

    out, png = tmp_path / "ball.nc", tmp_path / "ball.png"
    assert main(["run", "heat-ball", "--grid", "16", "--out", str(out), "--plot", str(png), "--quiet"]) == 0
    reference = pf.solve("heat-ball", grid=16, backend="numpy", progress=False)
    with xr.open_dataset(out) as ds:
        assert ds.u.dims == ("t", "r") and ds.attrs["geometry"] == "spherical" and ds.attrs["backend"] == "numba"
        assert "axis" not in ds.r.attrs and json.loads(ds.attrs["domain"]) == [[0.0, 1.0]]
        assert np.abs(ds.u.values - reference.u.values).max() < 1e-14  # numba == numpy
    assert png.stat().st_size > 10_000
    capsys.readouterr()
    assert main(["show", "heat-disc"]) == 0
    text = capsys.readouterr().out
    assert "polar geometry" in text and "D*Derivative(r*Derivative(u, r), r)/r" in text
    assert "ghost layers per axis: r: 1" in text


@pytest.mark.parametrize("make,words", [
    (lambda: pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], geometry="torus"), "geometry 'torus' is unknown"),
    (lambda: pf.PDESystem({"u": "laplace(u)"}, domain=[(-1, 1)], geometry="polar"), "starts at -1 < 0"),
    (lambda: pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], geometry="cylindrical"), "has 2 axes (r, z), got 1"),
    (lambda: pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1), (0, 1)], geometry="spherical"), "has 1 axis (r), got 2"),
    (lambda: pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], geometry="polar", bcs={"r": ("dirichlet", "neumann")}),
     "starts at r = 0, where the solution is regular"),
    (lambda: pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], geometry="polar", bcs="periodic"), "cannot be periodic"),
    (lambda: pf.PDESystem({"u": "laplace(u)"}, params={"r": 1.0}, domain=[(0, 1)], geometry="polar"), "'r' is reserved"),
    (lambda: pf.solve(pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], geometry="spherical", bcs="dirichlet"),
                      grid=8, t_span=0.01, ic={"u": "1"}, discretization="spectral"), "geometry 'spherical' needs finite"),
    (lambda: pf.conservation.conservation_law(pf.PDESystem({"u": "-d(u, r)"}, domain=[(0, 1)], geometry="polar",
                                                           bcs="neumann")), "plain r-derivative"),
])
def test_bad_input_gets_one_clear_line(make, words):
    with pytest.raises(PDEForgeError) as info:
        make()
    message = str(info.value)
    assert words in message and "\n" not in message, message


def test_noise_is_scaled_by_each_shell_volume():
    # u_t = noise with py-pde's scaling: after n Euler-Maruyama steps u_i = sigma sqrt(t / V_i) N(0, 1),
    # V_i the shell volume (from 4 pi h^3 / 3 at r = 0 to 4 pi R^2 h at r = R: a factor ~ 3 N^2 apart)
    system = pf.PDESystem({"u": "0*laplace(u)"}, domain=[(0, 1)], geometry="spherical", bcs="neumann",
                          noise={"u": "0.5"})
    grid = grid_of(system, 200)
    ds = pf.solve(system, grid=grid, t_span=(0, 0.02), ic={"u": "0"}, method="euler", dt=1e-3, seed=7, backend="numpy", progress=False, output=pf.Output(save_every=None))
    z = ds.u[-1].values / (0.5 * np.sqrt(0.02 / grid.cell_volumes()))
    for part in (z[:100], z[100:]):  # inner and outer shells alike
        assert 0.8 < part.std() < 1.2 and abs(part.mean()) < 0.3, (part.std(), part.mean())


def test_fourth_order_in_r_is_refused_in_one_line():
    with pytest.raises(PDEForgeError) as info:
        pf.PDESystem({"c": "laplace(c**3 - c - laplace(c))"}, domain=[(0, 1)], geometry="polar", bcs="neumann")
    assert "order 4 in r for field 'c'" in str(info.value) and "\n" not in str(info.value)

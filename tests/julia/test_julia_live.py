"""Checks that need a Julia installation (marker ``julia``; skipped with the reason without one).

Julia kernels (Symbolics ``build_function`` + ``sparsejacobian``) against the Numba kernels on
random states for every catalogue model; the Julia simplifier; whole-grid tracing with
``MultithreadedForm``; the exported MethodOfLines script and the in-process MethodOfLines
route against pdeforge's own solution on the same grid.

Each defect found by reading the Julia route against upstream has a case here, so the first machine with Julia checks what the
tree-sitter tests (test_julia_bindings.py, test_julia_environment.py) could only check
statically: RuntimeGeneratedFunctions initialised and parameters passed (every model's kernel
and the traced symbolics-rd), the initial condition at t0 != 0, the WENO scheme in both routes,
no @independent_variables warning, exact MethodOfLines grids on [0, 2 pi], large initial tables
read from files, ArrayDiscretization and the sparse FBDF Jacobian.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from julia_helpers import julia_or_skip

import pdeforge as pf
from pdeforge.models import list_models

pytestmark = pytest.mark.julia
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def julia_exe():
    exe = julia_or_skip()
    return exe


@pytest.fixture(scope="module")
def juliacall_session(julia_exe):
    if importlib.util.find_spec("juliacall") is None:
        pytest.skip("Julia found but juliacall is not installed (pip install 'pdeforge[julia]')")
    from pdeforge.julia.bridge import session

    return session()


@pytest.fixture(scope="module")
def julia_project(julia_exe):
    proc = subprocess.run([julia_exe, f"--project={ROOT}", "-e", "import Pkg; Pkg.instantiate()"],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        pytest.skip(f"the Julia packages of Project.toml could not be installed: {proc.stderr.strip()[-300:]}")
    return julia_exe


def _grid(model):
    return (7,) * len(model.grid) if len(model.grid) > 1 else (11,)


def _random_state(bound, rng):
    return 0.5 + rng.random(bound.size)


@pytest.mark.parametrize("model", list_models(), ids=lambda m: m.name)
def test_julia_kernels_equal_numba_kernels(juliacall_session, model, rng):
    system = model.system()
    grid = pf.UniformGrid.from_spec(system.domain, _grid(model))
    try:
        numba = pf.compile(system, target="numba").bind(grid)
    except pf.errors.PDEForgeError as exc:
        pytest.skip(f"{model.name} has no Numba kernels: {exc}")
    julia = pf.compile(system, target="julia").bind(grid)
    for _ in range(3):
        y = _random_state(numba, rng)
        t = float(rng.random())
        ref = numba.rhs(t, y)
        np.testing.assert_allclose(julia.rhs(t, y), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        Jn = numba.jacobian(t, y).toarray()
        Jj = julia.jacobian(t, y).toarray()
        np.testing.assert_allclose(Jj, Jn, rtol=1e-12, atol=1e-12 * np.abs(Jn).max())
        # the threaded loop gives the same numbers
        U = julia.pad(y, t)
        out = np.empty(julia.cell_shape)
        julia.kernel.module.KERNELS[("rhs", True)](U, out, t, julia.p, julia.h, *julia.coords)
        np.testing.assert_allclose(out.reshape(-1), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_julia_simplifier_keeps_the_equations(juliacall_session, rng):
    for name in ("gray-scott", "symbolics-rd", "fisher-kpp"):
        system = pf.models.get_model(name).system()
        grid = pf.UniformGrid.from_spec(system.domain, (6,) * system.dim)
        ref = pf.compile(system, target="numpy", simplifier="sympy").bind(grid)
        jl = pf.compile(system, target="numpy", simplifier="julia")
        assert jl.simplification["backend"] == "julia"
        bound = jl.bind(grid)
        y = _random_state(ref, rng)
        np.testing.assert_allclose(bound.rhs(0.3, y), ref.rhs(0.3, y), rtol=1e-11, atol=1e-11)


def test_traced_system_with_multithreaded_build_function(juliacall_session, rng):
    from pdeforge.julia.mol_route import TracedSystem

    for name, cells in (("symbolics-rd", (4, 4)), ("heat", (8,))):
        system = pf.models.get_model(name).system()
        grid = pf.UniformGrid.from_spec(system.domain, cells)
        ref = pf.compile(system, target="numba").bind(grid)
        traced = TracedSystem(system, grid)
        y = _random_state(ref, rng)
        np.testing.assert_allclose(traced.rhs(0.2, y), ref.rhs(0.2, y), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(traced.jacobian(0.2, y).toarray(), ref.jacobian(0.2, y).toarray(), rtol=1e-12,
                                   atol=1e-12)


CASES = [
    # model, grid, t_end, method, dt
    ("heat", (16,), 0.5, "rk4", 0.01),  # periodic: centre-aligned, shifted half a cell
    ("fisher-kpp", (40,), 2.0, "rk4", 0.05),  # Neumann, nonlinear: edge-aligned
    ("fitzhugh-nagumo", (8, 8), 0.2, "rk4", 0.01),  # 2-D, sampled random initial values
]


@pytest.mark.parametrize("name, cells, t_end, method, dt", CASES, ids=[c[0] for c in CASES])
def test_exported_script_matches_pdeforge(julia_project, tmp_path, name, cells, t_end, method, dt):
    from pdeforge.julia.export import on_pdeforge_grid, read_mol_csv

    script = tmp_path / f"{name}.jl"
    result = tmp_path / f"{name}.csv"
    pf.export_julia(name, grid=cells, t_span=t_end, method=method, dt=dt, output=pf.Output(save_every=t_end / 2),
                    script=script)
    proc = subprocess.run([julia_project, f"--project={ROOT}", str(script)], capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "PDEFORGE_MOL_OUT": str(result)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    grid = pf.UniformGrid.from_spec(pf.models.get_model(name).system().domain, cells)
    mol = on_pdeforge_grid(read_mol_csv(result), grid)
    ours = pf.solve(name, grid=cells, t_span=t_end, method=method, dt=dt, backend="numpy", progress=False, output=pf.Output(save_every=t_end / 2))
    np.testing.assert_allclose(mol.t.values, ours.t.values)
    for f in ours.data_vars:
        scale = float(np.abs(ours[f]).max())
        # the same second-order scheme and the same RK4 steps: agreement far below the discretization error
        np.testing.assert_allclose(mol[f].values, ours[f].values, rtol=1e-6, atol=1e-8 * scale)
    if name == "heat":
        exact = pf.models.get_model("heat").exact_solution(t_end, grid)["u"]
        assert np.abs(mol.u.isel(t=-1).values - exact).max() < 0.02  # second order on 16 cells


def test_methodoflines_route_in_process(juliacall_session):
    from pdeforge.julia.mol_route import solve_methodoflines
    from pdeforge.julia.export import on_pdeforge_grid

    ds = solve_methodoflines("heat", grid=16, t_span=0.5, method="rk4", dt=0.01, save_every=0.25)
    grid = pf.UniformGrid.from_spec(pf.models.get_model("heat").system().domain, 16)
    ours = pf.solve("heat", grid=16, t_span=0.5, method="rk4", dt=0.01, backend="numpy", progress=False, output=pf.Output(save_every=0.25))
    np.testing.assert_allclose(on_pdeforge_grid(ds, grid).u.values, ours.u.values, rtol=1e-6, atol=1e-9)


def test_methodoflines_route_starts_at_t0(juliacall_session):
    """PDEBase reads the initial condition only at the start of Interval(t0, t1)."""
    from pdeforge.julia.export import on_pdeforge_grid
    from pdeforge.julia.mol_route import solve_methodoflines

    ds = solve_methodoflines("heat", grid=16, t_span=(0.25, 0.75), method="rk4", dt=0.01, save_every=0.25)
    grid = pf.UniformGrid.from_spec(pf.models.get_model("heat").system().domain, 16)
    ours = pf.solve("heat", grid=16, t_span=(0.25, 0.75), method="rk4", dt=0.01, backend="numpy", progress=False, output=pf.Output(save_every=0.25))
    np.testing.assert_allclose(ds.t.values, ours.t.values)
    np.testing.assert_allclose(on_pdeforge_grid(ds, grid).u.values, ours.u.values, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cells", [50, 100, 200])
def test_methodoflines_grid_on_two_pi_has_no_extra_point(juliacall_session, cells):
    """lo:dx:hi on [h/2, 2 pi + h/2] can end an ulp short; mol_axis must keep n + 1 nodes, uniform."""
    from pdeforge.julia.mol_route import solve_methodoflines

    import math

    system = pf.PDESystem({"u": "0.1*laplace(u)"}, domain=[(0.0, 2 * math.pi)], bcs={"u": {"x": "periodic"}})
    ds = solve_methodoflines(system, grid=cells, t_span=0.01, ic={"u": "sin(x)"}, method="rk4", dt=0.001,
                             save_every=0.01)
    x = ds.x.values
    assert x.size == cells + 1
    np.testing.assert_allclose(np.diff(x), 2 * np.pi / cells, rtol=1e-12)


def test_weno_for_mixed_derivatives_in_both_routes(julia_project, juliacall_session, tmp_path):
    from pdeforge.julia.export import read_mol_csv
    from pdeforge.julia.mol_route import solve_methodoflines

    system = pf.PDESystem({"u": "0.1*laplace(u) + 0.05*d(d(u, x), y)"}, domain=[(0.0, 1.0), (0.0, 1.0)],
                          bcs={"u": {"x": "dirichlet", "y": "dirichlet"}})
    kw = dict(grid=(8, 8), t_span=0.02, ic={"u": "sin(pi*x)*sin(pi*y)"}, method="rk4", dt=0.001)
    script = tmp_path / "mixed.jl"
    text = pf.export_julia(system, output=pf.Output(save_every=0.01), script=script, **kw)
    assert "WENOScheme()" in text
    proc = subprocess.run([julia_project, f"--project={ROOT}", str(script)], capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "PDEFORGE_MOL_OUT": str(tmp_path / "mixed.csv")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "independent_variables" not in proc.stderr  # MTK 11's warning for @variables t
    from_script = read_mol_csv(tmp_path / "mixed.csv")
    in_process = solve_methodoflines(system, save_every=0.01, **kw)
    np.testing.assert_allclose(in_process.u.values, from_script.u.values, rtol=1e-12, atol=1e-12)


def test_large_tables_array_discretization_and_sparse_bdf(julia_project, tmp_path):
    """A 24 x 20 sampled initial state (files next to the script), ArrayDiscretization, FBDF with jac."""
    from pdeforge.julia.export import on_pdeforge_grid, read_mol_csv

    cases = [
        ("fitzhugh-nagumo", (24, 20), dict(method="rk4", dt=0.01), "pdeforge_read("),
        ("fisher-kpp", (4096,), dict(method="rk4", dt=1e-7), "ArrayDiscretization()"),
        ("fisher-kpp", (64,), dict(method="bdf"), "jac = true, sparse = true"),
    ]
    for name, cells, kw, piece in cases:
        t_end = 0.02 if name == "fitzhugh-nagumo" else (4e-7 if cells == (4096,) else 0.5)
        script = tmp_path / f"{name}_{cells[0]}.jl"
        text = pf.export_julia(name, grid=cells, t_span=t_end, output=pf.Output(save_every=t_end), script=script,
                               **kw)
        assert piece in text
        result = tmp_path / f"{name}_{cells[0]}.csv"
        proc = subprocess.run([julia_project, f"--project={ROOT}", str(script)], capture_output=True, text=True,
                              timeout=3600, env={**os.environ, "PDEFORGE_MOL_OUT": str(result)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "does not divide domain exactly" not in proc.stderr
        grid = pf.UniformGrid.from_spec(pf.models.get_model(name).system().domain, cells)
        mol = on_pdeforge_grid(read_mol_csv(result), grid)
        ours = pf.solve(name, grid=cells, t_span=t_end, output=pf.Output(save_every=t_end), backend="numpy",
                        progress=False, **kw)
        for f in ours.data_vars:
            scale = float(np.abs(ours[f]).max())
            # fixed steps: the same numbers; FBDF against pdeforge's BDF: both within their tolerances
            rtol, atol = (1e-6, 1e-8 * scale) if kw["method"] != "bdf" else (1e-3, 1e-4 * scale)
            np.testing.assert_allclose(mol[f].values, ours[f].values, rtol=rtol, atol=atol)

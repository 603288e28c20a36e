"""``export-julia``: the MethodOfLines script of every catalogue model parses and is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from julia_helpers import syntax_errors

import pdeforge as pf
from pdeforge.julia.export import mol_problem, on_pdeforge_grid, read_mol_csv
from pdeforge.julia.methodoflines import MethodOfLinesUnsupported, check_expressible
from pdeforge.models import list_models

ROOT = Path(__file__).resolve().parents[2]


def _small_grid(model):
    return tuple(4 if n > 4 else n for n in model.grid) if len(model.grid) > 1 else (12,)


def _export(model):
    """The script of ``model`` on a small grid, or None (with the reason) when MethodOfLines cannot express it."""
    t_end = model.t_end / 100
    try:
        return pf.export_julia(model.name, grid=_small_grid(model), t_span=t_end,
                               output=pf.Output(save_every=t_end / 2)), None
    except MethodOfLinesUnsupported as exc:
        return None, str(exc)


@pytest.mark.parametrize("model", list_models(), ids=lambda m: m.name)
def test_every_model_exports_a_script_that_parses(model):
    script, reason = _export(model)
    if script is None:
        # only a discretization MethodOfLines has no counterpart for may be refused, clearly
        assert getattr(model, "discretization", "finite-difference") != "finite-difference" or "MethodOfLines" in reason
        pytest.skip(f"{model.name}: {reason}")
    assert syntax_errors(script) == []


@pytest.mark.parametrize("model", list_models(), ids=lambda m: m.name)
def test_script_declares_every_part_of_the_model(model):
    script, reason = _export(model)
    if script is None:
        pytest.skip(f"{model.name}: {reason}")
    system = model.system()
    axes = system.axes
    args = ", ".join(["t", *axes])
    variables = re.search(r"^@variables (.*)$", script, re.M).group(1).split()
    assert variables == [f"{f}(..)" for f in system.fields]
    for p, value in system.params.items():
        assert re.search(rf"^@parameters {re.escape(p)}_* = {re.escape(repr(float(value)))}$", script, re.M), p
    # ModelingToolkit 11 warns about independent variables declared any other way
    assert f"@independent_variables {' '.join(['t', *axes])}" in script
    for f in system.fields:
        assert f"(Dt({f}({args})) ~ " in script  # one equation per field
        assert re.search(rf"^    \({f}\(0\.0, {', '.join(axes)}\) ~ ", script, re.M)  # initial value
    for (f, a), (low, high) in system.bcs.items():
        ax = axes[a]
        if low.periodic:
            assert f"# {f}, {ax} low: periodic" in script
        else:
            assert f"# {f}, {ax} low: {low.describe()}" in script
            assert f"# {f}, {ax} high: {high.describe()}" in script
    for ax, (lo, hi) in zip(axes, system.domain):
        assert f"{ax} ∈ Interval({ax}_min, {ax}_max)" in script
        assert re.search(rf"^{ax}_min = ", script, re.M) and re.search(rf"^{ax}_max = ", script, re.M)
    assert "t ∈ Interval(0.0, " in script
    assert f"@named pdesys = PDESystem(eqs, bcs, domains, [{args}]" in script
    for piece in ("MOLFiniteDifference([", "prob = discretize(pdesys, discretization", "sol = solve(prob, ",
                  'open(out, "w") do io'):
        assert piece in script


def test_grid_matches_pdeforge_cells():
    # periodic: centre-aligned, shifted by half a cell, N + 1 points (the last is the periodic copy)
    p = mol_problem("gray-scott", grid=(8, 6), t_span=1.0)
    assert p.align == "center" and p.points == [9, 7] and p.matches_grid
    (lo, hi), h = p.bounds[0], 2.5 / 8
    assert lo == pytest.approx(h / 2) and hi == pytest.approx(2.5 + h / 2)
    # no periodic axis: edge-aligned, the boundaries on the faces, N points
    p = mol_problem("fitzhugh-nagumo", grid=(8, 6), t_span=0.1)
    assert p.align == "edge" and p.points == [8, 6] and p.bounds == [(-1.0, 1.0), (-1.0, 1.0)]


def test_fixed_step_takes_whole_steps_between_save_times():
    p = mol_problem("heat", grid=16, t_span=0.1, save_every=0.05, method="rk4", dt=0.03)
    assert 0.05 / p.dt == pytest.approx(round(0.05 / p.dt)) and p.dt <= 0.03
    script = pf.export_julia("heat", grid=16, t_span=0.1, output=pf.Output(save_every=0.05), method="rk4", dt=0.03)
    assert "using OrdinaryDiffEqLowOrderRK: RK4" in script and "adaptive = false, tstops = saveat" in script


def test_boundary_conditions_of_every_kind():
    system = pf.PDESystem(
        {"u": "k*laplace(u) - u*w", "w": "d(w, x, 2) + u"},
        params={"k": 0.5, "a": 2.0},
        domain=[(0.0, 1.0), (0.0, 2.0)],
        bcs={
            "u": {"x": ({"dirichlet": "sin(t)*y"}, {"neumann": "a*t"}), "y": {"robin": ("a", 1, "cos(x)")}},
            "w": {"x": "neumann", "y": ("dirichlet", {"dirichlet": "exp(-t)"})},
        },
    )
    script = pf.export_julia(system, grid=(6, 4), t_span=0.5, ic={"u": "sin(pi*x)*y", "w": 0.0})
    assert syntax_errors(script) == []
    assert "(u(t, x_min, y) ~ y * sin(t))" in script
    assert "(Dx(u(t, x_max, y)) ~ a * t)" in script
    assert "(a * u(t, x, y_min) - Dy(u(t, x, y_min)) ~ cos(x))" in script  # outward normal at the low side
    assert "(a * u(t, x, y_max) + Dy(u(t, x, y_max)) ~ cos(x))" in script
    assert "(Dx(w(t, x_min, y)) ~ 0)" in script and "(w(t, x, y_max) ~ exp(-t))" in script
    assert "(u(0.0, x, y) ~ y * sin(pi * x))" in script  # expression initial values stay symbolic
    assert "u_ic_table" not in script and "grid_align = edge_align" in script


def test_fourth_order_walls_write_both_conditions_of_each_wall():
    """A wall of a fourth-order equation is a pair (symbolic/walls.py); the script states both."""
    even = pf.PDESystem({"c": "laplace(c**3 - c - laplace(c))"}, domain=[(0.0, 1.0), (0.0, 2.0)], bcs="neumann")
    script = pf.export_julia(even, grid=(6, 4), t_span=0.1, ic={"c": "0.1*cos(pi*x)"})
    assert syntax_errors(script) == []
    for face in ("c(t, x_min, y)", "c(t, x_max, y)"):
        assert f"(Dx({face}) ~ 0)" in script and f"((Differential(x)^3)({face}) ~ 0)" in script
    for face in ("c(t, x, y_min)", "c(t, x, y_max)"):
        assert f"(Dy({face}) ~ 0)" in script and f"((Differential(y)^3)({face}) ~ 0)" in script
    hinged = pf.PDESystem({"u": "-d(u, x, 4)"}, domain=[(0.0, 1.0)], bcs={"u": "dirichlet", "laplace(u)": "dirichlet"})
    script = pf.export_julia(hinged, grid=8, t_span=0.1, ic={"u": "sin(pi*x)"})
    assert syntax_errors(script) == []
    for face in ("u(t, x_min)", "u(t, x_max)"):
        assert f"({face} ~ 0)" in script and f"(Dxx({face}) ~ 0)" in script


def test_derivative_forms_and_functions():
    system = pf.PDESystem(
        {"u": "div((1 + u**2)*grad(u)) + Heaviside(x - 0.5, 1)*erf(u) + d(u, x, y)"},
        params={}, domain=[(0, 1), (0, 1)], bcs="dirichlet",
    )
    script = pf.export_julia(system, grid=4, t_span=0.1, ic={"u": "x*y"}, method="bdf")
    assert syntax_errors(script) == []
    assert "Dx((u(t, x, y) ^ 2 + 1) * Dx(u(t, x, y)))" in script  # nonlinear Laplacian form
    assert "using SpecialFunctions: erf" in script and "heaviside(a, h0) = ifelse(" in script
    assert "advection_scheme = WENOScheme()" in script  # mixed derivative
    assert "sol = solve(prob, FBDF(); reltol = 1e-06, abstol = 1e-09" in script


def test_unsupported_systems_get_a_clear_error():
    burgers_like = pf.PDESystem({"u": "d(u, x)*d(u, x) + laplace(u)"}, domain=[(0, 1)], bcs="periodic")
    with pytest.raises(MethodOfLinesUnsupported, match="odd-order derivatives"):
        pf.export_julia(burgers_like, grid=8, t_span=0.1, ic={"u": "sin(x)"})
    heat = pf.models.get_model("heat").system()
    with pytest.raises(MethodOfLinesUnsupported, match="spectral discretization has no MethodOfLines"):
        check_expressible(heat, "spectral")
    mixed = pf.PDESystem({"u": "laplace(u)", "v": "laplace(v)"}, domain=[(0, 1)],
                         bcs={"u": "periodic", "v": "neumann"})
    with pytest.raises(MethodOfLinesUnsupported, match="some fields are periodic"):
        pf.export_julia(mixed, grid=8, t_span=0.1, ic={"u": 0.0, "v": 0.0})


def test_parameter_and_field_names_are_made_julia_safe():
    system = pf.PDESystem({"end": "eqs*laplace(end)"}, params={"eqs": 1.0}, domain=[(0, 1)], bcs="neumann")
    script = pf.export_julia(system, grid=6, t_span=0.1, ic={"end": "x"})
    assert syntax_errors(script) == []
    assert "@variables end_(..)" in script and "@parameters eqs_ = 1.0" in script
    assert "(Dt(end_(t, x)) ~ eqs_ * Dxx(end_(t, x)))" in script


def test_sampled_initial_values_are_pdeforge_cells():
    model = pf.models.get_model("gray-scott")
    p = mol_problem("gray-scott", grid=(5, 4), t_span=1.0, seed=3)
    _, defaults = model.setup(grid=(5, 4), seed=3)
    for iv, f in zip(p.initial, ("u", "v")):
        np.testing.assert_array_equal(iv.table, defaults["ic"][f])
    script = pf.export_julia("gray-scott", grid=(5, 4), t_span=1.0, seed=3)
    body = script.split("const u_ic_table = PDEForgeTable{2}(permutedims(reshape([", 1)[1].split("], 4, 5)", 1)[0]
    values = np.array([float(v) for v in body.replace(",", " ").split()])
    np.testing.assert_array_equal(values, defaults["ic"]["u"].ravel())  # C order, reshaped (4, 5) then permuted
    assert "@register_symbolic u_ic(x, y)" in script


def test_read_mol_csv_and_select_pdeforge_cells(tmp_path):
    grid = pf.UniformGrid.from_spec([(0.0, 1.0), (0.0, 2.0)], (4, 2))
    xs = np.concatenate([[-0.125], grid.coordinates[0], [1.125]])  # edge_align: one point beyond each face
    ys = np.concatenate([[-0.5], grid.coordinates[1], [2.5]])
    rows = ["t,x,y,u"]
    for t in (0.0, 0.5):
        for x in xs:
            for y in ys:
                rows.append(f"{t},{x},{y},{t + 10 * x + 100 * y}")
    path = tmp_path / "r.csv"
    path.write_text("\n".join(rows[:1] + rows[:0:-1]) + "\n")  # any row order
    ds = read_mol_csv(path)
    assert ds.u.dims == ("t", "x", "y") and ds.u.shape == (2, 6, 4)
    on = on_pdeforge_grid(ds, grid)
    X, Y = grid.mesh()
    np.testing.assert_allclose(on.u.isel(t=1).values, 0.5 + 10 * X + 100 * Y)


def test_cli_export_julia(tmp_path):
    out = tmp_path / "fk.jl"
    proc = subprocess.run(
        [sys.executable, "-m", "pdeforge.cli", "export-julia", "fisher-kpp", "--grid", "20", "--t-end", "1",
         "--param", "D=0.5", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "python")},
    )
    assert proc.returncode == 0, proc.stderr
    script = out.read_text()
    assert syntax_errors(script) == [] and "@parameters D = 0.5" in script and 'fk.csv' in script
    bad = subprocess.run(
        [sys.executable, "-m", "pdeforge.cli", "export-julia", "no-such-model"],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "python")},
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown model" in bad.stderr
    for args, message in ((["--out", str(tmp_path / "x.txt")], ".jl file"), (["--param", "k"], "NAME=VALUE"),
                          (["--param", "q=1"], "no parameter 'q'")):
        bad = subprocess.run(
            [sys.executable, "-m", "pdeforge.cli", "export-julia", "heat", *args],
            capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "python")},
        )
        assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and message in bad.stderr, bad.stderr


def test_large_initial_tables_are_written_next_to_the_script(tmp_path):
    """More than LITERAL_VALUES cells: a little-endian Float64 file per field, read with Base's read!."""
    from julia_bindings import unbound_names

    from pdeforge.errors import PDEForgeError
    from pdeforge.julia.script import LITERAL_VALUES

    grid = (20, 16)
    assert grid[0] * grid[1] > LITERAL_VALUES
    out = tmp_path / "gs.jl"
    script = pf.export_julia("gray-scott", grid=grid, t_span=1.0, seed=3, script=out)
    _, defaults = pf.models.get_model("gray-scott").setup(grid=grid, seed=3)
    for f in ("u", "v"):
        data = np.fromfile(tmp_path / f"gs_{f}_ic.f64", dtype="<f8")
        np.testing.assert_array_equal(data, defaults["ic"][f].ravel())  # C order, as the reshape expects
        assert f'pdeforge_read("gs_{f}_ic.f64", {data.size}), 16, 20), (2, 1,))' in script
    assert "PDEForgeTable{2}(permutedims(reshape([" not in script  # no literal left
    assert len(script) < 12_000
    assert "joinpath(@__DIR__, file)" in script and "read!(path, Vector{Float64}(undef, n))" in script
    assert syntax_errors(script) == [] and unbound_names(script) == []
    with pytest.raises(PDEForgeError, match=r"script=FILE\.jl"):
        pf.export_julia("gray-scott", grid=grid, t_span=1.0, seed=3)
    small = pf.export_julia("gray-scott", grid=(5, 4), t_span=1.0, seed=3)
    assert "pdeforge_read" not in small  # 20 values stay a literal


def test_script_globals_do_not_shadow_base():
    """`values = ...` at top level would shadow Base.values (and fail if Main had resolved it)."""
    from julia_bindings import exports, top_level_names

    base = set(exports()["Base"]["exports"])
    for model in list_models():
        script, _ = _export(model)
        if script is not None:
            assert not (top_level_names(script) & base), (model.name, sorted(top_level_names(script) & base))


def test_grid_points_are_checked_before_methodoflines_builds_its_ranges():
    """Every axis goes through mol_axis (MethodOfLines' lo:dx:hi can gain a point from rounding)."""
    import math

    periodic = pf.PDESystem({"u": "-d(u, x)"}, domain=[(0.0, 2 * math.pi)], bcs={"u": {"x": "periodic"}})
    script = pf.export_julia(periodic, grid=50, t_span=0.01, output=pf.Output(save_every=0.01), ic={"u": "sin(x)"})
    assert "function mol_axis(lo, hi, n, edge)" in script
    assert "MOLFiniteDifference([x => mol_axis(x_min, x_max, 51, false)], t;" in script  # 50 nodes + the copy
    walled = pf.PDESystem({"u": "d(u, x, 2)"}, domain=[(0.0, 1.0)], bcs={"u": {"x": "dirichlet"}})
    script = pf.export_julia(walled, grid=8, t_span=0.01, output=pf.Output(save_every=0.01), ic={"u": "sin(pi*x)"})
    assert "MOLFiniteDifference([x => mol_axis(x_min, x_max, 8, true)], t;" in script  # 8 cells, edge_align


def test_large_grids_use_array_discretization_and_bdf_a_sparse_jacobian():
    from pdeforge.julia.methodoflines import ARRAY_DISCRETIZATION_POINTS

    small = pf.export_julia("heat", grid=64, t_span=0.01, output=pf.Output(save_every=0.01), method="bdf",
                            ic={"u": "sin(pi*x)"})
    assert "ArrayDiscretization" not in small
    assert "prob = discretize(pdesys, discretization; jac = true, sparse = true)" in small
    large = pf.export_julia("heat", grid=ARRAY_DISCRETIZATION_POINTS, t_span=1e-6, output=pf.Output(save_every=1e-6), method="rk45",
                          ic={"u": "sin(pi*x)"})
    assert "discretization_strategy = ArrayDiscretization()" in large
    assert "prob = discretize(pdesys, discretization)\n" in large  # explicit: no Jacobian

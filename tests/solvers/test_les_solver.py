"""The spectral LES solver: exact Taylor-Green decay at the integrator's order, energy
conservation of the inviscid truncated system, incompressibility, numpy = torch, diagnostics,
the forced laminar Kolmogorov flow, blow-up handling and the command line."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.cli import main
from pdeforge.errors import BlowUpWarning, PDEForgeError
from pdeforge.models import get_model
from pdeforge.models.les import KOLMOGOROV_N, solenoidal_random_field


def _energy_error(system, ic, method, dt, t_end, nu):
    ds = pf.solve(system, grid=16, t_span=t_end, ic=ic, method=pf.methods.with_settings(method, stability="ignore"), dt=dt, progress=False, output=pf.Output(save_every=t_end))
    energy = ds.energy.values
    return abs(energy[-1] / (energy[0] * math.exp(-2 * nu * 2 * t_end)) - 1)


@pytest.mark.parametrize("method, order", [("rk4", 4), ("ssprk3", 3), ("euler", 1)])
def test_taylor_green_energy_decays_exactly_to_the_integrators_order(method, order):
    """E(t) = E0 exp(-2 nu |k|^2 t), |k|^2 = 2: the error falls as dt^order (space is exact)."""
    nu = 0.1
    system = pf.les_system(2, nu=nu, Cs=0.0)
    grid = pf.UniformGrid.from_spec(system.domain, 16)
    ic = get_model("taylor-green").initial_condition(grid)
    errors = [_energy_error(system, ic, method, dt, 4.0, nu) for dt in (0.5, 0.25, 0.125)]
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(observed - order) < 0.15), (errors, observed)
    assert errors[-1] < {4: 1e-8, 3: 2e-6, 1: 0.03}[order]


def test_taylor_green_fields_match_the_exact_solution():
    model = get_model("taylor-green")
    ds = pf.solve("taylor-green", grid=16, t_span=2.0, progress=False, output=pf.Output(save_every=1.0))
    grid = pf.UniformGrid.from_spec(model.domain, 16)
    exact = model.exact_solution(2.0, grid)
    for f in ("u", "v"):
        assert np.abs(ds[f].isel(t=-1).values - exact[f]).max() < 1e-8
    assert ds.attrs["backend"] == "numpy" and ds.attrs["discretization"] == "fourier pseudo-spectral"


@pytest.mark.parametrize("dim, n, t_end", [(2, 16, 2.0), (3, 8, 0.5)])
def test_inviscid_truncated_system_conserves_energy_up_to_time_stepping(dim, n, t_end):
    """nu = Cs = 0, no forcing: the dealiased Galerkin system conserves energy exactly; RK4 loses O(dt^5)."""
    system = pf.les_system(dim, nu=0.0, Cs=0.0)
    grid = pf.UniformGrid.from_spec(system.domain, n)
    ic = dict(zip("uvw", solenoidal_random_field(grid, np.random.default_rng(1), kp=3)))
    drift = []
    for dt in (0.02, 0.01):
        ds = pf.solve(system, grid=grid, t_span=t_end, ic=ic, method=pf.RK4(stability="ignore"), dt=dt, progress=False, output=pf.Output(save_every=t_end))
        drift.append(abs(ds.energy.values[-1] / ds.energy.values[0] - 1))
    assert drift[0] < 2e-6
    assert drift[0] / drift[1] > 2**4 * 0.9, drift  # shrinks with dt at least at fourth order


def test_les_hit_stays_divergence_free_and_diagnostics_are_consistent():
    ds = pf.solve("les-hit", grid=12, t_span=0.2, progress=False, seed=3, output=pf.Output(save_every=0.02))
    op = pf.spectral_operator(pf.les_system(3), 12)
    u = np.stack([ds[c].values for c in "uvw"], axis=1)
    div = np.abs(op.divergence(u)).max()
    grad_scale = np.sqrt(2 * ds.enstrophy.values.max())
    assert div < 1e-12 * grad_scale
    # the spectrum sums to the energy, and the energy matches the fields
    np.testing.assert_allclose(ds.E_k.sum("k").values * 1.0, ds.energy.values, rtol=1e-12)
    np.testing.assert_allclose(0.5 * (u**2).sum(axis=1).mean(axis=(1, 2, 3)), ds.energy.values, rtol=1e-12)
    # energy_rate (from the right-hand side) is the time derivative of the energy series
    e, t = ds.energy.values, ds.t.values
    fd = (e[2:] - e[:-2]) / (t[2:] - t[:-2])
    np.testing.assert_allclose(fd, ds.energy_rate.values[1:-1], rtol=2e-3)
    # Smagorinsky adds dissipation beyond the resolved viscous one: -dE/dt > 2 nu Z
    assert np.all(-ds.energy_rate.values > ds.dissipation.values)
    assert ds.E_k.dims == ("t", "k") and ds.u.dims == ("t", "x", "y", "z")


def test_numpy_and_torch_solvers_agree_to_round_off():
    pytest.importorskip("torch")
    kw = dict(grid=8, t_span=0.1, output=pf.Output(save_every=0.05), progress=False, seed=2, dt=0.01)
    a = pf.solve("les-hit", backend="numpy", **kw)
    b = pf.solve("les-hit", backend=pf.Torch(device="cpu"), **kw)
    for f in ("u", "v", "w", "energy"):
        scale = float(np.abs(a[f]).max())
        assert float(np.abs(a[f] - b[f]).max()) <= 1e-12 * scale
    c = pf.solve("les-hit", backend=pf.Torch(dtype="float32"), **kw)
    assert float(np.abs(a.u - c.u).max()) <= 1e-4 * float(np.abs(a.u).max())
    assert b.attrs["backend"] == "torch" and c.attrs["dtype"] == "float32"


def test_laminar_kolmogorov_flow_is_steady():
    """u = F/(nu n^2) sin(n y) balances the forcing exactly: solver and residual both see it."""
    nu, F = 0.5, 1.0
    system = get_model("kolmogorov-flow").system(nu=nu, F=F)
    grid = pf.UniformGrid.from_spec(system.domain, 16)
    x, y = grid.mesh()
    laminar = F / (nu * KOLMOGOROV_N**2) * np.sin(KOLMOGOROV_N * y)
    ds = pf.solve(system, grid=grid, t_span=1.0, ic={"u": laminar, "v": 0 * y}, progress=False, output=pf.Output(save_every=0.5))
    assert np.abs(ds.u.isel(t=-1).values - laminar).max() < 1e-12
    op = pf.spectral_operator(system, grid)
    R, _ = op.residual(np.stack([np.stack([laminar, 0 * y])] * 3), 0.1)
    assert np.abs(R).max() < 1e-12


def test_blow_up_keeps_the_last_finite_state():
    system = pf.les_system(2, nu=0.05, Cs=0.0)
    grid = pf.UniformGrid.from_spec(system.domain, 16)
    ic = dict(zip("uv", solenoidal_random_field(grid, np.random.default_rng(0))))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pf.solve(system, grid=grid, t_span=5000.0, ic=ic, dt=5.0, progress=False, method=pf.ETDRK4(stability="ignore"), output=pf.Output(save_every=5.0))
    assert ds.attrs["status"].startswith("blew up")
    assert any(issubclass(w.category, BlowUpWarning) for w in caught)
    assert np.isfinite(ds.u.values).all() and 2 <= len(ds.t) and float(ds.t[-1]) < 5000.0


def test_spectral_input_errors():
    with pytest.raises(PDEForgeError, match="not available with the spectral"):
        pf.solve("taylor-green", grid=8, t_span=0.1, method="bdf")
    with pytest.raises(PDEForgeError, match="spectral kernels"):
        pf.solve("taylor-green", grid=8, t_span=0.1, backend="numba")
    with pytest.raises(PDEForgeError, match="needs discretization='spectral'"):
        pf.solve("taylor-green", grid=8, t_span=0.1, discretization="fd")
    with pytest.raises(PDEForgeError, match="compile_spectral"):
        pf.compile(pf.les_system(2))
    with pytest.raises(PDEForgeError, match="CFL limit"):
        pf.solve("taylor-green", grid=8, t_span=1.0, dt=1.0, method=pf.ETDRK4(stability="error"))


def test_periodic_reaction_diffusion_runs_spectrally_too():
    """discretization='spectral' works for any periodic system: heat equation, exact decay."""
    ds = pf.solve("heat", grid=32, t_span=0.5, discretization="spectral", dt=0.01, progress=False, output=pf.Output(save_every=0.5))
    x = ds.x.values
    assert np.abs(ds.u.isel(t=-1).values - math.exp(-0.5) * np.sin(x)).max() < 1e-9
    assert "E_k" not in ds  # no velocity, no flow diagnostics


def test_cli_runs_les_models_with_output_and_plot(tmp_path, capsys):
    out, png = tmp_path / "tg.nc", tmp_path / "tg.png"
    assert main(["run", "taylor-green", "--grid", "16", "--t-end", "1", "--out", str(out), "--plot", str(png),
                 "--quiet"]) == 0
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert set(ds.data_vars) >= {"u", "v", "energy", "enstrophy", "dissipation", "E_k"}
        assert ds.E_k.dims == ("t", "k") and json.loads(ds.attrs["parameters"])["Cs"] == 0.0
        assert ds.attrs["status"] == "completed"
    assert png.stat().st_size > 10_000
    assert main(["run", "les-hit", "--grid", "8", "--t-end", "0.05", "--quiet", "--param", "Cs=0.2"]) == 0
    assert main(["show", "les-hit"]) == 0
    shown = capsys.readouterr().out
    assert "12 inverse and 9 forward real FFTs" in shown and "nu_t = (Cs*Delta)**2*S_mag" in shown
    assert main(["run", "taylor-green", "--grid", "8", "--backend", "numba", "--quiet"]) == 2
    assert "spectral kernels" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["taylor-green", "les-hit", "kolmogorov-flow"])
def test_flow_models_run_with_defaults(name):
    model = get_model(name)
    assert model.discretization == "spectral"
    ds = pf.solve(name, grid=8 if model.system().dim == 3 else 16, t_span=0.2, progress=False)
    assert ds.attrs["status"] == "completed" and ds.attrs["method"] == model.method == "etdrk4"
    assert all(np.isfinite(ds[f].values).all() for f in model.system().fields)
    assert name in model.describe() and "nu_t = (Cs*Delta)**2*S_mag" in model.describe()

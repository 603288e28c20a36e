"""Explicit step limits from the spectrum of the exact Jacobian, against bisected true limits.

The true limit is bisected with the solver's own stepper: the largest dt for which 400 steps
keep a random perturbation bounded (:func:`pdeforge.solvers.explicit.stability_spectrum.measured_dt_limit`).
The regions' extents are the textbook ones (Hairer & Wanner: forward Euler 2 on the real axis;
SSP-RK3 2.5127 and sqrt(3); classic RK4 2.7853 and 2 sqrt(2)).
"""

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.cli import main
from pdeforge.codegen.build import compile_system
from pdeforge.errors import SolverError
from pdeforge.models import get_model
from pdeforge.solvers.explicit import stability_spectrum as spectrum
from pdeforge.solvers.methods import get_method
from pdeforge.solvers.explicit.stability_spectrum import estimate_dt, measured_dt_limit, region_radii

L = [(0, 2 * np.pi)]
CASES = {
    "diffusion": (dict(equations={"u": "laplace(u)"}, bcs="neumann", domain=L), 48),
    "advection": (dict(equations={"u": "-d(u, x)"}, bcs="periodic", domain=L), 48),
    "kdv-dispersion": (dict(equations={"u": "-d(u, x, 3)"}, bcs="periodic", domain=L), 48),
    "wave-1d": (dict(equations={"u": "v", "v": "c**2*laplace(u)"}, params={"c": 2.0}, bcs="dirichlet", domain=L), 48),
    "wave-2d": (dict(equations={"u": "v", "v": "c**2*laplace(u)"}, params={"c": 2.0}, bcs="dirichlet",
                     domain=[(0, 1)] * 2), 12),
    "fourth-order": (dict(equations={"u": "-d(u, x, 4)"}, bcs="neumann", domain=L), 24),
}


@pytest.mark.parametrize("method, real, imag", [("euler", 2.0, 0.0), ("ssprk3", 2.5127, 3**0.5),
                                                ("rk4", 2.7853, 2 * 2**0.5)])
def test_region_extents_are_the_textbook_ones(method, real, imag):
    theta, r = region_radii(method)
    assert r[-1] == pytest.approx(real, abs=2e-4) and r[0] == pytest.approx(imag, abs=2e-4)


def _estimate_and_truth(case, method):
    kwargs, n = CASES[case]
    system = pf.PDESystem(**kwargs)
    kernel = compile_system(system, target="numpy")
    grid = pf.UniformGrid.from_spec(system.domain, n)
    y0 = np.zeros((len(system.fields), *grid.shape))
    est, _ = estimate_dt(system, grid, kernel, system.params, y0, 0.0, 1.0, get_method(method), 2, "fd")
    if est == 0:
        return est, None
    return est, measured_dt_limit(kernel.bind(grid), y0, method, est / 8, est * 8, steps=200, iterations=9)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", ["ssprk3", "rk4"])
def test_estimate_is_within_a_factor_two_of_the_true_limit(case, method):
    est, true = _estimate_and_truth(case, method)
    assert 0.5 <= est / true <= 1.05, (est, true)


@pytest.mark.parametrize("case, stable", [("diffusion", True), ("fourth-order", True), ("advection", False),
                                          ("wave-1d", False)])
def test_forward_euler(case, stable):
    est, true = _estimate_and_truth(case, "euler")
    if stable:
        assert 0.5 <= est / true <= 1.05, (est, true)
    else:  # an imaginary spectrum is outside forward Euler's disc for every dt
        assert est == 0


def test_euler_on_a_wave_is_refused_with_one_message():
    system = pf.PDESystem(**CASES["wave-1d"][0])
    with pytest.raises(SolverError, match="unstable for every step"):
        pf.solve(system, grid=16, t_span=(0, 0.1), method="euler", backend="numpy", progress=False,
                 ic={"u": "sin(x)", "v": "0"})


def test_probe_grid_gives_the_full_grids_limit(monkeypatch):
    kwargs, _ = CASES["wave-2d"]
    system = pf.PDESystem(**kwargs)
    kernel = compile_system(system, target="numpy")
    n = 32  # 2 x 32^2 unknowns: at most PROBE_UNKNOWNS, the full grid
    grid = pf.UniformGrid.from_spec(system.domain, n)
    y0 = np.zeros((2, n, n))
    full, what = estimate_dt(system, grid, kernel, system.params, y0, 0.0, 1.0, get_method("rk4"), 2, "fd")
    assert "probe" not in what
    monkeypatch.setattr(spectrum, "PROBE_UNKNOWNS", 1000)
    monkeypatch.setattr(spectrum, "PROBE_CELLS", 16)
    probe, what = estimate_dt(system, grid, kernel, system.params, y0, 0.0, 1.0, get_method("rk4"), 2, "fd")
    assert "16x16 probe" in what
    # CFL of the wave: rk4's imaginary extent over c * sqrt(sum_a 4 / h**2): the cell-centred
    # Dirichlet Laplacian (ghost -u) has eigenvalues -4/h^2 sin^2(k pi / (2n)), k = 1..n, and k = n
    # gives exactly 4/h^2
    h = 1 / n
    exact = 2 * 2**0.5 / (2.0 * np.sqrt(2 * 4 / h**2))
    assert full == pytest.approx(exact, rel=1e-3) and probe == pytest.approx(full, rel=0.05)


def test_cli_runs_a_wave_at_a_sensible_step(tmp_path, capsys):
    out = tmp_path / "w.nc"
    # h = 2 pi / 32: the rk4 limit is 2.83 h / (c sqrt 8) = 0.196; the old symbolic estimate was ~0.007
    assert main(["run", "wave", "--grid", "32x32", "--dt", "0.1", "--t-end", "1", "--backend", "numpy", "--out", str(out), "--quiet"]) == 0
    assert "exceeds" not in capsys.readouterr().err
    import xarray as xr

    with xr.open_dataset(out) as ds:
        exact = get_model("wave").exact_solution(1.0, tuple(np.meshgrid(ds.x, ds.y, indexing="ij")), {"c": 1.0})
        assert np.abs(ds.u[-1].values - exact["u"]).max() < 5e-3


def test_torch_backend_takes_the_same_spectral_limit_as_numpy():
    """A torch kernel has no NumPy Jacobian: the limit comes from the NumPy twin of its discretization."""
    pytest.importorskip("torch")
    system = pf.PDESystem({"u": "-d(u, x, 4)"}, domain=[(0, 1)], bcs="neumann", ic={"u": "cos(pi*x)"})
    runs = {b: pf.solve(system, grid=16, t_span=(0, 2e-5), backend=b, method="rk4", progress=False)
            for b in ("numpy", "torch")}
    dts = {b: ds.attrs["dt_chosen"] for b, ds in runs.items()}  # the step the stability limit chose
    # the spectral limit of rk4 for -u_xxxx at h = 1/16 is about 2.785 / (16 / h^4): the symbolic
    # estimate the torch target used before had no limit at all for a fourth derivative
    assert dts["torch"] == pytest.approx(dts["numpy"], rel=1e-12)
    assert 0.5 * 2.785 / (16 * 16**4) < dts["torch"] < 2.785 / (16 * 16**4)
    assert np.max(np.abs(runs["torch"].u.values - runs["numpy"].u.values)) < 1e-12


def test_numba_kernel_takes_its_limit_from_the_numpy_twin_with_the_same_spectrum():
    """The step check of a Numba kernel reads the NumPy kernel's Jacobian (no Numba Jacobian is
    compiled for a fixed-step run): the limit equals the one from the Numba kernel's own Jacobian,
    constants fixed before discretization included."""
    system = get_model("gray-scott").system()
    kernel = compile_system(system, target="numba", constants={"Dv": 0.0})
    grid = pf.UniformGrid.from_spec(system.domain, 20)
    y0 = np.stack([np.full(grid.shape, 0.5), np.random.default_rng(1).random(grid.shape)])
    m = get_method("rk4")
    params = {**system.params, "Dv": 0.0}
    est, what = estimate_dt(system, grid, kernel, params, y0, 0.0, 1.0, m, 2, "fd")
    assert not kernel.module._jac_ser.signatures  # the Numba Jacobian was not compiled for it
    own = spectrum.spectral_dt_limit(kernel, grid, params, [(y0, 0.0)], m)
    assert "spectrum of the Jacobian" in what
    assert est == pytest.approx(own.dt_max, rel=1e-9)


def test_probe_of_a_3d_grid_is_small_and_gives_the_exact_limit_of_a_dirichlet_laplacian():
    # the cell-centred Dirichlet Laplacian's largest eigenvalue is exactly 4/h^2 per axis (mode
    # k = n) at every grid size, so a 12^3 probe (1728 unknowns; a 48^3 probe took 26 s of
    # Arnoldi) gives the 64^3 grid's forward-Euler limit 2 / (12/h^2) = h^2/6 exactly
    system = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)] * 3, bcs="dirichlet")
    grid = pf.UniformGrid.from_spec(system.domain, 64)
    assert spectrum.probe_grid(grid, 1).shape == (12, 12, 12)
    assert spectrum.probe_grid(pf.UniformGrid.from_spec([(0, 1)], 4096), 1).shape == (48,)
    kernel = compile_system(system, target="numpy")
    est = spectrum.spectral_dt_limit(kernel, grid, {}, [(np.zeros((1, 64, 64, 64)), 0.0)], get_method("euler"))
    assert est.probe_shape == (12, 12, 12)
    assert est.dt_max == pytest.approx(grid.spacing[0] ** 2 / 6, rel=1e-6)

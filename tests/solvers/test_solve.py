"""solve(): blow-ups keep the last good state, files are written as the run goes, errors are clear."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr

import pdeforge as pf
from pdeforge.errors import BlowUpWarning, InitialConditionError, RunInterrupted, SolverError, StabilityWarning
from pdeforge.solvers.explicit import runge_kutta as steppers


@pytest.fixture
def heat():
    return pf.PDESystem({"u": "k*laplace(u)"}, params={"k": 1.0}, domain=[(0, 1)], bcs="neumann", name="heat1d")


def test_blow_up_stops_with_last_finite_state_in_dataset_and_file(heat, tmp_path):
    out = tmp_path / "run.nc"
    with pytest.warns(BlowUpWarning, match="non-finite"):
        ds = pf.solve(heat, grid=32, t_span=(0, 1.0), ic={"u": "cos(pi*x) + x"}, method=pf.Euler(stability="ignore"), dt=2e-3, progress=False, output=pf.Output(str(out), save_every=0.01))
    assert ds.attrs["status"].startswith("blew up")
    assert np.isfinite(ds.u.values).all()
    assert float(ds.t[-1]) < 1.0
    on_disk = xr.open_dataset(out)
    np.testing.assert_array_equal(on_disk.u.values, ds.u.values)
    np.testing.assert_array_equal(on_disk.t.values, ds.t.values)
    assert on_disk.attrs["status"] == ds.attrs["status"]
    on_disk.close()


def test_interrupt_keeps_every_frame(heat, tmp_path, monkeypatch):
    out = tmp_path / "run.nc"
    calls = {"n": 0}
    original = steppers.FixedStepRK.advance

    def interrupted(self, t_target, progress=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, t_target, progress)

    monkeypatch.setattr(steppers.FixedStepRK, "advance", interrupted)
    with pytest.raises(RunInterrupted) as info:
        pf.solve(heat, grid=16, t_span=(0, 0.1), ic={"u": "cos(pi*x)"}, method="rk4", progress=False, output=pf.Output(str(out), save_every=0.01))
    ds = info.value.dataset
    assert ds.sizes["t"] == 4 and "interrupted" in ds.attrs["status"]
    with xr.open_dataset(out) as on_disk:
        np.testing.assert_array_equal(on_disk.u.values, ds.u.values)


def test_dataset_attributes_and_coordinates(heat):
    ds = pf.solve(heat, grid=(20,), t_span=(0, 0.05), ic={"u": lambda x: np.cos(np.pi * x)}, method="ssprk3", progress=False, output=pf.Output(save_every=0.01))
    assert ds.u.dims == ("t", "x")
    np.testing.assert_allclose(ds.t, np.linspace(0, 0.05, 6))
    assert json.loads(ds.attrs["parameters"]) == {"k": 1.0}
    assert ds.attrs["method"] == "ssprk3" and ds.attrs["backend"] == "numba" and ds.attrs["steps"] > 0
    assert ds.attrs["compile_time_s"] > 0 and ds.attrs["wall_time_s"] > 0
    assert "u_t = k*laplace(u)" in ds.attrs["equations"]
    # zero-flux cosine mode decays as exp(-k pi^2 t)
    exact = np.exp(-np.pi**2 * 0.05) * np.cos(np.pi * ds.x.values)
    assert np.abs(ds.u[-1].values - exact).max() < 5e-3


def test_unstable_dt_warns_in_the_library(heat):
    with pytest.warns(StabilityWarning, match="exceeds the estimated euler stability limit"):
        pf.solve(heat, grid=32, t_span=(0, 1e-3), ic={"u": 0.0}, method="euler", dt=1e-3, progress=False)
    with pytest.raises(SolverError, match="try dt <="):
        pf.solve(heat, grid=32, t_span=(0, 1e-3), ic={"u": 0.0}, method=pf.Euler(stability="error"), dt=1e-3)


def test_default_dt_is_stable(heat):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = pf.solve(heat, grid=64, t_span=(0, 0.02), ic={"u": "cos(pi*x)"}, method="euler", progress=False)
    assert np.isfinite(ds.u.values).all() and ds.attrs["dt"] < 0.5 * (1 / 64) ** 2


@pytest.mark.parametrize(
    "ic, message",
    [
        (None, "no initial condition"),
        ({"v": 0.0}, "'v' is not a field"),
        ({"u": np.zeros(3)}, "does not match the grid"),
        ({"u": "x + q"}, "unknown name 'q'"),
        ({"u": lambda x: x / 0.0}, "NaN or infinite"),
    ],
)
def test_initial_condition_errors(heat, ic, message):
    with pytest.raises(InitialConditionError, match=message):
        pf.solve(heat, grid=8, t_span=1.0, ic=ic)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "leapfrog"}, "method 'leapfrog' is unknown"),
        ({"backend": "fortran"}, "backend 'fortran' is not available"),
        ({"t_span": (1, 0)}, "t0 < t_end"),
        ({"dt": -1.0}, "dt must be a positive number"),
        (lambda: {"output": pf.Output(save_every=0.0)}, "save_every must be a positive number"),
        ({"output": "/no/such/folder/x.nc"}, "does not exist"),
        ({"output": "x.csv"}, "use a .nc file name"),
        (lambda: {"discretization": pf.FiniteDifference(order=3)}, "order must be 2 or 4, got 3"),
    ],
)
def test_option_errors(heat, kwargs, message):
    args = dict(grid=8, t_span=1.0, ic={"u": 0.0})
    with pytest.raises(pf.errors.PDEForgeError, match=message):
        # option objects check their settings when they are made: inside the raises block
        pf.solve(heat, **(args | (kwargs() if callable(kwargs) else kwargs)))


def test_model_name_and_params(tmp_path):
    ds = pf.solve("heat", grid=32, t_span=0.1, params={"k": 2.0}, progress=False)
    exact = np.exp(-2.0 * 0.1) * np.sin(ds.x.values)
    assert np.abs(ds.u[-1].values - exact).max() < 2e-3
    with pytest.raises(pf.errors.SystemDefinitionError, match="no parameter 'q'"):
        pf.solve("heat", params={"q": 1.0})

"""Resume a run from its file: bit for bit for fixed steps, within tolerance for adaptive and implicit
ones; mismatched options, damaged files and cut frames are refused or repaired with one clear line."""

import json

import netCDF4
import numpy as np
import pdeforge as pf
import pytest
import xarray as xr
from pdeforge.errors import RunInterrupted, SolverError
from pdeforge.solvers.explicit import runge_kutta as steppers


@pytest.fixture
def forced():
    # time-dependent forcing: a resumed run must also continue the clock exactly
    return pf.PDESystem({"u": "k*laplace(u) + sin(3*t)*u"}, params={"k": 1.0}, domain=[(0, 1)], bcs="neumann",
                        name="forced-heat")


RUN = dict(grid=32, ic={"u": "cos(pi*x) + x"}, progress=False, backend="numpy")
EVERY = 0.01  # model time between saved frames


def _interrupted_at(n_advance: int, monkeypatch, stepper_cls=steppers.FixedStepRK):
    """Make the n-th call of ``advance`` raise Ctrl-C (a run stopped between two frames)."""
    calls = {"n": 0}
    original = stepper_cls.advance

    def advance(self, t_target, progress=None):
        calls["n"] += 1
        if calls["n"] == n_advance:
            raise KeyboardInterrupt
        return original(self, t_target, progress)

    monkeypatch.setattr(stepper_cls, "advance", advance)
    return original


@pytest.mark.parametrize("method", ["rk4", "ssprk3"])
def test_fixed_step_resume_after_ctrl_c_is_bit_for_bit(forced, tmp_path, monkeypatch, method):
    full = pf.solve(forced, t_span=(0, 0.1), method=method, output=pf.Output(save_every=EVERY), **RUN)
    out = tmp_path / "run.nc"
    original = _interrupted_at(5, monkeypatch)
    with pytest.raises(RunInterrupted) as info:
        pf.solve(forced, t_span=(0, 0.1), method=method, output=pf.Output(str(out), save_every=EVERY), **RUN)
    assert info.value.out == out and "resume=True" in str(info.value)
    monkeypatch.setattr(steppers.FixedStepRK, "advance", original)
    with xr.open_dataset(out) as part:
        assert part.sizes["t"] == part.attrs["frames_complete"] == 5
    resumed = pf.solve(forced, t_span=(0, 0.1), method=method, output=pf.Output(str(out), save_every=EVERY, resume=True), **RUN)
    assert resumed.sizes["t"] == full.sizes["t"] == 11
    np.testing.assert_allclose(resumed.u.values, full.u.values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(resumed.t.values, full.t.values)
    assert resumed.attrs["steps"] == full.attrs["steps"] and resumed.attrs["status"] == "completed"
    assert "resumed at t = 0.04" in resumed.attrs["history"]


def test_resume_to_a_later_end_continues_the_output_times(forced, tmp_path):
    out = tmp_path / "run.nc"
    full = pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(save_every=EVERY), **RUN)
    pf.solve(forced, t_span=(0, 0.05), method="rk4", output=pf.Output(str(out), save_every=EVERY), **RUN)
    resumed = pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(str(out), save_every=EVERY, resume=True, in_memory=False), **RUN)
    np.testing.assert_allclose(resumed.u.values, full.u.values, rtol=0, atol=1e-12)
    resumed.close()
    # already at t_end: nothing to step, the file is returned as it is
    again = pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(str(out), save_every=EVERY, resume=True), **RUN)
    np.testing.assert_array_equal(again.u.values, full.u.values)


def test_a_run_with_a_given_step_resumes_with_that_step(forced, tmp_path):
    out = tmp_path / "run.nc"
    full = pf.solve(forced, t_span=(0, 0.1), method=pf.RK4(dt=1e-4), output=pf.Output(save_every=EVERY), **RUN)
    pf.solve(forced, t_span=(0, 0.05), method=pf.RK4(dt=1e-4), output=pf.Output(str(out), save_every=EVERY), **RUN)
    resumed = pf.solve(forced, t_span=(0, 0.1), method=pf.RK4(dt=1e-4),
                       output=pf.Output(str(out), save_every=EVERY, resume=True), **RUN)
    assert resumed.attrs["dt_rule"] == full.attrs["dt_rule"] == "given"
    assert resumed.attrs["steps"] == full.attrs["steps"] == 1000
    np.testing.assert_array_equal(resumed.u.values, full.u.values)


@pytest.mark.parametrize("method, tol", [("rk45", 1e-10), ("bdf", 1e-5)])
def test_adaptive_and_implicit_resume_from_the_saved_step(forced, tmp_path, method, tol):
    """rk45 restarts with its saved step and PI-controller memory, so it takes the steps it would
    have taken; BDF restarts at order 1 with its saved step: within 10 rtol (rtol = 1e-6)."""
    out = tmp_path / "run.nc"
    full = pf.solve(forced, t_span=(0, 0.1), method=method, output=pf.Output(save_every=EVERY), **RUN)
    pf.solve(forced, t_span=(0, 0.05), method=method, output=pf.Output(str(out), save_every=EVERY), **RUN)
    state = json.loads(xr.open_dataset(out).attrs["restart"])
    assert state["dt"] > 0 and state["steps"] > 0
    resumed = pf.solve(forced, t_span=(0, 0.1), method=method, output=pf.Output(str(out), save_every=EVERY, resume=True), **RUN)
    assert resumed.sizes["t"] == 11
    assert np.max(np.abs(resumed.u.values - full.u.values)) <= tol


def test_spectral_resume_is_bit_for_bit(tmp_path):
    kw = dict(grid=(16, 16), dt=0.01, progress=False)
    full = pf.solve("taylor-green", t_span=0.3, output=pf.Output(save_every=0.05), **kw)
    out = tmp_path / "tg.nc"
    pf.solve("taylor-green", t_span=0.15, output=pf.Output(str(out), save_every=0.05), **kw)
    resumed = pf.solve("taylor-green", t_span=0.3, output=pf.Output(str(out), save_every=0.05, resume=True), **kw)
    assert resumed.sizes["t"] == full.sizes["t"] == 7
    for f in ("u", "v"):
        np.testing.assert_allclose(resumed[f].values, full[f].values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(resumed.energy.values, full.energy.values, rtol=0, atol=1e-12)
    assert resumed.attrs["steps"] == full.attrs["steps"]


def test_mismatched_options_are_one_error_naming_each_difference(forced, tmp_path):
    out = tmp_path / "run.nc"
    pf.solve(forced, t_span=(0, 0.05), method="rk4", dt=1e-4, output=pf.Output(str(out), save_every=EVERY), **RUN)
    with pytest.raises(SolverError) as info:
        pf.solve(forced, t_span=(0, 0.1), method="ssprk3", dt=2e-4, params={"k": 2.0}, output=pf.Output(str(out), save_every=EVERY, resume=True), **RUN)
    msg = str(info.value)
    assert "\n" not in msg and "options differ" in msg
    assert "method is 'rk4' in the file but 'ssprk3' now" in msg and "dt is 0.0001 in the file but 0.0002 now" in msg
    assert '"k": 2.0' in msg
    with pytest.raises(SolverError, match="grid is '32' in the file but '16' now"):
        pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(str(out), save_every=EVERY, resume=True), **(RUN | {"grid": 16}))
    with pytest.raises(SolverError, match="resume=True needs a path"):
        pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(save_every=EVERY, resume=True), **RUN)


def test_damaged_and_foreign_files_are_refused_in_one_line(forced, tmp_path):
    out = tmp_path / "run.nc"
    pf.solve(forced, t_span=(0, 0.05), method="rk4", output=pf.Output(str(out), save_every=EVERY), **RUN)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(out.read_bytes()[:2000])  # a file truncated by a full disk or a killed copy
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"u": ("t", [1.0])}).to_netcdf(foreign)
    for path, reason in ((cut, "damaged or not netCDF"), (foreign, "no 'frames_complete'"),
                         (tmp_path / "missing.nc", "no such file")):
        with pytest.raises(SolverError) as info:
            pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(str(path), save_every=EVERY, resume=True), **RUN)
        assert reason in str(info.value) and "\n" not in str(info.value)


def test_a_frame_cut_by_a_crash_is_not_counted_and_is_dropped_on_resume(forced, tmp_path):
    out = tmp_path / "run.nc"
    full = pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(save_every=EVERY), **RUN)
    pf.solve(forced, t_span=(0, 0.05), method="rk4", output=pf.Output(str(out), save_every=EVERY), **RUN)
    with netCDF4.Dataset(out, "a") as nc:  # what kill -9 in the middle of a write leaves: t written, fields not
        n = len(nc.variables["t"])
        nc.variables["t"][n] = 0.06
        assert nc.getncattr("frames_complete") == n
    resumed = pf.solve(forced, t_span=(0, 0.1), method="rk4", output=pf.Output(str(out), save_every=EVERY, resume=True), **RUN)
    np.testing.assert_allclose(resumed.u.values, full.u.values, rtol=0, atol=1e-12)
    with xr.open_dataset(out) as on_disk:
        assert on_disk.sizes["t"] == on_disk.attrs["frames_complete"] == 11

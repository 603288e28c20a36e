"""Watching and steering a run: callbacks at their own times, stop conditions in the status."""

from __future__ import annotations

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.errors import SolverError

DECAY = pf.PDESystem({"u": "-u"}, domain=[(0, 1)], bcs="periodic")


def test_every_model_time_sees_the_state_at_its_time():
    seen = []
    ds = pf.solve(DECAY, 4, 1.0, {"u": 1.0}, method="rk4", dt=0.01,
                  callbacks=[pf.Every(0.3, lambda t, s: seen.append((t, float(s["u"][0]))))])
    times = [t for t, _ in seen]
    np.testing.assert_allclose(times, [0.3, 0.6, 0.9], rtol=0, atol=1e-12)
    for t, u in seen:  # rk4 at dt 0.01: exp(-t) to 1e-9
        assert abs(u - np.exp(-t)) < 1e-9
    assert ds.attrs["status"] == "completed" and len(ds.t) == 51  # the frames are not changed


def test_every_n_steps_of_a_fixed_step_method():
    seen = []
    pf.solve(DECAY, 4, 1.0, {"u": 1.0}, method="rk4", dt=0.01, callbacks=[pf.Every(steps=25, fn=lambda t, s: seen.append(t))])
    np.testing.assert_allclose(seen, [0.25, 0.5, 0.75, 1.0], rtol=0, atol=1e-12)
    with pytest.raises(SolverError, match="steps= counts the steps of a fixed-step method"):
        pf.solve(DECAY, 4, 1.0, {"u": 1.0}, method="rk45", callbacks=[pf.Every(steps=5, fn=print)])


def test_a_plain_function_is_called_at_every_frame():
    seen = []
    ds = pf.solve(DECAY, 4, 1.0, {"u": 1.0}, method="rk4", dt=0.01, output=pf.Output(save_every=0.25),
                  callbacks=lambda t, s: seen.append(t))
    np.testing.assert_allclose(seen, ds.t.values[1:], rtol=0, atol=1e-12)


def test_steady_state_stops_the_run_and_says_so():
    heat = pf.PDESystem({"u": "0.1*laplace(u)"}, domain=[(0, 1)], bcs="neumann")
    ds = pf.solve(heat, 16, 100.0, {"u": "1 + cos(pi*x)"}, method="rk4",
                  callbacks=[pf.SteadyState(rtol=1e-6, atol=1e-9, every=0.5)])
    assert ds.attrs["status"].startswith("stopped: steady state at t = ")
    t_stop = float(ds.t[-1])
    assert t_stop < 100.0
    # the mode cos(pi x) decays as exp(-0.1 pi^2 t): at the stop its rate is below the bound
    rate = 0.1 * np.pi**2 * np.exp(-0.1 * np.pi**2 * t_stop)
    assert rate <= 1e-9 + 1e-6 * 2.0 * 1.1
    np.testing.assert_allclose(ds.u.values[-1], 1.0, atol=1e-5)  # the mean of the initial state


def test_stop_when_a_predicate_holds():
    ds = pf.solve(DECAY, 4, 5.0, {"u": 1.0}, method="rk4", dt=0.01,
                  callbacks=[pf.StopWhen(lambda t, s: s["u"].max() < 0.5, every=0.01, reason="half-life")])
    assert ds.attrs["status"] == f"stopped: half-life at t = {float(ds.t[-1]):g}"
    assert abs(float(ds.t[-1]) - np.log(2.0)) <= 0.01 + 1e-12  # the first check past ln 2
    assert float(ds.u.values[-1].max()) < 0.5 <= float(ds.u.values[-2].max())


def test_bad_callbacks_are_one_clear_error():
    with pytest.raises(SolverError, match="every must be a positive number"):
        pf.Every(-1.0, print)
    with pytest.raises(SolverError, match="is not callable"):
        pf.Every(1.0, 3)
    with pytest.raises(SolverError, match="not both"):
        pf.Every(1.0, print, steps=3)
    with pytest.raises(SolverError, match="callbacks: expected"):
        pf.solve(DECAY, 4, 1.0, {"u": 1.0}, callbacks=[3])

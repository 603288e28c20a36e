"""The spectral steppers' step sizes: a fixed dt used as given, the error-controlled ETDRK4 default."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.models import get_model
from pdeforge.solvers.spectral.adaptive import AdaptiveETDRK4, on_ladder
from pdeforge.solvers.spectral.solve import _compile_and_project, make_stepper
from pdeforge.errors import SolverError


def _kolmogorov(n: int = 32):
    system, defaults = get_model("kolmogorov-flow").setup(grid=n, seed=0)
    _, op, _, uh = _compile_and_project(system, defaults["grid"], defaults["ic"], "numpy", None, "float64")
    return op, uh


def _vorticity(op, uh) -> np.ndarray:
    kx, ky = op.K.k
    return op.K.irfft(1j * kx * uh[1] - 1j * ky * uh[0])


def test_fixed_dt_is_used_exactly_with_one_coefficient_build_per_step_size():
    op, uh = _kolmogorov()
    stepper = make_stepper(op, uh.copy(), 0.0, "etdrk4", 0.005)
    assert stepper.coefficient_builds == 1  # the warm-up built the step's coefficients
    for k in range(1, 5):
        stepper.advance(0.1 * k)  # 20 steps per frame, where rounding once made 14 step sizes
    assert set(stepper.dt_used) == {0.005} and stepper.steps == 80 and stepper.t == pytest.approx(0.4, abs=0)
    assert stepper.coefficient_builds == 1
    # frames that are not a whole number of steps apart: one shorter step each, one more build
    stepper = make_stepper(op, uh.copy(), 0.0, "etdrk4", 0.03)
    for k in range(1, 5):
        stepper.advance(0.1 * k)
    assert sorted(set(stepper.dt_used)) == [0.01, 0.03] and stepper.steps == 16
    assert stepper.coefficient_builds == 2


def test_fixed_dt_in_the_dataset_is_the_one_given():
    ds = pf.solve("kolmogorov-flow", grid=16, seed=0, t_span=(0, 0.2), dt=0.01, output=pf.Output(save_every=0.05),
                  progress=False)
    assert ds.attrs["dt"] == ds.attrs["dt_min"] == ds.attrs["dt_max"] == 0.01 and ds.attrs["steps"] == 20
    assert ds.attrs["coefficient_builds"] == 1  # the warm-up's, used by every step


def test_adaptive_etdrk4_meets_its_tolerance_with_few_steps():
    op, uh = _kolmogorov(32)
    fine = make_stepper(op, uh.copy(), 0.0, "etdrk4", 2.0 / 400)
    fine.advance(2.0)
    reference = _vorticity(op, fine.y)
    for rtol in (1e-4, 1e-6):
        stepper = make_stepper(op, uh.copy(), 0.0, None, None, rtol=rtol)
        assert isinstance(stepper, AdaptiveETDRK4)
        stepper.advance(1.0)
        stepper.advance(2.0)
        err = np.linalg.norm(_vorticity(op, stepper.y) - reference) / np.linalg.norm(reference)
        assert err < rtol and stepper.t == 2.0
        assert stepper.steps < 60 * (1e-4 / rtol) ** 0.25  # not hundreds of CFL steps
        assert stepper.coefficient_builds <= 12  # steps on a ladder share their coefficients
    attrs = stepper.run_attributes(2.0)
    assert attrs["dt"] == pytest.approx(2.0 / attrs["steps"]) and "mean" in attrs["dt_meaning"]
    assert 0 < attrs["error_estimate"] <= 1e-6 and attrs["dt_min"] <= attrs["dt"] <= attrs["dt_max"]


def test_adaptive_step_rejects_an_unstable_step():
    op, uh = _kolmogorov(32)
    stepper = make_stepper(op, uh.copy(), 0.0, None, None)
    stepper._h = 4.0  # far beyond what the explicit part allows at any accuracy
    stepper.advance(4.0)
    assert stepper.rejected >= 1 and np.isfinite(stepper.y).all()


def test_default_solve_records_its_steps_error_and_a_truthful_dt():
    ds = pf.solve("kolmogorov-flow", grid=16, seed=0, t_span=(0, 1.0), output=pf.Output(save_every=0.5),
                  progress=False)
    a = ds.attrs
    assert a["method"] == "etdrk4" and a["dt_rule"].startswith("error control")
    assert a["dt"] == pytest.approx(1.0 / a["steps"]) and a["steps_rejected"] >= 0
    assert 0 <= a["error_estimate"] <= a["rtol"]


def test_tolerances_go_only_to_the_error_controlled_step():
    op, uh = _kolmogorov(16)
    with pytest.raises(SolverError, match="rtol"):
        make_stepper(op, uh.copy(), 0.0, "etdrk4", 0.01, rtol=1e-6)
    with pytest.raises(SolverError, match="rtol"):
        make_stepper(op, uh.copy(), 0.0, "cnrk4", None, rtol=1e-6)


def test_step_ladder():
    assert on_ladder(1.0) == 1.0 and on_ladder(0.999) == 1.0 and on_ladder(0.93) == 2 ** -0.125
    for h in (0.3, 0.017, 2.5):
        assert 2 ** -0.0625 <= on_ladder(h) / h <= 2 ** 0.0625  # the nearest rung


def test_first_step_comes_from_the_trial_steps_error_estimate():
    op, uh = _kolmogorov(32)
    stepper = make_stepper(op, uh.copy(), 0.0, None, None)  # the warm-up is the trial of the CFL guess
    h0, err0 = stepper.initial_dt, stepper.initial_error
    assert h0 == pytest.approx(on_ladder(stepper.cfl_dt())) and 0 < err0 < 1
    assert stepper._h == on_ladder(h0 * min(100.0, 0.9 * err0 ** -0.25))  # not h0 grown by 5 per step
    # without the warm-up the first real step (the CFL guess, cut to divide the span) is the trial
    cold = make_stepper(op, uh.copy(), 0.0, None, None, warm=False)
    cold.advance(2.0)
    assert cold.initial_dt == cold.dt_used[0] <= h0 and 0 < cold.initial_error <= err0
    h1, span = cold.dt_used[0], 2.0 - cold.dt_used[0]
    proposal = on_ladder(h1 * 0.9 * cold.initial_error ** -0.25)  # not limited to 5 h1
    assert cold.dt_used[1] == pytest.approx(span / math.ceil(span / proposal * (1 - 1e-9)), rel=1e-12)


def test_a_frame_is_cut_into_equal_steps_that_share_their_coefficients():
    op, uh = _kolmogorov(32)
    stepper = make_stepper(op, uh.copy(), 0.0, None, None)
    builds = stepper.coefficient_builds
    for k in range(1, 5):
        before = len(stepper.dt_used)
        stepper.advance(0.5 * k)
        frame = stepper.dt_used[before:]
        assert sum(frame) == pytest.approx(0.5, rel=1e-12) and max(frame) - min(frame) <= 1e-15  # no short last step
    assert stepper.coefficient_builds - builds <= len(set(stepper.dt_used))  # one build per distinct step
    assert stepper.run_attributes(2.0)["coefficient_builds"] == stepper.coefficient_builds


def test_coefficients_of_a_real_linear_part_equal_the_contour_integrals():
    from pdeforge.solvers.spectral.stepping import etd_coefficients

    op, uh = _kolmogorov(32)
    stepper = make_stepper(op, uh.copy(), 0.0, "etdrk4", 0.01, warm=False)
    h = 0.37
    E, E2, Q, f1, f2, f3 = stepper._coeff(h)
    assert E.dtype == np.float64 and stepper.coefficient_builds == 1
    z = h * stepper._L.real
    contour = etd_coefficients(z + 0j * (1 + z))  # complex input: Kassam-Trefethen's contour means
    np.testing.assert_allclose(E, np.exp(z), rtol=1e-15)
    np.testing.assert_allclose(E2, np.exp(0.5 * z), rtol=1e-15)
    for ours, theirs in zip((Q, f1, f2, f3), contour):
        np.testing.assert_allclose(ours, h * theirs.real, rtol=1e-12, atol=1e-15)
    assert stepper._coeff(h)[0] is E and stepper.coefficient_builds == 1  # cached


def test_the_warm_up_runs_every_compiled_pass_the_stepping_runs(monkeypatch):
    from pdeforge.codegen.spectral import fused

    op, uh = _kolmogorov(16)
    table = fused.kernels()
    called: list[str] = []
    for name, fn in list(table.items()):
        monkeypatch.setitem(table, name, lambda *a, _fn=fn, _name=name: (called.append(_name), _fn(*a))[1])
    stepper = make_stepper(op, uh.copy(), 0.0, None, None)
    warmed = set(called)
    called.clear()
    stepper.advance(1.0)
    assert set(called) <= warmed and "etd_stage" in warmed  # nothing is first loaded while stepping

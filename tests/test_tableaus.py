"""The Butcher tableaus, and every backend's stepper built from them, against the theory.

Each explicit method is one tableau (:mod:`pdeforge.tableaus`); the NumPy, Numba, torch,
spectral and differentiable steppers are built or printed from it. On the linear test equation
``u' = lam u`` one step of any of them must multiply the state by the tableau's stability
polynomial ``R(lam dt)``, to round-off.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.tableaus import TABLEAUS, coefficient_text, times_dt

LAM, DT = -0.7, 0.3


def _order_conditions(tab, order):
    """The rooted-tree conditions up to ``order`` (4 at most) as (value, expected) pairs."""
    a = [list(r) + [F(0)] * (tab.stages - len(r)) for r in tab.a]
    b, c = list(tab.b), list(tab.c)
    s = tab.stages

    def dot(u, v):
        return sum((x * y for x, y in zip(u, v)), F(0))

    def A(v):
        return [dot(a[i], v) for i in range(s)]

    one = [F(1)] * s
    conds = [(dot(b, one), F(1))]
    if order >= 2:
        conds.append((dot(b, c), F(1, 2)))
    if order >= 3:
        conds += [(dot(b, [x * x for x in c]), F(1, 3)), (dot(b, A(c)), F(1, 6))]
    if order >= 4:
        conds += [(dot(b, [x ** 3 for x in c]), F(1, 4)), (dot(b, [x * y for x, y in zip(c, A(c))]), F(1, 8)),
                  (dot(b, A([x * x for x in c])), F(1, 12)), (dot(b, A(A(c))), F(1, 24))]
    return conds


@pytest.mark.parametrize("name", list(TABLEAUS))
def test_tableau_meets_its_order_conditions(name):
    tab = TABLEAUS[name]
    for i, row in enumerate(tab.a):  # row sums are the nodes
        assert sum(row, F(0)) == tab.c[i]
    for value, expected in _order_conditions(tab, min(tab.order, 4)):
        assert value == expected
    if tab.b_error is not None:  # the embedded solution of Dormand-Prince is of order 4
        embedded = type(tab)(tab.name, 4, tab.a, tab.b_error, tab.c)
        for value, expected in _order_conditions(embedded, 4):
            assert value == expected


def test_shu_osher_form_is_the_tableau():
    for name in ("euler", "ssprk3"):
        tab = TABLEAUS[name]
        a, b = tab.butcher_of_shu_osher()
        assert [tuple(r) for r in a] == [tuple(r) for r in tab.a]
        assert tuple(b) == tab.b


def test_stability_extents_are_those_of_the_methods():
    # the classical values: RK4 reaches -2.785 on the real axis and 2*sqrt(2) on the imaginary one
    assert TABLEAUS["rk4"].stability_extents() == (2.7853, 2.8284)
    assert TABLEAUS["ssprk3"].stability_extents() == (2.5127, round(3 ** 0.5, 4))
    assert TABLEAUS["euler"].stability_extents() == (2.0, 0.0)
    assert pf.RK4.real_extent == 2.7853 and pf.SSPRK3.imag_extent == 1.7321


def test_printed_coefficients_round_as_run_time_ones():
    for value in (F(1, 6), F(1, 3), F(2, 3), F(1, 2), F(1), F(3, 4), F(5, 1)):
        printed = eval(coefficient_text(value, "dt"), {"dt": DT})  # noqa: S307 - our own printed number
        assert printed == times_dt(value, DT)


def _amplification(name):
    coeffs = TABLEAUS[name].stability_polynomial()
    z = LAM * DT
    return sum(float(cf) * z ** k for k, cf in enumerate(coeffs))


LINEAR = pf.PDESystem({"u": "lam*u"}, params={"lam": LAM}, domain=[(0, 1)], bcs="periodic")
U0 = {"u": "1 + 0.5*cos(2*pi*x)"}


def _one_step(**options):
    ds = pf.solve(LINEAR, 8, DT, U0, dt=DT, progress=False, output=pf.Output(save_every=DT), **options)
    return ds.u.values


@pytest.mark.parametrize("method", ["euler", "ssprk3", "rk4"])
@pytest.mark.parametrize("backend", ["numpy", "numba", "torch", "spectral"])
def test_every_backend_steps_by_the_stability_polynomial(method, backend):
    if backend in ("torch", "spectral"):
        pytest.importorskip("torch") if backend == "torch" else None
    if backend == "spectral":
        u = _one_step(method=method, discretization="spectral")
    else:
        u = _one_step(method=method, backend=backend)
    np.testing.assert_allclose(u[1], _amplification(method) * u[0], rtol=2e-15, atol=1e-15)


@pytest.mark.parametrize("method", ["euler", "ssprk3", "rk4"])
def test_differentiable_step_is_the_stability_polynomial(method):
    torch = pytest.importorskip("torch")
    from pdeforge.neural.differentiable import differentiable_solve

    frames = differentiable_solve(LINEAR, 8, DT, U0, method=method, dt=DT, output=pf.Output(save_every=DT))
    u = frames[:, 0].detach().numpy()
    np.testing.assert_allclose(u[1], _amplification(method) * u[0], rtol=2e-15, atol=1e-15)
    assert frames.dtype == torch.float64


def test_a_new_method_is_a_tableau_and_a_class(monkeypatch):
    """Heun's method, added as one tableau and one registered class, steps on every backend by
    its own stability polynomial (1 + z + z^2/2); Numba steps it stage by stage."""
    from pdeforge import tableaus
    from pdeforge.solvers import finite_differences, methods

    heun = tableaus.Tableau("heun", 2, ((), (F(1),)), (F(1, 2), F(1, 2)), (F(0), F(1)))
    monkeypatch.setitem(tableaus.TABLEAUS, "heun", heun)

    class Heun(methods._ExplicitFixed):
        name = "heun"
        tableau = heun
        description = "Heun's method"

    monkeypatch.setitem(methods.METHODS, "heun", Heun)
    monkeypatch.setitem(finite_differences.STEPPERS, "heun", finite_differences.STEPPERS["rk4"])
    assert Heun.order == 2 and Heun.real_extent == 2.0
    z = LAM * DT
    for backend in ("numpy", "numba"):
        u = _one_step(method=Heun(), backend=backend)
        np.testing.assert_allclose(u[1], (1 + z + z * z / 2) * u[0], rtol=2e-15, atol=1e-15)
    u = _one_step(method="heun", discretization="spectral")
    np.testing.assert_allclose(u[1], (1 + z + z * z / 2) * u[0], rtol=2e-15, atol=1e-15)

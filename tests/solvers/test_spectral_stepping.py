"""Stiff-linear-part time stepping, the solenoidal plan and compile-time constants."""

import math
import os
import warnings

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.codegen.build import compile_system
from pdeforge.codegen.spectral.compile import compile_spectral, spectral_operator
from pdeforge.discretize.spectral import spectral_discretize
from pdeforge.errors import SolverError, SystemDefinitionError
from pdeforge.models import get_model
from pdeforge.solvers.spectral.stepping import etd_coefficients
from pdeforge.symbolic.constants import fix_constants


def _final(name, method, dt, t_end, grid, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pf.solve(name, grid=grid, t_span=t_end, method=pf.methods.with_settings(method, stability="ignore"),
                      dt=dt, output=pf.Output(save_every=t_end), progress=False, **kw)
    return ds, np.stack([ds[f].values[-1] for f in ("u", "v")])


@pytest.mark.parametrize("method", ["ifrk4", "etdrk4"])
def test_taylor_green_decays_exactly_at_any_step(method):
    """Cs = 0: the nonlinear term is a gradient (projected away), so the linear part is all."""
    model = get_model("taylor-green")
    grid = pf.UniformGrid.from_spec(model.domain, 16)
    for dt in (0.5, 4.0):  # 4.0: nu k^2 dt = 0.4, one step to t = 4
        ds, u = _final("taylor-green", method, dt, 4.0, 16)
        exact = model.exact_solution(4.0, grid)
        assert ds.attrs["status"] == "completed"
        assert np.max(np.abs(u - np.stack([exact["u"], exact["v"]]))) < 1e-14


def test_orders_of_convergence_on_kolmogorov_flow():
    """Nonlinear case: 32^2 Kolmogorov flow to t = 0.5 against an ETDRK4 run at 1/32 the step."""
    t_end = 0.5
    _, ref = _final("kolmogorov-flow", "etdrk4", t_end / 256, t_end, 32, seed=1)
    expected = {"ifrk4": 4, "etdrk4": 4, "cnrk4": 2}
    for method, order in expected.items():
        errors = [np.max(np.abs(_final("kolmogorov-flow", method, t_end / n, t_end, 32, seed=1)[1] - ref))
                  for n in (4, 8, 16)]
        slopes = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
        assert all(abs(s - order) < 0.3 for s in slopes), (method, errors, slopes)


def test_etd_coefficients_match_their_closed_forms_and_limits():
    z = np.array([-40.0, -3.0, -1.5, 2.0, -2.0 + 3.0j])
    q, f1, f2, f3 = etd_coefficients(z)
    e = np.exp(z)
    np.testing.assert_allclose(q, (np.exp(z / 2) - 1) / z, rtol=1e-12)
    np.testing.assert_allclose(f1, (-4 - z + e * (4 - 3 * z + z * z)) / z**3, rtol=1e-11)
    np.testing.assert_allclose(f2, (2 + z + e * (z - 2)) / z**3, rtol=1e-11)
    np.testing.assert_allclose(f3, (-4 - 3 * z - z * z + e * (4 - z)) / z**3, rtol=1e-11)
    q0, a, b, c = etd_coefficients(np.zeros(1))  # the limits at z = 0: 1/2, 1/6, 1/6, 1/6
    np.testing.assert_allclose([q0[0], a[0], b[0], c[0]], [0.5, 1 / 6, 1 / 6, 1 / 6], rtol=1e-14)


@pytest.mark.parametrize("dim, n, counts", [(2, 16, (6, 2)), (3, 8, (12, 5))])
def test_solenoidal_form_gives_the_same_tendencies_with_fewer_transforms(dim, n, counts):
    system = pf.les_system(dim, nu=0.02, Cs=0.17)
    written = spectral_operator(system, n)
    solenoidal = spectral_operator(system, n, form="solenoidal")
    assert solenoidal.transform_counts == {"inverse": counts[0], "forward": counts[1]}
    assert sum(written.transform_counts.values()) > sum(counts)
    rng = np.random.default_rng(3)
    u = written.project(rng.standard_normal((dim, *([n] * dim))))  # divergence-free, 2/3-truncated
    a, b = written.rhs(u), solenoidal.rhs(u)
    assert np.max(np.abs(a - b)) < 1e-13 * np.max(np.abs(a))
    ns = fix_constants(pf.les_system(dim, nu=0.02, Cs=0.0), {"Cs": 0})
    plan = spectral_discretize(ns, form="solenoidal").transform_counts()
    assert plan == ({"inverse": 2, "forward": 2} if dim == 2 else {"inverse": 3, "forward": 5})


def test_constants_remove_terms_and_are_enforced():
    system = pf.les_system(2, nu=0.05, Cs=0.0)
    full = spectral_operator(system, 16)
    fixed = spectral_operator(system, 16, constants={"Cs": 0})
    assert fixed.transform_counts == {"inverse": 6, "forward": 2} and full.transform_counts["forward"] == 5
    u = full.project(np.random.default_rng(0).standard_normal((2, 16, 16)))
    a, b = full.rhs(u), fixed.rhs(u)
    assert np.max(np.abs(a - b)) <= 1e-14 * np.max(np.abs(a))
    assert fixed.kernel.key != full.kernel.key
    with pytest.raises(SolverError, match="fixed to 0"):
        fixed.rhs(u, params={"Cs": 0.1})
    with pytest.raises(SolverError, match="not a parameter"):
        compile_spectral(system, constants={"Ck": 0})
    with pytest.raises(SystemDefinitionError, match="fixed to 0"):
        fix_constants(system, {"Cs": 0}).with_params(Cs=0.2)
    # the same mechanism for finite differences: the term is gone before discretization
    gs = get_model("gray-scott").system()
    k_full = compile_system(gs, target="numpy")
    k_fixed = compile_system(gs, target="numpy", constants={"Dv": 0})
    assert k_fixed.key != k_full.key
    ops = k_fixed.simplification["fields"]["v"]["ops_per_cell"], k_full.simplification["fields"]["v"]["ops_per_cell"]
    assert ops == (3, 12)  # v's diffusion stencil is gone, its reaction terms stay


def test_too_large_step_is_reported_as_blow_up_not_completed():
    ds, _ = _final("kolmogorov-flow", "rk4", 0.4, 8.0, 32)
    assert ds.attrs["status"].startswith("blew up")
    assert all(np.isfinite(ds[f].values).all() and np.max(np.abs(ds[f].values)) < 1e6 for f in ("u", "v"))
    # growth from (almost) rest by the forcing is not a blow-up
    ds, u = _final("kolmogorov-flow", "etdrk4", 0.05, 1.0, 16, ic={"u": "1e-14*sin(x)", "v": "0"})
    # u = F/(nu 16) (1 - exp(-16 nu t)) sin(4y) exactly (the shear flow's advection vanishes; ETDRK4 is
    # exact for a constant forcing); at the cell centres of 16 points max |sin(4y)| = sin(pi/4)
    exact = 1.0 / (0.05 * 16) * (1 - math.exp(-16 * 0.05)) * math.sin(math.pi / 4)
    assert ds.attrs["status"] == "completed" and abs(np.max(np.abs(u[0])) - exact) < 1e-12


def test_torch_cpu_threads_are_set_for_the_run_and_restored(monkeypatch):
    torch = pytest.importorskip("torch")
    from pdeforge.solvers.spectral.solve import torch_cpu_threads

    op = spectral_operator(pf.les_system(2, 0.05, 0.0), 8, target="torch")
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with torch_cpu_threads(op):
        inside = torch.get_num_threads()
    assert torch.get_num_threads() == before
    from pdeforge.codegen.spectral.backend import physical_cores

    assert inside == (1 if before in {physical_cores(), os.cpu_count()} else before)
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))
    with torch_cpu_threads(op):
        assert torch.get_num_threads() == before


def test_ducc0_and_scipy_transforms_agree():
    pytest.importorskip("ducc0")
    from pdeforge.codegen.spectral.backend import SpectralRuntime

    grid = pf.UniformGrid.from_spec([(0.0, 1.0)] * 3, (8, 6, 10))
    a = np.random.default_rng(5).standard_normal((2, 8, 6, 10))
    fast, slow = SpectralRuntime(grid), SpectralRuntime(grid)
    slow.fft_library = "scipy"
    A = fast.rfft(a)
    np.testing.assert_allclose(A, slow.rfft(a), rtol=0, atol=1e-13)
    np.testing.assert_allclose(fast.irfft(A), slow.irfft(A), rtol=0, atol=1e-15)
    np.testing.assert_allclose(fast.irfft(A), a, rtol=0, atol=1e-14)

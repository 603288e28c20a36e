"""The generated pseudo-spectral operator: plan structure, agreement with an independent
hand-written implementation, numpy/torch agreement, projection, and the PINO residual."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.discretize.spectral import spectral_discretize
from pdeforge.errors import PDEForgeError

ROOT = Path(__file__).resolve().parents[2]


def _handwritten():
    spec = importlib.util.spec_from_file_location("les_handwritten", ROOT / "benchmarks" / "les_handwritten.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HandWrittenLES


def _random_velocity(op, rng):
    return op.project(rng.standard_normal((len(op.fields), *op.shape)))


@pytest.fixture(scope="module")
def les3():
    return pf.les_system(3, nu=1 / 64, Cs=0.1)


@pytest.fixture(scope="module")
def tg2():
    return pf.les_system(2, nu=0.1, Cs=0.0)


def test_plan_of_the_smagorinsky_system(les3):
    """Linear terms go to Fourier multipliers, stresses are transformed once each (Devito-style structure check)."""
    semi = spectral_discretize(les3)
    # u, v, w and their 9 gradients; 3 advection products + 6 distinct stress components
    assert semi.transform_counts() == {"inverse": 12, "forward": 9}
    assert len(semi.composites) == 6
    u_terms = {t.source: str(t.multiplier) for t in semi.linear[0]}
    assert u_terms["u"] == "-kk0*nu - kk1*nu - kk2*nu"  # nu*laplace(u): no transform at all
    assert sorted(u_terms.values()).count("I*k0") == 1  # d/dx of 2 nu_t S_xx
    assert semi.velocity == (0, 1, 2)
    # the stability bound's imaginary extent is the advection speed times kmax
    assert str(semi.radius[0][1]) == "kmax0*Abs(v_u) + kmax1*Abs(v_v) + kmax2*Abs(v_w)"


def test_generated_rhs_matches_handwritten_numpy(les3, rng):
    n = 16
    op = pf.spectral_operator(les3, n)
    u = _random_velocity(op, rng)
    ref = _handwritten()(n, 1 / 64, 0.1).rhs(u)
    got = op.rhs(u)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


def test_torch_matches_numpy_float64_and_float32(les3, rng):
    torch = pytest.importorskip("torch")
    n = 12
    op_np = pf.spectral_operator(les3, n)
    op_t = pf.spectral_operator(les3, n, target="torch", device="cpu")
    u = _random_velocity(op_np, rng)
    a = op_np.rhs(u)
    b = op_t.rhs(torch.from_numpy(u)).numpy()
    assert b.dtype == np.float64
    assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()
    op_32 = pf.spectral_operator(les3, n, target="torch", dtype="float32")
    c = op_32.rhs(u).numpy()
    assert c.dtype == np.float32
    assert np.abs(a - c).max() <= 1e-5 * np.abs(a).max()
    op_np32 = pf.spectral_operator(les3, n, dtype="float32")
    d = op_np32.rhs(u)
    assert d.dtype == np.float32 and np.abs(a - d).max() <= 1e-5 * np.abs(a).max()


def test_projection_makes_fields_divergence_free(les3, rng):
    op = pf.spectral_operator(les3, 12)
    raw = rng.standard_normal((3, 12, 12, 12))
    assert np.abs(op.divergence(raw)).max() > 1.0
    u = op.project(raw)
    assert np.abs(op.divergence(u)).max() < 1e-12 * np.abs(u).max()
    # tendencies are projected too
    assert np.abs(op.divergence(op.rhs(u))).max() < 1e-11 * np.abs(op.rhs(u)).max()


def _taylor_green(op, nu, times):
    x, y = op.grid.mesh()
    return np.stack(
        [np.stack([np.sin(x) * np.cos(y), -np.cos(x) * np.sin(y)]) * math.exp(-2 * nu * t) for t in times]
    )


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_residual_of_exact_taylor_green_is_second_order_in_dt(tg2, target):
    if target == "torch":
        pytest.importorskip("torch")
    op = pf.spectral_operator(tg2, 16, target=target)
    nu = 0.1
    sizes = []
    for dt in (0.1, 0.05, 0.025):
        R, D = op.residual(_taylor_green(op, nu, dt * np.arange(5)), dt)
        R, D = op.K.to_numpy(R), op.K.to_numpy(D)
        assert R.shape == (3, 2, 16, 16) and D.shape == (5, 16, 16)
        assert np.abs(D).max() < 1e-13
        sizes.append(np.abs(R).max())
    # central difference: |R| = |u_ttt| dt^2 / 6 = (2 nu)^3 dt^2 / 6 at the amplitude-1 mode
    assert sizes[0] == pytest.approx((2 * nu) ** 3 * 0.1**2 / 6, rel=0.1)
    orders = np.log2(np.array(sizes[:-1]) / np.array(sizes[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.05), orders


def test_residual_batches_and_differentiates_in_torch(tg2):
    torch = pytest.importorskip("torch")
    op = pf.spectral_operator(tg2.with_params(Cs=0.1), 8, target="torch")
    rng = np.random.default_rng(3)
    traj = torch.tensor(rng.standard_normal((2, 4, 2, 8, 8)), requires_grad=True)
    cs = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    R, D = op.residual(traj, 0.05, params={"Cs": cs})
    assert R.shape == (2, 2, 2, 8, 8) and D.shape == (2, 4, 8, 8)
    loss = (R**2).mean() + (D**2).mean()
    loss.backward()
    assert torch.isfinite(traj.grad).all() and cs.grad is not None
    # the gradient in Cs agrees with a centred finite difference
    eps = 1e-6
    with torch.no_grad():
        lp = (op.residual(traj, 0.05, params={"Cs": 0.1 + eps})[0] ** 2).mean()
        lm = (op.residual(traj, 0.05, params={"Cs": 0.1 - eps})[0] ** 2).mean()
    assert float(cs.grad) == pytest.approx(float(lp - lm) / (2 * eps), rel=1e-5)
    # a batch gives the same residual as its members one by one
    R0, _ = op.residual(traj[0].detach(), 0.05)
    assert float((R[0].detach() - R0).abs().max()) < 1e-12


def test_user_edits_reach_the_generated_operator():
    """A passive scalar and a forcing added to the equations change the generated kernels."""
    sys = pf.IncompressibleSystem(
        {
            "u": "-dot(vec(u, v), grad(u)) + nu*laplace(u) + F*sin(y)",
            "v": "-dot(vec(u, v), grad(v)) + nu*laplace(v)",
            "c": "-dot(vec(u, v), grad(c)) + kappa*laplace(c)",
        },
        params={"nu": 0.1, "F": 0.5, "kappa": 0.01},
        domain=[(0, 2 * math.pi)] * 2,
    )
    op = pf.spectral_operator(sys, 16)
    x, y = op.grid.mesh()
    state = np.stack([np.zeros_like(x), np.zeros_like(x), np.cos(x)])
    rate = op.rhs(state)
    np.testing.assert_allclose(rate[0], 0.5 * np.sin(y), atol=1e-13)  # forcing, divergence-free already
    np.testing.assert_allclose(rate[1], 0.0, atol=1e-13)
    np.testing.assert_allclose(rate[2], -0.01 * np.cos(x), atol=1e-13)  # scalar is not projected
    assert op.velocity == ("u", "v")


def test_incompressible_system_input_errors():
    with pytest.raises(PDEForgeError, match="periodic"):
        pf.IncompressibleSystem({"u": "0", "v": "0"}, domain=[(0, 1), (0, 1)], bcs={"u": "dirichlet"})
    with pytest.raises(PDEForgeError, match="one component per axis"):
        pf.IncompressibleSystem({"u": "0", "v": "0"}, velocity=("u",), domain=[(0, 1), (0, 1)])
    with pytest.raises(PDEForgeError, match="not a field"):
        pf.IncompressibleSystem({"a": "0", "b": "0"}, domain=[(0, 1), (0, 1)])
    with pytest.raises(PDEForgeError, match="unknown name 'nu_tt'"):
        pf.IncompressibleSystem({"u": "nu_tt", "v": "0"}, definitions={"nu_t": "u**2"}, domain=[(0, 1), (0, 1)])
    with pytest.raises(PDEForgeError, match="already a field"):
        pf.IncompressibleSystem({"u": "0", "v": "0"}, definitions={"u": "v"}, domain=[(0, 1), (0, 1)])
    with pytest.raises(PDEForgeError, match="numpy target runs on the CPU"):
        pf.compile_spectral(pf.les_system(2), target="numpy", device="cuda")
    with pytest.raises(PDEForgeError, match="float32"):
        pf.compile_spectral(pf.les_system(2), dtype="float16")


def test_with_params_keeps_the_projection():
    sys = pf.les_system(2, nu=0.1, Cs=0.0).with_params(Cs=0.2)
    assert isinstance(sys, pf.IncompressibleSystem) and sys.velocity == ("u", "v") and sys.params["Cs"] == 0.2


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_nested_derivatives_and_time_dependent_forcing(target):
    """d() of a product inside a product (two stages) and a forcing in t, checked analytically."""
    if target == "torch":
        pytest.importorskip("torch")
    system = pf.PDESystem(
        {"a": "a*d(a*b, x) - a + cos(t)*sin(x)", "b": "0*b"},
        domain=[(0, 2 * math.pi)] * 2,
        bcs="periodic",
    )
    semi = spectral_discretize(system)
    assert semi.stages == 2 and semi.uses_time  # the product a*b is transformed, differentiated, multiplied
    op = pf.spectral_operator(system, 16, target=target)
    x, y = op.grid.mesh()
    a, b = np.sin(x), np.cos(y)
    rate = op.K.to_numpy(op.rhs(np.stack([a, b]), t=0.3))
    exact = np.sin(x) * np.cos(x) * np.cos(y) - np.sin(x) + math.cos(0.3) * np.sin(x)
    assert np.abs(rate[0] - exact).max() < 1e-13
    # a(t) = (cos t + sin t)/2 sin x solves a_t = -a + cos(t) sin x (b = 0): residual O(dt^2)
    sizes = []
    for dt in (0.1, 0.05):
        times = 0.2 + dt * np.arange(4)
        traj = np.stack([np.stack([(math.cos(t) + math.sin(t)) / 2 * np.sin(x), 0 * y]) for t in times])
        R, _ = op.residual(traj, dt, t0=0.2)
        sizes.append(float(np.abs(op.K.to_numpy(R)).max()))
    assert 3.6 < sizes[0] / sizes[1] < 4.4 and sizes[1] < 1e-3


def test_dealias_can_be_switched_off():
    system = pf.les_system(2, nu=0.0, Cs=0.0)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((2, 12, 12))
    on = pf.compile_spectral(system).bind(12)
    off = pf.compile_spectral(system).bind(12, dealias=False)
    assert off.K.mask is None and off.K.kmax[0] == 6.0 and on.K.kmax[0] == 3.0
    # without truncation the aliased products differ; on a truncated field the tendencies still differ
    # only in the modes the 2/3 rule removes
    uh = on.project_hat(on.to_spectral(u))
    diff = on.rhs_hat(uh) - off.rhs_hat(uh)
    assert np.abs(diff).max() > 1e-6
    assert np.abs(diff * on.K.mask).max() < 1e-12 * np.abs(off.rhs_hat(uh)).max()

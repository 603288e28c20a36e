"""SoftC's PDE residual, the per-sample conservation updates and their mixture, the quadrature-consistent b."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdeforge.neural.anp import AttentiveNeuralProcess  # noqa: E402
from pdeforge.neural.baselines import (  # noqa: E402
    conserved_mixture,
    gpme_residual,
    gpme_residual_penalty,
    nonnegative_projection,
)
from pdeforge.neural.probconserv import probconserv_update  # noqa: E402


def _inputs(n=40, seed=0, t_range=(0.05, 1.0), x_range=(0.0, 2 * math.pi)):
    gen = torch.Generator().manual_seed(seed)
    t = t_range[0] + (t_range[1] - t_range[0]) * torch.rand(2, n, 1, generator=gen, dtype=torch.float64)
    x = x_range[0] + (x_range[1] - x_range[0]) * torch.rand(2, n, 1, generator=gen, dtype=torch.float64)
    return torch.cat([t, x], -1).requires_grad_(True)


def test_residual_vanishes_on_exact_heat_and_porous_medium_solutions():
    tx = _inputs()
    k = torch.tensor([[1.5], [4.0]], dtype=torch.float64)
    u = torch.exp(-k[:, None] * tx[..., :1]) * torch.sin(tx[..., 1:])
    assert float(gpme_residual(u, tx, k, "heat").detach().abs().max()) < 1e-13
    # porous medium u = (m (t - x))^(1/m), behind the front x < t
    tx = _inputs(t_range=(0.6, 1.0), x_range=(0.0, 0.5))
    m = torch.tensor([[2.0], [3.5]], dtype=torch.float64)
    u = (m[:, None] * (tx[..., :1] - tx[..., 1:])) ** (1 / m[:, None])
    assert float(gpme_residual(u, tx, m, "porous-medium").detach().abs().max()) < 1e-12


def test_residual_matches_the_closed_form_of_a_non_solution():
    tx = _inputs()
    t, x = tx[..., :1], tx[..., 1:]
    k = torch.tensor([[2.0], [3.0]], dtype=torch.float64)
    u = t * x**2  # u_t - k u_xx = x^2 - 2 k t
    expected = x**2 - 2 * k[:, None] * t
    assert torch.allclose(gpme_residual(u, tx, k, "heat"), expected, rtol=0, atol=1e-12)
    # Stefan: k = 1 where u >= p_star, 0 below: the residual is u_t - u_xx there, u_t elsewhere
    p = torch.tensor([[3.0], [3.0]], dtype=torch.float64)
    expected = torch.where(u >= 3.0, x**2 - 2 * t, x**2)
    assert torch.allclose(gpme_residual(u, tx, p, "stefan"), expected, rtol=0, atol=1e-12)


def test_softc_penalty_gradient_matches_finite_differences():
    torch.manual_seed(0)
    model = AttentiveNeuralProcess(hidden=8, heads=2, input_low=[0, 0], input_high=[1, 2 * math.pi]).double()
    gen = torch.Generator().manual_seed(1)
    cx = torch.rand(2, 6, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2 * math.pi], dtype=torch.float64)
    cy, ty = torch.rand(2, 6, 1, generator=gen, dtype=torch.float64), torch.rand(2, 5, 1, generator=gen, dtype=torch.float64)
    tx0 = torch.rand(2, 5, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2 * math.pi], dtype=torch.float64)
    params = torch.tensor([[1.0], [4.0]], dtype=torch.float64)
    penalty = gpme_residual_penalty("heat")
    weight = model.decoder[1].weight

    def value():
        torch.manual_seed(7)  # the same latent draw every time
        tx = tx0.clone().requires_grad_(True)
        _, mean = model.elbo_loss(cx, cy, tx, ty)
        return penalty(mean, tx, params)

    (grad,) = torch.autograd.grad(value(), weight)
    eps = 1e-6
    for idx in [(0, 0), (3, 5), (10, 2), (17, 20)]:
        original = float(weight.detach()[idx])
        with torch.no_grad():
            weight[idx] = original + eps
        up = float(value())
        with torch.no_grad():
            weight[idx] = original - eps
        down = float(value())
        with torch.no_grad():
            weight[idx] = original
        fd = (up - down) / (2 * eps)
        assert abs(fd - float(grad[idx])) <= 1e-6 * max(1.0, abs(fd)), (idx, fd, float(grad[idx]))


def _samples(S=6, F=3, N=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(S, F, N, generator=gen, dtype=torch.float64)
    var = 0.05 + torch.rand(S, F, N, generator=gen, dtype=torch.float64)
    w = torch.full((N,), 1.0 / (N - 1), dtype=torch.float64)
    w[0] = w[-1] = 0.5 / (N - 1)
    b = torch.rand(F, generator=gen, dtype=torch.float64)
    return means, var, w, b


@pytest.mark.parametrize("sigma_g", [0.0, 0.3])
def test_per_sample_update_equals_the_closed_form_then_mixes(sigma_g):
    means, var, w, b = _samples()
    S, F, N = means.shape
    G = w[None, :]
    updated, covs = [], []
    for s in range(S):
        for f in range(F):
            Sig = torch.diag(var[s, f])
            A = sigma_g**2 * torch.eye(1, dtype=torch.float64) + G @ Sig @ G.T
            gain = Sig @ G.T @ torch.linalg.inv(A)
            updated.append(means[s, f] - (gain @ (G @ means[s, f] - b[f:f + 1])))
            covs.append(Sig - gain @ G @ Sig)
    mu = torch.stack(updated).reshape(S, F, N)
    cov = torch.stack(covs).reshape(S, F, N, N)
    out = conserved_mixture(means, var, w, b, "probconserv", sigma_g=sigma_g, full_covariance=True)
    assert torch.allclose(out["mean"], mu.mean(0), rtol=0, atol=1e-13)
    var_tilde = torch.diagonal(cov, dim1=-2, dim2=-1).clamp_min(1e-8)
    assert torch.allclose(out["var"], var_tilde.mean(0) + mu.var(0), rtol=0, atol=1e-13)
    centred = mu - mu.mean(0)
    expected_cov = cov.mean(0) + torch.einsum("sfi,sfj->fij", centred, centred) / (S - 1)
    assert torch.allclose(out["cov"], expected_cov, rtol=0, atol=1e-13)
    ce = out["mean"] @ w - b
    if sigma_g == 0.0:
        assert float(ce.abs().max()) < 1e-14
        assert float((out["cov"] @ w).abs().max()) < 1e-14  # no variance left along G
    else:
        assert float(ce.abs().max()) < float((means.mean(0) @ w - b).abs().max())


def test_hardc_projects_each_sample_and_keeps_its_variance():
    means, var, w, b = _samples()
    out = conserved_mixture(means, var, w, b, "hardc")
    proj = means - ((means @ w - b) / (w @ w))[..., None] * w
    assert torch.allclose(out["mean"], proj.mean(0), rtol=0, atol=1e-14)
    assert torch.allclose(out["var"], var.mean(0) + proj.var(0), rtol=0, atol=1e-14)


def test_nonnegative_projection_equals_the_active_set_update():
    means, var, w, b = _samples(N=30, seed=3)
    b = b + 0.2
    fast = nonnegative_projection(means, var, w, b)
    reference, _ = probconserv_update(means, var, w[None], b[:, None], nonnegative=True, return_cov="diag")
    assert torch.allclose(fast, reference, rtol=0, atol=1e-13)
    assert float(fast.min()) >= 0.0 and float((fast @ w - b).abs().max()) < 1e-14

"""ProbConserv update: exact constraint, PSD covariance, hand-worked cases, batching, gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdeforge.neural import ProbConservError, hardc_update, probconserv_update  # noqa: E402


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_hand_worked_diagonal_case():
    # mean (1, 2, 3), S = diag(1, 2, 3), one constraint u1 + u2 + u3 = 3.
    # G mean - b = 3, G S G^T = 6, S G^T = (1, 2, 3)  =>  mean~ = mean - (1, 2, 3) * 3/6
    # S~ = S - (1, 2, 3)(1, 2, 3)^T / 6, worked out by hand:
    mean, cov = probconserv_update(_t([1.0, 2.0, 3.0]), _t([1.0, 2.0, 3.0]), _t([[1.0, 1.0, 1.0]]), _t([3.0]))
    np.testing.assert_allclose(mean.numpy(), [0.5, 1.0, 1.5], rtol=0, atol=1e-15)
    expected = np.array([[5 / 6, -1 / 3, -1 / 2], [-1 / 3, 4 / 3, -1.0], [-1 / 2, -1.0, 3 / 2]])
    np.testing.assert_allclose(cov.numpy(), expected, rtol=0, atol=1e-15)


def test_hand_worked_full_covariance_case():
    # S tridiagonal (2, 1), G = (1, 0, 1), b = 1, mean = 1: residual 1, S G^T = (2, 2, 2),
    # G S G^T = 4  =>  mean~ = 1 - 2/4 = 0.5 everywhere, S~ = S - ones(3, 3)
    S = _t([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    mean, cov = probconserv_update(_t([1.0, 1.0, 1.0]), S, _t([[1.0, 0.0, 1.0]]), _t([1.0]))
    np.testing.assert_allclose(mean.numpy(), [0.5, 0.5, 0.5], atol=1e-15)
    np.testing.assert_allclose(cov.numpy(), [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-15)


def test_hand_worked_soft_constraint_and_hardc():
    # sigma_g^2 = 2 adds 2 to G S G^T: mean~ = (1, 2, 3) - (1, 2, 3) * 3/8
    mean, _ = probconserv_update(_t([1.0, 2.0, 3.0]), _t([1.0, 2.0, 3.0]), _t([[1.0, 1.0, 1.0]]), _t([3.0]),
                                 sigma_g=np.sqrt(2.0))
    np.testing.assert_allclose(mean.numpy(), [5 / 8, 10 / 8, 15 / 8], atol=1e-15)
    # HardC subtracts the mean excess equally: (1, 2, 3) - 1, and keeps the variances
    var = _t([1.0, 2.0, 3.0])
    mean, out_var = hardc_update(_t([1.0, 2.0, 3.0]), var, _t([[1.0, 1.0, 1.0]]), _t([3.0]))
    np.testing.assert_allclose(mean.numpy(), [0.0, 1.0, 2.0], atol=1e-15)
    assert out_var is var


def _numpy_update(mean, S, G, b, sigma):
    """The formula written independently with numpy's explicit inverse."""
    A = sigma**2 * np.eye(G.shape[0]) + G @ S @ G.T
    Ainv = np.linalg.inv(A)
    return mean - S @ G.T @ Ainv @ (G @ mean - b), S - S @ G.T @ Ainv @ G @ S


def test_matches_numpy_with_two_constraints(rng):
    n = 7
    X = rng.standard_normal((n, n))
    S = X @ X.T + 0.1 * np.eye(n)
    G = rng.standard_normal((2, n))
    mean, b = rng.standard_normal(n), rng.standard_normal(2)
    for sigma in (0.0, 0.3):
        m_ref, S_ref = _numpy_update(mean, S, G, b, sigma)
        m, C = probconserv_update(_t(mean), _t(S), _t(G), _t(b), sigma_g=sigma)
        np.testing.assert_allclose(m.numpy(), m_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(C.numpy(), S_ref, rtol=1e-10, atol=1e-10)


def test_constraint_exact_and_covariance_psd_in_float32(rng):
    # float32 inputs, float64 solve: G mean~ = b to 1e-10 measured in float64 on the output
    n = 40
    x = np.linspace(0, 1, n)
    w = np.full(n, x[1] - x[0])
    w[[0, -1]] *= 0.5  # trapezoid weights
    mean = torch.tensor(rng.standard_normal((5, n)), dtype=torch.float32)
    var = torch.tensor(rng.uniform(0.01, 1.0, (5, n)), dtype=torch.float32)
    G, b = _t(w[None]), _t(rng.standard_normal((5, 1)))
    m, C = probconserv_update(mean, var, G, b)
    assert m.dtype == torch.float32
    m64, C64 = probconserv_update(mean.double(), var.double(), G, b)
    assert float((G @ m64[..., None])[..., 0].sub(b).abs().max()) <= 1e-10
    assert torch.equal(C64, C64.transpose(-1, -2))
    eig = torch.linalg.eigvalsh(C64)
    assert float(eig.min()) >= -1e-12 * float(eig.max())
    # the constraint direction has no variance left: G S~ G^T = 0
    assert float((G @ C64 @ G.T).abs().max()) <= 1e-14


def test_mean_already_conserving_is_unchanged(rng):
    n = 9
    G = _t(rng.uniform(0.5, 1.5, (1, n)))
    mean = _t(rng.standard_normal(n))
    b = (G @ mean[:, None])[:, 0]
    m, _ = probconserv_update(mean, _t(rng.uniform(0.1, 1, n)), G, b)
    np.testing.assert_allclose(m.numpy(), mean.numpy(), rtol=0, atol=1e-14)
    m, _ = hardc_update(mean, _t(np.ones(n)), G, b)
    np.testing.assert_allclose(m.numpy(), mean.numpy(), rtol=0, atol=1e-14)


def test_batched_equals_looped_and_diagonal_equals_full(rng):
    B, T, n = 3, 4, 6
    mean = _t(rng.standard_normal((B, T, n)))
    var = _t(rng.uniform(0.1, 2.0, (B, T, n)))
    G = _t(rng.uniform(0.1, 1.0, (1, n)))  # broadcast over both batch dimensions
    b = _t(rng.standard_normal((B, T, 1)))
    m, C = probconserv_update(mean, var, G, b, sigma_g=0.05)
    _, d = probconserv_update(mean, var, G, b, sigma_g=0.05, return_cov="diag")
    mf, Cf = probconserv_update(mean, torch.diag_embed(var), G, b, sigma_g=0.05)
    np.testing.assert_allclose(mf.numpy(), m.numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(Cf.numpy(), C.numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(d.numpy(), torch.diagonal(C, dim1=-2, dim2=-1).numpy(), rtol=1e-13, atol=1e-13)
    for i in range(B):
        for j in range(T):
            mi, Ci = probconserv_update(mean[i, j], var[i, j], G, b[i, j], sigma_g=0.05)
            np.testing.assert_allclose(mi.numpy(), m[i, j].numpy(), rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(Ci.numpy(), C[i, j].numpy(), rtol=1e-13, atol=1e-13)


def test_gradients_flow_through_the_update(rng):
    n = 4
    mean = _t(rng.standard_normal(n)).requires_grad_()
    var = _t(rng.uniform(0.5, 1.5, n)).requires_grad_()
    G = _t(rng.uniform(0.5, 1.5, (2, n))).requires_grad_()
    b = _t(rng.standard_normal(2)).requires_grad_()
    sigma = _t(0.3).requires_grad_()

    def f(mean, var, G, b, sigma):
        m, C = probconserv_update(mean, var, G, b, sigma_g=sigma)
        return m.sum() + (C**2).sum()

    assert torch.autograd.gradcheck(f, (mean, var, G, b, sigma))
    # and in the exact limit sigma_g = 0 the gradient with respect to the mean is a projection
    f(mean, var, G, b, 0.0).backward()
    assert mean.grad is not None and torch.isfinite(mean.grad).all()


def test_singular_system_is_a_clear_error_or_jitter():
    mean, var = _t([1.0, 2.0]), _t([0.0, 0.0])
    with pytest.raises(ProbConservError, match="singular"):
        probconserv_update(mean, var, _t([[1.0, 1.0]]), _t([1.0]))
    # twice the same exact update: the second sees no variance along G
    m1, C1 = probconserv_update(_t([1.0, 2.0]), _t([1.0, 1.0]), _t([[1.0, 1.0]]), _t([1.0]))
    with pytest.raises(ProbConservError, match="jitter"):
        probconserv_update(m1, C1, _t([[1.0, 1.0]]), _t([1.0]))
    m2, _ = probconserv_update(m1, C1, _t([[1.0, 1.0]]), _t([1.0]), jitter=1e-12)
    np.testing.assert_allclose(m2.numpy(), m1.numpy(), atol=1e-12)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ProbConservError, match="cov"):
        probconserv_update(_t([1.0, 2.0]), _t([[[1.0]]]), _t([[1.0, 1.0]]), _t([1.0]))
    with pytest.raises(ProbConservError, match="G"):
        probconserv_update(_t([1.0, 2.0]), _t([1.0, 1.0]), _t([[1.0, 1.0, 1.0]]), _t([1.0]))
    with pytest.raises(ProbConservError, match="b"):
        probconserv_update(_t([1.0, 2.0]), _t([1.0, 1.0]), _t([[1.0, 1.0]]), _t([1.0, 2.0]))
    with pytest.raises(ProbConservError, match="sigma_g"):
        probconserv_update(_t([1.0, 2.0]), _t([1.0, 1.0]), _t([[1.0, 1.0]]), _t([1.0]), sigma_g=-1.0)


def _kkt_nonnegative(mean, var, g, b):
    """Independent solution for diagonal S and one positive row: u(lam) = max(0, mean - var g lam),
    with lam found by bisection on the monotone mass g . u(lam) = b."""
    lo, hi = -1e6, 1e6
    for _ in range(300):
        lam = 0.5 * (lo + hi)
        mass = g @ np.maximum(0.0, mean - var * g * lam)
        lo, hi = (lam, hi) if mass > b else (lo, lam)
    return np.maximum(0.0, mean - var * g * lam)


def test_nonnegative_matches_the_kkt_solution(rng):
    n = 12
    g = rng.uniform(0.5, 1.0, n)
    for _ in range(5):
        mean = rng.normal(0.2, 1.0, n)
        var = rng.uniform(0.1, 1.0, n)
        b = abs(rng.normal(0.5, 0.5))
        m, _ = probconserv_update(_t(mean), _t(var), _t(g[None]), _t([b]), nonnegative=True)
        assert float(m.min()) >= 0.0
        assert abs(float(_t(g) @ m) - b) <= 1e-12
        np.testing.assert_allclose(m.numpy(), _kkt_nonnegative(mean, var, g, b), atol=1e-9)


def test_nonnegative_with_full_covariance_and_hardc(rng):
    n = 10
    X = rng.standard_normal((n, n))
    S = X @ X.T / n + 0.1 * np.eye(n)
    g = np.full(n, 0.1)
    mean = rng.normal(0.0, 1.0, (3, n))
    b = np.array([[0.3], [0.0], [1.0]])
    # a full covariance shared by the batch has one dimension more than the means: S[None]
    m, C = probconserv_update(_t(mean), _t(S)[None], _t(g[None]), _t(b), nonnegative=True)
    assert float(m.min()) >= 0.0
    np.testing.assert_allclose((m @ _t(g))[:, None].numpy(), b, atol=1e-12)
    assert C.shape == (3, n, n)
    m, _ = hardc_update(_t(mean), _t(np.ones((3, n))), _t(g[None]), _t(b), nonnegative=True)
    assert float(m.min()) >= 0.0
    np.testing.assert_allclose((m @ _t(g))[:, None].numpy(), b, atol=1e-12)
    assert float(m[1].abs().max()) <= 1e-14  # b = 0 with positive weights leaves only u = 0
    with pytest.raises(ProbConservError, match="non-negative"):
        probconserv_update(_t(mean[0]), _t(np.ones(n)), _t(g[None]), _t([-1.0]), nonnegative=True)

"""Metrics of the ProbConserv study: LL, CE, sampling from singular covariances, front positions."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdeforge.neural.metrics import (  # noqa: E402
    conservation_error,
    front_positions,
    gaussian_log_likelihood,
    mean_squared_error,
    sample_gaussian,
)
from pdeforge.neural.probconserv import probconserv_update  # noqa: E402


def test_scores_by_hand():
    mean = torch.zeros(2, 3, 4, dtype=torch.float64)
    truth = torch.ones(2, 3, 4, dtype=torch.float64)
    np.testing.assert_allclose(mean_squared_error(mean, truth).numpy(), [1.0, 1.0])
    # log N(1; 0, 1) = -1/2 - log(2 pi)/2 ; log N(1; 0, 4) = -1/8 - log(8 pi)/2
    ll = gaussian_log_likelihood(mean, torch.ones_like(mean), truth)
    np.testing.assert_allclose(ll.numpy(), -0.5 - 0.5 * math.log(2 * math.pi), rtol=1e-15)
    ll = gaussian_log_likelihood(mean, 4 * torch.ones_like(mean), truth)
    np.testing.assert_allclose(ll.numpy(), -0.125 - 0.5 * math.log(8 * math.pi), rtol=1e-15)
    G = torch.tensor([[0.5, 1.0, 1.0, 0.5]], dtype=torch.float64)
    ce = conservation_error(truth, G, torch.full((2, 3, 1), 2.0))
    np.testing.assert_allclose(ce.numpy(), 1.0)


def test_samples_of_the_updated_gaussian_conserve_and_have_its_covariance(rng):
    n = 5
    mean = torch.tensor(rng.standard_normal(n))
    var = torch.tensor(rng.uniform(0.5, 1.5, n))
    G = torch.tensor(rng.uniform(0.5, 1.0, (1, n)))
    b = torch.tensor([0.7], dtype=torch.float64)
    m, C = probconserv_update(mean, var, G, b)
    s = sample_gaussian(m, C, 40000, seed=3)
    assert s.shape == (40000, n)
    # the covariance is singular along G: every sample satisfies the constraint
    assert float((s @ G[0] - b).abs().max()) <= 1e-12
    emp = torch.cov(s.T)
    assert float((emp - C).abs().max()) <= 0.05 * float(C.diagonal().max())
    np.testing.assert_allclose(s.mean(0).numpy(), m.numpy(), atol=0.03)
    # same seed, same samples
    assert torch.equal(s, sample_gaussian(m, C, 40000, seed=3))


def test_front_positions_interpolate_the_first_crossing():
    x = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    ramp = 1.0 - x  # crosses 0.25 at x = 0.75
    step = torch.where(x <= 0.3 + 1e-12, 0.8, 0.0)  # falls from 0.8 to 0 between 0.3 and 0.4
    profiles = torch.stack([ramp, step, torch.ones_like(x), -torch.ones_like(x)])
    pos = front_positions(profiles, x, 0.25)
    np.testing.assert_allclose(pos.numpy(), [0.75, 0.3 + 0.1 * (0.8 - 0.25) / 0.8, 1.0, 0.0], atol=1e-14)

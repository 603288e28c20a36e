"""Scores of probabilistic predictions of a conserved field: MSE, conservation error, likelihood,
and front positions sampled from a (full-covariance) Gaussian.

The definitions follow the ProbConserv paper (Hansen et al., ICML 2023):

* MSE: mean over points of ``(mean - u)^2``.
* CE (conservation error): ``G mean - b``, the quadrature of the predicted mean minus the exact
  mass ``U(t)``, one value per constraint row (per time).
* LL: mean over points of the marginal Gaussian log-density ``log N(u; mean_i, var_i)``, the
  variances floored at ``min_variance`` (1e-8, the floor of the reference code) so that a
  prediction that collapses onto an exact zero state does not give an infinite score.
* Front position: for each sample of ``N(mean, S)``, the first point where the profile falls
  to a threshold, linearly interpolated between grid points; with the full covariance the
  samples carry the correlations the conservation update introduces.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pdeforge.errors import PDEForgeError


def _f64(x, device=None):
    if torch.is_tensor(x):
        return x.to(dtype=torch.float64, device=device if device is not None else x.device)
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64, device=device)


def mean_squared_error(mean, truth, dims=(-2, -1)) -> torch.Tensor:
    """Mean of ``(mean - truth)^2`` over ``dims`` (default: the last two, time and space)."""
    mean = _f64(mean)
    return ((mean - _f64(truth, mean.device)) ** 2).mean(dim=dims)


def conservation_error(mean, G, b) -> torch.Tensor:
    """Constraint residual ``G mean - b`` of shape ``(..., m)``.

    Args:
        mean: predicted mean ``(..., n)``.
        G: constraint matrix ``(..., m, n)`` (quadrature weights).
        b: exact right-hand side ``(..., m)`` (e.g. the mass ``U(t)``).
    """
    mean = _f64(mean)
    G, b = _f64(G, mean.device), _f64(b, mean.device)
    return (G @ mean[..., None])[..., 0] - b


def gaussian_log_likelihood(mean, variance, truth, min_variance: float = 1e-8, dims=(-2, -1)) -> torch.Tensor:
    """Mean over ``dims`` of the pointwise log-density ``log N(truth; mean, variance)``.

    Args:
        mean: predicted mean.
        variance: predicted marginal variances (same shape as ``mean``).
        truth: the exact values.
        min_variance: floor applied to the variances.
        dims: dimensions averaged over (default: the last two).
    """
    mean = _f64(mean)
    var = _f64(variance, mean.device).clamp_min(min_variance)
    sq = (_f64(truth, mean.device) - mean) ** 2
    return (-0.5 * sq / var - 0.5 * torch.log(2 * math.pi * var)).mean(dim=dims)


def sample_gaussian(mean, cov, n_samples: int, seed: int | None = 0) -> torch.Tensor:
    """Samples of ``N(mean, cov)`` for a full (possibly singular) covariance.

    The covariance is factored by its symmetric eigendecomposition in float64, with the
    eigenvalues at round-off level set to zero: a conservation-updated covariance is singular
    along the constraint rows, so every sample satisfies the constraint too.

    Args:
        mean: ``(..., n)``.
        cov: ``(..., n, n)`` symmetric positive semi-definite.
        n_samples: number of samples.
        seed: seed of the normal draws (None: torch's global generator).

    Returns:
        ``(n_samples, ..., n)`` float64 tensor.
    """
    mean = _f64(mean)
    cov = _f64(cov, mean.device)
    if cov.shape[-2:] != (mean.shape[-1],) * 2:
        raise PDEForgeError(f"cov: expected shape (..., {mean.shape[-1]}, {mean.shape[-1]}), got {tuple(cov.shape)}")
    evals, evecs = torch.linalg.eigh(0.5 * (cov + cov.transpose(-1, -2)))
    # eigenvalues at round-off level are zeros of the exact matrix (the constrained directions);
    # their square roots (~1e-8) would otherwise leak into the samples
    tol = evals.shape[-1] * torch.finfo(torch.float64).eps * evals.abs().amax(-1, keepdim=True)
    evals = torch.where(evals > tol, evals, torch.zeros_like(evals))
    root = evecs * evals.sqrt()[..., None, :]
    shape = (n_samples, *torch.broadcast_shapes(mean.shape, cov.shape[:-1]))
    gen = None
    if seed is not None:
        gen = torch.Generator(device=mean.device).manual_seed(int(seed))
    z = torch.randn(shape, generator=gen, dtype=torch.float64, device=mean.device)
    # a batched product: broadcasting root against the samples would copy it once per sample
    return mean + torch.einsum("...ij,s...j->s...i", root, z)


def front_positions(profiles, x, threshold: float) -> torch.Tensor:
    """Position of the first fall of each profile to ``threshold`` along its last axis.

    Args:
        profiles: ``(..., n)`` values on the increasing points ``x``.
        x: ``(n,)`` points.
        threshold: the level that marks the front (e.g. half the jump of a Stefan front).

    Returns:
        ``(...)`` positions, linearly interpolated between the two points around the first
        crossing; ``x[0]`` if a profile starts at or below the threshold, ``x[-1]`` if it
        never gets there (the front lies outside the domain).
    """
    u = _f64(profiles)
    x = _f64(x, u.device)
    below = u <= threshold
    n = u.shape[-1]
    first = torch.where(below.any(-1), below.to(torch.int64).argmax(-1), torch.full(u.shape[:-1], n, device=u.device))
    i = first.clamp(1, n - 1)
    u_left = torch.gather(u, -1, (i - 1)[..., None])[..., 0]
    u_right = torch.gather(u, -1, i[..., None])[..., 0]
    frac = ((u_left - threshold) / (u_left - u_right).clamp_min(1e-300)).clamp(0.0, 1.0)
    pos = x[i - 1] + frac * (x[i] - x[i - 1])
    pos = torch.where(first == 0, x[0].expand_as(pos), pos)
    return torch.where(first == n, x[-1].expand_as(pos), pos)

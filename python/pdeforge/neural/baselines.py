"""The ways of making a neural process respect a conservation law that ProbConserv compares.

* **SoftC** (:func:`gpme_residual_penalty`): the differential form of the law,
  ``u_t - (k(u) u_x)_x = 0``, enters the training loss as the mean squared residual of the
  predicted mean at the target points (derivatives by automatic differentiation with respect
  to the target inputs), as physics-informed networks do. Nothing guarantees conservation at
  prediction time.
* **HardC**: each latent sample's mean is projected orthogonally onto ``{G u = b}``; the
  variances are left as they are (:func:`pdeforge.neural.probconserv.hardc_update`).
* **ProbConserv**: each latent sample's Gaussian ``N(mean_s, diag(var_s))`` is conditioned on
  ``G u = b + eps``, ``eps ~ N(0, sigma_g^2)``
  (:func:`pdeforge.neural.probconserv.probconserv_update`); ``sigma_g = 0`` enforces the law
  exactly, ``sigma_g > 0`` softly. Optionally the mean is then moved to the closest
  non-negative profile that still satisfies the law.

In every case the updated samples are mixed afterwards (:func:`conserved_mixture`), as the
reference code does: the update is applied to each latent sample of the neural process, and
the prediction is the moment-matched mixture of the updated Gaussians. Because every updated
mean satisfies ``G mean_s = b``, so does their average.
"""

from __future__ import annotations

import torch

from pdeforge.errors import PDEForgeError
from pdeforge.neural.anp import Penalty, mixture_moments
from pdeforge.neural.probconserv import hardc_update, probconserv_update


def _diffusivity(model: str):
    if model == "heat":
        return lambda u, p: p.expand_as(u)
    if model == "porous-medium":
        return lambda u, p: torch.relu(u) ** p
    if model == "stefan":
        # k = 1 where u >= p_star, else 0: the jump has no derivative that autograd could see
        return lambda u, p: (u >= p).to(u.dtype)
    raise PDEForgeError(f"no GPME diffusivity for {model!r} (heat, porous-medium, stefan)")


def gpme_residual(mean: torch.Tensor, target_x: torch.Tensor, params: torch.Tensor, model: str) -> torch.Tensor:
    """Pointwise residual ``u_t - (k(u) u_x)_x`` of a predicted mean ``u(t, x)``.

    Args:
        mean: (B, N, 1) predicted values at ``target_x``; it must have been computed from
            ``target_x`` point by point (the value at one point may not depend on the others'
            inputs), which holds for the ANP.
        target_x: (B, N, 2) inputs ``(t, x)`` with ``requires_grad``.
        params: (B, P): first column the parameter of ``k`` (heat ``k``, porous medium ``m``,
            Stefan ``p_star``).
        model: "heat", "porous-medium" or "stefan".

    Returns:
        (B, N, 1) residuals, differentiable with respect to whatever produced ``mean``.
    """
    k = _diffusivity(model)
    grad = torch.autograd.grad(mean.sum(), target_x, create_graph=True)[0]
    u_t, u_x = grad[..., 0:1], grad[..., 1:2]
    flux = k(mean, params[:, None, 0:1].to(mean.dtype)) * u_x
    flux_x = torch.autograd.grad(flux.sum(), target_x, create_graph=True)[0][..., 1:2]
    return u_t - flux_x


def gpme_residual_penalty(model: str) -> Penalty:
    """SoftC's penalty: the mean squared :func:`gpme_residual` of the predicted mean.

    Args:
        model: "heat", "porous-medium" or "stefan".

    Returns:
        ``penalty(mean, target_x, params) -> scalar`` for :func:`pdeforge.neural.anp.fit_anp`.
    """
    _diffusivity(model)  # unknown names fail here, not in the first training step

    def penalty(mean, target_x, params):
        return (gpme_residual(mean, target_x, params, model) ** 2).mean()

    return penalty


def nonnegative_projection(mean: torch.Tensor, variance: torch.Tensor, weights: torch.Tensor, b: torch.Tensor,
                           iterations: int = 80) -> torch.Tensor:
    """Closest non-negative ``u`` with ``weights . u = b`` in the metric ``diag(variance)^-1``.

    The minimiser of ``sum_i (u_i - mean_i)^2 / variance_i`` under ``w . u = b`` and ``u >= 0``
    (``w >= 0``, ``b >= 0``) is ``u_i = max(0, mean_i - lam variance_i w_i)`` with the one
    multiplier ``lam`` at which ``w . u = b`` (the left side falls monotonically in ``lam``).
    ``lam`` is bracketed by bisection, then recomputed exactly on the entries that stay
    positive, so ``w . u = b`` holds to round-off. This is the result the active-set iteration
    of :func:`pdeforge.neural.probconserv.probconserv_update` (``nonnegative=True``) reaches
    for a diagonal covariance and one row of non-negative weights, at the cost of a few
    vectorised passes instead of one Cholesky factorisation per round.

    Args:
        mean, variance: (..., N).
        weights: (N,) non-negative quadrature weights.
        b: (...,) right-hand sides, broadcastable to the batch shape of ``mean``.
        iterations: bisection steps before the exact solve.
    """
    w = weights.to(mean)
    b = torch.as_tensor(b).to(mean).expand(mean.shape[:-1])
    if bool((w < 0).any()) or bool((b < 0).any()):
        raise PDEForgeError("nonnegative_projection: needs weights >= 0 and b >= 0")
    vw = variance * w

    def mass(lam):
        return (w * torch.clamp_min(mean - lam[..., None] * vw, 0.0)).sum(-1)

    denom = (w * vw).sum(-1)
    lo = ((w * mean).sum(-1) - b) / denom  # the plain update: its clipped profile has mass >= b
    ratio = torch.where(vw > 0, mean / vw.clamp_min(1e-300), torch.full_like(mean, -torch.inf))
    hi = torch.maximum(lo, ratio.amax(-1)) + 1.0  # beyond every breakpoint the mass is 0 <= b
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = mass(mid) >= b
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    free = (mean - lo[..., None] * vw) > 0
    lam = ((w * mean * free).sum(-1) - b) / (w * vw * free).sum(-1).clamp_min(1e-300)
    return torch.where(free, mean - lam[..., None] * vw, torch.zeros_like(mean))


def conserved_mixture(means: torch.Tensor, variances: torch.Tensor, weights: torch.Tensor, b: torch.Tensor,
                      method: str = "probconserv", sigma_g: float = 0.0, nonnegative: bool = False,
                      min_variance: float = 1e-8, full_covariance: bool = False) -> dict:
    """Apply a conservation update to every latent sample, then mix.

    Args:
        means, variances: (S, F, N) per-sample Gaussians of the neural process (S latent
            samples, F functions, N points).
        weights: (N,) quadrature weights: the constraint of function ``f`` is
            ``weights . u = b[f]``.
        b: (F,) right-hand sides.
        method: "probconserv", "hardc" or "none" (the plain mixture).
        sigma_g: constraint noise of ProbConserv (0: exact).
        nonnegative: after the update, move each sample's mean to the closest non-negative
            profile (in the metric of its covariance) that still satisfies the constraint
            (ProbConserv: :func:`nonnegative_projection`, exact for ``sigma_g = 0``; HardC: in
            the Euclidean metric).
        min_variance: floor of the per-sample variances before mixing (1e-8, as the reference
            code: the exact update leaves no variance along ``G``).
        full_covariance: also return the mixture's full covariance (F, N, N): the average of
            the per-sample updated covariances plus the covariance of the sample means (both
            have no variance along ``G`` when ``sigma_g = 0``, so samples from it conserve too).

    Returns:
        dict with "mean" (F, N), "var" (F, N) and, if asked, "cov" (F, N, N); float64.
    """
    means, variances = means.double(), variances.double()
    G = weights.double().to(means.device)[None, :]
    rhs = b.double().to(means.device)[:, None]
    if method == "none":
        m, v = means, variances
    elif method == "hardc":
        m, v = hardc_update(means, variances, G, rhs, nonnegative=nonnegative)
    elif method == "probconserv":
        m, v = probconserv_update(means, variances, G, rhs, sigma_g, return_cov="diag")
        if nonnegative:
            m = nonnegative_projection(means, variances, G[0], rhs[:, 0])
    else:
        raise PDEForgeError(f"method: 'probconserv', 'hardc' or 'none', got {method!r}")
    mean, var = mixture_moments(m, v, min_variance)
    out = {"mean": mean, "var": var}
    if full_covariance:
        S = means.shape[0]
        if method == "probconserv":
            # per sample S~ = diag(v) - a a^T / c with a = v * w, c = w.v.w + sigma_g^2
            a = variances * G[0]
            c = (a * G[0]).sum(-1, keepdim=True) + float(sigma_g) ** 2
            cov = torch.diag_embed(variances.mean(0)) - torch.einsum("sfi,sfj->fij", a / c, a) / S
        else:
            cov = torch.diag_embed(v.mean(0))
        centred = m - mean
        if S > 1:
            cov = cov + torch.einsum("sfi,sfj->fij", centred, centred) / (S - 1)
        out["cov"] = 0.5 * (cov + cov.transpose(-1, -2))
    return out

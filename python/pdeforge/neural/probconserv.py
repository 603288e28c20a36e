"""ProbConserv: condition a Gaussian prediction on a linear conservation law.

A probabilistic model predicts ``u ~ N(mean, S)`` on a grid. The integral form of a
conservation law, discretised by quadrature, is a linear constraint ``G u = b`` (one row per
time: quadrature weights times ``u`` equals the exact mass ``U(t)``). Treating it as a noisy
observation ``b = G u + eps``, ``eps ~ N(0, sigma_g^2 I)``, and conditioning (Hansen et al.,
"Learning Physical Models that Can Respect Conservation Laws", ICML 2023) gives

    mean~ = mean - S G^T (sigma_g^2 I + G S G^T)^-1 (G mean - b)
    S~    = S    - S G^T (sigma_g^2 I + G S G^T)^-1 G S

With ``sigma_g = 0`` the updated mean satisfies ``G mean~ = b`` to round-off and ``S~`` has no
variance left along the rows of ``G``. The correction goes where the model is uncertain: a
point with small variance barely moves.

HardC is the limit that ignores the model's uncertainty: the mean is projected orthogonally
onto ``{G u = b}`` (the update with ``S = I``) and the variances are returned unchanged.

The optional non-negativity step (``nonnegative=True``) replaces the updated mean by the closest
point, in the Mahalanobis metric of the model's covariance ``S``, of ``{G u = b, u >= 0}``,
found by an active-set iteration: every entry that comes out negative is added to the
constraints as ``u_i = 0`` and the conditioning is redone with ``[G; E_A] u = [b; 0]``, until
no entry is negative. Entries once clamped stay clamped, so at most ``n`` rounds are needed.
Because the clamps are just more rows of the same linear conditioning, ``G u = b`` keeps
holding to round-off and the result stays differentiable. For a diagonal ``S`` and constraint
rows with non-negative weights on disjoint entries (the per-time mass constraints of the
porous medium family) the multiplier of each row only grows from round to round, so the
iteration reaches the exact minimiser of the Mahalanobis distance under both constraints; for
a general ``S`` it is the same active-set heuristic without releasing entries. Only the mean is
changed; the covariance returned is the one of the plain update (as in the reference
implementation, which corrects the mean with a non-negative least-squares solve).

All linear algebra runs in float64 (Cholesky factorisation of ``sigma_g^2 I + G S G^T``) and
results come back in the input dtype. Inputs may carry any leading batch dimensions, which
broadcast against each other.
"""

from __future__ import annotations

from pdeforge.errors import PDEForgeError


class ProbConservError(PDEForgeError):
    """The conservation update cannot be applied to the given mean, covariance and constraint."""


def _torch():
    import torch

    return torch


def _check_shapes(mean, cov, G, b):
    """Return (n, m, diagonal) after checking the shapes against each other."""
    if mean.dim() < 1:
        raise ProbConservError("mean: expected a tensor of shape (..., n), got a scalar")
    n = mean.shape[-1]
    if cov.dim() == mean.dim():
        diagonal = True
        if cov.shape[-1] != n:
            raise ProbConservError(
                f"cov: a variance vector must end in n={n} like the mean, got shape {tuple(cov.shape)}"
            )
    elif cov.dim() == mean.dim() + 1:
        diagonal = False
        if cov.shape[-2:] != (n, n):
            raise ProbConservError(
                f"cov: a full covariance must end in ({n}, {n}) for a mean with n={n}, got shape {tuple(cov.shape)}"
            )
    else:
        raise ProbConservError(
            f"cov: expected variances of shape (..., {n}) or a covariance of shape (..., {n}, {n}) "
            f"for a mean of shape {tuple(mean.shape)}, got shape {tuple(cov.shape)}"
        )
    if G.dim() < 2 or G.shape[-1] != n:
        raise ProbConservError(f"G: expected shape (..., m, {n}) (one row per constraint), got {tuple(G.shape)}")
    m = G.shape[-2]
    if b.dim() < 1 or b.shape[-1] != m:
        raise ProbConservError(f"b: expected shape (..., {m}) to match the {m} rows of G, got {tuple(b.shape)}")
    return n, m, diagonal


def _as_float64(x, like):
    torch = _torch()
    if not torch.is_tensor(x):
        # straight to float64: a Python float through float32 would lose 8 digits
        x = torch.as_tensor(x, dtype=torch.float64)
    return x.to(device=like.device, dtype=torch.float64)


#: A Cholesky pivot below this fraction of the magnitude of the terms that formed it is treated
#: as zero: the constraint then sees (numerically) no variance and the update would divide
#: round-off by round-off.
PIVOT_RTOL = 1e-12


def _regular(L, info, magnitude) -> bool:
    if not bool((info == 0).all()):
        return False
    pivots = _torch().diagonal(L, dim1=-2, dim2=-1) ** 2
    return bool((pivots > PIVOT_RTOL * magnitude).all())


def _factor(A, magnitude, jitter: float | None, what: str):
    """Cholesky factor of the symmetric positive definite ``A`` (float64).

    ``magnitude`` (..., m) bounds the size of the terms summed into each diagonal entry, so a
    pivot that cancelled down to round-off is recognised as singular.
    """
    torch = _torch()
    L, info = torch.linalg.cholesky_ex(A)
    if _regular(L, info, magnitude):
        return L
    if jitter is not None:
        # relative to the typical diagonal entry, so the jitter is scale free
        scale = magnitude.mean(-1, keepdim=True).clamp_min(1e-300)
        eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
        L, info = torch.linalg.cholesky_ex(A + jitter * scale[..., None] * eye)
        if bool((info == 0).all()):
            return L
    raise ProbConservError(
        f"{what} is singular (Cholesky failed): the constraint rows are linearly dependent or the "
        "covariance has no variance along them (for instance a covariance already conditioned on "
        "the same constraint); use sigma_g > 0, remove dependent rows, or pass jitter=1e-10 to add "
        "that fraction of the mean diagonal"
    )


def _condition(mean, cov, diagonal, G, b, noise_var, jitter, return_cov, what="sigma_g^2 I + G S G^T"):
    """Gaussian conditioning on ``G u = b + eps``, eps ~ N(0, diag(noise_var)); float64 inputs."""
    torch = _torch()
    Gt = G.transpose(-1, -2)
    SGt = cov[..., :, None] * Gt if diagonal else cov @ Gt  # (..., n, m)
    A = G @ SGt
    noise = noise_var.expand(A.shape[:-1])
    A = 0.5 * (A + A.transpose(-1, -2)) + torch.diag_embed(noise)
    with torch.no_grad():
        absG = G.abs()
        spread = absG * cov.abs()[..., None, :] if diagonal else absG @ cov.abs()
        magnitude = (spread * absG).sum(-1) + noise
    L = _factor(A, magnitude, jitter, what)
    residual = (G @ mean[..., None])[..., 0] - b
    mean_new = mean - (SGt @ torch.cholesky_solve(residual[..., None], L))[..., 0]
    if return_cov is None:
        return mean_new, None
    gain_t = torch.cholesky_solve(SGt.transpose(-1, -2), L)  # A^-1 G S, (..., m, n)
    if return_cov == "diag":
        variance = cov if diagonal else torch.diagonal(cov, dim1=-2, dim2=-1)
        return mean_new, variance - (SGt * gain_t.transpose(-1, -2)).sum(-1)
    S = torch.diag_embed(cov) if diagonal else cov
    cov_new = S - SGt @ gain_t
    return mean_new, 0.5 * (cov_new + cov_new.transpose(-1, -2))


def _nonnegative_mean(mean, cov, diagonal, G, b, noise_var, jitter, max_rounds):
    """Active-set conditioning on ``G u = b`` and ``u_i = 0`` for the entries that go negative."""
    torch = _torch()
    n = mean.shape[-1]
    batch = torch.broadcast_shapes(mean.shape[:-1], cov.shape[: cov.dim() - (1 if diagonal else 2)],
                                   G.shape[:-2], b.shape[:-1], noise_var.shape[:-1])
    G_b = G.expand(*batch, *G.shape[-2:])
    b_b = b.expand(*batch, b.shape[-1])
    noise_b = noise_var.expand(*batch, G.shape[-2])
    clamped = torch.zeros(*batch, n, dtype=torch.bool, device=mean.device)
    eye = torch.eye(n, dtype=mean.dtype, device=mean.device)
    support = G_b != 0
    scale = G_b.abs().sum(-1) * mean.abs().amax(-1, keepdim=True).clamp_min(1.0)
    for _ in range(max_rounds):
        mask = clamped.to(mean.dtype)
        # a row whose support is all clamped is implied by the clamps (G u = 0 = b) or cannot hold
        live = (support & ~clamped[..., None, :]).any(-1)
        if bool((~live & (b_b.abs() > 1e-12 * scale)).any()):
            raise ProbConservError(
                "nonnegative=True: no non-negative u with G u = b was found: every entry a constraint "
                "row weighs was clamped to 0 while its b is not 0 (is b negative somewhere, or does G "
                "have weights of both signs?)"
            )
        row = live.to(mean.dtype)
        # rows E_A (zero rows for free entries) and zeroed dead rows: their unit noise keeps the
        # system regular and, with a zero residual, gives them a zero multiplier
        C = torch.cat([row[..., None] * G_b, mask[..., :, None] * eye], dim=-2)
        d = torch.cat([row * b_b, torch.zeros_like(mask)], dim=-1)
        noise = torch.cat([torch.where(live, noise_b, torch.ones_like(noise_b)), 1.0 - mask], dim=-1)
        try:
            out, _ = _condition(mean, cov, diagonal, C, d, noise, jitter, None,
                                what="the constraint system with non-negativity clamps")
        except ProbConservError as exc:
            raise ProbConservError(
                "nonnegative=True: the constraints G u = b together with u_i = 0 on the clamped entries "
                "are singular; " + str(exc)
            ) from None
        out = torch.where(clamped, torch.zeros_like(out), out)
        negative = (out < 0) & ~clamped
        if not bool(negative.any()):
            return out
        clamped = clamped | negative
    return out.clamp_min(0.0)


def probconserv_update(mean, cov, G, b, sigma_g=0.0, *, nonnegative: bool = False,
                       jitter: float | None = None, return_cov: str = "full"):
    """Update a Gaussian prediction with the linear conservation constraint ``G u = b``.

    Args:
        mean: predicted mean, tensor of shape ``(..., n)``.
        cov: predicted uncertainty, either the variances ``(..., n)`` (a diagonal covariance,
            as deep ensembles and neural processes give; same number of dimensions as
            ``mean``) or a full covariance ``(..., n, n)`` (one dimension more than ``mean``;
            a covariance shared by a batch of means is passed as ``S[None]``).
        G: constraint matrix ``(..., m, n)``, e.g. quadrature weights of the mass integral,
            one row per time. Leading dimensions broadcast against the mean's.
        b: right-hand side ``(..., m)``, e.g. the exact mass ``U(t)``.
        sigma_g: standard deviation of the constraint noise, a number or a tensor
            broadcastable to ``(..., m)``. 0 (default) enforces the constraint exactly;
            larger values enforce it softly. Gradients flow to it if it is a tensor.
        nonnegative: afterwards move the mean to the closest non-negative point (in the metric
            of ``cov``) that still satisfies ``G u = b``; see the module documentation.
        jitter: None (default) raises :class:`ProbConservError` when
            ``sigma_g^2 I + G S G^T`` is singular; a number ``j`` instead retries once with
            ``j * mean(diag)`` added to its diagonal.
        return_cov: "full" (default): the updated covariance ``(..., n, n)`` (the update
            correlates the entries even when ``cov`` was diagonal); "diag": only its diagonal
            ``(..., n)``, which needs no ``n x n`` storage.

    Returns:
        ``(mean_new, cov_new)`` in the dtype of ``mean``. The computation runs in float64 and
        is differentiable with respect to ``mean``, ``cov``, ``G``, ``b`` and ``sigma_g``.

    Raises:
        ProbConservError: on shapes that do not fit together, a negative ``sigma_g``, or a
            singular ``sigma_g^2 I + G S G^T`` without ``jitter``.
    """
    torch = _torch()
    if not torch.is_tensor(mean):
        mean = torch.as_tensor(mean, dtype=torch.float64)
    if return_cov not in ("full", "diag"):
        raise ProbConservError(f"return_cov: expected 'full' or 'diag', got {return_cov!r}")
    out_dtype = mean.dtype
    mean64, cov64, G64, b64 = (_as_float64(v, mean) for v in (mean, cov, G, b))
    n, m, diagonal = _check_shapes(mean64, cov64, G64, b64)
    sigma = _as_float64(sigma_g, mean)
    if bool((sigma < 0).any()):
        raise ProbConservError(f"sigma_g: a standard deviation must be >= 0, got {sigma_g!r}")
    noise_var = (sigma**2).expand(*sigma.shape[:-1], m) if sigma.dim() else (sigma**2).expand(m)
    mean_new, cov_new = _condition(mean64, cov64, diagonal, G64, b64, noise_var, jitter, return_cov)
    if nonnegative:
        mean_new = _nonnegative_mean(mean64, cov64, diagonal, G64, b64, noise_var, jitter, n + 1)
    # the covariance does not depend on mean or b; give it the batch shape of the mean anyway
    batch = mean_new.shape[:-1]
    cov_new = cov_new.expand(*batch, *cov_new.shape[len(cov_new.shape) - (1 if return_cov == "diag" else 2):])
    return mean_new.to(out_dtype), cov_new.to(out_dtype)


def hardc_update(mean, cov, G, b, *, nonnegative: bool = False, jitter: float | None = None):
    """HardC: project the mean orthogonally onto ``{G u = b}`` and keep the uncertainty.

    ``mean_new = mean - G^T (G G^T)^-1 (G mean - b)``: the ProbConserv update with the identity
    as covariance, i.e. the smallest Euclidean correction, blind to where the model is unsure.

    Args:
        mean: predicted mean ``(..., n)``.
        cov: variances ``(..., n)`` or covariance ``(..., n, n)``; returned unchanged.
        G: constraint matrix ``(..., m, n)``.
        b: right-hand side ``(..., m)``.
        nonnegative: afterwards move the mean to the closest (Euclidean) non-negative point
            that still satisfies ``G u = b``.
        jitter: as in :func:`probconserv_update`, for a rank-deficient ``G``.

    Returns:
        ``(mean_new, cov)`` with ``mean_new`` in the dtype of ``mean``.
    """
    torch = _torch()
    if not torch.is_tensor(mean):
        mean = torch.as_tensor(mean, dtype=torch.float64)
    _check_shapes(mean, cov if torch.is_tensor(cov) else torch.as_tensor(cov), torch.as_tensor(G),
                  torch.as_tensor(b))
    ones = torch.ones(mean.shape[-1], dtype=mean.dtype, device=mean.device)
    mean_new, _ = probconserv_update(mean, ones.expand_as(mean), G, b, 0.0, nonnegative=nonnegative,
                                     jitter=jitter, return_cov="diag")
    return mean_new, cov

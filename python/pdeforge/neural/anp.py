"""Attentive neural process (ANP): the base model of ProbConserv.

An ANP (Kim et al., "Attentive Neural Processes", ICLR 2019) sees a few observed points of a
function, the *context* ``(x_c, y_c)``, and predicts a Gaussian ``N(mean(x), sigma(x)^2)`` at any
*target* inputs ``x``. Here the inputs are ``(t, x)`` and the function is ``u(t, x)``, a solution
of a PDE whose parameter the model is not told: it has to infer it from the 100 observed values.

Two paths encode the context, as in the configuration of Hansen et al. (ICML 2023, reference
code amazon-science/probconserv):

* deterministic path: the pairs ``(x_c, y_c)`` are projected to ``hidden`` features, mixed by two
  self-attention layers, and two cross-attention layers let every target input attend to them
  (keys: the projected context inputs, queries: the projected target inputs) -> ``r(x)``;
* latent path: two self-attention layers over the projected pairs, mean-pooled -> a diagonal
  Gaussian over a global latent ``z`` (``hidden`` dimensions).

The decoder maps ``[r(x), z, proj(x)]`` through three ReLU layers of width ``3 * hidden`` to the
mean and, through a softplus plus a floor ``min_sigma``, the standard deviation.

Training maximises ``log p(y_t | z, x_t, context) - KL(q(z | targets) || q(z | context))`` with
``z`` drawn from the target-conditioned posterior (the evidence lower bound of the reference
code, whose targets are points disjoint from the context). At prediction time ``z`` is drawn
from the context-conditioned prior; every latent sample gives one Gaussian per target point,
and the prediction is their equally weighted mixture (:func:`mixture_moments`).

Inputs may be rescaled inside the model (``input_low``/``input_high`` map each input
coordinate's range to ``[-1, 1]``), which lets one configuration serve domains as different as
``t`` in ``[0, 0.1]`` and ``x`` in ``[0, 2 pi]``; derivatives with respect to the raw inputs
(the PDE residual of SoftC) are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pdeforge.errors import PDEForgeError


def _linear(n_in: int, n_out: int, bias: bool = True, gain: str = "linear") -> nn.Linear:
    layer = nn.Linear(n_in, n_out, bias=bias)
    nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(gain))
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class MultiheadAttention(nn.Module):
    """Scaled dot-product attention with ``heads`` heads, a skip connection and layer norm.

    ``out = LayerNorm(query + W [query, attention(query, key, value)])``. Written with plain
    matrix products (not a fused kernel) so that second derivatives exist, as the PDE residual
    of SoftC needs.

    Args:
        hidden: feature width (divisible by ``heads``).
        heads: number of attention heads.
        dropout: dropout on the attention weights and on the output before the skip.
    """

    def __init__(self, hidden: int, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if hidden % heads:
            raise PDEForgeError(f"hidden={hidden} must be divisible by heads={heads}")
        self.heads = heads
        self.key = _linear(hidden, hidden, bias=False)
        self.value = _linear(hidden, hidden, bias=False)
        self.query = _linear(hidden, hidden, bias=False)
        self.out = _linear(2 * hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, key: torch.Tensor, value: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``key``, ``value`` (B, Nk, H), ``query`` (B, Nq, H) -> (B, Nq, H)."""
        B, Nq, H = query.shape
        d = H // self.heads

        def split(x):
            return x.reshape(B, x.shape[1], self.heads, d).transpose(1, 2)  # (B, heads, N, d)

        k, v, q = split(self.key(key)), split(self.value(value)), split(self.query(query))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        mixed = (self.dropout(weights) @ v).transpose(1, 2).reshape(B, Nq, H)
        out = self.dropout(self.out(torch.cat([query, mixed], dim=-1))) + query
        return self.norm(out)


class AttentiveNeuralProcess(nn.Module):
    """ANP with a deterministic (cross-attention) and a latent path.

    Args:
        dim_x: number of input coordinates (2 for ``(t, x)``).
        dim_y: number of outputs.
        hidden: width of every encoder layer and of the latent (128 in the paper).
        heads: attention heads.
        dropout: dropout inside the attention layers (0.1 in the reference code).
        min_sigma: floor of the predicted standard deviation.
        input_low, input_high: per input coordinate, the range mapped to ``[-1, 1]``
            (default: inputs used as given).
        device: torch device of the parameters.
    """

    def __init__(self, dim_x: int = 2, dim_y: int = 1, hidden: int = 128, heads: int = 4, dropout: float = 0.0,
                 min_sigma: float = 1e-3, input_low: Sequence[float] | None = None,
                 input_high: Sequence[float] | None = None, device="cpu"):
        super().__init__()
        self.dim_x, self.dim_y, self.hidden = dim_x, dim_y, hidden
        self.min_sigma = float(min_sigma)
        low = torch.as_tensor(input_low if input_low is not None else [-1.0] * dim_x, dtype=torch.float32)
        high = torch.as_tensor(input_high if input_high is not None else [1.0] * dim_x, dtype=torch.float32)
        if low.shape != (dim_x,) or high.shape != (dim_x,) or bool((high <= low).any()):
            raise PDEForgeError(f"input_low/input_high: {dim_x} values each with low < high")
        self.register_buffer("input_low", low)
        self.register_buffer("input_high", high)
        # latent path
        self.latent_in = _linear(dim_x + dim_y, hidden)
        self.latent_attention = nn.ModuleList([MultiheadAttention(hidden, heads, dropout) for _ in range(2)])
        self.latent_hidden = _linear(hidden, hidden, gain="relu")
        self.latent_mu = _linear(hidden, hidden)
        self.latent_logvar = _linear(hidden, hidden)
        # deterministic path
        self.det_in = _linear(dim_x + dim_y, hidden)
        self.det_attention = nn.ModuleList([MultiheadAttention(hidden, heads, dropout) for _ in range(2)])
        self.context_key = _linear(dim_x, hidden)
        self.target_query = _linear(dim_x, hidden)
        self.cross_attention = nn.ModuleList([MultiheadAttention(hidden, heads, dropout) for _ in range(2)])
        # decoder
        self.decoder_x = _linear(dim_x, hidden)
        self.decoder = nn.ModuleList([_linear(3 * hidden, 3 * hidden, gain="relu") for _ in range(3)])
        self.decoder_out = _linear(3 * hidden, 2 * dim_y)
        self.to(device)

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * (x - self.input_low) / (self.input_high - self.input_low) - 1.0

    def latent(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance ``(B, hidden)`` of ``q(z | x, y)`` for points ``x`` (B, N, dim_x)."""
        h = self.latent_in(torch.cat([self._scaled(x), y], dim=-1))
        for layer in self.latent_attention:
            h = layer(h, h, h)
        h = torch.relu(self.latent_hidden(h.mean(dim=1)))
        return self.latent_mu(h), self.latent_logvar(h)

    def deterministic(self, context_x: torch.Tensor, context_y: torch.Tensor, target_x: torch.Tensor) -> torch.Tensor:
        """``r(x)`` (B, Nt, hidden): the targets' cross-attention over the encoded context."""
        cx = self._scaled(context_x)
        h = self.det_in(torch.cat([cx, context_y], dim=-1))
        for layer in self.det_attention:
            h = layer(h, h, h)
        query, keys = self.target_query(self._scaled(target_x)), self.context_key(cx)
        for layer in self.cross_attention:
            query = layer(keys, h, query)
        return query

    def decode(self, r: torch.Tensor, z: torch.Tensor, target_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation (..., Nt, dim_y) from ``r`` (..., Nt, H) and ``z`` (..., H)."""
        xp = self.decoder_x(self._scaled(target_x))
        h = torch.cat([r, z[..., None, :].expand(*r.shape[:-1], z.shape[-1]), xp.expand_as(r)], dim=-1)
        for layer in self.decoder:
            h = torch.relu(layer(h))
        mean, raw = self.decoder_out(h).split(self.dim_y, dim=-1)
        return mean, nn.functional.softplus(raw) + self.min_sigma

    def forward(self, context_x: torch.Tensor, context_y: torch.Tensor, target_x: torch.Tensor,
                target_y: torch.Tensor | None = None):
        """One pass with one latent draw.

        Args:
            context_x: (B, Nc, dim_x) observed inputs; context_y: (B, Nc, dim_y) their values.
            target_x: (B, Nt, dim_x) inputs to predict.
            target_y: (B, Nt, dim_y) values at the targets (training): ``z`` is then drawn from
                ``q(z | targets)`` and the KL term is returned; None: ``z`` from ``q(z | context)``.

        Returns:
            ``(mean, sigma, kl)``: (B, Nt, dim_y) twice and the KL divergence per function
            (B,) (None without ``target_y``).
        """
        prior_mu, prior_logvar = self.latent(context_x, context_y)
        if target_y is not None:
            # the targets' inputs enter the posterior detached: the predicted value at one point
            # then depends on that point's input alone, and d mean / d target_x (the PDE
            # residual of SoftC) is a pointwise derivative
            post_mu, post_logvar = self.latent(target_x.detach(), target_y)
            z = post_mu + torch.exp(0.5 * post_logvar) * torch.randn_like(post_mu)
            kl = 0.5 * (torch.exp(post_logvar - prior_logvar) + (post_mu - prior_mu) ** 2 / torch.exp(prior_logvar)
                        - 1.0 + prior_logvar - post_logvar).sum(-1)
        else:
            z = prior_mu + torch.exp(0.5 * prior_logvar) * torch.randn_like(prior_mu)
            kl = None
        mean, sigma = self.decode(self.deterministic(context_x, context_y, target_x), z, target_x)
        return mean, sigma, kl

    def elbo_loss(self, context_x, context_y, target_x, target_y) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative evidence lower bound per function, averaged over the batch, and the mean.

        Returns ``(loss, mean)``: the loss is ``-sum log N(y_t; mean, sigma^2) + KL`` averaged over
        the functions of the batch; ``mean`` (B, Nt, dim_y) is returned for penalties on it.
        """
        mean, sigma, kl = self(context_x, context_y, target_x, target_y)
        log_prob = torch.distributions.Normal(mean, sigma).log_prob(target_y).sum(dim=(-2, -1))
        return (kl - log_prob).mean(), mean

    @torch.no_grad()
    def sample(self, context_x: torch.Tensor, context_y: torch.Tensor, target_x: torch.Tensor,
               n_samples: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and standard deviations for ``n_samples`` draws of ``z`` from ``q(z | context)``.

        The context is encoded once; only the decoder runs per draw.

        Returns:
            ``(means, sigmas)`` of shape (n_samples, B, Nt) for ``dim_y = 1``, else
            (n_samples, B, Nt, dim_y).
        """
        prior_mu, prior_logvar = self.latent(context_x, context_y)
        r = self.deterministic(context_x, context_y, target_x)
        means, sigmas = [], []
        for _ in range(n_samples):
            z = prior_mu + torch.exp(0.5 * prior_logvar) * torch.randn_like(prior_mu)
            m, s = self.decode(r, z, target_x)
            means.append(m)
            sigmas.append(s)
        means, sigmas = torch.stack(means), torch.stack(sigmas)
        if self.dim_y == 1:
            return means[..., 0], sigmas[..., 0]
        return means, sigmas


def mixture_moments(means: torch.Tensor, variances: torch.Tensor, min_variance: float = 0.0):
    """Mean and variance of the equally weighted Gaussian mixture over the first dimension.

    ``mean = avg_s mean_s``, ``var = avg_s var_s + var_s(mean_s)`` (the spread of the sample
    means with the unbiased ``1/(S-1)``, as the reference code; 0 for one sample). Variances
    are floored at ``min_variance`` before mixing.
    """
    mean = means.mean(0)
    spread = means.var(0) if means.shape[0] > 1 else torch.zeros_like(mean)
    return mean, variances.clamp_min(min_variance).mean(0) + spread


@dataclass
class ContextTargetSet:
    """Functions observed at context points and scored at target points.

    Attributes:
        context_x: (F, Nc, 2) inputs ``(t, x)``; context_y: (F, Nc, 1) the values there.
        target_x: (F, Nt, 2); target_y: (F, Nt, 1).
        params: (F, P) the PDE parameters of each function (for physics penalties; never an
            input of the ANP).
    """

    context_x: torch.Tensor
    context_y: torch.Tensor
    target_x: torch.Tensor
    target_y: torch.Tensor
    params: torch.Tensor

    def __len__(self) -> int:
        return self.context_x.shape[0]

    def batch(self, index) -> ContextTargetSet:
        """The functions selected by ``index``."""
        return ContextTargetSet(self.context_x[index], self.context_y[index], self.target_x[index],
                                self.target_y[index], self.params[index])

    def to(self, device) -> ContextTargetSet:
        """The same set on ``device``."""
        return ContextTargetSet(*(getattr(self, f).to(device) for f in
                                  ("context_x", "context_y", "target_x", "target_y", "params")))


#: A physics penalty on the predicted mean: ``penalty(mean (B, Nt, 1), target_x (B, Nt, 2),
#: params (B, P)) -> scalar``; ``target_x`` requires grad, so derivatives are available.
Penalty = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit_anp(model: AttentiveNeuralProcess, data: ContextTargetSet, *, epochs: int, batch_size: int = 250,
            lr: float = 1e-4, schedule: str = "constant", penalty: Penalty | None = None,
            penalty_weight: float = 1.0, seed: int = 0, log_every: int = 0,
            log: Callable[[str], None] = print, per_step: bool = False) -> list[float]:
    """Train an ANP with Adam on the negative ELBO (plus an optional physics penalty).

    Args:
        model: the ANP (trained in place).
        data: training functions; shuffled every epoch.
        epochs: passes over ``data``.
        batch_size: functions per step.
        lr: Adam learning rate (the peak rate for ``schedule="one-cycle"``).
        schedule: "constant" (the reference code's) or "one-cycle": the rate rises over the
            first 10% of the steps and then falls along a cosine to ``lr / 1e4``, which reaches a
            lower loss than a constant rate when only a few hundred steps are affordable.
        penalty: added to the loss times ``penalty_weight`` (SoftC: the PDE residual of the mean).
        seed: seeds the shuffling, the latent draws and dropout (the global torch generator
            is restored afterwards), so the same seed gives the same weights.
        log_every: print the mean loss every this many epochs (0: never).
        log: where the lines go.
        per_step: return the loss of every step instead of every epoch's mean.

    Returns:
        The mean training loss of every epoch (of every step with ``per_step``).
    """
    if schedule not in ("constant", "one-cycle"):
        raise PDEForgeError(f"schedule: 'constant' or 'one-cycle', got {schedule!r}")
    device = next(model.parameters()).device
    data = data.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = None
    if schedule == "one-cycle":
        steps = epochs * math.ceil(len(data) / batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1,
                                                        anneal_strategy="cos", cycle_momentum=False,
                                                        final_div_factor=400.0)
    history, step_losses = [], []
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(len(data), device=device)
            total, steps = 0.0, 0
            for start in range(0, len(data), batch_size):
                b = data.batch(order[start:start + batch_size])
                target_x = b.target_x.clone().requires_grad_(penalty is not None)
                loss, mean = model.elbo_loss(b.context_x, b.context_y, target_x, b.target_y)
                if penalty is not None:
                    loss = loss + penalty_weight * penalty(mean, target_x, b.params)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if scheduler is not None:
                    scheduler.step()
                step_losses.append(float(loss.detach()))
                total += step_losses[-1]
                steps += 1
            history.append(total / steps)
            if log_every and (epoch + 1) % log_every == 0:
                log(f"  epoch {epoch + 1}/{epochs}: loss {history[-1]:.4g}")
        model.eval()
    return step_losses if per_step else history


@torch.no_grad()
def predict_anp(model: AttentiveNeuralProcess, context_x: torch.Tensor, context_y: torch.Tensor,
                target_x: torch.Tensor, n_samples: int = 100, batch_size: int = 10, seed: int = 0):
    """Per-latent-sample predictions for many functions, in batches of functions.

    Returns:
        ``(means, variances)`` of shape (n_samples, F, Nt) in float64 (``dim_y = 1``).
    """
    device = next(model.parameters()).device
    model.eval()
    devices = [device] if device.type == "cuda" else []
    means, variances = [], []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, context_x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            m, s = model.sample(context_x[sl].to(device), context_y[sl].to(device), target_x[sl].to(device), n_samples)
            means.append(m.double())
            variances.append(s.double() ** 2)
    return torch.cat(means, dim=1), torch.cat(variances, dim=1)

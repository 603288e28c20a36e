"""A probabilistic base model for ProbConserv: a deep ensemble of Fourier neural operators.

Each member is a one-dimensional Fourier neural operator (``neuralop.models.FNO``) that maps,
at one time ``t``, the input functions of ``x``

    [PDE parameters (normalised, constant in x), t (normalised, constant in x),
     x (normalised to [0, 1] on the training domain), u0(x)]

to two output functions: the mean of ``u(t, x)`` and, through a softplus, its variance. The
coordinate channel (rather than neuralop's built-in grid embedding, which assumes points
``j/n`` and so shifts with the resolution) lets one trained ensemble predict on any grid of
the domain: train on a coarse grid, evaluate on a fine one. Members are trained independently, from different
seeds, on the Gaussian negative log-likelihood; their predictions are combined as the equally
weighted Gaussian mixture (Lakshminarayanan et al., "Simple and scalable predictive
uncertainty estimation using deep ensembles", 2017):

    mean = avg_k mean_k,    var = avg_k (var_k + mean_k^2) - mean^2

so the variance holds both the members' own noise estimate and their disagreement. The
per-time output is what ProbConserv wants: one mass constraint per time slice.

Training is seeded (same seed, same weights), shows a tqdm progress bar, and can write a
checkpoint after every epoch and resume from it, reproducing the uninterrupted run exactly.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pdeforge.errors import PDEForgeError
from pdeforge.neural.data import FieldData


class ProbabilisticFNO(nn.Module):
    """One ensemble member: an FNO over ``x`` with a mean and a variance channel.

    Args:
        in_channels: input functions (parameters, time, coordinate, initial data).
        modes: Fourier modes kept per layer.
        width: hidden channels.
        layers: Fourier layers.
        min_variance: floor added to the predicted variance (keeps the likelihood finite
            where the data are exact, e.g. the zero state ahead of a front).
        domain_padding: fraction of extra points padded on to the domain inside the FNO, so
            that non-periodic solutions do not wrap around.
    """

    def __init__(self, in_channels: int, modes: int = 16, width: int = 32, layers: int = 4,
                 min_variance: float = 1e-6, domain_padding: float = 0.25):
        super().__init__()
        from neuralop.models import FNO

        self.fno = FNO(n_modes=(modes,), in_channels=in_channels, out_channels=2, hidden_channels=width,
                       n_layers=layers, domain_padding=domain_padding or None, positional_embedding=None)
        self.min_variance = float(min_variance)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``inputs`` (B, in_channels, X) -> (mean (B, X), variance (B, X))."""
        out = self.fno(inputs)
        return out[:, 0], nn.functional.softplus(out[:, 1]) + self.min_variance


def _member_seed(seed: int, k: int) -> int:
    return int(seed) * 1_000_003 + 7919 * k


class DeepEnsemble(nn.Module):
    """Deep ensemble of :class:`ProbabilisticFNO` members for a 1-D parametric family.

    Args:
        n_params: number of PDE parameters given as input.
        n_members: ensemble size.
        modes, width, layers, min_variance, domain_padding: of every member (see
            :class:`ProbabilisticFNO`).
        seed: seeds the members' initial weights and their data shuffling; the same seed
            gives the same trained weights.
        device: torch device ("cpu", "cuda", ...).
    """

    def __init__(self, n_params: int = 1, n_members: int = 4, modes: int = 16, width: int = 32, layers: int = 4,
                 min_variance: float = 1e-6, domain_padding: float = 0.25, seed: int = 0, device="cpu"):
        super().__init__()
        if n_members < 1:
            raise PDEForgeError(f"n_members: need at least one member, got {n_members}")
        self.config = dict(n_params=int(n_params), n_members=int(n_members), modes=int(modes), width=int(width),
                           layers=int(layers), min_variance=float(min_variance), domain_padding=float(domain_padding),
                           seed=int(seed))
        members = []
        for k in range(n_members):
            # the global generator initialises neuralop's layers: fork it so construction is
            # reproducible and leaves the caller's random state alone
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_member_seed(seed, k))
                members.append(ProbabilisticFNO(n_params + 3, modes, width, layers, min_variance, domain_padding))
        self.members = nn.ModuleList(members)
        # input normalisation, fixed by the first fit (kept in the state dict)
        self.register_buffer("param_low", torch.zeros(n_params, dtype=torch.float64))
        self.register_buffer("param_high", torch.ones(n_params, dtype=torch.float64))
        self.register_buffer("t_scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("x_low", torch.zeros((), dtype=torch.float64))
        self.register_buffer("x_high", torch.ones((), dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.to(device)

    def state_dict(self, *args, **kwargs):
        """The tensors of every member and the input normalisation.

        neuralop's FNO adds a ``_metadata`` dict of its constructor arguments to any state
        dict it is part of (and warns when several FNOs share one); the ensemble keeps its own
        configuration instead, so that entry is left out.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Attempting to update metadata")
            state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    @property
    def device(self) -> torch.device:
        return self.param_low.device

    # ------------------------------------------------------------------------------- inputs
    def _set_normalisation(self, data: FieldData) -> None:
        if bool(self.fitted):
            return
        lo = np.asarray(data.params.min(axis=0), dtype=float)
        hi = np.asarray(data.params.max(axis=0), dtype=float)
        hi = np.where(hi > lo, hi, lo + 1.0)
        self.param_low.copy_(torch.as_tensor(lo))
        self.param_high.copy_(torch.as_tensor(hi))
        self.t_scale.fill_(float(max(abs(data.t[0]), abs(data.t[-1]), 1e-12)))
        self.x_low.fill_(float(data.x[0]))
        self.x_high.fill_(float(data.x[-1]) if data.x[-1] > data.x[0] else float(data.x[0]) + 1.0)
        self.fitted.fill_(True)

    def inputs(self, params, t, x, u0) -> torch.Tensor:
        """Input functions for every (parameter set, time): a tensor (N*T, P + 3, X).

        Args:
            params: (N, P) parameter values.
            t: (T,) times.
            x: (X,) points (any grid of the domain).
            u0: (N, X) initial data on ``x``.
        """
        params = torch.as_tensor(np.asarray(params, dtype=float), device=self.device)
        if params.dim() != 2 or params.shape[1] != self.config["n_params"]:
            raise PDEForgeError(f"params: expected shape (N, {self.config['n_params']}), got {tuple(params.shape)}")
        t = torch.as_tensor(np.asarray(t, dtype=float), device=self.device)
        x = torch.as_tensor(np.asarray(x, dtype=float), device=self.device)
        u0 = torch.as_tensor(np.asarray(u0, dtype=float), device=self.device)
        N, T, X = params.shape[0], t.shape[0], x.shape[0]
        if u0.shape != (N, X):
            raise PDEForgeError(f"u0: expected shape ({N}, {X}) (parameter sets, points), got {tuple(u0.shape)}")
        p = (params - self.param_low) / (self.param_high - self.param_low)
        channels = [
            p[:, None, :, None].expand(N, T, p.shape[1], X),
            (t / self.t_scale)[None, :, None, None].expand(N, T, 1, X),
            ((x - self.x_low) / (self.x_high - self.x_low))[None, None, None, :].expand(N, T, 1, X),
            u0[:, None, None, :].expand(N, T, 1, X),
        ]
        return torch.cat(channels, dim=2).reshape(N * T, -1, X).float()

    # ----------------------------------------------------------------------------- predict
    @torch.no_grad()
    def predict(self, params, t, x, u0, batch_size: int = 512, members: Sequence[int] | None = None):
        """Mean and variance of ``u(t, x)`` for every parameter set and time.

        Args:
            params: (N, P) parameter values.
            t: (T,) times.
            x: (X,) points where ``u`` is wanted (need not be the training grid).
            u0: (N, X) initial data on ``x``.
            batch_size: slices per forward pass.
            members: which members to combine (default: all).

        Returns:
            ``(mean, variance)``, float64 tensors of shape (N, T, X) on the ensemble's device.
        """
        if not bool(self.fitted):
            raise PDEForgeError("DeepEnsemble.predict: the ensemble has not been fitted (call fit or load)")
        x_in = self.inputs(params, t, x, u0)
        N, T = np.asarray(params).shape[0], len(t)
        chosen = list(range(len(self.members))) if members is None else list(members)
        first = torch.zeros(x_in.shape[0], x_in.shape[-1], dtype=torch.float64, device=self.device)
        second = torch.zeros_like(first)
        was_training = self.training
        self.eval()
        for k in chosen:
            for s in range(0, x_in.shape[0], batch_size):
                mean_k, var_k = self.members[k](x_in[s:s + batch_size])
                mean_k, var_k = mean_k.double(), var_k.double()
                first[s:s + batch_size] += mean_k
                second[s:s + batch_size] += var_k + mean_k**2
        self.train(was_training)
        mean = first / len(chosen)
        var = (second / len(chosen) - mean**2).clamp_min(self.config["min_variance"])
        return mean.reshape(N, T, -1), var.reshape(N, T, -1)

    def predict_data(self, data: FieldData, **kwargs):
        """:meth:`predict` on the parameters, times and initial data of ``data``."""
        return self.predict(data.params, data.t, data.x, data.u0, **kwargs)

    # --------------------------------------------------------------------------------- fit
    def fit(self, data: FieldData, epochs: int = 60, batch_size: int = 64, lr: float = 3e-3,
            weight_decay: float = 1e-5, beta: float = 0.0, checkpoint: str | os.PathLike | None = None,
            resume: bool = True, progress: bool = True) -> dict:
        """Train every member on ``data`` with the Gaussian negative log-likelihood.

        Each member runs ``epochs`` passes over the (parameter set, time) slices in an order
        drawn from its own seeded generator, with Adam and a cosine learning-rate decay.

        Args:
            data: training solutions (:func:`pdeforge.neural.data.generate_dataset`).
            epochs: passes over the data per member.
            batch_size: slices per step.
            lr: peak learning rate of Adam.
            weight_decay: Adam's L2 penalty.
            beta: 0 (default) trains on the plain Gaussian negative log-likelihood; ``beta > 0``
                weights each point's term by its (gradient-free) predicted variance to the
                power ``beta`` (the beta-NLL of Seitzer et al., ICLR 2022), which keeps points
                with a large predicted variance from being ignored by the mean; 1 gives the
                mean the gradient of the squared error.
            checkpoint: file written after every epoch (weights, optimiser, scheduler and
                shuffling states, loss history); with ``resume`` an existing file is loaded
                and training continues where it stopped.
            resume: continue from ``checkpoint`` if it exists (False: start over and overwrite).
            progress: show a tqdm progress bar.

        Returns:
            ``{"loss": [[mean loss of each epoch] for each member]}``.
        """
        from tqdm.auto import tqdm

        if epochs < 1 or batch_size < 1:
            raise PDEForgeError(f"fit: epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        if not np.all(np.isfinite(data.u)):
            raise PDEForgeError("fit: the training solutions contain non-finite values")
        fit_setting = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, beta=beta,
                           n=len(data))
        state = None
        if checkpoint is not None and resume and os.path.exists(checkpoint):
            state = torch.load(checkpoint, map_location=self.device, weights_only=True)
            if state["config"] != self.config or state["fit"] != fit_setting:
                raise PDEForgeError(
                    f"checkpoint {os.fspath(checkpoint)!r} was written by a different ensemble or training "
                    "setting; pass resume=False to start over"
                )
            self.load_state_dict(state["model"])
        self._set_normalisation(data)
        x_all = self.inputs(data.params, data.t, data.x, data.u0)
        y_all = torch.as_tensor(data.u.reshape(-1, data.u.shape[-1]), dtype=torch.float32, device=self.device)
        n = x_all.shape[0]
        steps_per_epoch = math.ceil(n / batch_size)
        history = state["history"] if state else {"loss": [[] for _ in self.members]}
        start_member = state["member"] if state else 0
        start_epoch = state["epoch"] if state else 0
        total = len(self.members) * epochs
        bar = tqdm(total=total, initial=start_member * epochs + start_epoch, disable=not progress,
                   desc="ensemble", unit="epoch")
        self.train()
        for k in range(start_member, len(self.members)):
            member = self.members[k]
            opt = torch.optim.Adam(member.parameters(), lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch, eta_min=lr * 1e-2)
            gen = torch.Generator().manual_seed(_member_seed(self.config["seed"], k) + 1)
            first_epoch = 0
            if state is not None and k == start_member:
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                gen.set_state(state["generator"])
                first_epoch = start_epoch
            for epoch in range(first_epoch, epochs):
                order = torch.randperm(n, generator=gen).to(self.device)
                total_loss = 0.0
                for s in range(0, n, batch_size):
                    idx = order[s:s + batch_size]
                    mean, var = member(x_all[idx])
                    nll = 0.5 * (torch.log(2 * math.pi * var) + (y_all[idx] - mean) ** 2 / var)
                    loss = (nll * var.detach() ** beta).mean() if beta else nll.mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    total_loss += float(loss.detach()) * idx.numel()
                history["loss"][k].append(total_loss / n)
                bar.update(1)
                bar.set_postfix(member=k, nll=f"{history['loss'][k][-1]:.3f}")
                if checkpoint is not None:
                    done = epoch + 1 == epochs
                    self._write_checkpoint(checkpoint, k + 1 if done else k, 0 if done else epoch + 1, opt, sched,
                                           gen, history, fit_setting)
            state = None
        bar.close()
        self.eval()
        return history

    def _write_checkpoint(self, path, member, epoch, opt, sched, gen, history, fit) -> None:
        tmp = f"{os.fspath(path)}.tmp"
        torch.save({"config": self.config, "model": self.state_dict(), "member": member, "epoch": epoch,
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "generator": gen.get_state(),
                    "history": history, "fit": fit}, tmp)
        os.replace(tmp, path)  # never leave a half-written checkpoint behind

    # ------------------------------------------------------------------------------ save/load
    def save(self, path: str | os.PathLike) -> None:
        """Write the configuration and weights (trained or not) to ``path``."""
        torch.save({"config": self.config, "model": self.state_dict()}, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device="cpu") -> DeepEnsemble:
        """An ensemble from a file written by :meth:`save` or by :meth:`fit`'s checkpoints."""
        state = torch.load(path, map_location=device, weights_only=True)
        model = cls(**state["config"], device=device)
        model.load_state_dict(state["model"])
        return model

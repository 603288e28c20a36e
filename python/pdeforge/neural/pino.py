"""Physics-informed neural operator (PINO) trained on the generated LES residual.

A Fourier neural operator (``neuralop.models.FNO``; a compact built-in one where neuraloperator
is not installed, see :mod:`pdeforge.neural.fno`) maps the velocity at ``t0`` to the
trajectory at ``t0 + dt, ..., t0 + T dt``. Its physics loss is the residual of the very system
the pdeforge LES solver is generated from: with the input frame prepended, the trajectory's
central difference in time minus the generated pseudo-spectral right-hand side
(:meth:`pdeforge.codegen.spectral.compile.SpectralOperator.residual`), plus the squared divergence of
every frame (LESnets, Zhao et al., JCP 2025). An optional data term compares with solver
trajectories; an optional learnable Smagorinsky constant enters the residual as a tensor, so
autograd reaches it through the generated kernels.

Training (:class:`PINOTrainer`) is seeded, runs on any ``device``, shows a tqdm progress bar
and saves / resumes checkpoints (weights, optimizer, scheduler, random states, history).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pdeforge.errors import PDEForgeError


class PINOError(PDEForgeError):
    """Bad PINO configuration or input."""


RESIDUALS = ("quadrature", "central")
ANSATZES = ("taylor", "increment")
SCHEDULES = ("onecycle", "cosine")

# weights (times 1/24) of the rates at 4 consecutive frames in the integral of a cubic through
# them over one frame interval: the first, an interior (the middle one) and the last interval
_CUBIC_STEP_WEIGHTS = ((9.0, 19.0, -5.0, 1.0), (-1.0, 13.0, 13.0, -1.0), (1.0, -5.0, 19.0, 9.0))


def quadrature_residual(rates: torch.Tensor, traj: torch.Tensor, dt: float) -> torch.Tensor:
    """Fourth-order residual of the steps of a trajectory against the integral of its rates.

    Args:
        rates: right-hand side at every frame, ``(B, N, F, *shape)``, ``N >= 4``.
        traj: the frames, same shape, equally spaced by ``dt``.
        dt: time between frames.

    Returns:
        ``(B, N - 1, F, *shape)``: ``(u_{j+1} - u_j)/dt`` minus the mean of the rates over
        ``[t_j, t_{j+1}]`` by the cubic through frames ``j-1 .. j+2`` (``0 .. 3`` in the first
        step, ``N-4 .. N-1`` in the last), zero to O(dt^4) for the exact trajectory.
    """
    n = traj.shape[1]
    if n < 4:
        raise PINOError(f"quadrature residual: need at least 4 frames, got {n}")
    first, inner, last = _CUBIC_STEP_WEIGHTS
    steps = (traj[:, 1:] - traj[:, :-1]) / dt

    def combo(weights, start, stop):
        return sum(w * rates[:, start + i:stop + i] for i, w in enumerate(weights)) / 24.0

    mean_rate = torch.cat([combo(first, 0, 1), combo(inner, 0, n - 3), combo(last, n - 4, n - 3)], dim=1)
    return steps - mean_rate


@dataclass
class PINOConfig:
    """Architecture and training settings.

    Attributes:
        steps_out: output frames per window (T).
        dt: time between frames.
        width: hidden channels of the FNO.
        layers: Fourier layers.
        modes: Fourier modes kept per axis (at most grid // 2).
        lifting_ratio: hidden channels of the lifting MLP per unit of width (neuralop's
            ``lifting_channel_ratio``, 2 by default); 0: a single linear lifting layer.
        positional_embedding: "grid" (neuralop's coordinate channels) or None (translation
            invariant, natural for homogeneous turbulence).
        ansatz: how the network's output becomes frames. "taylor" (default): the generated
            right-hand side ``f(u0)`` is an input channel and the exact first-order term,
            ``u(t0 + t) = u0 + t f(u0) + t^2 N(u0, f(u0))``, so the network fits only what
            the tangent misses. "increment": ``u0 + t N(u0)``.
        lr: Adam learning rate (the peak of the one-cycle schedule, or the start of the
            cosine decay to 1%).
        schedule: "onecycle" (default: warm-up over the first ``warmup`` of the planned
            steps, then cosine annealing to ``lr / 1e4``) or "cosine".
        warmup: fraction of the steps spent warming up ("onecycle").
        grad_clip: clip the global gradient norm to this value (0: no clipping).
        weight_decay: Adam weight decay.
        batch_size: initial fields per optimizer step.
        physics_weight: weight of the residual term.
        divergence_weight: weight of the divergence term.
        data_weight: weight of the data term (needs target trajectories).
        energy_weight: weight of the energy-budget term (``residual="quadrature"`` only): the
            kinetic energy of the frames, ``E_j = <|u_j|^2>/2``, must change as the integral of
            the power of the generated right-hand side, ``P_j = <u_j . f(u_j)>``, by the same
            fourth-order quadrature as the fields: ``(E_{j+1} - E_j)/dt = (-P_{j-1} + 13 P_j +
            13 P_{j+1} - P_{j+2})/24``, normalised by ``P_0^2``. It is implied by the pointwise
            residual (the exact trajectory scores zero on both, up to O(dt^4)), but a pointwise
            fit error that is correlated with ``u`` (a slight over-damping) is small in the
            pointwise norm and shifts the energy at every window; this term sees it directly.
        learn_cs: train the Smagorinsky constant together with the network.
        residual: time discretisation of the physics residual across frames. "quadrature"
            (default): every step between consecutive frames must match the integral of the
            right-hand side by a fourth-order (cubic-interpolation) quadrature of the
            neighbouring frames' rates, ``(u_{j+1} - u_j)/dt = (-f_{j-1} + 13 f_j + 13 f_{j+1}
            - f_{j+2})/24`` (one-sided cubic weights in the first and last step), so the exact
            trajectory's residual is O(dt^4) and every frame is tied to its neighbour.
            "central": the central difference ``(u_{j+1} - u_{j-1})/(2 dt) - f_j`` (O(dt^2),
            couples frames of equal parity; see ``first_step``).
        first_step: with ``residual="central"``, add the trapezoidal residual of the first step,
            ``(u_1 - u_0)/dt - (f(u_0) + f(u_1))/2``. The central difference couples only frames
            of equal parity, so without it the odd frames are tied to the input only through
            ``f`` and drift (the leapfrog scheme's computational mode).
        dtype: "float32" (default) or "float64" for the network and the residual.
        fno: "auto" (neuraloperator's FNO when importable, else the built-in one), "neuralop"
            or "builtin" (:mod:`pdeforge.neural.fno`).
    """

    steps_out: int = 10
    dt: float = 0.02
    width: int = 32
    layers: int = 4
    modes: int = 8
    lifting_ratio: float = 2
    positional_embedding: str | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 4
    physics_weight: float = 1.0
    divergence_weight: float = 1.0
    data_weight: float = 0.0
    energy_weight: float = 0.0
    learn_cs: bool = False
    residual: str = "quadrature"
    first_step: bool = True
    dtype: str = "float32"
    fno: str = "auto"
    ansatz: str = "taylor"
    schedule: str = "onecycle"
    warmup: float = 0.1
    grad_clip: float = 1.0

    def check(self, shape: Sequence[int]) -> None:
        """Raise :class:`PINOError` for settings that cannot work on a grid of ``shape``."""
        if self.steps_out < 2:
            raise PINOError(f"steps_out must be >= 2 (the residual needs 3 frames with the input), got {self.steps_out}")
        if self.residual not in RESIDUALS:
            raise PINOError(f"residual {self.residual!r}: one of {', '.join(RESIDUALS)}")
        if self.residual == "quadrature" and self.steps_out < 3:
            raise PINOError(f"residual 'quadrature' needs steps_out >= 3 (cubic weights over 4 frames), got {self.steps_out}")
        if self.energy_weight and self.residual != "quadrature":
            raise PINOError("energy_weight > 0 needs residual 'quadrature'")
        if not (self.energy_weight >= 0 and math.isfinite(self.energy_weight)):
            raise PINOError(f"energy_weight must be >= 0, got {self.energy_weight!r}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise PINOError(f"dt must be a positive number, got {self.dt!r}")
        if self.modes < 1 or self.modes > min(shape):
            raise PINOError(f"modes = {self.modes}: need 1 <= modes <= {min(shape)} on a {'x'.join(map(str, shape))} grid")
        if self.ansatz not in ANSATZES:
            raise PINOError(f"ansatz {self.ansatz!r}: one of {', '.join(ANSATZES)}")
        if self.schedule not in SCHEDULES:
            raise PINOError(f"schedule {self.schedule!r}: one of {', '.join(SCHEDULES)}")
        if not 0 < self.warmup < 1:
            raise PINOError(f"warmup must be a fraction in (0, 1), got {self.warmup!r}")
        if not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise PINOError(f"grad_clip must be >= 0 (0: off), got {self.grad_clip!r}")
        if not self.lifting_ratio >= 0:
            raise PINOError(f"lifting_ratio must be >= 0 (0: a linear lifting), got {self.lifting_ratio!r}")
        if self.width < 1 or self.layers < 1 or self.batch_size < 1:
            raise PINOError("width, layers and batch_size must be positive")
        if self.dtype not in ("float32", "float64"):
            raise PINOError(f"dtype {self.dtype!r}: 'float32' or 'float64'")
        if self.positional_embedding not in (None, "grid"):
            raise PINOError(f"positional_embedding {self.positional_embedding!r}: 'grid' or None")
        from pdeforge.neural.fno import FNO_BACKENDS, neuralop_available

        if self.fno not in FNO_BACKENDS:
            raise PINOError(f"fno {self.fno!r}: one of {', '.join(FNO_BACKENDS)}")
        if self.fno == "neuralop" and not neuralop_available():
            raise PINOError("fno 'neuralop': the neuraloperator package is not installed (pip install neuraloperator)")
        if self.positional_embedding is not None and (self.fno == "builtin" or not neuralop_available()):
            raise PINOError("positional_embedding 'grid' needs neuraloperator's FNO (the built-in one has none)")


class PINO(nn.Module):
    """An FNO from one velocity field to the next ``steps_out`` frames.

    With ``config.ansatz == "increment"`` the network predicts increments scaled by the elapsed
    time, ``u(t0 + t_j) = u0 + t_j N(u0)_j``: the untrained network starts from the persistent
    trajectory. With "taylor" it also sees the right-hand side and the tangent is exact,
    ``u(t0 + t_j) = u0 + t_j f(u0) + t_j^2 N(u0, f(u0))_j``: the untrained network starts from
    the forward-Euler trajectory (0.5% off the solver after one frame of the example, against
    5% for persistence) and learns the curvature.

    Args:
        fields: number of velocity components F (input and output channels per frame).
        dim: spatial dimension (2 or 3).
        config: architecture (steps_out, dt, width, layers, modes, positional_embedding, ansatz).
        rhs: the right-hand side ``f``, ``(B, F, *shape) -> (B, F, *shape)`` (differentiable;
            needed by the "taylor" ansatz).
    """

    def __init__(self, fields: int, dim: int, config: PINOConfig, rhs=None):
        super().__init__()
        from pdeforge.neural.fno import make_fno

        if config.ansatz == "taylor" and rhs is None:
            raise PINOError("ansatz 'taylor' needs the right-hand side (rhs=...)")
        self.fields = fields
        self.dim = dim
        self.steps_out = config.steps_out
        self.dt = config.dt
        self.ansatz = config.ansatz
        self.rhs = rhs
        inputs = 2 * fields if config.ansatz == "taylor" else fields
        self.fno, self.fno_backend = make_fno(
            config.fno, dim, config.modes, inputs, fields * config.steps_out, config.width, config.layers,
            config.positional_embedding, config.lifting_ratio,
        )
        self.register_buffer("times", config.dt * torch.arange(1, config.steps_out + 1, dtype=torch.float32))

    def state_dict(self, *args, **kwargs):
        # neuralop's FNO adds an unprefixed "_metadata" entry (its init kwargs) to the shared
        # dict, which nn.Module.load_state_dict of a wrapper rejects; the checkpoint keeps the
        # PINOConfig instead
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def forward(self, u0: torch.Tensor) -> torch.Tensor:
        """``u0`` (B, F, *shape) -> frames (B, T, F, *shape) at t0 + dt, ..., t0 + T dt."""
        b = u0.shape[0]
        t = self.times.to(u0.dtype).reshape(1, -1, *([1] * (self.dim + 1)))
        if self.ansatz == "increment":
            rates = self.fno(u0).reshape(b, self.steps_out, self.fields, *u0.shape[2:])
            return u0.unsqueeze(1) + t * rates
        f0 = self.rhs(u0)
        curvature = self.fno(torch.cat([u0, f0], 1)).reshape(b, self.steps_out, self.fields, *u0.shape[2:])
        return u0.unsqueeze(1) + t * f0.unsqueeze(1) + t * t * curvature


class PINOLoss(nn.Module):
    """Physics (+ divergence, + data) loss of predicted trajectories, from the generated residual.

    Args:
        operator: a torch :class:`~pdeforge.codegen.spectral.compile.SpectralOperator` of the LES system.
        config: weights, dt and ``learn_cs``.

    Every term is normalised to be dimensionless: the residual by the mean square of the
    right-hand side at the input frames, the divergence by the mean square of the velocity
    gradients (``|k|^2 |u_hat|^2``), the data misfit by the mean square of the targets.
    """

    def __init__(self, operator, config: PINOConfig):
        super().__init__()
        self.op = operator
        self.config = config
        if config.learn_cs:
            if "Cs" not in operator.params:
                raise PINOError(f"learn_cs: system {operator.system.name!r} has no parameter 'Cs'")
            self.log_cs = nn.Parameter(torch.tensor(math.log(max(operator.params["Cs"], 1e-3)), dtype=torch.float64))
        else:
            self.log_cs = None

    @property
    def cs(self) -> float | None:
        """Current Smagorinsky constant (learned or the operator's)."""
        if self.log_cs is not None:
            return torch.exp(self.log_cs.detach()).item()
        return self.op.params.get("Cs")

    def _params(self):
        if self.log_cs is None:
            return None
        return {"Cs": torch.exp(self.log_cs).to(self.op.K.real_dtype)}

    def gradient_norm(self, u: torch.Tensor) -> torch.Tensor:
        """Mean square of the spectral velocity gradients of ``u`` (..., F, *shape), per sample."""
        uh = self.op.to_spectral(u)
        total = 0.0
        for k in self.op.K.k:
            total = total + self.op.to_physical(1j * k * uh).pow(2).mean(dim=tuple(range(-self.op.dim - 1, 0)))
        return total

    def forward(self, u0: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None = None) -> dict:
        """Loss terms of predicted frames ``pred`` (B, T, F, *shape) from inputs ``u0`` (B, F, *shape).

        Returns:
            dict with ``loss`` (weighted sum, differentiable), ``physics``, ``divergence``,
            (with ``energy_weight``) ``energy`` and (with ``target``) ``data`` (floats,
            unweighted, normalised).
        """
        cfg = self.config
        traj = torch.cat([u0.unsqueeze(1), pred], dim=1)
        params = self._params()
        if cfg.residual == "quadrature":
            if self.op.module.USES_TIME:
                rates = torch.stack([self.op.rhs(traj[:, j], j * cfg.dt, params=params) for j in range(traj.shape[1])], 1)
            else:
                rates = self.op.rhs(traj, params=params)
            R, D = quadrature_residual(rates, traj, cfg.dt), self.op.divergence(traj)
            f0 = rates[:, 0]
            if cfg.energy_weight:
                space = tuple(range(2, traj.ndim))
                energy = 0.5 * traj.pow(2).mean(dim=space) * traj.shape[2]  # <|u|^2>/2, (B, N)
                power = (traj * rates).mean(dim=space) * traj.shape[2]  # <u . f>
                budget = quadrature_residual(power, energy, cfg.dt).pow(2).mean()
                budget = budget / power[:, 0].detach().pow(2).mean().clamp_min(1e-30)
        else:
            R, D = self.op.residual(traj, cfg.dt, params=params)
            f0 = self.op.rhs(u0, params=params)
        with torch.no_grad():
            rate_scale = f0.detach().pow(2).mean().clamp_min(1e-30)
            grad_scale = self.gradient_norm(u0).mean().clamp_min(1e-30)
        squares, count = R.pow(2).sum(), R.numel()
        if cfg.residual == "central" and cfg.first_step:
            R0 = (pred[:, 0] - u0) / cfg.dt - 0.5 * (f0 + self.op.rhs(pred[:, 0], params=params))
            squares, count = squares + R0.pow(2).sum(), count + R0.numel()
        physics = squares / count / rate_scale
        divergence = D.pow(2).mean() / grad_scale
        loss = cfg.physics_weight * physics + cfg.divergence_weight * divergence
        terms = {"physics": physics.item(), "divergence": divergence.item()}
        if cfg.residual == "quadrature" and cfg.energy_weight:
            loss = loss + cfg.energy_weight * budget
            terms["energy"] = budget.item()
        if target is not None:
            data = (pred - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-30)
            terms["data"] = data.item()
            if cfg.data_weight:
                loss = loss + cfg.data_weight * data
        elif cfg.data_weight:
            raise PINOError("data_weight > 0 needs target trajectories")
        terms["loss"] = loss
        return terms


@dataclass
class TrainingHistory:
    """Per-step losses and wall time of a training run."""

    loss: list[float] = field(default_factory=list)
    physics: list[float] = field(default_factory=list)
    divergence: list[float] = field(default_factory=list)
    data: list[float] = field(default_factory=list)
    energy: list[float] = field(default_factory=list)
    cs: list[float] = field(default_factory=list)
    wall_s: float = 0.0


class PINOTrainer:
    """Trains a :class:`PINO` on the generated residual of an LES system.

    Args:
        system: the (incompressible, periodic) system, e.g. ``pf.les_system(2, nu, Cs)``.
        grid: points per axis (int or tuple).
        config: :class:`PINOConfig`.
        device: torch device ("cpu", "cuda", ...).
        seed: seeds the weights, the batch order and every random draw of training.
        checkpoint: optional path of the checkpoint file (written by :meth:`save`, and by
            :meth:`fit` every ``checkpoint_every`` steps and at the end).
    """

    def __init__(self, system, grid, config: PINOConfig | None = None, device=None, seed: int = 0,
                 checkpoint: str | Path | None = None):
        from pdeforge.codegen.spectral.compile import spectral_operator

        self.config = config or PINOConfig()
        self.device = torch.device(device or "cpu")
        self.seed = int(seed)
        self.op = spectral_operator(system, grid, target="torch", device=self.device, dtype=self.config.dtype)
        self.config.check(self.op.shape)
        if not self.op.velocity_index:
            raise PINOError(f"system {system.name!r} has no velocity: PINO needs an incompressible system")
        self.dtype = getattr(torch, self.config.dtype)
        torch.manual_seed(self.seed)
        self.loss_fn = PINOLoss(self.op, self.config).to(self.device)
        # the ansatz evaluates the same generated right-hand side (and the learned Cs) as the loss
        rhs = lambda u: self.op.rhs(u, params=self.loss_fn._params())  # noqa: E731
        self.model = _to_precision(PINO(len(self.op.fields), self.op.dim, self.config, rhs=rhs).to(self.device), self.dtype)
        self.optimizer = torch.optim.Adam(
            list(self.model.parameters()) + list(self.loss_fn.parameters()), lr=self.config.lr,
            weight_decay=self.config.weight_decay,
        )
        self.scheduler = None
        self.generator = torch.Generator().manual_seed(self.seed)
        self.step = 0
        self._order: torch.Tensor | None = None  # batch order of the current epoch
        self._cursor = 0
        self.history = TrainingHistory()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None

    # data ---------------------------------------------------------------------------------
    def tensor(self, a) -> torch.Tensor:
        """``a`` as a tensor of the trainer's dtype on its device."""
        return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=self.dtype).to(self.device)

    def _check_inputs(self, u0: torch.Tensor) -> None:
        want = (len(self.op.fields), *self.op.shape)
        if u0.ndim != len(want) + 1 or tuple(u0.shape[1:]) != want:
            raise PINOError(f"initial fields: expected shape (N, {', '.join(map(str, want))}), got {tuple(u0.shape)}")

    # training -------------------------------------------------------------------------------
    def fit(self, inputs, steps: int, targets=None, progress: bool = True, checkpoint_every: int = 0,
            log_every: int = 0, stop_after: int | None = None) -> TrainingHistory:
        """Train on initial fields ``inputs`` (N, F, *shape) until ``steps`` optimizer steps are done.

        Args:
            inputs: initial velocity fields (array or tensor).
            steps: total optimizer steps of the run (counting steps done before a resume); the
                learning-rate schedule spans them.
            stop_after: stop once this many steps are done (a run in chunks; resume with
                :meth:`load` and the same ``steps``).
            targets: optional solver trajectories (N, T, F, *shape) for the data term.
            progress: tqdm progress bar with the current losses.
            checkpoint_every: save a checkpoint every so many steps (0: only at the end, when a
                checkpoint path was given).
            log_every: print a line with the losses every so many steps (0: never).
        """
        from tqdm.auto import tqdm

        u_all = self.tensor(inputs)
        self._check_inputs(u_all)
        y_all = self.tensor(targets) if targets is not None else None
        if y_all is not None and (y_all.shape[0] != u_all.shape[0] or y_all.shape[1] != self.config.steps_out):
            raise PINOError(f"targets: expected shape (N, {self.config.steps_out}, ...), got {tuple(y_all.shape)}")
        if self.scheduler is None:
            self.scheduler = self._schedule(steps)
        n = u_all.shape[0]
        bs = min(self.config.batch_size, n)
        started = time.perf_counter()
        bar = tqdm(total=steps, initial=self.step, desc="PINO", disable=not progress, leave=False)
        if self._order is None or len(self._order) != n:
            self._order, self._cursor = torch.randperm(n, generator=self.generator), 0
        self.model.train()
        last = steps if stop_after is None else min(steps, int(stop_after))
        while self.step < last:
            if self._cursor + bs > n:  # a new epoch: a new seeded order
                self._order, self._cursor = torch.randperm(n, generator=self.generator), 0
            idx = self._order[self._cursor:self._cursor + bs].to(self.device)
            self._cursor += bs
            u0 = u_all[idx]
            pred = self.model(u0)
            terms = self.loss_fn(u0, pred, y_all[idx] if y_all is not None else None)
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self._parameters, self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            h = self.history
            h.loss.append(terms["loss"].item())
            h.physics.append(terms["physics"])
            h.divergence.append(terms["divergence"])
            if "data" in terms:
                h.data.append(terms["data"])
            if "energy" in terms:
                h.energy.append(terms["energy"])
            if self.loss_fn.cs is not None:
                h.cs.append(self.loss_fn.cs)
            bar.update(1)
            bar.set_postfix(physics=f"{terms['physics']:.3e}", div=f"{terms['divergence']:.1e}", refresh=False)
            if log_every and self.step % log_every == 0:
                extra = f", data {terms['data']:.3e}" if "data" in terms else ""
                extra += f", energy {terms['energy']:.3e}" if "energy" in terms else ""
                cs = f", Cs {self.loss_fn.cs:.4f}" if self.config.learn_cs else ""
                print(f"step {self.step}: physics {terms['physics']:.3e}, divergence {terms['divergence']:.3e}{extra}{cs}",
                      flush=True)
            if self.checkpoint is not None and checkpoint_every and self.step % checkpoint_every == 0:
                self.save(self.checkpoint)
        bar.close()
        self.history.wall_s += time.perf_counter() - started
        if self.checkpoint is not None:
            self.save(self.checkpoint)
        return self.history

    @property
    def _parameters(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _schedule(self, steps: int):
        if self.config.schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, self.config.lr, total_steps=max(2, steps),
                                                       pct_start=self.config.warmup)
        return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(1, steps), eta_min=0.01 * self.config.lr)

    # inference ------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, u0) -> torch.Tensor:
        """Frames (B, T, F, *shape) after initial fields ``u0`` (B, F, *shape)."""
        self.model.eval()
        return self.model(self.tensor(u0))

    @torch.inference_mode()
    def rollout(self, u0, windows: int) -> torch.Tensor:
        """Autoregressive prediction over ``windows`` windows: frames (B, windows*T, F, *shape).

        Runs under ``torch.inference_mode`` (no autograd bookkeeping, no version counters): the
        frames it returns cannot enter a graph; call the model directly to differentiate.
        """
        self.model.eval()
        u = self.tensor(u0)
        frames = []
        for _ in range(windows):
            out = self.model(u)
            frames.append(out)
            u = out[:, -1]
        return torch.cat(frames, dim=1)

    # checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to resume: weights, optimizer, scheduler, random state, history."""
        return {
            "config": asdict(self.config),
            "seed": self.seed,
            "step": self.step,
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "generator": self.generator.get_state(),
            "order": self._order,
            "cursor": self._cursor,
            "history": asdict(self.history),
            "grid": tuple(self.op.shape),
            "system": self.op.system.structure_key(),
        }

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (atomically) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    def load(self, path: str | Path, steps: int | None = None) -> PINOTrainer:
        """Resume from a checkpoint written by :meth:`save` (same system, grid and config).

        Args:
            path: the checkpoint.
            steps: total steps of the resumed run (rebuilds the learning-rate schedule when the
                checkpoint had none).
        """
        path = Path(path)
        if not path.exists():
            raise PINOError(f"checkpoint {str(path)!r} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=False)  # load_state_dict moves to the device
        if state["system"] != self.op.system.structure_key() or tuple(state["grid"]) != tuple(self.op.shape):
            raise PINOError(f"checkpoint {str(path)!r} was written for another system or grid")
        # a field added to PINOConfig after the checkpoint was written takes its default there
        if {**asdict(PINOConfig()), **state["config"]} != asdict(self.config):
            raise PINOError(f"checkpoint {str(path)!r} has another configuration: {state['config']}")
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        if state["scheduler"] is not None and self.scheduler is None:
            # before the optimizer's state: a new schedule resets the learning rates it drives
            saved = state["scheduler"].get("total_steps", state["scheduler"].get("T_max"))
            self.scheduler = self._schedule(steps or saved)
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self._order, self._cursor = state["order"], int(state["cursor"])
        self.step = int(state["step"])
        self.history = TrainingHistory(**state["history"])
        return self


def _to_precision(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    # Module.to(dtype) would cast the complex spectral weights of the FNO to real numbers
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64

    def convert(t):
        if t.is_complex():
            return t.to(complex_dtype)
        return t.to(dtype) if t.is_floating_point() else t

    return module._apply(convert)


def relative_l2_over_time(pred, reference) -> np.ndarray:
    """Relative L2 error per frame of trajectories (B, T, F, *shape) (errors pooled over B)."""
    p = torch.as_tensor(pred, dtype=torch.float64)
    r = torch.as_tensor(reference, dtype=torch.float64)
    dims = (0, *range(2, p.ndim))
    return (torch.linalg.vector_norm(p - r, dim=dims) / torch.linalg.vector_norm(r, dim=dims)).numpy()


def energy_spectrum(u, domain_length: float = 2 * math.pi) -> tuple[np.ndarray, np.ndarray]:
    """Shell-summed kinetic energy spectrum E(k) of a periodic velocity (F, *shape) on a cubic box.

    Returns:
        (k, E): integer shells k = 0, 1, ... (in units of 2 pi / domain_length) and the energy
        in each, summing to the mean kinetic energy <|u|^2>/2.
    """
    u = np.asarray(u, dtype=float)
    shape = u.shape[1:]
    n = int(np.prod(shape))
    uh = np.fft.fftn(u, axes=tuple(range(1, u.ndim))) / n
    ks = np.meshgrid(*[np.fft.fftfreq(m, d=1.0 / m) for m in shape], indexing="ij")
    kmag = np.sqrt(sum(k * k for k in ks)) * (2 * math.pi / domain_length)
    shell = np.rint(kmag).astype(int)
    power = 0.5 * (np.abs(uh) ** 2).sum(axis=0)
    E = np.bincount(shell.ravel(), weights=power.ravel())
    return np.arange(len(E)), E


__all__ = ["ANSATZES", "SCHEDULES", "PINO", "PINOConfig", "PINOLoss", "quadrature_residual", "RESIDUALS", "PINOTrainer", "PINOError", "TrainingHistory",
           "relative_l2_over_time", "energy_spectrum"]

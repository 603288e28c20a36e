"""Neural closures inside the generated solver.

A closure term of a system (:class:`~pdeforge.symbolic.closure_terms.ClosureSystem`) is bound
at compile time to a ``torch.nn.Module`` mapping its stacked arguments ``(..., nargs)`` to the
term's value; the generated torch kernel calls it wherever the discretized equations need the
term (on cell faces, in flux form) and differentiates it by forward AD for the exact Jacobian.

This module has the closures of the shipped example (``burgers-les``, eddy viscosity from the
velocity gradient ``(u_x, u_y, v_x, v_y)``): the exact Smagorinsky viscosity as a module (the
reference, with an optionally learnable ``Cs``), a small pointwise MLP, the sampling of training
pairs from solver output, and a seeded training loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pdeforge.errors import PDEForgeError


class SmagorinskyViscosity(nn.Module):
    """nu_t = (Cs Delta)^2 |S| from velocity gradients ``(..., 4) = (u_x, u_y, v_x, v_y)`` (2-D).

    Args:
        Cs: Smagorinsky constant.
        Delta: filter width.
        learnable_cs: make ``Cs`` a trainable parameter.
    """

    def __init__(self, Cs: float = 0.2, Delta: float = 2 * np.pi / 32, learnable_cs: bool = False):
        super().__init__()
        cs = torch.tensor(float(Cs), dtype=torch.float64)
        if learnable_cs:
            self.Cs = nn.Parameter(cs)
        else:
            self.register_buffer("Cs", cs)
        self.Delta = float(Delta)

    def forward(self, grad: torch.Tensor) -> torch.Tensor:
        ux, uy, vx, vy = grad.unbind(-1)
        strain = torch.sqrt(2 * (ux * ux + vy * vy) + (uy + vx) ** 2)
        return (self.Cs * self.Delta) ** 2 * strain


class MLPClosure(nn.Module):
    """A pointwise multilayer perceptron ``(..., n_in) -> (..., 1)`` with fixed in/out scales.

    Inputs are divided by ``in_scale`` and the output multiplied by ``out_scale`` (buffers set
    from training data by :func:`train_closure`), so the weights work on O(1) numbers whatever
    the units of the term.

    Args:
        n_in: number of inputs (the closure's arguments).
        hidden: width of the hidden layers.
        layers: number of hidden layers.
        activation: "silu", "tanh" or "relu".
        seed: seed of the initial weights (drawn without touching torch's global generator);
            None draws them from the global generator, as torch layers do.
    """

    def __init__(self, n_in: int, hidden: int = 32, layers: int = 2, activation: str = "silu",
                 seed: int | None = None):
        super().__init__()
        acts = {"silu": nn.SiLU, "tanh": nn.Tanh, "relu": nn.ReLU}
        if activation not in acts:
            raise PDEForgeError(f"activation {activation!r}: one of {', '.join(acts)}")
        widths = [n_in] + [hidden] * layers
        modules: list[nn.Module] = []
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            for a, b in zip(widths[:-1], widths[1:]):
                modules += [nn.Linear(a, b), acts[activation]()]
            modules.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*modules)
        self.register_buffer("in_scale", torch.ones(n_in))
        self.register_buffer("out_scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x / self.in_scale) * self.out_scale

    def dense_network(self):
        """The network as frozen float64 arrays, for the Numba target
        (:class:`pdeforge.codegen.dense_network.DenseNetwork`; later training does not change it)."""
        from pdeforge.codegen.dense_network import DenseNetwork

        names = {nn.SiLU: "silu", nn.Tanh: "tanh", nn.ReLU: "relu"}
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        acts = {names[type(m)] for m in self.net if type(m) in names}

        def frozen(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float64).numpy().copy()

        return DenseNetwork(
            weights=tuple(frozen(m.weight) for m in linears),
            biases=tuple(frozen(m.bias) for m in linears),
            activation=acts.pop() if acts else "relu",
            in_scale=frozen(self.in_scale),
            out_scale=float(self.out_scale),
        )


def velocity_gradients(u: np.ndarray, v: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Periodic central differences ``(..., 4) = (u_x, u_y, v_x, v_y)`` of fields ``(..., nx, ny)``."""
    hx, hy = spacing

    def dx(f):
        return (np.roll(f, -1, axis=-2) - np.roll(f, 1, axis=-2)) / (2 * hx)

    def dy(f):
        return (np.roll(f, -1, axis=-1) - np.roll(f, 1, axis=-1)) / (2 * hy)

    return np.stack([dx(u), dy(u), dx(v), dy(v)], axis=-1)


def gradient_samples(dataset, max_samples: int | None = None, seed: int = 0) -> np.ndarray:
    """Velocity-gradient samples ``(N, 4)`` from every frame of a solver Dataset with ``u``, ``v``.

    Args:
        dataset: output of :func:`pdeforge.solve` on a periodic 2-D grid.
        max_samples: keep a seeded random subset of this size.
        seed: seed of the subset.
    """
    spacing = [float(dataset[a][1] - dataset[a][0]) for a in ("x", "y")]
    g = velocity_gradients(dataset["u"].values, dataset["v"].values, spacing).reshape(-1, 4)
    if max_samples is not None and len(g) > max_samples:
        g = g[np.random.default_rng(seed).choice(len(g), max_samples, replace=False)]
    return g


def train_closure(
    module: MLPClosure,
    inputs: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    steps: int = 2000,
    lr: float = 3e-3,
    batch: int = 4096,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[float]:
    """Fit ``module`` to (inputs, targets) pairs by Adam on the relative mean-square error.

    Args:
        module: the closure network (its ``in_scale`` / ``out_scale`` are set from the data).
        inputs: ``(N, n_in)`` closure arguments.
        targets: ``(N,)`` values of the term to reproduce.
        steps: optimizer steps.
        lr: initial learning rate (cosine decay to 1% of it).
        batch: samples per step.
        seed: seed of the initial weights' draw order and the batches.
        device: torch device of the training.
        progress: show a tqdm progress bar.

    Returns:
        Loss per step (mean-square error relative to the targets' mean square).
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(targets), dtype=torch.float32).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise PDEForgeError(f"train_closure: inputs (N, n_in) and targets (N,) expected, got {tuple(x.shape)} and {tuple(y.shape)}")
    module.to(device=device, dtype=torch.float32)
    with torch.no_grad():
        module.in_scale.copy_(x.std(0).clamp_min(1e-12))
        module.out_scale.copy_(y.abs().mean().clamp_min(1e-12))
    x, y = x.to(device), y.to(device)
    norm = float((y**2).mean())
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.01 * lr)
    history = []
    bar = tqdm(range(steps), desc="closure", disable=not progress, leave=False)
    for _ in bar:
        idx = torch.randint(0, len(x), (min(batch, len(x)),), generator=gen).to(device)
        loss = ((module(x[idx]).reshape(-1) - y[idx]) ** 2).mean() / norm
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{history[-1]:.2e}", refresh=False)
    return history


def relative_l2(prediction: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor) -> float:
    """||prediction - reference|| / ||reference|| over all entries."""
    p = torch.as_tensor(prediction, dtype=torch.float64)
    r = torch.as_tensor(reference, dtype=torch.float64)
    return float(torch.linalg.vector_norm(p - r) / torch.linalg.vector_norm(r))

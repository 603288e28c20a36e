"""The Fourier neural operator behind PINO: neuraloperator's, or a compact built-in fallback.

``neuralop.models.FNO`` (the field's package) is used whenever it can be imported. The built-in
:class:`CompactFNO` exists for machines where it cannot: ``from neuralop.models import FNO``
pulls tensorly, tensorly-torch, opt-einsum, wandb, pydantic, opentelemetry and more (3.2 s of
imports measured here), and the GPU machines this project is checked on have none of them and
no network to install them. It is the same architecture (lifting MLP, Fourier layers with a
linear skip, projection MLP; no positional embedding), not a faithful copy of neuralop's
parametrisation, so weights do not transfer between the two.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools

import torch
from torch import nn

FNO_BACKENDS = ("auto", "neuralop", "builtin")


@functools.lru_cache(maxsize=1)
def neuralop_available() -> bool:
    """Whether neuraloperator's FNO can be imported here (a missing dependency counts as absent)."""
    if importlib.util.find_spec("neuralop") is None:
        return False
    try:
        from neuralop.models import FNO  # noqa: F401
    except Exception:  # noqa: BLE001 - any broken install means: use the built-in FNO
        return False
    return True


class SpectralConv(nn.Module):
    """Fourier layer: multiply the lowest ``modes`` frequencies per axis by learned complex matrices.

    Args:
        channels_in, channels_out: channels.
        modes: kept frequencies per axis (-modes/2 <= k < modes/2 on full axes, 0..modes/2 on the
            last, real-FFT axis), as neuralop's ``n_modes``.
        dim: spatial dimension.
    """

    def __init__(self, channels_in: int, channels_out: int, modes: int, dim: int):
        super().__init__()
        self.dim = dim
        self.half = modes // 2
        kept = [2 * self.half] * (dim - 1) + [self.half + 1]  # neuralop's layout: 12 modes -> 12 x 12 x 7
        scale = 1.0 / (channels_in * channels_out)
        self.weight = nn.Parameter(scale * torch.randn(channels_in, channels_out, *kept, dtype=torch.cfloat))
        letters = "xyz"[:dim]
        self.equation = f"bi{letters},io{letters}->bo{letters}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[-self.dim:]
        axes = tuple(range(-self.dim, 0))
        h = self.half
        xh = torch.fft.rfftn(x, dim=axes, norm="forward")
        out = xh.new_zeros((x.shape[0], self.weight.shape[1], *xh.shape[2:]))
        weight = self.weight.to(xh.dtype)
        # the kept frequencies are corner blocks of the spectrum: 0..h-1 or -h..-1 on every full
        # axis, 0..h on the real-FFT axis; each block is a view (no gather, no scatter)
        for corner in itertools.product((0, 1), repeat=self.dim - 1):
            data = tuple(slice(0, h) if c == 0 else slice(n - h, n) for c, n in zip(corner, shape[:-1]))
            kept = tuple(slice(0, h) if c == 0 else slice(h, 2 * h) for c in corner)
            xs = xh[(slice(None), slice(None), *data, slice(0, h + 1))]
            w = weight[(slice(None), slice(None), *kept, slice(None))]
            out[(slice(None), slice(None), *data, slice(0, h + 1))] = _mix_channels(xs, w, self.equation)
        return torch.fft.irfftn(out, s=shape, dim=axes, norm="forward")


def _mix_channels(xs: torch.Tensor, w: torch.Tensor, equation: str) -> torch.Tensor:
    """``sum_i xs[b, i, k] w[i, o, k]`` per frequency k.

    A single field (inference) takes the broadcast product: on CPU, complex einsum becomes a
    batched matrix product that costs 8x more at batch 1 (64^2, 32 channels, 16 modes: 1.07 ms
    vs 0.13 ms forward, one thread, process time); for training batches einsum is faster
    (batch 8, 20 modes: 9.4 ms vs 11.8 ms forward + backward).
    """
    if xs.shape[0] == 1:
        return (xs.unsqueeze(2) * w.unsqueeze(0)).sum(1)
    return torch.einsum(equation, xs, w)


class CompactFNO(nn.Module):
    """An N-D FNO: lifting MLP, ``layers`` x (spectral conv + linear skip, GELU), projection MLP.

    Args:
        modes: kept frequencies per axis.
        in_channels, out_channels: input and output channels.
        hidden_channels: width.
        n_layers: Fourier layers.
        dim: spatial dimension.
    """

    def __init__(self, modes: int, in_channels: int, out_channels: int, hidden_channels: int, n_layers: int, dim: int):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
        w = hidden_channels
        self.lift = nn.Sequential(conv(in_channels, 2 * w, 1), nn.GELU(), conv(2 * w, w, 1))
        self.spectral = nn.ModuleList([SpectralConv(w, w, modes, dim) for _ in range(n_layers)])
        self.skip = nn.ModuleList([conv(w, w, 1) for _ in range(n_layers)])
        self.project = nn.Sequential(conv(w, 2 * w, 1), nn.GELU(), conv(2 * w, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lift(x)
        last = len(self.spectral) - 1
        for i, (s, k) in enumerate(zip(self.spectral, self.skip)):
            x = s(x) + k(x)
            if i < last:
                x = nn.functional.gelu(x)
        return self.project(x)


def make_fno(backend: str, dim: int, modes: int, in_channels: int, out_channels: int, hidden_channels: int,
             n_layers: int, positional_embedding: str | None) -> tuple[nn.Module, str]:
    """The FNO of ``backend`` ("auto": neuralop if importable, else built-in); returns (module, backend used)."""
    if backend not in FNO_BACKENDS:
        raise ValueError(f"fno backend {backend!r}: one of {', '.join(FNO_BACKENDS)}")
    if backend == "neuralop" or (backend == "auto" and neuralop_available()):
        from neuralop.models import FNO

        return FNO(n_modes=(modes,) * dim, in_channels=in_channels, out_channels=out_channels,
                   hidden_channels=hidden_channels, n_layers=n_layers,
                   positional_embedding=positional_embedding), "neuralop"
    if positional_embedding is not None:
        raise ValueError("the built-in FNO has no positional embedding (use positional_embedding=None or neuralop)")
    return CompactFNO(modes, in_channels, out_channels, hidden_channels, n_layers, dim), "builtin"

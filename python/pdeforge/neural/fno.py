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
import math

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

    The transform is ``rfftn`` / ``irfftn`` (norm "forward") restricted to the kept frequencies,
    computed as matrix products with truncated DFT matrices (one per axis, cached per grid, dtype
    and device; not parameters): only the kept modes are ever formed, and on a CPU at batch 1 the
    products run at matrix-multiply speed where the FFT library's small transforms do not (64^2,
    32 channels, 16 modes: 0.15 ms for the pair against 0.69 ms, one thread). Up to rounding the
    result is the FFT's (see the tests).
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
        self._dft: dict = {}

    def _matrices(self, shape: tuple[int, ...], dtype: torch.dtype, device) -> tuple:
        """Truncated DFT matrices of a grid of ``shape``: (real axis forward, inverse; full axes forward, inverse)."""
        key = (shape, dtype, device)
        if key not in self._dft:
            self._dft[key] = _truncated_dft(shape, self.half, dtype, device)
        return self._dft[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape[-self.dim:])
        (r_fwd, r_inv), full = self._matrices(shape, x.dtype, x.device)
        # last axis: real -> the kept half spectrum, (re, im) interleaved, then complex
        xh = torch.view_as_complex((x @ r_fwd).unflatten(-1, (-1, 2)))
        for axis, (f_fwd, _) in zip(range(-self.dim, -1), full):  # full axes: keep -h..h-1
            xh = (f_fwd @ xh.movedim(axis, -2)).movedim(-2, axis)
        weight = self.weight.to(xh.dtype)
        out = _mix_channels(xh, weight, self.equation)
        for axis, (_, f_inv) in zip(range(-self.dim, -1), full):
            out = (f_inv @ out.movedim(axis, -2)).movedim(-2, axis)
        return torch.view_as_real(out).flatten(-2) @ r_inv


def _truncated_dft(shape: tuple[int, ...], half: int, dtype: torch.dtype, device) -> tuple:
    """DFT matrices of ``rfftn`` / ``irfftn`` (norm "forward") restricted to the kept frequencies.

    Last axis (n points, frequencies 0..half): forward (n, 2 (half + 1)) real, columns
    (cos, -sin) / n interleaved as ``view_as_real`` lays out a complex number; inverse
    (2 (half + 1), n): rows (c cos, -c sin) with ``c = 1`` at k = 0 and k = n/2 and 2 between
    (irfft's Hermitian completion; the sine vanishes at those two, so their imaginary parts are
    ignored, as irfft does). Full axes (n points, frequencies 0..half-1 and -half..-1, the corner
    blocks the weights are laid out for): forward (2 half, n) complex, ``exp(-i k x) / n``;
    inverse (n, 2 half), ``exp(i k x)``.
    """
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    n = shape[-1]
    k = torch.arange(half + 1, dtype=torch.float64)
    j = torch.arange(n, dtype=torch.float64)
    phase = 2 * math.pi * torch.outer(j, k) / n  # (n, half + 1)
    fwd = torch.stack([torch.cos(phase), -torch.sin(phase)], -1).reshape(n, -1) / n
    c = torch.full((half + 1,), 2.0, dtype=torch.float64)
    c[0] = 1.0
    if 2 * half == n:
        c[half] = 1.0
    inv = torch.stack([c * torch.cos(phase), -c * torch.sin(phase)], -1).reshape(n, -1).T
    real = (fwd.to(device=device, dtype=dtype), inv.contiguous().to(device=device, dtype=dtype))
    full = []
    for m in shape[:-1]:
        freqs = torch.cat([torch.arange(half), torch.arange(m - half, m)]).to(torch.float64)
        ph = 2 * math.pi * torch.outer(freqs, torch.arange(m, dtype=torch.float64)) / m  # (2 half, m)
        f_fwd = torch.polar(torch.ones_like(ph), -ph) / m
        f_inv = torch.polar(torch.ones_like(ph), ph).T.contiguous()
        full.append((f_fwd.to(device=device, dtype=complex_dtype), f_inv.to(device=device, dtype=complex_dtype)))
    return real, tuple(full)


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


class PointwiseConv(nn.Module):
    """A 1x1 convolution (per-point linear map of the channels) as one matrix product.

    Parameters, their initialisation and state-dict layout are those of ``nn.ConvNd(cin, cout,
    1)`` (weights and checkpoints carry over); the forward pass is ``W @ x.reshape(B, C, -1) +
    b``, which on a CPU at batch 1 avoids the unfused im2col path that torch takes for a 1x1
    convolution (64^2, 32 -> 32 channels, one thread: about 0.5 ms as a convolution, a few tens
    of microseconds as a matrix product).
    """

    def __init__(self, channels_in: int, channels_out: int, dim: int):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim](channels_in, channels_out, 1)
        self.weight = conv.weight
        self.bias = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.flatten(1)
        y = torch.baddbmm(self.bias[:, None].expand(x.shape[0], -1, 1), w.expand(x.shape[0], -1, -1),
                          x.flatten(2)) if x.shape[0] > 1 else torch.addmm(self.bias[:, None], w, x.flatten(2)[0])[None]
        return y.unflatten(-1, x.shape[2:])


class CompactFNO(nn.Module):
    """An N-D FNO: lifting MLP, ``layers`` x (spectral conv + linear skip, GELU), projection MLP.

    Args:
        modes: kept frequencies per axis.
        in_channels, out_channels: input and output channels.
        hidden_channels: width.
        n_layers: Fourier layers.
        dim: spatial dimension.
        lifting_ratio: hidden channels of the lifting MLP per width (neuralop's
            ``lifting_channel_ratio``); 0: the lifting is one linear layer.
    """

    def __init__(self, modes: int, in_channels: int, out_channels: int, hidden_channels: int, n_layers: int, dim: int,
                 lifting_ratio: float = 2):
        super().__init__()
        w = hidden_channels
        lifted = int(lifting_ratio * w)
        if lifted:
            self.lift = nn.Sequential(PointwiseConv(in_channels, lifted, dim), nn.GELU(), PointwiseConv(lifted, w, dim))
        else:
            self.lift = PointwiseConv(in_channels, w, dim)
        self.spectral = nn.ModuleList([SpectralConv(w, w, modes, dim) for _ in range(n_layers)])
        self.skip = nn.ModuleList([PointwiseConv(w, w, dim) for _ in range(n_layers)])
        self.project = nn.Sequential(PointwiseConv(w, 2 * w, dim), nn.GELU(), PointwiseConv(2 * w, out_channels, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lift(x)
        last = len(self.spectral) - 1
        for i, (s, k) in enumerate(zip(self.spectral, self.skip)):
            x = s(x) + k(x)
            if i < last:
                x = nn.functional.gelu(x)
        return self.project(x)


def make_fno(backend: str, dim: int, modes: int, in_channels: int, out_channels: int, hidden_channels: int,
             n_layers: int, positional_embedding: str | None, lifting_ratio: float = 2) -> tuple[nn.Module, str]:
    """The FNO of ``backend`` ("auto": neuralop if importable, else built-in); returns (module, backend used)."""
    if backend not in FNO_BACKENDS:
        raise ValueError(f"fno backend {backend!r}: one of {', '.join(FNO_BACKENDS)}")
    if backend == "neuralop" or (backend == "auto" and neuralop_available()):
        from neuralop.models import FNO

        return FNO(n_modes=(modes,) * dim, in_channels=in_channels, out_channels=out_channels,
                   hidden_channels=hidden_channels, n_layers=n_layers, lifting_channel_ratio=lifting_ratio,
                   positional_embedding=positional_embedding), "neuralop"
    if positional_embedding is not None:
        raise ValueError("the built-in FNO has no positional embedding (use positional_embedding=None or neuralop)")
    return CompactFNO(modes, in_channels, out_channels, hidden_channels, n_layers, dim, lifting_ratio), "builtin"

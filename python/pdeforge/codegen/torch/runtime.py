"""Helpers that generated PyTorch kernels call: scalar promotion and closure evaluation.

Kept out of the generated source so that every kernel module shares one tested copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def as_tensor(value, ref: torch.Tensor) -> torch.Tensor:
    """``value`` as a tensor; Python numbers become 0-d tensors of ``ref``'s dtype and device."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, bool):
        return torch.tensor(value, device=ref.device)
    return torch.tensor(float(value), dtype=ref.dtype, device=ref.device)


def _stack(args: Sequence, ref: torch.Tensor) -> torch.Tensor:
    tensors = torch.broadcast_tensors(*[as_tensor(a, ref) for a in args])
    return torch.stack(tensors, dim=-1)


def _squeeze(out: torch.Tensor, batch_dims: int, name: str) -> torch.Tensor:
    if out.dim() == batch_dims + 1 and out.shape[-1] == 1:
        return out[..., 0]
    if out.dim() == batch_dims:
        return out
    raise ValueError(
        f"closure {name}: expected an output of shape (..., 1) or (...) for inputs (..., nargs), got {tuple(out.shape)}"
    )


def closure(fn: Callable, args: Sequence, ref: torch.Tensor) -> torch.Tensor:
    """Evaluate closure callable ``fn`` pointwise: ``fn(stack(args, -1))`` with the last axis squeezed."""
    x = _stack(args, ref)
    return _squeeze(fn(x), x.dim() - 1, getattr(fn, "__name__", type(fn).__name__))


def closure_derivative(fn: Callable, index: int, args: Sequence, ref: torch.Tensor) -> torch.Tensor:
    """Partial derivative of closure ``fn`` with respect to argument ``index``, pointwise.

    Forward-mode AD with a unit tangent in that argument: one extra evaluation of ``fn`` per
    argument, exact for any differentiable ``fn`` (the closure acts on each point separately).
    """
    x = _stack(args, ref)
    tangent = torch.zeros_like(x)
    tangent[..., index] = 1.0
    _, dout = torch.func.jvp(fn, (x,), (tangent,))
    return _squeeze(dout, x.dim() - 1, getattr(fn, "__name__", type(fn).__name__))

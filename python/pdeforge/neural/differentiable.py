"""A solve that autograd differentiates: gradients to parameters, initial fields and closure weights.

:func:`differentiable_solve` marches the generated torch right-hand side with the fixed-step
methods of :mod:`pdeforge.codegen.torch.fused` (the same stages as :func:`pdeforge.solve`) and
returns the saved frames as one tensor ``(frames, fields, *grid)`` in the autograd graph:

- finite differences: the kernel's ``rhs_ad`` (parameters, cell widths and time as 0-d tensors),
  with ghost cells filled on a fresh padded tensor per stage, so no tensor autograd saved is
  ever written again;
- Fourier pseudo-spectral systems: the spectral operator's ``rhs_hat`` on the dealiased (and,
  for incompressible systems, projected) transforms, parameters passed as tensors.

Memory: with ``checkpoint=True`` the steps are grouped into segments of about ``sqrt(steps)``
steps (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant, so closure weights get their
gradients): the forward keeps one state per segment, the backward recomputes one segment at a
time, so memory is O(sqrt(steps)) states instead of O(steps) (:func:`saved_bytes` measures it).

Threads: on CPU the forward pass runs with the intra-op thread policy of the torch kernels
(:func:`pdeforge.codegen.torch.fused.thread_count`: one thread below 128^2 cells unless the user
chose a count); the backward pass runs when the caller calls ``backward()``, outside this
function: on small grids wrap it in ``torch_fused.threads(1)`` too (measured on a loaded 2-core
machine: 0.47 s on one thread against 7 s on two for the same backward).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping

import numpy as np
import torch

from pdeforge.codegen.torch.fused import METHODS, rk_step, thread_count, threads
from pdeforge.errors import SolverError


def _system(system):
    if isinstance(system, str):
        from pdeforge.models import get_model

        return get_model(system).system()
    return system


def _step_schedule(times: np.ndarray, dt: float) -> tuple[list[tuple[float, float]], list[int]]:
    """(t, dt) of every step and, per output time after the first, the number of steps done
    when it is reached: each interval is split into equal steps no larger than ``dt``, as
    :class:`pdeforge.solvers.explicit.runge_kutta.FixedStepRK` does."""
    steps: list[tuple[float, float]] = []
    marks: list[int] = []
    for t_a, t_b in zip(times[:-1], times[1:]):
        span = float(t_b - t_a)
        n = max(1, math.ceil(span / dt - 1e-9))
        h = span / n
        steps += [(float(t_a) + i * h, h) for i in range(n)]
        marks.append(len(steps))
    return steps, marks


def _initial_cells(system, grid, ic, device, dtype) -> torch.Tensor:
    """Initial cell tensor (fields, *shape): tensors in ``ic`` stay in the graph; the other fields
    come from arrays / numbers / the system's initial condition."""
    from pdeforge.solvers.run.initial import initial_state

    ic = dict(ic or {})
    unknown = [f for f in ic if f not in system.fields]
    if unknown:
        raise SolverError(f"ic: {unknown[0]!r} is not a field of system {system.name!r} (fields: {', '.join(system.fields)})")
    tensors = {f: v for f, v in ic.items() if isinstance(v, torch.Tensor)}
    missing = [f for f in system.fields if f not in ic]
    if missing and not system.ic:
        raise SolverError(f"ic: no initial condition for field {missing[0]!r} (the system has none to default to)")
    others = {f: (0.0 if f in tensors else v) for f, v in ic.items()}
    base = initial_state(system, grid, {**{f: system.ic[f] for f in missing}, **others})
    rows = []
    for i, f in enumerate(system.fields):
        if f in tensors:
            v = tensors[f].to(device=device, dtype=dtype)
            if tuple(v.shape) != tuple(grid.shape):
                raise SolverError(f"ic[{f!r}]: expected shape {tuple(grid.shape)}, got {tuple(v.shape)}")
            rows.append(v)
        else:
            rows.append(torch.as_tensor(base[i], dtype=dtype, device=device))
    return torch.stack(rows)


def _split_params(system, params) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    params = dict(params or {})
    unknown = [p for p in params if p not in system.params]
    if unknown:
        raise SolverError(f"params: {unknown[0]!r} is not a parameter of system {system.name!r} "
                          f"(parameters: {', '.join(system.params) or 'none'})")
    tensors = {}
    floats = {}
    for name, v in params.items():
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise SolverError(f"params[{name!r}]: expected a number or a 0-d tensor, got shape {tuple(v.shape)}")
            tensors[name] = v.reshape(())
            floats[name] = float(v.detach())
        else:
            floats[name] = float(v)
    return floats, tensors


def _check_bc_params(system, tensors: Mapping[str, torch.Tensor]) -> None:
    # boundary closures are built from numbers at bind time: a gradient through them would be lost
    used = set()
    for pair in system.bcs.values():
        for bc in pair:
            for e in (bc.value, bc.alpha, bc.beta):
                used |= {s.name for s in getattr(e, "free_symbols", ())}
    bad = [n for n, v in tensors.items() if v.requires_grad and n in used]
    if bad:
        raise SolverError(f"params[{bad[0]!r}] requires grad but enters the boundary conditions, which the "
                          "differentiable solve treats as constants; pass it as a number")


def _fd_rhs(system, grid, floats, tensors, closures, order, device, dtype) -> tuple[Callable, Callable, Callable]:
    from pdeforge.codegen.build import compile_system

    _check_bc_params(system, tensors)
    kernel = compile_system(system, target="torch", order=order, closures=closures)
    bound = kernel.bind(grid, floats, device=device, dtype=bound_dtype(dtype))
    p = bound.param_tensors(tensors)

    def f(y, t):
        return bound.rhs_cells(y, t, p)

    return f, (lambda cells: cells), (lambda y: y)


def _spectral_rhs(system, grid, floats, tensors, closures, device, dtype) -> tuple[Callable, Callable, Callable]:
    from pdeforge.codegen.spectral.compile import compile_spectral

    if closures:
        raise SolverError("closures: the spectral discretization has no closure terms; use finite differences")
    kernel = compile_spectral(system, "torch", device, str(dtype).replace("torch.", ""))
    op = kernel.bind(grid, floats)
    P = {k: op.K.scalar(v.to(device=op.device, dtype=op.K.real_dtype)) for k, v in tensors.items()}

    def f(yh, t):
        return op.rhs_hat(yh, t, params=P)

    def enter(cells):
        return op.project_hat(op.to_spectral(cells), truncate=True)

    return f, enter, op.to_physical


def bound_dtype(dtype) -> str:
    """"float64" or "float32" from a torch dtype or a name."""
    name = str(dtype).replace("torch.", "")
    if name not in ("float64", "float32"):
        raise SolverError(f"dtype {dtype!r}: float64 or float32")
    return name


def differentiable_solve(
    system,
    grid,
    t_span,
    ic: Mapping[str, object] | None = None,
    *,
    method="rk4",
    dt: float | None = None,
    backend=None,
    discretization=None,
    output=None,
    params: Mapping[str, object] | None = None,
    checkpoint: bool = True,
    segment: int | None = None,
) -> torch.Tensor:
    """Solve with fixed steps in torch and return the frames as a tensor autograd can differentiate.

    Args:
        system: a :class:`~pdeforge.PDESystem` (or :class:`~pdeforge.ClosureSystem`), or a
            model name of the catalogue (its system with default parameters).
        grid: cells per axis (int, tuple) or a :class:`~pdeforge.UniformGrid`.
        t_span: ``(t0, t_end)`` or ``t_end``.
        ic: field -> tensor (kept in the graph: give it ``requires_grad`` to get its gradient),
            array, number, callable or expression; fields left out take the system's ``ic``.
        method: "euler", "ssprk3" or "rk4", or ``Euler``/``SSPRK3``/``RK4`` with their ``dt``.
        dt: largest step (required, here or on the method): every interval between saved frames
            is split into equal steps no larger than ``dt``, as :func:`pdeforge.solve` does.
        backend: ``Torch(device=..., dtype=..., closures=...)`` (or "torch"): the device ("cpu"
            default, "cuda", ...), "float64" (default) or "float32", and the closure modules of
            a :class:`~pdeforge.ClosureSystem` (finite differences; their weights get gradients).
        discretization: "fd" or ``FiniteDifference(order=...)``, or "spectral" (default: the
            system's own choice, else "fd").
        output: ``Output(save_every=...)``: interval between frames (default: 50 frames over the span).
        params: parameter -> number or 0-d tensor (tensors stay in the graph); the others keep
            the system's values. Parameters in boundary conditions must be numbers.
        checkpoint: recompute the steps in the backward pass, one segment of about
            ``sqrt(steps)`` steps at a time, instead of keeping every stage.
        segment: steps per checkpoint segment (default ``ceil(sqrt(steps))``).

    Returns:
        Tensor ``(frames, fields, *grid.shape)`` of the fields at the saved times (the first
        frame is the initial state), on ``device`` in ``dtype``.
    """
    from pdeforge.codegen.backends import get_backend
    from pdeforge.discretize.options import get_discretization
    from pdeforge.solvers.methods import Method, with_dt
    from pdeforge.solvers.run.inputs import run_inputs
    from pdeforge.solvers.run.output import get_output

    if isinstance(method, Method):
        dt = with_dt(method, dt).dt
        method = method.name
    tb = get_backend(backend, default="torch")
    if tb.name != "torch":
        raise SolverError(f"backend {tb.name!r}: the differentiable solve runs in torch (backend=pdeforge.Torch(...))")
    device, dtype, closures = tb.device, tb.dtype, tb.closures
    disc_obj = get_discretization(discretization)
    order = getattr(disc_obj, "order", 2)
    discretization = disc_obj.family if disc_obj is not None else None
    save_every = get_output(output).save_every
    if method not in METHODS:
        raise SolverError(f"method {method!r}: the differentiable solve has the fixed-step methods {', '.join(METHODS)}")
    if dt is None or not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise SolverError(f"dt: give the (largest) step as a positive number, got {dt!r}")
    if segment is not None and (not isinstance(segment, int) or segment < 1):
        raise SolverError(f"segment: a positive number of steps, got {segment!r}")
    system = _system(system)
    floats, tensors = _split_params(system, params)
    inputs = run_inputs(system, grid, t_span, save_every, floats, dt, None, True)
    system, grid = inputs.system, inputs.grid
    dev = torch.device("cpu" if device is None else device)
    tdtype = getattr(torch, bound_dtype(dtype))
    disc = discretization or getattr(system, "discretization", "fd")
    if disc == "spectral":
        f, enter, leave = _spectral_rhs(system, grid, floats, tensors, closures, dev, tdtype)
    elif disc == "fd":
        f, enter, leave = _fd_rhs(system, grid, floats, tensors, closures, order, dev, tdtype)
    else:
        raise SolverError(f"discretization {disc!r}: 'fd' or 'spectral'")

    cells0 = _initial_cells(system, grid, ic, dev, tdtype)
    steps, marks = _step_schedule(np.asarray(inputs.times, dtype=float), float(dt))
    y = enter(cells0)
    frames = [leave(y)]  # spectral: the dealiased, projected start, as pdeforge.solve records it
    L = segment or max(1, math.ceil(math.sqrt(len(steps))))
    done = 0
    with threads(thread_count(grid.size) if dev.type == "cpu" else None):
        while done < len(steps):
            chunk = steps[done:done + L]
            y, out = _segment(chunk, [m - done for m in marks if done < m <= done + len(chunk)], f, method, leave,
                              checkpoint, y)
            frames += out
            done += len(chunk)
    return torch.stack(frames)


def _segment(chunk, saves, f, method, leave, checkpoint, y):
    """March the steps ``chunk`` from ``y`` (recomputed in the backward pass with ``checkpoint``);
    returns the end state and the frames after the step counts in ``saves``."""

    def run(y0):
        out = []
        for i, (t, h) in enumerate(chunk, start=1):
            y0 = rk_step(f, method, y0, t, h)
            if i in saves:
                out.append(leave(y0))
        return (y0, *out)

    if checkpoint and torch.is_grad_enabled():
        y, *out = torch.utils.checkpoint.checkpoint(run, y, use_reentrant=False)
    else:
        y, *out = run(y)
    return y, out


@contextlib.contextmanager
def saved_bytes():
    """Count the bytes autograd saves for the backward pass inside the block.

    Yields a dict whose ``"bytes"`` entry, after the block, is the size of the distinct
    storages saved (a view counts its whole base, which is what it keeps alive).
    """
    seen: dict[int, int] = {}
    result = {"bytes": 0}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield result
    result["bytes"] = sum(seen.values())


__all__ = ["differentiable_solve", "saved_bytes"]

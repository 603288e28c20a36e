"""Whole Runge-Kutta steps as functions of tensors: the shape ``torch.compile`` fuses and autograd differentiates.

The eager torch stages (:meth:`~pdeforge.codegen.torch.kernel.TorchBoundKernel.stage_two`)
write into preallocated buffers under ``no_grad``; here a step is a pure function
``y_next = step(y, t, dt)`` of the cell values, built from an out-of-place right-hand side
``f(y, t)``. The same function serves two ends:

- handed to ``torch.compile`` (Inductor: C++/OpenMP on CPU, Triton on GPU) it becomes a few
  fused loops per step instead of one kernel launch per tensor operation
  (:class:`CompiledStep`);
- run eagerly it records the autograd graph of the step, which
  :func:`pdeforge.neural.differentiable.differentiable_solve` checkpoints over time.

It also holds the intra-op thread policy of the finite-difference torch kernels on CPU
(:func:`thread_count`, :func:`threads`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from pdeforge.tableaus import TABLEAUS, accumulating_stages, convex_stages

METHODS = ("euler", "ssprk3", "rk4")

#: below this many cells per field an intra-op parallel region costs more than it saves on
#: CPU (each tensor operation is a few microseconds of work); measured on Gray-Scott and the
#: burgers-les closure at 64^2 .. 512^2 (see benchmarks/gpu_fused.py)
SERIAL_BELOW_CELLS = 128 * 128

#: environment variables by which a user sets torch's CPU threads (pdeforge then leaves them)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PDEFORGE_TORCH_THREADS")


def threads_set_by_environment() -> bool:
    """Whether the environment fixes torch's CPU threads (:data:`THREAD_ENV`)."""
    return any(os.environ.get(v) for v in THREAD_ENV)
_first_seen: int | None = None


def rk_step(f: Callable, method: str, y, t, dt):
    """One step of ``method`` ("euler", "ssprk3", "rk4") of ``dy/dt = f(y, t)``, out of place.

    The stage values and combination coefficients are those of
    :class:`pdeforge.solvers.explicit.runge_kutta.FixedStepRK` (Shu-Osher SSPRK3, classical RK4), so a
    run of these steps equals the fused-stage solver's to round-off. ``t`` and ``dt`` may be
    numbers or 0-d tensors.
    """
    # the sums run in the fused stages' order, so both solvers round alike
    if method not in TABLEAUS or TABLEAUS[method].b_error is not None:
        raise ValueError(f"method {method!r}: one of {', '.join(METHODS)}")
    tab = TABLEAUS[method]
    if tab.shu_osher is not None:  # u_{i+1} = keep u_0 + mix u_i + weight dt f(u_i)
        u = y
        for i, st in enumerate(convex_stages(tab)):
            slope = st.by(dt) * f(u, t + st.at(dt))
            u = (u + slope) if i == 0 else (st.keep_f * y + st.mix_f * u + slope)
        return u
    stages = accumulating_stages(tab)  # k_i = f(s_i); s_{i+1} = y + advance dt k_i; acc += weight dt k_i
    k = f(y, t)
    acc = y + stages[0].by(dt) * k
    for prev, st in zip(stages[:-1], stages[1:]):
        k = f(y + prev.advance_by(dt) * k, t + st.at(dt))
        acc = acc + st.by(dt) * k
    return acc


class CompiledStep:
    """``torch.compile`` of :func:`rk_step` for one right-hand side and method.

    Args:
        f: out-of-place right-hand side ``f(y, t)`` of cell tensors (``t`` a 0-d tensor).
        method: "euler", "ssprk3" or "rk4".
        mode: ``torch.compile`` mode (None: default; "reduce-overhead" adds CUDA graphs on a
            GPU, "max-autotune" tunes the Triton kernels).

    ``t`` and ``dt`` go in as 0-d tensors on the state's device, so one compiled graph serves
    every time value and step size (Python floats would be guarded and recompiled for).
    """

    def __init__(self, f: Callable, method: str, mode: str | None = None):
        import torch

        if method not in METHODS:
            raise ValueError(f"method {method!r}: one of {', '.join(METHODS)}")
        self.torch = torch
        self.method = method

        def step(y, t, dt):
            return rk_step(f, method, y, t, dt)

        self.fn = torch.compile(step, mode=mode, dynamic=False)

    def advance(self, y, t0: float, dt: float, n: int):
        """``n`` steps from ``y`` at ``t0``; returns the new cell tensor (``y`` untouched)."""
        torch = self.torch
        t = torch.tensor(float(t0), dtype=y.dtype, device=y.device)
        h = torch.tensor(float(dt), dtype=y.dtype, device=y.device)
        for _ in range(n):
            y = self.fn(y, t, h)
            t = t + h
        return y


def check_inductor_cpu() -> str | None:
    """Why Inductor cannot compile for the CPU here (no C++ compiler), or None when it can."""
    import shutil

    cxx = os.environ.get("CXX")
    if cxx and shutil.which(cxx):
        return None
    for name in ("g++", "c++", "clang++"):
        if shutil.which(name):
            return None
    return "torch.compile on CPU (Inductor) needs a C++ compiler (g++, clang++); none is on PATH"


def thread_count(cells: int) -> int | None:
    """Intra-op threads for torch kernels on a grid of ``cells`` cells on CPU, or None to leave them.

    The user's choice wins: with ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or
    ``PDEFORGE_TORCH_THREADS`` set, or after ``torch.set_num_threads`` changed the count from
    the one first seen here, nothing is changed. Otherwise grids under
    :data:`SERIAL_BELOW_CELLS` run on one thread (a parallel region per tensor operation
    costs more than the work, and on a machine shared with other busy processes it waits for
    threads that are not scheduled); larger grids keep torch's count.
    """
    import torch

    global _first_seen
    current = torch.get_num_threads()
    if _first_seen is None:
        _first_seen = current
    if threads_set_by_environment() or current != _first_seen:
        return None
    return 1 if cells < SERIAL_BELOW_CELLS else None


@contextlib.contextmanager
def threads(count: int | None):
    """Run the block with ``count`` intra-op threads (None: unchanged); restores the count after."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["rk_step", "CompiledStep", "check_inductor_cpu", "thread_count", "threads", "METHODS"]

"""PyTorch kernels bound to a grid, a device and a dtype (their steppers: :mod:`pdeforge.solvers.explicit.torch_runge_kutta`).

:class:`TorchBoundKernel` has the interface of :class:`~pdeforge.codegen.kernel.BoundKernel`
(``rhs``, ``rhs_padded``, fused ``stage_axpy`` / ``stage_two``, ``jacobian``, ``fill_ghosts``)
with padded states as tensors on ``device``. The SciPy-style ``rhs(t, y)`` and
``jacobian(t, y)`` take and return NumPy arrays when given NumPy arrays (converting at the
boundary), so the adaptive and implicit drivers work unchanged; the fixed-step Runge-Kutta
driver keeps its buffers on the device and only copies the state to the host for the
finiteness checks and the saved frames.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping

import numpy as np

from pdeforge.discretize.grid import UniformGrid
from pdeforge.codegen.dense_network import check_bound
from pdeforge.discretize.padding import apply_closure, axis_index
from pdeforge.errors import SolverError
from pdeforge.codegen.kernel import BoundKernel, Kernel
from pdeforge.codegen.torch.fused import CompiledStep, check_inductor_cpu, thread_count, threads

DTYPES = ("float64", "float32")


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional extra
        raise SolverError("backend 'torch' needs PyTorch: pip install 'pdeforge[torch]'") from None
    return torch


def resolve_device(device) -> "torch.device":
    """A ``torch.device`` from ``device`` (None: CPU); a clear error for unusable devices."""
    torch = _torch()
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError):
        raise SolverError(f"device {device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:0')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SolverError(f"device {device!r}: CUDA is not available here (torch {torch.__version__}); use 'cpu'")
    return dev


def resolve_dtype(dtype) -> "torch.dtype":
    """``torch.float64`` or ``torch.float32`` from a name, a torch dtype or a NumPy dtype."""
    torch = _torch()
    if dtype is None:
        return torch.float64
    if isinstance(dtype, torch.dtype):
        name = str(dtype).replace("torch.", "")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    if name not in DTYPES:
        raise SolverError(f"dtype {dtype!r}: the torch target supports {', '.join(DTYPES)}")
    return getattr(torch, name)


class TorchKernel(Kernel):
    """A generated PyTorch kernel module plus the closure callables bound at compile time.

    Attributes:
        closures: closure name -> callable (``torch.nn.Module`` or function of a tensor
            ``(..., nargs)``) used by the generated code.
    """

    def __init__(self, system, target, module, key, cache_hit, build_time_s, closures: Mapping[str, Callable] | None = None):
        super().__init__(system, target, module, key, cache_hit, build_time_s)
        needed = dict(getattr(module, "CLOSURES", {}))
        closures = dict(closures or {})
        check_bound(system.name, needed, closures, "torch.nn.Module or callable")
        for name, fn in closures.items():
            if not callable(fn):
                raise SolverError(f"closures[{name!r}]: expected a torch.nn.Module or a callable, got {type(fn).__name__}")
        self.closures = closures

    def bind(
        self,
        grid: UniformGrid,
        params: Mapping[str, float] | None = None,
        device=None,
        dtype=None,
        torch_compile: bool | str = False,
    ) -> TorchBoundKernel:
        """Bind to a grid, parameter values, a torch ``device`` (default CPU) and ``dtype``
        ("float64" default, or "float32"). Closure modules are moved to that device and dtype.

        ``torch_compile``: True (or a ``torch.compile`` mode such as "reduce-overhead") steps
        the fixed-step methods with whole RK steps compiled by ``torch.compile`` (Inductor:
        C++/OpenMP on CPU, Triton on GPU; :mod:`pdeforge.codegen.torch.fused`) instead of the
        eager fused stages."""
        return TorchBoundKernel(self, grid, params, device, dtype,
                                torch_compile)


class TorchGhostFill:
    """The ghost-cell fill of a :class:`~pdeforge.discretize.padding.GhostLayout`, on tensors.

    Periodic axes copy slices (all fields at once where every field is periodic); boundary
    closures combine interior slices with the layout's weights; boundary values are computed
    by the generated NumPy functions and kept on the device (recomputed each fill only when
    they depend on time).
    """

    def __init__(self, layout, device, dtype):
        self.torch = _torch()
        self.layout = layout
        self.device = device
        self.dtype = dtype
        self._values: dict = {}

    def _value(self, i: int, c, t: float, second: bool = False):
        """Closure ``c``'s boundary value as a tensor (``second``: a reflected wall's second datum)."""
        fn, timed, key = (c.value2, c.time_dependent2, (i, 2)) if second else (c.value, c.time_dependent, i)
        if fn is None:
            return None
        # a value without t may still read parameters that change between calls (scalars)
        stamp = self.layout.param_vector.tobytes()
        if not timed and key in self._values and self._values[key][0] == stamp:
            return self._values[key][1]
        v = self.torch.as_tensor(np.array(self.layout._boundary_value(c, t, second=second)), dtype=self.dtype,
                                 device=self.device)
        if not timed:
            self._values[key] = (stamp, v)
        return v

    def fill(self, U, t: float) -> None:
        lay = self.layout
        dim = lay.grid.dim
        nf = lay.nfields
        for a in range(dim):
            g, n = lay.ghost[a], lay.grid.shape[a]
            periodic = [f for f in range(nf) if lay.periodic[(f, a)]]
            if periodic:
                sel = slice(0, nf) if len(periodic) == nf else periodic
                lo_dst = (sel, *axis_index(dim, a, slice(0, g)))
                lo_src = (sel, *axis_index(dim, a, slice(n, n + g)))
                hi_dst = (sel, *axis_index(dim, a, slice(n + g, n + 2 * g)))
                hi_src = (sel, *axis_index(dim, a, slice(g, 2 * g)))
                U[lo_dst] = U[lo_src]
                U[hi_dst] = U[hi_src]
            for i, c in enumerate(lay.closures):
                if c.axis != a:
                    continue
                apply_closure(U[c.field], lay.at(c, t), g, n, self._value(i, c, t), self._value(i, c, t, second=True))


class TorchBoundKernel(BoundKernel):
    """A torch kernel bound to a grid, parameter values, a device and a dtype.

    Padded states are tensors of shape ``(fields, *(n + 2*ghost))`` on :attr:`device`;
    :meth:`rhs` and :meth:`jacobian` also accept flat NumPy arrays (SciPy style).

    Attributes:
        device: the ``torch.device`` every tensor lives on.
        dtype: ``torch.float64`` or ``torch.float32``.
    """

    def __init__(self, kernel: TorchKernel, grid: UniformGrid, params: Mapping[str, float], device=None, dtype=None,
                 torch_compile: bool | str = False):
        super().__init__(kernel, grid, params)
        torch = self.torch = _torch()
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.p_values = [float(v) for v in self.p]
        self.h_values = [float(v) for v in self.h]
        self.coords_t = tuple(torch.as_tensor(c, dtype=self.dtype, device=self.device) for c in self.coords)
        self.closures = {}
        for name, fn in kernel.closures.items():
            if isinstance(fn, torch.nn.Module):
                fn = fn.to(device=self.device, dtype=self.dtype)
            self.closures[name] = fn
        self.filler = TorchGhostFill(self.layout, self.device, self.dtype)
        self._scratch_pad = self.new_padded()
        self._k = None
        self._rhs_ad = kernel.module.KERNELS[("rhs_ad", False)]
        self._p_t = [self.scalar(v) for v in self.p_values]
        self._h_t = [self.scalar(v) for v in self.h_values]
        self.threads = thread_count(grid.size) if self.device.type == "cpu" else None
        if torch_compile not in (False, None, True) and not isinstance(torch_compile, str):
            raise SolverError(f"torch_compile: True, False or a torch.compile mode name, got {torch_compile!r}")
        if torch_compile and self.device.type == "cpu" and (why := check_inductor_cpu()):
            raise SolverError(why)
        self.torch_compile = torch_compile
        self._compiled: dict[str, CompiledStep] = {}

    # layouts -------------------------------------------------------------------------------
    def new_padded(self):
        """A padded state tensor on the device: unknowns zero, coefficient rows set."""
        out = self.torch.zeros(self.padded_shape, dtype=self.dtype, device=self.device)
        if self.frozen is not None:
            out[self.nfields:] = self.tensor(self.frozen)
        return out

    def tensor(self, values) -> "torch.Tensor":
        """``values`` (NumPy array or tensor) as a tensor of this kernel's dtype on its device."""
        return self.torch.as_tensor(values, dtype=self.dtype, device=self.device)

    def to_numpy(self, tensor) -> np.ndarray:
        """Host copy of a tensor (a view, without copying, when it is already a CPU tensor)."""
        return tensor.detach().cpu().numpy()

    def pad(self, cells, t: float = 0.0, out=None):
        """Padded tensor of cell values (array or tensor) with ghosts filled at time ``t``."""
        if out is None:
            out = self.new_padded()
        out[self.interior] = self.tensor(cells).reshape(self.cell_shape)
        self.fill_ghosts(out, t)
        return out

    def fill_ghosts(self, U, t: float) -> None:
        self.filler.fill(U, t)

    def _call(self, fn, U, out, t: float) -> None:
        fn(U, out, t, self.p_values, self.h_values, *self.coords_t, self.closures)

    # right-hand side -----------------------------------------------------------------------
    def rhs_padded(self, U, t: float, out=None):
        """Right-hand side at the cells of padded tensor ``U`` (ghosts filled here).

        ``out`` may be a tensor (written in place) or a NumPy array (the result is copied
        into it); without it a new tensor is returned. Autograd follows ``U`` and closure
        parameters unless called under ``torch.no_grad()``.
        """
        host = out if isinstance(out, np.ndarray) else None
        if out is None or host is not None:
            out = self.torch.empty(self.cell_shape, dtype=self.dtype, device=self.device)
        with threads(self.threads):
            self.fill_ghosts(U, t)
            self._call(self._rhs, U, out, t)
        if host is not None:
            host[...] = self.to_numpy(out)
            return host
        return out

    def rhs(self, t: float, y):
        """SciPy-style right-hand side of flat cell values: NumPy in, NumPy out (tensor in, tensor out)."""
        as_numpy = not isinstance(y, self.torch.Tensor)
        with self.torch.no_grad() if as_numpy else contextlib.nullcontext():
            U = self.pad(self.tensor(y).reshape(self.cell_shape), t, self._scratch_pad if as_numpy else None)
            k = self.rhs_padded(U, t)
        return self.to_numpy(k).reshape(-1).copy() if as_numpy else k.reshape(-1)

    def rhs_serial(self, t: float, y):
        """:meth:`rhs` (torch picks its own threads)."""
        return self.rhs(t, y)

    # out-of-place path: autograd and torch.compile ------------------------------------------
    def scalar(self, value) -> "torch.Tensor":
        """``value`` as a 0-d tensor of this kernel's dtype on its device (tensors are kept, so autograd sees them)."""
        if isinstance(value, self.torch.Tensor):
            return value.to(device=self.device, dtype=self.dtype)
        return self.torch.tensor(float(value), dtype=self.dtype, device=self.device)

    def param_tensors(self, overrides: Mapping[str, object] | None = None) -> list:
        """Parameter values in the kernel's order as 0-d tensors; ``overrides`` name -> number or tensor."""
        names = self.kernel.module.PARAMS
        overrides = dict(overrides or {})
        unknown = [n for n in overrides if n not in names]
        if unknown:
            raise SolverError(f"params: {unknown[0]!r} is not a parameter of the kernel (parameters: {', '.join(names) or 'none'})")
        return [self.scalar(overrides[n]) if n in overrides else p for n, p in zip(names, self._p_t)]

    def padded(self, Y, t: float = 0.0):
        """A new padded tensor holding cell tensor ``Y`` with ghosts filled (out of place in ``Y``)."""
        U = Y.new_zeros(self.padded_shape)
        U[self.interior] = Y
        self.fill_ghosts(U, t)
        return U

    def rhs_cells(self, Y, t, p: list | None = None):
        """Right-hand side of cell tensor ``Y`` (fields, *shape), out of place.

        ``t`` is a number or 0-d tensor; ``p`` the parameter tensors of :meth:`param_tensors`
        (default: the bound values). Autograd follows ``Y``, ``p`` and closure modules.
        Boundary values, when they depend on time, are evaluated at ``float(t)``.
        """
        timed = self.layout.time_dependent_weights or any(c.time_dependent or c.time_dependent2 for c in self.layout.closures)
        t_fill = float(t) if timed else 0.0
        U = self.padded(Y, t_fill)
        out = Y.new_empty(self.cell_shape)
        self._rhs_ad(U, out, self.scalar(t), self._p_t if p is None else p, self._h_t, *self.coords_t, self.closures)
        return out

    @property
    def has_compiled_stepping(self) -> bool:
        """Whether fixed steps run as ``torch.compile``-d whole RK steps (``torch_compile=`` of bind)."""
        return bool(self.torch_compile)

    def compiled_step(self, method: str) -> CompiledStep:
        """The compiled whole step of ``method`` (compiled on first call, then reused)."""
        if method not in self._compiled:
            mode = self.torch_compile if isinstance(self.torch_compile, str) else None
            self._compiled[method] = CompiledStep(lambda y, t: self.rhs_cells(y, t), method, mode)
        return self._compiled[method]

    def advance_compiled(self, method: str, buffers: list, t0: float, dt: float, n: int,
                         parallel: bool | None = None, loop: str | None = None) -> None:
        """``n`` compiled steps of ``method`` on the cells of ``buffers[0]`` (``parallel`` and
        ``loop`` are unused: Inductor's loops take torch's intra-op threads, and there is one loop)."""
        Y = self.cells(buffers[0])
        with self.torch.no_grad(), threads(self.threads):
            # a copy with standard strides: the compiled graph is specialised to its input's
            # strides, and the steps after the first get the previous step's output; handing in
            # the padded buffer's strided view made Dynamo compile the step twice per run
            # (``contiguous()`` keeps the view when the strides of size-1 axes differ)
            Y.copy_(self.compiled_step(method).advance(Y.new_empty(Y.shape).copy_(Y), t0, dt, n))

    # fused Runge-Kutta stages --------------------------------------------------------------
    def _stage_k(self, S, t):
        if self._k is None:
            self._k = self.torch.empty(self.cell_shape, dtype=self.dtype, device=self.device)
        self.fill_ghosts(S, t)
        self._call(self._rhs, S, self._k, t)
        return self._k

    def stage_axpy(self, S, Y0, OUT, t: float, a: float, b: float, c: float) -> None:
        """``OUT = a*Y0 + b*S + c*f(t, S)`` on the cells (padded tensors; OUT must not be S)."""
        torch = self.torch
        I = self.interior
        with torch.no_grad(), threads(self.threads):
            k = self._stage_k(S, t)
            o = OUT[I]
            if a == 0.0:
                torch.mul(S[I], b, out=o)
            else:
                torch.mul(Y0[I], a, out=o)
                if b != 0.0:
                    o.add_(S[I], alpha=b)
            o.add_(k, alpha=c)

    def stage_two(self, S, Y0, A, OUT, OUTA, t: float, c1: float, c2: float) -> None:
        """``k = f(t, S)``; ``OUT = Y0 + c1*k``; ``OUTA = A + c2*k`` (padded tensors; no aliasing with S)."""
        torch = self.torch
        I = self.interior
        with torch.no_grad(), threads(self.threads):
            k = self._stage_k(S, t)
            torch.add(Y0[I], k, alpha=c1, out=OUT[I])
            if OUTA is A:
                OUTA[I].add_(k, alpha=c2)
            else:
                torch.add(A[I], k, alpha=c2, out=OUTA[I])

    # Jacobian ------------------------------------------------------------------------------
    def jacobian_padded(self, U, t: float):
        """Exact sparse Jacobian (SciPy CSR) at padded tensor ``U``; closure derivatives by forward AD."""
        n = len(self.kernel.module.JAC_ENTRIES)
        torch = self.torch
        vals = torch.empty((n, *self.grid.shape), dtype=self.dtype, device=self.device)
        with torch.no_grad():
            self.fill_ghosts(U, t)
            if n:
                self._call(self._jac, U, vals, t)
        return self.assembler.assemble(np.asarray(self.to_numpy(vals), dtype=float), t)

    def jacobian_values(self, t: float, y) -> np.ndarray:
        """The Jacobian kernel's values at flat cell values ``y``, as a NumPy array (entries, *grid.shape)."""
        torch = self.torch
        n = len(self.kernel.module.JAC_ENTRIES)
        vals = torch.zeros((n, *self.grid.shape), dtype=self.dtype, device=self.device)
        with torch.no_grad():
            U = self.pad(self.tensor(y).reshape(self.cell_shape), t, self._scratch_pad)
            if n:
                self._call(self._jac, U, vals, t)
        return np.asarray(self.to_numpy(vals), dtype=float)

    def jacobian(self, t: float, y):
        """SciPy-style exact sparse Jacobian (CSR) at flat cell values ``y`` (array or tensor)."""
        U = self.pad(self.tensor(y).reshape(self.cell_shape), t, self._scratch_pad)
        return self.jacobian_padded(U, t)

    def warm_up(self, kinds: tuple[str, ...] = ("rhs",)) -> float:
        """Run the listed kernels once on scratch tensors (first-call allocations); returns seconds."""
        t0 = time.perf_counter()
        S = self.new_padded()
        Y = self.new_padded()
        for kind in kinds:
            if kind == "rhs":
                with self.torch.no_grad():
                    self.rhs_padded(S, 0.0)
            elif kind == "stage_axpy":
                self.stage_axpy(S, S, Y, 0.0, 0.0, 1.0, 0.0)
            elif kind == "stage_two":
                self.stage_two(S, S, S, Y, self.new_padded(), 0.0, 0.0, 0.0)
            elif kind == "jac":
                self.jacobian_padded(S, 0.0)
            elif kind.split(":")[0] in ("euler", "ssprk3", "rk4") and self.has_compiled_stepping:
                self.advance_compiled(kind.split(":")[0], [S], 0.0, 0.0, 1)  # compiles the step
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

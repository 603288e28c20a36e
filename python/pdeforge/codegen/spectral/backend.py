"""Runtimes of the generated pseudo-spectral kernels: transforms, wavenumbers, masks, coordinates.

A generated module (see :mod:`pdeforge.codegen.spectral.target`) reads everything that depends
on the grid, the array library, the device and the precision from one runtime object ``K``:

* ``K.rfft(a)`` / ``K.irfft(A)``: real FFTs over the last ``dim`` axes (any leading batch
  axes), unnormalized forward and ``1/N`` inverse (NumPy: ``ducc0.fft``, a dependency of
  pdeforge, else ``scipy.fft`` where it is missing; ``K.workers`` threads);
* ``K.k[a]``: wavenumbers of axis ``a`` for odd derivative orders (Nyquist mode set to zero:
  an odd derivative of it is not a real field), broadcastable against the transform shape;
  ``K.kk[a]``: squared wavenumbers (Nyquist kept) for even orders;
* ``K.kinv2``: ``1/|k|^2`` with the odd-order wavenumbers (zero where ``k = 0``), so the Leray
  projection and the spectral divergence annihilate each other exactly (also the inverse
  Laplacian's multiplier, ``-K.kinv2``); ``K.kinv2_max`` its largest value;
* ``K.mode0``: 1 at ``k = 0``, else 0 (``mean(g)``'s multiplier);
* ``K.dealias(A)``: the 2/3 rule: zero every mode with ``3 |n_a| >= N_a`` on some axis;
* ``K.x[a]``: cell-centre coordinates, broadcastable; ``K.kmax[a]``: largest |k| kept;
* ``K.amax``, ``K.isfinite``, ``K.allsum``, ``K.allmax``: reductions over the whole grid.

A runtime may hold only part of the grid (``K.local_slices()``: one MPI rank's slab or pencil,
:class:`pdeforge.parallel.spectral.DistributedSpectralRuntime`): then ``K.shape``/``K.kshape``
are its part's shapes, every array above is that part of the global one, and the reductions
combine all parts (``K.global_shape``, ``K.size``: the whole grid).
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import SolverError

REAL_DTYPES = ("float32", "float64")

#: grids with at least this many points use every physical core for their FFTs by default
#: (on 2 cores of a Zen 4 server with ducc0: 128^2 transforms took 2.4x longer with 2 threads,
#: a Kolmogorov 256^2 step 7.6 ms with 2 threads against 6.6 ms with one)
THREADED_POINTS = 2**18


def physical_cores() -> int:
    """Physical CPU cores available to this process (hyper-threads not counted)."""
    import os

    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    siblings = 1
    try:
        with open("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list") as fh:
            text = fh.read().strip()
        siblings = sum(len(range(int(a), int(b) + 1)) if "-" in part else 1
                       for part in text.split(",") for a, _, b in [part.partition("-")])
    except (OSError, ValueError):
        pass
    return max(1, available // max(1, siblings))


def _dtype_name(dtype) -> str:
    name = str(dtype).replace("torch.", "")
    if name not in REAL_DTYPES:
        raise SolverError(f"dtype {dtype!r}: use 'float32' or 'float64'")
    return name


def integer_wavenumbers(n: int, last: bool) -> np.ndarray:
    """Integer wavenumbers of an axis with ``n`` points (``rfft`` layout for the last axis)."""
    return np.fft.rfftfreq(n, 1.0 / n) if last else np.fft.fftfreq(n, 1.0 / n)


def dealias_keep(n: int, last: bool) -> np.ndarray:
    """Boolean mask of the modes the 2/3 rule keeps on an axis of ``n`` points."""
    return 3 * np.abs(integer_wavenumbers(n, last)) < n


class SpectralRuntime:
    """Grid-dependent arrays and transforms for one array library, device and precision.

    Args:
        grid: the periodic grid.
        dtype: "float32" or "float64" (transforms are complex64 / complex128).
        dealias: apply the 2/3 rule to forward transforms of products.
    """

    library = "numpy"

    def __init__(self, grid: UniformGrid, dtype: str = "float64", dealias: bool = True):
        self.grid = grid
        self.dim = grid.dim
        self.global_shape = tuple(grid.shape)
        self.global_kshape = (*self.global_shape[:-1], self.global_shape[-1] // 2 + 1)
        # the part of the grid and of the half spectrum this runtime holds (all of it here; one
        # rank's slab or pencil in a distributed runtime): every array below is that part of
        # the global one, so the generated kernels compute exactly what one process computes
        physical, spectral = self.local_slices()
        self.shape = tuple(len(range(*s.indices(n))) for s, n in zip(physical, self.global_shape))
        self.kshape = tuple(len(range(*s.indices(n))) for s, n in zip(spectral, self.global_kshape))
        self.axes = tuple(range(-self.dim, 0))
        self._own_axes = tuple(range(self.dim))  # of an unbatched array
        self.dtype_name = _dtype_name(dtype)
        self.dealiased = bool(dealias)
        lengths = [b - a for a, b in grid.domain]
        self.lengths = tuple(lengths)
        k_odd, k_sq, keep, kmax = [], [], [], []
        for a, n in enumerate(self.global_shape):
            last = a == self.dim - 1
            ints = integer_wavenumbers(n, last)
            scale = 2.0 * math.pi / lengths[a]
            odd = ints * scale
            if n % 2 == 0:
                odd = np.where(np.abs(ints) == n // 2, 0.0, odd)
            kept = dealias_keep(n, last)
            kmax.append(float(np.max(np.abs(ints[kept] if dealias else ints)) * scale))
            mine = spectral[a]
            bshape = [1] * self.dim
            bshape[a] = len(ints[mine])
            k_odd.append(odd[mine].reshape(bshape))
            k_sq.append(((ints[mine] * scale) ** 2).reshape(bshape))
            keep.append(kept[mine].reshape(bshape))
        mask = keep[0]
        for m in keep[1:]:
            mask = mask & m
        k2 = sum(k * k for k in k_odd)
        with np.errstate(divide="ignore"):
            kinv2 = np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
        self.kmax = tuple(kmax)
        self._np = {
            "k": k_odd,
            "kk": k_sq,
            "kinv2": kinv2,
            "mask": mask.astype(float),
            "ksq_full": sum(k_sq),
            "x": [c[physical[a]].reshape([-1 if b == a else 1 for b in range(self.dim)])
                  for a, c in enumerate(grid.coordinates)],
        }
        self.k = tuple(self.asarray(k) for k in k_odd)
        self.kk = tuple(self.asarray(k) for k in k_sq)
        self.kinv2 = self.asarray(kinv2)
        self.kinv2_max = self.allmax(float(np.max(kinv2)))
        mode0 = np.zeros(self.kshape)
        if all(s.indices(n)[0] == 0 for s, n in zip(spectral, self.global_kshape)):
            mode0[(0,) * self.dim] = 1.0
        self.mode0 = self.asarray(mode0)
        self.ksq = self.asarray(self._np["ksq_full"])
        self.mask = self.asarray(self._np["mask"]) if dealias else None
        self.x = tuple(self.asarray(x) for x in self._np["x"])
        # weight of each rfft mode in sums over the full spectrum (the half-spectrum's
        # interior modes stand for themselves and their conjugates)
        n_last = self.global_shape[-1]
        w = np.full(self.global_kshape[-1], 2.0)
        w[0] = 1.0
        if n_last % 2 == 0:
            w[-1] = 1.0
        self.mode_weight = self.asarray(w[spectral[-1]].reshape([1] * (self.dim - 1) + [-1]))
        self.size = int(np.prod(self.global_shape))
        self._workspace: dict = {}
        #: prepared pointwise calls on work arrays, by the identity of their arrays
        self._prepared: dict = {}
        self._work_ids: set = set()
        if self.library == "numpy":
            self._dtypes = (self.real_dtype, self.complex_dtype)

    # the part held, and reductions over the parts ------------------------------------------
    def local_slices(self) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Where this runtime's physical and spectral arrays lie in the global ones (all of them)."""
        return (slice(None),) * self.grid.dim, (slice(None),) * self.grid.dim

    def allsum(self, value):
        """Sum of a number (or elementwise of an array) over every part of the grid: the
        value itself when the runtime holds the whole grid."""
        return value

    def allmax(self, value: float) -> float:
        """Largest ``value`` over every part of the grid (the value itself here)."""
        return value

    # array library -------------------------------------------------------------------------
    @property
    def real_dtype(self):
        return np.dtype(self.dtype_name)

    @property
    def complex_dtype(self):
        return np.dtype("complex64" if self.dtype_name == "float32" else "complex128")

    def asarray(self, a, complex_: bool = False):
        """``a`` as an array of this runtime's library, device and (real or complex) precision."""
        return np.asarray(a, dtype=self.complex_dtype if complex_ else self.real_dtype)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def stack(self, arrays, axis: int, out=None):
        return np.stack(arrays, axis=axis, out=out)

    def take(self, a, index: int, axis: int):
        """View of entry ``index`` along ``axis`` (negative axes count from the end)."""
        sl = [slice(None)] * a.ndim
        sl[axis] = index
        return a[tuple(sl)]

    def constant(self, c):
        return c

    def scalar(self, v):
        """A parameter or time value as the generated code's functions accept it."""
        return v

    def amax(self, a) -> float:
        if np.ndim(a) == 0:
            return float(a)
        return float(np.nanmax(a))

    def isfinite(self, a) -> bool:
        return bool(np.isfinite(np.sum(a)))

    # transforms ----------------------------------------------------------------------------
    def _full(self, a):
        a = np.asarray(a, dtype=self.real_dtype)
        if a.shape[-self.dim:] != self.shape or a.ndim < self.dim:
            a = np.broadcast_to(a, np.broadcast_shapes(a.shape, self.shape))
        return a

    def rfft(self, a, key: str | None = None):
        """Forward real FFT; with ``key`` and an unbatched ``a``, into this runtime's work array
        of that name (valid until the next transform with the same key: the generated kernels
        name every intermediate transform, so a right-hand side allocates no transform)."""
        if key is not None and type(a) is np.ndarray and a.shape == self.shape and self.fft_library == "ducc0":
            ducc = _ducc_fft()
            if ducc is not None and a.dtype == self._dtypes[0]:  # the kernels' case, in few Python operations
                return ducc.r2c(a, axes=self._own_axes, nthreads=self.workers or 1,
                                out=self._work(key, self.kshape, self._dtypes[1]))
        a = self._full(a)
        ducc = _ducc_fft() if self.fft_library == "ducc0" else None
        if ducc is not None:
            out = self._work(key, self.kshape, self.complex_dtype) if key is not None and a.shape == self.shape else None
            return ducc.r2c(a, axes=tuple(range(a.ndim - self.dim, a.ndim)), nthreads=self.workers or 1, out=out)
        import scipy.fft

        return scipy.fft.rfftn(a, axes=self.axes, workers=self.workers)

    def irfft(self, A, key: str | None = None):
        """Inverse real FFT; ``key``: as for :meth:`rfft`."""
        if key is not None and type(A) is np.ndarray and A.shape == self.kshape and self.fft_library == "ducc0":
            ducc = _ducc_fft()
            if ducc is not None and A.dtype == self._dtypes[1]:
                return ducc.c2r(A, axes=self._own_axes, lastsize=self.shape[-1], forward=False, inorm=2,
                                nthreads=self.workers or 1, out=self._work(key, self.shape, self._dtypes[0]))
        ducc = _ducc_fft() if self.fft_library == "ducc0" else None
        if ducc is not None:
            A = np.asarray(A)
            out = self._work(key, self.shape, self.real_dtype) if key is not None and A.shape == self.kshape else None
            return ducc.c2r(A, axes=tuple(range(A.ndim - self.dim, A.ndim)), lastsize=self.shape[-1],
                            forward=False, inorm=2, nthreads=self.workers or 1, out=out)
        import scipy.fft

        return scipy.fft.irfftn(A, s=self.shape, axes=self.axes, workers=self.workers)

    def pointwise(self, kernel, arrays: tuple, scalars: tuple, keys: tuple) -> tuple:
        """Run a generated Numba pointwise kernel: the physical ``arrays`` in, one array per name
        in ``keys`` out (work arrays for unbatched inputs, fresh arrays for batched ones)."""
        identity = (kernel, keys, *map(id, arrays))
        prepared = self._prepared.get(identity)
        if prepared is not None:  # the same work arrays as a call before: its flat views, no checks
            kernel(*prepared[0], *[float(v) for v in scalars])
            return prepared[1]
        ref = arrays[0]
        dtype = ref.dtype
        if ref.shape == self.shape and all(a.shape == ref.shape and a.dtype == dtype and a.flags.c_contiguous
                                           for a in arrays):  # the solver's case: work arrays, no copies
            outs = tuple(self._work("pointwise:" + k, ref.shape, dtype) for k in keys)
            if all(id(a) in self._work_ids for a in arrays):
                # the inputs are work arrays (they live as long as this runtime: their identities
                # stay theirs): keep the flat views for the next call on the same arrays
                if len(self._prepared) >= 64:
                    self._prepared.clear()
                self._prepared[identity] = ((*[a.reshape(-1) for a in arrays], *[o.reshape(-1) for o in outs]), outs)
        else:
            arrays = np.broadcast_arrays(*arrays)
            dtype = np.result_type(*arrays)
            arrays = [np.ascontiguousarray(a, dtype=dtype) for a in arrays]
            outs = tuple(np.empty(arrays[0].shape, dtype=dtype) for _ in keys)
        kernel(*[a.reshape(-1) for a in arrays], *[o.reshape(-1) for o in outs], *[float(v) for v in scalars])
        return outs

    def _work(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """The work array ``key`` (allocated on first use; one per name and precision)."""
        found = self._workspace.get((key, dtype))
        if found is None:
            found = self._workspace[(key, dtype)] = np.empty(shape, dtype=dtype)
            self._work_ids.add(id(found))
        return found

    #: "ducc0" (when installed: the FFT library JAX uses, 2-2.6x faster than scipy.fft's
    #: pocketfft here at 128^2-256^2) or "scipy"
    fft_library: str = "ducc0"

    def dealias(self, A):
        if self.mask is not None:
            A *= self.mask
        return A

    def dealias_multiplier(self, m):
        """A multiplier with the 2/3 rule folded in (``m * mask``), for transforms of products."""
        return m * self.mask if self.mask is not None else m

    def combination(self, terms, n_inputs: int, sources, velocity):
        """The fused final combination of a right-hand side (numpy target; see
        :mod:`pdeforge.codegen.spectral.fused`): ``(inputs, out, like) -> (..., F, *kshape)``."""
        from pdeforge.codegen.spectral.fused import combination

        return combination(terms, n_inputs, sources, velocity, self.k, self.kinv2, self.kshape)

    #: threads of scipy.fft (None: one); set by the operator
    workers: int | None = None


def _ducc_fft():
    """``ducc0.fft`` if the optional package is installed, else None (scipy.fft is used)."""
    global _DUCC
    if _DUCC is None:
        try:
            import ducc0.fft

            _DUCC = ducc0.fft
        except ImportError:
            _DUCC = False
    return _DUCC or None


_DUCC = None


class TorchRuntime(SpectralRuntime):
    """The same runtime on PyTorch tensors (CPU or CUDA), out of place so autograd works.

    Args:
        grid: the periodic grid.
        dtype: "float32" or "float64".
        dealias: apply the 2/3 rule.
        device: a torch device ("cpu", "cuda", "cuda:1", ...).
    """

    library = "torch"

    def __init__(self, grid: UniformGrid, dtype: str = "float64", dealias: bool = True, device=None):
        import torch

        self.torch = torch
        try:
            self.device = torch.device(device if device is not None else "cpu")
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise SolverError(f"device {device!r} is not available to torch ({exc})") from None
        super().__init__(grid, dtype, dealias)

    @property
    def real_dtype(self):
        return getattr(self.torch, self.dtype_name)

    @property
    def complex_dtype(self):
        return self.torch.complex64 if self.dtype_name == "float32" else self.torch.complex128

    def asarray(self, a, complex_: bool = False):
        dtype = self.complex_dtype if complex_ else self.real_dtype
        if isinstance(a, self.torch.Tensor):
            return a.to(device=self.device, dtype=dtype)
        return self.torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        if isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def stack(self, arrays, axis: int, out=None):
        if out is not None:
            return self.torch.stack(arrays, dim=axis, out=out)
        return self.torch.stack(arrays, dim=axis)

    def take(self, a, index: int, axis: int):
        return a.select(axis, index)

    def scalar(self, v):
        # torch functions (torch.sqrt, torch.sin) take tensors only: 0-d tensors on the device;
        # tensors passed in (a learnable Cs) are kept as they are, so autograd sees them
        if isinstance(v, self.torch.Tensor):
            return v
        return self.torch.tensor(float(v), dtype=self.real_dtype, device=self.device)

    def amax(self, a) -> float:
        if not isinstance(a, self.torch.Tensor):
            return float(a)
        return float(self.torch.nan_to_num(a.detach(), nan=0.0).max())

    def isfinite(self, a) -> bool:
        return bool(self.torch.isfinite(a.sum()))

    def _full(self, a):
        torch = self.torch
        if not isinstance(a, torch.Tensor):
            a = torch.as_tensor(a, dtype=self.real_dtype, device=self.device)
        if a.ndim < self.dim or tuple(a.shape[-self.dim:]) != self.shape:
            a = a.expand(*np.broadcast_shapes(tuple(a.shape), self.shape))
        return a

    def rfft(self, a, key: str | None = None):
        return self.torch.fft.rfftn(self._full(a), dim=self.axes)

    def irfft(self, A, key: str | None = None):
        return self.torch.fft.irfftn(A, s=self.shape, dim=self.axes)

    def dealias(self, A):
        return A * self.mask if self.mask is not None else A


def make_runtime(grid: UniformGrid, target: str, dtype: str = "float64", dealias: bool = True, device=None):
    """The runtime of ``target`` ("numpy" or "torch") on ``grid``."""
    if target == "numpy":
        if device not in (None, "cpu"):
            raise SolverError(f"device {device!r}: the numpy target runs on the CPU only (use target 'torch')")
        return SpectralRuntime(grid, dtype, dealias)
    if target == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise SolverError("target 'torch' needs PyTorch: pip install torch") from None
        return TorchRuntime(grid, dtype, dealias, device)
    raise SolverError(f"spectral target {target!r} is not available (valid: numpy, torch)")

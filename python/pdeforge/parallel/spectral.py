"""Distributed FFTs for the pseudo-spectral kernels: one rank's slab or pencil of a periodic grid.

:class:`DistributedSpectralRuntime` is the runtime ``K`` of the generated spectral kernels
(:mod:`pdeforge.codegen.spectral.backend`) on one rank of a communicator: its transforms are
mpi4py-fft's ``PFFT`` (real-to-complex, global transposes between the axes), its wavenumbers,
masks (the 2/3 rule, ``mode0``, ``kinv2``, the odd-order Nyquist zeros) and coordinates are the
local slices of the one-process arrays, and its reductions (``amax``, ``isfinite``, ``allsum``,
``allmax``) go through Allreduce. The same generated module therefore runs unchanged on every
rank and computes, mode by mode, what one process computes.

Layout (mpi4py-fft's): the physical array is split along its first axis (a slab, ``P x 1``) or
its first two axes (a pencil, ``P0 x P1 x 1``); the last axis is never split, since its real
FFT comes first. The half spectrum is split along other axes: for a 2-D slab along the rfft
axis, for a 3-D slab along the second axis.

mpi4py-fft is imported only here, when a spectral run is started on more than one rank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pdeforge.codegen.spectral.backend import SpectralRuntime
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import GridError, SolverError
from pdeforge.parallel.comm import mpi
from pdeforge.parallel.decomposition import BlockGrid, Decomposition, split

#: what a spectral run's ``decomposition`` may be
LAYOUTS = ("slab", "pencil")


def pfft_module():
    """``mpi4py_fft``, with a clear message where it is missing."""
    try:
        import mpi4py_fft
    except ImportError as exc:
        raise SolverError(
            "a spectral run on several MPI ranks needs mpi4py-fft: apt-get install libfftw3-dev (or load the "
            f"cluster's FFTW module), then pip install 'pdeforge[mpi-fft]' ({exc})") from None
    return mpi4py_fft


def spectral_axes(shape: Sequence[int]) -> tuple[int, ...]:
    """Per axis, the number of entries of the half spectrum (the rfft axis is the last)."""
    return (*shape[:-1], shape[-1] // 2 + 1)


def _fits(shape: Sequence[int], dims: Sequence[int]) -> bool:
    """Whether every rank gets a non-empty part of the physical array and of the half spectrum.

    The physical array is split by ``dims``; the half spectrum by the same counts moved one axis
    on (mpi4py-fft's transposes: the axis transformed next becomes whole, the one it leaves is
    split), which for the last-but-one split axis means the rfft axis.
    """
    kshape = spectral_axes(shape)
    split_axes = [a for a, d in enumerate(dims) if d > 1]
    if any(shape[a] < dims[a] for a in split_axes):
        return False
    # after the transposes the split axes are shifted one place to the right
    return all(kshape[a + 1] >= dims[a] for a in split_axes)


def process_grid(shape: Sequence[int], nranks: int, layout: str | Sequence[int] | None = None) -> tuple[int, ...]:
    """Ranks per axis of the physical array of a spectral run.

    Args:
        shape: the global grid.
        nranks: ranks of the run.
        layout: "slab" (the first axis split ``nranks`` ways), "pencil" (the first two axes of a
            3-D grid, ``MPI.Compute_dims``), ranks per axis such as ``(2, 2, 1)`` (the last entry
            1), or None: a slab where every rank gets at least one plane of the physical array
            and of the half spectrum, else a pencil.

    Raises:
        GridError: a layout that does not fit the ranks or the grid, naming what does.
    """
    dim = len(shape)
    grid_text = "x".join(map(str, shape))
    if layout is None:
        slab = process_grid(shape, nranks, "slab") if _fits(shape, (nranks,) + (1,) * (dim - 1)) else None
        if slab is not None:
            return slab
        if dim == 3:
            return process_grid(shape, nranks, "pencil")
        raise GridError(f"a spectral run on {nranks} ranks: a {grid_text} grid has too few planes for one slab per "
                        "rank (a 2-D grid splits into slabs only); use fewer ranks or more points")
    if isinstance(layout, str):
        if layout not in LAYOUTS:
            raise GridError(f"decomposition {layout!r}: a spectral run takes 'slab', 'pencil', ranks per axis such "
                            "as (2, 2, 1), or None")
        if layout == "slab":
            dims = (nranks,) + (1,) * (dim - 1)
        elif dim != 3:
            raise GridError(f"decomposition 'pencil': pencils split two axes of a 3-D grid; this grid is {dim}-D "
                            "(use 'slab')")
        else:
            dims = tuple(mpi().Compute_dims(nranks, [0, 0, 1]))
    else:
        dims = tuple(int(d) for d in layout)
        if len(dims) != dim or dims[-1] != 1 or any(d < 1 for d in dims) or math.prod(dims) != nranks:
            raise GridError(f"decomposition {tuple(layout)!r}: a spectral run takes ranks per axis with one entry "
                            f"per axis, the last 1 (the rfft axis is not split) and product {nranks} (the ranks), "
                            f"e.g. {(nranks,) + (1,) * (dim - 1)!r}")
    if not _fits(shape, dims):
        raise GridError(f"decomposition {'x'.join(map(str, dims))} of a {grid_text} grid: some rank would hold no "
                        "plane of the physical array or of the half spectrum; use fewer ranks, more points"
                        + (", or 'pencil'" if dim == 3 and dims[1] == 1 else ""))
    return dims


class DistributedSpectralRuntime(SpectralRuntime):
    """The spectral runtime on this rank's part of a grid distributed over ``comm``.

    Args:
        grid: the global periodic grid.
        comm: the communicator (every rank of it builds the runtime together).
        dims: ranks per axis of the physical array (:func:`process_grid`).
        dtype: "float32" or "float64".
        dealias: apply the 2/3 rule.

    Attributes:
        fft: the mpi4py-fft ``PFFT`` plan.
        physical, spectral: this rank's slices of the global physical array and half spectrum.
        transforms: transforms done so far (a batch of ``b`` arrays counts ``b``).
        transpose_s: seconds this rank spent in the all-to-all transposes of those transforms
            (the rest of a step is its own FFT and pointwise work).
    """

    library = "numpy"
    fft_library = "mpi4py-fft"

    def __init__(self, grid: UniformGrid, comm: Any, dims: Sequence[int], dtype: str = "float64",
                 dealias: bool = True):
        PFFT = pfft_module().PFFT
        self.comm = comm
        self.dims = tuple(int(d) for d in dims)
        self._ops = mpi()
        real = np.float32 if str(dtype) == "float32" else np.float64
        self.fft = PFFT(comm, tuple(grid.shape), axes=tuple(range(grid.dim)), dtype=real, grid=self.dims)
        self.physical = tuple(self.fft.local_slice(False))
        self.spectral = tuple(self.fft.local_slice(True))
        self.transforms = 0
        self.transpose_s = 0.0
        for transform in (self.fft.forward, self.fft.backward):  # time the all-to-all transposes
            steps = getattr(transform, "_transfer", None)
            if steps is not None:
                transform._transfer = tuple(self._timed(step) for step in steps)
        super().__init__(grid, dtype, dealias)

    def _timed(self, transpose):
        """``transpose`` (one global redistribution of mpi4py-fft) adding its seconds to :attr:`transpose_s`."""
        def timed(a, b):
            t0 = time.perf_counter()
            transpose(a, b)
            self.transpose_s += time.perf_counter() - t0

        return timed

    def local_slices(self) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        return self.physical, self.spectral

    # reductions ------------------------------------------------------------------------------
    def allsum(self, value):
        if np.ndim(value):
            values = np.ascontiguousarray(value, dtype=float)
            out = np.empty_like(values)
            self.comm.Allreduce(values, out, op=self._ops.SUM)
            return out
        return self.comm.allreduce(value, op=self._ops.SUM)

    def allmax(self, value: float) -> float:
        # NaN where every rank has NaN, else the largest number: NumPy's nanmax over the whole
        # grid, as one process's amax (an MPI MAX leaves NaN to the implementation)
        numbers = [v for v in self.comm.allgather(float(value)) if not math.isnan(v)]
        return max(numbers) if numbers else math.nan

    def amax(self, a) -> float:
        return self.allmax(super().amax(a))

    def isfinite(self, a) -> bool:
        return not bool(self.comm.allreduce(int(not super().isfinite(a)), op=self._ops.MAX))

    # transforms --------------------------------------------------------------------------------
    def rfft(self, a, key: str | None = None):
        """Forward real FFT of this rank's physical part (any leading batch axes): unnormalized,
        as one process's; ``key`` names the work array of an unbatched result."""
        return self._transform(self.fft.forward, self._full(a), self.kshape, self.complex_dtype, key, False)

    def irfft(self, A, key: str | None = None):
        """Inverse real FFT (``1/N``) of this rank's part of the half spectrum."""
        A = np.asarray(A, dtype=self.complex_dtype)
        return self._transform(self.fft.backward, A, self.shape, self.real_dtype, key, True)

    def _transform(self, transform, a: np.ndarray, shape: tuple, dtype, key: str | None, normalize: bool):
        """``transform`` (mpi4py-fft's forward or backward) of each array along ``a``'s leading axes."""
        batch = a.shape[: a.ndim - self.dim]
        if key is not None and not batch:
            out = self._work(key, shape, dtype)
        else:
            out = np.empty((*batch, *shape), dtype=dtype)
        for i in np.ndindex(*batch):
            transform(a[i], out[i], normalize=normalize)
        self.transforms += max(1, math.prod(batch))
        return out

    # the physical part as a block of the grid -------------------------------------------------
    def decomposition(self) -> Decomposition:
        """This rank's physical part as a :class:`~pdeforge.parallel.decomposition.Decomposition`
        (what the zarr store and the initial conditions read)."""
        grid = self.grid
        start = tuple(s.start for s in self.physical)
        block = BlockGrid(grid.domain, self.shape, grid.names, grid.geometry, whole=grid, start=start)
        blocks = tuple(tuple(split(grid.shape[a], self.dims[a])) for a in range(grid.dim))
        coords = tuple(next(i for i, (s, _) in enumerate(blocks[a]) if s == start[a]) for a in range(grid.dim))
        return Decomposition(self.comm, self.dims, coords, (True,) * grid.dim, grid, block, (), blocks)

    def gather(self, part: np.ndarray, root: int | None = None) -> np.ndarray | None:
        """The global array ``(..., *grid.shape)`` from every rank's physical part: on every rank
        (``root=None``) or on ``root`` only."""
        pair = (self.physical, np.ascontiguousarray(part))
        parts = self.comm.allgather(pair) if root is None else self.comm.gather(pair, root=root)
        if parts is None:
            return None
        out = np.empty((*part.shape[: part.ndim - self.dim], *self.global_shape), dtype=part.dtype)
        for where, values in parts:
            out[(..., *where)] = values
        return out

    def transpose_bytes(self) -> int:
        """Bytes this rank sends in the all-to-all transposes of one transform: of each
        intermediate array, the share ``(q - 1) / q`` that goes to the other ``q - 1`` ranks of
        the transpose's sub-communicator (an even split; the part kept stays in place)."""
        moved = 0
        for transfer in self.fft.transfer:
            q = transfer.comm.Get_size()
            moved += math.prod(transfer.subshapeA) * transfer.dtype.itemsize * (q - 1) // q
        return int(moved)

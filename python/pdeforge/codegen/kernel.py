"""Compiled kernels, and kernels bound to a grid and parameter values."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pdeforge.codegen.numba.tiling import Tiling, plan, tiling_for
from pdeforge.codegen.numba.wavefront import Wavefront, cache_bytes, wavefront_for
from pdeforge.discretize.grid import UniformGrid
from pdeforge.discretize.padding import GhostLayout
from pdeforge.errors import SolverError
from pdeforge.symbolic.system import PDESystem

if TYPE_CHECKING:  # scipy.sparse is imported only when a Jacobian is asked for
    import scipy.sparse as sps

    from pdeforge.discretize.sparsity import JacobianAssembler


class GeneratedModule:
    """A generated, cached kernel module of one system for one target.

    Attributes:
        system: the PDE system it was generated from.
        target: the code-generation target.
        module: the generated module (kernels and metadata).
        key: cache key (content hash).
        cache_hit: whether the module came from the disk cache.
        build_time_s: seconds spent producing or loading the module.
    """

    def __init__(self, system: PDESystem, target: str, module: ModuleType, key: str, cache_hit: bool, build_time_s: float):
        self.system = system
        self.target = target
        self.module = module
        self.key = key
        self.cache_hit = cache_hit
        self.build_time_s = build_time_s

    @property
    def source(self) -> str:
        """The generated module's source text."""
        with open(self.module.__file__) as fh:
            return fh.read()

    @property
    def path(self) -> str:
        return self.module.__file__


class Kernel(GeneratedModule):
    """The generated code of one system for one target, independent of grid and parameters.

    Attributes:
        system: the PDE system it was generated from.
        target: "numpy" or "numba".
        module: the generated module (kernels and metadata).
        key: cache key (content hash).
        cache_hit: whether the module came from the disk cache.
        build_time_s: seconds spent producing or loading the module.
        networks: closure name -> the :class:`~pdeforge.codegen.dense_network.DenseNetwork`
            printed for it (Numba kernels of closure systems; empty otherwise). Their weights
            are data: bound kernels pass them after the parameters.
        closures: what evaluates each closure term (here the networks).
    """

    def __init__(self, system: PDESystem, target: str, module: ModuleType, key: str, cache_hit: bool,
                 build_time_s: float, networks: Mapping | None = None):
        super().__init__(system, target, module, key, cache_hit, build_time_s)
        self.networks = dict(networks or {})
        self.closures = dict(self.networks)

    @property
    def scheme(self) -> str:
        """The spatial scheme the kernels were generated with ("fd", "fv-upwind", ...)."""
        return getattr(self.module, "SCHEME", "fd")

    @property
    def ghost(self) -> tuple[int, ...]:
        return tuple(self.module.GHOST)

    @property
    def simplification(self) -> dict:
        return dict(self.module.SIMPLIFICATION)

    def bind(self, grid: UniformGrid, params: Mapping[str, object] | None = None) -> BoundKernel:
        """Bind to a grid and parameter values (the system's values by default).

        ``params`` may also give new values of coefficient fields (arrays of the grid's
        shape, callables, expressions): they are data of the bound kernel, the compiled code
        is the same.
        """
        return BoundKernel(self, grid, params)

    def numba_cache_hits(self) -> int:
        """Number of kernels Numba loaded from its disk cache in this process (0 for NumPy)."""
        hits = 0
        for fn in self.module.KERNELS.values():
            stats = getattr(fn, "stats", None)
            if stats is not None:
                hits += sum(stats.cache_hits.values())
        return hits


#: Byte offsets within a 4 KiB page at which successive aligned arrays start (the n-th array
#: takes entry n mod len): a state and the array written from it 2 KiB apart, the further work
#: arrays of ssprk3 and rk4 in between (measured: states 0 or 64 bytes apart mod 4 KiB lose
#: 14-20% to 4K aliasing, 1-3 KiB apart are equally good).
ALIAS_PHASES = (0, 2048, 1024, 3072, 512, 2560, 1536, 3584)
#: Bytes of one cache line: the alignment of every row's first cell.
LINE = 64
#: Bytes of the two forward-Euler states from which the wavefront sweep replaces the plain loop:
#: half the 32 MiB L3. Measured (one core, CPU time, load 3): Gray-Scott 512^2 (8.6 MB) plain
#: 2034 vs wavefront 1463 Mcell-steps/s (in L3 the plain loop is core-bound and the sweep's
#: per-row calls cost); 1024^2 (34 MB) 816 vs 1332; 2048^2 880 vs 1511; heat 128^3 (37 MB)
#: 977 vs 2322.
WAVE_FROM_BYTES = 16 << 20


def aligned_shape(shape: tuple[int, ...], itemsize: int = 8) -> tuple[int, ...]:
    """``shape`` with its last axis rounded up to whole 64-byte lines of ``itemsize``-byte values."""
    per_line = LINE // itemsize
    return (*shape[:-1], -(-shape[-1] // per_line) * per_line)


def aligned_padded(shape: tuple[int, ...], ghost_last: int, index: int = 0, dtype=np.float64) -> np.ndarray:
    """Zeroed C-contiguous array of :func:`aligned_shape` ``(shape)`` (float64 or float32), with
    element ``[..., ghost_last]`` (each row's first cell) on a 64-byte boundary and the first
    row's first cell at byte ``ALIAS_PHASES[index % 8]`` of a 4 KiB page."""
    item = np.dtype(dtype).itemsize
    full = aligned_shape(shape, item)
    size = int(np.prod(full))
    raw = np.zeros(size + 2 * 4096 // item, dtype=dtype)  # room to reach the next page boundary plus the phase
    phase = ALIAS_PHASES[index % len(ALIAS_PHASES)]
    first = raw.ctypes.data + item * ghost_last  # byte address of the first cell if the array started at raw[0]
    target = -(-first // 4096) * 4096 + phase  # the next page boundary at or after it, plus the phase
    offset = (target - first) // item
    return raw[offset: offset + size].reshape(full)


class BoundKernel:
    """A kernel bound to a grid and parameter values: right-hand side, Jacobian, RK stages.

    State arrays come in two layouts: *cells* ``(fields, *grid.shape)`` (what users and
    SciPy see, flattened in C order) and *padded* ``(fields, *(n + 2*ghost))`` (what the
    kernels read). Padded arrays get their ghost layers filled by the methods that need them.
    A single-precision kernel (``compile(..., dtype="float32")``) binds its parameters, widths
    and coordinates and allocates its states in float32 (:attr:`dtype`).
    """

    def __init__(self, kernel: Kernel, grid: UniformGrid, params: Mapping[str, object] | None = None):
        from pdeforge.discretize.coefficients import padded_coefficients

        m = kernel.module
        system = kernel.system
        if grid.dim != system.dim:
            raise SolverError(f"grid has {grid.dim} axes, system {system.name!r} has {system.dim}")
        if params:
            system = system.with_params(**params)
        self.kernel = kernel
        self.grid = grid
        #: precision of the states and of the kernels' arithmetic
        self.dtype = np.dtype(getattr(m, "DTYPE", "float64"))
        self.params = dict(system.params)
        #: padded coefficient fields (coefficients, *padded shape), or None
        self.frozen = padded_coefficients(system, grid, kernel.ghost, self.params) if system.coefficients else None
        self.nfields = len(m.FIELDS)
        # the weights of dense closure networks follow the parameters (the kernels read them there)
        self.p = np.concatenate([np.array([self.params[name] for name in m.PARAMS], dtype=float),
                                 *[net.values() for _, net in sorted(kernel.networks.items())]]).astype(self.dtype)
        self.h = np.array(grid.spacing, dtype=self.dtype)
        self.coords = tuple(np.ascontiguousarray(c, dtype=self.dtype) for c in grid.coordinates)
        self.layout = GhostLayout(
            self.nfields,
            grid,
            kernel.ghost,
            {(system.fields.index(f), a): pair for (f, a), pair in system.bcs.items()},
            m.CLOSURE_POINTS,
            self.params,
            system.param_symbols,
            m.BC_VALUES,
            set(m.BC_TIME_DEPENDENT),
            self.p,
            self.frozen,
            t=system.t,
        )
        self.cell_shape = (self.nfields, *grid.shape)
        self.padded_shape = self.layout.padded_shape
        self.interior = self.layout.cells_index
        parallel = grid.size >= getattr(m, "PARALLEL_THRESHOLD", np.inf)
        self.parallel = bool(parallel)
        self._rhs = m.KERNELS.get(("rhs", parallel), m.KERNELS[("rhs", False)])
        self._rhs_serial = m.KERNELS[("rhs", False)]
        self._jac = m.KERNELS.get(("jac", parallel), m.KERNELS[("jac", False)])
        self._stage_axpy = m.KERNELS.get(("stage_axpy", parallel))
        self._stage_two = m.KERNELS.get(("stage_two", parallel))
        self._advance = getattr(m, "ADVANCE", None)
        self._closure_arrays: tuple | None = None
        self._tilings: dict[str, Tiling | None] = {}
        #: whether a schedule was set by hand (set_tiling, set_wavefront): runs then measure no other loop
        self._loops_fixed = False
        self._assembler = None
        self._scratch_pad = BoundKernel.new_padded(self)  # NumPy (subclasses may hold other arrays)
        self._aligned_count = 0  # arrays handed out by new_aligned (each at the next page phase)
        self._scratch_jac: np.ndarray | None = None

    # layouts -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of unknowns (fields times cells)."""
        return self.nfields * self.grid.size

    def new_padded(self) -> np.ndarray:
        """A padded state array (unknowns zero, coefficient rows set) of :attr:`dtype`."""
        out = self.layout.new_padded()
        return out if out.dtype == self.dtype else out.astype(self.dtype)

    def new_aligned(self) -> np.ndarray:
        """A padded state array laid out for the compiled stepping loops (same cells and ghosts
        as :meth:`new_padded`, every value at the same index).

        Two measured costs of the plain layout are removed (Gray-Scott 512^2, forward Euler,
        one core: 1440 -> 2290 Mcell-steps/s; see :func:`aligned_padded`): every row's first
        cell starts on a 64-byte boundary and rows are a whole number of 64-byte lines long
        (unused columns after the last ghost), so that the centre loads and all stores of the
        512-bit inner loop do not straddle cache lines; and successive arrays of this kernel
        start at different offsets within a 4 KiB page, so that a state and the array written
        from it do not alias in the load/store unit (4K aliasing). The array is C-contiguous;
        the generated kernels take the cell counts from the coordinates, so the extra columns
        are never read or written.
        """
        out = aligned_padded(self.padded_shape, self.layout.ghost[-1], self._aligned_count, self.dtype)
        self._aligned_count += 1
        if self.layout.frozen is not None:
            out[(slice(self.nfields, None), *(slice(0, m) for m in self.padded_shape[1:]))] = self.layout.frozen
        return out

    def pad(self, cells: np.ndarray, t: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
        """Padded copy of cell values with ghosts filled at time ``t``."""
        if out is None:
            out = self.new_padded()
        out[self.interior] = np.asarray(cells, dtype=float).reshape(self.cell_shape)
        self.fill_ghosts(out, t)
        return out

    def cells(self, U: np.ndarray) -> np.ndarray:
        """View of the cell values of a padded array."""
        return U[self.interior]

    def fill_ghosts(self, U: np.ndarray, t: float) -> None:
        """Fill the ghost layers of padded ``U`` at time ``t`` (compiled when the target has it)."""
        if self._advance is not None:
            self.kernel.module.FILL(U, t, self.p, *self._closures())
        else:
            self.layout.fill(U, t)

    def _pad_cells(self, y: np.ndarray, t: float) -> np.ndarray:
        """Flat or shaped cell values -> the scratch padded array, ghosts filled."""
        U = self._scratch_pad
        U[self.interior] = np.asarray(y, dtype=float).reshape(self.cell_shape)
        self.fill_ghosts(U, t)
        return U

    # right-hand side -----------------------------------------------------------------------
    def rhs_padded(self, U: np.ndarray, t: float, out: np.ndarray | None = None) -> np.ndarray:
        """Right-hand side at the cells of padded state ``U`` (ghosts are filled here)."""
        if out is None:
            out = np.empty(self.cell_shape, dtype=self.dtype)
        self.fill_ghosts(U, t)
        self._rhs(U, out, t, self.p, self.h, *self.coords)
        return out

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """SciPy-style right-hand side: flat cell values in, flat time derivative out."""
        return self._flat_rhs(self._rhs, t, y)

    def rhs_serial(self, t: float, y: np.ndarray) -> np.ndarray:
        """:meth:`rhs` on one thread: for a few evaluations (a step-size estimate), where a
        threaded kernel on a busy machine waits for its slowest thread (64^3 heat at load 8:
        27 ms per evaluation threaded)."""
        return self._flat_rhs(self._rhs_serial, t, y)

    def _flat_rhs(self, kernel, t: float, y: np.ndarray) -> np.ndarray:
        U = self._pad_cells(y, t)
        out = np.empty(self.cell_shape, dtype=self.dtype)
        kernel(U, out, t, self.p, self.h, *self.coords)
        return out.reshape(-1)

    # fused Runge-Kutta stages --------------------------------------------------------------
    def stage_axpy(self, S, Y0, OUT, t: float, a: float, b: float, c: float) -> None:
        """``OUT = a*Y0 + b*S + c*f(t, S)`` on the cells (padded arrays; OUT must not be S)."""
        self.fill_ghosts(S, t)
        if self._stage_axpy is not None:
            self._stage_axpy(S, Y0, OUT, t, a, b, c, self.p, self.h, *self.coords)
            return
        k = np.empty(self.cell_shape)
        self._rhs(S, k, t, self.p, self.h, *self.coords)
        I = self.interior
        OUT[I] = a * Y0[I] + b * S[I] + c * k

    def stage_two(self, S, Y0, A, OUT, OUTA, t: float, c1: float, c2: float) -> None:
        """``k = f(t, S)``; ``OUT = Y0 + c1*k``; ``OUTA = A + c2*k`` (padded; no aliasing with S)."""
        self.fill_ghosts(S, t)
        if self._stage_two is not None:
            self._stage_two(S, Y0, A, OUT, OUTA, t, c1, c2, self.p, self.h, *self.coords)
            return
        k = np.empty(self.cell_shape)
        self._rhs(S, k, t, self.p, self.h, *self.coords)
        I = self.interior
        OUT[I] = Y0[I] + c1 * k
        OUTA[I] = A[I] + c2 * k

    # compiled time stepping -----------------------------------------------------------------
    @property
    def has_compiled_stepping(self) -> bool:
        """Whether the target compiles whole fixed-step loops (Numba does)."""
        return self._advance is not None

    def _closures(self) -> tuple:
        if self._closure_arrays is None:
            dim = self.grid.dim
            gmax = max(self.layout.ghost)
            W = np.zeros((self.nfields, dim, 2, gmax, self.layout.width))
            B = np.zeros((self.nfields, dim, 2, gmax))
            for c in self.layout.closures:
                W[c.field, c.axis, c.side, : c.A.shape[0], : c.A.shape[1]] = c.A
                B[c.field, c.axis, c.side, : c.B.shape[0]] = c.B
            dom = np.array(self.grid.domain, dtype=float)
            self._closure_arrays = (W, B, dom, *self.layout.padded_coords)
        return self._closure_arrays

    def tiling(self, method: str) -> Tiling | None:
        """The temporal blocking the compiled ``method`` loops (serial and threaded) use on this
        grid (None: the plain loops).

        Chosen by :func:`pdeforge.codegen.numba.tiling.plan` from the cache budget; set another
        (or None) with :meth:`set_tiling`.
        """
        if getattr(self.kernel.module, "TILED", None) is None:
            return None
        if getattr(self.layout, "frozen", None) is not None:
            return None  # the tiles gather the unknowns' rows only, not frozen coefficient rows
        if method not in self._tilings:
            self._tilings[method] = plan(tuple(self.grid.shape), tuple(self.layout.ghost), self._periodic_axes(),
                                         self.nfields, method)
        return self._tilings[method]

    def set_tiling(self, method: str, steps: int | None, tiles: tuple[int, ...] | None = None) -> Tiling | None:
        """Use ``steps`` fused steps per sweep over tiles of ``tiles`` cells for ``method``
        (``steps=None``: the plain loop). Returns the tiling now in use."""
        self._loops_fixed = True
        if steps is None:
            self._tilings[method] = None
            return None
        if tiles is None or len(tiles) != self.grid.dim or steps < 1:
            raise SolverError(f"set_tiling: give steps >= 1 and one tile size per axis ({self.grid.dim}), "
                              f"got steps={steps!r}, tiles={tiles!r}")
        self.tiling(method)  # checks that the target has tiled loops
        self._tilings[method] = tiling_for(tuple(self.grid.shape), tuple(self.layout.ghost), self._periodic_axes(),
                                           method, int(steps), tuple(int(t) for t in tiles))
        return self._tilings[method]

    def wavefront(self, parallel: bool = False) -> Wavefront | None:
        """The wavefront schedule of the compiled forward-Euler loop, serial or threaded, on this
        grid (None: the plain or tiled loop); see :mod:`pdeforge.codegen.numba.wavefront`. Set
        with :meth:`set_wavefront`.

        By default the serial loop sweeps wavefronts once both states exceed ``WAVE_FROM_BYTES``
        (one core runs the plain loop at its arithmetic limit while they fit the L3), the
        threaded loop (one tile per thread) once they exceed the threads' L2 caches (threads
        share the L3's bandwidth, which the plain loop saturates)."""
        if getattr(self.kernel.module, "WAVE", None) is None or self.layout.frozen is not None:
            return None
        key = "wavepar" if parallel else "wave"
        if key not in self._tilings:
            import numba

            threads = numba.get_num_threads() if parallel else 1
            states = 2 * self.dtype.itemsize * int(np.prod(aligned_shape(self.padded_shape, self.dtype.itemsize)))
            start = threads * cache_bytes(2, 1 << 20) if parallel else WAVE_FROM_BYTES
            self._tilings[key] = self._plan_wavefront(None, threads) if states >= start else None
        return self._tilings[key]

    def set_wavefront(self, levels: int | None = 0, tiles: int | None = None,
                      band: int | None = None) -> Wavefront | None:
        """Use the wavefront for forward Euler with ``levels`` steps per sweep (0: as many as fit
        the cache; None: never) over ``tiles`` tiles (default: one per Numba thread), ``band``
        rows per call (default: see :func:`~pdeforge.codegen.numba.wavefront.band_rows`).
        Returns the schedule now in use (None where the grid or the system does not allow one)."""
        self._loops_fixed = True  # a schedule set by hand: runs use it and probe no other serial loop
        if levels is None or getattr(self.kernel.module, "WAVE", None) is None:
            self._tilings["wave"] = self._tilings["wavepar"] = None
            return None
        self._tilings["wave"] = self._tilings["wavepar"] = self._plan_wavefront(levels or None, tiles, band)
        return self._tilings["wave"]

    def serial_wavefront(self) -> Wavefront | None:
        """The serial wavefront schedule a run may probe on this grid, whatever its size (the
        schedule set with :meth:`set_wavefront` where one was)."""
        if self._loops_fixed or self.wavefront(False) is not None:
            return self.wavefront(False)
        if getattr(self.kernel.module, "WAVE", None) is None or self.layout.frozen is not None:
            return None
        if "wave-any" not in self._tilings:
            self._tilings["wave-any"] = self._plan_wavefront(None, 1)
        return self._tilings["wave-any"]

    def _loop_kind(self, method: str, parallel: bool) -> str:
        """The loop the grid's size suggests for ``method``: "wave", "tiled" or "plain"."""
        if method == "euler" and self.wavefront(parallel) is not None:
            return "wave"
        return "tiled" if self.tiling(method) is not None else "plain"

    def serial_loops(self, method: str) -> tuple[str, ...]:
        """The serial compiled loops of ``method`` a run chooses between on this grid by measuring
        them (:class:`~pdeforge.codegen.numba.threads.SerialChoice`), the one the grid's size
        suggests first: "plain" (one sweep per step), "wave" (forward Euler's wavefront, several
        steps per sweep), "tiled" (overlapped tiles). One entry where there is nothing to choose
        (a schedule set by hand with :meth:`set_wavefront`, or no temporally blocked loop)."""
        if not self.has_compiled_stepping:
            return ()
        first = self._loop_kind(method, False)
        if self._loops_fixed:
            return (first,)
        if first != "plain":
            return (first, "plain")
        if method == "euler" and self.serial_wavefront() is not None:
            return (first, "wave")
        return (first,)

    def _plan_wavefront(self, levels: int | None, tiles: int | None = None,
                        band: int | None = None) -> Wavefront | None:
        if tiles is None:
            import numba

            tiles = numba.get_num_threads()
        item = self.dtype.itemsize
        row = int(np.prod(aligned_shape(self.padded_shape, item)[2:]))  # one padded row (line, plane) of a field
        return wavefront_for(tuple(self.grid.shape), 2 * self.nfields * row * item, self.layout.ghost[0],
                             self.layout.width, tiles, levels, band)

    def _periodic_axes(self) -> tuple[bool | None, ...]:
        """Per axis: True if every field is periodic along it, False if none is, None if mixed."""
        out = []
        for ax in range(self.grid.dim):
            kinds = {bc.periodic for (f, a), pair in self.kernel.system.bcs.items() if a == ax for bc in pair}
            out.append(kinds.pop() if len(kinds) == 1 else None)
        return tuple(out)

    def thread_key(self, method: str) -> tuple | None:
        """What identifies this kernel's ``method`` loop on this grid with this many threads
        (the key of the measured thread choice); None without compiled stepping loops."""
        if not self.has_compiled_stepping:
            return None
        import numba

        return (self.kernel.key, method, tuple(self.grid.shape), numba.get_num_threads())

    def fill_ghosts_compiled(self, U: np.ndarray, t: float) -> None:
        """The compiled ghost fill (same result as the NumPy fill of the layout)."""
        self.kernel.module.FILL(U, t, self.p, *self._closures())

    def advance_compiled(self, method: str, buffers: list, t0: float, dt: float, n: int,
                         parallel: bool | None = None, loop: str | None = None) -> None:
        """Run ``n`` fixed steps of ``method`` in compiled code on the padded ``buffers``.

        ``buffers[0]`` holds the state before and after; the others are work arrays (two for
        euler, three for ssprk3, five for rk4 in total, as :class:`FixedStepRK` allocates).
        ``parallel`` picks the multi-threaded or the serial loop (default: by grid size);
        ``loop`` the serial loop, one of :meth:`serial_loops` (default: the first, the one the
        grid's size suggests). Every loop gives the same values, bit for bit.
        """
        parallel = self.parallel if parallel is None else parallel
        kind = self._loop_kind(method, parallel) if (loop is None or parallel) else loop
        args = (float(t0), float(dt), int(n), self.p, self.h, *self.coords, *self._closures())
        if kind == "wave" and n > 1:
            wave = self.wavefront(True) if parallel else self.serial_wavefront()
            if self.kernel.module.WAVE[parallel](*buffers, *args, *wave.args):
                buffers[0], buffers[1] = buffers[1], buffers[0]
            return
        plan = self.tiling(method) if kind == "tiled" else None
        if plan is not None and n > plan.steps:
            import numba

            swapped = self.kernel.module.TILED[(method, parallel)](*buffers, *args, *plan.args,
                                                                   numba.get_num_threads())
        else:
            swapped = self._advance[(method, parallel)](*buffers, *args)
        if swapped:
            k = 2 if method == "rk4" else 1
            buffers[0], buffers[k] = buffers[k], buffers[0]

    # Jacobian ------------------------------------------------------------------------------
    @property
    def assembler(self) -> JacobianAssembler:
        if self._assembler is None:
            from pdeforge.discretize.sparsity import JacobianAssembler

            self._assembler = JacobianAssembler(self.layout, [tuple(e) for e in self.kernel.module.JAC_ENTRIES])
        return self._assembler

    def jacobian_padded(self, U: np.ndarray, t: float) -> "sps.csr_matrix":
        """Exact Jacobian d f / d cells at padded state ``U`` (ghosts filled here)."""
        n = len(self.kernel.module.JAC_ENTRIES)
        if self._scratch_jac is None:
            self._scratch_jac = np.empty((n, *self.grid.shape))
        self.fill_ghosts(U, t)
        if n:
            self._jac(U, self._scratch_jac, t, self.p, self.h, *self.coords)
        return self.assembler.assemble(self._scratch_jac, t)

    def jacobian(self, t: float, y: np.ndarray) -> "sps.csr_matrix":
        """SciPy-style exact sparse Jacobian (CSR) of :meth:`rhs` at flat state ``y``."""
        return self.jacobian_padded(self._pad_cells(y, t), t)

    def jacobian_values(self, t: float, y) -> np.ndarray:
        """The Jacobian kernel's values (stencil derivatives with respect to the padded values)
        at flat state ``y``, shape (entries, *grid.shape)."""
        U = self._pad_cells(y, t)
        values = np.zeros((len(self.kernel.module.JAC_ENTRIES), *self.grid.shape))
        if len(values):
            self._jac(U, values, t, self.p, self.h, *self.coords)
        return values

    def boundary_jacobian(self, t: float, y) -> tuple:
        """Derivatives of :meth:`rhs` at flat state ``y`` with respect to the boundary values:
        ``(JB, where)`` of :meth:`~pdeforge.discretize.sparsity.JacobianAssembler.boundary`."""
        return self.assembler.boundary(self.jacobian_values(t, y), t)

    def sparsity(self) -> "sps.csr_matrix":
        """Sparsity pattern of the Jacobian (CSR of ones)."""
        return self.assembler.pattern()

    def loop_on_disk(self, method: str, parallel: bool, loop: str | None = None) -> bool:
        """Whether Numba's disk cache already holds the compiled ``method`` loop (serial or
        threaded; ``loop``: a serial loop of :meth:`serial_loops`, default the first) that
        :meth:`warm_up` would build for this grid: loading it takes a fraction of a second,
        compiling it seconds. False where that cannot be told."""
        if self._advance is None:
            return False
        m = self.kernel.module
        loops = [self._advance[(method, parallel)]]
        kind = self._loop_kind(method, parallel) if (loop is None or parallel) else loop
        if kind == "wave":
            loops.append(m.WAVE[parallel])
        elif kind == "tiled":
            loops.append(m.TILED[(method, parallel)])
        try:  # Numba's per-function cache index, next to the generated module
            return all(os.path.exists(f._cache._cache_file._index_path) for f in loops)
        except (AttributeError, TypeError):
            return False

    def warm_up(self, kinds: tuple[str, ...] = ("rhs",)) -> float:
        """Compile (or load from the disk cache) the listed kernels; returns seconds.

        Runs each kernel variant this grid uses on a tiny padded array, so compiling costs no
        memory proportional to the grid. ``"rk4:serial"`` (or ``":parallel"``) names one
        variant of a compiled stepping loop explicitly.
        """
        t0 = time.perf_counter()
        m = self.kernel.module
        small = (self.padded_shape[0], *(2 * g + 2 for g in self.layout.ghost))
        # the coordinates of the tiny grid's two cells per axis: a right-hand side that reads
        # x (or r) broadcasts them against its values (numpy target)
        args = (self.p, self.h, *(np.ascontiguousarray(c[:2]) for c in self.coords))
        W, B, dom, *padded_coords = self._closures()
        tiny_closures = (W, B, dom, *(np.ascontiguousarray(c[: 2 + 2 * g])
                                      for c, g in zip(padded_coords, self.layout.ghost)))
        zeros = lambda: np.zeros(small, dtype=self.dtype)  # noqa: E731 (the states' precision)
        S, Y, Z = (zeros() for _ in range(3))
        if self._advance is not None:
            self.kernel.module.FILL(S, 0.0, self.p, *tiny_closures)
        for kind in kinds:
            if kind == "rhs":
                self._rhs(S, np.zeros((self.nfields, *(2,) * self.grid.dim), dtype=self.dtype), 0.0, *args)
            elif kind == "stage_axpy" and self._stage_axpy is not None:
                self._stage_axpy(S, S, Y, 0.0, 0.0, 1.0, 0.0, *args)
            elif kind == "stage_two" and self._stage_two is not None:
                self._stage_two(S, S, S, Y, Z, 0.0, 0.0, 0.0, *args)
            elif kind == "jac":
                self._jac(S, np.zeros((len(m.JAC_ENTRIES), *(2,) * self.grid.dim), dtype=self.dtype), 0.0, *args)
            elif kind.split(":")[0] in ("euler", "ssprk3", "rk4") and self.has_compiled_stepping:
                method, _, variant = kind.partition(":")
                variant, _, loop = variant.partition(":")  # "euler:serial:wave": that serial loop
                n = {"euler": 2, "ssprk3": 3, "rk4": 5}[method]
                parallel = self.parallel if not variant else variant == "parallel"
                loop = self._loop_kind(method, parallel) if (not loop or parallel) else loop
                self._advance[(method, parallel)](
                    *[zeros() for _ in range(n)], 0.0, 0.0, 1, *args, *tiny_closures)
                if loop == "wave":  # this grid sweeps wavefronts
                    m.WAVE[parallel](*[zeros() for _ in range(n)], 0.0, 0.0, 0, *args, *tiny_closures,
                                     2, np.array([0, 2], dtype=np.int64), 1)
                elif loop == "tiled":  # this grid steps tiled: compile that too
                    cells = tuple(s - 2 * g for s, g in zip(small[1:], self.layout.ghost))
                    tiny = tiling_for(cells, tuple(self.layout.ghost), self._periodic_axes(), method, 1, cells)
                    m.TILED[(method, parallel)](*[zeros() for _ in range(n)], 0.0, 0.0, 2, *args,
                                                *tiny_closures, *tiny.args, 1)
        return time.perf_counter() - t0

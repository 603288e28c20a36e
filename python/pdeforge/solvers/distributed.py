"""One finite-difference run across the ranks of an MPI communicator: a family of the run driver.

:class:`DistributedFiniteDifferences` is the finite-difference family
(:class:`~pdeforge.solvers.finite_differences.FiniteDifferences`) on one rank's block of the
grid: each rank binds the same generated kernels to its block
(:class:`~pdeforge.parallel.block.BlockKernel`), steps it with the same Runge-Kutta stepper a
single process uses, and exchanges halos inside every ghost fill; the step size, the error norm
of rk45 and the blow-up check are reductions over all ranks, so every rank takes the same
steps. Resume (each rank reads its block of the store's last frame), attributes, the output
store, frames, signals and the end of the run are the one driver's
(:func:`pdeforge.solvers.run.pipeline.execute`).

What runs distributed: finite differences (backends "numba" and "numpy", float64), coefficient
fields and ODE-PDE systems (scalars, ``integral``, ``mean``:
:class:`pdeforge.solvers.distributed_coupled.DistributedCoupled`) included, with the explicit
methods euler, ssprk3, rk4 and rk45, written to one zarr store that a later run continues with
``resume=True``; and the pseudo-spectral discretization (backend "numpy", float64 or float32,
every spectral method, resume included; mpi4py-fft's distributed FFTs:
:class:`pdeforge.solvers.spectral.distributed.DistributedSpectral`). The rest is refused before
any work is done.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.solvers.finite_differences import (
    FiniteDifferences,
    choose_dt,
    compile_kernel,
    make_stepper,
)
from pdeforge.solvers.run.initial import block_initial_state as local_initial_state
from pdeforge.solvers.run.pipeline import Job
from pdeforge.solvers.run.ranks import OnRanks

#: What a message about an unsupported option says runs distributed.
WHAT_RUNS = ("under more than one MPI rank, finite differences (coefficient fields, scalars, integral() and "
             "mean() included) with backend 'numba' or 'numpy' and the explicit methods euler, ssprk3, rk4 and rk45, "
             "written to one zarr store that resume=True continues, and the spectral discretization with backend "
             "'numpy' (every spectral method, float64 or float32; resume too) run distributed")


def refuse(what: str) -> SolverError:
    """The error for an option that does not run on several ranks."""
    return SolverError(f"{what} runs on one process only; {WHAT_RUNS} (run it without mpiexec, or with -n 1)")


def run_communicator(discretization) -> Any | None:
    """The communicator of a run with ``discretization`` (None: one process).

    ``FiniteDifference(comm=...)`` names it; otherwise ``COMM_WORLD`` when the process was
    started by an MPI launcher with more than one rank. mpi4py is imported only then.
    """
    from pdeforge.parallel.comm import communicator

    return communicator(getattr(discretization, "comm", None))


def check_distributable(family: str, job: Job) -> None:
    """Refuse what does not run distributed, naming what does (``family``: the one chosen)."""
    system, m, backend = job.system, job.method, job.backend
    if family == "spectral":
        if backend.name != "numpy":
            raise refuse(f"the spectral discretization with backend {backend.name!r}")
        return
    if system.noise:
        raise refuse("a system with noise")
    if backend.name not in ("numba", "numpy"):
        raise refuse(f"backend {backend.name!r}")
    if backend.settings().get("dtype", "float64") != "float64":
        raise refuse(f"dtype {backend.dtype!r}")
    if m.kind not in ("fixed", "adaptive"):
        raise refuse(f"method {m.name!r} ({m.kind})")


def store_path(path):
    """The checked ``.zarr`` path of a distributed run's output (None: memory only)."""
    from pdeforge.solvers.run.output import check_store_path

    return None if path is None else check_store_path(path)


def periodic_axes(system) -> tuple[bool, ...]:
    """Per axis, whether every field is periodic along it (only then does the process grid wrap)."""
    out = []
    for a in range(system.dim):
        kinds = {bc.periodic for (f, ax), pair in system.bcs.items() if ax == a for bc in pair}
        out.append(kinds == {True})
    return tuple(out)


def gather_cells(decomposition, cells: np.ndarray, root: int | None = None) -> np.ndarray | None:
    """The global cell array from every rank's block: on every rank (``root=None``) or on ``root``.

    The blocks travel as raw buffers (``Allgatherv``/``Gatherv``), not pickled."""
    comm = decomposition.comm
    part = np.ascontiguousarray(cells)
    places = [decomposition.block_of(rank) for rank in range(comm.Get_size())]
    shapes = [(cells.shape[0], *(s.stop - s.start for s in where)) for where in places]
    counts = [int(np.prod(shape)) for shape in shapes]
    here = root is None or comm.Get_rank() == root
    flat = np.empty(sum(counts), dtype=part.dtype) if here else None
    if root is None:
        comm.Allgatherv(part, [flat, counts])
    else:
        comm.Gatherv(part, [flat, counts] if here else None, root=root)
    if not here:
        return None
    out = np.empty((cells.shape[0], *decomposition.grid.shape), dtype=cells.dtype)
    start = 0
    for where, shape, count in zip(places, shapes, counts):
        out[(slice(None), *where)] = flat[start:start + count].reshape(shape)
        start += count
    return out


def not_checked(m) -> bool:
    """Whether fixed-step method ``m`` has a given step that nothing is checked against
    (``stability="ignore"``): then no rank ever holds the whole state."""
    return m.dt is not None and m.setting("stability", "warn") == "ignore"


def on_rank_zero(comm, fn):
    """``fn()`` on rank 0, its result (or its :class:`SolverError`, raised) on every rank."""
    result = None
    if comm.Get_rank() == 0:
        try:
            result = fn()
        except SolverError as exc:
            result = exc
    result = comm.bcast(result, root=0)
    if isinstance(result, Exception):
        raise result
    return result


def decompose_for(job: Job, comm, grid, kernels) -> Any:
    """The process grid of ``job`` for compiled ``kernels`` (the widest ghost and boundary
    closure of any of them sets the narrowest block)."""
    from pdeforge.parallel.decomposition import decompose

    ghost = [max(k.ghost[a] for k in kernels) for a in range(grid.dim)]
    widths = [max(ghost[a], *(k.module.CLOSURE_POINTS for k in kernels)) for a in range(grid.dim)]
    return decompose(grid, comm, ghost, periodic_axes(job.system), job.discretization.decomposition,
                     widths=widths)


class OnBlocks(OnRanks):
    """:class:`~pdeforge.solvers.run.ranks.OnRanks` for families stepping a block of a
    finite-difference grid: frames gathered from the blocks, and the attributes of the whole
    run (the slowest rank's wall time, halo traffic)."""

    def gather(self, block: np.ndarray) -> np.ndarray:
        """A frame from this rank's ``block``: the whole one where frames are kept in memory."""
        return gather_cells(self.decomposition, block) if self.gather_frames else block

    def rank_attributes(self, blocks) -> dict:
        """Ranks and process grid of the run (``blocks``: the kernels bound to this rank's block,
        whose halo traffic is counted)."""
        self.bound_blocks = list(blocks)
        return dict(mpi_ranks=self.comm.Get_size(), decomposition="x".join(map(str, self.decomposition.dims)))

    def after(self, run) -> dict:
        attrs = super().after(run)
        steps = max(int(self.stepper.steps), 1)
        messages = sum(b.halo.counters.messages for b in self.bound_blocks)
        sent = sum(b.halo.counters.bytes for b in self.bound_blocks)
        loading = getattr(self.stepper, "compile_s", 0.0)
        attrs.update(wall_time_s=self.reductions.max(run.wall_s - loading),
                     halo_messages_per_step=messages / steps, halo_bytes_per_step=sent / steps)
        return attrs


class DistributedFiniteDifferences(OnBlocks, FiniteDifferences):
    """The finite-difference family on this rank's block of a grid decomposed over ``comm``.

    Callbacks see the whole state on every rank.
    """

    def prepare(self, inputs, restart, done) -> dict:
        from pdeforge.parallel.block import BlockKernel
        from pdeforge.parallel.comm import one_rank_first

        job, comm = self.job, self.comm
        system, grid, m, backend = job.system, inputs.grid, job.method, job.backend
        order, scheme = job.discretization.order, job.discretization.scheme or "fd"
        # rank 0 generates the module and Numba's machine code into the disk caches, the others load them
        kernel = one_rank_first(comm, lambda: compile_kernel(system, backend, order, scheme))
        self.decomposition = decompose_for(job, comm, grid, [kernel])
        bound = BlockKernel(kernel, self.decomposition)
        self.reductions = bound.rank_reductions
        dt = m.dt
        self.report = {}
        if restart is not None:  # each rank reads its block of the store's last complete frame
            cells0 = restart.block(self.decomposition.block.slices)
            if not self.reductions.all_finite(cells0):
                raise SolverError(f"resume {str(restart.path)!r}: its last complete frame is not finite; it cannot "
                                  "be resumed (run without resume to start anew)")
            dt = self.resumed_dt(restart, inputs, m, dt)
        else:
            cells0 = local_initial_state(system, self.decomposition, job.ic)
        if m.kind == "fixed" and restart is None and not_checked(m):
            self.report = {"dt_rule": "given"}  # nothing to check it against: the whole state is never gathered
        elif m.kind == "fixed" and restart is None:  # the stability estimate reads the whole state: on rank 0, then shared
            whole = gather_cells(self.decomposition, cells0, root=0)

            def estimate():
                report: dict = {}
                # the accuracy estimate steps the whole state, as one process does
                whole_bound = kernel.bind(grid) if m.setting("rtol") is not None and dt is None else None
                return choose_dt(system, grid, kernel, whole, inputs, m, dt, order, scheme, bound=whole_bound,
                                 report=report), report

            dt, self.report = on_rank_zero(comm, estimate)
            del whole
        self.cell_shape = bound.cell_shape
        self.cells0 = cells0
        self.bound = bound
        self.stepper = make_stepper(backend.name, m, bound, cells0, inputs, dt)
        one_rank_first(comm, lambda: bound.warm_up(self.stepper.kernels_used()))
        attrs = self._attributes(system, backend, bound, kernel, m, dt, order, scheme)
        attrs.update(self.step_attributes(inputs, m, dt))
        attrs.update(self.rank_attributes([bound]))
        return attrs

    def on_frame(self, t, state, fresh: bool = False) -> np.ndarray:
        return self.gather(state if fresh else np.array(state, copy=True))

    def fields(self) -> dict[str, np.ndarray]:
        cells = gather_cells(self.decomposition, self.frame())
        return {f: cells[i] for i, f in enumerate(self.job.system.fields)}

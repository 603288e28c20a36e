"""One finite-difference run across the ranks of an MPI communicator.

Each rank binds the same generated kernels to its block of the grid
(:class:`~pdeforge.parallel.block.BlockKernel`), steps it with the same Runge-Kutta stepper a
single process uses, and exchanges halos inside every ghost fill; the step size, the error norm
of rk45 and the blow-up check are reductions over all ranks, so every rank takes the same
steps. What runs distributed: finite differences (backends "numba" and "numpy") with the
explicit methods euler, ssprk3, rk4 and rk45. The rest is refused before any work is done.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from pdeforge.errors import SolverError

#: What a message about an unsupported option says runs distributed.
WHAT_RUNS = ("under more than one MPI rank, finite differences with backend 'numba' or 'numpy' and the "
             "explicit methods euler, ssprk3, rk4 and rk45 run distributed")


def refuse(what: str) -> SolverError:
    """The error for an option that does not run on several ranks."""
    return SolverError(f"{what} runs on one process only; {WHAT_RUNS} (run it without mpiexec, or with -n 1)")


def check_distributable(system, method, backend: str | None, discretization: str, options: Mapping[str, Any]) -> None:
    """Refuse what does not run distributed, naming what does."""
    if system.is_complex:
        raise refuse("a complex system")
    if discretization == "spectral":
        raise refuse("the spectral discretization")
    if system.noise:
        raise refuse("a system with noise")
    if backend not in (None, "numba", "numpy"):
        raise refuse(f"backend {backend!r}")
    if method is not None and method.kind not in ("fixed", "adaptive"):
        raise refuse(f"method {method.name!r} ({method.kind})")
    for name in ("closures", "torch_compile", "resume"):
        if options.get(name):
            raise refuse(f"{name}=")
    if options.get("dtype") not in (None, "float64"):
        raise refuse(f"dtype {options.get('dtype')!r}")


def periodic_axes(system) -> tuple[bool, ...]:
    """Per axis, whether every field is periodic along it (only then does the process grid wrap)."""
    out = []
    for a in range(system.dim):
        kinds = {bc.periodic for (f, ax), pair in system.bcs.items() if ax == a for bc in pair}
        out.append(kinds == {True})
    return tuple(out)


def local_initial_state(system, decomposition, ic) -> np.ndarray:
    """This rank's block of the initial condition: arrays of the global grid are cut, callables
    and expressions are evaluated on the block's own coordinates."""
    from pdeforge.solvers.run.initial import initial_state

    ic = system.ic if ic is None else ic
    grid, block = decomposition.grid, decomposition.block
    if isinstance(ic, Mapping):
        ic = {f: (np.asarray(v)[block.slices] if isinstance(v, np.ndarray) and v.shape == grid.shape else v)
              for f, v in ic.items()}
    return initial_state(system, block, ic)


def gather_cells(decomposition, cells: np.ndarray, root: int | None = None) -> np.ndarray | None:
    """The global cell array from every rank's block: on every rank (``root=None``) or on ``root``."""
    comm = decomposition.comm
    parts = comm.allgather(np.ascontiguousarray(cells)) if root is None else comm.gather(np.ascontiguousarray(cells), root=root)
    if parts is None:
        return None
    out = np.empty((cells.shape[0], *decomposition.grid.shape), dtype=cells.dtype)
    for rank, part in enumerate(parts):
        out[(slice(None), *decomposition.block_of(rank))] = part
    return out


def solve_distributed(helpers, comm, system, inputs, m, ic, dt, dt_max, backend: str, order: int, simplifier: str,
                      scheme: str, stability: str, rtol: float, atol: float, progress, out, in_memory: bool,
                      variable_attrs, call: str, dims=None):
    """Run ``system`` on the ranks of ``comm`` and return the Dataset (the same on every rank).

    Args:
        helpers: the one-process solver's ``(choose_dt, stepper, attributes)`` functions (the
            same step choice, stepper and attributes as one process).
        comm: the communicator (more than one rank).
        inputs: the checked run inputs (:func:`pdeforge.solvers.run.inputs.run_inputs`, without
            an output path: ``out`` is the zarr store).
        m: the method; dims: blocks per axis (None: ``MPI.Compute_dims``).
        Others: as :func:`pdeforge.solvers.solve.solve`.
    """
    from pdeforge.codegen.build import check_target, compile_system
    from pdeforge.parallel.block import BlockKernel
    from pdeforge.parallel.comm import one_rank_first
    from pdeforge.parallel.decomposition import decompose
    from pdeforge.parallel.store import ZarrWriter, check_store_path
    from pdeforge.solvers.run.driver import finish, march
    from pdeforge.solvers.run.frames import Frames
    from pdeforge.solvers.run.output import coordinate_attrs, field_attrs, to_dataset
    _choose_dt, _stepper, _attributes = helpers

    rank = comm.Get_rank()
    out_path = check_store_path(out) if out is not None else None
    if not in_memory and out_path is None:
        raise SolverError("in_memory=False needs an output store (out='run.zarr')")
    grid = inputs.grid
    check_target(backend)
    t_compile = time.perf_counter()
    # rank 0 generates the module and Numba's machine code into the disk caches, the others load them
    kernel = one_rank_first(comm, lambda: compile_system(system, target=backend, order=order,
                                                         simplifier=simplifier, scheme=scheme))
    decomposition = decompose(grid, comm, kernel.ghost, periodic_axes(system), dims,
                              widths=[max(kernel.ghost[a], kernel.module.CLOSURE_POINTS) for a in range(grid.dim)])
    bound = BlockKernel(kernel, decomposition)
    cells0 = local_initial_state(system, decomposition, ic)
    if m.kind == "fixed":  # the stability estimate reads the whole state: on rank 0, then shared
        whole = gather_cells(decomposition, cells0, root=0)
        result = None
        if rank == 0:
            try:
                result = _choose_dt(system, grid, kernel, whole, inputs, m, dt, dt_max, order, scheme, stability)
            except SolverError as exc:
                result = exc
        del whole
        result = comm.bcast(result, root=0)
        if isinstance(result, Exception):
            raise result
        dt = result
    stepper = _stepper(backend, m, bound, cells0, inputs, dt, dt_max, rtol, atol)
    one_rank_first(comm, lambda: bound.warm_up(stepper.kernels_used()))
    compile_time = system.parse_time_s + time.perf_counter() - t_compile
    attrs = _attributes(system, grid, backend, bound, kernel, m, dt, order, scheme, compile_time, rtol, atol)
    attrs.update(call=call, save_every=float(inputs.times[1] - inputs.times[0]) if len(inputs.times) > 1 else float("nan"),
                 mpi_ranks=comm.Get_size(), decomposition="x".join(map(str, decomposition.dims)))
    attrs.pop("dtype", None) if backend != "numba" else None
    writer = None
    if out_path is not None:
        writer = ZarrWriter(out_path, decomposition, system.fields, inputs.times, attrs | {"status": "running"},
                            coordinate_attrs, field_attrs, variable_attrs, stepper.restart_state)
    frames = Frames(writer, in_memory, bound.cell_shape)
    frames.record(inputs.t0, cells0, copy=True)
    del cells0
    current = stepper.cells
    run = march(stepper, inputs.times, lambda t: frames.record(t, current()), frames.keep_last_good,
                system.name, progress if rank == 0 else False, str(out_path) if writer else None,
                reductions=bound.reductions)
    counters = bound.halo.counters
    attrs.update(steps=int(stepper.steps), wall_time_s=bound.reductions.max(run.wall_s), status=run.status,
                 halo_messages_per_step=counters.messages / max(stepper.steps, 1),
                 halo_bytes_per_step=counters.bytes / max(stepper.steps, 1))
    attrs.update(stepper.run_statistics())
    final_t = stepper.t
    del stepper, current

    def dataset():
        if not in_memory:
            import xarray as xr

            return xr.open_zarr(str(out_path))
        states = [gather_cells(decomposition, s) for s in frames.states]
        return to_dataset(grid, system.fields, frames.times, states, attrs, variable_attrs)

    return finish(writer, attrs, dataset, out_path, run, final_t, len(frames))

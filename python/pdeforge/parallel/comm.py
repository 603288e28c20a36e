"""Which communicator a run uses, and the few things only one rank should do.

A run is distributed when it is given a communicator of more than one rank, or when the
process was started by an MPI launcher with more than one rank (``mpiexec -n P``, ``srun``):
the launcher's environment says so without importing mpi4py, so a plain ``python script.py``
never loads MPI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pdeforge.errors import SolverError

T = TypeVar("T")

#: Environment variables by which MPI launchers give the number of ranks (MPICH/Hydra, Open MPI,
#: PMIx, Slurm's srun).
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


def launched_size() -> int:
    """Number of ranks the launcher started this process among (1 outside a launcher)."""
    for name in SIZE_VARIABLES[:3]:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    if os.environ.get("SLURM_STEP_ID") is not None and os.environ.get("SLURM_NTASKS", "").isdigit():
        return int(os.environ["SLURM_NTASKS"])  # srun sets PMI_SIZE too with PMI-2; this is the fallback
    return 1


#: Environment variables by which MPI launchers give this process's rank.
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def launched_rank() -> int:
    """This process's rank among those the launcher started (0 outside a launcher), read from
    the environment: messages of a command-line run come from rank 0 without loading MPI."""
    if launched_size() <= 1:
        return 0
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    value = os.environ.get("SLURM_PROCID", "")
    return int(value) if value.isdigit() else 0


def mpi():
    """The ``mpi4py.MPI`` module, with a clear message where it is missing."""
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise SolverError(
            "a distributed run needs mpi4py and an MPI library: pip install 'pdeforge[mpi]' "
            f"(mpi4py and mpich), or mpi4py built against the cluster's MPI ({exc})"
        ) from None
    return MPI


def communicator(comm: Any = None) -> Any | None:
    """The communicator of a run, or None for a single process.

    Args:
        comm: an ``mpi4py`` communicator (a run on exactly its ranks), or None: ``COMM_WORLD``
            when the process was launched with more than one rank, else no MPI at all.

    A communicator of one rank is a single-process run too (None).
    """
    if comm is None:
        if launched_size() <= 1:
            return None
        comm = mpi().COMM_WORLD
    elif not hasattr(comm, "Get_size"):
        raise SolverError(f"comm: expected an mpi4py communicator, got {type(comm).__name__}")
    return comm if comm.Get_size() > 1 else None


def rank_of(comm: Any | None) -> int:
    """This process's rank in ``comm`` (0 without one)."""
    return 0 if comm is None else comm.Get_rank()


def say(comm: Any | None, *args: object, file=None, **kwargs: Any) -> None:
    """``print`` on rank 0 only (every process when ``comm`` is None)."""
    if rank_of(comm) == 0:
        print(*args, file=file if file is not None else sys.stdout, **kwargs)


def one_rank_first(comm: Any | None, fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0, then on the other ranks, with a barrier between.

    For steps that write a disk cache (the generated kernel modules, Numba's machine code):
    rank 0 builds and writes it, the others then load what it wrote instead of racing it.
    An error on rank 0 is raised on every rank.
    """
    if comm is None:
        return fn()
    error = None
    if comm.Get_rank() == 0:
        try:
            result = fn()
        except Exception as exc:  # re-raised below, after the others know
            error = exc
    failed = comm.bcast(None if error is None else f"{type(error).__name__}: {error}", root=0)
    if error is not None:
        raise error
    if failed is not None:
        raise SolverError(f"rank 0 failed while building the kernels: {failed}")
    if comm.Get_rank() != 0:
        result = fn()
    return result

"""Reductions over every rank of a run: sums (integrals, means, norms), minima (the step
size), and the blow-up check, so that every rank takes the same decision at the same step.

With ``comm=None`` (one process) each reduction is the local value: the steppers call the
same methods either way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Reductions:
    """Allreduce helpers on ``comm`` (None: one process, the local values)."""

    def __init__(self, comm: Any | None = None):
        self.comm = comm

    @property
    def distributed(self) -> bool:
        return self.comm is not None

    def _op(self, name: str):
        from pdeforge.parallel.comm import mpi

        return getattr(mpi(), name)

    def sum(self, value: float) -> float:
        """Sum of ``value`` over the ranks (partial integrals, sums of squares, cell counts)."""
        if self.comm is None:
            return value
        return self.comm.allreduce(value, op=self._op("SUM"))

    def sum_array(self, values: np.ndarray) -> np.ndarray:
        """Elementwise sum over the ranks of an array of the same shape on every rank."""
        values = np.ascontiguousarray(values, dtype=float)
        if self.comm is None:
            return values
        out = np.empty_like(values)
        self.comm.Allreduce(values, out, op=self._op("SUM"))
        return out

    def min(self, value: float) -> float:
        """Smallest ``value`` over the ranks (a stable step is the smallest of the blocks' ones)."""
        if self.comm is None:
            return value
        return self.comm.allreduce(value, op=self._op("MIN"))

    def max(self, value: float) -> float:
        """Largest ``value`` over the ranks."""
        if self.comm is None:
            return value
        return self.comm.allreduce(value, op=self._op("MAX"))

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on some rank (a stop request, a failure)."""
        if self.comm is None:
            return bool(flag)
        return bool(self.comm.allreduce(int(bool(flag)), op=self._op("MAX")))

    def first(self, value):
        """The value of the lowest rank that has one (not None), the same on every rank (a stop
        asked for by a callback on some rank)."""
        if self.comm is None:
            return value
        return next((v for v in self.comm.allgather(value) if v is not None), None)

    def all_finite(self, cells: np.ndarray) -> bool:
        """Whether every rank's ``cells`` are finite (a blow-up anywhere stops every rank)."""
        return not self.any(not math.isfinite(float(np.sum(cells))))

    def mean(self, values: np.ndarray) -> float:
        """Mean of ``values`` over all ranks' cells (each rank passes its own block)."""
        return self.sum(float(np.sum(values))) / self.sum(int(np.size(values)))

    def rms(self, values: np.ndarray) -> float:
        """Root mean square over all ranks' cells (the error norm of adaptive steps)."""
        return math.sqrt(self.sum(float(np.sum(np.square(values)))) / self.sum(int(np.size(values))))


class ReplicatedTail(Reductions):
    """Reductions of a flat state ``[block cells, values held alike by every rank]`` (an
    ODE-PDE system's scalars): norms count those values once, on rank 0, as one process does.

    Args:
        comm: the communicator.
        size: length of this rank's flat state.
        tail: how many values at its end every rank holds alike.
    """

    def __init__(self, comm: Any, size: int, tail: int):
        super().__init__(comm)
        self.size, self.tail = int(size), int(tail)

    def _own(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if self.tail and self.comm.Get_rank() != 0 and values.size == self.size:
            return values.reshape(-1)[: self.size - self.tail]
        return values

    def mean(self, values: np.ndarray) -> float:
        return super().mean(self._own(values))

    def rms(self, values: np.ndarray) -> float:
        return super().rms(self._own(values))


#: The reductions of a one-process run.
LOCAL = Reductions(None)

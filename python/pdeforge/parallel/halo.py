"""Ghost layers of padded blocks exchanged with the neighbouring ranks.

A padded block has shape ``(rows, n0 + 2*g0, n1 + 2*g1, ...)`` (the layout of
:mod:`pdeforge.discretize.padding`). Along each split axis in turn, the ``g`` outermost cell
layers on each side go to the neighbour there and its layers come back into the ghosts. Each
message spans the full padded extent of the other axes, so after the axes are exchanged in
order the corner and edge ghosts hold the diagonal neighbours' cells (what mixed derivatives
read) without diagonal messages. Periodic axes wrap: the first and last block are neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pdeforge.parallel.decomposition import Decomposition

#: Message tags of the two directions (towards the high side, towards the low side).
_UP, _DOWN = 11, 12


@dataclass
class HaloCounters:
    """What the exchanges of one rank cost: messages and bytes sent, seconds spent."""

    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    exchanges: int = 0


class HaloExchange:
    """Exchange the ghost layers of padded blocks of one shape along the split axes.

    Args:
        decomposition: the process grid and this rank's neighbours.
        ghost: ghost layers per axis.
        padded: the padded extent per axis (an array may be wider along its last axis, as the
            line-aligned arrays of the compiled loops are: those columns are not sent).
        rows: how many leading rows (fields) to exchange; the rest (coefficient fields) keep
            their values.
    """

    def __init__(self, decomposition: Decomposition, ghost: Sequence[int], padded: Sequence[int], rows: int):
        self.decomposition = decomposition
        self.ghost = tuple(int(g) for g in ghost)
        self.padded = tuple(int(m) for m in padded)
        self.rows = int(rows)
        self.counters = HaloCounters()
        self.axes = decomposition.split_axes()
        for a in range(len(self.padded)):
            if self.padded[a] - 2 * self.ghost[a] < self.ghost[a] and a in self.axes:
                raise ValueError(f"halo: a block of {self.padded[a] - 2 * self.ghost[a]} cells along axis {a} "
                                 f"is narrower than its {self.ghost[a]} ghost layers")
        self._buffers = {}
        for a in self.axes:
            shape = (self.rows, *(self.ghost[a] if b == a else m for b, m in enumerate(self.padded)))
            self._buffers[a] = [np.empty(shape) for _ in range(4)]

    def _slab(self, a: int, lo: int, hi: int) -> tuple:
        return (slice(0, self.rows), *(slice(lo, hi) if b == a else slice(0, m) for b, m in enumerate(self.padded)))

    def exchange_axis(self, U: np.ndarray, a: int) -> None:
        """Exchange the ghost layers of ``U`` along axis ``a`` with the two neighbours there."""
        import time

        from pdeforge.parallel.comm import mpi

        MPI = mpi()
        comm = self.decomposition.comm
        low, high = self.decomposition.neighbours[a]
        g = self.ghost[a]
        n = self.padded[a] - 2 * g
        send_lo, send_hi, recv_lo, recv_hi = self._buffers[a]
        if send_lo.dtype != U.dtype:
            self._buffers[a] = [np.empty(b.shape, dtype=U.dtype) for b in self._buffers[a]]
            send_lo, send_hi, recv_lo, recv_hi = self._buffers[a]
        started = time.perf_counter()
        # both receives are posted before either send, and the four messages travel at once:
        # one latency per axis rather than two
        requests = [comm.Irecv(recv_lo, source=low, tag=_UP), comm.Irecv(recv_hi, source=high, tag=_DOWN)]
        np.copyto(send_hi, U[self._slab(a, n, n + g)])
        # towards the high side: my last layers become the high neighbour's low ghosts
        requests.append(comm.Isend(send_hi, dest=high, tag=_UP))
        np.copyto(send_lo, U[self._slab(a, g, 2 * g)])
        requests.append(comm.Isend(send_lo, dest=low, tag=_DOWN))
        MPI.Request.Waitall(requests)
        if low != MPI.PROC_NULL:
            U[self._slab(a, 0, g)] = recv_lo
        if high != MPI.PROC_NULL:
            U[self._slab(a, n + g, n + 2 * g)] = recv_hi
        sent = (low != MPI.PROC_NULL) + (high != MPI.PROC_NULL)
        self.counters.messages += sent
        self.counters.bytes += sent * send_lo.nbytes
        self.counters.seconds += time.perf_counter() - started

    def exchange(self, U: np.ndarray) -> None:
        """Exchange along every split axis in order (corners through the sequence)."""
        for a in self.axes:
            self.exchange_axis(U, a)
        self.counters.exchanges += 1

    def bytes_per_exchange(self) -> int:
        """Bytes this rank sends in one :meth:`exchange` of float64 blocks."""
        from pdeforge.parallel.comm import mpi

        null = mpi().PROC_NULL
        total = 0
        for a in self.axes:
            per = int(np.prod(self._buffers[a][0].shape)) * 8
            total += per * sum(nb != null for nb in self.decomposition.neighbours[a])
        return total

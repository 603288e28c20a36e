"""The frames of a run: kept in memory and/or appended to the output file as they come."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pdeforge.solvers.run.output import NetCDFWriter
from pdeforge.solvers.stepping import BlowUp


class Frames:
    """Output times and states of one run.

    Args:
        writer: the open output file, or None.
        in_memory: keep a copy of every frame (else only the file has them).
        cell_shape: shape of one state ``(fields, *grid.shape)``.
        on_record: called as ``on_record(t, cells)`` after each frame is recorded (the
            spectral solver writes its flow diagnostics there).
    """

    def __init__(self, writer: NetCDFWriter | None, in_memory: bool, cell_shape: tuple[int, ...],
                 on_record: Callable[[float, np.ndarray], None] | None = None):
        self.writer = writer
        self.in_memory = in_memory
        self.cell_shape = cell_shape
        self.on_record = on_record
        self.times: list[float] = []
        self.states: list[np.ndarray] = []
        self.earlier = 0

    def continue_from(self, t: float, frames: int) -> None:
        """Continue a run whose ``frames`` frames, the last at ``t``, are already in the file."""
        self.times = [float(t)]
        self.earlier = frames - 1

    def record(self, t: float, cells: np.ndarray, copy: bool = True) -> None:
        """Keep the state ``cells`` at time ``t`` (a copy unless ``copy=False``)."""
        self.times.append(float(t))
        if self.in_memory:
            self.states.append(np.array(cells, copy=True) if copy else cells)
        if self.writer is not None:
            self.writer.append(t, cells)
        if self.on_record is not None:
            self.on_record(t, cells)

    def keep_last_good(self, exc: BlowUp, record: Callable[[float, np.ndarray], None] | None = None) -> float:
        """Record the last finite state of a blow-up (if newer than the last frame); its time."""
        if exc.t > self.times[-1]:
            good = np.asarray(exc.cells).reshape(self.cell_shape)
            (record or (lambda t, c: self.record(t, c, copy=False)))(exc.t, good)
        return self.times[-1]

    def __len__(self) -> int:
        return self.earlier + len(self.times)

"""SIGINT (Ctrl-C) and SIGTERM (what Slurm and PBS send at a job's time limit) end a run alike.

Inside :class:`StopOnSignals` either signal raises :class:`Stopped` (a ``KeyboardInterrupt``,
so every ``except KeyboardInterrupt`` path handles it) at once, except inside
:meth:`StopOnSignals.critical` (writing a frame), where it waits for the block's end: a frame
is either written whole or not begun. Handlers are installed only in the main thread (the only
one Python delivers signals to) and the previous ones are restored on exit.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

#: Exit status of a run stopped by each signal (128 + the signal number, as shells report it).
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Stopped(KeyboardInterrupt):
    """A run was stopped by ``signum`` (SIGINT or SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def signal_of(exc: BaseException) -> int:
    """The signal that stopped a run: ``exc.signum`` when it carries one, else SIGINT (plain Ctrl-C)."""
    return int(getattr(exc, "signum", signal.SIGINT))


def signal_name(signum: int) -> str:
    """``"SIGTERM"``, ``"SIGINT"``."""
    return signal.Signals(signum).name


class StopOnSignals:
    """Turn SIGINT and SIGTERM into :class:`Stopped`, deferred while inside :meth:`critical`.

    With ``defer=True`` (a run on several MPI ranks) a signal is only recorded in
    :attr:`pending`: the ranks agree at the next frame to stop together (:meth:`agree`), so
    that none is left waiting for a halo from a rank that stopped mid-step.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, defer: bool = False):
        self.active = threading.current_thread() is threading.main_thread()
        self.defer = defer
        self.in_critical = False
        self.pending: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignals:
        if self.active:
            for s in self.SIGNALS:
                self.previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
        return False

    def _handler(self, signum, frame):
        if self.in_critical or self.defer:
            self.pending = signum
        else:
            raise Stopped(signum)

    @contextmanager
    def critical(self):
        """A block that a signal does not cut: the signal is raised when the block ends."""
        if self.in_critical:  # nested: the outer block raises
            yield
            return
        self.in_critical = True
        try:
            yield
        finally:
            self.in_critical = False
        if self.pending is not None and not self.defer:
            signum, self.pending = self.pending, None
            raise Stopped(signum)

    def agree(self, largest) -> None:
        """Raise :class:`Stopped` on every rank if a signal reached any (``largest``: the
        maximum over the ranks, :meth:`pdeforge.parallel.reduce.Reductions.max`)."""
        signum = int(largest(self.pending or 0))
        if signum:
            self.pending = None
            raise Stopped(signum)

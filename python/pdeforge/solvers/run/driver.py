"""The output loop every solver shares: step to each output time, keep frames, stop cleanly.

A blow-up stops the run with the last finite state kept as the last frame; Ctrl-C or SIGTERM
stops it with every computed frame kept (a frame being written is finished first, one being
computed is dropped); either way the file (if any) is closed with the run's status
and the Dataset of what was computed is returned (or carried by :class:`RunInterrupted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pdeforge.errors import BlowUpWarning, RunInterrupted, warn
from pdeforge.solvers.run.callbacks import Callback, StopRun
from pdeforge.solvers.run.signals import StopOnSignals, signal_name, signal_of
from pdeforge.solvers.stepping import BlowUp


class _Bar:
    def __init__(self, bar, t0):
        self.bar = bar
        self.t0 = t0
        self.last = t0

    def update_to(self, t: float) -> None:
        self.bar.update(t - self.last)
        self.last = t

    def close(self) -> None:
        self.bar.close()


class _LogLines:
    """Progress for a log file: a plain line at each tenth of the run, no ``\\r`` updates.

    A terminal's bar rewrites one line hundreds of times; in a file (a batch job's stderr) each
    rewrite would stay, so a run that is not watched gets a few lines it can be grepped for.
    """

    def __init__(self, t0: float, t1: float, delay: float, stream):
        self.t0, self.t1, self.delay, self.stream = t0, t1, delay, stream
        self.started = time.perf_counter()
        self.next_tenth = 1

    def update_to(self, t: float) -> None:
        span = self.t1 - self.t0
        done = (t - self.t0) / span if span > 0 else 1.0
        elapsed = time.perf_counter() - self.started
        if done * 10 < self.next_tenth or elapsed < self.delay:
            return
        self.next_tenth = int(done * 10) + 1
        left = elapsed * (1 - done) / done if done > 0 else float("nan")
        print(f"pdeforge: t = {t:.4g} of {self.t1:.4g} ({100 * done:.0f}%), {elapsed:.1f} s, about {left:.0f} s left",
              file=self.stream, flush=True)

    def close(self) -> None:
        """Nothing to close: the lines are already written."""


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_bar(progress: bool | None, t0: float, t1: float):
    """Progress over model time (shown after 2 s unless ``progress`` is True; none if False).

    A terminal gets a tqdm bar, a Jupyter notebook tqdm's widget (``tqdm.auto``), and a stderr
    that is neither (a log file, a pipe) a plain line at each tenth of the run.
    """
    import sys

    if progress is False:
        return None
    delay = 0 if progress else 2.0
    interactive = _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not interactive:
        return _LogLines(t0, t1, delay, sys.stderr)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=t1 - t0,
        unit="t",
        delay=delay,
        bar_format="{l_bar}{bar}| t={n:.4g}/{total:.4g} [{elapsed}<{remaining}]",
        leave=False,
    )
    return _Bar(bar, t0)


def _events(times: Sequence[float], callbacks: Sequence[Callback]) -> list[tuple[float, bool, list[Callback]]]:
    """``(t, is a frame, callbacks due)`` in time order after ``times[0]``."""
    frames = [float(t) for t in times[1:]]
    at_frames = [cb for cb in callbacks if cb.every is None]
    due: dict[float, list[Callback]] = {t: list(at_frames) for t in frames}
    t0, t1 = float(times[0]), float(times[-1])
    tol = 1e-9 * max(1.0, abs(t1))
    for cb in callbacks:
        for t in cb.times(t0, t1):
            near = min(frames, key=lambda f: abs(f - t))
            due.setdefault(near if abs(near - t) <= tol else float(t), []).append(cb)
    frame_set = set(frames)
    return [(t, t in frame_set, due[t]) for t in sorted(due)]


@dataclass
class Marched:
    """How a run through the output times ended: ``status`` text, stopped by a signal or not, wall seconds."""

    status: str
    interrupted: bool
    wall_s: float
    signum: int = 0


def march(
    stepper,
    times: Sequence[float],
    save: Callable[[float], None],
    keep_last_good: Callable[[BlowUp], float],
    name: str,
    progress: bool | None,
    kept_in: str | None = None,
    stacklevel: int = 3,
    callbacks: Sequence[Callback] = (),
    state: Callable[[], dict] | None = None,
    reductions=None,
) -> Marched:
    """Advance ``stepper`` to each of ``times[1:]`` and ``save(t)`` the frame there.

    On a blow-up ``keep_last_good(exc)`` keeps the last finite state and returns the time of the
    last kept frame; a warning says so (and where, ``kept_in``). Ctrl-C and SIGTERM end the loop
    quietly: a frame being saved is finished, the step in progress is dropped. NumPy's
    overflow and invalid-value warnings are silenced while stepping: a blow-up is reported
    once, by the :class:`BlowUpWarning`. ``callbacks`` are called with ``(t, state())`` at their
    own times (and at the frames, those with no interval); one that raises :class:`StopRun`
    ends the run there, with that state saved as the last frame.

    ``reductions`` (a :class:`~pdeforge.parallel.reduce.Reductions` of several ranks): a signal
    or a callback's stop on any rank stops every rank at the same event, and only rank 0 warns.
    """
    distributed = reductions is not None and reductions.distributed
    if distributed and reductions.comm.Get_rank() != 0:
        progress = False  # one progress bar: rank 0's
    status, interrupted, signum = "completed", False, 0
    events = _events(times, callbacks)
    bar = progress_bar(progress, times[0], times[-1])
    started = time.perf_counter()
    try:
        with StopOnSignals(defer=distributed) as guard, np.errstate(over="ignore", invalid="ignore",
                                                                      divide="ignore"):
            for ts, is_frame, calls in events:
                stepper.advance(ts, bar.update_to if bar else None)
                stop = None
                # several ranks gather the state once per event: every rank makes the same collective calls
                shared = state() if distributed and calls else None
                try:
                    for cb in calls:
                        cb(ts, shared if shared is not None else state())
                except StopRun as exc:
                    stop = exc.reason
                if distributed and calls:  # a stop on one rank stops all of them at this event
                    stop = reductions.first(stop)
                if stop is not None:
                    status = stop
                    with guard.critical():
                        save(ts)
                    break
                if is_frame:
                    with guard.critical():
                        save(ts)
                if distributed:
                    guard.agree(reductions.max)
    except BlowUp as exc:
        status = f"blew up: {exc}"
        last = keep_last_good(exc)
        what = (f"{exc.reason} near t = {exc.t_bad:g}" if getattr(exc, "reason", None)
                else f"solution became non-finite by t = {exc.t_bad:g}")
        if not distributed or reductions.comm.Get_rank() == 0:
            warn(f"{name}: {what}; stopped, last finite state "
                 f"(t = {last:g}) kept" + (f" in {kept_in}" if kept_in else ""), BlowUpWarning)
    except KeyboardInterrupt as exc:
        signum = signal_of(exc)
        status = f"interrupted ({signal_name(signum)}) at t = {stepper.t:g}"
        interrupted = True
    finally:
        if bar:
            bar.close()
    return Marched(status, interrupted, time.perf_counter() - started, signum)


def finish(writer, attrs: dict, dataset: Callable | None, out_path, run: Marched, t: float, n_frames: int,
           load: bool = False):
    """Close the file with the final attributes, build the Dataset, raise if interrupted.

    ``dataset()`` builds the in-memory Dataset; with ``dataset=None`` the file is opened lazily
    (and read into memory with ``load``: a resumed run's frames are in the file).
    """
    if writer:
        writer.set_attrs(attrs)
        writer.close()
    if dataset is not None:
        ds = dataset()
    else:
        import xarray as xr

        ds = xr.open_dataset(out_path)
        if load:
            ds = ds.load()
            ds.close()
    if run.interrupted:
        how = signal_name(run.signum) if run.signum else "interrupted"
        hint = f"; continue it with resume=True (out={str(out_path)!r})" if writer else ""
        raise RunInterrupted(
            f"run stopped ({how}) at t = {t:g}; {n_frames} frames kept" + (f" in {out_path}" if writer else "") + hint,
            ds, run.signum or 2, out_path if writer else None,
        )
    return ds

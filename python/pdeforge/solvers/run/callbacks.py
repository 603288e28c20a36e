"""Watching and steering a run: callbacks during it, and conditions that stop it.

A callback is called with the model time and the state (field name -> array, a view that is
valid during the call) at its own times, independent of the saved frames:

    pf.solve(system, 128, 50.0, callbacks=[pf.Every(1.0, lambda t, u: print(t, u["c"].max())),
                                           pf.SteadyState(rtol=1e-6)])

A stop condition ends the run early: the state at that time is saved as the last frame and the
Dataset's ``status`` says why (``"stopped: steady state at t = 12.5"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from pdeforge.errors import SolverError

State = Mapping[str, np.ndarray]


class StopRun(Exception):
    """Raised by a callback to end the run now; ``reason`` goes into the Dataset's ``status``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Callback:
    """Called as ``fn(t, state)`` every ``every`` of model time (None: at every saved frame).

    Args:
        every: model time between calls (None: at the saved frames).
        fn: ``fn(t, state)``; ``state`` maps field names to arrays. It may raise :class:`StopRun`.
    """

    def __init__(self, every: float | None, fn: Callable[[float, State], object], steps: int | None = None):
        if every is not None and not (isinstance(every, (int, float)) and every > 0 and math.isfinite(every)):
            raise SolverError(f"callbacks: every must be a positive number of model time, got {every!r}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise SolverError(f"callbacks: steps must be a positive whole number of steps, got {steps!r}")
        if every is not None and steps is not None:
            raise SolverError("callbacks: give every (model time) or steps (time steps), not both")
        if not callable(fn):
            raise SolverError(f"callbacks: {fn!r} is not callable")
        self.every = None if every is None else float(every)
        self.steps = steps
        self.fn = fn

    def in_steps_of(self, dt: float | None, method: str) -> None:
        """Turn ``steps`` into model time for a run whose fixed step is ``dt`` (refused without one)."""
        if self.steps is None:
            return
        if dt is None or not math.isfinite(dt):
            raise SolverError(f"callbacks: steps= counts the steps of a fixed-step method; method {method!r} "
                              "chooses its steps as it goes: give every= (model time) instead")
        self.every = self.steps * float(dt)

    def times(self, t0: float, t1: float) -> np.ndarray:
        """Where it is called, after ``t0`` up to ``t1`` (empty: at the saved frames)."""
        if self.every is None:
            return np.empty(0)
        n = int(math.floor((t1 - t0) / self.every + 1e-9))
        return t0 + self.every * np.arange(1, n + 1)

    def __call__(self, t: float, state: State) -> None:
        self.fn(t, state)


def Every(every: float | None = None, fn: Callable[[float, State], object] | None = None, *,  # noqa: N802
          steps: int | None = None) -> Callback:
    """``fn(t, state)`` every ``every`` of model time, or every ``steps`` time steps of a
    fixed-step method (``pf.Every(steps=100, fn=show)``)."""
    if fn is None:
        raise SolverError("callbacks: Every needs the function to call: Every(0.5, fn) or Every(steps=10, fn=fn)")
    return Callback(every, fn, steps=steps)


class SteadyState(Callback):
    """Stop when the state no longer changes: ``max |u(t) - u(t_prev)| / (t - t_prev) <= atol + rtol max |u|``
    for every field, checked every ``every`` of model time (None: at the saved frames).

    Args:
        rtol, atol: relative and absolute bound on the rate of change.
        every: model time between checks.
    """

    def __init__(self, rtol: float = 1e-6, atol: float = 1e-9, every: float | None = None):
        super().__init__(every, self._check)
        self.rtol, self.atol = float(rtol), float(atol)
        self._last: tuple[float, dict[str, np.ndarray]] | None = None

    def _check(self, t: float, state: State) -> None:
        now = {k: np.array(v, dtype=float, copy=True) for k, v in state.items()}
        if self._last is not None and t > self._last[0]:
            t_prev, prev = self._last
            steady = all(
                np.max(np.abs(now[k] - prev[k])) / (t - t_prev) <= self.atol + self.rtol * np.max(np.abs(now[k]))
                for k in now
            )
            if steady:
                raise StopRun(f"stopped: steady state at t = {t:g}")
        self._last = (t, now)


class StopWhen(Callback):
    """Stop when ``predicate(t, state)`` is true, checked every ``every`` of model time (None: at
    the saved frames).

    Args:
        predicate: ``predicate(t, state) -> bool``.
        every: model time between checks.
        reason: the words of the Dataset's status (default: the predicate's name).
    """

    def __init__(self, predicate: Callable[[float, State], bool], every: float | None = None,
                 reason: str | None = None):
        super().__init__(every, self._check)
        self.predicate = predicate
        self.reason = reason or getattr(predicate, "__name__", "condition")

    def _check(self, t: float, state: State) -> None:
        if self.predicate(t, state):
            raise StopRun(f"stopped: {self.reason} at t = {t:g}")


def get_callbacks(callbacks) -> list[Callback]:
    """A list of :class:`Callback` from one, several, or plain functions (called at the saved frames)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(Callback(None, cb))
        else:
            raise SolverError(f"callbacks: expected pdeforge.Every(...), SteadyState(...), StopWhen(...) or a "
                              f"function of (t, state), got {type(cb).__name__}")
    return out

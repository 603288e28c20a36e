"""What every time stepper shares: the interface the run driver calls, and how a step fails.

Every stepper owns its state and exposes the same small interface: ``advance(t_target)``
steps until ``t_target`` exactly, ``cells()`` returns the current cell values, ``steps``
counts accepted steps. A non-finite state raises :class:`BlowUp` carrying the last finite
state and its time, which the driver keeps. ``restart_state()`` is what a restart needs
besides the state (JSON-able: the step count, the current step size, controller memory) and
``restore(state)`` takes it back (:mod:`pdeforge.solvers.run.restart`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pdeforge.parallel.reduce import LOCAL

if TYPE_CHECKING:
    from pdeforge.codegen.kernel import BoundKernel

#: Steps between finiteness checks of fixed-step runs in Python loops (each check reads the state once).
CHECK_EVERY = 32


class BlowUp(Exception):
    """The state became non-finite; ``t`` and ``cells`` hold the last finite state."""

    def __init__(self, t_bad: float, t: float, cells: np.ndarray):
        super().__init__(f"non-finite values by t = {t_bad:g}; last finite state at t = {t:g}")
        self.t_bad = t_bad
        self.t = t
        self.cells = cells


class StepFailure(BlowUp):
    """An implicit integrator could not continue (Newton or linear-solver failure, step below
    the floor); ``reason`` says why, ``t`` and ``cells`` hold the last good state."""

    def __init__(self, t_bad: float, t: float, cells: np.ndarray, reason: str):
        Exception.__init__(self, f"{reason} near t = {t_bad:g}; last good state at t = {t:g}")
        self.t_bad = t_bad
        self.t = t
        self.cells = cells
        self.reason = reason


Progress = Callable[[float], None]


def equal_steps(t: float, t_target: float, dt: float) -> tuple[int, float]:
    """The number of equal steps no larger than ``dt`` from ``t`` to ``t_target``, and their size."""
    span = t_target - t
    n = max(1, math.ceil(span / dt - 1e-9))
    return n, span / n


class Stepper(ABC):
    """Common state of all steppers."""

    def __init__(self, bound: BoundKernel, cells: np.ndarray, t0: float):
        self.bound = bound
        self.t = float(t0)
        self.steps = 0
        #: sums and the blow-up check over the run's ranks (the local values on one process)
        self.reductions = getattr(bound, "rank_reductions", LOCAL)

    @abstractmethod
    def cells(self) -> np.ndarray:
        """The current cell values ``(fields, *grid.shape)``."""

    def restart_state(self) -> dict:
        """What a restart needs besides the state: the step count and the current step size."""
        return {"steps": int(self.steps), "dt": float(getattr(self, "dt", math.nan))}

    def restore(self, state: dict) -> None:
        """Continue the step count (and the controller, in subclasses) of a saved run."""
        self.steps = int(state.get("steps", 0))

    def run_statistics(self) -> dict:
        """Counters of the run for the Dataset's attributes (rejected steps, evaluations, ...)."""
        stats = {}
        if hasattr(self, "rejected"):
            stats["rejected_steps"] = int(self.rejected)
        if hasattr(self, "nfev") and hasattr(self, "njev"):
            stats.update(rhs_evaluations=int(self.nfev), jacobian_evaluations=int(self.njev))
        return stats

    @abstractmethod
    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        """Step until ``t_target`` exactly (``progress(t)`` after each step or block)."""


#: A step that multiplies the state's largest magnitude by more than this is a blow-up, not a
#: solution: no resolved step grows that much, an unstable or singular one does (and its own
#: error estimate can still pass when it is scaled by the new, huge state).
GROWTH_LIMIT = 1e6


def runaway(y: np.ndarray, f: np.ndarray, dt: float, y_new: np.ndarray, scale: float = 0.0) -> bool:
    """Whether the step ``y -> y_new`` of size ``dt`` blew up: ``y_new`` is not finite, or its
    largest magnitude exceeds :data:`GROWTH_LIMIT` times that of ``y`` and of ``scale`` (the
    initial state's; ``f``, the tendency at ``y``, gives the reference ``dt max|f|`` of a step
    from rest, where both are zero)."""
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.max(np.abs(y_new))) if np.size(y_new) else 0.0
        if not math.isfinite(top):
            return True
        reach = max(float(np.max(np.abs(y))) if np.size(y) else 0.0, abs(float(scale)))
        if reach == 0.0:
            reach = abs(dt) * float(np.max(np.abs(f))) if np.size(f) else 0.0
    return math.isfinite(reach) and top > GROWTH_LIMIT * reach

"""Time steppers: fixed-step Runge-Kutta (fused stages), adaptive Dormand-Prince, implicit BDF.

Every stepper owns its state and exposes the same small interface: ``advance(t_target)``
steps until ``t_target`` exactly, ``cells()`` returns the current cell values, ``steps``
counts accepted steps. A non-finite state raises :class:`BlowUp` carrying the last finite
state and its time, which the driver keeps. ``restart_state()`` is what a restart needs
besides the state (JSON-able: the step count, the current step size, controller memory) and
``restore(state)`` takes it back (:mod:`pdeforge.solvers.restart`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from pdeforge.codegen.kernel import BoundKernel
from pdeforge.errors import SolverError
from pdeforge.solvers.threads import ThreadChoice

#: Steps between finiteness checks of fixed-step runs in Python loops (each check reads the state once).
CHECK_EVERY = 32
#: Target duration of one compiled block of steps, and the largest block.
BLOCK_SECONDS = 0.1
MAX_BLOCK = 100_000
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


class Stepper:
    """Common state of all steppers."""

    def __init__(self, bound: BoundKernel, cells: np.ndarray, t0: float):
        self.bound = bound
        self.t = float(t0)
        self.steps = 0

    def cells(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

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

    def advance(self, t_target: float, progress: Progress | None = None) -> None:  # pragma: no cover
        raise NotImplementedError


class FixedStepRK(Stepper):
    """Euler, SSPRK3 and RK4 with fused stage kernels on padded buffers.

    Args:
        bound: the bound kernel.
        cells: initial cell values (fields, *shape).
        t0: initial time.
        dt: step size; each interval between output times is split into equal steps no
            larger than ``dt``.
        method: "euler", "ssprk3" or "rk4".
    """

    def __init__(self, bound: BoundKernel, cells: np.ndarray, t0: float, dt: float, method: str):
        super().__init__(bound, cells, t0)
        if not (dt > 0 and math.isfinite(dt)):
            raise SolverError(f"dt must be a positive number, got {dt!r}")
        self.dt = float(dt)
        self.method = method
        nbuf = {"euler": 2, "ssprk3": 3, "rk4": 5}[method]
        # new_padded writes every page (coefficient rows included, np.zeros maps them lazily):
        # the pages are faulted in at setup, not while stepping
        # the compiled loops get line-aligned rows and page-staggered arrays (BoundKernel.new_aligned)
        new = bound.new_aligned if bound.has_compiled_stepping and hasattr(bound, "new_aligned") else bound.new_padded
        self.buf = [new() for _ in range(nbuf)]
        for b in self.buf[1:]:
            b[bound.interior] = 0.0
        bound.cells(self.buf[0])[...] = cells
        self._good = np.array(cells, dtype=float, copy=True)
        self._good_t = self.t
        self._step = {"euler": self._euler, "ssprk3": self._ssprk3, "rk4": self._rk4}[method]
        self._block = 8
        key = bound.thread_key(method)
        # the threaded wavefront advances `levels` steps per sweep: probe it over three sweeps
        # (the first loads the rows, and a probe of one or two times the thread team's wake-up)
        wave = bound.wavefront(True) if method == "euler" and hasattr(bound, "wavefront") and bound.parallel else None
        # a threaded loop to compile (not yet in Numba's disk cache) compiles in a helper thread
        # while the serial loop steps (nogil); one on disk loads in a fraction of a second, here
        enabled = bound.parallel and bound.has_compiled_stepping
        self._threads = ThreadChoice(enabled, lambda: bound.warm_up((f"{method}:parallel",)), key,
                                     threads=key[-1] if key else 2,
                                     probe_steps=3 * wave.levels if wave is not None else 1,
                                     background=enabled and not bound.loop_on_disk(method, True))

    @property
    def compile_s(self) -> float:
        """Seconds spent during :meth:`advance` compiling or loading loops (not stepping)."""
        return self._threads.compile_s

    def run_statistics(self) -> dict:
        stats = super().run_statistics()
        if self._threads.background_compile_s:
            # the threaded loop, compiled in a helper thread while the serial loop stepped
            stats["background_compile_time_s"] = float(self._threads.background_compile_s)
        return stats

    def kernels_used(self) -> tuple[str, ...]:
        if self.bound.has_compiled_stepping:
            return (f"{self.method}:serial",)  # the threaded loop is compiled once a run needs it
        return ("stage_axpy",) if self.method != "rk4" else ("stage_axpy", "stage_two")

    def cells(self) -> np.ndarray:
        return self.bound.cells(self.buf[0])

    def _euler(self, t: float, dt: float) -> None:
        y, out = self.buf
        self.bound.stage_axpy(y, y, out, t, 0.0, 1.0, dt)
        self.buf[0], self.buf[1] = out, y

    def _ssprk3(self, t: float, dt: float) -> None:
        y, s1, s2 = self.buf
        k = self.bound
        k.stage_axpy(y, y, s1, t, 0.0, 1.0, dt)
        k.stage_axpy(s1, y, s2, t + dt, 0.75, 0.25, 0.25 * dt)
        k.stage_axpy(s2, y, s1, t + 0.5 * dt, 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0 * dt)
        self.buf[0], self.buf[1] = s1, y

    def _rk4(self, t: float, dt: float) -> None:
        y, sa, sb, aa, ab = self.buf
        k = self.bound
        h2 = 0.5 * dt
        k.stage_two(y, y, y, sa, aa, t, h2, dt / 6.0)
        k.stage_two(sa, y, aa, sb, ab, t + h2, h2, dt / 3.0)
        k.stage_two(sb, y, ab, sa, aa, t + h2, dt, dt / 3.0)
        k.stage_axpy(sa, aa, sb, t + dt, 1.0, 0.0, dt / 6.0)
        self.buf[0], self.buf[2] = sb, y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        if t_target <= self.t:
            return
        n, dt = equal_steps(self.t, t_target, self.dt)
        t_start = self.t
        done = 0
        compiled = self.bound.has_compiled_stepping
        while done < n:
            block = min(self._block if compiled else CHECK_EVERY, n - done)
            if compiled:
                decision = self._threads.choose()  # may compile the threaded loop: before the clock starts
                block = min(block, decision.max_steps or block)
            started = time.perf_counter()
            if compiled:
                self.bound.advance_compiled(self.method, self.buf, t_start + done * dt, dt, block, decision.parallel)
                self._threads.record(decision.parallel, time.perf_counter() - started, block)
            else:
                for s in range(block):
                    self._step(t_start + (done + s) * dt, dt)
            done += block
            self.steps += block
            self.t = t_start + done * dt if done < n else t_target
            state = self.cells()
            if not math.isfinite(float(np.sum(state))):
                raise BlowUp(self.t, self._good_t, self._good.copy())
            np.copyto(self._good, state)
            self._good_t = self.t
            if compiled and not decision.probe:
                # aim at ~BLOCK_SECONDS per compiled call: negligible overhead, prompt Ctrl-C and progress
                elapsed = max(time.perf_counter() - started, 1e-6)
                self._block = int(min(MAX_BLOCK, max(1, block * BLOCK_SECONDS / elapsed)))
            if progress is not None:
                progress(self.t)


class DormandPrince(Stepper):
    """Adaptive explicit Runge-Kutta 5(4) of Dormand and Prince with a PI step-size controller.

    Args:
        bound: the bound kernel.
        cells: initial cell values.
        t0: initial time.
        rtol, atol: relative and absolute tolerances of the local error estimate.
        dt: initial step (estimated from the right-hand side when None).
        dt_max: largest step allowed.
    """

    C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    A = (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)

    def __init__(self, bound, cells, t0, rtol=1e-6, atol=1e-9, dt=None, dt_max=np.inf):
        super().__init__(bound, cells, t0)
        self.rtol, self.atol, self.dt_max = float(rtol), float(atol), float(dt_max)
        self.y = np.array(cells, dtype=float, copy=True)
        self._scale = float(np.max(np.abs(self.y))) if self.y.size else 0.0
        self.U = bound.new_padded()
        self.k = [np.empty(bound.cell_shape) for _ in range(7)]
        self.rejected = 0
        self._f(self.y, self.t, self.k[0])
        self.dt = float(dt) if dt else self._initial_step()
        self._err_prev = 1e-4

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs",)

    def restart_state(self) -> dict:
        return super().restart_state() | {"err_prev": float(self._err_prev), "rejected": int(self.rejected)}

    def restore(self, state: dict) -> None:
        """The saved step size and PI-controller memory: the restart takes the step it would have taken."""
        super().restore(state)
        if math.isfinite(state.get("dt", math.nan)):
            self.dt = float(state["dt"])
        self._err_prev = float(state.get("err_prev", self._err_prev))
        self.rejected = int(state.get("rejected", 0))

    def _f(self, y, t, out):
        self.bound.cells(self.U)[...] = y
        self.bound.rhs_padded(self.U, t, out)

    def _norm(self, e, y0, y1):
        scale = self.atol + self.rtol * np.maximum(np.abs(y0), np.abs(y1))
        return float(np.sqrt(np.mean((e / scale) ** 2)))

    def _initial_step(self) -> float:
        # Hairer, Norsett & Wanner, Solving ODEs I, section II.4
        y, f0 = self.y, self.k[0]
        scale = self.atol + self.rtol * np.abs(y)
        d0 = float(np.sqrt(np.mean((y / scale) ** 2)))
        d1 = float(np.sqrt(np.mean((f0 / scale) ** 2)))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = np.empty_like(y)
        self._f(y + h0 * f0, self.t + h0, f1)
        d2 = float(np.sqrt(np.mean(((f1 - f0) / scale) ** 2))) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
        return min(100 * h0, h1, self.dt_max)

    def cells(self) -> np.ndarray:
        return self.y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        k = self.k
        while self.t < t_target:
            dt = min(self.dt, self.dt_max, t_target - self.t)
            last = dt >= t_target - self.t
            y = self.y
            for s in range(1, 7):
                ys = y.copy()
                for j, a in enumerate(self.A[s]):
                    if a:
                        ys += (dt * a) * k[j]
                self._f(ys, self.t + self.C[s] * dt, k[s])
            y_new = ys  # stage 7 input is the 5th-order solution (FSAL)
            err = np.zeros_like(y)
            for j, e in enumerate(self.E):
                if e:
                    err += (dt * e) * k[j]
            en = self._norm(err, y, y_new)
            if not math.isfinite(en) or runaway(y, k[0], dt, y_new, self._scale):
                if dt < 1e-14 * max(1.0, abs(self.t)):
                    raise BlowUp(self.t + dt, self.t, self.y.copy())
                self.dt = dt * 0.1
                self.rejected += 1
                continue
            if en <= 1.0:
                self.t = t_target if last else self.t + dt
                self.y = y_new
                k[0], k[6] = k[6], k[0]
                self.steps += 1
                factor = 0.9 * en ** (-0.7 / 5) * self._err_prev ** (0.4 / 5) if en > 0 else 5.0
                self.dt = dt * min(5.0, max(0.2, factor))
                self._err_prev = max(en, 1e-4)
                if progress is not None:
                    progress(self.t)
            else:
                self.rejected += 1
                self.dt = dt * max(0.2, 0.9 * en ** (-1 / 5))
                if self.dt < 1e-14 * max(1.0, abs(self.t)):
                    raise BlowUp(self.t, self.t, self.y.copy())


class ImplicitBDF(Stepper):
    """SciPy's variable-order BDF fed with the exact sparse Jacobian and the compiled right-hand side.

    Args:
        bound: the bound kernel.
        cells: initial cell values.
        t0: initial time.
        t_end: final time (SciPy's integrator needs it).
        rtol, atol: tolerances.
        dt: optional first step.
    """

    def __init__(self, bound, cells, t0, t_end, rtol=1e-6, atol=1e-9, dt=None):
        super().__init__(bound, cells, t0)
        from scipy.integrate import BDF

        self.njev = 0
        self.nfev = 0

        def fun(t, y):
            self.nfev += 1
            return bound.rhs(t, y)

        def jac(t, y):
            self.njev += 1
            return bound.jacobian(t, y)

        self.solver = BDF(
            fun, t0, np.asarray(cells, dtype=float).ravel(), t_end, rtol=rtol, atol=atol, jac=jac,
            first_step=dt, vectorized=False,
        )
        self._y = np.asarray(cells, dtype=float).copy()

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs", "jac")

    def restart_state(self) -> dict:
        """SciPy's BDF keeps its order and difference table private: a restart begins at order 1
        with the last step size, and so agrees with the uninterrupted run within the tolerances."""
        return {"steps": int(self.steps), "dt": float(self.solver.h_abs), "nfev": int(self.nfev),
                "njev": int(self.njev)}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.nfev += int(state.get("nfev", 0))
        self.njev += int(state.get("njev", 0))

    def cells(self) -> np.ndarray:
        return self._y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        s = self.solver
        while s.t < t_target:
            prev_t, prev_y = s.t, s.y.copy()
            message = s.step()
            if s.status == "failed" or not np.all(np.isfinite(s.y)):
                raise BlowUp(s.t, prev_t, prev_y.reshape(self.bound.cell_shape))
            self.steps += 1
            if progress is not None:
                progress(min(s.t, t_target))
            if s.status == "finished" and s.t < t_target:
                raise SolverError(f"BDF stopped before t = {t_target}: {message}")
        self._y = s.dense_output()(t_target).reshape(self.bound.cell_shape) if s.t != t_target else \
            s.y.reshape(self.bound.cell_shape).copy()
        self.t = t_target

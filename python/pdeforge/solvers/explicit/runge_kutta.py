"""Explicit Runge-Kutta steppers: fixed step (fused stages, compiled step loops) and adaptive
Dormand-Prince; the interface they share is :mod:`pdeforge.solvers.stepping`."""

from __future__ import annotations

import math
import time

import numpy as np

from pdeforge.codegen.kernel import BoundKernel
from pdeforge.errors import SolverError
from pdeforge.codegen.numba.stepping import STEP_METHODS
from pdeforge.codegen.numba.threads import SerialChoice, ThreadChoice
from pdeforge.tableaus import TABLEAUS, accumulating_stages, convex_stages, work_arrays
from pdeforge.solvers.stepping import CHECK_EVERY, BlowUp, Progress, Stepper, equal_steps, runaway  # noqa: F401

#: Target duration of one compiled block of steps, and the largest block.
BLOCK_SECONDS = 0.1
MAX_BLOCK = 100_000


class _WorkArrays(dict):
    """Method name -> work arrays of its two-register or accumulator form (state included)."""

    def __missing__(self, method: str) -> int:
        return work_arrays(TABLEAUS[method])


BUFFERS = _WorkArrays()


def stepping_rule(method: str):
    """``(step function, stages)`` of a fixed-step method, from its tableau: the convex
    (Shu-Osher) form where the tableau has one, else the accumulator form."""
    tab = TABLEAUS[method]
    if tab.shu_osher is not None:
        return FixedStepRK._convex, convex_stages(tab)
    return FixedStepRK._accumulating, accumulating_stages(tab)


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

    #: the serial loops to choose between and the choice (subclasses whose backend has one loop keep these)
    _loops: tuple[str, ...] = ()
    _serial = SerialChoice(False, lambda: 0.0)

    def __init__(self, bound: BoundKernel, cells: np.ndarray, t0: float, dt: float, method: str):
        super().__init__(bound, cells, t0)
        if not (dt > 0 and math.isfinite(dt)):
            raise SolverError(f"dt must be a positive number, got {dt!r}")
        self.dt = float(dt)
        self.method = method
        nbuf = BUFFERS[method]
        # new_padded writes every page (coefficient rows included, np.zeros maps them lazily):
        # the pages are faulted in at setup, not while stepping
        # the compiled loops get line-aligned rows and page-staggered arrays (BoundKernel.new_aligned)
        # the compiled step loops are printed for the methods of STEP_METHODS; others step stage by stage
        self._compiled = bool(bound.has_compiled_stepping) and method in STEP_METHODS
        aligned = self._compiled or getattr(bound, "aligned_stages", False)  # a block's compiled stages too
        new = bound.new_aligned if aligned and hasattr(bound, "new_aligned") else bound.new_padded
        self.buf = [new() for _ in range(nbuf)]
        for b in self.buf[1:]:
            b[bound.interior] = 0.0
        bound.cells(self.buf[0])[...] = cells
        self._good = np.array(cells, dtype=float, copy=True)
        self._good_t = self.t
        rule, self.stages = stepping_rule(method)
        self._step = rule.__get__(self)
        self._block = 8
        key = bound.thread_key(method)
        # the threaded wavefront advances `levels` steps per sweep: probe it over three sweeps
        # (the first loads the rows, and a probe of one or two times the thread team's wake-up)
        wave = bound.wavefront(True) if method == "euler" and hasattr(bound, "wavefront") and bound.parallel else None
        # a threaded loop to compile (not yet in Numba's disk cache) compiles in a helper thread
        # while the serial loop steps (nogil); one on disk loads in a fraction of a second, here
        enabled = bound.parallel and self._compiled
        self._threads = ThreadChoice(enabled, lambda: bound.warm_up((f"{method}:parallel",)), key,
                                     threads=key[-1] if key else 2,
                                     probe_steps=3 * wave.levels if wave is not None else 1,
                                     background=enabled and not bound.loop_on_disk(method, True))
        # the serial loop: the one the grid's size suggests, or a second one (plain or temporally
        # blocked) where that is measured faster on this machine; every loop gives the same values
        loops = bound.serial_loops(method) if self._compiled and hasattr(bound, "serial_loops") else ()
        self._loops = loops
        # a probe of the wavefront as the second loop runs whole sweeps (three); the plain loop's, a few steps
        blocked = bound.serial_wavefront() if loops[1:] == ("wave",) else None
        self._serial = SerialChoice(len(loops) > 1, lambda: bound.warm_up((f"{method}:serial:{loops[1]}",)), key,
                                    probe_steps=3 * blocked.levels if blocked is not None else 1,
                                    background=len(loops) > 1 and not bound.loop_on_disk(method, False, loops[1]))

    @property
    def compile_s(self) -> float:
        """Seconds spent during :meth:`advance` compiling or loading loops (not stepping)."""
        return self._threads.compile_s + self._serial.compile_s

    def run_statistics(self) -> dict:
        stats = super().run_statistics()
        background = self._threads.background_compile_s + self._serial.background_compile_s
        if background:
            # the threaded loop or a second serial one, compiled in a helper thread while the serial loop stepped
            stats["background_compile_time_s"] = float(background)
        if len(self._loops) > 1:  # the serial loop measured faster (see SerialChoice)
            stats["serial_loop"] = self._loops[int(self._serial.in_use)]
        if self._threads.enabled:  # threads of the loop in use at the end (ThreadChoice)
            key = self.bound.thread_key(self.method)
            stats["loop_threads"] = int(key[-1]) if self._threads.in_use and key else 1
        return stats

    def kernels_used(self) -> tuple[str, ...]:
        if self._compiled:
            return (f"{self.method}:serial",)  # the threaded loop is compiled once a run needs it
        return ("stage_axpy",) if self.method != "rk4" else ("stage_axpy", "stage_two")

    def cells(self) -> np.ndarray:
        return self.bound.cells(self.buf[0])

    def _convex(self, t: float, dt: float) -> None:
        """One step of a two-register (Shu-Osher) method: euler, ssprk3 (stages from the tableau)."""
        k, y = self.bound, self.buf[0]
        registers = self.buf[1:3]
        src = y
        for i, st in enumerate(self.stages):
            out = registers[i % len(registers)]
            k.stage_axpy(src, y, out, t + st.at(dt), st.keep_f, st.mix_f, st.by(dt))
            src = out
        last = 1 + (len(self.stages) - 1) % len(registers)
        self.buf[0], self.buf[last] = self.buf[last], y

    def _accumulating(self, t: float, dt: float) -> None:
        """One step of a method with a subdiagonal stage matrix (rk4), stages from the tableau."""
        y, sa, sb, aa, ab = self.buf
        k = self.bound
        values, sums = (sa, sb), (aa, ab)
        src, acc = y, y
        *inner, last = self.stages
        for i, st in enumerate(inner):
            k.stage_two(src, y, acc, values[i % 2], sums[i % 2], t + st.at(dt), st.advance_by(dt), st.by(dt))
            src, acc = values[i % 2], sums[i % 2]
        out = len(inner) % 2
        k.stage_axpy(src, acc, values[out], t + last.at(dt), 1.0, 0.0, last.by(dt))
        self.buf[0], self.buf[1 + out] = values[out], y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        if t_target <= self.t:
            return
        n, dt = equal_steps(self.t, t_target, self.dt)
        t_start = self.t
        done = 0
        compiled = self._compiled
        while done < n:
            block = min(self._block if compiled else CHECK_EVERY, n - done)
            serial, loop, probe = None, None, False
            if compiled:
                decision = self._threads.choose()  # may compile the threaded loop: before the clock starts
                block = min(block, decision.max_steps or block)
                if not decision.parallel:
                    # which serial loop; a serial probe of the thread policy times the one in use
                    serial = self._serial.choose() if not decision.probe else None
                    block = min(block, (serial.max_steps if serial else None) or block)
                    other = serial.parallel if serial is not None else self._serial.in_use
                    loop = self._loops[int(other)] if self._loops else None
                probe = decision.probe or (serial is not None and serial.probe)
                if serial is not None and serial.probe:
                    # whole sweeps of a blocked loop, not the (early, short) block of the loop in use
                    block = min(n - done, serial.max_steps or block)
            started, cpu = time.perf_counter(), time.thread_time()
            if compiled:
                self.bound.advance_compiled(self.method, self.buf, t_start + done * dt, dt, block, decision.parallel,
                                            None if decision.parallel else loop)
                elapsed = time.perf_counter() - started
                if serial is not None:
                    # serial loops run in this thread: its CPU time is their cost, without the time
                    # slices other processes took (which would decide a wall-clock probe by chance)
                    self._serial.record(serial.parallel, time.thread_time() - cpu, block)
                    # a probe of the other serial loop is not the serial loop's figure
                    self._threads.record(False, elapsed, 0 if serial.probe else block, time.thread_time() - cpu)
                else:
                    self._threads.record(decision.parallel, elapsed, block, time.thread_time() - cpu)
            else:
                for s in range(block):
                    self._step(t_start + (done + s) * dt, dt)
            done += block
            self.steps += block
            self.t = t_start + done * dt if done < n else t_target
            state = self.cells()
            if not self.reductions.all_finite(state):  # every rank of a distributed run stops alike
                raise BlowUp(self.t, self._good_t, self._good.copy())
            np.copyto(self._good, state)
            self._good_t = self.t
            if compiled and not probe:
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

    # the Dormand-Prince tableau (the seventh stage is the FSAL first stage of the next step);
    # E: the weights of the error estimate, b - b_embedded
    C = tuple(float(v) for v in TABLEAUS["dopri5"].c)
    A = tuple(tuple(float(v) for v in row) for row in TABLEAUS["dopri5"].a)
    E = tuple(float(b - e) for b, e in zip(TABLEAUS["dopri5"].b, TABLEAUS["dopri5"].b_error))

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
        return self.reductions.rms(e / scale)  # over every rank's cells: one step size for all

    def _initial_step(self) -> float:
        # Hairer, Norsett & Wanner, Solving ODEs I, section II.4
        y, f0 = self.y, self.k[0]
        scale = self.atol + self.rtol * np.abs(y)
        d0 = self.reductions.rms(y / scale)
        d1 = self.reductions.rms(f0 / scale)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = np.empty_like(y)
        self._f(y + h0 * f0, self.t + h0, f1)
        d2 = self.reductions.rms((f1 - f0) / scale) / h0
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

"""The one run driver: inputs -> resume -> prepare -> attributes -> writer -> frames -> march -> finish.

Every run goes through :func:`execute`. A discretization family (finite differences,
Fourier pseudo-spectral, ODE-PDE systems with scalars) contributes only what differs, as a
:class:`RunFamily`: how it compiles and builds its stepper, how its state becomes a frame, and
any variables beside the fields (scalars, flow diagnostics). Resume, the Dataset attributes, the
output file, frames, signals, callbacks and the end of a run are written here once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from pdeforge.codegen.backends import Backend
from pdeforge.discretize.grid import UniformGrid
from pdeforge.discretize.options import Discretization
from pdeforge.solvers.methods import Method
from pdeforge.solvers.run.callbacks import Callback
from pdeforge.solvers.run.driver import finish, march
from pdeforge.solvers.run.frames import Frames
from pdeforge.solvers.run.inputs import RunInputs, run_attributes
from pdeforge.solvers.run.output import Output, open_writer, to_dataset
from pdeforge.solvers.run.restart import Restart, apply_restart, begin_resume
from pdeforge.symbolic.system import PDESystem


@dataclass
class Job:
    """What one run was asked to do, resolved and checked.

    Attributes:
        system: the system, parameters applied.
        inputs: grid, time span, output times and output path.
        method, backend, discretization, output: the option objects.
        ic: initial condition per field (None: the system's).
        dt: the step asked for when no method object carries it (the spectral default method).
        seed: seed of the run's random numbers.
        progress: show a progress bar (None: for runs longer than about two seconds).
        callbacks: called during the run.
        call: the call, as text, for the attributes.
        extra_attrs: attributes a caller adds (a model's name, say).
    """

    system: PDESystem
    inputs: RunInputs
    method: Method
    backend: Backend
    discretization: Discretization
    output: Output
    ic: Mapping[str, object] | None = None
    dt: float | None = None
    seed: int | None = None
    progress: bool | None = None
    callbacks: list[Callback] = field(default_factory=list)
    call: str = ""
    extra_attrs: dict = field(default_factory=dict)

    @property
    def grid(self) -> UniformGrid:
        return self.inputs.grid


class RunFamily(ABC):
    """What a discretization family contributes to a run (override what differs).

    :meth:`prepare` compiles, builds the initial state (or takes the restart's), chooses the
    step and, unless the file already reaches the end, the stepper; it returns the family's
    attributes (backend, method, dt, ...). The rest has defaults for a stepper whose
    ``cells()`` is the frame.
    """

    stepper = None
    #: shape of one frame, (fields, *grid.shape)
    cell_shape: tuple[int, ...] = ()
    #: a run on several MPI ranks: the process grid (:class:`~pdeforge.parallel.decomposition.Decomposition`)
    #: and the reductions over the ranks (:class:`~pdeforge.parallel.reduce.Reductions`); None: one process
    decomposition = None
    reductions = None

    def __init__(self, job: Job):
        self.job = job

    @abstractmethod
    def prepare(self, inputs: RunInputs, restart: Restart | None, done: bool) -> dict:
        """Compile, build the initial state (or take the restart's) and, unless ``done``, the
        stepper; return the family's attributes (``backend``, ``method``, ``dt``, ...)."""

    def initial_frame(self) -> np.ndarray:
        """The state at ``t0`` (fresh runs)."""
        return self.stepper.cells()

    def frame(self):
        """The stepper's current state (what :meth:`on_frame` turns into a frame)."""
        return self.stepper.cells()

    def fields(self) -> dict[str, np.ndarray]:
        """The current state by field name (what callbacks see)."""
        cells = self.on_frame(None, self.frame(), fresh=True)
        return {f: cells[i] for i, f in enumerate(self.job.system.fields)}

    def on_frame(self, t: float | None, state, fresh: bool = False) -> np.ndarray:
        """The frame ``(fields, *grid.shape)`` of the stepper's ``state`` at ``t``, an array of its
        own unless ``fresh`` says ``state`` is one already; extra variables are taken here
        (``t`` None: a look at the state, nothing is recorded)."""
        return state if fresh else np.array(state, copy=True)

    def define_variables(self, writer) -> None:
        """Add variables beside the fields to a new file."""

    def write_variables(self, writer, index: int) -> None:
        """Write this frame's extra variables (before the frame counts as complete)."""

    def keep_last_good(self, exc, frames: Frames) -> float:
        """Record the last good state of a blow-up; the time of the last frame."""
        return frames.keep_last_good(exc, lambda t, cells: self._record_raw(t, cells, True))

    def attach(self, ds):
        """The in-memory Dataset with the extra variables."""
        return ds

    def after(self, run) -> dict:
        """Attributes known after the run (steps, statistics)."""
        attrs = {"steps": int(self.stepper.steps)}
        attrs.update(self.stepper.run_statistics())
        return attrs

    def marching(self):
        """A context held while stepping (thread settings, say)."""
        return nullcontext()

    # set by execute: records one frame
    _record_raw = None


def execute(job: Job, family: RunFamily):
    """Run ``job`` with ``family`` and return the Dataset (see :func:`pdeforge.solve`)."""
    output, system = job.output, job.system
    inputs, restart = begin_resume(job.inputs, output.resume, system.fields, output.save_every)
    done = restart is not None and len(inputs.times) == 1  # the file already reaches t_end: check, return it

    t_compile = time.perf_counter()
    specific = family.prepare(inputs, restart, done)
    compile_time = system.parse_time_s + time.perf_counter() - t_compile
    backend_name = specific.pop("backend", job.backend.name)
    method_name = specific.pop("method") if "method" in specific else job.method.name
    fixed = job.method.kind in ("fixed", "imex", "stochastic") and specific.get("dt") is not None
    for cb in job.callbacks:  # every n steps of a fixed-step method: every n steps taken
        cb.in_steps_of(specific.get("dt") if fixed else None, method_name)
    attrs = run_attributes(system, inputs.grid, backend_name, method_name, specific.pop("dt", None), compile_time,
                           specific.pop("cache_hit", False), **specific)
    attrs.update(job.extra_attrs)
    attrs.update(call=job.call, save_every=output.save_every if output.save_every is not None else float("nan"))
    if job.method.kind not in ("fixed", "imex", "stochastic") and "rtol" in job.method.SETTINGS \
            and "rtol" not in attrs:
        attrs.update(rtol=job.method.rtol, atol=job.method.atol)
    if restart is not None:
        finished = apply_restart(restart, attrs, family.stepper, job.method.kind == "implicit", done,
                                 output.in_memory)
        if finished is not None:
            return finished

    out_path, grid = inputs.out_path, inputs.grid
    stepper = family.stepper
    writer = open_writer(out_path, grid, system.fields, attrs | {"status": "running"}, restart,
                         output.variable_attrs, stepper.restart_state, family.decomposition, inputs.times)
    if writer is not None:
        if restart is None:
            family.define_variables(writer)
        writer.on_frame = lambda i: family.write_variables(writer, i)
    frames = Frames(writer, output.in_memory and restart is None, family.cell_shape)

    def record(t: float, state, fresh: bool = False) -> None:
        frames.record(t, family.on_frame(t, state, fresh), copy=False)

    family._record_raw = record
    if restart is None:
        record(inputs.t0, family.initial_frame(), fresh=True)
    else:
        frames.continue_from(restart.t, restart.frames)

    def save(t: float) -> None:
        record(t, family.frame())

    with family.marching():
        run = march(stepper, inputs.times, save, lambda exc: family.keep_last_good(exc, frames), system.name,
                    job.progress, out_path if writer else None, stacklevel=5, callbacks=job.callbacks,
                    state=family.fields, reductions=family.reductions)
    # compiling or loading a loop during the run (the threaded one, once it is probed) is not stepping
    loading = getattr(stepper, "compile_s", 0.0)
    attrs.update(wall_time_s=run.wall_s - loading, status=run.status,
                 compile_time_s=attrs["compile_time_s"] + loading)
    attrs.update(family.after(run))
    final_t = stepper.t
    dataset = None
    if output.in_memory and restart is None:
        def dataset():
            ds = to_dataset(grid, system.fields, frames.times, frames.states, attrs, output.variable_attrs)
            return family.attach(ds)
    family.stepper = None  # free the work arrays before xarray is imported (peak memory)
    del stepper
    return finish(writer, attrs, dataset, out_path, run, final_t, len(frames), load=output.in_memory)


def implicit_first_step(method: Method, restart: Restart, inputs: RunInputs, dt: float | None) -> float | None:
    """The first step of a resumed run: the given one, else the file's (the step its rule chose,
    ``dt_chosen``, where it records one; an implicit method's last step size, which is its
    restart state rather than an option)."""
    chosen = restart.attrs.get("dt_chosen")
    if dt is None and chosen is not None and math.isfinite(float(chosen)):
        dt = float(chosen)
    dt = dt if dt is not None else restart.dt
    saved = restart.state.get("dt")
    if method.kind == "implicit" and saved is not None and math.isfinite(float(saved)) and saved > 0:
        dt = min(float(saved), inputs.t1 - inputs.t0)
    return dt

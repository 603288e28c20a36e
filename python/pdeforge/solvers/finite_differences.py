"""The finite-difference (and finite-volume) family of the run driver: compile, step choice, steppers.

Steppers register by method name in :data:`STEPPERS`; each builder takes the bound kernel,
the initial state and the resolved step and returns a stepper of the common interface
(:mod:`pdeforge.solvers.stepping`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np

from pdeforge.codegen.backends import Backend
from pdeforge.codegen.build import check_target, compile_system
from pdeforge.errors import SolverError
from pdeforge.solvers.methods import Method, get_method
from pdeforge.solvers.run.initial import initial_state
from pdeforge.solvers.run.inputs import SAFETY, RunInputs, check_dt_against
from pdeforge.solvers.run.pipeline import Job, RunFamily, implicit_first_step

#: method name -> builder(bound, cells, inputs, method, dt, torch) -> stepper
STEPPERS: dict[str, Callable] = {}


def stepper_for(*names: str):
    """Decorator: register a stepper builder for the methods ``names``."""
    def register(builder):
        for name in names:
            STEPPERS[name] = builder
        return builder
    return register


def _dt_max(m: Method) -> float:
    value = m.setting("dt_max")
    return np.inf if value is None else float(value)


@stepper_for("euler", "ssprk3", "rk4")
def _fixed(bound, cells, inputs, m, dt, torch):
    if torch:
        from pdeforge.solvers.explicit.torch_runge_kutta import TorchFixedStepRK as cls
    else:
        from pdeforge.solvers.explicit.runge_kutta import FixedStepRK as cls
    return cls(bound, cells, inputs.t0, dt, m.name)


@stepper_for("rk45")
def _adaptive(bound, cells, inputs, m, dt, torch):
    if torch:
        from pdeforge.solvers.explicit.torch_runge_kutta import TorchDormandPrince as cls
    else:
        from pdeforge.solvers.explicit.runge_kutta import DormandPrince as cls
    return cls(bound, cells, inputs.t0, rtol=m.rtol, atol=m.atol, dt=dt, dt_max=_dt_max(m))


@stepper_for("bdf")
def _cvode(bound, cells, inputs, m, dt, torch):
    from pdeforge.solvers.implicit.cvode import CVODEStepper

    return CVODEStepper(bound, cells, inputs.t0, inputs.t1, rtol=m.rtol, atol=m.atol, dt=dt,
                        linear_solver=m.linear_solver, preconditioner=m.preconditioner)


@stepper_for("rosenbrock23")
def _rosenbrock(bound, cells, inputs, m, dt, torch):
    from pdeforge.solvers.implicit.rosenbrock import Rosenbrock23

    return Rosenbrock23(bound, cells, inputs.t0, rtol=m.rtol, atol=m.atol, dt=dt, dt_max=_dt_max(m),
                        linear_solver=m.linear_solver)


@stepper_for("imex")
def _imex(bound, cells, inputs, m, dt, torch):
    from pdeforge.solvers.implicit.imex import IMEXSBDF2

    return IMEXSBDF2(bound, cells, inputs.t0, dt=dt)


@stepper_for("scipy-bdf")
def _scipy_bdf(bound, cells, inputs, m, dt, torch):
    from pdeforge.solvers.implicit.scipy_bdf import ImplicitBDF

    return ImplicitBDF(bound, cells, inputs.t0, inputs.t1, rtol=m.rtol, atol=m.atol, dt=dt)


def make_stepper(backend: str, m: Method, bound, cells, inputs: RunInputs, dt):
    """The time stepper of method ``m`` on the bound kernel (from :data:`STEPPERS`)."""
    try:
        builder = STEPPERS[m.name]
    except KeyError:
        raise SolverError(f"method {m.name!r} is not available with finite differences "
                          f"(valid: {', '.join(STEPPERS)})") from None
    return builder(bound, cells, inputs, m, dt, backend == "torch")


def compile_kernel(system, backend: Backend, order: int, scheme: str):
    """The kernel of ``system`` for ``backend`` (from the disk cache when it is there)."""
    target = backend.name
    check_target(target)
    settings = backend.settings()
    dtype = settings.get("dtype", "float64")
    return compile_system(system, target=target, order=order, simplifier=backend.simplifier, scheme=scheme,
                          closures=settings.get("closures"),
                          dtype=dtype if target == "numba" and dtype else "float64")


def compile_and_bind(system, grid, backend: Backend, order: int, scheme: str):
    """The kernel of ``system`` for ``backend`` (from the disk cache when it is there), bound to ``grid``."""
    target = backend.name
    dtype = backend.settings().get("dtype", "float64")
    kernel = compile_kernel(system, backend, order, scheme)
    options = {}
    if target == "torch":
        options = {"device": backend.device, "dtype": dtype, "torch_compile": backend.compile}
    return kernel, kernel.bind(grid, **options)


def choose_dt(system, grid, kernel, cells0, inputs: RunInputs, m: Method, dt, order: int, scheme: str,
              bound=None, report: dict | None = None):
    """The step of a fixed-step method: the given one (checked against the estimated limit)
    or ``SAFETY`` times the limit, at most the method's ``dt_max`` and, with the method's
    ``rtol``, short enough for its local error at the start (:func:`accurate_dt`); adaptive
    and implicit methods take ``dt`` as their first step. ``report`` receives how the step was
    chosen (``dt_rule``) and the error estimate."""
    report = {} if report is None else report
    if m.kind != "fixed":
        return dt
    report["dt_rule"] = "given"
    stability = m.setting("stability", "warn")
    dt_max = m.setting("dt_max")
    if getattr(kernel, "closures", None):
        # the stability estimate differentiates the equations symbolically; closure terms are opaque
        if dt is None:
            raise SolverError("dt: the stability limit of a system with closure terms cannot be estimated; give dt")
        return dt
    if getattr(system, "coefficients", None):
        # coefficient fields are data of the full grid (no probe grid): the symbolic estimate,
        # with them frozen as fields
        from pdeforge.discretize.coefficients import coefficients_as_fields
        from pdeforge.solvers.explicit.stability import explicit_dt_limit

        frozen_system, frozen_cells = coefficients_as_fields(system, grid, cells0)
        est = explicit_dt_limit(frozen_system, grid, frozen_cells, inputs.t0, m, order, scheme=scheme, t_end=inputs.t1)
        limit = est.dt_max
        what = f"{m.name} stability limit {limit:.4g} (from the equation for {est.limiting_field!r})"
    else:
        from pdeforge.solvers.explicit.stability_spectrum import estimate_dt

        limit, what = estimate_dt(system, grid, kernel, system.params, cells0, inputs.t0, inputs.t1, m, order, scheme)
    if dt is None:
        if not math.isfinite(limit):
            raise SolverError(f"dt: no stability limit could be estimated for {m.name}; give dt or use method 'rk45'")
        if limit <= 0:
            raise SolverError(f"dt: {m.name} is unstable for every step here ({what}); use ssprk3 or rk4")
        dt = SAFETY * limit
        dt = min(dt, float(dt_max)) if dt_max is not None else dt
        report["dt_rule"] = f"stability: {SAFETY:g} of the {what}"
        if m.setting("rtol") is not None and bound is not None and m.name in ("euler", "ssprk3", "rk4"):
            from pdeforge.solvers.explicit.accuracy import accurate_dt

            stable = dt
            dt, err = accurate_dt(bound, cells0, inputs.t0, inputs.t1, m.name, m.rtol,
                                  m.atol if m.atol is not None else 1e-9, dt_stable=stable)
            report["error_estimate"] = float(err)
            if dt < stable:
                report["dt_rule"] = (f"accuracy: local error at the start within rtol {m.rtol:g} "
                                     f"(stability allows {stable:.4g})")
        return dt
    check_dt_against(dt, limit, stability, what, stacklevel=6)
    return dt


def largest_step(times, dt: float) -> float:
    """The largest step a fixed-step run takes: each interval between output times is split into
    equal steps no larger than ``dt`` (what the Dataset records as ``dt``)."""
    from pdeforge.solvers.stepping import equal_steps

    taken = max(equal_steps(float(a), float(b), dt)[1] for a, b in zip(times[:-1], times[1:]))
    return dt if abs(taken - dt) <= 1e-12 * dt else taken  # the chosen step, where only rounding differs


class FiniteDifferences(RunFamily):
    """Fields on the cells of a uniform (or curvilinear) grid; every method of :data:`STEPPERS`,
    and Euler-Maruyama / Milstein for systems with noise."""

    def prepare(self, inputs, restart, done) -> dict:
        job = self.job
        system, grid, m, backend = job.system, inputs.grid, job.method, job.backend
        order, scheme = job.discretization.order, job.discretization.scheme or "fd"
        if backend.name == "numba" and backend.dtype != "float64" and m.kind != "fixed":
            raise SolverError(f"dtype {backend.dtype!r} with backend 'numba': the fixed-step methods (euler, ssprk3, "
                              f"rk4) run in float32, method {m.name!r} runs in float64 (give dtype='float64')")
        if backend.name not in ("numba", "torch") and backend.settings().get("dtype", "float64") != "float64":
            raise SolverError(f"dtype {backend.dtype!r}: finite differences with backend {backend.name!r} run in "
                              "float64; float32 needs backend 'numba' (fixed-step methods) or 'torch'")
        kernel, bound = compile_and_bind(system, grid, backend, order, scheme)
        # the stochastic schemes step the drift like forward Euler
        dt_method = get_method("euler").replace(**{k: v for k, v in m.settings().items()
                                                   if k in ("dt_max", "stability")}) if system.noise else m
        dt = m.dt
        self.report: dict = {}
        if restart is None:
            cells0 = initial_state(system, grid, job.ic)
            dt = choose_dt(system, grid, kernel, cells0, inputs, dt_method if m.kind == "stochastic" else m, dt,
                           order, scheme, bound=bound, report=self.report)
        else:  # the state and step of the file; its dt was checked against the stability limit when it began
            cells0 = restart.cells
            dt = self.resumed_dt(restart, inputs, m, dt)
        self.cell_shape = bound.cell_shape
        self.cells0 = cells0
        if not done:
            if system.noise:
                from pdeforge.solvers.stochastic import StochasticStepper

                self.stepper = StochasticStepper(bound, system, cells0, inputs.t0, dt, m.scheme, job.seed)
            else:
                self.stepper = make_stepper(backend.name, m, bound, cells0, inputs, dt)
            bound.warm_up(self.stepper.kernels_used())
        attrs = self._attributes(system, backend, bound, kernel, m, dt, order, scheme)
        attrs.update(self.step_attributes(inputs, m, dt))
        return attrs

    def resumed_dt(self, restart, inputs, m, dt: float | None) -> float | None:
        """The first step of a run resumed from ``restart`` (``dt``: the one given, if any); a
        step taken from the file keeps the file's account of how it was chosen, a given fixed
        step is recorded as given (as :func:`choose_dt` records it)."""
        given = dt is not None
        dt = implicit_first_step(m, restart, inputs, dt)
        if not given:
            self.report = {k: restart.attrs[k] for k in ("dt_rule", "error_estimate") if k in restart.attrs}
        elif m.kind == "fixed":
            self.report = {"dt_rule": "given"}
        return dt

    def step_attributes(self, inputs, m, dt) -> dict:
        """How the step was chosen (``dt_rule``, ``error_estimate``) and, for fixed steps, the step
        taken as ``dt`` (output times split each interval into equal steps no larger than the
        chosen one, recorded as ``dt_chosen``)."""
        attrs = dict(self.report)
        if m.kind in ("fixed", "stochastic") and dt is not None:
            attrs["dt_chosen"] = float(dt)
            if len(inputs.times) > 1:
                attrs["dt"] = largest_step(inputs.times, dt)
        return attrs

    def initial_frame(self):
        cells, self.cells0 = self.cells0, None  # the stepper holds its own copy
        return cells

    def _attributes(self, system, backend, bound, kernel, m, dt, order, scheme) -> dict:
        more = {}
        if backend.name == "torch":
            more = {"device": str(bound.device), "dtype": str(bound.dtype).replace("torch.", "")}
        elif backend.name == "numba":
            more["dtype"] = str(bound.dtype)
        attrs = dict(backend=backend.name, method=m.scheme if system.noise else m.name, dt=dt,
                     cache_hit=kernel.cache_hit, **more, order=order, scheme=scheme,
                     bcs=json.dumps({f"{f}:{system.axes[a]}": [b.describe() for b in pair]
                                     for (f, a), pair in system.bcs.items()}))
        if system.noise:
            from pdeforge.solvers.stochastic import noise_attributes

            attrs.update(noise_attributes(system, self.job.seed))
        return attrs


def run_finite_differences(job: Job):
    """:func:`pdeforge.solvers.run.pipeline.execute` with the finite-difference family."""
    from pdeforge.solvers.run.pipeline import execute

    return execute(job, FiniteDifferences(job))

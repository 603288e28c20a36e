"""``pdeforge.solve`` for a PDESystem: resolve inputs, compile, choose dt, step, write.

Each step of the pipeline is a named function below; model names are resolved one stage
up, in :func:`pdeforge.models.run.solve` (what ``pdeforge.solve`` is).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence

import numpy as np

from pdeforge.codegen.build import check_target, compile_system
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import SolverError
from pdeforge.solvers.implicit.cvode import CVODEStepper
from pdeforge.solvers.run.driver import finish, march
from pdeforge.solvers.run.frames import Frames
from pdeforge.solvers.implicit.imex import IMEXSBDF2
from pdeforge.solvers.run.initial import initial_state
from pdeforge.solvers.run.inputs import (  # noqa: F401  (SAFETY, time_span, save_times: used by callers)
    SAFETY,
    call_text,
    check_dt_against,
    discretization_of,
    run_attributes,
    run_inputs,
    save_times,
    time_span,
)
from pdeforge.solvers.methods import get_method
from pdeforge.solvers.run.output import open_writer, to_dataset
from pdeforge.solvers.run.restart import apply_restart, begin_resume
from pdeforge.solvers.implicit.rosenbrock import Rosenbrock23
from pdeforge.solvers.spectral.solve import solve_spectral
from pdeforge.solvers.explicit.stability_spectrum import estimate_dt
from pdeforge.solvers.explicit.stability import explicit_dt_limit
from pdeforge.solvers.explicit.runge_kutta import DormandPrince, FixedStepRK
from pdeforge.solvers.implicit.scipy_bdf import ImplicitBDF
from pdeforge.solvers.stochastic import StochasticStepper, noise_attributes, stochastic_method
from pdeforge.solvers.explicit.torch_runge_kutta import TorchDormandPrince, TorchFixedStepRK
from pdeforge.symbolic.system import PDESystem


def solve(
    system: PDESystem,
    grid: int | Sequence[int] | UniformGrid | None = None,
    t_span: float | tuple[float, float] | None = None,
    ic: Mapping[str, object] | None = None,
    method: str | None = None,
    dt: float | None = None,
    backend: str | None = None,
    save_every: float | None = None,
    out: str | None = None,
    order: int = 2,
    params: Mapping[str, float] | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    stability: str = "warn",
    progress: bool | None = None,
    simplifier: str = "sympy",
    in_memory: bool = True,
    dt_max: float | None = None,
    scheme: str | None = None,
    discretization: str | None = None,
    device=None,
    dtype: str = "float64",
    closures: Mapping[str, object] | None = None,
    constants: Mapping[str, float] | None = None,
    workers: int | None = None,
    seed: int | None = None,
    torch_compile: bool | str = False,
    linear_solver: str = "auto",
    preconditioner: str = "auto",
    resume: bool = False,
    variable_attrs: Mapping[str, Mapping[str, str]] | None = None,
    comm=None,
    decomposition: Sequence[int] | None = None,
):
    """Solve a PDE system in time and return an ``xarray.Dataset``.

    Args:
        system: a :class:`~pdeforge.PDESystem` (``pdeforge.solve`` also takes a model name
            from the catalogue: :func:`pdeforge.models.run.solve`).
        grid: cells per axis: an int (all axes), a tuple, or a :class:`UniformGrid`.
        t_span: ``(t0, t_end)`` or ``t_end``.
        ic: initial condition per field: array, number, callable of the coordinate meshes, or
            expression string (coordinates and parameters). Defaults to the system's ``ic``.
        method: "euler", "ssprk3", "rk4" (fixed step), "rk45" (adaptive) or "bdf" (implicit
            with the exact sparse Jacobian). Default: "rk4", or "rk45" when no dt is given
            and no stability estimate can bound the step.
        dt: step of the fixed-step methods (default: 0.8 of the estimated stability limit,
            at most ``dt_max``); first step of the adaptive ones.
        backend: code-generation target, "numba" (default), "numpy", "torch" or "julia" (Symbolics.jl
            kernels; needs a Julia installation, see the README's Julia section) for finite
            differences; "numpy" (default) or "torch" for the spectral discretization.
        save_every: interval between saved frames (default: 50 frames over the span).
        out: optional ``.nc`` file written frame by frame while the run goes.
        order: accuracy order of the spatial differences (2 or 4).
        params: parameter values overriding the system's.
        rtol, atol: tolerances of "rk45" and "bdf".
        stability: what to do when dt exceeds the explicit stability estimate: "warn"
            (default), "error", or "ignore".
        progress: show a progress bar (None: only for runs longer than about two seconds).
        simplifier: "sympy" (default), "julia" (Symbolics.jl simplify) or "none".
        in_memory: keep every frame in memory (default). With ``out`` given and
            ``in_memory=False`` frames go only to the file and the returned Dataset reads them
            lazily from it, so memory stays at a few copies of the state however many frames.
        dt_max: largest step when dt is chosen automatically (a model's preferred step).
        scheme: spatial scheme: "fd" (flux-form finite differences) or a finite-volume
            scheme ("fv-upwind", "fv-upwind-mc", "fv-upwind1", "fv-rusanov"; see
            :mod:`pdeforge.discretize.finite_volume`). Default: the model's, else "fd".
            With a finite-volume scheme the default dt of the explicit methods is 0.8 of
            the scheme's CFL limit.
        discretization: "fd" (finite differences) or "spectral" (Fourier pseudo-spectral,
            periodic systems; see :mod:`pdeforge.solvers.spectral.solve`). Default: the
            system's own choice (spectral for incompressible systems), else "fd".
        device: torch device of backend "torch" ("cpu" default, "cuda", "cuda:1", ...), spectral
            or finite differences.
        dtype: "float64" (default) or "float32": backend "torch", backend "numba" with a
            fixed-step method (single-precision kernels; the Dataset holds float64 copies of the
            float32 states), or the spectral discretization.
            A complex system runs in "complex128" (any backend) or "complex64" (backend "torch").
        closures: closure name -> ``torch.nn.Module`` (or callable) for the closure terms of
            the system (finite differences, backend "torch"; see
            :mod:`pdeforge.symbolic.closure_terms`).
        constants: parameters fixed before code generation, e.g. ``{"Cs": 0}``: the terms
            they zero are not generated (either discretization; see
            :func:`pdeforge.symbolic.constants.fix_constants`).
        workers: threads of ``scipy.fft`` for the spectral discretization with backend
            "numpy" (None: see :meth:`pdeforge.codegen.spectral.compile.SpectralKernel.bind`).
        seed: seed of the random numbers of a system with noise (:mod:`pdeforge.solvers.stochastic`;
            methods "euler", Euler-Maruyama, and "milstein"); the same seed gives the same run on
            every backend.
        torch_compile: backend "torch", fixed-step methods: step with whole RK steps compiled
            by ``torch.compile`` (True, or a mode such as "reduce-overhead"); see
            :mod:`pdeforge.codegen.torch.fused`.
        linear_solver: linear solves of "bdf": "auto" (GMRES), "gmres", "bicgstab", "tfqmr",
            "sparse" (SuperLU_MT on the exact Jacobian) or "dense"; of "rosenbrock23": "auto",
            "lu" or "gmres" (see :mod:`pdeforge.solvers.implicit.cvode`).
        preconditioner: of the Krylov solvers: "auto" (the split reaction x transport one),
            "split", "lu", "ilu", "amg" or "none" (:mod:`pdeforge.solvers.implicit.preconditioners`).
        resume: continue the run in ``out`` from its last complete frame to ``t_span``'s end,
            appending frames (see :mod:`pdeforge.solvers.run.restart`). The options that decide the
            solution must be those recorded in the file (else one error names the difference);
            the initial condition is the file's last frame. Fixed-step methods continue bit for
            bit, adaptive and implicit ones from the saved step size.
        variable_attrs: per variable (fields, ``t``, ``x``, ...) CF attributes such as
            ``units``, ``long_name``, ``standard_name`` (models pass theirs).
        comm: the mpi4py communicator of a distributed run. Default: ``COMM_WORLD`` when the
            process was started by ``mpiexec``/``srun`` with more than one rank, else none (one
            process, no MPI). Each rank holds its block of the grid plus halos; ``out`` is then
            one zarr store (``.zarr``) written by every rank, and the returned Dataset is the
            same on every rank (see :mod:`pdeforge.solvers.distributed` for what runs distributed).
        decomposition: blocks per axis of a distributed run, e.g. ``(2, 2)`` (0 entries are
            chosen; default ``MPI.Compute_dims``). Ignored on one process.

    Returns:
        Dataset with dimension ``t`` plus ``x``, ``y``, ``z``, one variable per field (complex
        for complex fields; a file from ``out`` keeps their real and imaginary parts, read back
        by :func:`pdeforge.open_dataset`), and
        attributes ``equations``, ``parameters`` (JSON), ``backend``, ``method``, ``steps``,
        ``compile_time_s``, ``wall_time_s``, ``status`` and more. If the solution blows up,
        the run stops, the last finite state is the last frame and ``status`` says so.

    Raises:
        RunInterrupted: on Ctrl-C, carrying the frames computed so far as ``.dataset``.
    """
    if not isinstance(system, PDESystem):
        raise SolverError(f"system: expected a PDESystem or a model name, got {type(system).__name__}")
    from pdeforge.parallel.comm import communicator

    comm = communicator(comm)
    options = dict(locals())  # the arguments, as given
    del options["communicator"]
    if comm is not None:
        from pdeforge.solvers import distributed
        from pdeforge.symbolic.global_unknowns import has_coupling

        if has_coupling(system):
            raise distributed.refuse("a system with scalars, integral() or mean()")
        distributed.check_distributable(system, None, backend, "fd", options)
    else:
        options.pop("comm"), options.pop("decomposition")
    if system.is_complex:
        from pdeforge.solvers.complex_fields import solve_complex

        return solve_complex(solve, **options)
    from pdeforge.symbolic.global_unknowns import has_coupling

    if has_coupling(system):  # scalars, integral(), mean(): pdeforge.solvers.coupled
        from pdeforge.solvers.coupled import solve_coupled

        options.pop("system")
        return solve_coupled(system, (_compile_and_bind, _choose_dt, _stepper), call=call_text("pdeforge.solve", system, grid=grid, t_span=t_span, method=method,
                                                    dt=dt, backend=backend, out=None if out is None else str(out)),
                             **options)
    if seed is not None and not system.noise:
        raise SolverError(f"seed: system {system.name!r} has no noise terms; seed applies to systems with noise")
    if grid is None:
        raise SolverError("grid: give the number of cells per axis")
    if t_span is None:
        raise SolverError("t_span: give (t0, t_end) or t_end")
    call = call_text("pdeforge.solve", system, grid=grid, t_span=t_span, method=method, dt=dt, backend=backend,
                     save_every=save_every, out=None if out is None else str(out), params=params,
                     scheme=scheme, discretization=discretization, resume=resume or None)
    if constants:  # fixed before code generation: the terms they zero are never generated
        from pdeforge.errors import PDEForgeError
        from pdeforge.symbolic.constants import fix_constants

        try:
            system = fix_constants(system, constants)
        except PDEForgeError as exc:
            raise SolverError(str(exc)) from None
    if discretization_of(system, discretization, device, dtype, backend) == "spectral":
        if comm is not None:
            from pdeforge.solvers.distributed import refuse

            raise refuse("the spectral discretization")
        return solve_spectral(system, grid, t_span, ic, method, dt, backend, save_every, out, params, stability,
                              progress, device, dtype, in_memory=in_memory, workers=workers, resume=resume,
                              variable_attrs=variable_attrs, call=call)
    backend = backend or "numba"
    if comm is not None:
        from pdeforge.solvers import distributed

        inputs = run_inputs(system, grid, t_span, save_every, params, dt, None, True, stability)
        m = get_method(method or "rk4")
        distributed.check_distributable(system, m, backend, "fd", options)
        return distributed.solve_distributed((_choose_dt, _stepper, _attributes), comm, inputs.system, inputs, m, ic,
                                             dt, dt_max, backend, order, simplifier,
                                             scheme or "fd", stability, rtol, atol, progress, out, in_memory,
                                             variable_attrs, call, decomposition)
    inputs = run_inputs(system, grid, t_span, save_every, params, dt, out, in_memory, stability)
    system, grid = inputs.system, inputs.grid
    m = stochastic_method(method) if system.noise else get_method(method or "rk4")
    if backend == "numba" and dtype not in (None, "float64") and (m.kind != "fixed" or system.noise):
        raise SolverError(f"dtype {dtype!r} with backend 'numba': the fixed-step methods (euler, ssprk3, rk4) "
                          f"run in float32, method {m.name!r} runs in float64 (give dtype='float64')")
    scheme = scheme or "fd"
    inputs, restart = begin_resume(inputs, resume, system.fields, save_every)
    done = restart is not None and len(inputs.times) == 1  # the file already reaches t_end: check, return it

    t_compile = time.perf_counter()
    kernel, bound = _compile_and_bind(system, grid, backend, order, simplifier, scheme, closures, device, dtype,
                                      torch_compile)
    # the stochastic schemes step the drift like forward Euler
    dt_method = get_method("euler") if system.noise else m
    if restart is None:
        cells0 = initial_state(system, grid, ic)
        dt = _choose_dt(system, grid, kernel, cells0, inputs, dt_method, dt, dt_max, order, scheme, stability)
    else:  # the state and step of the file; its dt was checked against the stability limit when it began
        cells0 = restart.cells
        dt = dt if dt is not None else restart.dt
        saved_dt = restart.state.get("dt")
        if m.kind == "implicit" and saved_dt is not None and math.isfinite(float(saved_dt)) and saved_dt > 0:
            dt = min(float(saved_dt), inputs.t1 - inputs.t0)
    ic = None  # the arrays a caller passed are not needed any more: keep peak memory down
    stepper = None  # none when the file already reaches t_end
    if not done:
        if system.noise:
            stepper = StochasticStepper(bound, system, cells0, inputs.t0, dt, m.name, seed)
        else:
            stepper = _stepper(backend, m, bound, cells0, inputs, dt, dt_max, rtol, atol, linear_solver,
                               preconditioner)
        bound.warm_up(stepper.kernels_used())
    compile_time = system.parse_time_s + time.perf_counter() - t_compile

    attrs = _attributes(system, grid, backend, bound, kernel, m, dt, order, scheme, compile_time, rtol, atol)
    if system.noise:
        attrs.update(noise_attributes(system, seed))
    attrs.update(call=call, save_every=float(save_every) if save_every is not None else float("nan"))
    if restart is not None and (finished := apply_restart(restart, attrs, stepper, m.kind == "implicit", done,
                                                          in_memory)) is not None:
        return finished
    return _march_and_write(stepper, bound, cells0, inputs, attrs, progress, in_memory, restart, variable_attrs)


def _compile_and_bind(system, grid, backend, order, simplifier, scheme, closures, device, dtype, torch_compile=False):
    """The kernel of ``system`` for ``backend`` (from the disk cache when it is there), bound to ``grid``."""
    check_target(backend)
    kernel = compile_system(system, target=backend, order=order, simplifier=simplifier, scheme=scheme,
                            closures=closures, dtype=dtype if backend == "numba" and dtype else "float64")
    if torch_compile and backend != "torch":
        raise SolverError(f"torch_compile: only backend 'torch' compiles with torch.compile, not {backend!r}")
    options = {"device": device, "dtype": dtype, "torch_compile": torch_compile} if backend == "torch" else {}
    return kernel, kernel.bind(grid, **options)


def _choose_dt(system, grid, kernel, cells0, inputs, m, dt, dt_max, order, scheme, stability):
    """The step of a fixed-step method: the given one (checked against the estimated limit)
    or ``SAFETY`` times the limit; adaptive and implicit methods take ``dt`` as their first step."""
    if m.kind != "fixed":
        return dt
    if getattr(kernel, "closures", None):
        # the stability estimate differentiates the equations symbolically; closure terms are opaque
        if dt is None:
            raise SolverError("dt: the stability limit of a system with closure terms cannot be estimated; give dt")
        return dt
    if getattr(system, "coefficients", None):
        # coefficient fields are data of the full grid (no probe grid): the symbolic estimate,
        # with them frozen as fields
        from pdeforge.discretize.coefficients import coefficients_as_fields

        frozen_system, frozen_cells = coefficients_as_fields(system, grid, cells0)
        est = explicit_dt_limit(frozen_system, grid, frozen_cells, inputs.t0, m, order, scheme=scheme, t_end=inputs.t1)
        limit = est.dt_max
        what = f"{m.name} stability limit {limit:.4g} (from the equation for {est.limiting_field!r})"
    else:
        limit, what = estimate_dt(system, grid, kernel, system.params, cells0, inputs.t0, inputs.t1, m, order, scheme)
    if dt is None:
        if not math.isfinite(limit):
            raise SolverError(f"dt: no stability limit could be estimated for {m.name}; give dt or use method 'rk45'")
        if limit <= 0:
            raise SolverError(f"dt: {m.name} is unstable for every step here ({what}); use ssprk3 or rk4")
        dt = SAFETY * limit
        return min(dt, float(dt_max)) if dt_max is not None else dt
    check_dt_against(dt, limit, stability, what, stacklevel=4)
    return dt


def _stepper(backend, m, bound, cells0, inputs, dt, dt_max, rtol, atol, linear_solver="auto",
             preconditioner="auto"):
    """The time stepper of method ``m`` on the bound kernel."""
    fixed_step, adaptive = FixedStepRK, DormandPrince
    if backend == "torch":
        fixed_step, adaptive = TorchFixedStepRK, TorchDormandPrince
    if m.kind == "fixed":
        return fixed_step(bound, cells0, inputs.t0, dt, m.name)
    if m.kind == "adaptive":
        return adaptive(bound, cells0, inputs.t0, rtol=rtol, atol=atol, dt=dt,
                        dt_max=dt_max if dt_max is not None else np.inf)
    if m.name == "bdf":
        return CVODEStepper(bound, cells0, inputs.t0, inputs.t1, rtol=rtol, atol=atol, dt=dt,
                            linear_solver=linear_solver, preconditioner=preconditioner)
    if m.name == "rosenbrock23":
        return Rosenbrock23(bound, cells0, inputs.t0, rtol=rtol, atol=atol, dt=dt,
                            dt_max=dt_max if dt_max is not None else np.inf, linear_solver=linear_solver)
    if m.name == "imex":
        return IMEXSBDF2(bound, cells0, inputs.t0, dt=dt)
    return ImplicitBDF(bound, cells0, inputs.t0, inputs.t1, rtol=rtol, atol=atol, dt=dt)


def _attributes(system, grid, backend, bound, kernel, m, dt, order, scheme, compile_time, rtol, atol) -> dict:
    more = {"device": str(bound.device), "dtype": str(bound.dtype).replace("torch.", "")} if backend == "torch" else {}
    if backend == "numba":
        more["dtype"] = str(bound.dtype)
    attrs = run_attributes(
        system, grid, backend, m.name, dt, compile_time, kernel.cache_hit, **more,
        order=order, scheme=scheme,
        bcs=json.dumps({f"{f}:{system.axes[a]}": [b.describe() for b in pair] for (f, a), pair in system.bcs.items()}),
    )
    if m.kind not in ("fixed", "imex"):
        attrs.update(rtol=rtol, atol=atol)
    return attrs


def _march_and_write(stepper, bound, cells0, inputs, attrs, progress, in_memory, restart=None, variable_attrs=None):
    """Step to every output time, recording frames (file and/or memory); the Dataset."""
    out_path, grid, system = inputs.out_path, inputs.grid, inputs.system
    writer = open_writer(out_path, grid, system.fields, attrs | {"status": "running"}, restart, variable_attrs,
                         stepper.restart_state)
    frames = Frames(writer, in_memory and restart is None, bound.cell_shape)
    if restart is None:
        frames.record(inputs.t0, cells0, copy=False)
    else:
        frames.continue_from(restart.t, restart.frames)
    del cells0  # the stepper holds its own copy
    current = stepper.cells
    run = march(stepper, inputs.times, lambda t: frames.record(t, current()), frames.keep_last_good,  # noqa: F821
                system.name, progress, out_path if writer else None)
    # compiling or loading a loop during the run (the threaded one, once it is probed) is not stepping
    loading = getattr(stepper, "compile_s", 0.0)
    attrs.update(steps=int(stepper.steps), wall_time_s=run.wall_s - loading, status=run.status,
                 compile_time_s=attrs["compile_time_s"] + loading)
    attrs.update(stepper.run_statistics())
    final_t = stepper.t
    del stepper, bound, current  # free the work arrays before xarray is imported (peak memory)
    dataset = None
    if in_memory and restart is None:
        def dataset():
            return to_dataset(grid, system.fields, frames.times, frames.states, attrs, variable_attrs)
    return finish(writer, attrs, dataset, out_path, run, final_t, len(frames), load=in_memory)

"""``pdeforge.solve`` for a PDESystem: resolve the options, pick the family, run the one driver.

Model names are resolved one stage up, in :func:`pdeforge.models.run.solve` (what
``pdeforge.solve`` is). The run itself is :func:`pdeforge.solvers.run.pipeline.execute`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pdeforge.codegen.backends import Backend, get_backend
from pdeforge.discretize.grid import UniformGrid
from pdeforge.discretize.options import Discretization, FiniteDifference, get_discretization
from pdeforge.errors import PDEForgeError, SolverError
from pdeforge.solvers.methods import Method, default_method, get_method, with_dt
from pdeforge.solvers.run.callbacks import Callback, get_callbacks
from pdeforge.solvers.run.inputs import call_text, run_inputs
from pdeforge.solvers.run.output import Output, get_output
from pdeforge.solvers.run.pipeline import Job, execute
from pdeforge.symbolic.system import PDESystem


def solve(
    system: PDESystem,
    grid: int | Sequence[int] | UniformGrid | None = None,
    t_span: float | tuple[float, float] | None = None,
    ic: Mapping[str, object] | None = None,
    *,
    method: str | Method | None = None,
    dt: float | None = None,
    backend: str | Backend | None = None,
    discretization: str | Discretization | None = None,
    output: str | Output | None = None,
    params: Mapping[str, float] | None = None,
    constants: Mapping[str, float] | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    callbacks: Sequence[Callback] | Callback | None = None,
):
    """Solve a PDE system in time and return an ``xarray.Dataset``.

    Options live with what they configure; a string is shorthand for the object with its
    defaults, and a setting given to an object that does not read it is an error naming where it
    belongs.

    Args:
        system: a :class:`~pdeforge.PDESystem` (``pdeforge.solve`` also takes a model name from
            the catalogue: :func:`pdeforge.models.run.solve`).
        grid: cells per axis: an int (all axes), a tuple, or a :class:`UniformGrid`.
        t_span: ``(t0, t_end)`` or ``t_end``.
        ic: initial condition per field (and scalar): array, number, callable of the coordinate
            meshes, or expression string (coordinates and parameters). Default: the system's ``ic``.
        method: a method object of :mod:`pdeforge.solvers.methods` with its settings, or its name:
            "euler", "ssprk3", "rk4" (fixed step: ``RK4(dt=..., dt_max=..., stability=...)``),
            "rk45" (``RK45(rtol=..., atol=...)``), "bdf" (CVODE: ``BDF(rtol, atol, linear_solver,
            preconditioner)``), "scipy-bdf", "rosenbrock23", "imex" (SBDF2), "euler-maruyama" and
            "milstein" (systems with noise), and for the spectral discretization "ifrk4",
            "etdrk4", "cnrk4". Default: ``RK4(rtol=1e-6, atol=1e-9)``, whose step is the largest
            that is stable and keeps the local error at the start within the tolerances
            (Euler-Maruyama with noise; for the spectral discretization error-controlled "etdrk4"
            when the system has a stiff linear part, else "rk4").
        dt: shorthand for the method's step (fixed-step methods: the step, default 0.8 of the
            estimated stability limit; error-controlled ones: the first step).
        backend: a backend object (:class:`~pdeforge.codegen.backends.Numba`, ``NumPy``,
            ``Torch(device=..., dtype=..., compile=..., closures=...)``, ``Julia``) or its name.
            Default: "numba" for finite differences, "numpy" for the spectral discretization.
        discretization: ``FiniteDifference(order=2, scheme="fd")`` (or "fd"), ``Spectral()`` (or
            "spectral": periodic systems, Fourier pseudo-spectral). Default: the system's own choice
            (spectral for incompressible systems), else finite differences. Under ``mpiexec -n P``
            (P > 1) a run is one simulation across the ranks, each holding its block of the grid
            (``FiniteDifference(decomposition=..., comm=...)``; ``Spectral(decomposition="slab" |
            "pencil", comm=...)`` with mpi4py-fft; output: a ``.zarr`` store);
            :mod:`pdeforge.solvers.distributed` says what runs distributed.
        output: where and how often to write: a path ("run.nc") or ``Output(path, save_every=...,
            resume=..., in_memory=...)``. Default: every frame in memory, 50 frames over the span.
        params: parameter values overriding the system's.
        constants: parameters fixed before code generation, e.g. ``{"Cs": 0}``: the terms they
            zero are not generated.
        seed: seed of the run's random numbers (the noise of a system with stochastic terms; a
            model's random initial condition); the same seed gives the same run on every backend.
        progress: show a progress bar (None: only for runs longer than about two seconds).
        callbacks: called during the run: ``Every(interval, fn)``, ``SteadyState(...)``,
            ``StopWhen(predicate)`` (:mod:`pdeforge.solvers.run.callbacks`), or functions of
            ``(t, state)`` called at every saved frame.

    Returns:
        Dataset with dimension ``t`` plus ``x``, ``y``, ``z``, one variable per field (complex
        for complex fields; a file keeps their real and imaginary parts, read back by
        :func:`pdeforge.open_dataset`), and attributes ``equations``, ``parameters`` (JSON),
        ``backend``, ``method``, ``dt``, ``steps``, ``compile_time_s``, ``wall_time_s``,
        ``status`` and more. If the solution blows up, the run stops, the last good state is
        the last frame and ``status`` says so.

    Raises:
        RunInterrupted: on Ctrl-C or SIGTERM, carrying the frames computed so far as ``.dataset``.
    """
    if not isinstance(system, PDESystem):
        raise SolverError(f"system: expected a PDESystem or a model name, got {type(system).__name__}")
    if grid is None:
        raise SolverError("grid: give the number of cells per axis")
    if t_span is None:
        raise SolverError("t_span: give (t0, t_end) or t_end")
    output = get_output(output)
    if output.dtype is not None:
        raise SolverError("Output: dtype applies to a sweep's store (pdeforge.sweep); a run's file holds the "
                          "run's own precision, set on the backend (e.g. Numba(dtype='float32'))")
    disc = get_discretization(discretization)
    call = call_text("pdeforge.solve", system, grid=grid, t_span=t_span, method=method, dt=dt, backend=backend,
                     discretization=discretization, output=None if output.path is None else output, params=params,
                     seed=seed)
    if system.is_complex and _communicator(disc) is not None:
        from pdeforge.solvers.distributed import refuse

        raise refuse("a complex system")
    if system.is_complex:
        from pdeforge.solvers.complex_fields import solve_complex

        return solve_complex(
            lambda real, real_ic, real_backend: _run(real, grid, t_span, real_ic, method, dt, real_backend, disc,
                                                     output, params, constants, seed, progress, callbacks, call),
            system, grid, ic, params, backend)
    return _run(system, grid, t_span, ic, method, dt, backend, disc, output, params, constants, seed, progress,
                callbacks, call)


def _run(system, grid, t_span, ic, method, dt, backend, disc, output, params, constants, seed, progress, callbacks,
         call):
    """Resolve the options against the system and run the family it needs."""
    if seed is not None and not system.noise:
        raise SolverError(f"seed: system {system.name!r} has no noise terms; seed applies to systems with noise")
    if constants:  # fixed before code generation: the terms they zero are never generated
        from pdeforge.symbolic.constants import fix_constants

        try:
            system = fix_constants(system, constants)
        except PDEForgeError as exc:
            raise SolverError(str(exc)) from None
    family = _family_of(system, disc, backend)
    disc = disc or (FiniteDifference() if family != "spectral" else get_discretization("spectral"))
    if family == "spectral":
        if disc.family != "spectral":
            disc = get_discretization("spectral")
        m = None if method is None else with_dt(get_method(method), dt)
        b = get_backend(backend, default="numpy")
    else:
        if system.noise:
            from pdeforge.solvers.stochastic import stochastic_method

            m = with_dt(stochastic_method(method), dt)
        else:
            m = with_dt(get_method(method) if method is not None else default_method(), dt)
        b = get_backend(backend, default="numba")
        if "fd" not in m.families:
            raise SolverError(f"method {m.name!r} is available with the spectral discretization only; "
                              f"with finite differences use one of euler, ssprk3, rk4, rk45, bdf, scipy-bdf, "
                              "rosenbrock23, imex")
    comm = _communicator(disc)
    # a run on several ranks writes one zarr store, checked below (the netCDF check is one process's)
    inputs = run_inputs(system, grid, t_span, output.save_every, params, m.dt if m is not None else None,
                        output.path if comm is None else None, output.in_memory or comm is not None,
                        m.setting("stability", "warn") if m is not None else "warn")
    job = Job(inputs.system, inputs, m, b, disc, output, ic=ic, dt=dt if m is None else None, seed=seed, progress=progress,
              callbacks=get_callbacks(callbacks), call=call)
    if comm is not None:
        from pdeforge.solvers import distributed

        distributed.check_distributable(family, job)
        inputs.out_path = distributed.store_path(output.path)
        if family == "spectral":
            from pdeforge.solvers.spectral.distributed import DistributedSpectral

            return execute(job, DistributedSpectral(job, comm))
        if family == "coupled":
            from pdeforge.solvers.distributed_coupled import DistributedCoupled

            return execute(job, DistributedCoupled(job, comm))
        return execute(job, distributed.DistributedFiniteDifferences(job, comm))
    if family == "spectral":
        from pdeforge.solvers.spectral.solve import SpectralFamily

        return execute(job, SpectralFamily(job))
    if family == "coupled":
        from pdeforge.solvers.coupled import CoupledFamily

        return execute(job, CoupledFamily(job))
    from pdeforge.solvers.finite_differences import FiniteDifferences

    return execute(job, FiniteDifferences(job))


def _communicator(disc: Discretization | None):
    """The MPI communicator of a run on several ranks, else None (mpi4py is not imported then)."""
    from pdeforge.solvers.distributed import run_communicator

    return run_communicator(disc)


def _family_of(system: PDESystem, disc: Discretization | None, backend) -> str:
    """"fd", "spectral" or "coupled": the discretization asked for, else the system's own."""
    from pdeforge.symbolic.global_unknowns import has_coupling

    own = getattr(system, "discretization", "fd")
    choice = disc.family if disc is not None else own
    if choice == "spectral" and getattr(system, "coefficients", None):
        raise SolverError(
            f"system {system.name!r} has coefficient fields ({', '.join(system.coefficients)}): the spectral "
            "discretization takes numeric parameters only; use discretization='fd'"
        )
    if choice == "fd" and own == "spectral":
        raise SolverError(f"system {system.name!r} is incompressible: it needs discretization='spectral'")
    if choice == "fd" and has_coupling(system):
        return "coupled"
    if choice == "spectral" and has_coupling(system):
        from pdeforge.symbolic.global_unknowns import DomainIntegral

        if getattr(system, "scalars", None) or any(e.atoms(DomainIntegral) for e in system.rhs.values()):
            raise SolverError("discretization 'spectral': systems with scalars or integral() are solved with finite "
                              "differences (discretization 'fd'); the spectral language takes mean()")
    return choice

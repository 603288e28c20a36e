"""Time integration of generated pseudo-spectral kernels, with flow diagnostics in the Dataset.

The state is kept in Fourier space (the real-FFT half spectrum of every field), truncated by
the 2/3 rule and, for incompressible systems, Leray-projected at the start, so every stage of
the explicit Runge-Kutta methods stays in the dealiased, divergence-free subspace. The step is
either fixed (``dt``) or chosen from the CFL bound of the generated ``radius`` kernel
(frozen-coefficient spectral radius of the linearized operator against the stability region
of the method), recomputed every :data:`RECHECK_EVERY` steps as the flow evolves.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.symbolic.system import PDESystem
from pdeforge.solvers.run.initial import initial_state
from pdeforge.solvers.run.driver import finish, march
from pdeforge.solvers.run.frames import Frames
from pdeforge.solvers.run.inputs import SAFETY, check_dt_against, run_attributes, run_inputs
from pdeforge.solvers.run.output import NetCDFWriter, open_writer, to_dataset
from pdeforge.solvers.run.restart import already_done, begin_resume, check_options, history_of
from pdeforge.solvers.spectral.diagnostics import FlowDiagnostics
from pdeforge.solvers.spectral.stepping import (  # noqa: F401  (SpectralRK: its home before issue 13)
    EVALUATIONS, GROWTH_LIMIT, RECHECK_EVERY, STIFF_METHODS, NumpyRouted, SpectralRK, StiffSpectralStepper,
    numpy_twin, routes_to_numpy,
)

SPECTRAL_METHODS = ("euler", "ssprk3", "rk4", "ifrk4", "etdrk4", "cnrk4")
#: the default method when the system has a stiff linear part (else "rk4")
DEFAULT_STIFF_METHOD = "etdrk4"


def _check_method(method: str | None) -> str | None:
    if method is not None and method not in SPECTRAL_METHODS:
        raise SolverError(
            f"method {method!r} is not available with the spectral discretization (valid: {', '.join(SPECTRAL_METHODS)})"
        )
    return method


def make_stepper(op, uh, t0: float, method: str | None, dt: float | None, dt_max: float = math.inf,
                 route: bool = True, rtol: float | None = None, atol: float | None = None, warm: bool = True):
    """The spectral time stepper for ``method`` (None: :data:`DEFAULT_STIFF_METHOD` when the
    kernels have a stiff linear part, else "rk4").

    Args:
        op: the bound operator; uh: the initial transforms; t0: the initial time.
        method: the method's name (None: see above).
        dt: a fixed step, used exactly as given (None: "etdrk4" controls its step by the
            error estimate of :mod:`pdeforge.solvers.spectral.adaptive`, the other methods take
            the CFL step).
        dt_max: largest step.
        route: a torch operator on the CPU with no gradient asked for steps with the numpy
            kernels on the same memory (:class:`~pdeforge.solvers.spectral.stepping.NumpyRouted`;
            ``route=False`` keeps the torch kernels, as on a GPU).
        rtol, atol: tolerances of the error-controlled "etdrk4" step (None: its defaults,
            :data:`~pdeforge.solvers.spectral.adaptive.DEFAULT_RTOL` and ``DEFAULT_ATOL``).
        warm: take one throw-away step (:meth:`~pdeforge.solvers.spectral.stepping.SpectralRK.warm`)
            so that loading kernels and building the first step's coefficients happen here,
            not in the first :meth:`advance`.
    """
    if method is None:
        method = DEFAULT_STIFF_METHOD if any(k is not None for k in op.module.STIFF) else "rk4"
    adaptive = method == "etdrk4" and dt is None
    if (rtol is not None or atol is not None) and not adaptive:
        raise SolverError(f"rtol/atol control the step of etdrk4 without a fixed dt; method {method!r} "
                          f"{'with dt ' + repr(dt) if dt is not None else ''} does not read them")
    if route and routes_to_numpy(op, uh):
        twin = numpy_twin(op)
        inner = make_stepper(twin, uh.detach().contiguous().numpy(), t0, method, dt, dt_max, route=False,
                             rtol=rtol, atol=atol, warm=warm)
        return NumpyRouted(inner, op.K.torch)
    if adaptive:
        from pdeforge.solvers.spectral.adaptive import DEFAULT_ATOL, DEFAULT_RTOL, AdaptiveETDRK4

        stepper = AdaptiveETDRK4(op, uh, t0, DEFAULT_RTOL if rtol is None else rtol,
                                 DEFAULT_ATOL if atol is None else atol, dt_max=dt_max)
    elif method in STIFF_METHODS:
        stepper = StiffSpectralStepper(op, uh, t0, method, dt, dt_max=dt_max)
    else:
        stepper = SpectralRK(op, uh, t0, method, dt, dt_max=dt_max)
    if warm:
        stepper.warm()
    return stepper


def solve_spectral(
    system: PDESystem,
    grid,
    t_span,
    ic: Mapping[str, object] | None = None,
    method: str | None = None,
    dt: float | None = None,
    backend: str | None = None,
    save_every: float | None = None,
    out: str | None = None,
    params: Mapping[str, float] | None = None,
    stability: str = "warn",
    progress: bool | None = None,
    device=None,
    dtype: str = "float64",
    diagnostics: bool = True,
    in_memory: bool = True,
    constants: Mapping[str, float] | None = None,
    workers: int | None = None,
    resume: bool = False,
    variable_attrs=None,
    call: str = "",
):
    """Solve a periodic system with the generated pseudo-spectral kernels.

    Called by :func:`pdeforge.solve` for systems whose discretization is "spectral"
    (incompressible systems choose it; ``discretization="spectral"`` asks for it); the
    arguments mean what they mean there. Additionally:

    Args:
        method: "euler", "ssprk3", "rk4", or with the stiff linear part (viscosity,
            hyperviscosity, damping) exact or implicit "ifrk4", "etdrk4", "cnrk4"
            (:mod:`pdeforge.solvers.spectral.stepping`). Default: "etdrk4" when the
            equations have such a part (its CFL step does not depend on the viscosity),
            else "rk4".
        backend: "numpy" (default) or "torch".
        device: torch device for backend "torch" ("cpu", "cuda", ...). On the CPU the
            solver runs torch on one intra-op thread unless ``OMP_NUM_THREADS`` (or
            ``MKL_NUM_THREADS``, ``PDEFORGE_TORCH_THREADS``) is set or
            ``torch.set_num_threads`` was given another value than torch's default (its
            OpenMP threads spin against each other on a loaded machine), and restores the
            setting afterwards. With no gradient asked for, a CPU run steps with the numpy
            kernels on the tensors' own memory (the same generated code and results; torch's
            per-operation dispatch made it 1.1-1.3x slower), see :func:`make_stepper`.
        dtype: "float32" or "float64" (the Dataset is float64 either way).
        diagnostics: add kinetic energy, enstrophy, dissipation, energy rate and the energy
            spectrum ``E_k(t, k)`` for systems with a velocity.
        in_memory: keep every frame in memory (default); with ``out`` and ``in_memory=False``
            frames and diagnostics go only to the file, which the returned Dataset reads lazily.
        constants: parameters fixed before code generation, e.g. ``{"Cs": 0}`` (the terms
            they remove are not generated: fewer transforms).
        workers: threads of ``scipy.fft`` (backend "numpy"); None: see
            :meth:`pdeforge.codegen.spectral.compile.SpectralKernel.bind`.
        resume: continue the run in ``out`` from its last complete frame (see :func:`pdeforge.solve`).
        variable_attrs: CF attributes per variable (see :func:`pdeforge.solve`).
        call: the call that produced the run, as text (recorded in the attributes).

    Returns:
        The Dataset of :func:`pdeforge.solve` plus, with a velocity, the variables
        ``energy``, ``enstrophy``, ``dissipation``, ``energy_rate`` (dimension ``t``) and
        ``E_k`` (dimensions ``t``, ``k``).
    """
    from pdeforge.codegen.spectral.compile import SPECTRAL_TARGETS

    backend = backend or "numpy"
    if backend not in SPECTRAL_TARGETS:
        raise SolverError(f"backend {backend!r} is not available for spectral kernels (valid: {', '.join(SPECTRAL_TARGETS)})")
    method = _check_method(method)
    inputs = run_inputs(system, grid, t_span, save_every, params, dt, out, in_memory, stability)
    system, grid = inputs.system, inputs.grid
    interval = float(inputs.times[1] - inputs.times[0])
    inputs, restart = begin_resume(inputs, resume, system.fields, save_every)

    t_compile = time.perf_counter()
    kernel, op, cells0, uh = _compile_and_project(
        system, grid, ic if restart is None else dict(zip(system.fields, restart.cells)), backend, device, dtype,
        constants, workers)
    stepper = make_stepper(op, uh, inputs.t0, method, dt, dt_max=interval)
    m = stepper.method
    if dt is not None and restart is None:
        limit = stepper.cfl_dt() / SAFETY
        check_dt_against(dt, limit, stability, f"{m.name} CFL limit {limit:.4g} of the spectral discretization",
                         stacklevel=4)
    compile_time = system.parse_time_s + time.perf_counter() - t_compile
    diag = _flow_diagnostics(system, grid, op) if diagnostics else None
    attrs = run_attributes(
        system, grid, backend, m.name, dt, compile_time, kernel.cache_hit,
        device=str(op.device) if op.device is not None else "cpu",
        dtype=op.dtype,
        discretization="fourier pseudo-spectral",
        dealias="2/3 rule",
        order="spectral",
        bcs="periodic",
        dt_rule="fixed" if dt is not None else (
            f"CFL, {SAFETY:g} of the limit" + (" of the explicit part" if m.name in ("ifrk4", "etdrk4", "cnrk4") else "")
            + f", re-estimated every {RECHECK_EVERY} steps"),
        initial_divergence_removed=float(np.max(np.abs(op.K.to_numpy(op.divergence(cells0))))) if op.velocity else 0.0,
        transforms_per_rhs=f"{op.transform_counts['inverse']} inverse + {op.transform_counts['forward']} forward",
        constants=";".join(f"{k}={v!r}" for k, v in sorted(getattr(op.system, "constants", {}).items())),
        call=call,
        save_every=float(save_every) if save_every is not None else float("nan"),
    )
    if restart is not None:
        attrs["initial_divergence_removed"] = restart.attrs.get("initial_divergence_removed", 0.0)
        check_options(restart, attrs)
        if len(inputs.times) == 1:  # the file already reaches t_end
            return already_done(restart, in_memory)
        stepper.restore(restart.state)
        attrs["history"] = history_of(restart, attrs)
    with torch_cpu_threads(op):
        return _march_and_write(stepper, op, diag, inputs, attrs, progress, in_memory, m.name, restart,
                                variable_attrs)


@contextmanager
def torch_cpu_threads(op, threads: int = 1):
    """Run torch on ``threads`` intra-op threads for a CPU operator, then restore the setting.

    Left alone: other targets and devices, the threads set in the environment
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``PDEFORGE_TORCH_THREADS``), or a
    thread count the user chose with ``torch.set_num_threads`` (any value other than torch's
    default, the number of cores).
    """
    from pdeforge.codegen.torch import fused as torch_fused

    if op.K.library != "torch" or op.K.device.type != "cpu" or torch_fused.threads_set_by_environment():
        yield
        return
    from pdeforge.codegen.spectral.backend import physical_cores

    chosen = op.K.torch.get_num_threads() not in {physical_cores(), os.cpu_count()}
    with torch_fused.threads(None if chosen else threads):
        yield


def _compile_and_project(system, grid, ic, backend, device, dtype, constants=None, workers=None):
    """The spectral kernel bound to ``grid`` (planned for solenoidal, truncated states), the
    initial state on the cells and its divergence-free, 2/3-truncated transform."""
    from pdeforge.codegen.spectral.compile import compile_spectral

    kernel = compile_spectral(system, backend, device, dtype, constants=constants, form="solenoidal")
    op = kernel.bind(grid, workers=workers)
    cells0 = initial_state(system, grid, ic)
    uh = op.project_hat(op.to_spectral(cells0), truncate=True)
    if op.K.library == "torch":
        uh = uh.contiguous()
    return kernel, op, cells0, uh


def _flow_diagnostics(system, grid, op) -> FlowDiagnostics | None:
    """Energy, enstrophy, dissipation and spectrum of systems with a velocity."""
    if not op.velocity:
        return None
    from pdeforge.codegen.spectral.backend import SpectralRuntime

    return FlowDiagnostics(SpectralRuntime(grid), op.velocity_index, system.params.get("nu"))


def _march_and_write(stepper, op, diag, inputs, attrs, progress, in_memory: bool, method: str, restart=None,
                     variable_attrs=None):
    """Step to every output time, recording frames and flow diagnostics; the Dataset."""
    grid, system, out_path = inputs.grid, inputs.system, inputs.out_path
    records: dict[str, list] = {k: [] for k in ("energy", "enstrophy", "dissipation", "energy_rate", "E_k")}
    writer = open_writer(out_path, grid, system.fields, attrs | {"status": "running"}, restart, variable_attrs,
                         stepper.restart_state)
    if writer is not None and diag is not None:
        if restart is None:
            _define_diagnostics(writer, diag)
        writer.on_frame = lambda i: _write_diagnostics(writer, records, diag, i)

    def diagnose(t: float, state_hat) -> None:
        h = op.K.to_numpy(state_hat)
        records["energy"].append(diag.energy(h))
        records["enstrophy"].append(diag.enstrophy(h))
        records["dissipation"].append(diag.dissipation(h))
        records["energy_rate"].append(diag.energy_rate(h, op.K.to_numpy(op.rhs_hat(state_hat, t))))
        records["E_k"].append(diag.spectrum(h))
        if not in_memory:  # the file holds them; keep only the latest for the writer
            for values in records.values():
                del values[:-1]

    frames = Frames(writer, in_memory and restart is None, (len(system.fields), *grid.shape))

    def record(t: float, state_hat) -> None:
        cells = np.asarray(op.K.to_numpy(op.to_physical(state_hat)), dtype=float)
        if diag is not None:
            diagnose(t, state_hat)
        frames.record(t, cells, copy=False)

    if restart is None:
        record(inputs.t0, stepper.y)
    else:
        frames.continue_from(restart.t, restart.frames)
    run = march(stepper, inputs.times, lambda t: record(t, stepper.y),
                lambda exc: frames.keep_last_good(exc, lambda t, c: record(t, op.to_spectral(c))),
                system.name, progress, out_path if writer else None, stacklevel=5)
    attrs.update(
        wall_time_s=run.wall_s,
        status=run.status,
        rhs_evaluations=int(stepper.steps * EVALUATIONS[method]),
    )
    attrs.update(stepper.run_attributes(stepper.t - inputs.t0))

    def dataset():
        ds = to_dataset(grid, system.fields, frames.times, frames.states, attrs, variable_attrs)
        return _attach_diagnostics(ds, records, diag) if diag is not None else ds

    return finish(writer, attrs, dataset if in_memory and restart is None else None, out_path, run, stepper.t,
                  len(frames), load=in_memory)


_DIAG_META = {
    "energy": ("mean kinetic energy <|u|^2>/2", "t"),
    "enstrophy": ("mean enstrophy <|omega|^2>/2", "t"),
    "dissipation": ("resolved viscous dissipation 2 nu <S_ij S_ij> = 2 nu enstrophy", "t"),
    "energy_rate": ("dE/dt of the semi-discrete equations (viscous + subgrid + forcing)", "t"),
}


def _attach_diagnostics(ds, records, diag: FlowDiagnostics):
    n = len(ds.t)
    ds = ds.assign_coords(k=("k", diag.k, {"long_name": "wavenumber shell centre |k|", "units": "1"}))
    for name, (long_name, _) in _DIAG_META.items():
        ds[name] = ("t", np.asarray(records[name][:n], dtype=float), {"long_name": long_name, "units": "1"})
    ds["E_k"] = (("t", "k"), np.asarray(records["E_k"][:n], dtype=float),
                 {"long_name": "shell-summed energy spectrum E(k) (sum over k of E_k dk = energy)", "units": "1"})
    return ds


def _define_diagnostics(writer: NetCDFWriter, diag: FlowDiagnostics) -> None:
    nc = writer.nc
    nc.createDimension("k", len(diag.k))
    kv = nc.createVariable("k", "f8", ("k",))
    kv[:] = diag.k
    kv.setncatts({"long_name": "wavenumber shell centre |k|", "units": "1"})
    for name, (long_name, _) in _DIAG_META.items():
        v = nc.createVariable(name, "f8", ("t",))
        v.setncatts({"long_name": long_name, "units": "1"})
    v = nc.createVariable("E_k", "f8", ("t", "k"))
    v.setncatts({"long_name": "shell-summed energy spectrum E(k)", "units": "1"})
    nc.sync()


def _write_diagnostics(writer: NetCDFWriter, records, diag, i: int) -> None:
    """Frame ``i``'s diagnostics (written before the frame is counted as complete)."""
    for name in _DIAG_META:
        writer.nc.variables[name][i] = records[name][-1]
    writer.nc.variables["E_k"][i, :] = records["E_k"][-1]

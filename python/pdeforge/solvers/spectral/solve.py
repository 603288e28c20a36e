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
from contextlib import contextmanager

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.solvers.run.initial import initial_state
from pdeforge.solvers.methods import get_method
from pdeforge.solvers.run.inputs import SAFETY, check_dt_against
from pdeforge.solvers.run.output import NetCDFWriter
from pdeforge.solvers.run.pipeline import RunFamily
from pdeforge.solvers.spectral.diagnostics import FlowDiagnostics
from pdeforge.solvers.spectral.stepping import (
    EVALUATIONS, RECHECK_EVERY, STIFF_METHODS, NumpyRouted, SpectralRK, StiffSpectralStepper,
    numpy_twin, routes_to_numpy,
)

#: the methods of the spectral discretization
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


class SpectralFamily(RunFamily):
    """Periodic systems with the generated pseudo-spectral kernels in the run driver: the state is
    the dealiased half spectrum; frames are its physical values, plus flow diagnostics for
    systems with a velocity (``energy``, ``enstrophy``, ``dissipation``, ``energy_rate``, ``E_k``).

    The method defaults to "etdrk4" when the equations have a stiff linear part (viscosity,
    hyperviscosity, damping; its CFL step does not depend on the viscosity), else "rk4"; the
    backend to "numpy" ("torch" too: on the CPU with no gradient asked for it steps with the numpy
    kernels on the tensors' own memory, see :func:`make_stepper`).
    """

    def prepare(self, inputs, restart, done) -> dict:
        from pdeforge.codegen.spectral.compile import SPECTRAL_TARGETS

        job = self.job
        system, grid, backend = job.system, inputs.grid, job.backend
        if backend.name not in SPECTRAL_TARGETS:
            raise SolverError(f"backend {backend.name!r} is not available for spectral kernels "
                              f"(valid: {', '.join(SPECTRAL_TARGETS)})")
        m = job.method
        if m is not None and "spectral" not in m.families:
            raise SolverError(f"method {m.name!r} is not available with the spectral discretization "
                              f"(valid: {', '.join(SPECTRAL_METHODS)})")
        settings = backend.settings()
        interval = float(inputs.times[1] - inputs.times[0])
        kernel, op, cells0, uh = self.operator(
            system, grid, job.ic if restart is None else dict(zip(system.fields, restart.cells)), backend.name,
            settings.get("device"), settings.get("dtype", "float64"), settings.get("workers"))
        dt = m.dt if m is not None else job.dt
        dt_max = interval
        if m is not None and m.setting("dt_max") is not None:
            dt_max = min(interval, float(m.dt_max))
        tolerances = {k: m.setting(k) for k in ("rtol", "atol")} if m is not None else {}
        self.before_stepper(op, m.name if m is not None else None, dt, dt_max, tolerances)
        stepper = make_stepper(op, uh, inputs.t0, m.name if m is not None else None, dt, dt_max=dt_max, **tolerances)
        self.t0 = inputs.t0
        self.method = stepper.method
        if m is None:  # the default the kernels chose, for the driver
            job.method = get_method(stepper.method.name)
        if dt is not None and restart is None:
            limit = stepper.cfl_dt() / SAFETY
            check_dt_against(dt, limit, m.stability if m is not None else "warn", f"{self.method.name} CFL limit {limit:.4g} of the spectral "
                             "discretization", stacklevel=6)
        self.op, self.stepper, self.cells0 = op, stepper, cells0
        self.cell_shape = (len(system.fields), *op.shape)
        self.diag = _flow_diagnostics(system, grid, op) if job.discretization.diagnostics else None
        self.records: dict[str, list] = {k: [] for k in ("energy", "enstrophy", "dissipation", "energy_rate", "E_k")}
        name = self.method.name
        attrs = dict(
            backend=backend.name, method=name, dt=dt, cache_hit=kernel.cache_hit,
            device=str(op.device) if op.device is not None else "cpu",
            dtype=op.dtype,
            discretization="fourier pseudo-spectral",
            dealias="2/3 rule",
            order="spectral",
            bcs="periodic",
            dt_rule="fixed" if dt is not None else (
                f"CFL, {SAFETY:g} of the limit" + (" of the explicit part" if name in STIFF_METHODS else "")
                + f", re-estimated every {RECHECK_EVERY} steps"),
            initial_divergence_removed=(op.K.allmax(float(np.max(np.abs(op.K.to_numpy(op.divergence(cells0))))))
                                        if op.velocity else 0.0),
            transforms_per_rhs=f"{op.transform_counts['inverse']} inverse + {op.transform_counts['forward']} forward",
            constants=";".join(f"{k}={v!r}" for k, v in sorted(getattr(op.system, "constants", {}).items())),
        )
        if restart is not None:
            attrs["initial_divergence_removed"] = restart.attrs.get("initial_divergence_removed", 0.0)
        return attrs

    def operator(self, system, grid, ic, backend: str, device, dtype: str, workers):
        """The bound operator, the initial cells and their projected transform (see
        :func:`_compile_and_project`); a distributed family binds to this rank's part."""
        return _compile_and_project(system, grid, ic, backend, device, dtype, None, workers)

    def before_stepper(self, op, method: str | None, dt: float | None, dt_max: float, tolerances: dict) -> None:
        """Called before the stepper is built (and warmed up by one step)."""

    def initial_frame(self):
        self.cells0 = None
        return self.stepper.y

    def frame(self):
        return self.stepper.y

    def on_frame(self, t, state_hat, fresh=False):
        op = self.op
        cells = np.asarray(op.K.to_numpy(op.to_physical(state_hat)), dtype=float)
        if t is not None and self.diag is not None:
            self._diagnose(state_hat, t)
        return cells

    def _diagnose(self, state_hat, t: float) -> None:
        op, diag, records = self.op, self.diag, self.records
        h = op.K.to_numpy(state_hat)
        records["energy"].append(diag.energy(h))
        records["enstrophy"].append(diag.enstrophy(h))
        records["dissipation"].append(diag.dissipation(h))
        records["energy_rate"].append(diag.energy_rate(h, op.K.to_numpy(op.rhs_hat(state_hat, t))))
        records["E_k"].append(diag.spectrum(h))
        if not self.job.output.in_memory:  # the file holds them; keep only the latest for the writer
            for values in records.values():
                del values[:-1]

    def keep_last_good(self, exc, frames) -> float:
        return frames.keep_last_good(exc, lambda t, c: self._record_raw(t, self.op.to_spectral(c)))

    def define_variables(self, writer) -> None:
        if self.diag is not None:
            _define_diagnostics(writer, self.diag)

    def write_variables(self, writer, index: int) -> None:
        if self.diag is not None:
            _write_diagnostics(writer, self.records, self.diag, index)

    def attach(self, ds):
        return _attach_diagnostics(ds, self.records, self.diag) if self.diag is not None else ds

    def after(self, run) -> dict:
        stepper = self.stepper
        attrs = {"rhs_evaluations": int(stepper.steps * EVALUATIONS[self.method.name])}
        attrs.update(stepper.run_attributes(stepper.t - self.t0))
        return attrs

    def marching(self):
        return torch_cpu_threads(self.op)


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

    # the operator's own runtime where it is a NumPy one (a distributed runtime: this rank's modes)
    runtime = op.K if op.K.library == "numpy" else SpectralRuntime(grid)
    return FlowDiagnostics(runtime, op.velocity_index, system.params.get("nu"))


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

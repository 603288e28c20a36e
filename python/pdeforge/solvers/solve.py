"""``pdeforge.solve``: from a system (or model name) to an xarray Dataset."""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..discretize.grid import UniformGrid
from ..errors import SolverError, StabilityWarning
from ..symbolic.system import PDESystem
from .initial import initial_state
from .methods import get_method
from .output import NetCDFWriter, check_output_path, to_dataset
from .stability import explicit_dt_limit
from .driver import finish, march
from .steppers import BlowUp, DormandPrince, FixedStepRK, ImplicitBDF

#: Fraction of the estimated stability limit used when no dt is given.
SAFETY = 0.8
#: Default number of saved intervals when save_every is not given.
DEFAULT_FRAMES = 50


def _time_span(t_span) -> tuple[float, float]:
    try:
        if isinstance(t_span, (int, float)):
            t0, t1 = 0.0, float(t_span)
        else:
            t0, t1 = (float(v) for v in t_span)
    except (TypeError, ValueError):
        raise SolverError(f"t_span: expected (t0, t_end) or t_end, got {t_span!r}") from None
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 <= t0:
        raise SolverError(f"t_span: need finite t0 < t_end, got ({t0}, {t1})")
    return t0, t1


def _save_times(t0: float, t1: float, save_every: float | None) -> np.ndarray:
    if save_every is None:
        return np.linspace(t0, t1, DEFAULT_FRAMES + 1)
    save_every = float(save_every)
    if not (save_every > 0 and math.isfinite(save_every)):
        raise SolverError(f"save_every must be a positive number, got {save_every!r}")
    n = int(math.floor((t1 - t0) / save_every + 1e-9))
    times = t0 + save_every * np.arange(n + 1)
    if t1 - times[-1] > 1e-9 * max(1.0, abs(t1)):
        times = np.append(times, t1)
    else:
        times[-1] = t1
    return times


def solve(
    system: PDESystem | str,
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
    seed: int | None = None,
    in_memory: bool = True,
    dt_max: float | None = None,
    scheme: str | None = None,
    discretization: str | None = None,
    device=None,
    dtype: str = "float64",
    closures: Mapping[str, object] | None = None,
):
    """Solve a PDE system in time and return an ``xarray.Dataset``.

    Args:
        system: a :class:`~pdeforge.PDESystem`, or a model name from the catalogue (then
            every other argument defaults to the model's).
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
        seed: seed of a model's random initial condition (model names only).
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
            periodic systems; see :mod:`pdeforge.solvers.spectral_solve`). Default: the
            system's own choice (spectral for incompressible systems), else "fd".
        device: torch device of backend "torch" ("cpu" default, "cuda", "cuda:1", ...), spectral
            or finite differences.
        dtype: "float64" (default) or "float32": backend "torch", or the spectral discretization.
        closures: closure name -> ``torch.nn.Module`` (or callable) for the closure terms of
            the system (finite differences, backend "torch"; see
            :mod:`pdeforge.symbolic.closure_terms`).

    Returns:
        Dataset with dimension ``t`` plus ``x``, ``y``, ``z``, one variable per field, and
        attributes ``equations``, ``parameters`` (JSON), ``backend``, ``method``, ``steps``,
        ``compile_time_s``, ``wall_time_s``, ``status`` and more. If the solution blows up,
        the run stops, the last finite state is the last frame and ``status`` says so.

    Raises:
        RunInterrupted: on Ctrl-C, carrying the frames computed so far as ``.dataset``.
    """
    if isinstance(system, str):
        from ..models import get_model

        model = get_model(system)
        system, defaults = model.setup(params=params, grid=grid, seed=seed)
        grid = grid if grid is not None else defaults["grid"]
        t_span = t_span if t_span is not None else defaults["t_end"]
        ic = ic if ic is not None else defaults["ic"]
        if save_every is None and defaults["save_every"] is not None:
            save_every = min(defaults["save_every"], _time_span(t_span)[1] - _time_span(t_span)[0])
        if method is None:
            method = defaults["method"]
            if dt is None and dt_max is None:
                dt_max = defaults.get("dt")
        scheme = scheme if scheme is not None else defaults["scheme"]
        params = None
    if not isinstance(system, PDESystem):
        raise SolverError(f"system: expected a PDESystem or a model name, got {type(system).__name__}")
    if grid is None:
        raise SolverError("grid: give the number of cells per axis")
    if t_span is None:
        raise SolverError("t_span: give (t0, t_end) or t_end")
    if stability not in ("warn", "error", "ignore"):
        raise SolverError(f"stability: 'warn', 'error' or 'ignore', got {stability!r}")
    if _discretization(system, discretization, device, dtype, backend) == "spectral":
        from .spectral_solve import solve_spectral

        return solve_spectral(system, grid, t_span, ic, method, dt, backend, save_every, out, params, stability,
                              progress, device, dtype, in_memory=in_memory)
    backend = backend or "numba"
    system, grid, t0, t1, times, out_path = run_inputs(system, grid, t_span, save_every, params, dt, out, in_memory)
    m = get_method(method or "rk4")

    from ..codegen.build import check_target, compile_system

    check_target(backend)
    bind_options = {}
    fixed_step, adaptive = FixedStepRK, DormandPrince
    if backend == "torch":
        from ..codegen.torch_kernel import TorchDormandPrince, TorchFixedStepRK

        bind_options = {"device": device, "dtype": dtype}
        fixed_step, adaptive = TorchFixedStepRK, TorchDormandPrince
    t_compile = time.perf_counter()
    scheme = scheme or "fd"
    kernel = compile_system(system, target=backend, order=order, simplifier=simplifier, scheme=scheme,
                            closures=closures)
    bound = kernel.bind(grid, **bind_options)
    cells0 = initial_state(system, grid, ic)
    ic = None  # the arrays a caller passed are not needed any more: keep peak memory down

    if m.kind == "fixed" and getattr(kernel, "closures", None):
        # the stability estimate differentiates the equations symbolically; closure terms are opaque
        if dt is None:
            raise SolverError("dt: the stability limit of a system with closure terms cannot be estimated; give dt")
        stepper = fixed_step(bound, cells0, t0, dt, m.name)
    elif m.kind == "fixed":
        est = explicit_dt_limit(system, grid, cells0, t0, m, order, scheme=scheme, t_end=t1)
        if dt is None:
            if not math.isfinite(est.dt_max):
                raise SolverError(
                    f"dt: no stability limit could be estimated for {m.name}; give dt or use method 'rk45'"
                )
            dt = SAFETY * est.dt_max
            if dt_max is not None:
                dt = min(dt, float(dt_max))
        elif dt > est.dt_max and stability != "ignore":
            msg = (
                f"dt = {dt:g} exceeds the estimated {m.name} stability limit {est.dt_max:.4g} "
                f"(from the equation for {est.limiting_field!r}); try dt <= {SAFETY * est.dt_max:.3g}"
            )
            if stability == "error":
                raise SolverError(msg)
            warnings.warn(msg, StabilityWarning, stacklevel=2)
        stepper = fixed_step(bound, cells0, t0, dt, m.name)
    elif m.kind == "adaptive":
        stepper = adaptive(bound, cells0, t0, rtol=rtol, atol=atol, dt=dt,
                           dt_max=dt_max if dt_max is not None else np.inf)
    else:
        stepper = ImplicitBDF(bound, cells0, t0, t1, rtol=rtol, atol=atol, dt=dt)
    bound.warm_up(stepper.kernels_used())
    compile_time = system.parse_time_s + time.perf_counter() - t_compile

    attrs = {
        "title": f"pdeforge run of {system.name}",
        "model": system.name,
        "equations": system.equations_text(),
        "parameters": json.dumps(system.params),
        "backend": backend,
        **({"device": str(bound.device), "dtype": str(bound.dtype).replace("torch.", "")} if backend == "torch" else {}),
        "method": m.name,
        "order": order,
        "scheme": scheme,
        "grid": "x".join(map(str, grid.shape)),
        "domain": json.dumps(grid.domain),
        "bcs": json.dumps({f"{f}:{system.axes[a]}": [b.describe() for b in pair] for (f, a), pair in system.bcs.items()}),
        "dt": float(dt) if dt is not None else float("nan"),
        "compile_time_s": compile_time,
        "kernel_cache_hit": int(kernel.cache_hit),
        "pdeforge_version": __import__("pdeforge").__version__,
    }
    if m.kind != "fixed":
        attrs.update(rtol=rtol, atol=atol)

    writer = NetCDFWriter(out_path, grid, system.fields, attrs | {"status": "running"}) if out_path else None
    frame_times: list[float] = [t0]
    frames: list[np.ndarray] = [cells0] if in_memory else []
    if writer:
        writer.append(t0, cells0)
    del cells0  # the stepper holds its own copy

    def save(t: float) -> None:
        state = stepper.cells()
        frame_times.append(t)
        if in_memory:
            frames.append(state.copy())
        if writer:
            writer.append(t, state)

    def keep_last_good(exc: BlowUp) -> float:
        if exc.t > frame_times[-1]:
            frame_times.append(exc.t)
            good = np.asarray(exc.cells).reshape(bound.cell_shape)
            if in_memory:
                frames.append(good)
            if writer:
                writer.append(exc.t, good)
        return frame_times[-1]

    run = march(stepper, times, save, keep_last_good, system.name, progress, out_path if writer else None)
    attrs.update(steps=int(stepper.steps), wall_time_s=run.wall_s, status=run.status)
    if isinstance(stepper, DormandPrince):
        attrs["rejected_steps"] = int(stepper.rejected)
    if isinstance(stepper, ImplicitBDF):
        attrs.update(rhs_evaluations=stepper.nfev, jacobian_evaluations=stepper.njev)
    final_t = stepper.t
    del stepper, bound, save, keep_last_good  # free the work arrays before xarray is imported (peak memory)
    dataset = (lambda: to_dataset(grid, system.fields, frame_times, frames, attrs)) if in_memory else None
    return finish(writer, attrs, dataset, out_path, run.interrupted, final_t, len(frame_times))


def run_inputs(system: PDESystem, grid, t_span, save_every, params, dt, out, in_memory: bool):
    """Check and resolve the inputs every solver shares.

    Returns the system with ``params`` applied, the :class:`UniformGrid`, ``t0``, ``t1``, the
    output times and the checked output path (or None).
    """
    if params:
        system = system.with_params(**params)
    grid = grid if isinstance(grid, UniformGrid) else UniformGrid.from_spec(system.domain, grid)
    if grid.domain != system.domain:
        raise SolverError("grid: its domain differs from the system's")
    t0, t1 = _time_span(t_span)
    times = _save_times(t0, t1, save_every)
    if dt is not None and not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise SolverError(f"dt must be a positive number, got {dt!r}")
    out_path = check_output_path(out) if out is not None else None
    if not in_memory and out_path is None:
        raise SolverError("in_memory=False needs an output file (out=...)")
    return system, grid, t0, t1, times, out_path


def _discretization(system: PDESystem, requested: str | None, device, dtype: str, backend: str | None = None) -> str:
    """The discretization of a run: the requested one, else the system's own choice."""
    own = getattr(system, "discretization", "fd")
    choice = requested or own
    if choice not in ("fd", "spectral"):
        raise SolverError(f"discretization {choice!r}: 'fd' (finite differences) or 'spectral'")
    if choice == "fd" and own == "spectral":
        raise SolverError(f"system {system.name!r} is incompressible: it needs discretization='spectral'")
    if choice == "fd" and backend != "torch" and (device is not None or dtype not in (None, "float64")):
        raise SolverError(
            f"device and dtype apply to backend 'torch' (or the spectral kernels); finite differences with "
            f"backend {backend or 'numba'!r} run in float64 on the CPU"
        )
    return choice

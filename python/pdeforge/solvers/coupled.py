"""Solving ODE-PDE systems (scalars, ``integral``, ``mean``): steppers, preconditioner, output.

The flat state ``[field cells, scalars]`` of :class:`pdeforge.codegen.coupled.CoupledBoundKernel`
goes through the usual steppers (euler, ssprk3, rk4 and rk45 stage by stage; bdf = CVODE,
scipy-bdf and rosenbrock23 with the exact Jacobian). The Krylov solvers are preconditioned by
:class:`BorderedPreconditioner`: the field block by the usual preconditioner, the scalar rows and
columns (and the rank-one feedback of reductions in field equations) exactly, by the Woodbury
identity. The Dataset holds each scalar as a variable on dimension ``t``; the ``--out`` file
too, and a resumed run reads them back.
"""

from __future__ import annotations

import math
import time

import numpy as np

from pdeforge.errors import InitialConditionError, SolverError
from pdeforge.solvers.implicit.preconditioners import Preconditioner


class _FieldBlock:
    """What :class:`~pdeforge.solvers.implicit.preconditioners.Preconditioner` reads of a bound kernel, for the field block."""

    def __init__(self, bound):
        self.size = bound.nfield_values
        self.nfields = bound.nfields
        self.grid = bound.grid
        self.kernel = type("FieldKernel", (), {"system": bound.kernel.system})()


class BorderedPreconditioner:
    """Solves with ``I - gamma J`` for ``J = blockdiag(J_uu, 0) + U V^T`` (Woodbury identity).

    The field block ``I - gamma J_uu`` is solved by a :class:`Preconditioner` of ``kind`` ("lu":
    exact, "split", "ilu", "amg": approximate); the low-rank part (scalar rows and columns,
    feedback of reductions) through the small capacitance matrix ``-I/gamma + V^T M^-1 U``, so
    the dense rows and columns never enter a factorisation.
    """

    def __init__(self, bound, kind: str = "split"):
        self.bound, self.kind = bound, kind
        self.field = Preconditioner(_FieldBlock(bound), kind)
        self.parts = None
        self._field_stale = True  # the field preconditioner has not split the current J_uu yet
        self.jacobian_evaluations = 0
        self.solves = 0
        self.solve = lambda r: np.array(r, copy=True)

    @property
    def transport_solver(self) -> str:
        return self.field.transport_solver

    def use_jacobian(self, J) -> None:
        """Take a full assembled Jacobian (the scalar border is split off as a rank-2S term)."""
        N, S = self.bound.nfield_values, self.bound.nscalars
        J = J.tocsr()
        U = np.zeros((N + S, 2 * S))
        Vt = np.zeros((2 * S, N + S))
        U[:N, :S] = J[:N, N:].toarray()
        Vt[:S, N:] = np.eye(S)
        U[N:, S:] = np.eye(S)
        Vt[S:] = J[N:].toarray()
        self.parts = (J[:N, :N].tocsr(), U, Vt)
        self._field_stale = True

    def setup(self, t: float, y: np.ndarray, gamma: float, jacobian_ok: bool = False) -> bool:
        new = False
        if self.kind == "none":
            return False
        if self.parts is None or not jacobian_ok:
            self.jacobian_evaluations += 1
            self.parts = self.bound.jacobian_parts(t, y)
            self._field_stale = True
            new = True
        J_uu, U, Vt = self.parts
        N = self.bound.nfield_values
        if self._field_stale:  # split J_uu once per Jacobian, not at every new gamma
            self.field.use_jacobian(J_uu)
            self._field_stale = False
        self.field.setup(t, y[:N], gamma, jacobian_ok=True)
        field_solve = self.field.solve

        def inner(r):
            z = np.array(r, dtype=float, copy=True)
            z[:N] = field_solve(z[:N])
            return z

        Y = np.column_stack([inner(U[:, j]) for j in range(U.shape[1])]) if U.shape[1] else np.zeros((len(y), 0))
        from scipy.linalg import lu_factor, lu_solve

        # the capacitance matrix is factorised once per setup, not at every Krylov iteration
        cap = lu_factor(-np.eye(U.shape[1]) / gamma + Vt @ Y) if gamma and U.shape[1] else None

        def solve(r):
            self.solves += 1
            z = inner(r)
            if cap is not None:
                z -= Y @ lu_solve(cap, Vt @ z)
            return z

        self.solve = solve
        return new


def make_preconditioner(bound, kind: str):
    """The preconditioner of ``kind`` for ``bound``: bordered for ODE-PDE kernels, else the usual one."""
    if hasattr(bound, "jacobian_parts"):
        return BorderedPreconditioner(bound, kind)
    return Preconditioner(bound, kind)


def scalar_initial(system, ic, params) -> np.ndarray:
    """Initial scalar values from ``ic`` (numbers or expressions of the parameters)."""
    values = []
    for s in system.scalars:
        if ic is None or s not in ic:
            raise InitialConditionError(f"ic: no initial value for scalar {s!r} (give ic={{{s!r}: number, ...}})")
        v = ic[s]
        try:
            if isinstance(v, str):
                expr = system.parse(v, f"initial value of scalar {s!r}", with_fields=False)
                v = expr.xreplace({system.param_symbols[p]: val for p, val in params.items()})
            v = float(v)
        except (TypeError, ValueError):
            raise InitialConditionError(f"ic: the initial value of scalar {s!r} must be a number or an expression "
                                        f"of the parameters, got {v!r}") from None
        if not math.isfinite(v):
            raise InitialConditionError(f"ic: the initial value of scalar {s!r} is not finite ({v})")
        values.append(v)
    return np.array(values)


def solve_coupled(system, pipeline, grid, t_span, ic=None, method=None, dt=None, backend=None, save_every=None,
                  out=None, order=2, params=None, rtol=1e-6, atol=1e-9, stability="warn", progress=None,
                  simplifier="sympy",
                  in_memory=True, dt_max=None, scheme=None, discretization=None, device=None, dtype="float64",
                  linear_solver="auto", preconditioner="auto", resume=False, variable_attrs=None, call="", **rest):
    """:func:`pdeforge.solvers.solve.solve` for a system with scalars or reductions (same arguments).

    ``pipeline`` is solve's ``(compile_and_bind, choose_dt, stepper)``: the same compile, step
    choice and stepper construction as every other run.
    """
    from pdeforge.solvers.run.initial import initial_state
    from pdeforge.solvers.run.inputs import run_attributes, run_inputs
    from pdeforge.solvers.methods import get_method
    from pdeforge.solvers.run.restart import apply_restart, begin_resume
    compile_and_bind, choose_dt, make_stepper = pipeline

    unsupported = {k: v for k, v in rest.items() if v not in (None, False, {}, ())}
    if unsupported:
        raise SolverError(f"{next(iter(unsupported))}: not supported for systems with scalars or integral()/mean()")
    if discretization == "spectral":
        raise SolverError("discretization 'spectral': systems with scalars or integral()/mean() are solved with "
                          "finite differences (discretization 'fd')")
    m = get_method(method or "rk4")
    if m.name in ("imex",):
        raise SolverError(f"method {m.name!r} is not available for systems with scalars or integral()/mean(); "
                          "use euler, ssprk3, rk4, rk45, bdf, scipy-bdf or rosenbrock23")
    backend = backend or "numba"
    inputs = run_inputs(system, grid, t_span, save_every, params, dt, out, in_memory, stability)
    system, grid = inputs.system, inputs.grid
    scheme = scheme or "fd"
    inputs, restart = begin_resume(inputs, resume, system.fields, save_every)
    done = restart is not None and len(inputs.times) == 1
    t_compile = time.perf_counter()
    kernel, bound = compile_and_bind(system, grid, backend, order, simplifier, scheme, None, device, dtype)
    if restart is None:
        ic = system.ic if ic is None else ic
        fields_ic = None if ic is None else {k: v for k, v in ic.items() if k not in system.scalars}
        y0 = bound.join(initial_state(system, grid, fields_ic), scalar_initial(system, ic, system.params))
        if m.kind == "fixed":
            lifted = kernel.main.system
            cells = bound._lift(y0, inputs.t0)[0].reshape(len(lifted.fields), *grid.shape)
            dt = choose_dt(lifted, grid, kernel.main, cells, inputs, m, dt, dt_max, order, scheme, stability)
    else:
        y0 = bound.join(restart.cells, read_scalars(restart.path, system.scalars, restart.frames))
        dt = dt if dt is not None else restart.dt
        saved = restart.state.get("dt")
        if m.kind == "implicit" and saved is not None and math.isfinite(float(saved)) and saved > 0:
            dt = min(float(saved), inputs.t1 - inputs.t0)
    stepper = None  # none when the file already reaches t_end
    if not done:
        stepper = make_stepper("numpy", m, bound, y0, inputs, dt, dt_max, rtol, atol, linear_solver, preconditioner)
        bound.warm_up(stepper.kernels_used())
    compile_time = system.parse_time_s + time.perf_counter() - t_compile
    attrs = run_attributes(system, grid, backend, m.name, dt, compile_time, kernel.cache_hit, order=order,
                           scheme=scheme, scalars=", ".join(system.scalars))
    if m.kind not in ("fixed", "imex"):
        attrs.update(rtol=rtol, atol=atol)
    attrs.update(call=call, save_every=float(save_every) if save_every is not None else float("nan"))
    if restart is not None and (finished := apply_restart(restart, attrs, stepper, m.kind == "implicit", done,
                                                          in_memory)) is not None:
        return finished
    return _march(stepper, bound, y0, inputs, attrs, progress, in_memory, restart, variable_attrs)


def read_scalars(path, scalars, frames: int) -> np.ndarray:
    """The scalars' values in the last complete frame of a run file."""
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        missing = [s for s in scalars if s not in nc.variables]
        if missing:
            raise SolverError(f"resume {str(path)!r}: it lacks the scalar variable(s) {', '.join(missing)}; "
                              "it cannot be resumed (run without resume to start anew)")
        return np.array([float(nc.variables[s][frames - 1]) for s in scalars])


def _march(stepper, bound, y0, inputs, attrs, progress, in_memory, restart, variable_attrs):
    """Step to every output time; fields as (t, x, ...) variables and scalars as (t,) ones."""
    from pdeforge.solvers.run.driver import finish, march
    from pdeforge.solvers.run.frames import Frames
    from pdeforge.solvers.run.output import field_attrs, open_writer, to_dataset

    out_path, grid, system = inputs.out_path, inputs.grid, inputs.system
    writer = open_writer(out_path, grid, system.fields, attrs | {"status": "running"}, restart, variable_attrs,
                         stepper.restart_state)
    pending: list[np.ndarray] = []
    if writer is not None:
        if restart is None:
            for s in system.scalars:
                var = writer.nc.createVariable(s, "f8", ("t",))
                var.setncatts(field_attrs(s, variable_attrs))

        def on_frame(k):
            for s, v in zip(system.scalars, pending[-1]):
                writer.nc.variables[s][k] = v

        writer.on_frame = on_frame
    frames = Frames(writer, in_memory and restart is None, bound.field_shape)
    scalar_frames: list[np.ndarray] = []

    def record(t, y):
        cells, scalars = bound.split(y)
        pending[:] = [scalars.copy()]
        scalar_frames.append(scalars.copy())
        frames.record(t, cells)

    if restart is None:
        record(inputs.t0, y0)
    else:
        frames.continue_from(restart.t, restart.frames)
    def keep_last_good(exc) -> float:
        if exc.t > frames.times[-1]:
            record(exc.t, exc.cells)
        return frames.times[-1]

    run = march(stepper, inputs.times, lambda t: record(t, stepper.cells()), keep_last_good,
                system.name, progress, out_path if writer else None)
    attrs.update(steps=int(stepper.steps), wall_time_s=run.wall_s, status=run.status)
    attrs.update(stepper.run_statistics())
    final_t = stepper.t
    dataset = None
    if in_memory and restart is None:
        def dataset():
            ds = to_dataset(grid, system.fields, frames.times, frames.states, attrs, variable_attrs)
            for i, s in enumerate(system.scalars):
                ds[s] = ("t", np.array([v[i] for v in scalar_frames]), field_attrs(s, variable_attrs))
            return ds
    return finish(writer, attrs, dataset, out_path, run, final_t, len(frames), load=in_memory)

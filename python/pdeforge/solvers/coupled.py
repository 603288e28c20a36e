"""Solving ODE-PDE systems (scalars, ``integral``, ``mean``): the run family and its output.

The flat state ``[field cells, scalars]`` of :class:`pdeforge.codegen.coupled.CoupledBoundKernel`
goes through the usual steppers (euler, ssprk3, rk4 and rk45 stage by stage; bdf = CVODE,
scipy-bdf and rosenbrock23 with the exact Jacobian). The Krylov solvers are preconditioned by
:class:`~pdeforge.solvers.implicit.bordered.BorderedPreconditioner`: the field block by the usual preconditioner, the scalar rows and
columns (and the rank-one feedback of reductions in field equations) exactly, by the Woodbury
identity. The Dataset holds each scalar as a variable on dimension ``t``; the ``--out`` file
too, and a resumed run reads them back.
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.errors import InitialConditionError, SolverError
from pdeforge.solvers.run.pipeline import RunFamily


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


class CoupledFamily(RunFamily):
    """ODE-PDE systems (scalars, ``integral``, ``mean``) in the run driver: the state is
    ``[field cells, scalars]``; each scalar is a variable on dimension ``t`` in the Dataset and the file."""

    def prepare(self, inputs, restart, done) -> dict:
        from pdeforge.solvers.finite_differences import choose_dt, compile_and_bind, make_stepper
        from pdeforge.solvers.run.initial import initial_state
        from pdeforge.solvers.run.pipeline import implicit_first_step

        job = self.job
        system, grid, m = job.system, inputs.grid, job.method
        if job.discretization.family == "spectral":
            raise SolverError("discretization 'spectral': systems with scalars or integral()/mean() are solved with "
                              "finite differences (discretization 'fd')")
        if m.name == "imex" or m.kind == "stochastic":
            raise SolverError(f"method {m.name!r} is not available for systems with scalars or integral()/mean(); "
                              "use euler, ssprk3, rk4, rk45, bdf, scipy-bdf or rosenbrock23")
        order, scheme = job.discretization.order, job.discretization.scheme or "fd"
        kernel, bound = compile_and_bind(system, grid, job.backend, order, scheme)
        dt = m.dt
        if restart is None:
            ic = system.ic if job.ic is None else job.ic
            fields_ic = None if ic is None else {k: v for k, v in ic.items() if k not in system.scalars}
            y0 = bound.join(initial_state(system, grid, fields_ic), scalar_initial(system, ic, system.params))
            if m.kind == "fixed":
                lifted = kernel.main.system
                cells = bound._lift(y0, inputs.t0)[0].reshape(len(lifted.fields), *grid.shape)
                dt = choose_dt(lifted, grid, kernel.main, cells, inputs, m, dt, order, scheme)
        else:
            y0 = bound.join(restart.cells, read_scalars(restart.path, system.scalars, restart.frames))
            dt = implicit_first_step(m, restart, inputs, dt)
        self.bound, self.y0 = bound, y0
        self.cell_shape = bound.field_shape
        self.pending: list[np.ndarray] = []
        self.scalar_frames: list[np.ndarray] = []
        if not done:
            self.stepper = make_stepper("numpy", m, bound, y0, inputs, dt)
            bound.warm_up(self.stepper.kernels_used())
        return dict(backend=job.backend.name, method=m.name, dt=dt, cache_hit=kernel.cache_hit, order=order,
                    scheme=scheme, scalars=", ".join(system.scalars))

    def initial_frame(self):
        y0, self.y0 = self.y0, None
        return y0

    def on_frame(self, t, y, fresh=False):
        cells, scalars = self.bound.split(y)
        if t is not None:
            self.pending[:] = [scalars.copy()]
            self.scalar_frames.append(scalars.copy())
        return np.array(cells, copy=True)

    def fields(self):
        y = self.stepper.cells()
        cells, scalars = self.bound.split(y)
        state = {f: cells[i] for i, f in enumerate(self.job.system.fields)}
        state.update(zip(self.job.system.scalars, scalars))
        return state

    def keep_last_good(self, exc, frames) -> float:
        if exc.t > frames.times[-1]:
            self._record_raw(exc.t, exc.cells)
        return frames.times[-1]

    def define_variables(self, writer) -> None:
        from pdeforge.solvers.run.output import field_attrs

        for s in self.job.system.scalars:
            var = writer.nc.createVariable(s, "f8", ("t",))
            var.setncatts(field_attrs(s, self.job.output.variable_attrs))

    def write_variables(self, writer, index: int) -> None:
        for s, v in zip(self.job.system.scalars, self.pending[-1]):
            writer.nc.variables[s][index] = v

    def attach(self, ds):
        from pdeforge.solvers.run.output import field_attrs

        for i, s in enumerate(self.job.system.scalars):
            ds[s] = ("t", np.array([v[i] for v in self.scalar_frames]), field_attrs(s, self.job.output.variable_attrs))
        return ds


def read_scalars(path, scalars, frames: int) -> np.ndarray:
    """The scalars' values in the last complete frame of a run file."""
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        missing = [s for s in scalars if s not in nc.variables]
        if missing:
            raise SolverError(f"resume {str(path)!r}: it lacks the scalar variable(s) {', '.join(missing)}; "
                              "it cannot be resumed (run without resume to start anew)")
        return np.array([float(nc.variables[s][frames - 1]) for s in scalars])

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
        from pdeforge.solvers.finite_differences import make_stepper
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
        kernel, bound = self.compile_and_bind(grid, order, scheme)
        dt = m.dt
        if restart is None:
            ic = system.ic if job.ic is None else job.ic
            fields_ic = None if ic is None else {k: v for k, v in ic.items() if k not in system.scalars}
            y0 = bound.join(self.initial_cells(fields_ic), scalar_initial(system, ic, system.params))
            if m.kind == "fixed":
                dt = self.fixed_dt(kernel, bound, y0, inputs, order, scheme)
        else:
            y0 = bound.join(self.restart_cells(restart), read_scalars(restart.path, system.scalars, restart.frames))
            dt = implicit_first_step(m, restart, inputs, dt)
        self.bound, self.y0 = bound, y0
        self.cell_shape = bound.field_shape
        self.pending: list[np.ndarray] = []
        self.scalar_frames: list[np.ndarray] = []
        if not done:
            self.stepper = make_stepper("numpy", m, bound, y0, inputs, dt)
            self.warm_up(bound, self.stepper.kernels_used())
        return dict(backend=job.backend.name, method=m.name, dt=dt, cache_hit=kernel.cache_hit, order=order,
                    scheme=scheme, scalars=", ".join(system.scalars))

    def compile_and_bind(self, grid, order: int, scheme: str):
        """The compiled kernels and their binding to ``grid``."""
        from pdeforge.solvers.finite_differences import compile_and_bind

        return compile_and_bind(self.job.system, grid, self.job.backend, order, scheme)

    def initial_cells(self, fields_ic) -> np.ndarray:
        """The fields' initial cells from ``fields_ic`` (None: the system's)."""
        from pdeforge.solvers.run.initial import initial_state

        return initial_state(self.job.system, self.job.grid, fields_ic)

    def restart_cells(self, restart) -> np.ndarray:
        """The fields' cells of a restart."""
        return restart.cells

    def fixed_dt(self, kernel, bound, y0, inputs, order: int, scheme: str) -> float:
        """A fixed-step method's step: the one given, checked against (or else from) the
        stability limit of the lifted system at the initial state."""
        from pdeforge.solvers.finite_differences import choose_dt

        grid, m = inputs.grid, self.job.method
        lifted = kernel.main.system
        cells = bound._lift(y0, inputs.t0)[0].reshape(len(lifted.fields), *grid.shape)
        return choose_dt(lifted, grid, kernel.main, cells, inputs, m, m.dt, order, scheme)

    def warm_up(self, bound, kinds) -> None:
        """Compile (or load) the kernels the run uses."""
        bound.warm_up(kinds)

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
    """The scalars' values in the last complete frame of a run file (netCDF, or the zarr store
    of a distributed run)."""
    from pathlib import Path

    if Path(path).suffix == ".zarr":
        import zarr

        group = zarr.open_group(str(path), mode="r", use_consolidated=False)
        _check_scalars(path, scalars, group)
        return np.array([float(group[s][frames - 1]) for s in scalars])
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        _check_scalars(path, scalars, nc.variables)
        return np.array([float(nc.variables[s][frames - 1]) for s in scalars])


def _check_scalars(path, scalars, variables) -> None:
    missing = [s for s in scalars if s not in variables]
    if missing:
        raise SolverError(f"resume {str(path)!r}: it lacks the scalar variable(s) {', '.join(missing)}; "
                          "it cannot be resumed (run without resume to start anew)")

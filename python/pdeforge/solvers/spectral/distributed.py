"""One pseudo-spectral run across the ranks of an MPI communicator: a family of the run driver.

:class:`DistributedSpectral` is the spectral family (:class:`~pdeforge.solvers.spectral.solve.SpectralFamily`)
on one rank's part of the grid: the generated kernels are bound to a
:class:`~pdeforge.parallel.spectral.DistributedSpectralRuntime` (mpi4py-fft transforms, local
wavenumbers and masks, reductions through Allreduce), so each rank holds its slab or pencil of the
physical fields and its slice of the half spectrum, and the steppers, the CFL estimate, the error
control of "etdrk4" and the flow diagnostics see global norms and maxima: every rank takes the
same steps, accepts and rejects alike, and the result equals one process's to round-off.
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.solvers.run.initial import block_initial_state
from pdeforge.solvers.run.ranks import OnRanks
from pdeforge.solvers.spectral.solve import SpectralFamily, _DIAG_META

#: points per axis of the small one-process grid on which rank 0 compiles the Numba loops first
WARM_POINTS = 8


class DistributedSpectral(OnRanks, SpectralFamily):
    """The spectral family on this rank's slab or pencil of a grid distributed over ``comm``
    (``DistributedSpectral(job, comm)``; frames and callbacks: :class:`OnRanks`). Rank 0 writes
    the diagnostics (energies, spectra) to the store; every rank computes them alike."""

    def operator(self, system, grid, ic, backend: str, device, dtype: str, workers):
        from pdeforge.codegen.spectral.compile import compile_spectral
        from pdeforge.parallel.comm import one_rank_first
        from pdeforge.parallel.reduce import Reductions
        from pdeforge.parallel.spectral import DistributedSpectralRuntime, process_grid

        comm = self.comm
        dims = process_grid(grid.shape, comm.Get_size(), self.job.discretization.decomposition)
        # rank 0 generates the module into the disk cache, the others load it
        kernel = one_rank_first(comm, lambda: compile_spectral(system, backend, device, dtype, form="solenoidal"))
        self.kernel = kernel
        runtime = DistributedSpectralRuntime(grid, comm, dims, dtype)
        op = kernel.bind(grid, runtime=runtime)
        self.runtime = runtime
        self.decomposition = runtime.decomposition()
        self.reductions = Reductions(comm)
        cells0 = block_initial_state(system, self.decomposition, ic)
        uh = op.project_hat(op.to_spectral(cells0), truncate=True)
        return kernel, op, cells0, uh

    def before_stepper(self, op, method, dt, dt_max, tolerances) -> None:
        from pdeforge.parallel.comm import one_rank_first

        # Numba's disk cache of the pointwise and fused loops: written by rank 0, loaded by the others
        one_rank_first(self.comm, lambda: _warm_loops(self.kernel, op, method, dt, dt_max, tolerances))

    def prepare(self, inputs, restart, done) -> dict:
        attrs = super().prepare(inputs, restart, done)
        runtime = self.runtime
        attrs.update(mpi_ranks=self.comm.Get_size(), decomposition="x".join(map(str, runtime.dims)),
                     fft="mpi4py-fft " + ("slab" if sum(d > 1 for d in runtime.dims) == 1 else "pencil"))
        self._transforms0, self._transpose0 = runtime.transforms, runtime.transpose_s
        return attrs

    # frames ------------------------------------------------------------------------------------
    def on_frame(self, t, state_hat, fresh: bool = False) -> np.ndarray:
        cells = super().on_frame(t, state_hat, fresh)
        return self.runtime.gather(cells) if self.gather_frames else cells

    def fields(self) -> dict[str, np.ndarray]:
        cells = self.runtime.gather(np.asarray(self.op.to_physical(self.frame()), dtype=float))
        return {f: cells[i] for i, f in enumerate(self.job.system.fields)}

    def define_variables(self, writer) -> None:
        if self.diag is None:
            return
        variables = {name: (("t",), {"long_name": long_name, "units": "1"})
                     for name, (long_name, _) in _DIAG_META.items()}
        variables["E_k"] = (("t", "k"), {"long_name": "shell-summed energy spectrum E(k)", "units": "1"})
        writer.add_variables(variables, {"k": (self.diag.k, {"long_name": "wavenumber shell centre |k|",
                                                            "units": "1"})})

    def write_variables(self, writer, index: int) -> None:
        if self.diag is None:
            return
        for name in (*_DIAG_META, "E_k"):
            writer.write_series(name, index, self.records[name][-1])

    def after(self, run) -> dict:
        attrs = super().after(run)
        runtime = self.runtime
        loading = getattr(self.stepper, "compile_s", 0.0)
        transforms = runtime.transforms - self._transforms0
        attrs.update(wall_time_s=self.reductions.max(run.wall_s - loading),
                     transforms=int(transforms),
                     transpose_time_s=self.reductions.max(runtime.transpose_s - self._transpose0),
                     transpose_bytes_per_transform=int(self.reductions.max(runtime.transpose_bytes())))
        return attrs


def _warm_loops(kernel, op, method, dt, dt_max, tolerances) -> None:
    """One step of ``method`` on a small one-process grid: compiles (or loads) the Numba loops of
    the generated module and of the fused stage updates, with the precision of ``op``."""
    from pdeforge.discretize.grid import UniformGrid
    from pdeforge.solvers.spectral.solve import make_stepper

    grid = op.grid
    small = UniformGrid(grid.domain, (WARM_POINTS,) * grid.dim, grid.names, grid.geometry)
    one = kernel.bind(small, workers=1)
    rng = np.random.default_rng(0)
    cells = 1e-3 * rng.standard_normal((len(op.fields), *small.shape))
    uh = one.project_hat(one.to_spectral(cells), truncate=True)
    h = dt if dt is not None else (dt_max if math.isfinite(dt_max) else 1e-3)
    with np.errstate(all="ignore"):
        make_stepper(one, uh, 0.0, method, dt, dt_max=h, **tolerances)

"""ODE-PDE systems (scalars, ``integral``, ``mean``) across the ranks of an MPI communicator.

:class:`DistributedCoupled` is the coupled family (:class:`~pdeforge.solvers.coupled.CoupledFamily`)
on one rank's block; what every family on several ranks shares (frames gathered from the
blocks, the run's attributes, the process grid) is :class:`~pdeforge.solvers.distributed.OnBlocks`.
"""

from __future__ import annotations

import numpy as np

from pdeforge.solvers.coupled import CoupledFamily
from pdeforge.solvers.distributed import (
    OnBlocks,
    compile_kernel,
    decompose_for,
    gather_cells,
    local_initial_state,
    not_checked,
    on_rank_zero,
)


class DistributedCoupled(OnBlocks, CoupledFamily):
    """ODE-PDE systems (scalars, ``integral``, ``mean``) on this rank's block: the state is
    ``[block cells, scalars]``, each reduction the sum over the ranks of the blocks' quadrature
    contributions (one Allreduce per evaluation), so every rank holds the same scalars and
    takes the same steps. Sums in another order than one process's agree to round-off."""

    def compile_and_bind(self, grid, order: int, scheme: str):
        from pdeforge.parallel.block import BlockKernel
        from pdeforge.parallel.comm import one_rank_first
        from pdeforge.parallel.reduce import ReplicatedTail

        job, comm = self.job, self.comm
        kernel = one_rank_first(comm, lambda: compile_kernel(job.system, job.backend, order, scheme))
        parts = [k for k in (kernel.main, kernel.integrands, kernel.fields) if k is not None]
        self.decomposition = d = decompose_for(job, comm, grid, parts)
        c = kernel.coupling
        self.reductions = ReplicatedTail(comm, len(c.fields) * d.block.size + len(c.scalars), len(c.scalars))
        bound = kernel.bind(d.block, bind=lambda k: BlockKernel(k, d), rank_reductions=self.reductions)
        self._attrs = self.rank_attributes(b for b in (bound.fields_bound, bound.aux) if b is not None)
        return kernel, bound

    def initial_cells(self, fields_ic) -> np.ndarray:
        return local_initial_state(self.job.system, self.decomposition, fields_ic)

    def restart_cells(self, restart) -> np.ndarray:
        return restart.block(self.decomposition.block.slices)

    def fixed_dt(self, kernel, bound, y0, inputs, order: int, scheme: str) -> float:
        if not_checked(self.job.method):
            return self.job.method.dt
        cells, scalars = bound.split(y0)
        whole = gather_cells(self.decomposition, cells, root=0)

        def estimate():  # the stability estimate reads the whole lifted state: on rank 0, then shared
            whole_bound = kernel.bind(inputs.grid)
            return super(DistributedCoupled, self).fixed_dt(kernel, whole_bound, whole_bound.join(whole, scalars),
                                                            inputs, order, scheme)

        return on_rank_zero(self.comm, estimate)

    def warm_up(self, bound, kinds) -> None:
        from pdeforge.parallel.comm import one_rank_first

        # each kernel's machine code on rank 0 first (the disk cache), then the coupled warm-up,
        # whose reductions and halo exchanges every rank joins
        one_rank_first(self.comm, lambda: [b.warm_up(("rhs",)) for b in self.bound_blocks])
        bound.warm_up(kinds)

    def prepare(self, inputs, restart, done) -> dict:
        attrs = super().prepare(inputs, restart, done)
        return attrs | self._attrs

    def on_frame(self, t, y, fresh=False):
        return self.gather(super().on_frame(t, y, fresh))

    def fields(self):
        state = super().fields()
        cells = gather_cells(self.decomposition, np.stack([state[f] for f in self.job.system.fields]))
        state.update({f: cells[i] for i, f in enumerate(self.job.system.fields)})
        return state

    def define_variables(self, writer) -> None:
        from pdeforge.solvers.run.output import field_attrs

        for s in self.job.system.scalars:
            writer.define_series(s, field_attrs(s, self.job.output.variable_attrs))

    def write_variables(self, writer, index: int) -> None:
        for s, v in zip(self.job.system.scalars, self.pending[-1]):
            writer.write_series(s, index, float(v))

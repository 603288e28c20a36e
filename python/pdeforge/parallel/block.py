"""A kernel bound to one rank's block, whose ghost fill exchanges halos with the neighbours.

The generated kernels are unchanged: they read a padded block as they read a padded grid.
Only the ghost fill differs. The block's own fill runs first (the compiled one of the Numba
target, else the NumPy one of the layout): it closes every wall and wraps every axis as if the
block were the whole grid. Then the halos are exchanged along each split axis in turn, which
overwrites exactly the ghosts that face another block, periodic wraps included. What is left
is the walls of the blocks that own them, filled from the same cells and coordinates a single
process uses, and corners that hold the diagonal neighbours' cells (the same order of axes as
the one-process fill, so mixed derivatives read the same values).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pdeforge.codegen.kernel import BoundKernel, Kernel
from pdeforge.errors import SolverError
from pdeforge.parallel.decomposition import Decomposition
from pdeforge.parallel.halo import HaloExchange
from pdeforge.parallel.reduce import Reductions


class BlockKernel(BoundKernel):
    """A :class:`~pdeforge.codegen.kernel.BoundKernel` on this rank's block of a decomposed grid.

    Args:
        kernel: the compiled kernel (NumPy or Numba target).
        decomposition: the process grid; the kernel binds to its block.
        params: parameter values (the system's by default).

    Attributes:
        halo: the exchange (its ``counters`` hold messages, bytes and seconds).
        rank_reductions: sums, minima and the blow-up check over every rank.
    """

    def __init__(self, kernel: Kernel, decomposition: Decomposition, params: Mapping[str, object] | None = None):
        super().__init__(kernel, decomposition.block, params)
        self.decomposition = decomposition
        self.rank_reductions = Reductions(decomposition.comm)
        self.halo = HaloExchange(decomposition, self.layout.ghost, self.padded_shape[1:], self.nfields)
        self.parallel = False  # one thread per rank by default: the ranks are the parallelism
        self._rhs = kernel.module.KERNELS[("rhs", False)]
        self._stage_axpy = kernel.module.KERNELS.get(("stage_axpy", False))
        self._stage_two = kernel.module.KERNELS.get(("stage_two", False))

    @property
    def has_compiled_stepping(self) -> bool:
        """False: the compiled step loops fill ghosts inside machine code, where no halo can
        be exchanged; blocks step stage by stage (each stage one compiled call)."""
        return False

    @property
    def aligned_stages(self) -> bool:
        """Whether the steppers give the stage kernels line-aligned, page-staggered arrays
        (:meth:`~pdeforge.codegen.kernel.BoundKernel.new_aligned`), as the one-process step
        loops get: true for compiled stage kernels (their loops take the cell counts from the
        coordinates; the halo exchange sends only the padded extent)."""
        return self._stage_axpy is not None and self._advance is not None

    def thread_key(self, method: str) -> None:
        return None

    def fill_ghosts(self, U: np.ndarray, t: float) -> None:
        """Close the owned walls and exchange the halos of padded block ``U`` at time ``t``."""
        super().fill_ghosts(U, t)
        self.halo.exchange(U)

    def fill_ghosts_compiled(self, U: np.ndarray, t: float) -> None:
        self.fill_ghosts(U, t)

    def jacobian_padded(self, U, t):  # pragma: no cover - refused before a run starts
        raise SolverError("the Jacobian of a decomposed grid is not assembled: implicit methods run on one process")

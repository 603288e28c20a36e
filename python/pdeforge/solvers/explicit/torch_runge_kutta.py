"""The fixed-step and adaptive steppers driving a :class:`~pdeforge.codegen.torch.kernel.TorchBoundKernel`.

The fixed-step Runge-Kutta driver keeps its buffers on the kernel's device and only copies
the state to the host for the finiteness checks and the saved frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.codegen.numba.stepping import STEP_METHODS
from pdeforge.codegen.numba.threads import SerialChoice
from pdeforge.solvers.explicit.runge_kutta import BUFFERS, DormandPrince, FixedStepRK, Stepper, ThreadChoice, stepping_rule

if TYPE_CHECKING:
    from pdeforge.codegen.torch.kernel import TorchBoundKernel


class TorchFixedStepRK(FixedStepRK):
    """:class:`FixedStepRK` with its buffers on the kernel's device.

    Same stepping (the fused stages are the bound kernel's); only the state's way in and out
    differs: ``cells()`` returns a host array (a zero-copy view on CPU).
    """

    def __init__(self, bound: "TorchBoundKernel", cells: np.ndarray, t0: float, dt: float, method: str):
        Stepper.__init__(self, bound, cells, t0)
        if not (dt > 0 and np.isfinite(dt)):
            raise SolverError(f"dt must be a positive number, got {dt!r}")
        self.dt = float(dt)
        self.method = method
        self._compiled = bool(bound.has_compiled_stepping) and method in STEP_METHODS
        nbuf = BUFFERS[method]
        self.buf = [bound.new_padded() for _ in range(nbuf)]
        bound.cells(self.buf[0]).copy_(bound.tensor(np.asarray(cells)))
        self._good = np.array(cells, dtype=float, copy=True)
        self._good_t = self.t
        rule, self.stages = stepping_rule(method)
        self._step = rule.__get__(self)
        self._block = 8
        self._threads = ThreadChoice(False, lambda: 0.0)  # torch manages its own threads: one loop
        self._loops = ()
        self._serial = SerialChoice(False, lambda: 0.0)

    def cells(self) -> np.ndarray:
        return self.bound.to_numpy(self.bound.cells(self.buf[0]))


class TorchDormandPrince(DormandPrince):
    """:class:`DormandPrince` with the right-hand side evaluated by a torch kernel.

    The state and the error control stay in NumPy on the host; each stage converts at the
    boundary (free on CPU, one transfer each way on a GPU).
    """

    def _f(self, y, t, out):
        out[...] = self.bound.rhs(t, y).reshape(out.shape)

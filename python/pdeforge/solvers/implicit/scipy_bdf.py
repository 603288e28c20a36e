"""SciPy's variable-order BDF with the exact sparse Jacobian ("scipy-bdf")."""

from __future__ import annotations

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.solvers.stepping import BlowUp, Progress, Stepper


class ImplicitBDF(Stepper):
    """SciPy's variable-order BDF fed with the exact sparse Jacobian and the compiled right-hand side.

    Args:
        bound: the bound kernel.
        cells: initial cell values.
        t0: initial time.
        t_end: final time (SciPy's integrator needs it).
        rtol, atol: tolerances.
        dt: optional first step.
    """

    def __init__(self, bound, cells, t0, t_end, rtol=1e-6, atol=1e-9, dt=None):
        super().__init__(bound, cells, t0)
        from scipy.integrate import BDF

        self.njev = 0
        self.nfev = 0

        def fun(t, y):
            self.nfev += 1
            return bound.rhs(t, y)

        def jac(t, y):
            self.njev += 1
            return bound.jacobian(t, y)

        self.solver = BDF(
            fun, t0, np.asarray(cells, dtype=float).ravel(), t_end, rtol=rtol, atol=atol, jac=jac,
            first_step=dt, vectorized=False,
        )
        self._y = np.asarray(cells, dtype=float).copy()

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs", "jac")

    def restart_state(self) -> dict:
        """SciPy's BDF keeps its order and difference table private: a restart begins at order 1
        with the last step size, and so agrees with the uninterrupted run within the tolerances."""
        return {"steps": int(self.steps), "dt": float(self.solver.h_abs), "nfev": int(self.nfev),
                "njev": int(self.njev)}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.nfev += int(state.get("nfev", 0))
        self.njev += int(state.get("njev", 0))

    def cells(self) -> np.ndarray:
        return self._y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        s = self.solver
        while s.t < t_target:
            prev_t, prev_y = s.t, s.y.copy()
            message = s.step()
            if s.status == "failed" or not np.all(np.isfinite(s.y)):
                raise BlowUp(s.t, prev_t, prev_y.reshape(self.bound.cell_shape))
            self.steps += 1
            if progress is not None:
                progress(min(s.t, t_target))
            if s.status == "finished" and s.t < t_target:
                raise SolverError(f"BDF stopped before t = {t_target}: {message}")
        self._y = s.dense_output()(t_target).reshape(self.bound.cell_shape) if s.t != t_target else \
            s.y.reshape(self.bound.cell_shape).copy()
        self.t = t_target

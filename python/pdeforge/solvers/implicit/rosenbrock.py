"""Rosenbrock 2(3) with error control (Shampine and Reichelt's ode23s), for moderate tolerances.

One step solves three linear systems with the same ``W = I - h d J`` (d = 1/(2 + sqrt 2)),
``J`` the exact sparse Jacobian at the step's start: no Newton iteration, so no convergence
failures, and L-stability (the stiff modes are damped, not merely kept bounded). The error
estimate is the difference of the embedded second- and third-order solutions. ``W`` is
factorised by SuperLU up to :data:`~pdeforge.solvers.implicit.preconditioners.LU_LIMIT` unknowns; larger
systems solve it by GMRES preconditioned with the split preconditioner, to a tolerance well
below the local error.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from pdeforge.errors import SolverError
from pdeforge.solvers.implicit.preconditioners import LU_LIMIT, sparse_lu
from pdeforge.solvers.implicit.bordered import make_preconditioner
from pdeforge.solvers.stepping import Progress, Stepper, StepFailure

D = 1.0 / (2.0 + math.sqrt(2.0))
E32 = 6.0 + math.sqrt(2.0)


class Rosenbrock23(Stepper):
    """Adaptive Rosenbrock 2(3) (ode23s) on a bound kernel.

    Args:
        bound: the bound kernel.
        cells: initial cell values.
        t0: initial time.
        rtol, atol: tolerances (per unknown, RMS norm as SciPy's).
        dt: first step (default: from the initial derivative).
        dt_max: largest step.
        linear_solver: "auto" (SuperLU up to LU_LIMIT unknowns, else GMRES), "lu" or "gmres".
    """

    def __init__(self, bound, cells, t0: float, rtol: float = 1e-4, atol: float = 1e-7, dt: float | None = None,
                 dt_max: float = np.inf, linear_solver: str = "auto"):
        super().__init__(bound, cells, t0)
        if linear_solver not in ("auto", "lu", "gmres"):
            raise SolverError(f"linear_solver {linear_solver!r} for rosenbrock23 (valid: auto, lu, gmres)")
        self.rtol, self.atol, self.dt_max = float(rtol), float(atol), float(dt_max)
        self.y = np.array(cells, dtype=float, copy=True).reshape(-1)
        self.use_lu = linear_solver == "lu" or (linear_solver == "auto" and bound.size <= LU_LIMIT)
        self.identity = sps.identity(bound.size, format="csc")
        self.pc = None if self.use_lu else make_preconditioner(bound, "split")
        self.nfev = self.njev = self.nlu = 0
        self.rejected = 0
        self.autonomous = not self._depends_on_time()
        self.dt = float(dt) if dt else None

    def _depends_on_time(self) -> bool:
        system = getattr(getattr(self.bound, "kernel", None), "system", None)
        if system is None:
            return True
        if any(system.t in e.free_symbols for e in system.rhs.values()):
            return True
        return any(b.value.has(system.t) for pair in system.bcs.values() for b in pair if getattr(b, "value", None) is not None)

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs", "jac")

    def cells(self) -> np.ndarray:
        return self.y.reshape(self.bound.cell_shape)

    def _f(self, t, y):
        self.nfev += 1
        return self.bound.rhs(t, y)

    def _norm(self, e, y0, y1):
        scale = self.atol + self.rtol * np.maximum(np.abs(y0), np.abs(y1))
        return float(np.sqrt(np.mean((e / scale) ** 2)))

    def _solver(self, t, y, h):
        J = self.bound.jacobian(t, y)
        self.njev += 1
        W = (self.identity - (h * D) * J).tocsc()
        if self.use_lu:
            self.nlu += 1
            return sparse_lu(W)
        self.pc.use_jacobian(J)
        self.pc.setup(t, y, h * D, jacobian_ok=True)
        M = spla.LinearOperator(W.shape, matvec=self.pc.solve)

        def solve(r):
            z, info = spla.gmres(W, r, M=M, rtol=1e-3 * self.rtol, atol=0.0, restart=30, maxiter=50)
            if info != 0:
                raise StepFailure(t, self.t, self.cells().copy(), f"GMRES did not converge in the Rosenbrock stage (info {info})")
            return z

        return solve

    def _first_step(self, f0) -> float:
        d0 = self._norm(self.y, self.y, self.y)
        d1 = self._norm(f0, self.y, self.y)
        h = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        return min(h, self.dt_max)

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        while self.t < t_target:
            t, y = self.t, self.y
            f0 = self._f(t, y)
            if self.dt is None:
                self.dt = self._first_step(f0)
            h = min(self.dt, self.dt_max, t_target - t)
            dfdt = 0.0
            if not self.autonomous:
                delta = math.sqrt(np.finfo(float).eps) * max(abs(t), 1.0)
                dfdt = (self._f(t + delta, y) - f0) / delta
            solve = self._solver(t, y, h)
            k1 = solve(f0 + (h * D) * dfdt)
            f1 = self._f(t + 0.5 * h, y + 0.5 * h * k1)
            k2 = solve(f1 - k1) + k1
            y_new = y + h * k2
            f2 = self._f(t + h, y_new)
            k3 = solve(f2 - E32 * (k2 - f1) - 2.0 * (k1 - f0) + (h * D) * dfdt)
            err = self._norm(h / 6.0 * (k1 - 2.0 * k2 + k3), y, y_new)
            if not np.isfinite(err) or not np.all(np.isfinite(y_new)):
                err = np.inf
            if err <= 1.0:
                self.t, self.y = t + h, y_new
                self.steps += 1
                if progress is not None:
                    progress(self.t)
                if t + h >= t_target:
                    self.t = t_target  # the last step was cut to land here
            else:
                self.rejected += 1
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.8 * err ** (-1.0 / 3.0)))
            if err <= 1.0 and h < self.dt:  # a cut final step says nothing about the step size
                factor = max(factor, 1.0)
            else:
                self.dt = h * factor
            if self.dt < 1e-14 * max(1.0, abs(self.t)):
                raise StepFailure(self.t, self.t, self.cells().copy(), "Rosenbrock step size fell below the floor")

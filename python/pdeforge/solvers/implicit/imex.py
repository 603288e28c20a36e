"""IMEX for reaction-diffusion: implicit transport, explicit reactions (SBDF2), fixed step.

The exact Jacobian splits into cell-local couplings R (reactions) and couplings between cells
T (transport; :mod:`pdeforge.solvers.implicit.preconditioners`). When T does not depend on the state
(linear diffusion and advection with constant coefficients), ``f(u) = T u + N(u)`` with
``N = f - T`` the reactions, and the second-order semi-implicit BDF

    (3/2 I - dt T) u_{n+1} = 2 u_n - u_{n-1}/2 + dt (2 N(u_n) - N(u_{n-1}))

needs one solve with a constant matrix per step: factorised once (SuperLU), or applied by
an FFT/DCT where one diagonalises T. The first step (and each change of step) is IMEX Euler.
dt is limited by the reactions only (default: 0.5 over the largest eigenvalue modulus of
the reaction blocks), never by the diffusion.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sps

from pdeforge.errors import SolverError
from pdeforge.solvers.implicit.preconditioners import JacobianSplit, detect_transform, sparse_lu
from pdeforge.solvers.stepping import GROWTH_LIMIT, Progress, Stepper, StepFailure, runaway


class IMEXSBDF2(Stepper):
    """SBDF2 with the transport part implicit; see the module docstring.

    Args:
        bound: the bound kernel.
        cells: initial cell values.
        t0: initial time.
        dt: step (default: reaction-limited, see :func:`reaction_dt`).

    Raises:
        SolverError: the transport part depends on the state (nonlinear diffusion).
    """

    def __init__(self, bound, cells, t0: float, dt: float | None = None):
        super().__init__(bound, cells, t0)
        y = np.array(cells, dtype=float, copy=True).reshape(-1)
        split = JacobianSplit(bound.nfields, bound.grid.size)
        R, T = split(bound.jacobian(t0, y))
        rng = np.random.default_rng(1)
        probe = y * (1.0 + 0.1 * rng.standard_normal(y.size)) + 0.1 * rng.standard_normal(y.size)
        _, T2 = split(bound.jacobian(t0, probe))
        if abs(T - T2).max() > 1e-12 * max(abs(T).max(), 1.0):
            raise SolverError(
                "method 'imex' treats the transport part implicitly with a constant matrix, but this system's "
                "transport depends on the state (nonlinear diffusion, advection or cross-diffusion); use method 'bdf' "
                "(its split preconditioner takes cross-diffusion such as chemotaxis)"
            )
        self.T = T
        self.transform = detect_transform(bound, T)
        if dt is not None and not (dt > 0 and math.isfinite(dt)):
            raise SolverError(f"dt must be a positive number, got {dt!r}")
        self.dt = float(dt) if dt else reaction_dt(R)  # inf without reactions: one step per output
        self.y = y
        self._scale = float(np.max(np.abs(y))) if y.size else 0.0
        self.prev: tuple[np.ndarray, np.ndarray] | None = None  # (u_{n-1}, N(u_{n-1}))
        self._solvers: dict[tuple[float, float], object] = {}
        self.nfev = 0

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs", "jac")

    def run_statistics(self) -> dict:
        return {"dt": float(self.dt)}  # the step it chose (from the reactions, or the one given)

    def cells(self) -> np.ndarray:
        return self.y.reshape(self.bound.cell_shape)

    def _solve(self, gamma: float, r: np.ndarray) -> np.ndarray:
        """``(I - gamma T)^-1 r`` with the factorisation of this gamma kept."""
        key = round(gamma, 15)
        solve = self._solvers.get(key)
        if solve is None:
            if self.transform is not None:
                solve = self.transform.factor(gamma)
            else:
                solve = sparse_lu(sps.identity(self.T.shape[0], format="csc") - gamma * self.T)
            if len(self._solvers) > 8:
                self._solvers.clear()
            self._solvers[key] = solve
        return solve(r)

    def _reaction(self, t, y):
        self.nfev += 1
        return self.bound.rhs(t, y) - self.T @ y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        span = t_target - self.t
        if span <= 0:
            return
        n = max(1, math.ceil(span / self.dt - 1e-9))
        h = span / n
        if self.prev is not None and abs(h - self.prev_h) > 1e-12 * h:
            self.prev = None  # the two-step formula needs equal steps: restart with IMEX Euler
        for _ in range(n):
            t, y = self.t, self.y
            N = self._reaction(t, y)
            if self.prev is None:
                y_new = self._solve(h, y + h * N)
            else:
                y_old, N_old = self.prev
                y_new = self._solve(2.0 * h / 3.0, (4.0 * y - y_old + 2.0 * h * (2.0 * N - N_old)) / 3.0)
            if runaway(y, N + self.T @ y, h, y_new, self._scale):
                raise StepFailure(t + h, t, self.cells().copy(),
                                  f"non-finite values or growth beyond {GROWTH_LIMIT:g} times in one step")
            self.prev, self.prev_h = (y, N), h
            self.y, self.t = y_new, t + h
            self.steps += 1
            if progress is not None:
                progress(self.t)
        self.t = t_target

    prev_h = 0.0


def reaction_dt(R: np.ndarray) -> float:
    """0.5 / (largest eigenvalue modulus of the cell-local reaction blocks ``(nf, nf, ncells)``)."""
    blocks = np.moveaxis(R, 2, 0)
    rho = float(np.max(np.abs(np.linalg.eigvals(blocks)))) if blocks.size else 0.0
    return 0.5 / rho if rho > 0 else np.inf

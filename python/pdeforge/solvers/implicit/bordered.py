"""The preconditioner of ODE-PDE systems: the field block by the usual preconditioner, the scalar
rows and columns (and the rank-one feedback of reductions) exactly, by the Woodbury identity."""

from __future__ import annotations

import numpy as np

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

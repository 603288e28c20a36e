"""Variable-order BDF by SUNDIALS CVODE (scikit-sundae), fed by the generated kernels.

CVODE's Newton iterations, error control and step-size and order selection run in C; what
pdeforge supplies is the compiled right-hand side (written straight into CVODE's array) and
linear solves built from the exact sparse Jacobian:

* ``linear_solver="gmres"`` (default; also "bicgstab", "tfqmr"): matrix-free Krylov with a
  left preconditioner from :mod:`pdeforge.solvers.implicit.preconditioners` (default the split
  reaction x transport one, whose transport part is an FFT/DCT where one diagonalises it). The
  Jacobian is re-evaluated only when CVODE says its last one is stale (``jok == 0``).
* ``linear_solver="sparse"``: CVODE's SuperLU_MT direct solver on the exact Jacobian
  (symbolic factorisation of the fixed pattern reused by SuperLU_MT across Newton iterations).
* ``linear_solver="dense"``: LAPACK-free dense LU (small systems only).

Discontinuities in time that the equations state (``Heaviside(t - 1.1)``, ``Piecewise``
conditions on t) are read from the symbols: CVODE stops exactly there (``tstop``) and restarts,
so no step straddles a switch.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sps
import sympy as sp

from pdeforge.errors import SolverError
from pdeforge.solvers.implicit.preconditioners import choose_preconditioner
from pdeforge.solvers.implicit.bordered import make_preconditioner
from pdeforge.solvers.stepping import Progress, Stepper, StepFailure

LINEAR_SOLVERS = ("auto", "gmres", "bicgstab", "tfqmr", "sparse", "dense")
#: largest system the dense linear solver is allowed for
DENSE_LIMIT = 4000


def _sundials():
    try:
        import sksundae
    except ImportError:  # pragma: no cover - scikit-sundae is a dependency
        raise SolverError("method 'bdf' needs SUNDIALS: pip install scikit-sundae (or use method='scipy-bdf')") from None
    return sksundae


def time_breakpoints(system, t0: float, t1: float) -> list[float]:
    """Times in ``(t0, t1)`` where the right-hand side switches (Heaviside/Piecewise in t).

    Only switches whose argument depends on t and parameters alone are located (solved for t);
    others (a switch on the solution) are CVODE's error control's business.
    """
    t = system.t
    values = system.parameter_values
    found: set[float] = set()
    for expr in system.rhs.values():
        args = [h.args[0] for h in expr.atoms(sp.Heaviside)]
        for pw in expr.atoms(sp.Piecewise):
            for _, cond in pw.args:
                if isinstance(cond, sp.core.relational.Relational):
                    args.append(cond.lhs - cond.rhs)
        for a in args:
            a = sp.sympify(a).xreplace(values)
            if a.free_symbols != {t}:
                continue
            try:
                roots = sp.solve(sp.Eq(a, 0), t)
            except (NotImplementedError, TypeError):  # no closed-form switch time: error control handles it
                continue
            for r in roots:
                if r.is_real and r.is_number and t0 < float(r) < t1:
                    found.add(float(r))
    return sorted(found)


class CVODEStepper(Stepper):
    """CVODE BDF (orders 1-5) on a bound finite-difference kernel.

    Args:
        bound: the bound kernel (rhs and exact Jacobian).
        cells: initial cell values.
        t0, t_end: time span (``t_end`` bounds the search for time switches).
        rtol, atol: tolerances.
        dt: first step (default: CVODE's estimate).
        linear_solver: one of :data:`LINEAR_SOLVERS` ("auto": GMRES with a preconditioner).
        preconditioner: for the Krylov solvers, one of
            :data:`~pdeforge.solvers.implicit.preconditioners.PRECONDITIONERS`.
        krylov_dim: Krylov basis size.
        max_order: highest BDF order (1-5).
    """

    def __init__(self, bound, cells, t0: float, t_end: float, rtol: float = 1e-6, atol: float = 1e-9,
                 dt: float | None = None, linear_solver: str = "auto", preconditioner: str = "auto",
                 krylov_dim: int = 20, max_order: int = 5):
        super().__init__(bound, cells, t0)
        sun = _sundials()
        if linear_solver not in LINEAR_SOLVERS:
            raise SolverError(f"linear_solver {linear_solver!r} is unknown (valid: {', '.join(LINEAR_SOLVERS)})")
        self.linear_solver = "gmres" if linear_solver == "auto" else linear_solver
        if self.linear_solver == "dense" and bound.size > DENSE_LIMIT:
            raise SolverError(f"linear_solver 'dense': {bound.size} unknowns is too many (at most {DENSE_LIMIT}); "
                              "use 'sparse' or 'gmres'")
        self.nfev = 0
        self._jacfn_evals = 0
        self._y = np.array(cells, dtype=float, copy=True).reshape(bound.cell_shape)
        shape = bound.cell_shape
        compiled = getattr(bound, "_rhs", None) if getattr(bound.kernel, "target", "") != "torch" else None
        args = (getattr(bound, "p", None), getattr(bound, "h", None), *getattr(bound, "coords", ()))

        if compiled is not None:
            def rhsfn(t, y, yp):  # into CVODE's own memory: no copy of the result
                self.nfev += 1
                compiled(bound._pad_cells(y, t), yp.reshape(shape), t, *args)
        else:  # torch kernels: through their NumPy interface
            def rhsfn(t, y, yp):
                self.nfev += 1
                yp[:] = bound.rhs(t, y)

        options = dict(method="BDF", rtol=rtol, atol=atol, max_order=max_order, max_num_steps=1_000_000,
                       first_step=float(dt) if dt else 0.0)
        self._stalled = 0
        self.dt = float(dt) if dt else float("nan")
        self.preconditioner = None
        if self.linear_solver in ("gmres", "bicgstab", "tfqmr"):
            kind = choose_preconditioner(bound, preconditioner)
            options.update(linsolver=self.linear_solver, krylov_dim=krylov_dim)
            if kind != "none":
                pc = self.preconditioner = make_preconditioner(bound, kind)

                def setupfn(t, y, yp, jok, jnew, gamma):
                    jnew[0] = int(pc.setup(t, y, gamma, jacobian_ok=bool(jok)))

                def solvefn(t, y, yp, rvec, zvec, gamma, delta, lr):
                    zvec[:] = pc.solve(rvec)

                options["precond"] = sun.cvode.CVODEPrecond(setupfn, solvefn, side="left")
        elif self.linear_solver == "sparse":
            pattern = bound.sparsity()
            order = sps.csr_matrix((np.arange(pattern.nnz, dtype=float), pattern.indices, pattern.indptr),
                                   shape=pattern.shape).tocsc()
            order.sort_indices()
            csr_of_csc = order.data.astype(np.int64)  # CSC position k holds CSR entry csr_of_csc[k]

            def jacfn(t, y, yp, JJ):
                self._jacfn_evals += 1
                np.take(bound.jacobian(t, y).data, csr_of_csc, out=JJ)

            options.update(linsolver="sparse", jacfn=jacfn,
                           sparsity=sps.csc_matrix((np.ones(order.nnz), order.indices, order.indptr), shape=order.shape))
        else:
            def jacfn(t, y, yp, JJ):
                self._jacfn_evals += 1
                JJ[:, :] = bound.jacobian(t, y).toarray()

            options.update(linsolver="dense", jacfn=jacfn)
        with warnings.catch_warnings():  # "custom sparse Jacobian approximation ignored": we give jacfn
            warnings.simplefilter("ignore", UserWarning)
            self.solver = sun.cvode.CVODE(rhsfn, **options)
        self.breaks = time_breakpoints(bound.kernel.system, t0, t_end) if hasattr(bound, "kernel") else []
        self._restart(t0, self._y)

    def _restart(self, t: float, y: np.ndarray) -> None:
        result = self.solver.init_step(float(t), np.ascontiguousarray(y, dtype=float).ravel())
        if not result.success:
            raise SolverError(f"CVODE could not start at t = {t:g}: {result.message}")

    @property
    def njev(self) -> int:
        """Jacobian evaluations (by the preconditioner or the direct solver)."""
        pc = self.preconditioner
        return self._jacfn_evals + (pc.jacobian_evaluations if pc is not None else 0)

    def kernels_used(self) -> tuple[str, ...]:
        return ("rhs", "jac")

    def run_statistics(self) -> dict:
        stats = super().run_statistics() | {"linear_solver": self.linear_solver}
        pc = self.preconditioner
        if pc is not None:
            stats.update(preconditioner=pc.kind, preconditioner_solves=pc.solves)
            if pc.kind == "split":
                stats["transport_solver"] = pc.transport_solver
        return stats

    def cells(self) -> np.ndarray:
        return self._y

    def advance(self, t_target: float, progress: Progress | None = None) -> None:
        while self.t < t_target:
            stop = min([b for b in self.breaks if b > self.t] + [t_target])
            while True:  # one internal step per call: counts steps, keeps the last good state
                result = self.solver.step(stop, method="onestep", tstop=stop)
                t_now = float(np.atleast_1d(result.t)[-1])
                if not result.success:
                    raise StepFailure(t_now, self.t, self._y.copy(), f"CVODE stopped: {result.message}")
                y = np.asarray(result.y, dtype=float).reshape(-1)
                if not np.all(np.isfinite(y)):
                    raise StepFailure(t_now, self.t, self._y.copy(), "non-finite values")
                # CVODE goes on (with a warning) when t + h == t: three such steps end the run
                stalled = t_now < stop and t_now - self.t <= 4 * np.finfo(float).eps * max(1.0, abs(t_now))
                self._stalled = self._stalled + 1 if stalled else 0
                if self._stalled >= 3:
                    raise StepFailure(t_now, self.t, self._y.copy(), "CVODE's step size fell below round-off")
                self.steps += 1
                if t_now > self.t:
                    self.dt = t_now - self.t  # the last step: what a restart starts with
                self._y = y.reshape(self.bound.cell_shape).copy()
                self.t = t_now
                if progress is not None:
                    progress(min(t_now, t_target))
                if t_now >= stop:
                    break
            self.t = float(stop)
            if stop in self.breaks:
                self._restart(self.t, self._y)  # the right-hand side switches here: start afresh

"""The catalogue of time integrators and their stability properties."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pdeforge.errors import SolverError


@dataclass(frozen=True)
class Method:
    """A time integrator.

    Attributes:
        name: the name users pass (``method=``).
        kind: "fixed" (explicit, fixed step), "adaptive" (explicit, error-controlled),
            "implicit" (error-controlled) or "imex" (implicit transport, fixed step).
        order: order of accuracy.
        real_extent: length of the stability region along the negative real axis (explicit).
        imag_extent: half-length of the stability region along the imaginary axis (explicit).
        description: one line for help texts.
    """

    name: str
    kind: str
    order: int
    real_extent: float = 0.0
    imag_extent: float = 0.0
    description: str = ""

    def stable_dt(self, lr: float, li: float, lf: float = 0.0, cfl: float = 1.0) -> float:
        """The largest stable step for a spectrum inside ``[-lr, 0] x [-i li, i li]`` and a flux
        CFL rate ``lf`` (limit ``cfl``): the region's extents against the spectrum's."""
        if lr <= 0 and li <= 0 and lf <= 0:
            return math.inf
        if self.imag_extent == 0.0 and li > 0:  # no imaginary axis: the disc |1 + z| <= 1
            dt = 2.0 * lr / (lr * lr + li * li) if lr > 0 else 0.0
            return min(dt, cfl / lf) if lf > 0 else dt
        imag = li / self.imag_extent if li > 0 else 0.0
        return 1.0 / (lr / self.real_extent + imag + (lf / cfl if lf > 0 else 0.0))


METHODS: dict[str, Method] = {
    "euler": Method("euler", "fixed", 1, 2.0, 0.0, "forward Euler"),
    "ssprk3": Method("ssprk3", "fixed", 3, 2.5127, 1.7321, "strong-stability-preserving RK3 (Shu-Osher)"),
    "rk4": Method("rk4", "fixed", 4, 2.7853, 2.8284, "classic fourth-order Runge-Kutta"),
    "rk45": Method("rk45", "adaptive", 5, 3.3066, 3.3, "Dormand-Prince 5(4) with error control"),
    "bdf": Method("bdf", "implicit", 5, description="variable-order BDF (SUNDIALS CVODE), Newton-Krylov with a "
                  "preconditioner from the exact sparse Jacobian"),
    "rosenbrock23": Method("rosenbrock23", "implicit", 2, description="Rosenbrock 2(3) (ode23s), L-stable, "
                           "for moderate tolerances"),
    "imex": Method("imex", "imex", 2, description="SBDF2: implicit transport (constant, factorised once), "
                   "explicit reactions"),
    "scipy-bdf": Method("scipy-bdf", "implicit", 5, description="variable-order BDF (SciPy) with the exact sparse Jacobian"),
}


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``; a clear error for unknown names."""
    try:
        return METHODS[name]
    except KeyError:
        raise SolverError(f"method {name!r} is unknown (valid: {', '.join(METHODS)})") from None

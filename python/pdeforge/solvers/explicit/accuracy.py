"""A fixed step chosen for accuracy as well as stability.

A fixed-step Runge-Kutta method run at a fraction of its stability limit can still be far
less accurate than a user expects of a default: on a system whose stiffness is mild
(Lotka-Volterra, slow reactions) the limit is large and the local error at that step is
what sets the answer. :func:`accurate_dt` estimates the local error by step doubling at
the start of the run (one step of dt against two of dt/2; by Richardson the error of the full
step is their difference times ``2**p / (2**p - 1)`` for order p) and shrinks dt until the
error, measured as rk45 and bdf measure theirs (root mean square of
``err / (atol + rtol |y|)``), is at most one. The step never exceeds the stability bound it
is given, and never the span.

The estimate is local to the initial state; a solution that sharpens later is not
followed (an adaptive method is the choice then).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.tableaus import TABLEAUS

#: order of accuracy of the fixed-step methods this module steps
ORDERS = {name: TABLEAUS[name].order for name in ("euler", "ssprk3", "rk4")}
#: default tolerances: those of the adaptive and implicit methods
RTOL, ATOL = 1e-6, 1e-9
#: safety factor on the step predicted from the error estimate
SAFETY = 0.9
#: estimate-and-shrink rounds at most
ROUNDS = 8


def rk_step(rhs: Callable[[float, np.ndarray], np.ndarray], method: str, t: float, y: np.ndarray,
            dt: float) -> np.ndarray:
    """One step of ``method``'s Butcher tableau (:mod:`pdeforge.tableaus`) of ``y' = rhs(t, y)``."""
    if method not in ORDERS:
        raise SolverError(f"accurate_dt: no step-doubling estimate for method {method!r} (valid: {', '.join(ORDERS)})")
    a, b, c = TABLEAUS[method].floats()
    k = []
    for i in range(len(b)):
        stage = y + dt * sum((aij * kj for aij, kj in zip(a[i], k)), np.zeros_like(y)) if i else y
        k.append(rhs(t + c[i] * dt, stage))
    return y + dt * sum((bi * ki for bi, ki in zip(b, k)), np.zeros_like(y))


def local_error(rhs: Callable[[float, np.ndarray], np.ndarray], method: str, t: float, y: np.ndarray, dt: float,
                rtol: float, atol: float) -> float:
    """Scaled local error of one step of ``dt`` from ``(t, y)`` by step doubling (<= 1: within tolerance)."""
    full = rk_step(rhs, method, t, y, dt)
    half = rk_step(rhs, method, t + 0.5 * dt, rk_step(rhs, method, t, y, 0.5 * dt), 0.5 * dt)
    p = ORDERS[method]
    err = (half - full) * (2**p / (2**p - 1))  # Richardson: the error of the one full step, the step taken
    scale = atol + rtol * np.maximum(np.abs(y), np.abs(half))
    value = float(np.sqrt(np.mean((err / scale) ** 2)))
    return value if math.isfinite(value) else math.inf


def accurate_dt(bound, cells0: np.ndarray, t0: float, t1: float, method: str, rtol: float = RTOL,
                atol: float = ATOL, dt_stable: float = math.inf) -> tuple[float, float]:
    """The largest step (up to ``dt_stable`` and the span) whose local error at the start is
    within ``rtol``/``atol``, and that error.

    Args:
        bound: the bound kernel (its ``rhs(t, y)`` on flat states).
        cells0: the initial cell values.
        t0, t1: the time span.
        method: "euler", "ssprk3" or "rk4".
        rtol, atol: tolerances of the local error per step, as rk45 and bdf read theirs.
        dt_stable: the step the stability estimate allows (already with its safety factor).

    Returns:
        ``(dt, error)``: the step, and its scaled local error estimate (<= 1 unless the step
        had to stop shrinking at round-off).
    """
    if method not in ORDERS:
        raise SolverError(f"accurate_dt: no step-doubling estimate for method {method!r} (valid: {', '.join(ORDERS)})")
    span = float(t1) - float(t0)
    if not span > 0:
        raise SolverError(f"accurate_dt: empty time span ({t0}, {t1})")
    y = np.array(cells0, dtype=float, copy=True).reshape(-1)
    order = ORDERS[method]
    dt = min(float(dt_stable), span)
    rhs = getattr(bound, "rhs_serial", bound.rhs)  # a dozen evaluations: one thread (see rhs_serial)
    err = local_error(rhs, method, t0, y, dt, rtol, atol)
    for _ in range(ROUNDS):
        if err <= 1.0:
            break
        # the local error of an order-p method scales as dt**(p + 1)
        shrink = SAFETY * err ** (-1.0 / (order + 1)) if math.isfinite(err) else 0.1
        dt *= min(max(shrink, 0.05), 0.9)
        if dt <= 64 * np.finfo(float).eps * max(1.0, abs(t0)):
            break
        err = local_error(rhs, method, t0, y, dt, rtol, atol)
    return dt, err

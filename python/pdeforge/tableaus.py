"""Butcher tableaus of the explicit Runge-Kutta methods: one per method, read by every backend.

The NumPy, Numba, torch and spectral steppers take their stage coefficients from here (the
fused two-register forms of SSPRK3 and RK4 are derived from the same numbers, see
:meth:`Tableau.shu_osher`), and the stability extents of :mod:`pdeforge.solvers.methods` are
computed from each tableau's stability polynomial. Exact rationals, so a printer can write
``dt / 6.0`` rather than a rounded decimal. Like :mod:`pdeforge.errors`, every stage may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction as F
from functools import lru_cache


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge-Kutta method ``(A, b, c)`` (``A`` strictly lower triangular).

    Attributes:
        name: the method's name.
        order: its order of accuracy.
        a: the stage matrix, row ``i`` holding ``a[i][0..i-1]``.
        b: the weights.
        c: the nodes.
        b_error: weights of the embedded lower-order solution (error-controlled pairs).
        shu_osher: for strong-stability-preserving methods, the convex form ``(alpha, beta)``:
            stage ``i+1 = sum_j alpha[i][j] u_j + beta[i][j] dt f(u_j)`` (``u_0`` the state).
    """

    name: str
    order: int
    a: tuple[tuple[F, ...], ...]
    b: tuple[F, ...]
    c: tuple[F, ...]
    b_error: tuple[F, ...] | None = None
    shu_osher: tuple[tuple[tuple[F, ...], ...], tuple[tuple[F, ...], ...]] | None = None

    @property
    def stages(self) -> int:
        return len(self.b)

    def floats(self) -> tuple[list[list[float]], list[float], list[float]]:
        """``(A, b, c)`` as floats."""
        return [[float(v) for v in row] for row in self.a], [float(v) for v in self.b], [float(v) for v in self.c]

    def stability_polynomial(self) -> list[F]:
        """Coefficients ``[1, b.e, b.A e, b.A^2 e, ...]`` of ``R(z) = sum_k gamma_k z^k``."""
        s = self.stages
        coeffs = [F(1)]
        vec = [F(1)] * s  # A^k e
        for _ in range(s):
            coeffs.append(sum((bi * vi for bi, vi in zip(self.b, vec)), F(0)))
            vec = [sum((self.a[i][j] * vec[j] for j in range(i)), F(0)) for i in range(s)]
        while len(coeffs) > 1 and coeffs[-1] == 0:
            coeffs.pop()
        return coeffs

    def stability_extents(self) -> tuple[float, float]:
        """Lengths of the stability region ``|R(z)| <= 1`` along the negative real axis and
        (half) along the imaginary axis, to four decimals (0 where the axis is not inside)."""
        return _extents(tuple(self.stability_polynomial()))

    def butcher_of_shu_osher(self) -> tuple[list[list[F]], list[F]]:
        """``(A, b)`` implied by the convex form, to check it against the tableau."""
        alpha, beta = self.shu_osher
        s = len(alpha)
        # each u_i (i = 0..s) as u_0 + dt sum_j coef[i][j] k_j, with k_j = f(u_j)
        coef = [[F(0)] * s]
        for i in range(s):
            row = [F(0)] * s
            for j in range(i + 1):
                for m in range(s):
                    row[m] += alpha[i][j] * coef[j][m]
                row[j] += beta[i][j]
            coef.append(row)
        return [r[:i] for i, r in enumerate(coef[:s])], coef[s]


@lru_cache(maxsize=None)
def _extents(coeffs: tuple[F, ...]) -> tuple[float, float]:
    def inside(z: complex) -> bool:
        return abs(sum(float(c) * z ** k for k, c in enumerate(coeffs))) <= 1.0 + 1e-12

    def reach(direction: complex) -> float:
        step, x = 1e-2, 0.0
        while x < 20 and inside(direction * (x + step)):
            x += step
        if x == 0.0 and not inside(direction * 1e-6):
            return 0.0
        lo, hi = x, x + step  # bisection to the boundary
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if inside(direction * mid) else (lo, mid)
        return round(lo, 4)

    imag = reach(1j)
    return reach(-1.0), imag if imag > 1e-3 else 0.0


def _t(name, order, a, b, c, **more) -> Tableau:
    return Tableau(name, order, tuple(tuple(F(v) for v in row) for row in a), tuple(F(v) for v in b),
                   tuple(F(v) for v in c), **more)


TABLEAUS: dict[str, Tableau] = {
    "euler": _t("euler", 1, [[]], [1], [0], shu_osher=(((F(1),),), ((F(1),),))),
    "ssprk3": _t(
        "ssprk3", 3, [[], [1], [F(1, 4), F(1, 4)]], [F(1, 6), F(1, 6), F(2, 3)], [0, 1, F(1, 2)],
        shu_osher=(((F(1),), (F(3, 4), F(1, 4)), (F(1, 3), F(0), F(2, 3))),
                   ((F(1),), (F(0), F(1, 4)), (F(0), F(0), F(2, 3)))),
    ),
    "rk4": _t("rk4", 4, [[], [F(1, 2)], [0, F(1, 2)], [0, 0, 1]], [F(1, 6), F(1, 3), F(1, 3), F(1, 6)],
              [0, F(1, 2), F(1, 2), 1]),
    "dopri5": _t(
        "dopri5", 5,
        [[], [F(1, 5)], [F(3, 40), F(9, 40)], [F(44, 45), F(-56, 15), F(32, 9)],
         [F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)],
         [F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)],
         [F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84)]],
        [F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), 0],
        [0, F(1, 5), F(3, 10), F(4, 5), F(8, 9), 1, 1],
        b_error=(F(5179, 57600), F(0), F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100), F(1, 40)),
    ),
}


def work_arrays(tab: Tableau) -> int:
    """Arrays a fixed-step stepper of ``tab`` holds, the state included: two for a one-stage
    method, three for a two-register (Shu-Osher) form, five for the accumulator form."""
    if tab.shu_osher is not None:
        return 2 if tab.stages == 1 else 3
    return 5


def coefficient_text(value: F, dt: str = "dt") -> str:
    """``value * dt`` as Python source that rounds as the hand-written forms do (``dt / 6.0``)."""
    value = F(value)
    if value == 1:
        return dt
    if value.numerator == 1:
        return f"{dt} / {float(value.denominator)!r}"
    if value.denominator == 1:
        return f"{float(value.numerator)!r} * {dt}"
    return f"{float(value.numerator)!r} / {float(value.denominator)!r} * {dt}"


def scaler(value: F) -> Callable:
    """``dt -> value * dt`` evaluated as :func:`coefficient_text` prints it (same rounding at run
    time), built once per coefficient so that a step does no rational arithmetic."""
    value = F(value)
    if value == 1:
        return lambda dt: dt
    if value.numerator == 1:
        den = float(value.denominator)
        return lambda dt: dt / den
    if value.denominator == 1:
        num = float(value.numerator)
        return lambda dt: num * dt
    ratio = float(value.numerator) / float(value.denominator)
    return lambda dt: ratio * dt


def times_dt(value: F, dt):
    """``value * dt`` evaluated as :func:`coefficient_text` prints it (same rounding at run time)."""
    return scaler(value)(dt)


@dataclass(frozen=True)
class ConvexStage:
    """Stage ``i`` of a Shu-Osher form with two registers: ``u_{i+1} = keep u_0 + mix u_i + weight dt f(u_i)``
    at time ``t + node dt``."""

    node: F
    keep: F
    mix: F
    weight: F

    def __post_init__(self):
        # what a step evaluates, built once: t + node dt, weight dt, (weight / mix) dt and the floats
        object.__setattr__(self, "at", scaler(self.node))
        object.__setattr__(self, "by", scaler(self.weight))
        object.__setattr__(self, "euler_by", scaler(self.weight / self.mix) if self.mix else None)
        object.__setattr__(self, "keep_f", float(self.keep))
        object.__setattr__(self, "mix_f", float(self.mix))


@dataclass(frozen=True)
class AccumulatingStage:
    """Stage ``i`` of a method whose stage matrix has only a subdiagonal: ``k_i = f(s_i)`` at
    ``t + node dt``; the next stage value ``s_{i+1} = u_0 + advance dt k_i``; the result
    accumulates ``weight dt k_i`` (``advance`` None: the last stage)."""

    node: F
    advance: F | None
    weight: F

    def __post_init__(self):
        # what a step evaluates, built once: t + node dt, advance dt, weight dt
        object.__setattr__(self, "at", scaler(self.node))
        object.__setattr__(self, "advance_by", scaler(self.advance) if self.advance is not None else None)
        object.__setattr__(self, "by", scaler(self.weight))


@lru_cache(maxsize=None)
def convex_stages(tab: Tableau) -> tuple[ConvexStage, ...]:
    """The two-register stages of a strong-stability-preserving tableau (its ``shu_osher`` form)."""
    alpha, beta = tab.shu_osher
    out = []
    for i in range(len(alpha)):
        if any(alpha[i][j] for j in range(1, i)) or any(beta[i][j] for j in range(i)):
            raise ValueError(f"{tab.name}: stage {i} reads more than u_0 and u_{i}")
        keep = alpha[i][0] if i > 0 else F(0)
        out.append(ConvexStage(tab.c[i], keep, alpha[i][i] if i > 0 else alpha[0][0], beta[i][i]))
    return tuple(out)


@lru_cache(maxsize=None)
def accumulating_stages(tab: Tableau) -> tuple[AccumulatingStage, ...]:
    """The stages of a tableau whose ``A`` has only a subdiagonal (RK4), in accumulator form."""
    s = tab.stages
    for i in range(s):
        if any(tab.a[i][j] for j in range(i - 1)):
            raise ValueError(f"{tab.name}: stage {i} reads more than the previous stage")
    return tuple(AccumulatingStage(tab.c[i], tab.a[i + 1][i] if i + 1 < s else None, tab.b[i]) for i in range(s))

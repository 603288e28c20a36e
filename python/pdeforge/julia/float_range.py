"""Julia's floating-point range ``start:step:stop``, reproduced exactly, and MethodOfLines grids
whose ranges are exact.

MethodOfLines turns a point count ``m`` on ``Interval(a, b)`` into ``dx = (b - a)/(m - 1)``
(``edge_align``: ``(b - a)/n``) and the float range ``a:dx:b``; when rounding leaves the range's
last point short of ``b`` it appends ``b`` and the axis becomes a vector of points, which
MethodOfLines treats as a non-uniform grid (MethodOfLines 0.11.20
``src/discretization/discretize_vars.jl``: ``construct_discrete_space``). Periodic axes cannot
be non-uniform there ("Interface boundary conditions are not yet supported for nonuniform dx"),
so pdeforge chooses the upper end ``b`` of each axis, within a few units in the last place of
the exact value, such that the range is exact. The rules below are Julia's (``Base.:(:)`` for
IEEE floats in ``base/twiceprecision.jl``): a rational lift when start, step and stop have exact
small rational forms (``Base.rat``), else the start and step taken literally with the elements
computed in twice precision (correctly rounded sums, reproduced here with fractions).
"""

from __future__ import annotations

import math
from fractions import Fraction

from pdeforge.errors import PDEForgeError

#: ``maxintfloat(Float32, Int)``: the bound of ``Base.rat``'s continued fraction for Float64
_RAT_BOUND = 2**24
#: ``maxintfloat(Float64, Int)``
_INT_FLOAT = 2**53


def rat(x: float) -> tuple[int, int]:
    """Julia's ``Base.rat(x)``: a continued-fraction rational ``(n, d)`` near ``x``."""
    y = x
    a, b, c, d = 1, 0, 0, 1
    while abs(y) <= _RAT_BOUND:
        f = math.trunc(y)
        y -= f
        a, c = f * a + c, a
        b, d = f * b + d, b
        if max(abs(a), abs(b)) > _RAT_BOUND:
            return c, d
        if b != 0 and a / b == x:
            break
        if y == 0:  # Julia's inv(0.0) is Inf, which ends the loop
            break
        y = 1.0 / y
    return a, b


def _between(a: float, x: float, b: float) -> bool:
    return a <= x <= b or b <= x <= a


def float_range(start: float, step: float, stop: float) -> tuple[int, float]:
    """Length and last element of Julia's ``start:step:stop`` for Float64 values.

    Args:
        start, step, stop: the range's ends and step (floats; ``step != 0``).

    Returns:
        ``(length, last)`` as Julia computes them.
    """
    if step == 0:
        raise PDEForgeError("float_range: step must be nonzero")
    step_n, step_d = rat(step)
    if step_d != 0 and step_n / step_d == step:
        start_n, start_d = rat(start)
        stop_n, stop_d = rat(stop)
        if start_d != 0 and stop_d != 0 and start_n / start_d == start and stop_n / stop_d == stop:
            den = start_d * (step_d // math.gcd(start_d, step_d))
            if (den != 0 and abs(start * den) <= _INT_FLOAT and abs(step * den) <= _INT_FLOAT
                    and den % start_d == 0 and den % step_d == 0):
                first_n, delta_n = round(start * den), round(step * den)
                length = max(0, (den * stop_n - stop_d * first_n + delta_n * stop_d) // (delta_n * stop_d))
                if (_between(start, start + (length - 1) * step, stop + step / 2)
                        and not _between(start, start + length * step, stop)):
                    return length, float(Fraction(first_n + (length - 1) * delta_n, den))
    steps = (stop - start) / step
    if steps < 0:
        return 0, start
    if steps == 0:
        length = 1
    else:
        length = round(steps) + 1
        overshoot = start + (length - 1) * step
        length -= int(start < stop < overshoot) + int(start > stop > overshoot)
    return length, float(Fraction(start) + (length - 1) * Fraction(step))


def is_exact(lo: float, hi: float, steps: int) -> bool:
    """Whether MethodOfLines' range on ``[lo, hi]`` with ``steps`` intervals is uniform: Julia's
    ``lo:((hi - lo)/steps):hi`` has ``steps + 1`` points and ends exactly at ``hi``."""
    length, last = float_range(lo, (hi - lo) / steps, hi)
    return length == steps + 1 and last == hi


def exact_ends(lo: float, hi: float, steps: int, ulps: int = 1024) -> tuple[float, float]:
    """Axis ends within a few units in the last place of ``(lo, hi)`` for which
    :func:`is_exact` holds.

    Steps ``dx`` near ``(hi - lo)/steps`` are tried with the end ``b`` their literal range
    reaches, correctly rounded, until MethodOfLines' own ``(b - lo)/steps`` gives that step back
    (``hi - lo`` is rounded unless ``lo`` is a multiple of ``ulp(hi)``, so ``lo`` rounded to that
    multiple is tried too: a shift of at most half an ulp).

    Args:
        lo, hi: the axis ends (``lo < hi``).
        steps: intervals of the range (``points - 1``; ``edge_align``: the cell count).
        ulps: how many floats on either side of ``(hi - lo)/steps`` are tried as the step.

    Raises:
        PDEForgeError: if none of them gives an exact range.
    """
    if is_exact(lo, hi, steps):
        return lo, hi
    unit = math.ulp(max(abs(lo), abs(hi)))
    dx = (hi - lo) / steps
    for a in dict.fromkeys((lo, round(lo / unit) * unit)):
        # a step near dx, and the end its literal range reaches (correctly rounded)
        for k in range(ulps + 1):
            for step in dict.fromkeys((dx + k * math.ulp(dx), dx - k * math.ulp(dx))):
                b = float(Fraction(a) + steps * Fraction(step))
                if a < b and is_exact(a, b, steps):
                    return a, b
    raise PDEForgeError(
        f"MethodOfLines grid: no step within {ulps} ulps of ({hi!r} - {lo!r})/{steps} gives an exact range "
        "on nearby ends; choose another number of cells"
    )

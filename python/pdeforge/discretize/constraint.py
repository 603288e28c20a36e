"""Quadrature on a grid and ProbConserv's discrete constraint ``G u = b``.

:func:`constraint` turns the law into ProbConserv's linear constraint on a prediction
``u(t_j, x_i)``: for each time ``t_j``, ``sum_i w_i u(t_j, x_i) = U(t_j)``, with quadrature
weights ``w`` (:func:`quadrature_weights`) and ``U`` the model's exact mass when it has one,
else ``U(0)`` plus the time integral of the inflow through the boundary (from the boundary
conditions when they determine the flux, else from a computed solution).

Quadrature rules, per axis (the weights of a multi-dimensional grid are their products):

* ``"trapezoid"`` (default): the integral of the piecewise-linear interpolant of the values,
  extended linearly to the domain ends where the points stop short of them. On node grids
  that include the ends (``np.linspace(lo, hi, n)``, as ProbConserv uses) this is the
  textbook trapezoid rule; on a periodic axis it is ``h`` per point.
* ``"midpoint"`` (alias ``"cell"``): each value times the width of the cell around its point
  (faces half-way between points, the outer faces on the domain ends). On pdeforge's
  cell-centred :class:`~pdeforge.UniformGrid` this is ``h`` per cell: exactly the discrete
  mass of the finite-volume schemes, so ``G @ (numerical solution)`` reproduces the scheme's
  own conservation to round-off. ``"trapezoid"`` matches it on periodic axes only (on a
  bounded axis its end weights are ``9h/8, 7h/8``).

On the radius of a curvilinear grid the weights are always the volumes of the rings or shells
around the points (:func:`radial_weights`), the discrete mass of the conservative scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdeforge.errors import PDEForgeError
from pdeforge.discretize.grid import UniformGrid, grid_of
from pdeforge.symbolic.conservation import ConservationLaw
from pdeforge.symbolic.system import PDESystem

RULES = ("trapezoid", "midpoint", "cell")


def quadrature_weights(
    points,
    domain: tuple[float, float],
    rule: str = "trapezoid",
    periodic: bool = False,
) -> np.ndarray:
    """Weights ``w`` with ``sum_i w_i f(x_i)`` approximating the integral of f over ``domain``.

    Args:
        points: increasing 1-D coordinates inside ``domain`` (cell centres, nodes, any).
        domain: ``(low, high)``.
        rule: "trapezoid" (default) or "midpoint"/"cell" (see the module docstring).
        periodic: the axis is periodic with period ``high - low``.

    Raises:
        PDEForgeError: unknown rule, points not increasing or outside the domain.
    """
    if rule not in RULES:
        raise PDEForgeError(f"rule {rule!r} is unknown (valid: {', '.join(RULES)})")
    x = np.asarray(points, dtype=float).ravel()
    lo, hi = float(domain[0]), float(domain[1])
    n = x.size
    scale = max(1.0, abs(lo), abs(hi))
    if n < 1 or np.any(np.diff(x) <= 0):
        raise PDEForgeError("quadrature points must be a non-empty, strictly increasing sequence")
    if x[0] < lo - 1e-12 * scale or x[-1] > hi + 1e-12 * scale:
        raise PDEForgeError(f"quadrature points reach outside the domain [{lo:g}, {hi:g}]")
    L = hi - lo
    if periodic and not (x[0] <= lo + 1e-12 * scale and x[-1] >= hi - 1e-12 * scale):
        # each point owns half the gap to each neighbour, wrapping around: this is both the
        # periodic trapezoid rule and the cell sum
        left = np.diff(np.concatenate([[x[-1] - L], x]))
        right = np.diff(np.concatenate([x, [x[0] + L]]))
        return 0.5 * (left + right)
    if n == 1:
        return np.array([L])
    w = np.zeros(n)
    gaps = np.diff(x)
    if rule == "trapezoid":
        w[:-1] += 0.5 * gaps
        w[1:] += 0.5 * gaps
        # linear extrapolation over [lo, x0] and [x_{n-1}, hi]
        d0, g0 = x[0] - lo, gaps[0]
        w[0] += d0 * (1.0 + d0 / (2.0 * g0))
        w[1] -= d0 * d0 / (2.0 * g0)
        d1, g1 = hi - x[-1], gaps[-1]
        w[-1] += d1 * (1.0 + d1 / (2.0 * g1))
        w[-2] -= d1 * d1 / (2.0 * g1)
        return w
    faces = np.concatenate([[lo], 0.5 * (x[1:] + x[:-1]), [hi]])
    return np.diff(faces)


def radial_weights(points, domain: tuple[float, float], m: int, factor: float) -> np.ndarray:
    """Weights of the radius of a curvilinear grid: the volume of the shell around each point.

    Faces lie half-way between the points and on the domain ends (the midpoint rule's cells);
    each point's weight is ``factor * (r_out^(m+1) - r_in^(m+1)) / (m+1)``, the exact volume of
    its ring (``m = 1``, ``factor = 2 pi``) or shell (``m = 2``, ``4 pi``). On a
    :class:`~pdeforge.UniformGrid`'s cell centres these are its :meth:`cell_volumes`, the
    discrete mass of the conservative scheme, whichever ``rule`` is asked for.
    """
    faces = np.cumsum(np.concatenate([[domain[0]], quadrature_weights(points, domain, "midpoint")]))
    return factor * np.diff(faces ** (m + 1)) / (m + 1)


@dataclass
class QuadratureGrid:
    """Points and weights of a tensor grid on a system's domain.

    Attributes:
        axes: one 1-D coordinate array per axis.
        weights: weights per point, shape ``tuple(len(a) for a in axes)``.
        rule: the rule used.
    """

    axes: tuple[np.ndarray, ...]
    weights: np.ndarray
    rule: str

    @property
    def shape(self) -> tuple[int, ...]:
        return self.weights.shape

    def mesh(self) -> tuple[np.ndarray, ...]:
        return tuple(np.meshgrid(*self.axes, indexing="ij"))


def quadrature_grid(system: PDESystem, grid, rule: str = "trapezoid", field: str | None = None) -> QuadratureGrid:
    """Quadrature points and weights of ``grid`` on ``system``'s domain.

    Args:
        system: the system (domain and periodic axes).
        grid: a :class:`~pdeforge.UniformGrid` (its cell centres), an int or tuple of cell
            counts (a UniformGrid on the domain), a 1-D array of points (1-D systems), or a
            tuple with one 1-D coordinate array per axis (a tensor grid).
        rule: "trapezoid" (default) or "midpoint"/"cell".
        field: the field whose boundary conditions say which axes are periodic.
    """

    if isinstance(grid, (int, np.integer)) or (
        isinstance(grid, (tuple, list)) and grid and all(isinstance(g, (int, np.integer)) for g in grid)
    ):
        grid = grid_of(system, grid)
    if isinstance(grid, UniformGrid):
        if tuple(grid.domain) != tuple(system.domain):
            raise PDEForgeError("grid: its domain differs from the system's")
        axes = grid.coordinates
    elif isinstance(grid, (tuple, list)):
        axes = tuple(np.asarray(a, dtype=float).ravel() for a in grid)
    else:
        axes = (np.asarray(grid, dtype=float).ravel(),)
    if len(axes) != system.dim:
        raise PDEForgeError(f"grid: {len(axes)} coordinate axes given, the system is {system.dim}-D")
    name = field or system.fields[0]
    geometry = getattr(system, "geometry", None)
    weights = np.ones(())
    for a, pts in enumerate(axes):
        periodic = system.bcs[(name, a)][0].periodic
        if a == 0 and geometry is not None and geometry.curvilinear:
            w = radial_weights(pts, system.domain[0], geometry.m, geometry.angular_factor())
        else:
            w = quadrature_weights(pts, system.domain[a], rule, periodic)
        weights = np.multiply.outer(weights, w)
    return QuadratureGrid(tuple(axes), np.asarray(weights), rule)


@dataclass
class Constraint:
    """ProbConserv's linear constraint ``G u = b`` on a space-time prediction.

    Unpacks as ``G, b = constraint(...)``.

    Attributes:
        G: shape ``(T, T*N)``: row ``j`` holds the quadrature weights in the columns of time
            ``t_j`` of the flattened prediction ``u[j, i]`` (times first, then the grid in C
            order). Use :attr:`weights` for a per-time constraint instead.
        b: shape ``(T,)``: the total mass ``U(t_j)``.
        weights: shape ``(N,)``: quadrature weights of one time (``G`` per time is
            ``weights[None, :]`` with right-hand side ``b[j]``).
        times: the times ``t_j``.
        grid: the quadrature points and weights.
        law: the conservation law.
        source: where ``b`` came from: "exact" (the model's U(t)), "quadrature of the exact
            solution" (the same weights applied to the exact profile), "boundary conditions"
            (U(0) plus the boundary flux the BCs fix) or "solution" (U(0) plus the boundary
            flux of a computed solution, integrated in time over its frames).
    """

    G: np.ndarray
    b: np.ndarray
    weights: np.ndarray
    times: np.ndarray
    grid: QuadratureGrid
    law: ConservationLaw
    source: str

    def __iter__(self):
        yield self.G
        yield self.b

    def residual(self, u: np.ndarray) -> np.ndarray:
        """``G u - b`` per time for values ``u`` of shape ``(T, *grid.shape)`` (the conservation error)."""
        u = np.asarray(u, dtype=float).reshape(self.times.size, -1)
        return u @ self.weights - self.b


def assemble_constraint(law: ConservationLaw, qgrid: QuadratureGrid, times, b, source: str) -> Constraint:
    """``G`` of shape ``(T, T*N)``, one row of quadrature weights per time, with the given ``b``.

    Args:
        law: the conservation law.
        qgrid: the quadrature points and weights.
        times: the times ``t_j`` (T of them).
        b: the total mass ``U(t_j)`` per time.
        source: where ``b`` came from (see :class:`Constraint`).
    """
    w = qgrid.weights.ravel()
    ts = np.asarray(times, dtype=float).ravel()
    T, N = ts.size, w.size
    G = np.zeros((T, T * N))
    for j in range(T):
        G[j, j * N:(j + 1) * N] = w
    return Constraint(G, np.asarray(b, dtype=float), w, ts, qgrid, law, source)

"""Ghost-cell closures of boundary conditions.

Along the inward normal, with ``s`` the distance from the boundary face, cell ``j`` (0 next to
the face) has its centre at ``s = (j + 1/2) h`` and ghost layer ``l`` (1 next to the face) at
``s = -(l - 1/2) h``. A polynomial ``q(s)`` of degree ``m`` through the ``m`` nearest cell
values that satisfies the boundary condition ``alpha*q(0) - beta*q'(0) = g`` (``-q'(0)`` is the
outward normal derivative on either side) is evaluated at the ghost centres:

    ghost_l = sum_j A[l, j] * u_j + B[l] * g

Degree 1 (``m = 1``) gives the classic second-order closures (``2g - u_0`` for Dirichlet,
``u_0 + h g`` for Neumann); ``m = 4`` keeps fourth-order schemes fourth order. Every closure is
linear in the cell values, so the map from cell values to padded values is a constant matrix,
which is what lets the exact Jacobian be assembled from the interior stencil alone.

Walls of fields with more than second derivatives along the normal are closed by reflection
instead (:mod:`pdeforge.symbolic.walls`), to every depth, plus the wall's two data (the Taylor
terms the reflection leaves, :func:`wall_layer`):

    ghost_l = sign * u_(l-1) + B[l] * g + B2[l] * g2

(equations of odd order extrapolate the odd pair's parabola from the first cell instead; a
clamped wall, ``u = g`` and ``du/dn = g2``, the cubic through the first two cells).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

#: Cells used by the closure polynomial for each accuracy order.
CLOSURE_POINTS = {2: 1, 4: 4}


@lru_cache(maxsize=256)
def ghost_closure(alpha: sp.Expr, beta: sp.Expr, h: sp.Expr, m: int, layers: int) -> tuple[tuple, tuple]:
    """Weights of the ghost values in the cell values and the boundary value.

    Args:
        alpha, beta: coefficients of the condition ``alpha*u + beta*du/dn = g``.
        h: cell width along the normal (a number or a symbol).
        m: number of cells the closure polynomial passes through.
        layers: number of ghost layers to fill.

    Returns:
        ``(A, B)`` with ``A[l-1][j]`` the weight of cell ``j`` and ``B[l-1]`` the weight of ``g``
        in ghost layer ``l``.

    Raises:
        ZeroDivisionError: if the condition does not determine the ghost values (for example
            a Robin condition whose coefficients cancel the polynomial's boundary value).
    """
    alpha, beta, h = sp.sympify(alpha), sp.sympify(beta), sp.sympify(h)
    c = sp.symbols(f"c0:{m + 1}")
    u = sp.symbols(f"u0:{m}")
    g = sp.Symbol("g")
    s = sp.Symbol("s")
    q = sum(ck * s**k for k, ck in enumerate(c))
    eqs = [sp.Eq(q.subs(s, (j + sp.Rational(1, 2)) * h), u[j]) for j in range(m)]
    eqs.append(sp.Eq(alpha * q.subs(s, 0) - beta * sp.diff(q, s).subs(s, 0), g))
    sol = sp.solve(eqs, c, dict=True)
    if not sol:
        raise ZeroDivisionError("boundary condition does not determine the ghost values")
    qs = q.subs(sol[0])
    A, B = [], []
    for layer in range(1, layers + 1):
        value = sp.expand(qs.subs(s, -(layer - sp.Rational(1, 2)) * h))
        A.append(tuple(sp.simplify(value.coeff(uj)) for uj in u))
        B.append(sp.simplify(value.coeff(g)))
    return tuple(A), tuple(B)


def ghost_weights(alpha: float, beta: float, h: float, m: int, layers: int):
    """Numerical :func:`ghost_closure` for numeric ``alpha``, ``beta``, ``h`` (fast, NumPy).

    Returns:
        ``(A, B)`` as NumPy arrays of shapes ``(layers, m)`` and ``(layers,)``.

    Raises:
        ZeroDivisionError: if the condition does not determine the ghost values.
    """
    import numpy as np

    # unknowns: polynomial coefficients c_0..c_m in the scaled variable s/h
    rows = [[(j + 0.5) ** k for k in range(m + 1)] for j in range(m)]
    rows.append([alpha if k == 0 else (-beta / h if k == 1 else 0.0) for k in range(m + 1)])
    V = np.array(rows, dtype=float)
    if abs(np.linalg.det(V)) < 1e-14 * max(1.0, np.abs(V).max()) ** (m + 1):
        raise ZeroDivisionError("boundary condition does not determine the ghost values")
    Vinv = np.linalg.inv(V)  # c = Vinv @ [u_0..u_{m-1}, g]
    s = np.array([[(-(layer - 0.5)) ** k for k in range(m + 1)] for layer in range(1, layers + 1)])
    W = s @ Vinv
    return W[:, :m], W[:, m]


def reflection_weights(sign: int, layers: int, h: float = 1.0, extrapolate: bool = False, clamped: bool = False):
    """Ghost weights of a wall closed by an even (``sign = 1``) or odd (``sign = -1``) reflection
    about the face (or, ``extrapolate``, by the odd pair's parabola, or, ``clamped``, by the
    clamped pair's cubic, :func:`wall_layer`).

    Returns:
        ``(A, B, B2)``: ``A`` as for :func:`ghost_weights`, with ``m = layers`` cells (a
        reflection: ``A = sign * I``, ghost layer ``l`` mirrors cell ``l - 1``), and the weights
        of the wall's two data per layer (zero where the data are).
    """
    import numpy as np

    if clamped and layers < 2:
        raise ValueError("a clamped wall's cubic reads two cells: it needs at least two ghost layers")
    A, B, B2 = np.zeros((layers, layers)), np.zeros(layers), np.zeros(layers)
    for layer in range(1, layers + 1):
        cells, B[layer - 1], B2[layer - 1] = wall_layer(sign, layer, h, extrapolate, clamped)
        for j, w in cells.items():
            A[layer - 1, j] = w
    return A, B, B2


def wall_layer(sign: int, layer: int, h, extrapolate: bool = False, clamped: bool = False):
    """Ghost layer ``layer`` of a wall with two data, ``g`` and ``g2`` (a number or SymPy).

    With ``s = (layer - 1/2) h`` the distance of the ghost centre (and of its mirror cell) from
    the face and ``n`` the outward normal:

    * odd (``u = g``, ``d2u/dn2 = g2``): ``u(-s) + u(s) = 2 g + g2 s**2 + O(s**4)``, so
      ``ghost = -u_(l-1) + 2 g + s**2 g2``;
    * even (``du/dn = g``, ``d3u/dn3 = g2``): ``u(-s) - u(s) = 2 g s + g2 s**3 / 3 + O(s**5)``,
      so ``ghost = u_(l-1) + 2 s g + s**3 / 3 g2``;
    * odd, ``extrapolate`` (equations of odd order, such as KdV, whose odd extension is no
      solution: mirrored, their walls do not converge): the parabola ``q(s) = g + c s + g2 s**2/2``
      through the first cell, ``ghost = -(2l - 1) u_0 + 2 l g + l (2l - 1) h**2 / 4 g2``;
    * ``clamped`` (``u = g``, ``du/dn = g2``): the cubic through the first two cells with value
      ``g`` and slope ``-g2`` along the inward distance at the face, ``ghost = (l + 1)(2l - 1)**2 u_0
      - l (2l - 1)**2 / 9 u_1 - 4 l (l + 1)(8l - 7) / 9 g + 2 l (l + 1)(2l - 1) h / 3 g2``
      (exact for cubics; its error, O(h**4), keeps the 5-point fourth difference second order,
      and the operator's spectrum real and negative, radius 25.7 / h**4 against 16 / h**4 of
      the reflections).

    Returns:
        ``(cells, weight of g, weight of g2)``, ``cells`` mapping the cell index from the face to
        its weight.
    """
    half = sp.Rational(1, 2) if isinstance(h, sp.Basic) else 0.5
    if clamped:
        l, ninth = layer, sp.Rational(1, 9) if isinstance(h, sp.Basic) else 1 / 9
        odd = (2 * l - 1) ** 2
        return ({0: (l + 1) * odd, 1: -l * odd * ninth}, -4 * l * (l + 1) * (8 * l - 7) * ninth,
                2 * l * (l + 1) * (2 * l - 1) * h / 3)
    if extrapolate:
        return {0: -(2 * layer - 1)}, 2 * layer, layer * (2 * layer - 1) * h**2 * half**2
    s = (layer - half) * h
    if sign == -1:
        return {layer - 1: -1}, 2, s**2
    return {layer - 1: 1}, 2 * s, s**3 / 3


def closure_width(bcs, ghost, points: int) -> int:
    """Cells a ghost fill reads per side: the polynomial's ``points``, or the ghost depth where a
    wall is closed by reflection (at least the two cells of a clamped wall's cubic)."""
    reflected = [max(ghost[a], 2 if bc.clamped else 0) for (_, a), pair in bcs.items() for bc in pair
                 if bc.reflect]
    return max([points, *reflected])

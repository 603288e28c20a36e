"""Robin conditions alpha(t)*u + beta(t)*du/dn = g(t) against a manufactured solution.

u = exp(-t) cos(x - 0.3) solves u_t = u_xx on [0, 1]; the sides carry alpha = t**2, beta = -3
(low) and alpha = 2 + sin(t), beta = 1 + t (high) with g from u. Every target fills the ghosts
with the weights of the fill's time, and the exact Jacobian uses the same weights.
"""

import numpy as np
import pdeforge as pf
import pytest
import sympy as sp
from pdeforge.discretize.grid import grid_of
from pdeforge.errors import BoundaryConditionError

x, t = sp.symbols("x t", real=True)
EXACT = sp.exp(-t) * sp.cos(x - 0.3)
SIDES = ((t**2, sp.Integer(-3)), (2 + sp.sin(t), 1 + t))


def _robin(alpha, beta, side: int) -> dict:
    normal, face = (-1, 0) if side == 0 else (1, 1)
    g = (alpha * EXACT + beta * normal * sp.diff(EXACT, x)).subs(x, face)
    return {"robin": (str(alpha), str(beta), str(g))}


def _system():
    bcs = {"x": tuple(_robin(a, b, side) for side, (a, b) in enumerate(SIDES))}
    return pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs=bcs, name="robin-of-t")


EXACT_F = sp.lambdify((x, t), EXACT)


def _rk4_error(bound, n_steps_per_h2: float = 5.0, t_end: float = 0.5) -> float:
    xc = np.asarray(bound.coords[0], dtype=float)
    y = EXACT_F(xc, 0.0)
    h = float(bound.grid.spacing[0])
    steps = int(np.ceil(t_end * n_steps_per_h2 / h**2))
    dt, tt = t_end / steps, 0.0
    for _ in range(steps):
        k1 = bound.rhs(tt, y)
        k2 = bound.rhs(tt + dt / 2, y + dt / 2 * k1)
        k3 = bound.rhs(tt + dt / 2, y + dt / 2 * k2)
        k4 = bound.rhs(tt + dt, y + dt * k3)
        y, tt = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), tt + dt
    return float(np.max(np.abs(y - EXACT_F(xc, t_end))))


def test_coefficients_of_space_are_refused_when_the_system_is_built():
    with pytest.raises(BoundaryConditionError, match="alpha and beta may depend on t and parameters only"):
        pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs={"x": {"robin": ("1 + x", 1, 0)}})


@pytest.mark.parametrize("order, cells, expected", [(2, (16, 32, 64), 2.0), (4, (16, 32), 4.0)])
def test_observed_order(order, cells, expected):
    system = _system()
    kernel = pf.compile(system, target="numpy", order=order)
    errors = [_rk4_error(kernel.bind(grid_of(system, n))) for n in cells]
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(observed > expected - 0.25), (errors, observed)
    assert errors[-1] < (2e-5 if order == 2 else 2e-8)


@pytest.mark.parametrize("target", ["numba", "torch"])
@pytest.mark.parametrize("order", [2, 4])
def test_targets_fill_as_numpy(target, order):
    if target == "torch":
        pytest.importorskip("torch")
    system = _system()
    grid = grid_of(system, 12)
    ref = pf.compile(system, target="numpy", order=order).bind(grid)
    other = pf.compile(system, target=target, order=order).bind(grid)
    y = np.sin(3 * np.asarray(ref.coords[0])) + 0.5
    for time in (0.0, 0.37, 1.9):
        np.testing.assert_allclose(other.rhs(time, y), ref.rhs(time, y), rtol=1e-12, atol=1e-10)
    if target == "numba":  # the compiled ghost fill of the stepping loops
        U, V = ref.pad(y, 0.0), ref.pad(y, 0.0)
        for time in (0.37, 1.9):
            other.fill_ghosts_compiled(U, time)
            ref.layout.fill(V, time)
            np.testing.assert_allclose(U, V, rtol=1e-12, atol=1e-12)


def test_compiled_steps_follow_the_coefficients():
    system = _system()
    grid = grid_of(system, 24)
    bound = pf.compile(system, target="numba").bind(grid)
    ref = pf.compile(system, target="numpy").bind(grid)
    y = EXACT_F(np.asarray(ref.coords[0]), 0.0)
    dt, n = 2e-4, 500
    buffers = [bound.pad(y, 0.0)] + [bound.new_padded() for _ in range(4)]
    bound.advance_compiled("rk4", buffers, 0.0, dt, n, parallel=False)
    yy, tt = y.copy(), 0.0
    for _ in range(n):
        k1 = ref.rhs(tt, yy)
        k2 = ref.rhs(tt + dt / 2, yy + dt / 2 * k1)
        k3 = ref.rhs(tt + dt / 2, yy + dt / 2 * k2)
        k4 = ref.rhs(tt + dt, yy + dt * k3)
        yy, tt = yy + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), tt + dt
    np.testing.assert_allclose(bound.cells(buffers[0]).reshape(-1), yy, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("order", [2, 4])
def test_exact_jacobian_at_each_time(order):
    bcs = {"x": tuple(_robin(a, b, side) for side, (a, b) in enumerate(SIDES))}
    system = pf.PDESystem({"u": "laplace(u) + u**2/4"}, domain=[(0, 1)], bcs=bcs, name="robin-of-t-nonlinear")
    bound = pf.compile(system, target="numpy", order=order).bind(grid_of(system, 10))
    y = 1 + 0.3 * np.cos(2 * np.asarray(bound.coords[0]))
    for time in (0.2, 1.3, 0.2):
        J = bound.jacobian(time, y).toarray()
        eps = 1e-6
        fd = np.column_stack([(bound.rhs(time, y + eps * e) - bound.rhs(time, y - eps * e)) / (2 * eps)
                              for e in np.eye(y.size)])
        np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-5 * np.abs(fd).max())


def test_implicit_solve_converges():
    system = _system()
    errors = []
    for n in (16, 32):
        ds = pf.solve(system, grid=n, t_span=(0, 0.5), ic={"u": "cos(x - 0.3)"}, method="bdf", backend="numpy")
        xc = ds.x.values
        errors.append(float(np.max(np.abs(ds.u.values[-1] - EXACT_F(xc, 0.5)))))
    assert 1.7 < np.log2(errors[0] / errors[1]) < 2.3, errors

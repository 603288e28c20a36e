"""Coefficient fields: arrays, callables and expressions of the coordinates as parameters.

References are manufactured solutions (the source is derived symbolically from the chosen
exact solution), observed orders of convergence, the NumPy target for the compiled ones, and
finite differences of the right-hand side for the exact Jacobian.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import PDEForgeError

TWO_PI = 2 * np.pi


def _periodic_error(n: int, backend: str = "numpy") -> float:
    # u = exp(-t) cos x solves u_t = (k u_x)_x + exp(-t) g with k = 1 + sin(x)/2, g = sin x cos x
    x = (np.arange(n) + 0.5) * TWO_PI / n
    system = pf.PDESystem({"u": "div(k*grad(u)) + exp(-t)*g"},
                          params={"k": "1 + 0.5*sin(x)", "g": np.sin(x) * np.cos(x)},
                          domain=[(0, TWO_PI)], bcs="periodic")
    ds = pf.solve(system, grid=n, t_span=(0, 0.5), ic={"u": "cos(x)"}, method="rk4", dt=0.8 / n**2, backend=backend, output=pf.Output(save_every=0.5))
    return float(np.max(np.abs(ds.u.isel(t=-1).values - np.exp(-0.5) * np.cos(x))))


def test_periodic_heterogeneous_diffusion_is_second_order():
    errors = np.array([_periodic_error(n) for n in (16, 32, 64)])
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(orders - 2) < 0.1), orders


def _walled_problem():
    """2-D Dirichlet box: u = exp(-t) sin(pi x) sin(pi y), k = 1 + x y (an array), source a callable."""
    x, y, t = sp.symbols("x y t", real=True)
    k = 1 + x * y
    u = sp.exp(-t) * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    source = sp.simplify((sp.diff(u, t) - sp.diff(k * sp.diff(u, x), x) - sp.diff(k * sp.diff(u, y), y)) * sp.exp(t))
    g = sp.lambdify((x, y), source, "numpy")
    return g, sp.lambdify((x, y, t), u, "numpy")


def _walled(n: int, backend: str, g):
    grid = UniformGrid.from_spec([(0, 1), (0, 1)], (n, n))
    X, Y = grid.mesh()
    system = pf.PDESystem({"u": "div(k*grad(u)) + exp(-t)*s"}, params={"k": 1 + X * Y, "s": g},
                          domain=[(0, 1), (0, 1)], bcs="dirichlet")
    return system, grid


def test_walled_array_coefficient_converges_and_numba_matches_numpy():
    g, exact = _walled_problem()
    errors = []
    for n in (8, 16, 32):
        system, grid = _walled(n, "numpy", g)
        ds = pf.solve(system, grid=grid, t_span=(0, 0.1), ic={"u": "sin(pi*x)*sin(pi*y)"}, method="rk4", dt=0.1 / n**2, backend="numpy", output=pf.Output(save_every=0.1))
        errors.append(float(np.max(np.abs(ds.u.isel(t=-1).values - exact(*grid.mesh(), 0.1)))))
        if n == 8:  # the compiled stepping loops keep the coefficient rows of every buffer
            numba = pf.solve(system, grid=grid, t_span=(0, 0.1), ic={"u": "sin(pi*x)*sin(pi*y)"}, method="rk4", dt=0.1 / n**2, backend="numba", output=pf.Output(save_every=0.1))
            assert np.max(np.abs(numba.u.values - ds.u.values)) < 1e-12
    errors = np.array(errors)
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(orders > 1.85), (errors, orders)


def test_torch_matches_numpy():
    pytest.importorskip("torch")
    g, _ = _walled_problem()
    system, grid = _walled(12, "numpy", g)
    y = np.random.default_rng(0).standard_normal(grid.size)
    ref = pf.compile(system, target="numpy").bind(grid).rhs(0.3, y)
    got = pf.compile(system, target="torch").bind(grid).rhs(0.3, y)
    assert np.max(np.abs(np.asarray(got) - ref)) < 1e-12 * np.max(np.abs(ref))


def test_jacobian_is_exact_and_has_no_coefficient_columns():
    g, _ = _walled_problem()
    system = pf.PDESystem({"u": "div(k*grad(u)) - k*u**3 + s"}, params={"k": "1 + x*y", "s": g},
                          domain=[(0, 1), (0, 1)], bcs="neumann")
    grid = UniformGrid.from_spec(system.domain, (6, 5))
    bound = pf.compile(system, target="numpy").bind(grid)
    y = np.random.default_rng(1).standard_normal(grid.size)
    J = bound.jacobian(0.0, y).toarray()
    assert J.shape == (grid.size, grid.size)
    eps = 1e-6
    fd = np.column_stack([(bound.rhs(0.0, y + eps * e) - bound.rhs(0.0, y - eps * e)) / (2 * eps)
                          for e in np.eye(grid.size)])
    assert np.max(np.abs(J - fd)) < 1e-6 * np.max(np.abs(J))


def test_new_values_reuse_the_compiled_kernel():
    grid = UniformGrid.from_spec([(0, 1)], 16)
    (x,) = grid.coordinates
    system = pf.PDESystem({"u": "D*laplace(u) + s"}, params={"D": 0.1, "s": np.sin(x)}, domain=[(0, 1)],
                          bcs="neumann")
    first = pf.compile(system, target="numpy")
    other = system.with_params(s=np.cos(x), D=0.2)
    second = pf.compile(other, target="numpy")
    assert second.key == first.key and second.cache_hit and second.module is first.module
    y = np.zeros(16)
    # zero state: the right-hand side is the source itself
    assert np.array_equal(first.bind(grid).rhs(0.0, y), np.sin(x))
    assert np.array_equal(second.bind(grid).rhs(0.0, y), np.cos(x))
    assert np.array_equal(first.bind(grid, params={"s": "x**2"}).rhs(0.0, y), x**2)
    # a structurally different system (s a number) is another kernel
    assert pf.compile(pf.PDESystem({"u": "D*laplace(u) + s"}, params={"D": 0.1, "s": 1.0}, domain=[(0, 1)],
                                   bcs="neumann"), target="numpy").key != first.key


def test_errors_name_the_parameter_and_the_shape_without_the_numbers():
    grid = UniformGrid.from_spec([(0, 1), (0, 1)], (64, 64))
    system = pf.PDESystem({"u": "laplace(u) + source"}, params={"source": np.ones((32, 32))},
                          domain=[(0, 1), (0, 1)])
    with pytest.raises(PDEForgeError) as info:
        pf.compile(system, target="numpy").bind(grid)
    msg = str(info.value)
    assert "'source'" in msg and "(32, 32)" in msg and "(64, 64)" in msg and "1." not in msg
    assert "\n" not in msg
    with pytest.raises(PDEForgeError, match=r"parameter 'source': an array with 1 axes.*2 axes"):
        pf.PDESystem({"u": "laplace(u) + source"}, params={"source": np.ones(64)}, domain=[(0, 1), (0, 1)])
    with pytest.raises(PDEForgeError, match=r"parameter 'source': an array of shape \(2,\) \(object\) is not a number"):
        pf.PDESystem({"u": "source"}, params={"source": np.array([object(), object()])})
    with pytest.raises(PDEForgeError, match=r"parameter 'k': unknown name 'u'"):
        pf.PDESystem({"u": "k*laplace(u)"}, params={"k": "1 + u"})
    base = pf.PDESystem({"u": "D*laplace(u)"}, params={"D": 1.0})
    with pytest.raises(PDEForgeError, match=r"parameter 'D' is a number in this system, got an array of shape \(8,\)"):
        base.with_params(D=np.ones(8))
    with pytest.raises(PDEForgeError, match="coefficient fields .* 'julia' target"):
        pf.compile(system, target="julia")


def test_matches_py_pde_with_field_constants():
    pde = pytest.importorskip("pde")
    n = 32
    grid = pde.CartesianGrid([[0, TWO_PI]], n, periodic=True)
    (x,) = grid.axes_coords
    s, k = np.exp(np.sin(x)), 1 + 0.5 * np.cos(x)
    peer = pde.PDE({"u": "k*laplace(u) + s"}, consts={"s": pde.ScalarField(grid, s), "k": pde.ScalarField(grid, k)})
    dt = 2.0**-12
    theirs = peer.solve(pde.ScalarField(grid, np.cos(x)), t_range=64 * dt, dt=dt, solver="euler", tracker=None,
                        backend="numpy")
    system = pf.PDESystem({"u": "k*laplace(u) + s"}, params={"s": s, "k": k}, domain=[(0, TWO_PI)], bcs="periodic")
    ours = pf.solve(system, grid=n, t_span=(0, 64 * dt), ic={"u": np.cos(x)}, method="euler", dt=dt, backend="numpy", output=pf.Output(save_every=64 * dt))
    assert np.max(np.abs(ours.u.isel(t=-1).values - theirs.data)) < 1e-13

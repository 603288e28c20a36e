"""Generated kernels: Numba equals NumPy, the exact Jacobian equals finite differences, caching works."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sps

import pdeforge as pf
from pdeforge.models import list_models

SMALL = {1: (24,), 2: (12, 10), 3: (6, 5, 4)}


def fd_models():
    return [m for m in list_models() if getattr(m, "discretization", "fd") == "fd"]


#: (model, order) pairs left out of the catalogue-wide checks: the order-4 burgers-les stencil
#: (1256 operations with square roots per field) takes ~30 s per target to differentiate and
#: lower, its order-2 kernels are checked, and order 4 is checked on every other model
HEAVY = {("burgers-les", 4)}


def catalogue_cases():
    return [pytest.param(m, order, id=f"{m.name}-{order}") for order in (2, 4) for m in fd_models() if (m.name, order) not in HEAVY]


def bound(system, target, order=2, shape=None):
    grid = pf.UniformGrid.from_spec(system.domain, shape or SMALL[system.dim])
    return pf.compile(system, target=target, order=order).bind(grid)


def random_state(b, rng):
    return 0.5 + rng.random(b.size)


@pytest.mark.parametrize("model,order", catalogue_cases())
def test_numba_equals_numpy_on_random_states(model, order, rng):
    system = model.system()
    a, b = bound(system, "numpy", order), bound(system, "numba", order)
    for t in (0.0, 0.37):
        y = random_state(a, rng)
        fa, fb = a.rhs(t, y), b.rhs(t, y)
        scale = max(1.0, np.abs(fa).max())
        np.testing.assert_allclose(fb, fa, rtol=1e-12, atol=1e-12 * scale)
        Ja, Jb = a.jacobian(t, y), b.jacobian(t, y)
        assert (Ja != Jb).nnz == 0 or abs(Ja - Jb).max() <= 1e-12 * max(1.0, abs(Ja).max())


def finite_difference_jacobian(b, t, y, eps=1e-7):
    f0 = b.rhs(t, y)
    J = np.empty((y.size, y.size))
    for j in range(y.size):
        yp = y.copy()
        step = eps * max(1.0, abs(y[j]))
        yp[j] += step
        J[:, j] = (b.rhs(t, yp) - f0) / step
    return J


JACOBIAN_CASES = {
    "robin-nonlinear-2d": pf.PDESystem(
        {"u": "div((1 + u**2)*grad(u)) + u*v - sin(t)*x", "v": "0.3*laplace(v) - u**2 + d(u, x)"},
        domain=[(0, 1), (0, 2)],
        bcs={"u": {"x": ({"dirichlet": "t*y"}, {"robin": (2, 1, "cos(y)")}), "y": "neumann"},
             "v": {"x": "periodic", "y": ({"neumann": 1}, "dirichlet")}}),
    "fourth-order-3d": pf.PDESystem({"u": "laplace(u) + exp(-u)*d(u, x, y)"}, domain=[(0, 1)] * 3,
                                    bcs={"x": "periodic", "y": "neumann", "z": ({"dirichlet": 1}, "neumann")}),
}


@pytest.mark.parametrize("name", JACOBIAN_CASES)
@pytest.mark.parametrize("order", [2, 4])
def test_exact_jacobian_equals_finite_differences(name, order, rng):
    system = JACOBIAN_CASES[name]
    shape = (7, 6) if system.dim == 2 else (5, 5, 5)
    b = bound(system, "numba", order, shape)
    y = random_state(b, rng)
    J = b.jacobian(0.3, y)
    assert sps.isspmatrix_csr(J) or isinstance(J, sps.csr_array)
    Jfd = finite_difference_jacobian(b, 0.3, y)
    np.testing.assert_allclose(J.toarray(), Jfd, atol=2e-5 * max(1.0, np.abs(Jfd).max()))
    # the pattern is the structural one, not whatever happens to be nonzero here
    assert J.nnz == b.sparsity().nnz
    assert np.all(np.abs(Jfd[b.sparsity().toarray() == 0]) < 1e-6 * max(1.0, np.abs(Jfd).max()))


@pytest.mark.parametrize("model", [m for m in fd_models() if m.name in ("gray-scott", "symbolics-rd", "fisher-kpp")],
                         ids=lambda m: m.name)
def test_model_jacobians(model, rng):
    b = bound(model.system(), "numba")
    y = random_state(b, rng)
    np.testing.assert_allclose(b.jacobian(0.0, y).toarray(), finite_difference_jacobian(b, 0.0, y), atol=2e-5)


def test_one_fused_parallel_loop_evaluates_every_field():
    system = pf.models.get_model("gray-scott").system()
    src = pf.compile(system, target="numba").source
    body = src.split("def _rhs_par(")[1].split("\n@njit")[0]
    assert body.count("prange(") == 1
    assert "OUT[0, i0, i1] = k0" in body and "OUT[1, i0, i1] = k1" in body
    # u*v**2 appears in both equations but is computed once per cell
    assert body.count("*S[1, i0 + 1, i1 + 1]") <= 2


def test_second_compile_hits_the_disk_cache(tmp_path):
    code = textwrap.dedent(
        """
        import pdeforge as pf, numpy as np
        s = pf.models.get_model("gray-scott").system()
        k = pf.compile(s, target="numba")
        b = k.bind(pf.UniformGrid.from_spec(s.domain, 16))
        b.warm_up(("rhs", "stage_axpy"))
        print(int(k.cache_hit), k.numba_cache_hits())
        """
    )
    env = dict(os.environ, PDEFORGE_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["0", "0"]
    hit, numba_hits = second.stdout.split()
    assert hit == "1" and int(numba_hits) >= 2


def test_loop_on_disk_tells_whether_numba_has_the_threaded_loop_cached(tmp_path):
    """What decides between loading the threaded loop at once and compiling it in a helper
    thread (FixedStepRK): false on a fresh cache, true once compiled, true in the next process."""
    code = textwrap.dedent(
        """
        import pdeforge as pf
        s = pf.models.get_model("gray-scott").system()
        b = pf.compile(s, target="numba").bind(pf.UniformGrid.from_spec(s.domain, 16))
        before = b.loop_on_disk("ssprk3", True)
        b.warm_up(("ssprk3:parallel",))
        print(int(before), int(b.loop_on_disk("ssprk3", True)), int(b.loop_on_disk("ssprk3", False)))
        """
    )
    env = dict(os.environ, PDEFORGE_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["0", "1", "0"]  # the serial loop was never compiled here
    assert second.stdout.split() == ["1", "1", "0"]


def test_cache_key_ignores_parameter_values_but_not_equations():
    s = pf.models.get_model("gray-scott").system()
    k1 = pf.compile(s, target="numpy")
    assert pf.compile(s.with_params(F=0.01), target="numpy").key == k1.key
    other = pf.PDESystem({"u": "Du*laplace(u) - u*v**2 + F*(1 - u)", "v": "Dv*laplace(v) + u*v**2 - (F + k)*v*2"},
                         params=s.params, domain=s.domain, bcs="periodic")
    assert pf.compile(other, target="numpy").key != k1.key


@pytest.mark.parametrize("name", JACOBIAN_CASES)
@pytest.mark.parametrize("order", [2, 4])
def test_compiled_ghost_fill_equals_numpy_fill(name, order, rng):
    system = JACOBIAN_CASES[name]
    b = bound(system, "numba", order, (7, 6) if system.dim == 2 else (5, 5, 5))
    U = rng.random(b.padded_shape)
    V = U.copy()
    b.layout.fill(U, 0.7)
    b.fill_ghosts_compiled(V, 0.7)
    np.testing.assert_allclose(V, U, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("method", ["euler", "ssprk3", "rk4"])
def test_compiled_stepping_equals_python_stepping(method, rng):
    system = JACOBIAN_CASES["robin-nonlinear-2d"]
    grid = pf.UniformGrid.from_spec(system.domain, (7, 6))
    ic = {"u": 1 + 0.1 * rng.random(grid.shape), "v": 1 + 0.1 * rng.random(grid.shape)}
    runs = [pf.solve(system, grid=grid, t_span=(0, 0.05), ic=ic, method=method, dt=1e-3, backend=backend, progress=False, output=pf.Output(save_every=0.05)) for backend in ("numba", "numpy")]
    np.testing.assert_allclose(runs[0].u.values, runs[1].u.values, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(runs[0].v.values, runs[1].v.values, rtol=1e-11, atol=1e-12)

"""Dense closure networks printed into Numba kernels: equal to the torch module they come from."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pdeforge as pf  # noqa: E402
from pdeforge.codegen.dense_network import DenseNetwork  # noqa: E402
from pdeforge.errors import SolverError  # noqa: E402
from pdeforge.models.burgers_les import closure_system, random_velocity  # noqa: E402
from pdeforge.neural.closures import MLPClosure  # noqa: E402


def _net(activation: str, hidden: int = 3, layers: int = 1, seed: int = 1) -> MLPClosure:
    net = MLPClosure(4, hidden=hidden, layers=layers, activation=activation, seed=seed)
    with torch.no_grad():  # the scales train_closure would set: O(1) inputs, nu_t ~ 0.03
        net.in_scale.copy_(torch.tensor([2.0, 1.5, 1.5, 2.0]))
        net.out_scale.fill_(0.03)
    return net


@pytest.fixture(scope="module")
def setup():
    system = closure_system(0.005)
    grid = pf.UniformGrid.from_spec(system.domain, 12)
    ic = random_velocity(grid, np.random.default_rng(0))
    return system, grid, ic, np.stack([ic["u"], ic["v"]]).reshape(-1)


@pytest.mark.parametrize("activation", ["relu", "silu", "tanh"])
def test_exported_network_equals_the_module(activation, rng):
    net = _net(activation, hidden=5, layers=2).double()
    x = rng.standard_normal((200, 4)) * 2
    with torch.no_grad():
        ref = net(torch.as_tensor(x))[:, 0].numpy()
    dense = net.dense_network()
    assert dense.layout == ((4, 5, 5, 1), activation)
    assert len(dense.values()) == 4 * 5 + 5 + 5 * 5 + 5 + 5 + 1
    np.testing.assert_allclose(dense(x), ref, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("activation", ["relu", "silu", "tanh"])
def test_numba_kernel_with_network_equals_torch_kernel(activation, rng):
    # right-hand side and exact Jacobian (forward-mode tangents through both layers), 1-D
    system = pf.ClosureSystem({"u": "0.1*laplace(u) - g(u, d(u,x))"}, closures={"g": 2})
    net = MLPClosure(2, hidden=3, layers=2, activation=activation, seed=3)
    grid = pf.UniformGrid.from_spec(system.domain, 16)
    bound = pf.compile(system, "numba", closures={"g": net}).bind(grid)
    reference = pf.compile(system, "torch", closures={"g": net}).bind(grid)  # binding makes the module float64
    y = rng.standard_normal(16)
    ref = np.asarray(reference.rhs(0.0, y))
    assert np.abs(bound.rhs(0.0, y) - ref).max() <= 1e-14 * np.abs(ref).max()
    J, Jref = bound.jacobian(0.0, y), reference.jacobian(0.0, y)
    assert abs(J - Jref).max() <= 1e-14 * abs(Jref).max()


def test_solve_with_numba_network_equals_torch_solve(setup):
    system, grid, ic, _ = setup
    net = _net("relu")
    kw = dict(grid=grid, t_span=0.2, output=pf.Output(save_every=0.1), method="rk4", dt=0.01, ic=ic, progress=False)
    a = pf.solve(system, backend=pf.Numba(closures={"nu_t": net}), **kw)
    b = pf.solve(system, backend=pf.Torch(closures={"nu_t": net}), **kw)
    assert a.attrs["steps"] == b.attrs["steps"] == 20
    for f in ("u", "v"):
        np.testing.assert_allclose(a[f].values, b[f].values, rtol=0, atol=1e-13)
    # the network is straight-line code in the loop, four face evaluations per cell (as the
    # torch kernel's four calls), its weights read from p after the one PDE parameter
    source = pf.compile(system, "numba", closures={"nu_t": net}).source
    rhs_source = source.split("def _rhs_ser")[1].split("def ")[0]
    assert rhs_source.count("z0_0 = ") == 4
    assert "_w0_0 = p[1]" in rhs_source and "nu_t(" not in rhs_source
    # new weights are data: the same compiled kernel, a different answer
    other = _net("relu", seed=2)
    c = pf.solve(system, backend=pf.Numba(closures={"nu_t": other}), **kw)
    assert c.attrs["kernel_cache_hit"] == 1 and np.abs(c.u.values[-1] - a.u.values[-1]).max() > 1e-6


def test_numba_closure_errors(setup):
    system = setup[0]
    with pytest.raises(SolverError, match="dense networks only"):
        pf.compile(system, "numba", closures={"nu_t": lambda x: x[..., 0]})
    with pytest.raises(SolverError, match="bind it with closures"):
        pf.compile(system, "numba")
    with pytest.raises(SolverError, match="takes 2 inputs"):
        pf.compile(system, "numba", closures={"nu_t": MLPClosure(2, hidden=3, layers=1)})
    with pytest.raises(SolverError, match="do not chain"):
        DenseNetwork((np.ones((3, 4)), np.ones((1, 2))), (np.ones(3), np.ones(1)), "relu", np.ones(4), 1.0)
    with pytest.raises(SolverError, match="activation"):
        DenseNetwork((np.ones((1, 4)),), (np.ones(1),), "gelu", np.ones(4), 1.0)

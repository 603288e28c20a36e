"""The PyTorch target against the NumPy and Numba targets, and solves with backend 'torch'."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pdeforge as pf  # noqa: E402
from pdeforge.codegen.build import compile_system  # noqa: E402
from pdeforge.errors import SolverError  # noqa: E402
from pdeforge.models import get_model, list_models  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _torch_single_thread():
    # tiny grids: one thread is fastest, and two spin against other processes on a loaded machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fd_models():
    """Catalogue models whose systems go through the finite-difference compile path."""
    return [m.name for m in list_models() if getattr(m, "discretization", "fd") == "fd"]


def _small_grid(model):
    return tuple(min(n, 10) for n in model.grid)


#: every finite-difference catalogue model at both orders but order-4 burgers-les (~30 s per
#: target to differentiate and lower its 1256-operation stencils; its order-2 kernels are checked)
_CASES = [(name, order) for order in (2, 4) for name in _fd_models() if (name, order) != ("burgers-les", 4)]


@pytest.mark.parametrize("name,order", _CASES)
def test_torch_kernels_equal_numpy_and_numba(name, order, rng):
    model = get_model(name)
    system = model.system()
    grid = pf.UniformGrid.from_spec(system.domain, _small_grid(model))
    bound = {t: compile_system(system, t, order=order).bind(grid) for t in ("numpy", "numba", "torch")}
    y = rng.uniform(0.1, 1.0, bound["numpy"].size)  # positive: some models take roots/logs
    t = 0.37
    ref = bound["numpy"].rhs(t, y)
    scale = max(1.0, np.abs(ref).max())
    for target in ("numba", "torch"):
        np.testing.assert_allclose(bound[target].rhs(t, y), ref, rtol=0, atol=1e-12 * scale, err_msg=target)
    jref = bound["numpy"].jacobian(t, y)
    jt = bound["torch"].jacobian(t, y)
    assert (jt != jref).nnz == 0 or abs(jt - jref).max() <= 1e-12 * max(1.0, abs(jref).max())
    # the torch kernel on tensors, padded layout, directly
    U = bound["torch"].pad(torch.as_tensor(y).reshape(bound["torch"].cell_shape), t)
    out = bound["torch"].rhs_padded(U, t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy().ravel(), ref, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("name", ["gray-scott", "fitzhugh-nagumo"])
def test_float32_kernels_match_to_single_precision(name, rng):
    model = get_model(name)
    system = model.system()
    grid = pf.UniformGrid.from_spec(system.domain, _small_grid(model))
    k64 = compile_system(system, "numpy").bind(grid)
    k32 = compile_system(system, "torch").bind(grid, dtype="float32")
    y = rng.uniform(0.1, 1.0, k64.size)
    U = k32.pad(y, 0.0)
    assert U.dtype == torch.float32
    out = k32.rhs_padded(U, 0.0)
    assert out.dtype == torch.float32
    ref = k64.rhs(0.0, y)
    # measured: 1-2e-7 of the largest value (float32 rounding of the stencil sums)
    np.testing.assert_allclose(out.numpy().ravel(), ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_every_function_of_the_language_prints_for_torch(rng):
    system = pf.PDESystem(
        {
            "u": "D*laplace(u) + Piecewise((u*v, u > 0.5), (-v, True)) + Min(u, v) - Max(u, 0.3) + erf(u - v)"
                 " + Heaviside(x - 0.6) + abs(v - 0.5)*sign(x - 0.4) + exp(-u)*sin(pi*x) + tanh(v)*cos(y)",
            "v": "D*laplace(v) + sqrt(u)*log(1 + v) - u**3/(1 + v**2) + u**v + exp(E*t)*0.01",
        },
        params={"D": 0.1},
        domain=[(0, 1), (0, 2)],
        bcs={"x": ("dirichlet", {"neumann": "sin(t) + y"}), "y": "periodic"},
    )
    grid = pf.UniformGrid.from_spec(system.domain, (7, 9))
    ref = compile_system(system, "numpy").bind(grid)
    tk = compile_system(system, "torch").bind(grid)
    y = rng.uniform(0.05, 1.0, ref.size)
    for t in (0.0, 0.8):
        np.testing.assert_allclose(tk.rhs(t, y), ref.rhs(t, y), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(tk.jacobian(0.8, y).toarray(), ref.jacobian(0.8, y).toarray(), rtol=1e-13, atol=1e-13)


def test_ghost_fill_matches_numpy_layout(rng):
    system = pf.PDESystem(
        {"u": "laplace(u)", "v": "laplace(v)"},
        domain=[(0, 1), (0, 1)],
        bcs={"u": {"x": ("dirichlet", {"robin": (2.0, 1.0, "t*y")}), "y": "neumann"}, "v": "periodic"},
    )
    grid = pf.UniformGrid.from_spec(system.domain, (6, 5))
    kn = compile_system(system, "numpy", order=4).bind(grid)
    kt = compile_system(system, "torch", order=4).bind(grid)
    cells = rng.standard_normal(kn.cell_shape)
    for t in (0.0, 1.5):
        np.testing.assert_allclose(kt.pad(cells, t).numpy(), kn.pad(cells, t), rtol=0, atol=1e-14)


def test_generated_source_is_torch_only():
    kernel = compile_system(get_model("gray-scott").system(), "torch")
    body = kernel.source.split("def rhs", 1)[1]
    assert "OUT[0] = " in body and "OUT[1] = " in body
    assert "np." not in body  # every per-cell operation is a tensor operation
    assert kernel.module.TARGET == "torch"


@pytest.mark.parametrize("method", ["rk4", "ssprk3", "euler", "rk45"])
def test_solve_with_torch_equals_numba(method):
    kwargs = dict(grid=24, t_span=40, method=method, dt=1.0, output=pf.Output(save_every=20), progress=False)
    a = pf.solve("gray-scott", backend="numba", **kwargs)
    b = pf.solve("gray-scott", backend=pf.Torch(device="cpu"), **kwargs)
    assert b.attrs["backend"] == "torch" and b.attrs["device"] == "cpu" and b.attrs["dtype"] == "float64"
    assert a.attrs["steps"] == b.attrs["steps"]
    for f in ("u", "v"):
        np.testing.assert_allclose(b[f].values, a[f].values, rtol=0, atol=1e-12)


def test_implicit_solve_with_torch_kernels_and_exact_jacobian():
    kwargs = dict(grid=(8, 8), t_span=1.0, method="bdf", output=pf.Output(save_every=0.5), progress=False)
    a = pf.solve("symbolics-rd", backend="numba", **kwargs)
    b = pf.solve("symbolics-rd", backend="torch", **kwargs)
    for f in ("A", "B", "C"):
        np.testing.assert_allclose(b[f].values, a[f].values, rtol=1e-10, atol=1e-12)


def test_heat_semidiscrete_exact_solution_with_torch_float64_and_float32():
    # sin x is an eigenvector of the periodic 3-point Laplacian: u = exp(-k lam_h t) sin x exactly
    # in space, lam_h = (2 - 2 cos h) / h**2, so only the RK4 error (and rounding) remains
    kwargs = dict(grid=64, t_span=0.5, method="rk4", dt=0.005, output=pf.Output(save_every=0.5), progress=False)
    d64 = pf.solve("heat", backend="torch", **kwargs)
    d32 = pf.solve("heat", backend=pf.Torch(dtype="float32"), **kwargs)
    x = d64.x.values
    h = x[1] - x[0]
    lam = (2 - 2 * np.cos(h)) / h**2
    exact = np.exp(-lam * 0.5) * np.sin(x)
    assert np.abs(d64.u.values[-1] - exact).max() < 1e-10
    assert np.abs(d32.u.values[-1] - exact).max() < 1e-5
    assert d32.attrs["dtype"] == "float32"


def test_bad_device_dtype_and_backend_errors():
    kernel = compile_system(get_model("heat").system(), "torch")
    grid = pf.UniformGrid.from_spec(((0.0, 1.0),), 8)
    with pytest.raises(SolverError, match="dtype"):
        kernel.bind(grid, dtype="float16")
    with pytest.raises(SolverError, match="device"):
        kernel.bind(grid, device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(SolverError, match="CUDA is not available"):
            kernel.bind(grid, device="cuda")
    # device is a setting of the torch backend alone: the Numba backend refuses it when it is made
    with pytest.raises(SolverError, match=r"Numba: takes no setting 'device'; it belongs to the backend pf\.Torch\(device=\.\.\.\)"):
        pf.solve("heat", grid=8, t_span=0.1, backend=pf.Numba(device="cpu"), progress=False)

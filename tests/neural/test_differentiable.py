"""The differentiable solve: forward equal to pdeforge.solve, gradients equal to central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pdeforge as pf  # noqa: E402
from pdeforge.errors import SolverError  # noqa: E402
from pdeforge.models import get_model  # noqa: E402
from pdeforge.models.burgers_les import closure_system  # noqa: E402
from pdeforge.neural.closures import MLPClosure, SmagorinskyViscosity  # noqa: E402
from pdeforge.neural.differentiable import differentiable_solve, saved_bytes  # noqa: E402

GS_IC = {"u": "1 - 0.5*exp(-8*((x-1.25)**2 + (y-1.25)**2))", "v": "0.25*exp(-8*((x-1.25)**2 + (y-1.25)**2))"}
METHODS = ("euler", "ssprk3", "rk4")


def _gray_scott():
    # fast kinetics and diffusion so that a few steps on 8^2 cells move every cell
    return get_model("gray-scott").system().with_params(Du=0.02, Dv=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_forward_equals_the_numba_solver(method):
    system = _gray_scott()
    ref = pf.solve(system, grid=12, t_span=6.0, ic=GS_IC, method=method, dt=0.5, backend="numba", progress=False, output=pf.Output(save_every=2.0))
    out = differentiable_solve(system, 12, 6.0, GS_IC, method=method, dt=0.5, output=pf.Output(save_every=2.0))
    assert out.shape == (4, 2, 12, 12)
    np.testing.assert_allclose(out[:, 0].numpy(), ref.u.values, rtol=0, atol=1e-14)
    np.testing.assert_allclose(out[:, 1].numpy(), ref.v.values, rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_parameter_and_initial_field(method):
    system = _gray_scott()
    grid = pf.UniformGrid.from_spec(system.domain, 6)
    x, y = grid.mesh()
    v0 = torch.tensor(0.25 * np.exp(-8 * ((x - 1.25) ** 2 + (y - 1.25) ** 2)))
    u0 = (1 - 2 * v0).clone().requires_grad_(True)
    F = torch.tensor(0.04, dtype=torch.float64, requires_grad=True)
    weights = torch.linspace(0.5, 1.5, 2 * 36, dtype=torch.float64).reshape(2, 6, 6)

    def loss(F, u0):
        out = differentiable_solve(system, grid, 3.0, {"u": u0, "v": v0}, params={"F": F}, method=method, dt=0.5,
                                   output=pf.Output(save_every=1.5), segment=2)
        return (weights * out[-1]).sum().reshape(1)

    assert torch.autograd.gradcheck(loss, (F, u0), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_gradcheck_through_dirichlet_and_neumann_ghost_fills():
    system = pf.PDESystem({"u": "D*laplace(u) - u**3"}, params={"D": 0.05}, domain=[(0.0, 1.0)],
                          bcs={"x": ({"dirichlet": 0.5}, "neumann")})
    u0 = torch.linspace(0.1, 0.9, 10, dtype=torch.float64).requires_grad_(True)
    D = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)

    def loss(D, u0):
        return differentiable_solve(system, 10, 0.2, {"u": u0}, params={"D": D}, method="rk4", dt=0.02,
                                    output=pf.Output(save_every=0.1))[1:].sum().reshape(1)

    assert torch.autograd.gradcheck(loss, (D, u0), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_closure_weight_gradient_equals_finite_differences():
    model = get_model("burgers-les")
    params = model.params
    system, defaults = model.setup(grid=8)
    ic = defaults["ic"]
    net = MLPClosure(4, hidden=4, layers=1, seed=0).double()
    with torch.no_grad():
        net.out_scale.fill_(0.01)
    w = net.net[0].weight

    def loss():
        out = differentiable_solve(closure_system(params["nu"]), 8, 0.1, ic, method="rk4", dt=0.025,
                                   output=pf.Output(save_every=0.05), backend=pf.Torch(closures={"nu_t": net}))
        return (out[-1] ** 2).sum()

    loss().backward()
    grad = w.grad[1, 2].item()
    eps = 1e-6
    with torch.no_grad():
        w[1, 2] += eps
        up = loss().item()
        w[1, 2] -= 2 * eps
        down = loss().item()
        w[1, 2] += eps
    assert grad != 0.0
    assert grad == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_exact_smagorinsky_closure_matches_the_symbolic_model():
    model = get_model("burgers-les")
    system, defaults = model.setup(grid=8)
    ref = pf.solve(system, grid=8, t_span=0.1, ic=defaults["ic"], method="rk4", dt=0.025, backend="numpy", progress=False, output=pf.Output(save_every=0.05))
    out = differentiable_solve(closure_system(model.params["nu"]), 8, 0.1, defaults["ic"], method="rk4",
                               dt=0.025, output=pf.Output(save_every=0.05),
                               backend=pf.Torch(closures={"nu_t": SmagorinskyViscosity(model.params["Cs"],
                                                                                       model.params["Delta"])}))
    np.testing.assert_allclose(out[:, 0].numpy(), ref.u.values, rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
def test_spectral_forward_and_gradient(method):
    system = _gray_scott()
    ref = pf.solve(system, grid=8, t_span=2.0, ic=GS_IC, method=method, dt=0.5, backend="numpy", discretization="spectral", progress=False, output=pf.Output(save_every=1.0))
    out = differentiable_solve(system, 8, 2.0, GS_IC, method=method, dt=0.5, output=pf.Output(save_every=1.0),
                               discretization="spectral")
    np.testing.assert_allclose(out[:, 1].numpy(), ref.v.values, rtol=0, atol=1e-14)
    k = torch.tensor(0.06, dtype=torch.float64, requires_grad=True)
    Dv = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)

    def loss(k, Dv):
        traj = differentiable_solve(system, 8, 2.0, GS_IC, params={"k": k, "Dv": Dv}, method=method, dt=0.5,
                                    output=pf.Output(save_every=1.0), discretization="spectral")
        return (traj[-1, 1] ** 2).sum().reshape(1)

    assert torch.autograd.gradcheck(loss, (k, Dv), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_checkpointing_keeps_memory_to_sqrt_of_the_steps():
    system = _gray_scott()
    F = torch.tensor(0.04, dtype=torch.float64, requires_grad=True)
    state = 2 * 16 * 16 * 8
    steps = 64
    kw = dict(method="rk4", dt=0.1, output=pf.Output(save_every=6.4))
    with saved_bytes() as full:
        differentiable_solve(system, 16, 6.4, GS_IC, params={"F": F}, checkpoint=False, **kw)
    with saved_bytes() as outer:
        differentiable_solve(system, 16, 6.4, GS_IC, params={"F": F}, checkpoint=True, **kw)
    with saved_bytes() as segment:  # what the backward pass holds while it recomputes one segment
        differentiable_solve(system, 16, 0.8, GS_IC, params={"F": F}, checkpoint=False,
                             **kw | {"output": pf.Output(save_every=0.8)})
    peak = outer["bytes"] + segment["bytes"]
    assert full["bytes"] > steps * state  # without checkpoints every step keeps its stages
    assert peak < full["bytes"] / 2
    assert outer["bytes"] <= (8 + 2) * state  # one state per segment (8 of 8 steps) plus the frames


def test_gradients_flow_and_errors_are_clear():
    system = _gray_scott()
    with pytest.raises(SolverError, match="dt"):
        differentiable_solve(system, 8, 1.0, GS_IC)
    with pytest.raises(SolverError, match="fixed-step"):
        differentiable_solve(system, 8, 1.0, GS_IC, method="bdf", dt=0.1)
    with pytest.raises(SolverError, match="'G' is not a parameter"):
        differentiable_solve(system, 8, 1.0, GS_IC, params={"G": 1.0}, dt=0.1)
    with pytest.raises(SolverError, match="ic"):
        differentiable_solve(system, 8, 1.0, {"w": np.zeros((8, 8))}, dt=0.1)
    bc_system = pf.PDESystem({"u": "laplace(u)"}, params={"a": 1.0}, domain=[(0.0, 1.0)],
                             bcs={"x": ({"dirichlet": "a"}, "neumann")})
    with pytest.raises(SolverError, match="boundary conditions"):
        differentiable_solve(bc_system, 8, 0.1, {"u": np.zeros(8)},
                             params={"a": torch.tensor(1.0, requires_grad=True)}, dt=0.001)

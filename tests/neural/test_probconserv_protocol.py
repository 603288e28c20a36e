"""The paper's protocol: sampling of context and targets, and a constraint the exact profile can meet."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

torch = pytest.importorskip("torch")

from pdeforge.models import get_model  # noqa: E402
from pdeforge.models.conservation import constraint  # noqa: E402
from pdeforge.models.gpme import stefan_constants, stefan_front  # noqa: E402
from pdeforge.neural.gpme_protocol import evaluation_set, get_task, sample_training_set  # noqa: E402
from pdeforge.neural.probconserv import probconserv_update  # noqa: E402


def test_quadrature_consistent_b_for_the_stefan_front():
    t, p_star, n = 0.05, 0.6, 201
    x = np.linspace(0.0, 1.0, n)
    h = x[1] - x[0]
    model = get_model("stefan")
    u = model.exact_solution(t, x, {"p_star": p_star})["u"]
    quad_c = constraint("stefan", x, [t], params={"p_star": p_star}, b_from="quadrature")
    exact_c = constraint("stefan", x, [t], params={"p_star": p_star}, b_from="exact")
    # the discrete exact profile meets the quadrature-consistent b to round-off ...
    assert abs(quad_c.residual(u[None])[0]) < 1e-15
    # ... but misses U(t) by what the trapezoid rule does to the jump: the last wet point
    # carries weight h/2 where the profile covers only [x_i, front]
    front = stefan_front(t, p_star)
    i = int(np.searchsorted(x, front)) - 1
    profile = lambda s: model.exact_solution(t, np.array([s]), {"p_star": p_star})["u"][0]  # noqa: E731
    jump_term = 0.5 * h * u[i] - quad(profile, x[i], front, epsabs=1e-14)[0]
    miss = quad_c.b[0] - exact_c.b[0]
    assert abs(miss) > 1e-3  # the size of a trained model's own conservation error
    # what remains is the trapezoid error of the smooth part on [0, x_i]: h^2/12 |u'(x_i) - u'(0)|
    _, _, c1 = stefan_constants(p_star)
    slope = c1 / math.sqrt(math.pi * t)
    assert abs(miss - jump_term) <= h**2 / 12 * 2 * slope
    # the update leaves the exact profile alone with this b; with U(t) it pulls it away
    mean, var = torch.as_tensor(u[None]), torch.full((1, n), 1e-4, dtype=torch.float64)
    G = torch.as_tensor(quad_c.weights)[None]
    kept, _ = probconserv_update(mean, var, G, torch.as_tensor(quad_c.b), return_cov="diag")
    moved, _ = probconserv_update(mean, var, G, torch.as_tensor(exact_c.b), return_cov="diag")
    assert float((kept - mean).abs().max()) < 1e-15
    assert float((moved - mean).abs().max()) > 1e-3


def test_context_and_target_sampling():
    task = get_task("stefan")
    data = sample_training_set(task, 6, np.random.default_rng(0))
    assert data.context_x.shape == (6, 100, 2) and data.target_y.shape == (6, 100, 1)
    t = data.context_x[..., 0].reshape(6, 10, 10)
    # one context time in each tenth of [0, 0.1], shared by the 10 positions
    assert torch.all(t == t[..., :1])
    slot = torch.floor(t[..., 0] / 0.01)
    assert torch.equal(slot, torch.arange(10, dtype=slot.dtype).expand(6, 10))
    lo, hi = task.train_range
    assert bool(((data.params >= lo) & (data.params <= hi)).all())
    values = data.params[:, 0].double().numpy()
    again = get_model("stefan").exact_solution(float(data.target_x[0, 0, 0]), data.target_x[0, :10, 1].double().numpy(),
                                               {"p_star": values[0]})["u"]
    assert np.allclose(data.target_y[0, :10, 0].numpy(), again, atol=1e-6)


def test_evaluation_set():
    task = get_task("porous-medium")
    ev = evaluation_set(task, 2, np.random.default_rng(0))
    assert list(ev.params) == [1.0, 1.0, 3.0, 3.0, 6.0, 6.0]
    assert ev.truth.shape == (6, 201) and ev.data.target_x.shape == (6, 201, 2)
    assert torch.all(ev.data.target_x[..., 0] == 0.5)
    assert torch.allclose(ev.truth @ ev.weights, ev.b, rtol=0, atol=1e-15)
    U = torch.as_tensor([get_model("porous-medium").exact_mass(0.5, {"m": m}) for m in ev.params], dtype=torch.float64)
    assert torch.allclose(ev.exact_mass, U)

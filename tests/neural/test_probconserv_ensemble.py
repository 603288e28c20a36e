"""Deep-ensemble FNO base model: data from pdeforge, training lowers the loss, seeds, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("neuralop")

from pdeforge.errors import PDEForgeError  # noqa: E402
from pdeforge.neural.data import generate_dataset  # noqa: E402
from pdeforge.neural.deep_ensemble import DeepEnsemble  # noqa: E402

TINY = dict(n_members=2, modes=4, width=8, layers=2)


@pytest.fixture(scope="module")
def heat_data():
    x = np.linspace(0, 2 * np.pi, 16)
    return generate_dataset("heat", {"k": [1.0, 2.0, 3.5, 5.0]}, t=[0.0, 0.25, 0.5], x=x)


@pytest.fixture(autouse=True)
def one_thread():
    # the suite runs on two shared cores; one intra-op thread avoids oversubscription
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_dataset_from_the_exact_solution(heat_data):
    assert heat_data.u.shape == (4, 3, 16) and heat_data.params.shape == (4, 1)
    k, t, x = 3.5, 0.5, heat_data.x
    np.testing.assert_allclose(heat_data.u[2, 2], np.exp(-k * t) * np.sin(x), rtol=0, atol=1e-15)
    np.testing.assert_allclose(heat_data.u0, np.sin(x)[None].repeat(4, 0), atol=1e-15)


def test_dataset_from_the_solver_agrees_with_the_exact_one():
    solved = generate_dataset("heat", {"k": [1.0, 2.0]}, t=[0.0, 0.1, 0.2], x=32, source="solver",
                              solver_options={"backend": "numpy", "method": "rk4", "dt": 0.01})
    exact = generate_dataset("heat", {"k": [1.0, 2.0]}, t=[0.0, 0.1, 0.2], x=solved.x)
    # second-order differences on 32 cells: error ~ k t h^2 / 12 ~ 1e-3
    assert np.abs(solved.u - exact.u).max() < 2e-3
    with pytest.raises(PDEForgeError, match="equally spaced"):
        generate_dataset("heat", {"k": [1.0]}, t=[0.0, 0.1, 0.3], x=32, source="solver")
    with pytest.raises(PDEForgeError, match="no parameter"):
        generate_dataset("heat", {"kappa": [1.0]}, t=[0.0, 0.1])


def test_training_lowers_the_loss_and_predicts_a_positive_variance(heat_data):
    ens = DeepEnsemble(1, seed=0, **TINY)
    history = ens.fit(heat_data, epochs=8, batch_size=4, lr=1e-2, progress=False)
    for losses in history["loss"]:
        assert len(losses) == 8 and losses[-1] < losses[0]
    mean, var = ens.predict_data(heat_data)
    assert mean.shape == var.shape == (4, 3, 16)
    assert bool((var > 0).all()) and mean.dtype == torch.float64
    # the ensemble variance holds the members' disagreement: at least their spread
    m0, _ = ens.predict_data(heat_data, members=[0])
    m1, _ = ens.predict_data(heat_data, members=[1])
    assert bool((var >= 0.25 * (m0 - m1) ** 2 - 1e-12).all())


def _tensors(ens):
    # neuralop adds a metadata dict to the state dict; compare the tensors
    return {k: v for k, v in ens.state_dict().items() if torch.is_tensor(v)}


def test_same_seed_same_weights_and_checkpoint_resume_is_exact(heat_data, tmp_path, monkeypatch):
    def trained(seed, **kw):
        ens = DeepEnsemble(1, seed=seed, **TINY)
        ens.fit(heat_data, epochs=3, batch_size=4, progress=False, **kw)
        return ens

    a, b, c = trained(0), trained(0), trained(1)
    ta, tb, tc = _tensors(a), _tensors(b), _tensors(c)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    assert any(not torch.equal(ta[k], tc[k]) for k in ta if ta[k].dtype.is_floating_point)

    # interrupt a checkpointed run after its second epoch, then resume in a fresh ensemble
    path = tmp_path / "ens.pt"
    writes = {"n": 0}
    original = DeepEnsemble._write_checkpoint

    def interrupting(self, *args, **kwargs):
        original(self, *args, **kwargs)
        writes["n"] += 1
        if writes["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(DeepEnsemble, "_write_checkpoint", interrupting)
    with pytest.raises(KeyboardInterrupt):
        trained(0, checkpoint=path)
    monkeypatch.setattr(DeepEnsemble, "_write_checkpoint", original)
    resumed = trained(0, checkpoint=path)
    tr = _tensors(resumed)
    assert all(torch.equal(ta[k], tr[k]) for k in ta)
    # the finished checkpoint loads as a predictor
    loaded = DeepEnsemble.load(path)
    for got, want in zip(loaded.predict_data(heat_data), a.predict_data(heat_data)):
        assert torch.equal(got, want)
    with pytest.raises(PDEForgeError, match="different"):
        DeepEnsemble(1, seed=0, **TINY).fit(heat_data, epochs=5, batch_size=4, progress=False, checkpoint=path)


def test_update_of_a_trained_ensemble_conserves_with_the_symbolic_constraint():
    """End to end on the porous medium: data, ensemble, G and b from the symbols, update."""
    from pdeforge.models.conservation import constraint
    from pdeforge.neural import hardc_update, probconserv_update
    from pdeforge.neural.metrics import conservation_error, mean_squared_error

    t = np.linspace(0.0, 1.0, 4)
    train = generate_dataset("porous-medium", {"m": [1.0, 2.0, 4.0, 6.0]}, t, np.linspace(0, 1, 17))
    ens = DeepEnsemble(1, seed=0, **TINY)
    ens.fit(train, epochs=4, batch_size=8, lr=1e-2, progress=False)
    # predict on a finer grid than the training one: the coordinate is an input channel
    x = np.linspace(0, 1, 33)
    test = generate_dataset("porous-medium", {"m": [3.0]}, t, x)
    mean, var = ens.predict_data(test)
    cons = constraint("porous-medium", x, t, params={"m": 3.0})
    G = torch.as_tensor(cons.weights)[None]
    b = torch.as_tensor(cons.b)[None, :, None]
    m_pc, S_pc = probconserv_update(mean, var, G, b)
    assert float(conservation_error(m_pc, G, b).abs().max()) <= 1e-10
    m_hc, _ = hardc_update(mean, var, G, b)
    assert float(conservation_error(m_hc, G, b).abs().max()) <= 1e-10
    # the space-time form of the same constraint (one block row per time) gives the same update
    m_st, _ = probconserv_update(mean.reshape(1, -1), var.reshape(1, -1), torch.as_tensor(cons.G),
                                 torch.as_tensor(cons.b)[None], return_cov="diag")
    np.testing.assert_allclose(m_st.reshape(mean.shape).numpy(), m_pc.numpy(), rtol=0, atol=1e-12)
    assert np.isfinite(float(mean_squared_error(m_pc, test.u).max()))

"""The attentive neural process: shapes, training, seeded reproducibility, mixture moments."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdeforge.neural.anp import AttentiveNeuralProcess, fit_anp, mixture_moments, predict_anp  # noqa: E402
from pdeforge.neural.gpme_protocol import get_task, sample_training_set  # noqa: E402


def _tiny(seed=0):
    torch.manual_seed(seed)
    return AttentiveNeuralProcess(hidden=16, heads=2, input_low=[0.0, 0.0], input_high=[1.0, 2 * np.pi])


@pytest.fixture(scope="module")
def heat_data():
    return sample_training_set(get_task("heat"), 24, np.random.default_rng(0), n_context=(4, 5), n_target=(3, 4))


def test_shapes(heat_data):
    model = _tiny()
    b = heat_data.batch(slice(0, 5))
    mean, sigma, kl = model(b.context_x, b.context_y, b.target_x, b.target_y)
    assert mean.shape == sigma.shape == (5, 12, 1)
    assert kl.shape == (5,) and bool((kl >= 0).all())
    assert bool((sigma >= model.min_sigma).all())
    mean, sigma, kl = model(b.context_x, b.context_y, b.target_x)
    assert mean.shape == (5, 12, 1) and kl is None
    means, sigmas = model.sample(b.context_x, b.context_y, b.target_x, n_samples=7)
    assert means.shape == sigmas.shape == (7, 5, 12)
    # different latent draws give different functions
    assert float(means.std(0).mean()) > 0


def test_training_reduces_the_loss(heat_data):
    model = _tiny()
    history = fit_anp(model, heat_data, epochs=25, batch_size=8, lr=3e-3, seed=1)
    assert np.mean(history[-3:]) < 0.5 * np.mean(history[:3])


def test_one_cycle_schedule_rises_to_lr_and_ends_four_decades_below(heat_data, monkeypatch):
    rates = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    losses = fit_anp(_tiny(), heat_data, epochs=10, batch_size=8, lr=1e-2, schedule="one-cycle", per_step=True)
    assert len(losses) == len(rates) == 10 * 3  # 24 functions in batches of 8
    assert max(rates) == pytest.approx(1e-2) and int(np.argmax(rates)) == 2  # the peak ends the first tenth
    assert rates[-1] == pytest.approx(1e-6, rel=0.05)
    assert all(b <= a for a, b in zip(rates[2:], rates[3:]))


def test_unknown_schedule_is_refused(heat_data):
    from pdeforge.errors import PDEForgeError

    with pytest.raises(PDEForgeError, match="schedule: 'constant' or 'one-cycle'"):
        fit_anp(_tiny(), heat_data, epochs=1, schedule="cosine")


def test_seeded_training_and_prediction_are_reproducible(heat_data):
    runs = []
    for _ in range(2):
        model = _tiny(seed=3)
        fit_anp(model, heat_data, epochs=2, batch_size=8, lr=1e-3, seed=5)
        b = heat_data.batch(slice(0, 4))
        runs.append((model.state_dict(), predict_anp(model, b.context_x, b.context_y, b.target_x, n_samples=3, seed=2)))
    (sd1, (m1, v1)), (sd2, (m2, v2)) = runs
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    assert torch.equal(m1, m2) and torch.equal(v1, v2)
    other = _tiny(seed=3)
    fit_anp(other, heat_data, epochs=2, batch_size=8, lr=1e-3, seed=6)
    assert not torch.equal(other.state_dict()["decoder_out.weight"], sd1["decoder_out.weight"])


def test_mixture_moments_are_those_of_the_equal_weight_mixture():
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    var = torch.rand(5, 3, dtype=torch.float64, generator=gen)
    mean, total = mixture_moments(means, var)
    assert torch.allclose(mean, means.mean(0))
    assert torch.allclose(total, var.mean(0) + means.var(0, unbiased=True))

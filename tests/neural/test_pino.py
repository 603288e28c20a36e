"""PINO: the generated LES residual as a loss, training, checkpoints, learnable Cs."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pdeforge as pf  # noqa: E402
from pdeforge.models.les import les_system, solenoidal_random_field  # noqa: E402
from pdeforge.neural.fno import CompactFNO, neuralop_available  # noqa: E402
from pdeforge.neural.pino import PINO, PINOConfig, PINOError, PINOLoss, PINOTrainer  # noqa: E402


def _taylor_green(nu: float, n: int, times) -> np.ndarray:
    x = (np.arange(n) + 0.5) * 2 * np.pi / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    return np.stack([np.stack([np.sin(X) * np.cos(Y), -np.cos(X) * np.sin(Y)]) * math.exp(-2 * nu * t) for t in times])


def _tiny_config(**kw) -> PINOConfig:
    base = dict(steps_out=4, dt=0.05, width=16, layers=2, modes=4, batch_size=2, lr=1e-2)
    return PINOConfig(**(base | kw))


def _fields(n: int, count: int, seed: int = 0) -> np.ndarray:
    grid = pf.UniformGrid.from_spec([(0, 2 * np.pi)] * 2, n)
    rng = np.random.default_rng(seed)
    return np.stack([solenoidal_random_field(grid, rng, kp=3.0) for _ in range(count)])


def test_central_physics_loss_of_exact_taylor_green_is_at_discretization_level():
    """For u = u0 exp(-2 nu t) the central residual is exactly the time differences' truncation error."""
    nu = 0.1
    system = les_system(2, nu=nu, Cs=0.0)
    op = pf.spectral_operator(system, 16, target="torch", dtype="float64")
    losses = []
    for dt in (0.1, 0.05):
        config = PINOConfig(steps_out=4, dt=dt, modes=4, residual="central")
        frames = torch.as_tensor(_taylor_green(nu, 16, dt * np.arange(5)))[None]  # (1, 5, 2, 16, 16)
        terms = PINOLoss(op, config)(frames[:, 0], frames[:, 1:])
        # with lam = 2 nu: R_j = (u_{j+1} - u_{j-1})/(2 dt) + lam u_j = (lam - sinh(lam dt)/dt) u_j
        # (= -(lam^3 dt^2/6) u_j to leading order) and the first step's trapezoidal residual
        # R_0 = [(e - 1)/dt + lam (1 + e)/2] u_0, e = exp(-lam dt) (= (lam^3 dt^2/12) u_0 to leading
        # order); the loss is their mean square normalised by |rhs(u_0)|^2 = lam^2 |u_0|^2
        lam = 2 * nu
        e = math.exp(-lam * dt)
        squares = [((e - 1) / dt + lam * (1 + e) / 2) ** 2]
        squares += [(lam - math.sinh(lam * dt) / dt) ** 2 * math.exp(-2 * lam * dt * j) for j in (1, 2, 3)]
        expected = np.mean(squares) / lam**2
        assert terms["physics"] == pytest.approx(expected, rel=1e-6)
        assert terms["divergence"] < 1e-28
        losses.append(terms["physics"])
    assert math.log2(losses[0] / losses[1]) == pytest.approx(4.0, abs=0.1)  # residual O(dt^2), loss O(dt^4)
    # a trajectory decaying at the wrong rate is far from the equations
    config = PINOConfig(steps_out=4, dt=0.05, modes=4)
    wrong = torch.as_tensor(_taylor_green(2 * nu, 16, 0.05 * np.arange(5)))[None]
    assert PINOLoss(op, config)(wrong[:, 0], wrong[:, 1:])["physics"] > 0.5


def test_quadrature_physics_loss_of_exact_taylor_green_is_fourth_order():
    """u = u0 exp(-lam t): each step's residual is (E - 1)/dt + lam (w . E^m)/24, E = exp(-lam dt)."""
    nu = 0.5
    lam = 2 * nu
    system = les_system(2, nu=nu, Cs=0.0)
    op = pf.spectral_operator(system, 16, target="torch", dtype="float64")
    weights = {"first": (9, 19, -5, 1), "inner": (-1, 13, 13, -1), "last": (1, -5, 19, 9)}
    losses = []
    for dt in (0.1, 0.05, 0.025):
        steps = 6
        frames = torch.as_tensor(_taylor_green(nu, 16, dt * np.arange(steps + 1)))[None]
        terms = PINOLoss(op, PINOConfig(steps_out=steps, dt=dt, modes=4))(frames[:, 0], frames[:, 1:])
        E = math.exp(-lam * dt)
        squares = []
        for j in range(steps):  # step from frame j to j + 1, rates of frames start .. start + 3
            kind, start = ("first", 0) if j == 0 else ("last", steps - 3) if j == steps - 1 else ("inner", j - 1)
            mean_rate = -lam * sum(w * E ** (start + i) for i, w in enumerate(weights[kind])) / 24
            squares.append(((E ** (j + 1) - E**j) / dt - mean_rate) ** 2)
        assert terms["physics"] == pytest.approx(np.mean(squares) / lam**2, rel=1e-6)
        losses.append(terms["physics"])
    orders = np.log2(np.array(losses[:-1]) / np.array(losses[1:])) / 2
    # residual O(dt^4) (loss O(dt^8)), approached from below as lam dt = 0.1, 0.05, 0.025 shrinks
    assert orders[0] < orders[1] and orders[1] == pytest.approx(4.0, abs=0.15)
    central = PINOLoss(op, PINOConfig(steps_out=6, dt=0.025, modes=4, residual="central"))(frames[:, 0], frames[:, 1:])
    assert losses[-1] < 1e-3 * central["physics"]


def test_energy_budget_term_of_exact_taylor_green_and_of_a_damped_trajectory():
    """E = E0 q^j, P = <u . f> = -2 lam E (f = -lam u): the budget residual in closed form, q = exp(-2 lam dt)."""
    nu, dt, steps = 0.5, 0.05, 6
    lam = 2 * nu
    op = pf.spectral_operator(les_system(2, nu=nu, Cs=0.0), 16, target="torch", dtype="float64")
    frames = torch.as_tensor(_taylor_green(nu, 16, dt * np.arange(steps + 1)))[None]
    config = PINOConfig(steps_out=steps, dt=dt, modes=4, energy_weight=2.0)
    terms = PINOLoss(op, config)(frames[:, 0], frames[:, 1:])
    weights = {"first": (9, 19, -5, 1), "inner": (-1, 13, 13, -1), "last": (1, -5, 19, 9)}
    q = math.exp(-2 * lam * dt)
    squares = []
    for j in range(steps):
        kind, start = ("first", 0) if j == 0 else ("last", steps - 3) if j == steps - 1 else ("inner", j - 1)
        mean_power = -2 * lam * sum(w * q ** (start + i) for i, w in enumerate(weights[kind])) / 24
        squares.append(((q ** (j + 1) - q**j) / dt - mean_power) ** 2)
    assert terms["energy"] == pytest.approx(np.mean(squares) / (2 * lam) ** 2, rel=1e-6)
    assert terms["energy"] < 1e-9
    assert float(terms["loss"]) == pytest.approx(terms["physics"] + terms["divergence"] + 2.0 * terms["energy"], rel=1e-12)
    # 1% too much decay per frame is far from the budget
    damped = frames[:, 1:] * torch.as_tensor(0.99 ** np.arange(1, steps + 1)).reshape(1, -1, 1, 1, 1)
    assert PINOLoss(op, config)(frames[:, 0], damped)["energy"] > 1e-2
    with pytest.raises(PINOError, match="energy_weight"):
        PINOTrainer(les_system(2, nu=0.02, Cs=0.1), 16, _tiny_config(energy_weight=1.0, residual="central"))


@pytest.mark.parametrize("fno", ["neuralop", "builtin"])
def test_tiny_training_run_lowers_the_physics_loss(fno):
    if fno == "neuralop" and not neuralop_available():
        pytest.skip("neuraloperator is not installed")
    trainer = PINOTrainer(les_system(2, nu=0.02, Cs=0.1), 16, _tiny_config(fno=fno), seed=0)
    assert trainer.model.fno_backend == fno
    history = trainer.fit(_fields(16, 6), steps=150, progress=False)
    first, last = np.mean(history.physics[:4]), np.mean(history.physics[-4:])
    assert last < 0.5 * first  # measured (taylor ansatz, one-cycle): 0.125 -> 0.022 with either FNO
    out = trainer.predict(_fields(16, 1, seed=5))
    assert out.shape == (1, 4, 2, 16, 16) and out.dtype == torch.float32
    assert trainer.rollout(_fields(16, 1, seed=5), windows=3).shape == (1, 12, 2, 16, 16)


def test_taylor_ansatz_starts_from_the_exact_tangent():
    """With the network's output zeroed the frames are u0 + t f(u0), f from the NumPy operator."""
    system = les_system(2, nu=0.02, Cs=0.1)
    trainer = PINOTrainer(system, 16, _tiny_config(fno="builtin"), seed=0)
    assert trainer.model.fno.lift[0].weight.shape[1] == 4  # the velocity and its right-hand side
    with torch.no_grad():
        trainer.model.fno.project[-1].weight.zero_()
        trainer.model.fno.project[-1].bias.zero_()
    u0 = _fields(16, 1, seed=2)
    f0 = pf.spectral_operator(system, 16, target="numpy").rhs(u0[0])
    times = 0.05 * np.arange(1, 5)
    expected = u0[0][None] + times[:, None, None, None] * f0[None]
    np.testing.assert_allclose(trainer.predict(u0)[0].numpy(), expected, rtol=0, atol=2e-6 * np.abs(u0).max())
    # untrained, the curvature is random, yet the first frame already moves along f: closer to
    # the forward-Euler step than the increment ansatz's untrained network
    fresh = PINOTrainer(system, 16, _tiny_config(fno="builtin"), seed=0).predict(u0)[0, 0].numpy()
    plain = PINOTrainer(system, 16, _tiny_config(fno="builtin", ansatz="increment"), seed=0).predict(u0)[0, 0].numpy()
    assert np.abs(fresh - expected[0]).max() < np.abs(plain - expected[0]).max()


def test_checkpoint_resume_continues_the_same_run(tmp_path):
    system = les_system(2, nu=0.02, Cs=0.1)
    inputs = _fields(16, 5)
    whole = PINOTrainer(system, 16, _tiny_config(), seed=3)
    whole.fit(inputs, steps=6, progress=False)
    first = PINOTrainer(system, 16, _tiny_config(), seed=3, checkpoint=tmp_path / "pino.pt")
    first.fit(inputs, steps=6, progress=False, stop_after=3)
    assert first.step == 3 and (tmp_path / "pino.pt").exists()
    resumed = PINOTrainer(system, 16, _tiny_config(), seed=99).load(tmp_path / "pino.pt")
    assert resumed.step == 3
    resumed.fit(inputs, steps=6, progress=False)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(resumed.history.physics, whole.history.physics, rtol=1e-5)
    with pytest.raises(PINOError, match="another configuration"):
        PINOTrainer(system, 16, _tiny_config(width=12), seed=3).load(tmp_path / "pino.pt")


def test_learnable_cs_is_recovered_from_a_solver_trajectory():
    """The residual of frames from the Smagorinsky solver is smallest at the solver's Cs."""
    true_cs = 0.2
    system = les_system(2, nu=0.005, Cs=true_cs)
    ic = solenoidal_random_field(pf.UniformGrid.from_spec(system.domain, 32), np.random.default_rng(1), kp=4.0)
    ds = pf.solve(system, grid=32, t_span=0.2, dt=0.002, method="rk4", backend="numpy", ic={"u": ic[0], "v": ic[1]}, progress=False, output=pf.Output(save_every=0.02))
    frames = torch.as_tensor(np.stack([ds.u.values, ds.v.values], axis=1))[None]  # (1, 11, 2, 32, 32)
    op = pf.spectral_operator(les_system(2, nu=0.005, Cs=0.05), 32, target="torch", dtype="float64")
    loss_fn = PINOLoss(op, PINOConfig(steps_out=10, dt=0.02, modes=8, learn_cs=True, divergence_weight=0.0))
    opt = torch.optim.Adam(loss_fn.parameters(), lr=0.05)
    for _ in range(150):
        loss = loss_fn(frames[:, 0], frames[:, 1:])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_fn.cs == pytest.approx(true_cs, rel=0.05)


def test_bad_configurations_are_reported():
    system = les_system(2, nu=0.02, Cs=0.1)
    with pytest.raises(PINOError, match="modes"):
        PINOTrainer(system, 16, _tiny_config(modes=17))
    with pytest.raises(PINOError, match="ansatz 'tangent'"):
        PINOTrainer(system, 16, _tiny_config(ansatz="tangent"))
    with pytest.raises(PINOError, match="schedule 'step'"):
        PINOTrainer(system, 16, _tiny_config(schedule="step"))
    with pytest.raises(PINOError, match="needs the right-hand side"):
        PINO(2, 2, _tiny_config())
    with pytest.raises(PINOError, match="steps_out"):
        PINOTrainer(system, 16, _tiny_config(steps_out=1))
    with pytest.raises(PINOError, match="steps_out >= 3"):
        PINOTrainer(system, 16, _tiny_config(steps_out=2))
    with pytest.raises(PINOError, match="residual 'euler'"):
        PINOTrainer(system, 16, _tiny_config(residual="euler"))
    trainer = PINOTrainer(system, 16, _tiny_config(data_weight=1.0))
    with pytest.raises(PINOError, match="needs target"):
        trainer.fit(_fields(16, 2), steps=1, progress=False)
    with pytest.raises(PINOError, match="expected shape"):
        trainer.fit(np.zeros((2, 2, 8, 8)), steps=1, progress=False)


@pytest.mark.parametrize("dim", [2, 3])
def test_builtin_fno_is_translation_equivariant_and_keeps_the_requested_modes(dim):
    torch.manual_seed(0)
    net = CompactFNO(modes=4, in_channels=dim, out_channels=5, hidden_channels=6, n_layers=2, dim=dim)
    x = torch.randn(2, dim, *([8] * dim))
    y = net(x)
    assert y.shape == (2, 5, *([8] * dim))
    # a batch takes the einsum path, a single field the broadcast product: the same numbers
    torch.testing.assert_close(torch.cat([net(x[:1]), net(x[1:])]), y, rtol=1e-5, atol=1e-6)
    # periodic shifts commute with the operator (no positional embedding)
    shifted = net(torch.roll(x, (3,) * dim, dims=tuple(range(2, 2 + dim))))
    torch.testing.assert_close(shifted, torch.roll(y, (3,) * dim, dims=tuple(range(2, 2 + dim))), rtol=1e-5, atol=1e-5)
    # one Fourier layer passes nothing above the kept modes: a pure k = 3 wave (>= modes/2 = 2) gives 0
    conv = net.spectral[0]
    grid = torch.arange(8) * 2 * np.pi / 8
    wave = torch.cos(3 * grid).reshape(*([1] * (dim + 1)), 8).expand(1, 6, *([8] * dim))
    assert conv(wave.contiguous()).abs().max() < 1e-6
    low = torch.cos(1 * grid).reshape(*([1] * (dim + 1)), 8).expand(1, 6, *([8] * dim))
    assert conv(low.contiguous()).abs().max() > 1e-3


def _fft_spectral_conv(conv, x: torch.Tensor) -> torch.Tensor:
    """The Fourier layer by FFT: rfftn, corner blocks of the kept modes times the weights, irfftn."""
    import itertools

    dim, h = conv.dim, conv.half
    shape = x.shape[-dim:]
    axes = tuple(range(-dim, 0))
    xh = torch.fft.rfftn(x, dim=axes, norm="forward")
    out = xh.new_zeros((x.shape[0], conv.weight.shape[1], *xh.shape[2:]))
    for corner in itertools.product((0, 1), repeat=dim - 1):
        data = tuple(slice(0, h) if c == 0 else slice(n - h, n) for c, n in zip(corner, shape[:-1]))
        kept = tuple(slice(0, h) if c == 0 else slice(h, 2 * h) for c in corner)
        xs = xh[(slice(None), slice(None), *data, slice(0, h + 1))]
        w = conv.weight[(slice(None), slice(None), *kept, slice(None))].to(xh.dtype)
        out[(slice(None), slice(None), *data, slice(0, h + 1))] = torch.einsum("bi...,io...->bo...", xs, w)
    return torch.fft.irfftn(out, s=shape, dim=axes, norm="forward")


@pytest.mark.parametrize("dim, n, modes, batch", [(2, 16, 6, 1), (2, 12, 7, 3), (2, 8, 8, 2), (3, 8, 4, 1), (3, 6, 6, 2)])
def test_builtin_fourier_layer_by_truncated_dft_equals_the_fft(dim, n, modes, batch):
    """The matrix-product transform restricted to the kept modes is rfftn / irfftn (Nyquist included)."""
    from pdeforge.neural.fno import PointwiseConv, SpectralConv

    torch.manual_seed(1)
    conv = SpectralConv(3, 4, modes, dim).double()
    conv.weight.data = torch.randn_like(conv.weight, dtype=torch.complex128)
    x = torch.randn(batch, 3, *([n] * dim), dtype=torch.float64)
    torch.testing.assert_close(conv(x), _fft_spectral_conv(conv, x), rtol=1e-12, atol=1e-12)
    # the 1x1 layers: the convolution's parameters (same initialisation and state-dict layout)
    torch.manual_seed(2)
    point = PointwiseConv(3, 5, dim).double()
    torch.manual_seed(2)
    ref = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[dim](3, 5, 1).double()
    assert point.state_dict().keys() == ref.state_dict().keys()
    torch.testing.assert_close(point.weight, ref.weight)
    torch.testing.assert_close(point(x), ref(x), rtol=1e-12, atol=1e-12)


def test_linear_lifting_is_one_layer_and_checkpoints_of_older_configs_load(tmp_path):
    net = CompactFNO(modes=4, in_channels=4, out_channels=6, hidden_channels=8, n_layers=2, dim=2, lifting_ratio=0)
    mlp = CompactFNO(modes=4, in_channels=4, out_channels=6, hidden_channels=8, n_layers=2, dim=2)
    assert sum(p.numel() for p in net.lift.parameters()) == 4 * 8 + 8  # one 1x1 layer: weights + bias
    assert sum(p.numel() for p in mlp.lift.parameters()) == (4 * 16 + 16) + (16 * 8 + 8)  # neuralop's 2 x width MLP
    assert net(torch.randn(1, 4, 8, 8)).shape == (1, 6, 8, 8)
    with pytest.raises(PINOError, match="lifting_ratio"):
        PINOTrainer(les_system(2, nu=0.02, Cs=0.1), 16, _tiny_config(lifting_ratio=-1))
    # a checkpoint written before a config field existed (its default then) still loads
    system = les_system(2, nu=0.02, Cs=0.1)
    trainer = PINOTrainer(system, 16, _tiny_config(), seed=3, checkpoint=tmp_path / "old.pt")
    trainer.fit(_fields(16, 2), steps=1, progress=False)
    state = torch.load(tmp_path / "old.pt", weights_only=False)
    del state["config"]["lifting_ratio"]
    torch.save(state, tmp_path / "old.pt")
    assert PINOTrainer(system, 16, _tiny_config(), seed=4).load(tmp_path / "old.pt").step == 1

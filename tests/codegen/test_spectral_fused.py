"""Fused spectral passes: combination on its support with stage updates, work arrays, and
torch CPU stepping routed through the numpy kernels."""

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.codegen.spectral.compile import spectral_operator
from pdeforge.codegen.spectral.backend import dealias_keep
from pdeforge.codegen.spectral.fused import Combination
from pdeforge.models import get_model
from pdeforge.solvers.spectral.solve import _compile_and_project, make_stepper
from pdeforge.solvers.spectral.stepping import NumpyRouted, routes_to_numpy


def _masked_combination(rng, batch=(3,)):
    """A 2-field, 3-input combination whose multipliers vanish outside a 2/3-rule band (and a source
    at one mode), with random inputs of ``batch`` axes."""
    kshape = (12, 7)
    keep = dealias_keep(12, False)[:, None] & dealias_keep(12, True)[None, :]
    A = (rng.standard_normal((2, 3, *kshape)) + 1j * rng.standard_normal((2, 3, *kshape))) * keep
    S = np.zeros((2, *kshape), complex)
    S[0, 1, 2] = 0.5 - 2j
    xs = tuple(rng.standard_normal((*batch, *kshape)) + 1j * rng.standard_normal((*batch, *kshape)) for _ in range(3))
    dense = np.stack([S[f] + sum(A[f, c] * xs[c] for c in range(3)) for f in range(2)], axis=-3)
    return Combination(A, S), xs, dense


def test_combination_on_its_support_equals_the_dense_sum():
    comb, xs, dense = _masked_combination(np.random.default_rng(0))
    assert comb.support == pytest.approx(7 * 4 / (12 * 7))  # rows |kx| < 4 (7 of 12), columns ky < 4 (4 of 7)
    np.testing.assert_allclose(comb(xs), dense, rtol=0, atol=1e-13)
    out = np.full_like(dense, np.nan)  # every mode is written, also outside the support
    assert comb(xs, out) is out
    np.testing.assert_allclose(out, dense, rtol=0, atol=1e-13)


@pytest.mark.parametrize("real", [True, False])
def test_fused_stage_updates_match_their_formulas(real):
    rng = np.random.default_rng(1)
    comb, xs, N = _masked_combination(rng)
    shape = N.shape

    def state():
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)

    def coefficient():
        c = rng.standard_normal(shape[1:])
        return c if real else c + 1j * rng.standard_normal(shape[1:])

    y, w0, nu, na, nb = (state() for _ in range(5))
    c0, c1, c2, c3 = (coefficient() for _ in range(4))
    out, a = np.empty_like(N), np.empty_like(N)
    comb(xs, out, then=("etd_ab", (a, y), (c0, c1), 0.0))
    np.testing.assert_allclose(out, N, rtol=0, atol=1e-13)
    np.testing.assert_allclose(a, c0 * y + c1 * N, rtol=0, atol=1e-12)
    a0 = w0.copy()
    comb(xs, out, then=("etd_c", (w0, nu), (c0, c1), 0.0))
    np.testing.assert_allclose(w0, c0 * a0 + c1 * (2 * N - nu), rtol=0, atol=1e-12)
    comb(xs, out, then=("etd_final", (y, nu, na, nb), (c0, c1, c2, c3), 0.0))
    np.testing.assert_allclose(out, c0 * y + c1 * nu + 2 * c2 * (na + nb) + c3 * N, rtol=0, atol=1e-12)
    acc = state()
    acc0 = acc.copy()
    comb(xs, out, then=("cn", (acc, y), (c0, c1), -0.4))
    np.testing.assert_allclose(acc, -0.4 * acc0 + N, rtol=0, atol=1e-13)
    np.testing.assert_allclose(out, c0 * y + c1 * acc, rtol=0, atol=1e-12)
    acc[...] = np.nan  # the first stage (beta = 0) ignores what the buffer held
    comb(xs, out, then=("cn", (acc, y), (c0, c1), 0.0))
    np.testing.assert_allclose(acc, N, rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="C-contiguous"):
        comb(xs, out, then=("etd_ab", (a[..., ::-1], y), (c0, c1), 0.0))


def test_work_arrays_do_not_leak_into_results():
    op = spectral_operator(pf.les_system(2, 0.05, 0.0), 16, constants={"Cs": 0}, form="solenoidal")
    rng = np.random.default_rng(2)
    u1, u2 = (op.project(rng.standard_normal((2, 16, 16))) for _ in range(2))
    r1 = op.rhs_hat(op.to_spectral(u1))
    keep = r1.copy()
    r2 = op.rhs_hat(op.to_spectral(u2))
    np.testing.assert_array_equal(r1, keep)  # the second call reused the work arrays, not r1
    assert not np.shares_memory(r1, r2)
    batch = op.rhs_hat(op.to_spectral(np.stack([u1, u2])))  # batched: no work arrays, same values
    np.testing.assert_allclose(batch, np.stack([keep, r2]), rtol=0, atol=1e-12)


def test_torch_cpu_stepping_runs_the_numpy_kernels_on_the_same_memory():
    torch = pytest.importorskip("torch")
    system, d = get_model("kolmogorov-flow").setup(grid=16, seed=1)
    _, op_np, _, uh_np = _compile_and_project(system, d["grid"], d["ic"], "numpy", None, "float64")
    _, op_t, _, _ = _compile_and_project(system, d["grid"], d["ic"], "torch", "cpu", "float64")
    for method in ("etdrk4", "cnrk4", "rk4"):
        ref = make_stepper(op_np, uh_np.copy(), 0.0, method, 0.02)
        routed = make_stepper(op_t, torch.from_numpy(uh_np.copy()), 0.0, method, 0.02)
        native = make_stepper(op_t, torch.from_numpy(uh_np.copy()), 0.0, method, 0.02, route=False)
        assert isinstance(routed, NumpyRouted) and not isinstance(native, NumpyRouted)
        for s in (ref, routed, native):
            s.advance(0.2)
        y = routed.y
        assert isinstance(y, torch.Tensor) and y.device.type == "cpu" and y.dtype == torch.complex128
        assert np.shares_memory(y.numpy(), routed.inner.y)
        np.testing.assert_array_equal(y.numpy(), ref.y)  # the numpy kernels, bit for bit
        scale = np.max(np.abs(ref.y))
        assert np.max(np.abs(native.y.numpy() - ref.y)) < 1e-13 * scale  # the torch kernels, to round-off
        assert routed.steps == ref.steps == 10
    cs = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    op_les = spectral_operator(pf.les_system(2, 0.05, 0.1), 8, target="torch")
    assert routes_to_numpy(op_les, op_les.to_spectral(torch.zeros(2, 8, 8)))
    op_les._P["Cs"] = cs  # a learnable parameter: autograd needs the torch kernels
    assert not routes_to_numpy(op_les, op_les.to_spectral(torch.zeros(2, 8, 8)))
    assert not routes_to_numpy(op_np, uh_np)


def test_torch_backend_solve_matches_numpy_backend():
    pytest.importorskip("torch")
    kw = dict(grid=16, seed=1, t_span=0.3, dt=0.03, output=pf.Output(save_every=0.3), progress=False)
    a = pf.solve("kolmogorov-flow", backend="numpy", **kw)
    b = pf.solve("kolmogorov-flow", backend="torch", **kw)
    assert b.attrs["backend"] == "torch" and b.attrs["status"] == "completed"
    np.testing.assert_allclose(b.u.values, a.u.values, rtol=0, atol=1e-13)
    np.testing.assert_allclose(b.energy.values, a.energy.values, rtol=1e-13)


def test_passes_on_the_support_keep_truncated_states_exactly():
    system, d = get_model("kolmogorov-flow").setup(grid=24, seed=3)
    _, op, _, uh = _compile_and_project(system, d["grid"], d["ic"], "numpy", None, "float64")
    for method in ("etdrk4", "cnrk4"):
        fast = make_stepper(op, uh.copy(), 0.0, method, 0.05)
        full = make_stepper(op, uh.copy(), 0.0, method, 0.05)
        assert fast._on_support
        full._on_support = False  # every mode visited
        for s in (fast, full):
            s.advance(0.5)
        np.testing.assert_array_equal(fast.y, full.y)
        outside = np.ones(uh[0].size, dtype=bool)
        outside[op.explicit_support()] = False
        assert not np.any(fast.y.reshape(2, -1)[:, outside])
    untruncated = uh.copy()
    untruncated[0, -1, -1] = 1e-3  # a mode outside the 2/3 band: the passes must visit every mode
    assert not make_stepper(op, untruncated, 0.0, "etdrk4", 0.05)._on_support


def test_a_repeated_stage_call_reuses_its_prepared_arguments_with_the_same_results():
    rng = np.random.default_rng(2)
    comb, xs, N = _masked_combination(rng, batch=())
    y = rng.standard_normal(N.shape) + 1j * rng.standard_normal(N.shape)
    c0, c1 = (rng.standard_normal(N.shape) for _ in range(2))
    out, a = np.empty_like(N), np.empty_like(N)
    then = ("etd_ab", (a, y), (c0, c1), 0.0)
    comb(xs, out, then=then)
    assert len(comb._prepared) == 1
    first = a.copy()
    for x in xs:  # new values in the same arrays: the prepared call reads them
        x *= 2.0
    y *= -1.0
    comb(xs, out, then=("etd_ab", (a, y), (c0, c1), 0.0))  # a new tuple, the same arrays
    assert len(comb._prepared) == 1
    np.testing.assert_allclose(out, comb(xs), rtol=0, atol=1e-12)  # the plain (unprepared) pass
    assert not np.allclose(out, N)
    np.testing.assert_allclose(a, c0 * y + c1 * out, rtol=0, atol=1e-12)
    assert not np.allclose(a, first)
    # other arrays (here other coefficients) are another call, prepared anew
    d0 = c0 + 1.0
    comb(xs, out, then=("etd_ab", (a, y), (d0, c1), 0.0))
    assert len(comb._prepared) == 2
    np.testing.assert_allclose(a, d0 * y + c1 * out, rtol=0, atol=1e-12)


class _Forgetful(dict):
    """A prepared-call store that keeps nothing: every call takes the plain path."""

    def __setitem__(self, key, value):
        pass


def test_stepping_with_prepared_calls_equals_stepping_without():
    system, defaults = get_model("kolmogorov-flow").setup(grid=16, seed=0)
    _, op, _, uh = _compile_and_project(system, defaults["grid"], defaults["ic"], "numpy", None, "float64")
    comb = op._M["comb_explicit"]
    finals = []
    for store in (dict(), _Forgetful()):
        comb._prepared = store
        stepper = make_stepper(op, uh.copy(), 0.0, None, None)  # error-controlled ETDRK4: every epilogue
        for k in range(1, 5):
            stepper.advance(0.25 * k)
        finals.append((stepper.y.copy(), list(stepper.dt_used)))
    assert len(finals[1][1]) >= 4 and finals[0][1] == finals[1][1]
    np.testing.assert_array_equal(finals[0][0], finals[1][0])


def test_pointwise_calls_on_work_arrays_are_prepared_once_and_read_new_values():
    system, defaults = get_model("kolmogorov-flow").setup(grid=16, seed=0)
    _, op, _, uh = _compile_and_project(system, defaults["grid"], defaults["ic"], "numpy", None, "float64")
    K = op.K
    first = op.rhs_explicit_hat(uh).copy()
    prepared = len(K._prepared)
    assert prepared >= 1  # the generated pointwise kernels ran on the transforms' work arrays
    second = op.rhs_explicit_hat(2.0 * uh).copy()  # the same work arrays, new values
    assert len(K._prepared) == prepared
    K._prepared.clear()
    np.testing.assert_array_equal(second, op.rhs_explicit_hat(2.0 * uh))  # as the plain path computes it
    assert not np.allclose(second, first)
    # arrays that are not work arrays (a caller's own) are never kept
    a = np.ones(K.shape)
    kernel, keys, *inputs = next(iter(K._prepared))
    K.pointwise(kernel, (a,) * len(inputs), (), keys)
    assert len(K._prepared) == prepared


def test_dropping_a_coefficient_set_drops_the_fused_calls_that_kept_it():
    from pdeforge.solvers.spectral.stepping import KEEP_COEFFICIENTS

    system, defaults = get_model("kolmogorov-flow").setup(grid=16, seed=0)
    _, op, _, uh = _compile_and_project(system, defaults["grid"], defaults["ic"], "numpy", None, "float64")
    comb = op._M["comb_explicit"]
    stepper = make_stepper(op, uh.copy(), 0.0, "etdrk4", 0.001)
    for k in range(KEEP_COEFFICIENTS):
        stepper.step(0.001 * (k + 1))
    held = len(comb._prepared)
    assert held >= KEEP_COEFFICIENTS
    stepper.step(0.5)  # a ninth step size: the oldest set goes, and the calls that held it
    assert len(comb._prepared) < held

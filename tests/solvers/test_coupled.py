"""Scalar unknowns and domain reductions (ODE-PDE systems): exact solutions, conservation,
a hand-written reference, the exact Jacobian against finite differences, targets alike."""

import math

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.codegen.build import compile_system
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import PDEForgeError

D, A_RATE, B_RATE, L = 0.05, 1.0, 0.5, 2.0


def exchange(bcs="neumann"):
    """u_t = D u_xx - a u + b A,  A' = a integral(u) - b |V| A: integral(u) + A is constant."""
    return pf.PDESystem(
        {"u": "D*laplace(u) - a*u + b*A", "A": "a*integral(u) - b*integral(1)*A"},
        params={"D": D, "a": A_RATE, "b": B_RATE}, domain=[(0.0, L)], bcs=bcs, scalars=("A",),
        ic={"u": "1 + cos(pi*x)", "A": 0.25},
    )


def exchange_exact(t):
    """The reservoir of :func:`exchange`: M' = -a M + b L A, A' = a M - b L A (M = integral of u)."""
    M0, A0 = L * 1.0, 0.25
    total, rate = M0 + A0, A_RATE + B_RATE * L
    A_eq = A_RATE * total / rate
    return A_eq + (A0 - A_eq) * np.exp(-rate * t)


@pytest.mark.parametrize("method,dt,tol", [("euler", 2e-3, 4e-3), ("ssprk3", 1e-2, 1e-5), ("rk4", 2e-2, 1e-7),
                                           ("rk45", None, 1e-6), ("bdf", None, 1e-5), ("scipy-bdf", None, 1e-5),
                                           ("rosenbrock23", None, 1e-3)])
def test_exchange_matches_closed_form_and_conserves_mass(method, dt, tol):
    ds = pf.solve(exchange(), grid=24, t_span=2.0, method=pf.methods.with_settings(method, rtol=1e-8, atol=1e-10), dt=dt, backend="numpy", progress=False, output=pf.Output(save_every=0.5))
    assert ds["A"].dims == ("t",)
    err = float(np.max(np.abs(ds["A"].values - exchange_exact(ds.t.values))))
    assert err < tol, (method, err)
    total = ds.u.sum("x").values * (L / 24) + ds["A"].values
    assert np.max(np.abs(total - total[0])) < 1e-12 * max(1.0, abs(total[0]))


def test_default_step_and_torch_backend():
    """Fixed steps take 0.8 of the lifted fields' stability limit; torch kernels step alike."""
    ds = pf.solve(exchange(), grid=32, t_span=0.5, method="rk4", backend="numpy", progress=False, output=pf.Output(save_every=0.5))
    h = L / 32
    assert 0.5 * (2.78 * h**2 / (4 * D)) < ds.attrs["dt"] < 2.78 * h**2 / (4 * D)  # rk4 on D u_xx: |z| <= 2.78
    assert abs(float(ds["A"][-1]) - exchange_exact(0.5)) < 1e-6
    pytest.importorskip("torch")
    dt = pf.solve(exchange(), grid=32, t_span=0.5, method=pf.RK45(rtol=1e-9, atol=1e-11), backend="torch", progress=False, output=pf.Output(save_every=0.5))
    assert abs(float(dt["A"][-1]) - exchange_exact(0.5)) < 1e-8


def test_observed_order_in_time():
    errors = []
    for method, order in (("euler", 1), ("rk4", 4)):
        e = []
        for dt in (0.1, 0.05):
            ds = pf.solve(exchange(), grid=8, t_span=1.0, method=pf.methods.with_settings(method, stability="ignore"), dt=dt, backend="numpy", progress=False, output=pf.Output(save_every=1.0))
            e.append(abs(float(ds["A"][-1]) - exchange_exact(1.0)))
        errors.append(e)
        observed = math.log2(e[0] / e[1])
        assert abs(observed - order) < 0.3, (method, observed)


def _feedback_system():
    return pf.PDESystem(
        {"u": "D*laplace(u) - u*mean(u**2) + c*A", "A": "-k*integral(u) + g*cos(t)"},
        params={"D": 0.02, "c": 0.3, "k": 0.7, "g": 0.2}, domain=[(0.0, 1.0)], bcs="periodic", scalars=("A",),
        ic={"u": "1 + 0.5*sin(2*pi*x)", "A": 0.1},
    )


def test_global_feedback_against_hand_written_reference():
    from scipy.integrate import solve_ivp

    n, h = 40, 1.0 / 40
    x = (np.arange(n) + 0.5) * h

    def f(t, y):
        u, A = y[:n], y[n]
        lap = (np.roll(u, 1) - 2 * u + np.roll(u, -1)) / h**2
        du = 0.02 * lap - u * np.mean(u**2) + 0.3 * A
        return np.append(du, -0.7 * np.sum(u) * h + 0.2 * np.cos(t))

    y0 = np.append(1 + 0.5 * np.sin(2 * np.pi * x), 0.1)
    ref = solve_ivp(f, (0, 1.5), y0, method="DOP853", rtol=1e-12, atol=1e-13, t_eval=[0.5, 1.0, 1.5])
    for method in ("rk45", "bdf"):
        ds = pf.solve(_feedback_system(), grid=n, t_span=1.5, method=pf.methods.with_settings(method, rtol=1e-9, atol=1e-11), backend="numpy", progress=False, output=pf.Output(save_every=0.5))
        assert np.max(np.abs(ds.u.values[1:] - ref.y[:n].T)) < 2e-6, method
        assert np.max(np.abs(ds["A"].values[1:] - ref.y[n])) < 2e-6, method


def test_space_order_with_feedback():
    """u_t = u_xx - mean(u)*u + A on zero-flux walls, A' = -integral(u**2): second order in space."""
    sys_ = pf.PDESystem({"u": "laplace(u) - mean(u)*u + A", "A": "-integral(u**2)"}, domain=[(0.0, 1.0)],
                        bcs="neumann", scalars=("A",), ic={"u": "cos(pi*x) + 1", "A": 0.0})
    finals = {}
    for n in (16, 32, 64):
        ds = pf.solve(sys_, grid=n, t_span=0.2, method=pf.RK45(rtol=1e-11, atol=1e-12), backend="numba", progress=False, output=pf.Output(save_every=0.2))
        finals[n] = float(ds["A"][-1])
    e1, e2 = abs(finals[16] - finals[32]), abs(finals[32] - finals[64])
    assert 1.8 < math.log2(e1 / e2) < 2.2, (e1, e2)


def test_jacobian_against_finite_differences_and_fixed_pattern():
    s = pf.PDESystem(
        {"u": "0.1*laplace(u) - u*v + A*mean(u**2)", "v": "0.05*laplace(v) + B*u - integral(v)*v",
         "A": "-A*integral(u*v) + B", "B": "mean(v**3) - A*B"},
        domain=[(0.0, 1.0), (0.0, 1.0)], bcs={"*": {"x": "neumann", "y": "periodic"}}, scalars=("A", "B"),
    )
    bound = compile_system(s, target="numpy").bind(UniformGrid.from_spec(s.domain, (5, 4)))
    rng = np.random.default_rng(1)
    y = rng.uniform(0.5, 1.5, bound.size)
    J = bound.jacobian(0.0, y)
    eps = 1e-6
    fd = np.column_stack([(bound.rhs(0.0, y + eps * e) - bound.rhs(0.0, y - eps * e)) / (2 * eps)
                          for e in np.eye(bound.size)])
    assert np.max(np.abs(J.toarray() - fd)) < 1e-7
    pattern = bound.sparsity()
    assert np.array_equal(pattern.indptr, J.indptr) and np.array_equal(pattern.indices, J.indices)
    # factored form: the same matrix, without a dense field block
    J_uu, U, Vt = bound.jacobian_parts(0.0, y)
    full = np.zeros((bound.size, bound.size))
    N = bound.nfield_values
    full[:N, :N] = J_uu.toarray()
    assert np.max(np.abs(full + U @ Vt - J.toarray())) < 1e-12
    assert U.shape[1] == 2 + 2 * 2  # two reductions in field equations, two scalars


def test_targets_agree():
    s = _feedback_system()
    grid = UniformGrid.from_spec(s.domain, 16)
    y = np.random.default_rng(2).uniform(0.5, 1.5, 17)
    ref = compile_system(s, target="numpy").bind(grid)
    targets = ["numba"]
    try:
        import torch  # noqa: F401

        targets.append("torch")
    except ImportError:
        pass
    for target in targets:
        b = compile_system(s, target=target).bind(grid)
        assert np.max(np.abs(b.rhs(0.3, y) - ref.rhs(0.3, y))) < 1e-13, target
        assert np.max(np.abs((b.jacobian(0.3, y) - ref.jacobian(0.3, y)).toarray())) < 1e-13, target


def test_bdf_preconditioners_in_2d():
    s = pf.PDESystem({"u": "0.01*laplace(u) - u + A", "A": "mean(u) - 2*A"}, domain=[(0.0, 1.0), (0.0, 1.0)],
                     bcs="neumann", scalars=("A",), ic={"u": "1 + cos(pi*x)*cos(pi*y)", "A": 0.0})
    ref = pf.solve(s, grid=(24, 24), t_span=1.0, method=pf.RK45(rtol=1e-10, atol=1e-12), backend="numba", progress=False, output=pf.Output(save_every=1.0))
    for pc in ("split", "lu"):
        ds = pf.solve(s, grid=(24, 24), t_span=1.0, method=pf.BDF(rtol=1e-8, atol=1e-10, preconditioner=pc), backend="numba", progress=False, output=pf.Output(save_every=1.0))
        assert ds.attrs["preconditioner"] == pc
        assert abs(float(ds["A"][-1] - ref["A"][-1])) < 1e-6
        assert float(np.max(np.abs(ds.u[-1] - ref.u[-1]))) < 1e-6


def test_out_file_and_resume(tmp_path):
    import xarray as xr

    path = tmp_path / "run.nc"
    full = pf.solve(exchange(), grid=16, t_span=1.0, method="rk4", dt=0.01, backend="numpy", progress=False, output=pf.Output(save_every=0.25))
    pf.solve(exchange(), grid=16, t_span=0.5, method="rk4", dt=0.01, backend="numpy", progress=False, output=pf.Output(str(path), save_every=0.25))
    with xr.open_dataset(path) as ds:
        assert ds["A"].dims == ("t",) and len(ds.t) == 3
    resumed = pf.solve(exchange(), grid=16, t_span=1.0, method="rk4", dt=0.01, backend="numpy", progress=False, output=pf.Output(str(path), save_every=0.25, resume=True))
    assert np.array_equal(resumed["A"].values, full["A"].values)
    assert np.array_equal(resumed.u.values, full.u.values)
    again = pf.solve(exchange(), grid=16, t_span=1.0, method="rk4", dt=0.01, backend="numpy", progress=False, output=pf.Output(str(path), save_every=0.25, resume=True))  # the file already reaches t_end
    assert np.array_equal(again["A"].values, full["A"].values)


@pytest.mark.parametrize("kwargs,message", [
    (dict(equations={"u": "laplace(u)", "A": "integral(w)"}, scalars=("A",)), "unknown name 'w'"),
    (dict(equations={"u": "laplace(u)"}, scalars=("A",)), "scalar 'A' has no equation"),
    (dict(equations={"u": "laplace(u)", "x": "1"}, scalars=("x",)), "reserved"),
    (dict(equations={"u": "laplace(u)", "A": "1"}, scalars=("A",), params={"A": 1.0}), "same name as a parameter"),
    (dict(equations={"u": "laplace(u)", "A": "u"}, scalars=("A",)), "outside integral()/mean()"),
    (dict(equations={"u": "laplace(u)", "A": "integral(u*mean(u))"}, scalars=("A",)), "nested"),
    (dict(equations={"u": "laplace(u)", "A": "integral(grad(u))"}, scalars=("A",)), "scalar expression"),
    (dict(equations={"u": "laplace(u)", "A": "1"}, scalars=("A",), bcs={"u": {"dirichlet": "2*A*u"}}),
     "outside integral()/mean()"),
])
def test_errors(kwargs, message):
    with pytest.raises(PDEForgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pf.PDESystem(**kwargs)


def test_refusals():
    from pdeforge.codegen.build import TARGETS

    s = exchange()
    with pytest.raises(PDEForgeError, match="lifted system"):
        pf.discretize.discretize(s)
    if "julia" in TARGETS:
        with pytest.raises(PDEForgeError, match="'julia' target does not compile"):
            compile_system(s, target="julia")
    with pytest.raises(PDEForgeError, match="imex"):
        pf.solve(s, grid=8, t_span=0.1, method="imex", dt=0.01, progress=False)
    with pytest.raises(PDEForgeError, match="spectral"):
        pf.solve(exchange("periodic"), grid=8, t_span=0.1, discretization="spectral", progress=False)
    from pdeforge.ensembles.plan import make_plan

    with pytest.raises(PDEForgeError, match="the sweep store holds fields only"):
        make_plan(s, {"a": [1.0, 2.0]}, None, 8, 0.1)
    with pytest.raises(PDEForgeError, match="no initial value for scalar 'A'"):
        pf.solve(s, grid=8, t_span=0.1, ic={"u": "1"}, progress=False)


@pytest.fixture
def reservoir_model():
    """A catalogue entry with a scalar, registered for one test."""
    from pdeforge.models import base

    model = base.Model(
        name="test-reservoir", title="exchange with a reservoir (test)",
        equations={"u": "D*laplace(u) - a*u + b*A", "A": "a*integral(u) - b*integral(1)*A"},
        params={"D": D, "a": A_RATE, "b": B_RATE}, domain=((0.0, L),), bcs="neumann", grid=(16,), t_end=0.5,
        method="rk4", dt=0.01, save_every=0.25,
        initial=lambda grid, params, rng: {"u": 1 + np.cos(np.pi * grid.mesh()[0]), "A": 0.25},
        builder=lambda values: exchange().with_params(**values),
    )
    base.register(model)
    yield model
    del base._REGISTRY[model.name]


def test_cli_show_and_run(reservoir_model, tmp_path, capsys):
    import xarray as xr

    from pdeforge.cli import main

    assert main(["show", "test-reservoir"]) == 0
    shown = capsys.readouterr().out
    assert "dA/dt = " in shown and "(scalar)" in shown and "_ = integral(u)" in shown
    path = tmp_path / "r.nc"
    assert main(["run", "test-reservoir", "--backend", "numpy", "--out", str(path)]) == 0
    with xr.open_dataset(path) as ds:
        assert ds["A"].dims == ("t",)
        assert abs(float(ds["A"][-1]) - exchange_exact(0.5)) < 1e-8


def test_integrand_with_a_derivative_converges_at_second_order():
    """integral(d(u, x)**2) of u = sin(x) on a periodic [0, 2 pi] is pi; mean(u**2) is 1/2."""
    s = pf.PDESystem({"u": "0*u", "W": "integral(d(u, x)**2) + mean(u**2)"}, domain=[(0.0, 2 * np.pi)],
                     scalars=("W",))
    errors = []
    for n in (16, 32, 64):
        bound = compile_system(s, target="numpy").bind(UniformGrid.from_spec(s.domain, n))
        x = bound.grid.coordinates[0]
        values = bound.reductions(0.0, bound.join(np.sin(x)[None], [0.0]))
        assert abs(values["mean(u**2)"] - 0.5) < 1e-14
        errors.append(abs(values["integral(Derivative(u, x)**2)"] - np.pi))
    assert 3.7 < errors[0] / errors[1] < 4.3 and 3.7 < errors[1] / errors[2] < 4.3, errors


@pytest.mark.parametrize("geometry, domain", [("polar", [(0, 1)]), ("spherical", [(0, 1)]),
                                              ("cylindrical", [(0, 1), (0, 2)])])
def test_exchange_on_curvilinear_grids_conserves_with_shell_volumes(geometry, domain):
    """integral() weighs each cell by its physical volume: u + reservoir stays constant to round-off."""
    from pdeforge.discretize.grid import grid_of

    cells = grid_of(pf.PDESystem({"u": "laplace(u)"}, domain=domain, geometry=geometry, bcs="neumann"), 12)
    volumes = cells.cell_volumes()
    system = pf.PDESystem(
        {"u": "D*laplace(u) - a*u + b*A", "A": "a*integral(u) - b*V*A"},
        params={"D": 0.1, "a": 1.0, "b": 0.5, "V": float(volumes.sum())}, domain=domain, bcs="neumann",
        ic={"u": "1 + cos(3*r)", "A": "0"}, scalars=("A",), geometry=geometry,
    )
    ds = pf.solve(system, grid=12, t_span=(0, 0.5), method="rk4", dt=2e-3, output=pf.Output(save_every=0.25))
    totals = [(volumes * ds["u"].isel(t=i).values).sum() + float(ds["A"].isel(t=i)) for i in range(ds.sizes["t"])]
    assert ds["u"].dims[1] == "r"
    assert float(ds["A"].isel(t=-1)) > 0.1  # the reservoir really filled
    assert np.ptp(totals) < 1e-13 * abs(totals[0])

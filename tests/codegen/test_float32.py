"""Single-precision Numba kernels (``dtype="float32"``): the loops compute in float32 (no
float64 arithmetic left in them), the fixed-step methods converge to the analytic solution
down to float32's round-off, the blocked loops equal the plain float32 loop bitwise, and
the paths that stay in float64 say so."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.errors import SolverError

EPS32 = float(np.finfo(np.float32).eps)

WALLS = pf.PDESystem(
    {"u": "div((1 + u**2)*grad(u)) + u*v - sin(t)*x + 0.05*d(u, x, y) + exp(-u) + 1/(1 + u**2) + pi*u**5",
     "v": "0.3*laplace(v) - u**2 + d(u, x) + Heaviside(u - 0.5)"},
    domain=[(0, 1), (0, 2)],
    bcs={"u": {"x": ({"dirichlet": "t*y"}, {"robin": (2, 1, "cos(y)")}), "y": "periodic"},
         "v": {"x": ({"neumann": 1}, "dirichlet"), "y": "periodic"}})


def float64_values(fn) -> list[str]:
    """Names of the float64 values Numba inferred in ``fn``'s (only) compiled overload, less the
    literals folded into float32 casts and the scalar arguments (cast at entry)."""
    tm = fn.overloads[fn.signatures[0]].type_annotation.typemap
    return sorted(name for name, typ in tm.items() if str(typ) == "float64"
                  and not name.startswith(("$const", "arg.")) and not name.endswith("_in")
                  and "load_attr" not in name)  # math.pi before its cast


@pytest.mark.parametrize("system", [pf.models.get_model("gray-scott").system(), WALLS], ids=["gray-scott", "walls"])
@pytest.mark.parametrize("order", [2, 4])
def test_loops_compute_in_float32(system, order):
    k = pf.compile(system, target="numba", order=order, dtype="float32", use_cache=False)
    b = k.bind(pf.UniformGrid.from_spec(system.domain, (12, 12)))
    assert b.dtype == np.float32 and b.p.dtype == np.float32 and b.h.dtype == np.float32
    S, Y, O, A = (b.new_aligned() for _ in range(4))
    assert S.dtype == np.float32 and S.ctypes.data % 64 == (64 - 4 * b.layout.ghost[-1] % 64) % 64
    b.fill_ghosts(S, 0.0)
    m = k.module
    m._stage_euler_ser(S, O, 0.1, 0.01, b.p, b.h, *b.coords)
    m._stage_axpy_ser(S, Y, O, 0.1, 0.5, 0.5, 0.01, b.p, b.h, *b.coords)
    m._stage_two_ser(S, Y, A, O, Y, 0.1, 0.5, 0.25, b.p, b.h, *b.coords)
    for fn in (m._stage_euler_ser, m._stage_axpy_ser, m._stage_two_ser):
        assert float64_values(fn) == [], fn.__name__
    assert O.dtype == np.float32


@pytest.mark.parametrize("method,order,rate", [("euler", 2, 2), ("rk4", 2, 2), ("ssprk3", 4, 4)])
def test_heat_converges_to_the_analytic_solution_in_float32(method, order, rate):
    # u_t = D u_xx on a periodic interval: u = sin(x) exp(-D t); the error falls with the grid's
    # order until float32's round-off, where float64 keeps falling
    system = pf.PDESystem({"u": "D*laplace(u)"}, params={"D": 0.5}, domain=[(0, 2 * math.pi)], bcs="periodic")
    errors = {}
    coarse, fine = (16, 32) if order == 2 else (8, 16)  # fourth order meets float32's round-off soon
    for dtype in ("float64", "float32"):
        for n in (coarse, fine):
            g = pf.UniformGrid.from_spec(system.domain, n)
            x = g.coordinates[0]
            dt = 0.05 * (2 * math.pi / n) ** 2
            ds = pf.solve(system, grid=g, ic={"u": np.sin(x)}, t_span=(0, 0.5), method=method, dt=dt, progress=False, backend=pf.Numba(dtype=dtype), discretization=pf.FiniteDifference(order=order))
            assert ds.attrs["dtype"] == dtype
            exact = np.sin(x) * math.exp(-0.5 * 0.5)
            errors[dtype, n] = float(np.abs(ds.u[-1].values - exact).max())
    observed = math.log2(errors["float64", coarse] / errors["float64", fine])
    assert observed > rate - 0.3
    steps = 0.5 / (0.05 * (2 * math.pi / fine) ** 2)
    for n in (coarse, fine):  # float32 adds at most its round-off per step (random walk: sqrt(steps))
        assert abs(errors["float32", n] - errors["float64", n]) < 4 * EPS32 * math.sqrt(steps) + 2 * EPS32
    assert errors["float32", coarse] / errors["float32", fine] > 2 ** (rate - 0.5)


def test_gray_scott_float32_follows_float64():
    model = pf.models.get_model("gray-scott")
    system = model.system()
    g = pf.UniformGrid.from_spec(system.domain, 48)
    ic = model.initial_condition(g, seed=1)
    runs = {d: pf.solve(system, grid=g, ic=ic, t_span=(0, 200), method="rk4", dt=1.0, progress=False, backend=pf.Numba(dtype=d), output=pf.Output(save_every=200)) for d in ("float64", "float32")}
    u64, u32 = runs["float64"].u[-1].values, runs["float32"].u[-1].values
    assert runs["float32"].u.dtype == np.float64  # float64 copies of the float32 states
    assert np.abs(u64 - u32).max() < 200 * EPS32  # 200 steps, values of order one
    assert np.abs(u64 - u32).max() > 0  # and it did run in single precision


@pytest.mark.parametrize("order", [2, 4])
def test_blocked_float32_loops_equal_the_plain_float32_loop(order, rng):
    b = pf.compile(WALLS, target="numba", order=order, dtype="float32").bind(
        pf.UniformGrid.from_spec(WALLS.domain, (44, 21)))
    cells = (0.5 + 0.2 * rng.random(b.cell_shape)).astype(np.float32)

    def run(method, steps):
        bufs = [b.new_aligned() for _ in range({"euler": 2, "ssprk3": 3, "rk4": 5}[method])]
        b.cells(bufs[0])[...] = cells
        b.advance_compiled(method, bufs, 0.1, 2e-8, steps, parallel=False)
        return b.cells(bufs[0]).copy()

    b.set_wavefront(None)
    for method in ("euler", "rk4"):
        b.set_tiling(method, None)
    plain = {m: run(m, 7) for m in ("euler", "rk4")}
    assert all(p.dtype == np.float32 and np.isfinite(p).all() for p in plain.values())
    w = b.set_wavefront(2, 2, 3)
    assert w is not None
    np.testing.assert_array_equal(run("euler", 7), plain["euler"], err_msg=w.describe())
    b.set_wavefront(None)
    for method in ("euler", "rk4"):
        t = b.set_tiling(method, 2, (16, 21))
        np.testing.assert_array_equal(run(method, 7), plain[method], err_msg=f"{method} tiled {t}")


def test_float32_limits_are_clear_errors():
    system = pf.models.get_model("gray-scott").system()
    with pytest.raises(SolverError, match="fixed-step methods.*'rk45'"):
        pf.solve(system, grid=16, t_span=(0, 1), method="rk45", ic={"u": 1.0, "v": 0.0}, backend=pf.Numba(dtype="float32"))
    with pytest.raises(SolverError, match="float32 needs backend 'numba'"):
        pf.solve(system, grid=16, t_span=(0, 1), backend=pf.NumPy(dtype="float32"), ic={"u": 1.0, "v": 0.0})
    with pytest.raises(SolverError, match="'float32' with the 'numba' target"):
        pf.compile(system, target="numpy", dtype="float32")
    with pytest.raises(SolverError, match="dtype 'float16'"):
        pf.compile(system, dtype="float16")

"""Temporally blocked (tiled) step loops equal the plain loop to round-off."""

from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np
import pytest

import pdeforge as pf
from pdeforge.codegen.numba.tiling import plan

SYSTEMS = {
    "1d-dirichlet-robin": (pf.PDESystem({"u": "0.3*laplace(u) + u*(1 - u) + sin(t)*x"}, domain=[(0, 1)],
                                        bcs={"x": ({"dirichlet": "cos(t)"}, {"robin": (2, 1, "t")})}), (41,)),
    "2d-gray-scott": (pf.models.get_model("gray-scott").system(), (21, 19)),
    "2d-mixed": (pf.PDESystem(
        {"u": "div((1 + u**2)*grad(u)) + u*v - sin(t)*x", "v": "0.3*laplace(v) - u**2 + d(u, x)"},
        domain=[(0, 1), (0, 2)],
        bcs={"u": {"x": ({"dirichlet": "t*y"}, {"robin": (2, 1, "cos(y)")}), "y": "neumann"},
             "v": {"x": "periodic", "y": ({"neumann": 1}, "dirichlet")}}), (21, 19)),
    "3d-cross": (pf.PDESystem({"u": "0.1*laplace(u) + 0.05*exp(-u)*d(u, x, y)"}, domain=[(0, 1)] * 3,
                              bcs={"x": "periodic", "y": "neumann", "z": ({"dirichlet": "1 + t*x"}, "neumann")}),
                 (19, 18, 17)),
}

#: (steps per sweep, tile cells per axis): small tiles on tiny grids, so that windows wrap
#: (periodic), clamp at the boundary (others) and the last sweep is shorter.
TILES = {1: [(2, (5,)), (1, (4,))], 2: [(2, (4, 5)), (1, (100, 4))], 3: [(1, (3, 3, 100)), (1, (4, 3, 3))]}

#: (system, order, methods, threaded): every boundary kind, order 2 and 4, 1-D to 3-D, every
#: method (each method compiles its own loops, ~5 s, so not every method on every case); the
#: threaded tiled loop (its compile is the costliest) once per dimension
CASES = [
    ("1d-dirichlet-robin", 2, ("euler", "ssprk3"), False),
    ("1d-dirichlet-robin", 4, ("rk4",), True),
    ("2d-gray-scott", 2, ("euler",), False),
    ("2d-mixed", 2, ("ssprk3",), True),
    ("2d-mixed", 4, ("euler",), False),
    ("3d-cross", 2, ("euler", "rk4"), False),
    ("3d-cross", 4, ("euler",), True),
]


@contextmanager
def threads(k):
    before = numba.get_num_threads()
    numba.set_num_threads(min(k, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def run(b, method, cells, steps, parallel=False, aligned=False):
    new = b.new_aligned if aligned else b.new_padded
    bufs = [new() for _ in range({"euler": 2, "ssprk3": 3, "rk4": 5}[method])]
    b.cells(bufs[0])[...] = cells
    dt = 5e-5 if method == "euler" else 1e-4
    b.advance_compiled(method, bufs, 0.1, dt, steps, parallel=parallel)
    return b.cells(bufs[0]).copy()


@pytest.mark.parametrize("name,order,methods,threaded", CASES,
                         ids=[f"{c[0]}-{c[1]}-{'-'.join(c[2])}{'-threaded' * c[3]}" for c in CASES])
def test_tiled_loop_equals_plain_loop(name, order, methods, threaded, rng):
    system, shape = SYSTEMS[name]
    b = pf.compile(system, target="numba", order=order).bind(pf.UniformGrid.from_spec(system.domain, shape))
    cells = 0.5 + 0.2 * rng.random(b.cell_shape)
    for method in methods:
        b.set_tiling(method, None)
        plain = run(b, method, cells, 7)
        assert np.isfinite(plain).all()
        # the line-aligned, wider rows pf.solve steps on (new_aligned): the same values
        np.testing.assert_allclose(run(b, method, cells, 7, aligned=True), plain, rtol=1e-13, atol=1e-13,
                                   err_msg=f"{method} aligned rows")
        for k, (steps, tiles) in enumerate(TILES[system.dim]):
            t = b.set_tiling(method, steps, tiles)
            if method == "euler":  # the halo of the multi-stage methods may cover a tiny grid
                assert max(t.args[2]) > 1, t.describe()
            tiled = run(b, method, cells, 7, aligned=k % 2 == 1)
            np.testing.assert_allclose(tiled, plain, rtol=1e-13, atol=1e-13, err_msg=f"{method} {t.describe()}")
        if not threaded:
            continue
        # the threaded tiled loop (tiles split over two threads) runs the same windows
        with threads(2):
            par = run(b, method, cells, 7, parallel=True, aligned=True)
        np.testing.assert_allclose(par, plain, rtol=1e-13, atol=1e-13, err_msg=f"{method} threaded {t.describe()}")


def test_plan_tiles_large_grids_only():
    # 1024^2 Gray-Scott: two 17 MB states stream from L3: tiled, little redundant work, windows in L2
    t = plan((1024, 1024), (1, 1), (True, True), 2, "euler")
    assert t is not None and t.steps >= 4 and t.redundancy <= 1.25
    window = np.prod([L + 2 for L in t.args[4]]) * 2 * 2 * 8
    assert window <= 1 << 20
    assert plan((512, 512), (1, 1), (True, True), 2, "euler") is None  # measured: the plain loop is faster


@pytest.mark.parametrize("shape,ghost", [((2, 514, 514), 1), ((1, 20, 22, 37), 2), ((3, 41), 2)])
def test_aligned_arrays_start_every_row_on_a_cache_line(shape, ghost):
    from pdeforge.codegen.kernel import ALIAS_PHASES, aligned_padded

    arrays = [aligned_padded(shape, ghost, k) for k in range(3)]
    for k, a in enumerate(arrays):
        assert a.flags.c_contiguous and a.shape[:-1] == shape[:-1]
        assert a.shape[-1] >= shape[-1] and (a.shape[-1] * 8) % 64 == 0 and not a.any()
        rows = a.reshape(-1, a.shape[-1])
        starts = {rows[i, ghost:].ctypes.data % 64 for i in range(len(rows))}
        assert starts == {0}
        assert rows[0, ghost:].ctypes.data % 4096 == ALIAS_PHASES[k]
    # successive arrays (a state and the one written from it) sit 2 KiB apart within a page
    assert (arrays[1][..., ghost:].ctypes.data - arrays[0][..., ghost:].ctypes.data) % 4096 == 2048


def test_solve_steps_on_aligned_rows_and_matches_the_numpy_target():
    system = pf.models.get_model("gray-scott").system()
    ic = pf.models.get_model("gray-scott").initial_condition(pf.UniformGrid.from_spec(system.domain, 40), system.params, seed=1)
    runs = [pf.solve(system, grid=40, t_span=(0, 2.0), ic=ic, method=m, dt=0.5, backend=be, progress=False)
            for m in ("euler", "rk4") for be in ("numba", "numpy")]
    for numba_run, numpy_run in (runs[:2], runs[2:]):
        np.testing.assert_allclose(numba_run["u"].values, numpy_run["u"].values, rtol=1e-12, atol=1e-12)
    # the fixed-step stepper pf.solve used holds line-aligned buffers
    from pdeforge.solvers.explicit.runge_kutta import FixedStepRK

    b = pf.compile(system, target="numba").bind(pf.UniformGrid.from_spec(system.domain, 40))
    stepper = FixedStepRK(b, np.stack([ic["u"], ic["v"]]), 0.0, 0.5, "rk4")
    assert all(buf.shape[-1] == 48 and buf[0, 0, 1:].ctypes.data % 64 == 0 for buf in stepper.buf)

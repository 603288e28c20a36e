"""The wavefront forward-Euler sweep (several steps per pass, no redundant cells) equals the
plain loop: every boundary kind on the swept (outermost) axis, order 2 and 4, 2-D and 3-D,
one tile or several, serial and threaded."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import pdeforge as pf
from pdeforge.codegen.numba.wavefront import min_tile, wavefront_for

SYSTEMS = {
    # periodic along the swept axis: seams across the wrap
    "2d-gray-scott": (pf.models.get_model("gray-scott").system(), (40, 23)),
    # walls along the swept axis (Dirichlet with a time- and y-dependent value, Robin, Neumann),
    # a nonlinear flux, a cross derivative (reads corner ghosts) and a coordinate in the rhs
    "2d-walls": (pf.PDESystem(
        {"u": "div((1 + u**2)*grad(u)) + u*v - sin(t)*x + 0.05*d(u, x, y)", "v": "0.3*laplace(v) - u**2 + d(u, x)"},
        domain=[(0, 1), (0, 2)],
        bcs={"u": {"x": ({"dirichlet": "t*y"}, {"robin": (2, 1, "cos(y)")}), "y": "periodic"},
             "v": {"x": ({"neumann": 1}, "dirichlet"), "y": "periodic"}}), (44, 21)),
    "3d-walls": (pf.PDESystem({"u": "0.1*laplace(u) + 0.05*exp(-u)*d(u, x, z)"}, domain=[(0, 1)] * 3,
                              bcs={"x": ({"dirichlet": "1 + t*y"}, "neumann"), "y": "periodic", "z": "neumann"}),
                 (42, 13, 11)),
    "3d-periodic": (pf.PDESystem({"u": "0.2*laplace(u) + u*(1 - u)"}, domain=[(0, 1)] * 3, bcs="periodic"),
                    (40, 12, 10)),
}

#: (levels, tiles, rows per band): one tile and several (the threaded schedule, here also run
#: serially), bands of the lag (1 or 2 rows) and wider ones that do not divide the tiles
SCHEDULES = [(2, 1, 1), (3, 1, 1), (3, 2, 1), (2, 3, 1), (3, 1, 3), (3, 2, 4), (2, 3, 5), (4, 1, 2)]


def run(b, cells, steps, parallel=False):
    bufs = [b.new_aligned() for _ in range(2)]
    b.cells(bufs[0])[...] = cells
    b.advance_compiled("euler", bufs, 0.1, 2e-6, steps, parallel=parallel)
    return b.cells(bufs[0]).copy()


@pytest.mark.parametrize("name", list(SYSTEMS))
@pytest.mark.parametrize("order", [2, 4])
def test_wavefront_equals_plain_loop(name, order, rng):
    system, shape = SYSTEMS[name]
    b = pf.compile(system, target="numba", order=order).bind(pf.UniformGrid.from_spec(system.domain, shape))
    cells = 0.5 + 0.2 * rng.random(b.cell_shape)
    b.set_wavefront(None)
    b.set_tiling("euler", None)
    plain = run(b, cells, 7)  # 7 steps: sweeps of 2 or 3 levels end with a shorter one
    assert np.isfinite(plain).all()
    ran = 0
    for levels, tiles, band in SCHEDULES:
        w = b.set_wavefront(levels, tiles, band)
        if w is None:  # too few rows for this many tiles at this order
            assert shape[0] // tiles < min_tile(levels, b.layout.ghost[0], b.layout.width)
            continue
        ran += 1
        np.testing.assert_array_equal(run(b, cells, 7), plain, err_msg=w.describe())
    assert ran >= 4
    # the threaded sweep (one tile per thread)
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for band in (1, 3):
            w = b.set_wavefront(2, band=band)
            np.testing.assert_array_equal(run(b, cells, 7, parallel=True), plain, err_msg=f"threaded {w.describe()}")
    finally:
        numba.set_num_threads(before)


def test_mixed_periodicity_on_the_swept_axis_has_no_wavefront():
    system = pf.PDESystem({"u": "laplace(u)", "v": "laplace(v)"}, domain=[(0, 1), (0, 1)],
                          bcs={"u": {"x": "periodic", "y": "neumann"}, "v": {"x": "neumann", "y": "neumann"}})
    b = pf.compile(system, target="numba").bind(pf.UniformGrid.from_spec(system.domain, (32, 32)))
    assert b.set_wavefront(2) is None and b.wavefront() is None


def test_schedule_keeps_rows_in_flight_in_cache(monkeypatch):
    import pdeforge.codegen.numba.wavefront as nw

    sizes = {2: 1 << 20, 3: 32 << 20}  # a 1 MiB L2 per core, a 32 MiB L3
    monkeypatch.setattr(nw, "cache_bytes", lambda level, default: sizes[level])
    # 512^2 Gray-Scott: rows of 520 doubles, two fields, two arrays: bands of 4 rows (2048 cells),
    # the rows in flight (one band per level) in 0.6 of the L2
    row = 2 * 2 * 520 * 8
    w = wavefront_for((512, 512), row, 1, 1, tiles=2)
    assert w.band == 4 and w.tiles == 2 and w.edges[0] == 0 and w.edges[-1] == 512
    assert w.levels >= 4 and (w.levels * w.band + 2) * row <= nw.L2_SHARE * sizes[2]
    # 128^3 heat: planes of 130 x 136 doubles, too big for L2: a quarter of the L3 decides
    plane = 2 * 130 * 136 * 8
    w3 = wavefront_for((128, 128, 128), plane, 1, 1, tiles=2)
    assert w3.band == 1 and w3.levels >= 4 and (w3.levels + 2) * plane <= sizes[3] // 4
    # the band is never narrower than the lag (order 4 at a wall: 2 ghost rows, 4 closure rows)
    assert wavefront_for((512, 512), row, 2, 4, tiles=1, band=1).band == 3


def test_cache_sizes_come_from_sysfs_or_the_default():
    import pdeforge.codegen.numba.wavefront as nw

    assert nw.cache_bytes(2, 123) > 0 and nw.cache_bytes(9, 123) == 123  # no level-9 cache anywhere
    # too short an axis for two tiles at this many levels: one tile
    assert wavefront_for((30, 30), 1000, 1, 1, tiles=2, levels=8).tiles == 1

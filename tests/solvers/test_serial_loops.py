"""The serial loop a fixed-step run measures and keeps: the plain loop or a temporally blocked one.

Every serial loop gives the plain loop's values bit for bit, so a run may switch between them
at any block; which one it keeps is decided by measured speed (the policy is driven here by
injected timings, never by the wall clock).
"""

from __future__ import annotations

import numpy as np
import pytest

import pdeforge as pf
from pdeforge.codegen.numba import threads
from pdeforge.codegen.numba.threads import PROBE_AFTER, SerialChoice
from pdeforge.solvers.explicit.runge_kutta import FixedStepRK

GRAY_SCOTT = pf.models.get_model("gray-scott").system()


@pytest.fixture(autouse=True)
def fresh_memory():
    threads.forget()
    yield
    threads.forget()


def bound(shape=(48, 40)):
    return pf.compile(GRAY_SCOTT, target="numba").bind(pf.UniformGrid.from_spec(GRAY_SCOTT.domain, shape))


def simulate(choice: SerialChoice, cost, total_steps: int):
    """Step like FixedStepRK does, with ``cost(other, steps_done)`` seconds per step; returns the
    steps run on the second loop."""
    done, other, block = 0, 0, 8
    while done < total_steps:
        d = choice.choose()
        n = min(block, total_steps - done, d.max_steps or block)
        seconds = n * cost(d.parallel, done)
        choice.record(d.parallel, seconds, n)
        if not d.probe:
            block = max(1, int(n * 0.1 / seconds))
        other += n if d.parallel else 0
        done += n
    return other


def test_grid_offers_plain_and_wavefront_loops_unless_one_is_set():
    b = bound()
    assert b.serial_loops("euler") == ("plain", "wave")
    assert b.serial_wavefront() is not None
    assert b.serial_loops("rk4") == ("plain",)  # states in cache: no tiling planned
    b.set_wavefront(None)
    assert b.serial_loops("euler") == ("plain",)


@pytest.mark.parametrize("shape", [(48, 40), (41, 17)])
def test_every_serial_loop_and_any_mix_of_them_equals_the_plain_loop(shape, rng):
    b = bound(shape)
    cells = 0.5 + 0.2 * rng.random(b.cell_shape)

    def run(loops):
        bufs = [b.new_aligned() for _ in range(2)]
        b.cells(bufs[0])[...] = cells
        t = 0.1
        for loop, steps in loops:
            b.advance_compiled("euler", bufs, t, 0.5, steps, parallel=False, loop=loop)
            t += steps * 0.5
        return b.cells(bufs[0]).copy()

    plain = run([("plain", 37)])
    assert np.isfinite(plain).all()
    np.testing.assert_array_equal(run([("wave", 37)]), plain)
    np.testing.assert_array_equal(run([("wave", 5), ("plain", 3), ("wave", 21), ("plain", 8)]), plain)


def test_faster_second_loop_is_kept_and_slower_one_is_not():
    fast = SerialChoice(True, lambda: 0.0, background=False)
    on_other = simulate(fast, lambda other, done: 0.5e-4 if other else 1e-4, 20_000)
    assert fast.in_use and on_other > 0.9 * 20_000
    slow = SerialChoice(True, lambda: 0.0, background=False)
    on_other = simulate(slow, lambda other, done: 2e-4 if other else 1e-4, 20_000)
    assert not slow.in_use and on_other < 0.02 * 20_000


def test_second_loop_is_first_probed_after_a_fraction_of_a_second():
    choice = SerialChoice(True, lambda: 0.0, background=False)
    steps_per_s = 1e4
    first_probe = None
    done = 0
    while first_probe is None:
        d = choice.choose()
        n = min(8 if done == 0 else 16, d.max_steps or 16)
        if d.parallel:
            first_probe = done
        choice.record(d.parallel, n / steps_per_s, n)
        done += n
    assert first_probe / steps_per_s <= 2 * PROBE_AFTER


def test_choice_follows_the_machine_when_the_plain_loop_slows_down():
    # the blocked loop loses while the caches are the run's own, wins once another process thrashes them
    choice = SerialChoice(True, lambda: 0.0, background=False)
    simulate(choice, lambda other, done: (1.2e-4 if other else 1e-4), 5000)
    assert not choice.in_use
    simulate(choice, lambda other, done: (1.2e-4 if other else 3e-4), 200_000)
    assert choice.in_use


def test_solve_records_the_serial_loop_and_gives_the_plain_loops_values():
    ic = {"u": "1 - 0.5*exp(-((x - 1.25)**2 + (y - 1.25)**2)*20)", "v": "0.25*exp(-((x - 1.25)**2 + (y - 1.25)**2)*20)"}
    ds = pf.solve(GRAY_SCOTT, grid=(48, 40), t_span=(0.0, 50.0), ic=ic, method="euler", dt=0.5, progress=False)
    assert ds.attrs["serial_loop"] in ("plain", "wave")
    b = bound()
    b.set_wavefront(None)
    bufs = [b.new_aligned() for _ in range(2)]
    b.cells(bufs[0])[...] = np.stack([ds["u"].isel(t=0).values, ds["v"].isel(t=0).values])
    b.advance_compiled("euler", bufs, 0.0, 0.5, 100, parallel=False)
    np.testing.assert_array_equal(b.cells(bufs[0])[0], ds["u"].isel(t=-1).values)


def test_torch_like_subclass_without_serial_loops_keeps_one_loop():
    assert FixedStepRK._loops == () and not FixedStepRK._serial.enabled


def test_one_disturbed_block_does_not_flip_the_choice():
    # CPU-time figures: a block slowed by a busy sibling core moves the figure by DRIFT at most
    choice = SerialChoice(True, lambda: 0.0, background=False)
    simulate(choice, lambda other, done: 1.2e-4 if other else 1e-4, 5000)
    assert not choice.in_use
    simulate(choice, lambda other, done: 1.2e-4 if other else (5e-4 if done < 300 else 1e-4), 3000)
    assert not choice.in_use

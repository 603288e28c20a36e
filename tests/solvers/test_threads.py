"""The thread policy of the compiled loops, driven by injected timings (no wall clock)."""

from __future__ import annotations

import pytest

from pdeforge.solvers import threads
from pdeforge.solvers.steppers import BLOCK_SECONDS
from pdeforge.solvers.threads import PROBE_AFTER, ThreadChoice


def simulate(choice: ThreadChoice, cost, total_steps: int, block_seconds: float = BLOCK_SECONDS):
    """Step like FixedStepRK does, with ``cost(parallel, steps_done)`` seconds per step.

    Returns (simulated stepping seconds, probe blocks, steps on the threaded loop).
    """
    done, elapsed, probes, threaded, block = 0, 0.0, 0, 0, 8
    while done < total_steps:
        d = choice.choose()
        n = min(block, total_steps - done, d.max_steps or block)
        seconds = n * cost(d.parallel, done)
        choice.record(d.parallel, seconds, n)
        if d.probe:
            probes += 1
        else:
            block = max(1, int(n * block_seconds / seconds))
        threaded += n if d.parallel else 0
        elapsed += seconds
        done += n
    return elapsed, probes, threaded


class Compiler:
    def __init__(self, seconds: float = 1.5):
        self.calls, self.seconds = 0, seconds

    def __call__(self) -> float:
        self.calls += 1
        return self.seconds


@pytest.fixture(autouse=True)
def fresh_memory():
    threads.forget()
    yield
    threads.forget()


def test_loaded_machine_costs_under_5_percent_of_serial():
    # one core busy: a threaded step is 10x slower than a serial one
    serial = 3.5e-4  # 512^2 Gray-Scott Euler, one core
    compiler = Compiler()
    choice = ThreadChoice(True, compiler)
    steps = 30_000  # ~10 s of serial stepping
    elapsed, probes, threaded = simulate(choice, lambda par, _: serial * (10 if par else 1), steps)
    assert elapsed <= 1.05 * steps * serial
    assert not choice.in_use
    assert compiler.calls == 1 and choice.compile_s == compiler.seconds
    # exponential back-off: a handful of probes, not one every few blocks
    assert 3 <= probes <= 12
    assert threaded < 0.01 * steps


def test_loaded_machine_short_run_is_within_5_percent_too():
    serial = 3.5e-4
    steps = int(1.0 / serial)  # one second of stepping, the worst case for probe overhead
    elapsed, _, _ = simulate(ThreadChoice(True, Compiler()), lambda par, _: serial * (10 if par else 1), steps)
    assert elapsed <= 1.05 * steps * serial


def test_idle_machine_switches_to_threads_and_stays():
    serial = 3.5e-4
    choice = ThreadChoice(True, Compiler())
    steps = 30_000
    elapsed, _, threaded = simulate(choice, lambda par, _: serial * (0.55 if par else 1), steps)
    assert choice.in_use
    # everything after the first PROBE_AFTER seconds runs threaded, but for the serial probes (1%)
    assert steps - threaded <= PROBE_AFTER / serial + 0.01 * steps
    assert elapsed <= 1.05 * (PROBE_AFTER + (steps - PROBE_AFTER / serial) * 0.55 * serial)


def test_threads_that_start_losing_are_dropped_at_once():
    serial = 3.5e-4
    half = 15_000
    choice = ThreadChoice(True, Compiler())
    # idle for the first half, then another process takes a core
    cost = lambda par, done: serial * ((0.55 if done < half else 10.0) if par else 1.0)  # noqa: E731
    elapsed, _, threaded = simulate(choice, cost, 2 * half)
    assert not choice.in_use
    # the block running when the load arrives is lost (sized for the fast rate: BLOCK_SECONDS of
    # it, 18x slower), and nothing more: the next block is back on the serial loop
    one_block = int(BLOCK_SECONDS / (0.55 * serial)) + 1
    assert threaded <= half + one_block
    ideal = half * 0.55 * serial + half * serial
    assert elapsed <= 1.05 * ideal + one_block * 10 * serial


def test_short_run_never_compiles_the_threaded_loop():
    compiler = Compiler()
    choice = ThreadChoice(True, compiler)
    simulate(choice, lambda par, _: 1e-3, int(0.5 * PROBE_AFTER / 1e-3))
    assert compiler.calls == 0 and choice.compile_s == 0.0


def test_small_grids_only_use_the_serial_loop():
    compiler = Compiler()
    choice = ThreadChoice(False, compiler)
    _, probes, threaded = simulate(choice, lambda par, _: 1e-3, 10_000)
    assert (compiler.calls, probes, threaded) == (0, 0, 0)


def test_choice_is_remembered_per_key():
    fast_threads = lambda par, _: 3.5e-4 * (0.5 if par else 1)  # noqa: E731
    first = ThreadChoice(True, Compiler(), key=("k", "euler", (512, 512), 2))
    simulate(first, fast_threads, 5000)
    assert first.in_use
    compiler = Compiler()
    again = ThreadChoice(True, compiler, key=("k", "euler", (512, 512), 2))
    assert again.in_use and again.choose().parallel
    assert compiler.calls == 0  # compiled already in this process
    other_grid = ThreadChoice(True, Compiler(), key=("k", "euler", (1024, 1024), 2))
    assert not other_grid.in_use

"""The thread policy of the compiled loops, driven by injected timings (no wall clock)."""

from __future__ import annotations

from concurrent import futures

import pytest

from pdeforge.codegen.numba import threads
from pdeforge.solvers.explicit.runge_kutta import BLOCK_SECONDS
from pdeforge.codegen.numba.threads import PROBE_AFTER, PROBE_AFTER_BLIND, ThreadChoice

IDLE = lambda: 1  # noqa: E731  one core free besides ours (2 cores, 2 threads)
BUSY = lambda: 0  # noqa: E731  another process holds the other core
BLIND = lambda: None  # noqa: E731  free cores unknown (no /proc/loadavg): probes alone decide


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


def test_busy_cores_are_seen_and_never_probed():
    # one core busy and visible in the running-task count: the threaded loop is never run
    serial = 1.1e-4  # 512^2 Gray-Scott Euler, one core, aligned rows
    compiler = Compiler()
    choice = ThreadChoice(True, compiler, spare=BUSY)
    for steps in (1000, 30_000):  # a 0.1 s run and a 3 s run
        elapsed, probes, threaded = simulate(choice, lambda par, _: serial * (10 if par else 1), steps)
        assert (probes, threaded) == (0, 0) and elapsed == pytest.approx(steps * serial)
    assert choice.skipped >= 3 and compiler.calls == 0


def test_short_run_on_an_idle_machine_goes_threaded_at_once():
    # 1000 steps of 512^2 (0.11 s serial); threads take 0.45 of a serial step
    serial = 1.1e-4
    compiler = Compiler()
    choice = ThreadChoice(True, compiler, spare=IDLE)
    steps = 1000
    elapsed, probes, threaded = simulate(choice, lambda par, _: serial * (0.45 if par else 1), steps)
    assert choice.in_use and compiler.calls == 1
    # serial only until PROBE_AFTER, then threaded but for small serial probes: >= 1.5x the serial loop
    assert elapsed <= steps * serial / 1.5
    assert threaded >= steps - PROBE_AFTER / serial - 0.05 * steps


def test_loaded_machine_costs_under_5_percent_of_serial():
    # one core busy but invisible (blind): a threaded step is 10x slower than a serial one
    serial = 3.5e-4  # 512^2 Gray-Scott Euler, one core
    compiler = Compiler()
    choice = ThreadChoice(True, compiler, spare=BLIND)
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
    for spare in (BLIND, BUSY):
        elapsed, _, _ = simulate(ThreadChoice(True, Compiler(), spare=spare),
                                 lambda par, _: serial * (10 if par else 1), steps)
        assert elapsed <= 1.05 * steps * serial


def test_a_wrong_free_core_count_still_costs_under_5_percent():
    # the count says a core is free but threads lose 10x anyway (a task the count missed):
    # the first probe is small and a losing probe's own cost pushes the next one back
    serial = 3.5e-4
    for steps in (int(0.5 / serial), int(10 / serial)):
        choice = ThreadChoice(True, Compiler(), spare=IDLE)
        elapsed, probes, _ = simulate(choice, lambda par, _: serial * (10 if par else 1), steps)
        assert elapsed <= 1.05 * steps * serial and not choice.in_use


def test_idle_machine_switches_to_threads_and_stays():
    serial = 3.5e-4
    for spare, after in ((IDLE, PROBE_AFTER), (BLIND, PROBE_AFTER_BLIND)):
        threads.forget()
        choice = ThreadChoice(True, Compiler(), spare=spare)
        steps = 30_000
        elapsed, _, threaded = simulate(choice, lambda par, _: serial * (0.55 if par else 1), steps)
        assert choice.in_use
        # everything after the first probe runs threaded, but for the serial probes (1%)
        assert steps - threaded <= after / serial + 0.01 * steps + 8
        assert elapsed <= 1.05 * (after + (steps - after / serial) * 0.55 * serial)


def test_blocks_are_not_cut_down_to_single_steps():
    # each block pays a fixed cost (the state check, a partial sweep of the wavefront), so the
    # running figure of the variant in use lags behind its rate on long blocks: blocks cut to
    # end when the next probe falls due would end early, again and again (before MIN_CUT:
    # 222, 64, 13, 1 steps here; measured in a solve: 96, 50, 20, 6, 1)
    serial, overhead = 3.5e-4, 3e-4
    choice = ThreadChoice(True, Compiler(), spare=IDLE)
    sizes = []
    done, steps, block = 0, 6000, 8
    while done < steps:
        d = choice.choose()
        n = min(block, steps - done, d.max_steps or block)
        seconds = n * serial * (0.45 if d.parallel else 1) + overhead
        choice.record(d.parallel, seconds, n)
        if not d.probe:
            sizes.append(n)
            block = max(1, int(n * BLOCK_SECONDS / seconds))
        done += n
    assert choice.in_use
    assert min(sizes[2:-1]) >= 8, sizes  # the first two grow from 8 steps; the last is the remainder


def test_threads_that_start_losing_are_dropped_at_once():
    serial = 3.5e-4
    half = 15_000
    seen = {"done": 0}

    def cost(par, done):  # idle for the first half, then another process takes a core
        seen["done"] = done
        return serial * ((0.55 if done < half else 10.0) if par else 1.0)

    # the free-core count follows the load (one core free, then none)
    choice = ThreadChoice(True, Compiler(), spare=lambda: 1 if seen["done"] < half else 0)
    elapsed, _, threaded = simulate(choice, cost, 2 * half)
    assert not choice.in_use
    # the block running when the load arrives is lost (sized for the fast rate: BLOCK_SECONDS of
    # it, 18x slower), and nothing more: the next block is back on the serial loop. (The
    # simulation charges a block at the rate of its first step, so the block that straddles the
    # change is charged fast and the next one slow: two blocks past `half` at most.)
    one_block = int(BLOCK_SECONDS / (0.55 * serial)) + 1
    assert threaded <= half + 2 * one_block
    ideal = half * 0.55 * serial + half * serial
    assert elapsed <= 1.05 * ideal + one_block * 10 * serial


def test_short_run_never_compiles_the_threaded_loop():
    for spare, after in ((IDLE, PROBE_AFTER), (BLIND, PROBE_AFTER_BLIND)):
        compiler = Compiler()
        choice = ThreadChoice(True, compiler, spare=spare)
        simulate(choice, lambda par, _: 1e-4, int(0.5 * after / 1e-4))
        assert compiler.calls == 0 and choice.compile_s == 0.0


def test_small_grids_only_use_the_serial_loop():
    compiler = Compiler()
    choice = ThreadChoice(False, compiler, spare=IDLE)
    _, probes, threaded = simulate(choice, lambda par, _: 1e-3, 10_000)
    assert (compiler.calls, probes, threaded) == (0, 0, 0)


def test_choice_is_remembered_per_key():
    fast_threads = lambda par, _: 3.5e-4 * (0.5 if par else 1)  # noqa: E731
    first = ThreadChoice(True, Compiler(), key=("k", "euler", (512, 512), 2), spare=IDLE)
    simulate(first, fast_threads, 5000)
    assert first.in_use
    compiler = Compiler()
    again = ThreadChoice(True, compiler, key=("k", "euler", (512, 512), 2), spare=IDLE)
    assert again.in_use and again.choose().parallel
    assert compiler.calls == 0  # compiled already in this process
    other_grid = ThreadChoice(True, Compiler(), key=("k", "euler", (1024, 1024), 2), spare=IDLE)
    assert not other_grid.in_use


def test_spare_cores_reads_this_machine():
    import os

    spare = threads.spare_cores()
    if not os.path.exists("/proc/loadavg"):
        assert spare is None
    else:  # at least this test's own thread is running
        assert spare is not None and 0 <= spare <= (os.cpu_count() or 1) - 1


def test_background_compile_keeps_the_serial_loop_stepping():
    """With ``background=True`` the threaded loop compiles in a helper thread: until it is
    loaded every block is a serial one (none waits for it), then it is probed and, faster, chosen;
    its seconds are not charged to the stepping thread (``compile_s``) but reported apart."""
    import threading

    release, started = threading.Event(), threading.Event()

    class Slow:
        calls = 0

        def __call__(self) -> float:
            Slow.calls += 1
            started.set()
            release.wait(10)
            return 0.0

    choice = ThreadChoice(True, Slow(), spare=IDLE, background=True)
    serial = 1e-4
    fast_threads = lambda par, _: serial * (0.5 if par else 1)  # noqa: E731
    _, probes, threaded = simulate(choice, fast_threads, 2000)  # 0.2 s, well past PROBE_AFTER
    assert started.wait(10) and Slow.calls == 1  # started once, not per block
    assert (probes, threaded) == (0, 0) and not choice.in_use
    release.set()
    choice.memory.compiling.result()  # the helper thread is done (deterministic from here)
    _, probes, threaded = simulate(choice, fast_threads, 20_000)
    assert probes >= 1 and threaded > 15_000 and choice.in_use
    assert Slow.calls == 1 and choice.compile_s == 0.0 and choice.background_compile_s > 0.0


def test_background_compile_error_reaches_the_stepping_thread():
    def broken() -> float:
        raise RuntimeError("no threaded loop")

    choice = ThreadChoice(True, broken, spare=IDLE, background=True)
    with pytest.raises(RuntimeError, match="no threaded loop"):
        for _ in range(10_000):
            d = choice.choose()
            choice.record(d.parallel, 1e-3 * (d.max_steps or 8), d.max_steps or 8)
            if choice.memory.compiling is not None:
                futures.wait([choice.memory.compiling])


def test_a_later_run_collects_the_helper_threads_compile_instead_of_compiling_again():
    import threading

    release = threading.Event()
    calls = []

    def slow() -> float:
        calls.append(1)
        release.wait(10)
        return 0.0

    key = ("k", "rk4", (512, 512), 2)
    first = ThreadChoice(True, slow, key=key, spare=IDLE, background=True)
    simulate(first, lambda par, _: 1e-4, 2000)  # the helper starts; the run ends before it is done
    release.set()
    futures.wait([first.memory.compiling])  # done, not yet collected
    later = ThreadChoice(True, slow, key=key, spare=IDLE, background=False)  # the loop is on disk now
    simulate(later, lambda par, _: 1e-4 * (0.5 if par else 1), 20_000)
    assert len(calls) == 1 and later.in_use and later.compile_s == 0.0


def simulate_timed(choice: ThreadChoice, cost, total_steps: int, block_seconds: float = BLOCK_SECONDS):
    """:func:`simulate` with ``cost(parallel, steps_done, probe)`` giving (wall, CPU) seconds per
    step of the stepping thread. Returns (wall seconds, steps on the threaded loop)."""
    done, elapsed, threaded, block = 0, 0.0, 0, 8
    while done < total_steps:
        d = choice.choose()
        n = min(block, total_steps - done, d.max_steps or block)
        wall, cpu = cost(d.parallel, done, d.probe)
        choice.record(d.parallel, n * wall, n, n * cpu)
        if not d.probe:
            block = max(1, int(block_seconds / wall))
        threaded += n if d.parallel else 0
        elapsed += n * wall
        done += n
    return elapsed, threaded


KEY = ("kernel", "euler", (128, 128, 128), 2)


def test_a_disturbed_first_probe_does_not_decide_every_later_solve():
    # threads take half a serial step, but the first threaded probe lost most of its time
    # slices to another process (3x slower, the thread on a CPU for a third of the wall time);
    # then five short solves (0.1 s each, shorter than any back-off the loss would earn)
    serial = 3.5e-4
    probes = {"n": 0}

    def cost(par, done, probe):
        if par and probe:
            probes["n"] += 1
            if probes["n"] == 1:
                return 3 * serial, serial
        return (0.5 * serial if par else serial), (0.5 * serial if par else serial)

    steps = int(0.1 / serial)
    times = []
    for _ in range(5):
        choice = ThreadChoice(True, Compiler(), key=KEY, spare=IDLE)
        elapsed, threaded = simulate_timed(choice, cost, steps)
        times.append(elapsed)
    assert choice.in_use
    assert max(times[1:]) <= 1.1 * steps * 0.5 * serial + PROBE_AFTER  # threaded from the second solve on


def test_a_loop_measured_clearly_slower_is_never_chosen():
    # clean measurements, threads 1.5x slower than the serial loop: every solve of the process
    # stays on the serial loop, and the probes cost little
    serial = 3.5e-4
    steps = int(0.2 / serial)
    for _ in range(10):
        choice = ThreadChoice(True, Compiler(), key=KEY, spare=IDLE)
        elapsed, threaded = simulate_timed(choice, lambda par, d, p: ((1.5 if par else 1) * serial,) * 2, steps)
        assert not choice.in_use and elapsed <= 1.05 * steps * serial


def test_serial_blocks_slowed_by_other_processes_do_not_flip_to_threads():
    # threads lost clearly (2x) on a clean probe; then another process takes time slices from the
    # serial loop (wall 3x its CPU time) and the free-core count misses it: the serial figure is
    # not raised by those blocks, so the choice does not flip to threads (which would lose 10x)
    serial = 3.5e-4
    phase = {"loaded": False}

    def cost(par, done, probe):
        if not phase["loaded"]:
            return ((2 if par else 1) * serial,) * 2
        return (10 * serial, 10 * serial) if par else (3 * serial, serial)

    choice = ThreadChoice(True, Compiler(), key=KEY, spare=IDLE)
    simulate_timed(choice, cost, int(0.5 / serial))
    assert not choice.in_use
    phase["loaded"] = True
    choice = ThreadChoice(True, Compiler(), key=KEY, spare=IDLE)
    _, threaded = simulate_timed(choice, cost, int(1.0 / serial))
    assert not choice.in_use and threaded <= 0.02 * int(1.0 / serial)


def test_back_off_counts_the_stepping_time_of_every_solve():
    # a clear loss earns a back-off longer than one solve; its stepping time adds up across the
    # solves of the process, so the loop is probed again (and chosen once it has become faster)
    serial = 3.5e-4
    state = {"threads": 2.0}
    cost = lambda par, d, p: (((state["threads"] if par else 1) * serial),) * 2  # noqa: E731
    steps = int(0.05 / serial)
    choice = ThreadChoice(True, Compiler(), key=KEY, spare=IDLE)
    simulate_timed(choice, cost, steps)
    assert not choice.in_use
    state["threads"] = 0.5  # the other process ended
    for _ in range(20):  # 1 s of short solves
        choice = ThreadChoice(True, Compiler(), key=KEY, spare=IDLE)
        simulate_timed(choice, cost, steps)
    assert choice.in_use

"""Threaded or serial compiled stepping loop: chosen by short, measured probes.

Threads pay off on an idle machine; on one shared with other busy processes every parallel
region waits at its barrier for a thread that is not scheduled, and the same step can be ten
times slower than on one thread. Load changes while a run goes on, so the choice is measured,
not guessed, and re-measured now and then:

* A run starts on the serial loop. After ``PROBE_AFTER`` seconds of stepping the threaded loop
  is compiled or loaded from the disk cache, outside the timing (its seconds go to
  :attr:`ThreadChoice.compile_s`); with ``background=True`` (what the fixed-step solver
  uses) in a helper thread while the serial loop keeps stepping (it releases the GIL), so that
  a first run on a fresh cache does not stand still for the seconds a threaded loop takes to
  compile. Once it is loaded it is *probed*: first a block worth ``PROBE_FIRST`` seconds at
  the serial rate, later blocks sized to cost about ``PROBE_FRACTION`` of the stepping time
  since the last probe at the rate that variant showed last. The serial block before the first
  probe is cut to end when the probe is due, so short runs get their probe too.
* A threaded probe is only run when the machine has a core free for each extra thread right
  now (:func:`spare_cores`: ``/proc/loadavg``'s count of running tasks against the machine's
  CPUs): a probe on a machine whose other cores are busy costs a barrier wait per parallel
  region (milliseconds each) and can only lose, so it is skipped and counted as a loss.
* The variant in use is timed on every block (smoothed); the other keeps the figure of its last
  probe. When the one in use becomes slower than that figure, the choice flips at once.
* A probe that loses (or is skipped) doubles the stepping time until the next probe of that
  variant (from ``PROBE_AFTER`` up to ``MAX_BACKOFF``), and never waits less than the probe's
  own cost divided by ``PROBE_FRACTION``; a probe that wins switches over and resets it. So a
  loaded machine costs a geometric series of tiny probes, well under one percent of a long run.
* Figures and back-off are remembered per (kernel, method, grid shape, thread count) for the
  whole process, so the next solve of the same problem starts from what was learnt; the
  stepping time since each variant's last probe is counted across solves too, so a run too
  short to reach a re-probe leaves its time to the next one (a noisy first probe does not
  decide every later solve of a process).
* A decision sticks only when its margin is clear: a probe that loses by less than
  ``CLEAR_MARGIN`` does not double the back-off (the next probe comes as soon as its cost
  stays ~``PROBE_FRACTION``), and a new solve whose remembered choice rests on such a narrow
  result probes the other variant at its start.
* Blocks are timed in wall time *and* the stepping thread's CPU time: a block whose thread
  got less than ``UNDISTURBED`` of the wall time on a CPU was disturbed by other processes.
  A disturbed block of the serial loop says nothing about the serial loop's speed (its
  figure is not updated, so it cannot flip the choice over to threads on a loaded machine),
  and a disturbed probe that loses counts as a narrow loss (no doubled back-off).

The policy only consumes ``(variant, seconds, steps)`` records and returns decisions, so it is
tested with injected timings and an injected core count (``tests/solvers/test_threads.py``),
never with wall-clock figures.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

#: Seconds of serial stepping before the threaded loop is first compiled and probed (short:
#: a 1000-step 512^2 Gray-Scott run lasts ~0.1 s; the free-core check keeps probes off a busy
#: machine, where one threaded step can cost 20 serial ones).
PROBE_AFTER = 0.01
#: The same where the free cores cannot be counted (no ``/proc/loadavg``): probes alone must
#: then keep a loaded machine's loss small, so the first one waits longer.
PROBE_AFTER_BLIND = 0.5
#: Seconds (at the serial rate) of the first probe of a variant whose speed is not known yet:
#: several steps, so that waking the thread team once does not decide the choice.
PROBE_FIRST = 0.002
#: A probe is sized to take about this fraction of the stepping time since the previous probe.
PROBE_FRACTION = 0.01
#: Fewest steps of a probe block; also the size of the first probe of a variant, whose speed is not known yet.
PROBE_MIN_STEPS = 1
#: Longest stepping time between two probes of a variant that keeps losing.
MAX_BACKOFF = 60.0
#: A threaded figure must beat the serial one by this factor to be chosen (noise margin).
MARGIN = 0.97
#: Weight of a new block in the running (smoothed) figure of the variant in use.
SMOOTH = 0.3
#: A first probe slower than the other variant by less than this factor is taken as a warm-up
#: and repeated at once (the thread team's first blocks after idling run ~1.5x slow); one
#: slower than this is judged a loss right away.
WARM_UP_FACTOR = 2.0
#: A probe that loses by less than this factor is a narrow result: no doubled back-off, and a
#: remembered choice resting on it is re-probed when the next solve starts.
CLEAR_MARGIN = 1.25
#: A block whose stepping thread ran on a CPU for less than this fraction of its wall time was
#: disturbed by other processes (time slices taken): it decides nothing about speed.
UNDISTURBED = 0.8
#: Largest rise of a serial loop's figure per block (SerialChoice: CPU-time figures, raised by disturbances only).
DRIFT = 0.02
#: Shortest block (as a fraction of the other variant's wait) that is cut to meet its probe.
MIN_CUT = 0.25
#: A probe falls due this many steps (at the rate in use) early, at least, rather than after a
#: cut block of one or two steps (each block ends with a state check that costs about a step).
DUE_SLACK_STEPS = 4


@dataclass
class ThreadMemory:
    """What was learnt about one (kernel, method, grid shape, threads): seconds per step and back-off."""

    seconds_per_step: dict[bool, float] = field(default_factory=dict)
    backoff: dict[bool, float] = field(default_factory=lambda: {True: PROBE_AFTER, False: PROBE_AFTER})
    in_use: bool = False
    compiled: bool = False
    probed: set = field(default_factory=set)
    #: the threaded loop's compile running in the helper thread (None: not started)
    compiling: Future | None = None
    #: stepping seconds since each variant's last probe, counted across the solves of a process
    since_probe: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})
    #: whether the latest probe's result was clear (won, or lost by CLEAR_MARGIN or more)
    clear: bool = True


_HELPER: ThreadPoolExecutor | None = None


def compile_in_background(compile_parallel: Callable[[], float]) -> Future:
    """Run ``compile_parallel`` in pdeforge's helper thread; the Future's result is the seconds
    it took (its error re-raised by ``result()``). The helper is not a daemon: a process that
    ends while it compiles waits for it, so the disk cache never keeps a half-written entry."""
    global _HELPER
    if _HELPER is None:
        _HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdeforge-compile")

    def timed() -> float:
        started = time.perf_counter()
        compile_parallel()
        return time.perf_counter() - started

    return _HELPER.submit(timed)


#: Process-wide memory, keyed by (kernel key, method, grid shape, threads).
_MEMORY: dict[tuple, ThreadMemory] = {}


def spare_cores() -> int | None:
    """CPUs of this machine not running a task at this moment, besides the calling thread's
    (from the running-task count in ``/proc/loadavg``, which includes the caller); None where
    that file does not exist (the policy then relies on its probes alone).

    The count is the whole machine's, as is ``os.cpu_count()``: in a container limited to a
    few of a large host's cores both describe the host.
    """
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, (os.cpu_count() or 1) - running)


def forget() -> None:
    """Forget every measured thread choice of this process."""
    _MEMORY.clear()


@dataclass
class Decision:
    """One block to run: on the threaded loop or not, at most ``max_steps`` steps, a probe or not."""

    parallel: bool
    max_steps: int | None
    probe: bool


class ThreadChoice:
    """Chooses between the multi-threaded and the serial compiled loop by measured speed.

    Args:
        enabled: whether there is a threaded loop to choose (grids below the parallel
            threshold only ever use the serial loop).
        compile_parallel: compiles or loads the threaded loop and returns its seconds (called
            once, before the first threaded block, outside any timing).
        key: identifies the problem (kernel, method, grid shape, threads) in the process-wide
            memory; None: nothing remembered.
        threads: threads of the parallel loop (its probe needs ``threads - 1`` spare cores).
        spare: returns the cores free right now, or None if unknown (default
            :func:`spare_cores`; tests inject their own).
        probe_steps: fewest steps of a threaded probe (a loop that advances several steps per
            pass, the wavefront, is timed over whole passes: a few of its sweeps).
        background: compile the threaded loop in a helper thread while the serial loop steps
            (serial blocks are chosen until it is loaded); False: compile it before the first
            threaded block, in the caller.
    """

    def __init__(self, enabled: bool, compile_parallel: Callable[[], float], key: tuple | None = None,
                 threads: int = 2, spare: Callable[[], int | None] = spare_cores, probe_steps: int = 1,
                 background: bool = False):
        self.enabled = bool(enabled)
        self._background = bool(background)
        self._probe_floor = max(PROBE_MIN_STEPS, int(probe_steps))
        self._compile = compile_parallel
        self._threads = max(1, int(threads))
        self._spare = spare
        #: threaded probes skipped because the other cores were busy
        self.skipped = 0
        #: whether free cores cannot be counted here (then: later, single-step first probes)
        self.blind = spare() is None
        self._after = PROBE_AFTER_BLIND if self.blind else PROBE_AFTER
        fresh = ThreadMemory(backoff={True: self._after, False: self._after})
        if key is None:
            self.memory = fresh
        else:
            self.memory = _MEMORY.setdefault(key, fresh)
        #: seconds the stepping thread spent compiling or loading the threaded loop in this run
        self.compile_s = 0.0
        #: seconds the helper thread compiled or loaded it while the serial loop stepped
        self.background_compile_s = 0.0
        self._since_probe = self.memory.since_probe  # stepping seconds since each variant's last probe
        if not self.memory.clear:
            # the remembered choice rests on a narrow or disturbed result: probe the other one again now
            other = not self.memory.in_use
            self._since_probe[other] = max(self._since_probe[other], self.memory.backoff[other])
            self.memory.clear = True
        self._pending: Decision | None = None
        #: probes whose result decided nothing (disturbed, or lost by less than CLEAR_MARGIN)
        self.unclear = 0

    @property
    def in_use(self) -> bool:
        """The variant blocks run on when no probe is due."""
        return self.memory.in_use

    def choose(self) -> Decision:
        """The next block: which loop, how many steps at most, whether it is a probe."""
        if not self.enabled:
            return self._set(Decision(False, None, False))
        mem = self.memory
        other = not mem.in_use
        per_step = mem.seconds_per_step.get(mem.in_use)
        # a probe is due once 3/4 of its wait has passed (blocks cut to end "exactly" at the due
        # time shrink geometrically when the rate estimate lags the real rate)
        slack = max(DUE_SLACK_STEPS * per_step if per_step else 0.0, 0.25 * mem.backoff[other])
        due = mem.backoff[other] - slack - self._since_probe[other]
        if due <= 0 and other and not self._cores_free():
            # the other cores are busy: a threaded probe would only lose (skip it as a loss)
            self.skipped += 1
            self._since_probe[other] = 0.0
            mem.backoff[other] = min(MAX_BACKOFF, 2.0 * mem.backoff[other])
            due = mem.backoff[other] - slack
        if due <= 0:
            decision = Decision(other, self._probe_steps(other), True)
        else:
            # end this block when the other variant's probe falls due (known rate only), but never
            # cut it shorter than MIN_CUT of the wait: a block that ends early (its rate figure
            # lagging) would leave a shorter one, and so on down to single steps, each paying the
            # block's fixed cost (measured: 96, 50, 20, 6, 1 steps of the threaded wavefront)
            cut = max(due, MIN_CUT * mem.backoff[other])
            steps = max(1, math.ceil(cut / per_step)) if per_step else None
            decision = Decision(mem.in_use, steps, False)
        if decision.parallel and not mem.compiled:
            if self._background or mem.compiling is not None:  # (or another run's helper is on it)
                if mem.compiling is None:
                    mem.compiling = compile_in_background(self._compile)
                if not mem.compiling.done():
                    # stay on the serial loop (one default block at a time) until it is loaded
                    return self._set(Decision(False, None, False))
                job, mem.compiling = mem.compiling, None
                self.background_compile_s += job.result()  # overlapped stepping: not in compile_s
            else:
                self.compile_s += self._compile()
            mem.compiled = True
        return self._set(decision)

    def _set(self, decision: Decision) -> Decision:
        self._pending = decision
        return decision

    def _cores_free(self) -> bool:
        """Whether a core is free for each extra thread right now (True where unknown)."""
        spare = self._spare()
        return spare is None or spare >= self._threads - 1

    def _probe_steps(self, variant: bool) -> int:
        """Steps of a probe of ``variant``: ~PROBE_FRACTION of the time since its last probe
        (the first: ~PROBE_FIRST seconds at the other variant's rate)."""
        mem = self.memory
        per_step = mem.seconds_per_step.get(variant)
        known = mem.seconds_per_step.get(not variant)
        # a threaded probe never takes less than ~PROBE_FIRST seconds at the serial rate where free
        # cores are counted (fewer steps would mostly time the team's wake-up)
        floor = self._probe_floor if variant else PROBE_MIN_STEPS
        if variant and known and not self.blind:
            floor = max(floor, int(PROBE_FIRST / known))
        if not per_step:
            return floor
        budget = PROBE_FRACTION * max(self._since_probe[variant], self._after)
        return max(floor, int(budget / per_step))

    def record(self, parallel: bool, seconds: float, steps: int, cpu_seconds: float | None = None) -> None:
        """Note that ``steps`` steps of the block just chosen (on ``parallel``) took ``seconds``
        (wall time), of which the stepping thread ran ``cpu_seconds`` on a CPU (None: unknown,
        taken as undisturbed)."""
        decision, self._pending = self._pending, None
        if not self.enabled or steps <= 0:
            return
        mem = self.memory
        per_step = seconds / steps
        self._since_probe[True] += seconds
        self._since_probe[False] += seconds
        disturbed = cpu_seconds is not None and cpu_seconds < UNDISTURBED * seconds
        if decision is not None and decision.probe:
            self._since_probe[parallel] = 0.0
            other_rate = mem.seconds_per_step.get(not parallel, math.inf)
            wins = (per_step < MARGIN * other_rate) if parallel else (per_step * MARGIN <= other_rate)
            # the figure is kept either way: it sizes this variant's next probe
            mem.seconds_per_step[parallel] = per_step
            first = parallel not in mem.probed
            mem.probed.add(parallel)
            if first and not wins and per_step < WARM_UP_FACTOR * other_rate:
                # a first probe that lost narrowly may have paid the team's wake-up: again, now
                self._since_probe[parallel] = mem.backoff[parallel]
                return
            if wins:
                mem.in_use = parallel
                mem.backoff[parallel] = self._after
                mem.backoff[not parallel] = self._after
                mem.clear = True
            elif disturbed or per_step < CLEAR_MARGIN * other_rate:
                # a narrow loss, or one measured while other processes took time slices: noise
                # could have decided it; no doubling, and the next solve re-probes at its start
                self.unclear += 1
                mem.clear = False
                mem.backoff[parallel] = min(MAX_BACKOFF, max(mem.backoff[parallel], seconds / PROBE_FRACTION))
            else:  # wait longer, and long enough for this probe's cost to stay ~PROBE_FRACTION
                mem.clear = True
                mem.backoff[parallel] = min(MAX_BACKOFF, max(2.0 * mem.backoff[parallel], seconds / PROBE_FRACTION))
            return
        if disturbed and not parallel:
            # a serial block that lost time slices to other processes says nothing about the
            # serial loop (and must not flip the choice over to threads on a loaded machine)
            return
        mem.probed.add(parallel)  # measured in use: no warm-up probe needed for it
        old = mem.seconds_per_step.get(parallel)
        mem.seconds_per_step[parallel] = per_step if old is None else (1 - SMOOTH) * old + SMOOTH * per_step
        # the variant in use got slower than the other's last probe: flip now, no probe needed
        other = not parallel
        if other in mem.seconds_per_step and self._wins(other):
            mem.in_use = other

    def _wins(self, variant: bool) -> bool:
        """Whether ``variant``'s figure beats the other's (threads need a margin: their noise is larger)."""
        s = self.memory.seconds_per_step
        mine, theirs = s.get(variant, math.inf), s.get(not variant, math.inf)
        return mine < MARGIN * theirs if variant else mine * MARGIN <= theirs


class SerialChoice(ThreadChoice):
    """Chooses between two serial compiled loops of one step method by measured speed: the one
    the grid's size suggests (``Decision.parallel`` False) and another (True), such as the plain
    loop (one sweep over both states per step) and a temporally blocked one (several steps per
    sweep over cache-sized bands or tiles: fewer bytes per cell-step, more calls and
    book-keeping). Which wins depends on the machine's caches and on what else runs on it, so
    it is measured: the same policy as :class:`ThreadChoice` (the second loop is first probed
    after ``PROBE_AFTER`` seconds of stepping, compiled in the helper thread meanwhile; the
    loop in use is timed on every block, the other re-probed with doubling back-off; the
    second loop must win by ``MARGIN``), with no core count to consult: both loops run on the
    calling thread. The caller records the thread's CPU time, not wall time (time slices that
    other processes take do not count); what still disturbs a block (a busy sibling core,
    another process's cache traffic) only makes it slower, so a figure may rise by at most
    ``DRIFT`` per block: one disturbed block decides nothing, a lasting change moves the figure
    within a few seconds of stepping.

    Args:
        enabled: whether there is a second loop.
        compile_other: compiles or loads the second loop, returns its seconds.
        key: identifies the problem in the process-wide memory (None: nothing remembered).
        probe_steps: fewest steps of a probe of the second loop (whole sweeps of a blocked loop).
        background: compile the second loop in the helper thread while the first one steps.
    """

    def __init__(self, enabled: bool, compile_other: Callable[[], float], key: tuple | None = None,
                 probe_steps: int = 1, background: bool = True):
        super().__init__(enabled, compile_other, None if key is None else (*key, "serial loop"), threads=1,
                         spare=lambda: 0, probe_steps=probe_steps, background=background)

    def record(self, parallel: bool, seconds: float, steps: int, cpu_seconds: float | None = None) -> None:
        """Note that ``steps`` steps on loop ``parallel`` (True: the second) took ``seconds`` of CPU time
        (CPU time already: ``cpu_seconds`` is not read)."""
        old = self.memory.seconds_per_step.get(parallel)
        if old is not None and steps > 0:
            seconds = min(seconds, steps * old * (1.0 + DRIFT))
        super().record(parallel, seconds, steps)


__all__ = ["CLEAR_MARGIN", "UNDISTURBED", "ThreadChoice", "SerialChoice", "ThreadMemory", "Decision", "forget", "spare_cores", "PROBE_AFTER", "MAX_BACKOFF"]

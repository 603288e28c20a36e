"""pdeforge against Devito, side by side in one process, same stencil, method and dt.

Two problems, both periodic, forward Euler, float64 (``--dtype float32`` also: single precision on
both sides), second-order central differences:

* Gray-Scott 2-D on [0, 2.5]^2 with the parameters of pdeforge's ``gray-scott`` model
  (F = 0.04, k = 0.06, Du = 2e-5, Dv = 1e-5) and its initial condition (seed 0);
* the heat equation ``u_t = D lap u`` in 3-D on [0, 2 pi]^3, D = 1, seeded random start.

Devito has no periodic boundary condition. Its grid here is the pdeforge grid plus one ghost
cell per side (``(n+2)^d`` points, spacing ``L/n``: Devito's grid is vertex-based, spacing =
extent/(shape - 1), so the extent is set to ``(n+1) L/n``); the stencil updates
``grid.interior`` and, in the same Operator and time loop, explicit copy equations
``u[t+1, 0, ...] = u[t+1, n, ...]``, ``u[t+1, n+1, ...] = u[t+1, 1, ...]`` (one pair per axis)
refill the ghost layer after every step, so one ``Operator.apply(time_M=...)`` runs all steps.
The 5-point (7-point in 3-D) Laplacian of ``space_order=2`` is the same as pdeforge's order-2
flux-form Laplacian on its cell-centred grid with h = L/n, so the final states agree to
round-off (Devito compiles with ``-ffast-math`` and reassociates, hence ~1e-15 differences).

pdeforge runs its compiled Numba step loops (``bound.advance_compiled``, what ``pf.solve`` calls
for a fixed-step method) on line-aligned, page-staggered buffers (``bound.new_aligned``): one
thread is the serial loop, two threads the ``prange`` loop with ``numba.set_num_threads(2)``. On
one thread every serial loop ``pf.solve`` chooses from (``bound.serial_loops``: the plain loop,
one sweep per step, and the wavefront, several steps per sweep over bands of rows, see
``pdeforge.codegen.numba.wavefront``) is timed; the first named is the one the grid's size
suggests (the wavefront once the two states exceed half the L3). ``pf.solve`` itself (forward
Euler at the same dt, default backend, one frame at the end) runs in the same interleaved
rounds, timed by its ``wall_time_s`` (its serial-loop and thread probes included): its row
gives the loop it kept, its ratio to Devito's best thread count and to the fastest bare loop.
Devito runs its OpenMP operator (``DEVITO_LANGUAGE=openmp``) with ``nthreads=1`` or ``2`` per
``apply``. Both sides are timed in interleaved rounds (pdeforge, Devito, pdeforge, Devito, ...)
and the best of each side is kept, since the machine may be shared. One-thread rounds also
record each side's thread CPU time (both run in the calling thread): on a loaded machine the
wall figure includes time slices other processes took, the CPU figure is what the core did.

Before the rounds, the bounds of this machine are measured on one thread: STREAM-triad
bandwidth with the arrays in L2 and in L3 and an FMA flop rate; each problem's one-thread rate
is set against them (least traffic: 24 bytes per field per cell-step; flops: the generated
right-hand side's operation count plus a multiply-add per field).

Install the peer with ``pip install devito`` (measured with devito 4.8.23; it pins numpy to
a slightly older release, a virtual environment with ``--system-site-packages`` keeps the
main one as it is). Quick check (defaults, seconds)::

    python benchmarks/bench_devito.py

``--busy-core`` measures with one core busy: a process spinning on the last CPU
(``os.sched_setaffinity``) runs through all rounds of both sides (started before the first
measurement, ended after the last), so both see the same load; its pid is printed.

Full sizes::

    python benchmarks/bench_devito.py --full          # 512^2, 1024^2, 2048^2 and heat 128^3, float64 and float32
    python benchmarks/bench_devito.py --grid 1024 --steps 200 --heat-grid 128 --threads 1 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
os.environ.setdefault("DEVITO_LOGGING", "WARNING")

import common
import numpy as np
from common import load_average, machine, table

GS_PARAMS = {"Du": 2e-5, "Dv": 1e-5, "F": 0.04, "k": 0.06}  # pdeforge's gray-scott defaults
GS_L = 2.5
HEAT_D = 1.0
HEAT_L = 2.0 * math.pi




# ------------------------------------------------------------------------------------------
# problems: the pdeforge system, the initial state, and the Devito right-hand sides


def gray_scott(n: int):
    import pdeforge as pf

    model = pf.models.get_model("gray-scott")
    system = model.system(**GS_PARAMS)
    grid = pf.UniformGrid.from_spec(system.domain, n)
    ic = model.initial_condition(grid, system.params, seed=0)
    state = np.stack([ic["u"], ic["v"]])
    Du, Dv, F, k = (GS_PARAMS[p] for p in ("Du", "Dv", "F", "k"))

    def devito_rhs(u, v):
        return [Du * u.laplace - u * v * v + F * (1 - u), Dv * v.laplace + u * v * v - (F + k) * v]

    return system, state, GS_L, devito_rhs


def heat3d(n: int):
    import pdeforge as pf

    system = pf.PDESystem({"u": "D*laplace(u)"}, params={"D": HEAT_D}, domain=[(0.0, HEAT_L)] * 3,
                          bcs="periodic", name="heat3d")
    state = np.random.default_rng(0).random((1, n, n, n))

    def devito_rhs(u):
        return [HEAT_D * u.laplace]

    return system, state, HEAT_L, devito_rhs


# ------------------------------------------------------------------------------------------
# the bounds: cache bandwidth and flop rate of this machine, one thread


def roofline() -> dict:
    """One thread's L2 and L3 bandwidth (STREAM triad, 24 bytes per element) and FMA flop rate.

    Measured in thread CPU time as well as wall time: on a shared machine the wall figure
    includes the time slices other processes took, the CPU figure what the core delivers.
    """
    import numba

    @numba.njit(fastmath=True, nogil=True)
    def triad(a, b, c, s, reps):
        for _ in range(reps):
            for i in range(a.size):
                a[i] = b[i] + s * c[i]

    @numba.njit(fastmath=True, nogil=True)
    def fmas(x, a, b, reps):  # 8 dependent FMAs per element, vectorised over the elements (L1)
        for _ in range(reps):
            for i in range(x.size):
                v = x[i]
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                x[i] = v

    out = {}
    # the three arrays: 0.96 MB (in L2: 2 MiB per core), 24 MB (as 1024^2 Gray-Scott's states),
    # 96 MB (as 2048^2's; the L3 is shared with every other process and VM on the host)
    for name, n in (("L2", 40_000), ("L3", 1_000_000), ("L3_96MB", 4_000_000)):
        a, b, c = (np.random.default_rng(0).random(n) for _ in range(3))
        reps = max(1, int(2e8 / n))
        triad(a, b, c, 0.5, 1)
        cpu, wall = best_cpu_wall(lambda: triad(a, b, c, 0.5, reps))
        out[f"{name}_GBs_cpu"], out[f"{name}_GBs_wall"] = 24 * n * reps / cpu / 1e9, 24 * n * reps / wall / 1e9
    x = np.random.default_rng(0).random(2048)
    reps = 20_000
    fmas(x, 0.999, 1e-3, 1)
    cpu, wall = best_cpu_wall(lambda: fmas(x, 0.999, 1e-3, reps))
    out["GFlops_cpu"], out["GFlops_wall"] = 16 * x.size * reps / cpu / 1e9, 16 * x.size * reps / wall / 1e9
    return out


def best_cpu_wall(fn, repeat: int = 3) -> tuple[float, float]:
    """Smallest thread CPU time and smallest wall time of ``repeat`` calls of ``fn``."""
    cpu = wall = math.inf
    for _ in range(repeat):
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        cpu, wall = min(cpu, time.thread_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall


def traffic(kernel, nfields: int, itemsize: int = 8) -> tuple[int, int]:
    """Least bytes and flops per forward-Euler cell-step: each field read, written and
    write-allocated once (three values: 24 bytes in float64, 12 in float32); the right-hand
    side's operations plus a multiply-add per field."""
    return 3 * itemsize * nfields, kernel.simplification["ops_per_cell_cse"] + 2 * nfields


def bound_line(label: str, rates: dict, bytes_per: int, flops_per: int, roof: dict, itemsize: int = 8) -> str:
    """Which bound the measured one-thread rate (CPU time) is nearest to (float32: the FMA
    rate measured in float64 times two, twice the lanes per vector)."""
    cells = rates["pdeforge_Mcell_steps_s_cpu"] * 1e6
    flops = roof["GFlops_cpu"] * 8 / itemsize
    limits = {"L2": roof["L2_GBs_cpu"] * 1e9 / bytes_per, "L3 (24 MB)": roof["L3_GBs_cpu"] * 1e9 / bytes_per,
              "96 MB": roof["L3_96MB_GBs_cpu"] * 1e9 / bytes_per, "flops": flops * 1e9 / flops_per}
    parts = ", ".join(f"{k} bound {v / 1e6:.0f}" for k, v in limits.items())
    return (f"  {label}: {bytes_per} B and {flops_per} flops per cell-step; one core reaches "
            f"{cells / 1e6:.0f} Mcell-steps/s (CPU time) = {cells * bytes_per / 1e9:.1f} GB/s, "
            f"{cells * flops_per / 1e9:.1f} GFlop/s; {parts} Mcell-steps/s")


# ------------------------------------------------------------------------------------------
# the two sides


class PdeforgeSide:
    """pdeforge's compiled forward-Euler loop on padded buffers (what pf.solve runs)."""

    def __init__(self, system, n: int, state: np.ndarray, dt: float, dtype: str = "float64"):
        import pdeforge as pf

        started = time.perf_counter()
        kernel = pf.compile(system, target="numba", dtype=dtype)
        self.bound = kernel.bind(pf.UniformGrid.from_spec(system.domain, n))
        self.bound.warm_up(("euler:serial", "euler:parallel"))  # compile or load both loops
        self.loops = self.bound.serial_loops("euler")  # the serial loops pf.solve measures and chooses from
        self.bound.warm_up(tuple(f"euler:serial:{loop}" for loop in self.loops))
        self.compile_s = time.perf_counter() - started
        self.cache_hit = bool(kernel.cache_hit)
        self.kernel = kernel
        self.dt = dt
        self.bufs = [self.bound.new_aligned() for _ in range(2)]  # the buffers pf.solve's fixed-step loop uses
        self.bound.cells(self.bufs[0])[...] = state
        self.t = 0.0

    def run(self, steps: int, threads: int, loop: str | None = None) -> None:
        """``steps`` steps on ``threads`` threads (one: the serial ``loop``, default the one the
        grid's size suggests; see ``BoundKernel.serial_loops``)."""
        import numba

        if threads > 1:
            numba.set_num_threads(threads)
        self.bound.advance_compiled("euler", self.bufs, self.t, self.dt, steps, parallel=threads > 1,
                                    loop=None if threads > 1 else loop)
        self.t += steps * self.dt

    def state(self) -> np.ndarray:
        return self.bound.cells(self.bufs[0]).copy()


class SolveSide:
    """``pf.solve`` as a user calls it for this problem: forward Euler at the given dt, default
    backend and loop choice (its serial-loop and thread probes), one frame at the end; timed by
    the run's own ``wall_time_s`` (stepping, probes included; compiling and loading excluded)."""

    def __init__(self, system, n: int, state: np.ndarray, dt: float, dtype: str = "float64"):
        import pdeforge as pf

        self.pf, self.system, self.n, self.dt = pf, system, n, dt
        self.backend = pf.Numba(dtype=dtype) if dtype != "float64" else None
        self.ic = dict(zip(system.fields, state))
        self.attrs: dict = {}

    def run(self, steps: int, threads: int = 0) -> float:
        t_end = steps * self.dt
        ds = self.pf.solve(self.system, grid=self.n, t_span=(0.0, t_end), ic=self.ic, method="euler", dt=self.dt,
                           output=self.pf.Output(save_every=t_end), backend=self.backend, progress=False)
        self.attrs = dict(ds.attrs)
        return float(ds.attrs["wall_time_s"])


class DevitoSide:
    """One Devito Operator: the stencil on grid.interior plus periodic ghost copies, all steps."""

    def __init__(self, n: int, dim: int, L: float, state: np.ndarray, dt: float, rhs, dtype: str = "float64"):
        from devito import Eq, Grid, Operator, TimeFunction

        self.n, self.dim = n, dim
        h = L / n
        started = time.perf_counter()
        dt_np = np.dtype(dtype).type
        grid = Grid(shape=(n + 2,) * dim, extent=((n + 1) * h,) * dim, dtype=dt_np)
        assert all(abs(float(s) - h) < 4 * np.finfo(dt_np).eps * h for s in grid.spacing), grid.spacing
        names = "uvw"[: len(state)]
        self.fields = [TimeFunction(name=c, grid=grid, space_order=2, dtype=dt_np) for c in names]
        tendencies = rhs(*self.fields)
        eqs = [Eq(f.forward, f + dt * r, subdomain=grid.interior) for f, r in zip(self.fields, tendencies)]
        t = grid.stepping_dim
        dims = grid.dimensions
        for f in self.fields:
            for a in range(dim):
                lo = [t + 1, *dims]
                hi = [t + 1, *dims]
                src_lo = [t + 1, *dims]
                src_hi = [t + 1, *dims]
                lo[1 + a], src_lo[1 + a] = 0, n  # ghost 0 <- last cell n
                hi[1 + a], src_hi[1 + a] = n + 1, 1  # ghost n+1 <- first cell 1
                eqs += [Eq(f[tuple(lo)], f[tuple(src_lo)]), Eq(f[tuple(hi)], f[tuple(src_hi)])]
        self.op = Operator(eqs, name="periodic_euler")
        self.build_s = time.perf_counter() - started
        started = time.perf_counter()
        _ = self.op.cfunction  # JIT-compile (gcc) and load
        self.jit_s = time.perf_counter() - started
        for f, s in zip(self.fields, state):
            f.data[0] = np.pad(s, 1, mode="wrap")
        self.step = 0

    @property
    def compile_s(self) -> float:
        return self.build_s + self.jit_s

    def run(self, steps: int, threads: int) -> None:
        self.op.apply(time_m=self.step, time_M=self.step + steps - 1, nthreads=threads)
        self.step += steps

    def state(self) -> np.ndarray:
        inner = (slice(1, -1),) * self.dim
        return np.stack([np.array(f.data[self.step % 2][inner]) for f in self.fields])


# ------------------------------------------------------------------------------------------


def compare(label: str, problem, n: int, dim: int, dt: float, steps: int, threads: list[int], rounds: int,
            roof: dict | None = None, dtype: str = "float64", solve_steps: int = 0) -> list[dict]:
    """Interleaved rounds of pdeforge's loops and Devito per thread count; in the one-thread rounds
    also every serial loop pdeforge chooses from and ``pf.solve`` itself (``solve_steps`` steps
    per call, 0: not run); returns one row per thread count and a ``pf.solve`` row."""
    system, state, L, rhs = problem(n)
    ours = PdeforgeSide(system, n, state, dt, dtype)
    solver = SolveSide(system, n, state, dt, dtype) if solve_steps else None
    theirs = DevitoSide(n, dim, L, state, dt, rhs, dtype)
    label = label if dtype == "float64" else f"{label} {dtype}"
    # agreement: the same steps from the same state (the first measurement doubles as warm-up)
    ours.run(steps, 1)
    theirs.run(steps, 1)
    a, b = ours.state(), theirs.state()
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise SystemExit(f"{label}: dt = {dt:g} is unstable on {n}^{dim}: choose a smaller --dt")
    diff = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(a)))
    print(f"{label}: compile pdeforge {ours.compile_s:.2f} s (disk cache hit: {ours.cache_hit}), "
          f"Devito {theirs.compile_s:.2f} s (Operator {theirs.build_s:.2f} s + gcc {theirs.jit_s:.2f} s); "
          f"max |pdeforge - Devito| after {steps} steps = {diff:.3g} (max |state| {scale:.3g}); pdeforge loop: "
          f"{loop_used(ours.bound)}", flush=True)
    cells = n**dim
    rows = []
    loops = {}  # one thread: the best of each serial loop (Mcell-steps/s, wall and CPU time)
    solve_best = math.inf
    for th in threads:
        best = {"pdeforge": math.inf, "devito": math.inf}
        cpu = dict(best)
        others = [loop for loop in ours.loops[1:]] if th == 1 else []
        for loop in others:
            best[loop] = cpu[loop] = math.inf
        for side in (ours, theirs):  # warm the thread team of this count
            side.run(2, th)
        if th == 1 and solver is not None:
            solver.run(min(solve_steps, 4 * steps))  # loads its loops into this process
        for _ in range(rounds):  # interleaved: A, B, A, B
            sides = [("pdeforge", lambda: ours.run(steps, th)), ("devito", lambda: theirs.run(steps, th))]
            sides += [(loop, lambda loop=loop: ours.run(steps, 1, loop)) for loop in others]
            for name, run in sides:
                c0, started = time.thread_time(), time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - started)
                cpu[name] = min(cpu[name], time.thread_time() - c0)
            if th == 1 and solver is not None:
                solve_best = min(solve_best, solver.run(solve_steps))
        rate = {k: cells * steps / v / 1e6 for k, v in best.items()}
        if th == 1:
            loops = {ours.loops[0] if ours.loops else "plain": (rate["pdeforge"], cells * steps / cpu["pdeforge"] / 1e6)}
            loops.update({loop: (rate.pop(loop), cells * steps / cpu.pop(loop) / 1e6) for loop in others})
            print("  serial loops (wall, CPU Mcell-steps/s): " + ", ".join(
                f"{k} {w:.0f}, {c:.0f}" for k, (w, c) in loops.items()), flush=True)
        row = {
            "problem": label, "grid": f"{n}^{dim}", "threads": th, "steps": steps, "dt": dt, "dtype": dtype,
            "pdeforge_Mcell_steps_s": rate["pdeforge"], "devito_Mcell_steps_s": rate["devito"],
            "pdeforge_over_devito": rate["pdeforge"] / rate["devito"],
            "max_abs_diff": diff, "pdeforge_compile_s": ours.compile_s, "devito_compile_s": theirs.compile_s,
            "load": load_average(),
        }
        extra = ""
        if th == 1:  # one thread runs in the calling thread on both sides: its CPU time is the core's work
            for k, v in cpu.items():
                row[f"{k}_Mcell_steps_s_cpu"] = cells * steps / v / 1e6
            row["pdeforge_over_devito_cpu"] = cpu["devito"] / cpu["pdeforge"]
            extra = (f"; CPU time: {row['pdeforge_Mcell_steps_s_cpu']:.0f} vs {row['devito_Mcell_steps_s_cpu']:.0f}"
                     f" -> {row['pdeforge_over_devito_cpu']:.2f}x")
        rows.append(row)
        print(f"  {th} thread(s): pdeforge {rate['pdeforge']:.1f}, Devito {rate['devito']:.1f} Mcell-steps/s "
              f"-> {rate['pdeforge'] / rate['devito']:.2f}x{extra} (load {load_average()})", flush=True)
    if solver is not None and solve_best < math.inf:
        bare = {f"serial {k}": w for k, (w, _) in loops.items()}
        bare.update({f"{r['threads']} threads": r["pdeforge_Mcell_steps_s"] for r in rows if r["threads"] > 1})
        fastest = max(bare, key=bare.get)
        devito_best = max(r["devito_Mcell_steps_s"] for r in rows)
        solve_rate = cells * solve_steps / solve_best / 1e6
        loop = solver.attrs.get("serial_loop", ours.loops[0] if ours.loops else "plain")
        row = {"problem": f"{label} pf.solve", "grid": f"{n}^{dim}", "threads": solver.attrs.get("loop_threads", 1),
               "steps": solve_steps, "dt": dt, "dtype": dtype, "pdeforge_Mcell_steps_s": solve_rate,
               "devito_Mcell_steps_s": devito_best, "pdeforge_over_devito": solve_rate / devito_best,
               "serial_loop": loop, "fastest_bare_loop": fastest, "solve_over_fastest_loop": solve_rate / bare[fastest],
               "load": load_average()}
        rows.append(row)
        print(f"  pf.solve ({solve_steps} steps, serial loop {loop}, {row['threads']} thread(s) at the end): "
              f"{solve_rate:.1f} Mcell-steps/s -> {row['pdeforge_over_devito']:.2f}x Devito's best "
              f"({devito_best:.1f}), {row['solve_over_fastest_loop']:.2f}x the fastest bare loop ({fastest}, "
              f"{bare[fastest]:.1f}) (load {load_average()})", flush=True)
    if roof is not None and rows and "pdeforge_Mcell_steps_s_cpu" in rows[0]:
        item = np.dtype(dtype).itemsize
        print(bound_line(f"{label} {n}^{dim}", rows[0], *traffic(ours.kernel, len(state), item), roof, item), flush=True)
        rows[0]["bytes_per_cell_step"], rows[0]["flops_per_cell_step"] = traffic(ours.kernel, len(state), item)
    del ours, theirs
    return rows


def _spin(cpu: int) -> None:
    """Busy loop pinned to ``cpu`` (the ``--busy-core`` load)."""
    os.sched_setaffinity(0, {cpu})
    while True:
        pass


class BusyCore:
    """A process spinning on one core while the block runs (``--busy-core``)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.process = None

    def __enter__(self):
        if self.enabled:
            import multiprocessing

            cpu = max(os.sched_getaffinity(0))
            self.process = multiprocessing.get_context("spawn").Process(target=_spin, args=(cpu,), daemon=True)
            self.process.start()
            time.sleep(2.0)  # its load shows in /proc/loadavg's running count at once, in the averages later
            print(f"one core busy: pid {self.process.pid} spinning on CPU {cpu} (load {load_average()})", flush=True)
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.terminate()  # the spinner this benchmark started, by its own handle
            self.process.join()
        return False


def loop_used(bound) -> str:
    """Which compiled forward-Euler loops (serial, threaded) pdeforge runs on this grid."""
    def one(parallel: bool) -> str:
        if (wave := bound.wavefront(parallel)) is not None:
            return wave.describe()
        if (tiling := bound.tiling("euler")) is not None:
            return tiling.describe()
        return "plain (not tiled)"

    return f"serial {one(False)}; threaded {one(True)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, nargs="+", default=[512], help="Gray-Scott cells per axis")
    ap.add_argument("--heat-grid", type=int, nargs="*", default=[64], help="3-D heat cells per axis (none: skip)")
    ap.add_argument("--steps", type=int, default=100, help="steps per timed round (Gray-Scott)")
    ap.add_argument("--heat-steps", type=int, default=50, help="steps per timed round (heat)")
    ap.add_argument("--dt", type=float, default=None,
                    help="Gray-Scott step (default 0.25 (512/n)^2: 0.84 of the forward-Euler limit)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtype", nargs="+", default=["float64"], choices=["float64", "float32"],
                    help="precision of both sides (float32: pdeforge's single-precision kernels, Devito's float32 grid)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each side is kept")
    ap.add_argument("--solve-steps", type=int, default=None,
                    help="steps of each pf.solve round (default: those of the bare loops' rounds, so that "
                         "best-of figures on a shared machine compare like with like; 0: pf.solve not run)")
    ap.add_argument("--full", action="store_true", help="full sizes: 512 1024 2048, heat 128^3, 500/100 steps, 3 rounds")
    ap.add_argument("--results-dir", default=None, help="where devito.json goes (default benchmarks/results)")
    ap.add_argument("--busy-core", action="store_true",
                    help="measure with one core busy: a spinning process pinned to the last CPU during all rounds")
    args = ap.parse_args()
    if args.full:
        args.grid, args.heat_grid, args.steps, args.heat_steps, args.rounds = [512, 1024, 2048], [128], 500, 100, 3
        args.dtype = ["float64", "float32"]
    try:
        import devito
    except ImportError:
        print("bench_devito: devito is not installed (pip install devito); skipped")
        return 0
    import numba

    print(f"pdeforge vs Devito {devito.__version__} (numba {numba.__version__}, numpy {np.__version__}); "
          f"{machine()}; load average {load_average()} at the start", flush=True)
    roof = roofline()
    print("one thread: triad L2 {L2_GBs_cpu:.1f} GB/s, 24 MB {L3_GBs_cpu:.1f} GB/s, 96 MB {L3_96MB_GBs_cpu:.1f} GB/s, "
          "FMA {GFlops_cpu:.1f} GFlop/s (CPU time; wall: {L2_GBs_wall:.1f}, {L3_GBs_wall:.1f}, {L3_96MB_GBs_wall:.1f}, "
          "{GFlops_wall:.1f})".format(**roof) +
          f" (load {load_average()})", flush=True)
    rows = []
    with BusyCore(args.busy_core):
        for dtype in args.dtype:
            for n in args.grid:
                dt = args.dt if args.dt is not None else 0.25 * (512 / n) ** 2
                rows += compare("gray-scott", gray_scott, n, 2, dt, args.steps, args.threads, args.rounds, roof, dtype,
                                args.steps if args.solve_steps is None else args.solve_steps)
            for n in args.heat_grid:
                h = HEAT_L / n
                dt = 0.8 * h * h / (2 * 3 * HEAT_D)  # 0.8 of the forward-Euler limit h^2/(2 d D)
                rows += compare("heat-3d", heat3d, n, 3, dt, args.heat_steps, args.threads, args.rounds, roof, dtype,
                                args.heat_steps if args.solve_steps is None else args.solve_steps)
    for r in rows:
        r["one_core_busy"] = bool(args.busy_core)
    print()
    print(table(rows, ["problem", "grid", "threads", "pdeforge_Mcell_steps_s", "devito_Mcell_steps_s",
                       "pdeforge_over_devito", "pdeforge_over_devito_cpu", "solve_over_fastest_loop",
                       "max_abs_diff", "pdeforge_compile_s",
                       "devito_compile_s"]))
    print(f"load average {load_average()} at the end ({os.cpu_count()} cores)")
    if args.results_dir:
        common.RESULTS = Path(args.results_dir)
    common.save("devito", rows, devito_version=devito.__version__, numba_version=numba.__version__,
                       devito_compiler=str(devito.configuration["compiler"]),
                       devito_cflags=" ".join(devito.configuration["compiler"].cflags),
                       rounds=args.rounds, load_average_end=load_average(), roofline_one_thread=roof)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Strong and weak scaling of distributed finite differences on MPI ranks, beside Devito; and of
distributed pseudo-spectral runs (mpi4py-fft).

    python benchmarks/bench_mpi.py [--n 1024] [--weak 512] [--steps 200] [--ranks 1,2,4]
    python benchmarks/bench_mpi.py --spectral [--spectral-n 48] [--spectral-steps 10] [--ranks 1,2] [--repeat 2]

Each measurement is a fresh ``mpiexec -n P`` of this file in worker mode (one Numba thread per
rank): the 2-D heat equation ``u_t = 0.1 laplace(u)`` with Dirichlet walls, forward Euler,
pdeforge's generated kernels on each rank's block with the halo exchange in every ghost fill.
It reports Mcell-steps/s (best of ``ROUNDS`` timed rounds, for every tool alike), the efficiency against one rank, each rank's compute and halo
seconds, and the halo messages and bytes per step; Devito runs the same stencil under
``DEVITO_MPI=1`` on the same ranks where it is installed. A ping-pong between two ranks gives
the latency and bandwidth of the cost model

    time per step = cells per rank * c  +  messages * latency  +  bytes / bandwidth

which predicts the efficiency at 64, 512 and 4096 ranks for 3-D finite differences.

``--spectral``: 3-D decaying turbulence (``les-hit``, Smagorinsky LES, rk4) through
``pf.solve``: one process (ducc0) against 2 ranks (a slab) and, given 4 ranks, slab and pencil;
per rank the compute and all-to-all transpose seconds and the bytes each rank sends per
transform. Its cost model per distributed FFT, ``compute / P + (latency * q + bytes / bandwidth)``
per all-to-all among ``q`` ranks (a slab: one among all P; a pencil: two among sqrt(P)),
predicts the efficiency at 64, 512 and 4096 ranks for slabs and pencils. On one machine the ping-pong measures shared memory, not a network: a cluster's
interconnect (and its contention) is what only a cluster can confirm. Ranks beyond the cores
run oversubscribed: correct, but not a timing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import load_average, machine  # noqa: E402

RESULTS = HERE / "results"
#: timed rounds per measurement; the best is reported (each tool alike)
ROUNDS = 3


def _arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[1:-1] else default


def worker_pdeforge(n: int, steps: int) -> None:
    """One rank's share of the heat run; rank 0 prints a JSON line."""
    import numpy as np
    from mpi4py import MPI

    import pdeforge as pf
    from pdeforge.codegen.build import compile_system
    from pdeforge.parallel.block import BlockKernel
    from pdeforge.parallel.comm import one_rank_first
    from pdeforge.parallel.decomposition import decompose
    from pdeforge.solvers.explicit.runge_kutta import FixedStepRK

    comm = MPI.COMM_WORLD
    system = pf.PDESystem({"u": "0.1*laplace(u)"}, domain=[(0, 1), (0, 1)], bcs="dirichlet", name="heat2d")
    grid = pf.UniformGrid.from_spec(system.domain, (n, n))
    kernel = one_rank_first(comm, lambda: compile_system(system, target="numba"))
    dec = decompose(grid, comm, kernel.ghost, (False, False))
    bound = BlockKernel(kernel, dec)
    x, y = dec.block.mesh()
    stepper = FixedStepRK(bound, (np.sin(np.pi * x) * np.sin(np.pi * y))[None], 0.0, 0.2 / n**2, "euler")
    one_rank_first(comm, lambda: bound.warm_up(stepper.kernels_used()))
    stepper.advance(5 * stepper.dt)  # first touches
    counters = bound.halo.counters
    wall, mine = math.inf, None
    for _ in range(ROUNDS):  # best of the rounds: on a shared machine a round may lose its core
        counters.messages = counters.bytes = 0
        counters.seconds = 0.0
        comm.Barrier()
        t0 = time.perf_counter()
        stepper.advance(stepper.t + steps * stepper.dt)
        took = time.perf_counter() - t0
        slowest = comm.allreduce(took, op=MPI.MAX)
        if slowest < wall:
            wall, mine = slowest, {"compute_s": took - counters.seconds, "halo_s": counters.seconds}
    import resource

    rows = comm.gather(mine | {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, root=0)
    if comm.rank == 0:
        print(json.dumps({"tool": "pdeforge", "ranks": comm.size, "n": n, "steps": steps, "wall_s": wall,
                          "mcells": n * n * steps / wall / 1e6, "decomposition": "x".join(map(str, dec.dims)),
                          "per_rank": rows, "halo_messages_per_step": counters.messages / steps,
                          "halo_bytes_per_step": counters.bytes / steps}))


def worker_solve(n: int, steps: int) -> None:
    """The same run through ``pf.solve`` (what a user gets): its stepping wall time, slowest rank."""
    import numpy as np
    from mpi4py import MPI

    import pdeforge as pf

    comm = MPI.COMM_WORLD
    system = pf.PDESystem({"u": "0.1*laplace(u)"}, domain=[(0, 1), (0, 1)], bcs="dirichlet", name="heat2d")
    dt = 0.2 / n**2
    run = dict(ic={"u": "sin(pi*x)*sin(pi*y)"}, method=pf.Euler(dt=dt), progress=False)
    pf.solve(system, (n, n), 5 * dt, output=pf.Output(save_every=5 * dt), **run)  # compile, first touches
    wall = math.inf
    for _ in range(ROUNDS):
        ds = pf.solve(system, (n, n), steps * dt, output=pf.Output(save_every=steps * dt), **run)
        wall = min(wall, comm.allreduce(float(ds.attrs["wall_time_s"]), op=MPI.MAX))
    import resource

    rss = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, root=0)
    if comm.rank == 0:
        print(json.dumps({"tool": "pf.solve", "ranks": comm.size, "n": n, "steps": int(ds.attrs["steps"]),
                          "wall_s": wall, "mcells": n * n * steps / wall / 1e6, "peak_rss_mb": rss,
                          "finite": bool(np.isfinite(ds.u.values).all())}))


def worker_devito(n: int, steps: int) -> None:
    """The same stencil as a Devito Operator under DEVITO_MPI=1."""
    import numpy as np
    from devito import Eq, Grid, Operator, TimeFunction, configuration
    from mpi4py import MPI

    configuration["log-level"] = "ERROR"
    grid = Grid(shape=(n, n), extent=(1.0, 1.0))
    u = TimeFunction(name="u", grid=grid, space_order=2)
    u.data[:] = 1.0
    op = Operator([Eq(u.forward, u + 0.02 / n**2 * u.laplace)], name="heat")
    op.apply(time_M=4)
    wall = math.inf
    for _ in range(ROUNDS):
        MPI.COMM_WORLD.Barrier()
        t0 = time.perf_counter()
        op.apply(time_M=steps - 1)
        wall = min(wall, MPI.COMM_WORLD.allreduce(time.perf_counter() - t0, op=MPI.MAX))
    del np
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps({"tool": "devito", "ranks": MPI.COMM_WORLD.size, "n": n, "steps": steps, "wall_s": wall,
                          "mcells": n * n * steps / wall / 1e6}))


def worker_pingpong() -> None:
    """Latency (8-byte messages) and bandwidth (8 MB messages) between ranks 0 and 1."""
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = {}
    for size, reps in ((1, 2000), (1 << 20, 50)):
        buf = np.zeros(size)
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            if comm.rank == 0:
                comm.Send(buf, 1)
                comm.Recv(buf, 1)
            elif comm.rank == 1:
                comm.Recv(buf, 0)
                comm.Send(buf, 0)
        one_way = (time.perf_counter() - t0) / (2 * reps)
        out["latency_s" if size == 1 else "bandwidth_Bps"] = one_way if size == 1 else buf.nbytes / one_way
    if comm.rank == 0:
        print(json.dumps({"tool": "pingpong", **out}))


#: layouts of the spectral worker by number
LAYOUTS = {0: None, 1: "slab", 2: "pencil"}


def worker_spectral(n: int, steps: int, layout: int = 0) -> None:
    """Decaying isotropic turbulence (``les-hit``, Smagorinsky LES) on ``n^3`` through ``pf.solve``
    with rk4: on one rank the one-process spectral solver, on several the distributed FFTs
    (``layout``: 0 default, 1 slab, 2 pencil); rank 0 prints a JSON line."""
    import resource

    from mpi4py import MPI

    import pdeforge as pf

    comm = MPI.COMM_WORLD
    run = dict(grid=n, method=pf.RK4(dt=1e-3), seed=1, progress=False,
               discretization=pf.Spectral(decomposition=LAYOUTS[layout], diagnostics=False))
    pf.solve("les-hit", t_span=2e-3, output=pf.Output(save_every=2e-3), **run)  # compile, plans, first touches
    ds = pf.solve("les-hit", t_span=steps * 1e-3, output=pf.Output(save_every=steps * 1e-3), **run)
    wall = comm.allreduce(float(ds.attrs["wall_time_s"]), op=MPI.MAX)
    transpose = float(ds.attrs.get("transpose_time_s", 0.0))
    rss = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, root=0)
    if comm.rank == 0:
        # one process counts no transforms: its right-hand sides times the plan's transforms per one
        per_rhs = sum(int(w) for w in str(ds.attrs["transforms_per_rhs"]).split() if w.isdigit())
        transforms = int(ds.attrs.get("transforms", 0)) or int(ds.attrs["rhs_evaluations"]) * per_rhs
        print(json.dumps({"tool": "spectral", "ranks": comm.size, "n": n, "steps": int(ds.attrs["steps"]),
                          "wall_s": wall, "transpose_s": transpose, "compute_s": wall - transpose,
                          "transforms": transforms, "decomposition": ds.attrs.get("decomposition", "1"),
                          "fft": ds.attrs.get("fft", "ducc0 (one process)"),
                          "bytes_per_transform": int(ds.attrs.get("transpose_bytes_per_transform", 0)),
                          "peak_rss_mb": rss}))


def spectral_model(c_fft: float, latency: float, bandwidth: float, n: int = 512) -> list[str]:
    """Predicted efficiency of one distributed real FFT of ``n^3`` at 64, 512 and 4096 ranks.

    Per transform and rank: compute ``c_fft * 2.5 n^3 log2(n^3) / P`` (a real FFT is half a
    complex one); each all-to-all among ``q`` ranks costs ``latency * q + bytes / bandwidth`` with
    ``bytes = 16 (n^3 / 2) / P * (q - 1) / q`` (the rank's complex half spectrum, the share
    that leaves it). A slab does one all-to-all among all P ranks (possible while P <= n), a
    pencil two among sqrt(P) each.
    """
    lines = []
    for label in ("slab", "pencil"):
        parts = []
        for p in (64, 512, 4096):
            if label == "slab" and p > n:
                parts.append(f"P={p}: - (more ranks than planes)")
                continue
            compute = c_fft * 2.5 * n**3 * math.log2(n**3) / p
            q, count = (p, 1) if label == "slab" else (math.sqrt(p), 2)
            moved = 16 * (n**3 / 2) / p * (q - 1) / q
            comm = count * (latency * q + moved / bandwidth)
            parts.append(f"P={p}: {compute / (compute + comm):.0%}")
        lines.append(f"  {label} FFT {n}^3 (per transform, all-to-all = latency x P + bytes / bandwidth): "
                     + ", ".join(parts))
    return lines


def spectral_section(ranks: list[int], n: int, steps: int, cores: int, log: list[str], repeat: int = 2) -> dict | None:
    """Strong scaling of the 3-D spectral run (slab and, on 4 ranks, pencil), each size measured
    ``repeat`` times in turn (the best kept); returns the rows."""
    try:
        import mpi4py_fft  # noqa: F401
    except ImportError:
        log.append("spectral: skipped (mpi4py-fft not installed: apt-get install libfftw3-dev; "
                   "pip install mpi4py-fft)")
        print(log[-1])
        return None
    best: dict = {}
    for _ in range(repeat):  # A, B, A, B: the best of each, on a machine whose load changes
        for p in ranks:
            for layout in ((0,) if p == 1 else (1, 2) if p >= 4 else (1,)):
                r = launch(p, "spectral", str(n), str(steps), str(layout))
                if r is not None and ((p, layout) not in best or r["wall_s"] < best[(p, layout)]["wall_s"]):
                    best[(p, layout)] = r
    rows = list(best.values())
    base = next((r["wall_s"] for r in rows if r["ranks"] == 1), None)
    log.append("(a transpose is a collective: its seconds include waiting for the slowest rank, which on a "
               "machine with fewer free cores than ranks is most of them)")
    print(log[-1])
    for r in rows:
        p = r["ranks"]
        eff = base / (r["wall_s"] * p) if base else float("nan")
        per_step = r["wall_s"] / r["steps"]
        over = " (oversubscribed)" if p > cores else ""
        line = (f"spectral P={p}{over} {n}^3 {r['fft']} {r['decomposition']}: {per_step * 1e3:.1f} ms/step, "
                f"efficiency {eff:.0%}, per rank: compute {r['compute_s']:.3f} s (stepping minus transposes), transposes "
                f"{r['transpose_s']:.3f} s (slowest rank), {r['transforms'] / max(r['steps'], 1):.0f} transforms/step, "
                f"{r['bytes_per_transform'] / 1e3:.1f} kB moved per transform per rank, peak RSS "
                f"{max(r['peak_rss_mb']):.0f} MB per rank  [load {load_average()}]")
        print(line)
        log.append(line)
    return {"rows": rows}


def launch(ranks: int, mode: str, *args: str, env: dict | None = None) -> dict | None:
    """Run this file under ``mpiexec -n ranks`` in worker ``mode``; the JSON line of rank 0."""
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, __file__, "--worker", mode, *args]
    environ = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", **(env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=3600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        print(f"  {mode} on {ranks} ranks failed: {(proc.stderr or proc.stdout)[-400:]}")
        return None
    return json.loads(lines[-1])


def model(c_cell: float, latency: float, bandwidth: float) -> list[str]:
    """Predicted efficiencies at 64, 512 and 4096 ranks (3-D FD with ghost 1)."""
    lines = []
    for label, n_of in (("3-D FD strong 1024^3", lambda p: 1024), ("3-D FD weak 128^3 per rank",
                                                                   lambda p: 128 * round(p ** (1 / 3)))):
        parts = []
        for p in (64, 512, 4096):
            n = n_of(p)
            side = n / p ** (1 / 3)
            compute = c_cell * n**3 / p
            comm = 6 * latency + 6 * side**2 * 8 / bandwidth
            parts.append(f"P={p}: {compute / (compute + comm):.0%}")
        lines.append(f"  {label}: " + ", ".join(parts))
    lines.append("  spectral (slab and pencil FFTs): python benchmarks/bench_mpi.py --spectral")
    return lines


def main() -> None:
    if "--worker" in sys.argv:
        mode = sys.argv[sys.argv.index("--worker") + 1]
        rest = [int(a) for a in sys.argv[sys.argv.index("--worker") + 2:]]
        {"pdeforge": worker_pdeforge, "solve": worker_solve, "devito": worker_devito,
         "pingpong": worker_pingpong, "spectral": worker_spectral}[mode](*rest)
        return
    if shutil.which("mpiexec") is None:
        print("skipped: mpiexec not found (pip install mpi4py mpich)")
        return
    if "--spectral" in sys.argv:
        spectral_main()
        return
    n, weak, steps = int(_arg("--n", "1024")), int(_arg("--weak", "512")), int(_arg("--steps", "200"))
    ranks = [int(r) for r in _arg("--ranks", "1,2,4").split(",")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    log = [f"bench_mpi {time.strftime('%Y-%m-%d %H:%M')}  {machine()}", f"load average at start: {load_average()}"]
    print(*log, sep="\n")
    try:
        import devito  # noqa: F401
        have_devito = True
    except ImportError:
        have_devito = False
        log.append("Devito: skipped (not installed: pip install devito)")
    rows = []
    base = {}
    for kind, size_of in (("strong", lambda p: n), ("weak", lambda p: int(round(weak * math.sqrt(p))))):
        for p in ranks:
            r = launch(p, "pdeforge", str(size_of(p)), str(steps))
            if r is None:
                continue
            front = launch(p, "solve", str(size_of(p)), str(steps))
            d = launch(p, "devito", str(size_of(p)), str(steps), env={"DEVITO_MPI": "1"}) if have_devito else None
            if p == ranks[0]:
                base[kind] = r["wall_s"]
            eff = base[kind] / r["wall_s"] * (1 if kind == "weak" else ranks[0] / p) if kind in base else float("nan")
            compute = max(x["compute_s"] for x in r["per_rank"])
            halo = max(x["halo_s"] for x in r["per_rank"])
            over = " (oversubscribed)" if p > cores else ""
            line = (f"{kind:6} P={p}{over} {r['n']}^2 {r['decomposition']}: {r['mcells']:.0f} Mcell-steps/s, "
                    f"efficiency {eff:.0%}, compute {compute:.3f} s, halo {halo:.3f} s (max over ranks), "
                    f"{r['halo_messages_per_step']:.0f} messages and {r['halo_bytes_per_step'] / 1e3:.1f} kB per "
                    f"step per rank, peak RSS {max(x['peak_rss_mb'] for x in r['per_rank']):.0f} MB per rank"
                    + (f"; pf.solve {front['mcells']:.0f} Mcell-steps/s" if front else "")
                    + (f"; Devito {d['mcells']:.0f} Mcell-steps/s (pdeforge "
                       f"{r['mcells'] / d['mcells']:.2f}x" + (f", pf.solve {front['mcells'] / d['mcells']:.2f}x" if front
                                                               else "") + ")" if d else "")
                    + f"  [load {load_average()}]")
            print(line)
            log.append(line)
            rows.append(r | {"kind": kind, "efficiency": eff, "devito": d, "solve": front})
    ping = launch(2, "pingpong")
    one = next((r for r in rows if r["ranks"] == 1 and r["kind"] == "strong"), None)
    if ping and one:
        c_cell = one["wall_s"] / (one["n"] ** 2 * one["steps"])
        log.append(f"cost model: c = {c_cell * 1e9:.2f} ns per cell-step (1 rank), latency "
                   f"{ping['latency_s'] * 1e6:.2f} us, bandwidth {ping['bandwidth_Bps'] / 1e9:.2f} GB/s (shared "
                   f"memory of this machine: a network has higher latency and lower bandwidth; only a cluster "
                   f"confirms these)")
        log += model(c_cell, ping["latency_s"], ping["bandwidth_Bps"])
        print(*log[-4:], sep="\n")
    log.append(f"load average at end: {load_average()}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (RESULTS / f"mpi_{stamp}.log").write_text("\n".join(log) + "\n")
    (RESULTS / "mpi.json").write_text(json.dumps({"date": stamp, "machine": machine(), "rows": rows}, indent=2))
    print(f"wrote {RESULTS / f'mpi_{stamp}.log'}")


def spectral_main() -> None:
    """``--spectral``: the spectral section alone (3-D LES, slab and pencil), with its cost model."""
    n, steps = int(_arg("--spectral-n", "48")), int(_arg("--spectral-steps", "10"))
    ranks = [int(r) for r in _arg("--ranks", "1,2").split(",")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    log = [f"bench_mpi --spectral {time.strftime('%Y-%m-%d %H:%M')}  {machine()}",
           f"load average at start: {load_average()} (a loaded machine: figures are provisional)"]
    print(*log, sep="\n")
    result = spectral_section(ranks, n, steps, cores, log, int(_arg("--repeat", "2")))
    ping = launch(2, "pingpong")
    if result and ping:
        one = next((r for r in result["rows"] if r["ranks"] == 1), None)
        two = next((r for r in result["rows"] if r["ranks"] == 2), None)
        if one:
            start = len(log)
            # c_fft from one process: its whole step time charged to its transforms (an upper bound:
            # the pointwise products are in it too, as they are in every rank's compute)
            per_transform = one["wall_s"] / one["transforms"]
            c_fft = per_transform / (2.5 * n**3 * math.log2(n**3))
            log.append(f"cost model: {per_transform * 1e3:.3f} ms per transform of {n}^3 on one rank "
                       f"(c_fft = {c_fft * 1e9:.3f} ns per 2.5 N log2 N, pointwise work included), latency "
                       f"{ping['latency_s'] * 1e6:.2f} us, bandwidth {ping['bandwidth_Bps'] / 1e9:.2f} GB/s")
            log.append("  with the ping-pong's latency and bandwidth (an idealized network):")
            log += spectral_model(c_fft, ping["latency_s"], ping["bandwidth_Bps"])
            if two:
                predicted = ping["latency_s"] * 2 + two["bytes_per_transform"] / ping["bandwidth_Bps"]
                measured = two["transpose_s"] / max(two["transforms"], 1)
                # what the all-to-all costs beyond moving its bytes (the collective's set-up, subarray
                # packing, waiting for a rank the scheduler has not run), from P=2: the model's latency
                fitted = max(ping["latency_s"], (measured - two["bytes_per_transform"] / ping["bandwidth_Bps"]) / 2)
                log.append(f"  check at P=2 (slab): model {predicted * 1e6:.0f} us per transpose, measured "
                           f"{measured * 1e6:.0f} us ({two['bytes_per_transform'] / 1e3:.1f} kB per rank): an "
                           f"all-to-all latency of {fitted * 1e6:.0f} us per rank; with that latency:")
                log += spectral_model(c_fft, fitted, ping["bandwidth_Bps"])
            log.append("  only a cluster can confirm these: its network's latency and bandwidth under all-to-all "
                       "contention (here: shared memory of one machine, 2 cores), and FFTW's speed per core there")
            print(*log[start:], sep="\n")
    log.append(f"load average at end: {load_average()}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (RESULTS / f"mpi_spectral_{stamp}.log").write_text("\n".join(log) + "\n")
    (RESULTS / "mpi_spectral.json").write_text(json.dumps({"date": stamp, "machine": machine(),
                                                             "rows": (result or {}).get("rows", []),
                                                             "pingpong": ping}, indent=2))
    print(f"wrote {RESULTS / f'mpi_spectral_{stamp}.log'}")


if __name__ == "__main__":
    main()

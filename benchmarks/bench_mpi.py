"""Strong and weak scaling of distributed finite differences on MPI ranks, beside Devito.

    python benchmarks/bench_mpi.py [--n 1024] [--weak 512] [--steps 200] [--ranks 1,2,4]

Each measurement is a fresh ``mpiexec -n P`` of this file in worker mode (one Numba thread per
rank): the 2-D heat equation ``u_t = 0.1 laplace(u)`` with Dirichlet walls, forward Euler,
pdeforge's generated kernels on each rank's block with the halo exchange in every ghost fill.
It reports Mcell-steps/s (best of ``ROUNDS`` timed rounds, for every tool alike), the efficiency against one rank, each rank's compute and halo
seconds, and the halo messages and bytes per step; Devito runs the same stencil under
``DEVITO_MPI=1`` on the same ranks where it is installed. A ping-pong between two ranks gives
the latency and bandwidth of the cost model

    time per step = cells per rank * c  +  messages * latency  +  bytes / bandwidth

which predicts the efficiency at 64, 512 and 4096 ranks for 3-D finite differences and for
pencil FFTs. On one machine the ping-pong measures shared memory, not a network: a cluster's
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


def model(c_cell: float, latency: float, bandwidth: float, c_fft: float) -> list[str]:
    """Predicted efficiencies at 64, 512 and 4096 ranks (3-D FD with ghost 1, pencil FFT)."""
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
    parts = []
    for p in (64, 512, 4096):
        n = 512
        compute = c_fft * 5 * n**3 * math.log2(n**3) / p
        q = math.sqrt(p)  # pencils: two all-to-alls among q ranks per transform
        comm = 2 * (q * latency + 16 * n**3 / p / bandwidth)
        parts.append(f"P={p}: {compute / (compute + comm):.0%}")
    lines.append("  pencil FFT 512^3 (one forward + inverse pair): " + ", ".join(parts))
    return lines


def main() -> None:
    if "--worker" in sys.argv:
        mode = sys.argv[sys.argv.index("--worker") + 1]
        rest = [int(a) for a in sys.argv[sys.argv.index("--worker") + 2:]]
        {"pdeforge": worker_pdeforge, "solve": worker_solve, "devito": worker_devito,
         "pingpong": worker_pingpong}[mode](*rest)
        return
    if shutil.which("mpiexec") is None:
        print("skipped: mpiexec not found (pip install mpi4py mpich)")
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
        import numpy as np

        c_cell = one["wall_s"] / (one["n"] ** 2 * one["steps"])
        a = np.random.default_rng(0).standard_normal((64, 64, 64))
        t0 = time.perf_counter()
        for _ in range(5):
            np.fft.ifftn(np.fft.fftn(a))
        c_fft = (time.perf_counter() - t0) / 5 / (2 * 5 * a.size * math.log2(a.size))
        log.append(f"cost model: c = {c_cell * 1e9:.2f} ns per cell-step (1 rank), latency "
                   f"{ping['latency_s'] * 1e6:.2f} us, bandwidth {ping['bandwidth_Bps'] / 1e9:.2f} GB/s (shared "
                   f"memory of this machine: a network has higher latency and lower bandwidth; only a cluster "
                   f"confirms these), FFT {c_fft * 1e9:.3f} ns per 5 N log2 N")
        log += model(c_cell, ping["latency_s"], ping["bandwidth_Bps"], c_fft)
        print(*log[-4:], sep="\n")
    log.append(f"load average at end: {load_average()}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (RESULTS / f"mpi_{stamp}.log").write_text("\n".join(log) + "\n")
    (RESULTS / "mpi.json").write_text(json.dumps({"date": stamp, "machine": machine(), "rows": rows}, indent=2))
    print(f"wrote {RESULTS / f'mpi_{stamp}.log'}")


if __name__ == "__main__":
    main()

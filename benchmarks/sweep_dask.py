"""Sweeps on Dask against a serial loop of ``pdeforge.solve``, in the same process.

Members are Gray-Scott runs (96x96 cells, 7000 RK4 steps: about a second each on one
unloaded core). The serial loop solves them one after another in this process (kernels
compiled beforehand). ``pdeforge.sweep`` then runs the same members with 1 and 2 local worker
processes. Each sweep is timed end to end (cluster start, client-side compile, worker imports,
tasks, zarr writes, cluster shutdown) and in steady state, from the times the client wrote
the members (the store's ``written_at``): after each worker's first member, which pays the
worker's one-off costs, every further member costs one interval between writes per worker.
The three are run in interleaved rounds and the best of each kept, since this machine is shared.

    python benchmarks/sweep_dask.py [--members N] [--quick]

Prints members per second, the per-member overhead of the sweep against the serial loop
(target: under 10% for members of a second or more) and the 2-worker / 1-worker ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def members(n: int) -> dict:
    """n members: n/2 values of F x 2 seeds."""
    f_values = [float(f"{v:.6g}") for v in np.linspace(0.030, 0.045, n // 2)]
    return {"params": {"F": f_values, "k": [0.06]}, "seeds": range(2)}


def run_serial(n: int, kw: dict) -> float:
    """Seconds per member of a plain loop of ``pdeforge.solve``."""
    import pdeforge as pf

    spec = members(n)
    started = time.perf_counter()
    kw = dict(kw)
    output = pf.Output(save_every=kw.pop("save_every", None))
    # gray-scott's default method with its preferred step (dt 1.0, an upper bound) and stability="error"
    method = pf.RK4(dt_max=1.0, stability="error")
    for f in spec["params"]["F"]:
        for seed in spec["seeds"]:
            pf.solve("gray-scott", params={"F": f, "k": 0.06}, seed=seed, progress=False, method=method,
                     output=output, **kw)
    return (time.perf_counter() - started) / n


def run_sweep(n: int, kw: dict, workers: int, folder: str) -> tuple[float, float, float, float]:
    """(end-to-end seconds, steady seconds per member, mean member time-stepping seconds,
    mean task seconds on the worker), the means over the members after each worker's first."""
    import pdeforge as pf

    out = os.path.join(folder, f"bench-{workers}.zarr")
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    kw = dict(kw)
    output = pf.Output(out, save_every=kw.pop("save_every", None))
    ds = pf.sweep("gray-scott", **members(n), client=workers, output=output, progress=False, **kw)
    elapsed = time.perf_counter() - started
    assert (ds.status == 1).all(), ds.error.values
    assert int(ds.kernels_compiled.max()) == 0, "a worker compiled kernels"
    order = np.argsort(ds.written_at.values)
    written = ds.written_at.values[order]
    steady = (written[-1] - written[workers - 1]) / (n - workers)  # after each worker's first member
    later = order[workers:]
    return elapsed, steady, float(ds.wall_time_s.values[later].mean()), float(ds.task_time_s.values[later].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10, help="members per run (even, at least 4)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best of each side is kept")
    parser.add_argument("--quick", action="store_true", help="small members (about 0.1 s) for a smoke run")
    args = parser.parse_args()
    n = max(4, args.members - args.members % 2)
    grid, t_end = ((48, 48), 2000.0) if args.quick else ((96, 96), 7000.0)
    kw = dict(grid=grid, t_span=t_end, save_every=1000.0)

    import pdeforge as pf

    # compile (or load) the kernels once, outside every timing, as for a user's second sweep
    pf.solve("gray-scott", progress=False, grid=grid, t_span=10.0, output=pf.Output(save_every=10.0))
    folder = tempfile.mkdtemp(prefix="pdeforge-bench-")
    try:
        print(f"{n} members: gray-scott {grid[0]}x{grid[1]}, {int(t_end)} rk4 steps, {int(t_end // 1000) + 1} frames saved; "
              f"{args.repeats} rounds of (serial loop, sweep with 1 worker, sweep with 2 workers), best of each kept")
        serial = []
        sweeps: dict[int, list] = {1: [], 2: []}
        for _ in range(args.repeats):  # interleaved, so that a change of machine load hits every side
            serial.append(run_serial(n, kw))
            for workers in (1, 2):
                sweeps[workers].append(run_sweep(n, kw, workers, folder))
        s = min(serial)
        print(f"serial loop of solve      : {s:.3f} s/member = {1 / s:.2f} members/s")
        best = {}
        for workers in (1, 2):
            elapsed = min(r[0] for r in sweeps[workers])
            per, stepping, task = min(sweeps[workers], key=lambda r: r[1])[1:]
            best[workers] = (per, task)
            print(f"sweep, {workers} worker{'s' if workers > 1 else ' '}          : {1 / per:.2f} members/s steady, "
                  f"{n / elapsed:.2f} members/s end to end ({elapsed:.1f} s, of which ~{elapsed - per * n:.1f} s one-off: "
                  f"cluster start/stop, client compile, worker imports); member time stepping {stepping:.3f} s")
        per1, task1 = best[1]
        print(f"overhead per member, 1 worker vs serial loop: {(per1 - s) * 1e3:+.0f} ms = {(per1 - s) / s:+.1%} "
              f"(target < +10%)")
        print(f"  of which dispatch (interval between writes minus the task's own time on its worker: scheduling, "
              f"result transfer, zarr write): {(per1 - task1) * 1e3:+.0f} ms = {(per1 - task1) / s:+.1%}")
        print(f"ratio sweep 1 worker / serial loop (members/s): {s / per1:.3f}")
        print(f"ratio sweep 2 workers / 1 worker (members/s):   {per1 / best[2][0]:.2f} "
              f"({os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

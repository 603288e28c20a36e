"""Benchmark (a): Gray-Scott, 2-D periodic, same fixed-step method and dt on every side.

pdeforge (Numba, compiled step loop) vs py-pde (its numba backend) vs a hand-written NumPy
reference, in cell-steps per second, plus the fraction of this machine's memory-bandwidth
roofline. Bandwidth is measured in the same run with a parallel Numba triad on arrays far
larger than the caches. Bytes per cell-step assumed for one forward-Euler step of two fields:
each value read once and written once, 2 x (8 + 8) = 32 bytes (neighbour reads hit cache).

    python benchmarks/bench_gray_scott.py [--grid 512] [--steps 500]

py-pde's Euler stepper allocates its temporaries every step. With glibc's default malloc
settings a 512^2 state's 4 MB temporaries are mapped fresh and returned to the system each
step, and their page faults cost three quarters of py-pde's time (measured: 54-60 against
206-213 Mcell-steps/s); once a process has freed a block of that size (pdeforge's buffers,
say) glibc raises its mmap and trim thresholds and the temporaries are reused. So py-pde is
timed in two fresh processes: glibc's defaults, and ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` raised (its best case), and pdeforge is compared with the faster.
pdeforge's stepping loops allocate nothing per step, so they do not depend on this.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np

from common import best_of, load_average, machine, save, table

PARAMS = {"Du": 2e-5, "Dv": 1e-5, "F": 0.04, "k": 0.06}
DOMAIN = 2.5
BYTES_PER_CELL_STEP = 32


def initial(n: int):
    rng = np.random.default_rng(0)
    u = np.ones((n, n))
    v = np.zeros((n, n))
    c = slice(n // 2 - n // 20, n // 2 + n // 20)
    u[c, c], v[c, c] = 0.5, 0.25
    return u + 0.01 * rng.random((n, n)), v + 0.01 * rng.random((n, n))


def pdeforge_rate(n: int, steps: int, dt: float, method: str = "euler", parallel: bool = True) -> tuple[float, np.ndarray]:
    import pdeforge as pf

    system = pf.PDESystem(
        {"u": "Du*laplace(u) - u*v**2 + F*(1 - u)", "v": "Dv*laplace(v) + u*v**2 - (F + k)*v"},
        params=PARAMS, domain=[(0, DOMAIN), (0, DOMAIN)], bcs="periodic")
    bound = pf.compile(system, target="numba").bind(pf.UniformGrid.from_spec(system.domain, n))
    nbuf = {"euler": 2, "rk4": 5}[method]
    u, v = initial(n)
    bufs = [bound.new_aligned() for _ in range(nbuf)]  # the buffers pf.solve steps on
    bound.cells(bufs[0])[...] = np.stack([u, v])
    bound.advance_compiled(method, bufs, 0.0, dt, 2, parallel)  # compile / load from cache

    def run():
        bound.advance_compiled(method, bufs, 0.0, dt, steps, parallel)

    seconds = best_of(run, 3)
    return n * n * steps / seconds, bound.cells(bufs[0]).copy()


def solve_rate(n: int, steps: int, dt: float, rounds: int = 3) -> float:
    """What a user gets: ``pf.solve`` with forward Euler at ``dt`` (its own loop and thread choice),
    stepping time as the Dataset records it (``wall_time_s``: compilation excluded), best of ``rounds``."""
    import pdeforge as pf

    system = pf.PDESystem(
        {"u": "Du*laplace(u) - u*v**2 + F*(1 - u)", "v": "Dv*laplace(v) + u*v**2 - (F + k)*v"},
        params=PARAMS, domain=[(0, DOMAIN), (0, DOMAIN)], bcs="periodic")
    u, v = initial(n)
    best = math.inf
    for _ in range(rounds):
        ds = pf.solve(system, n, steps * dt, {"u": u, "v": v}, method="euler", dt=dt, progress=False,
                      output=pf.Output(save_every=steps * dt))
        best = min(best, float(ds.attrs["wall_time_s"]))
    return n * n * steps / best


def pypde_rate(n: int, steps: int, dt: float) -> float:
    import pde

    grid = pde.CartesianGrid([(0, DOMAIN), (0, DOMAIN)], [n, n], periodic=True)
    eq = pde.PDE({"u": f"{PARAMS['Du']}*laplace(u) - u*v**2 + {PARAMS['F']}*(1 - u)",
                  "v": f"{PARAMS['Dv']}*laplace(v) + u*v**2 - ({PARAMS['F']} + {PARAMS['k']})*v"})
    u, v = initial(n)
    state = pde.FieldCollection([pde.ScalarField(grid, u), pde.ScalarField(grid, v)])
    solver = pde.EulerSolver(eq, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stepper = solver.make_stepper(state, dt=dt)
        stepper(state, 0.0, 2 * dt)  # compile
    t = [2 * dt]

    def run():
        stepper(state, t[0], t[0] + steps * dt)
        t[0] += steps * dt

    return n * n * steps / best_of(run, 3)


#: glibc settings under which py-pde's per-step temporaries are reused instead of re-mapped
MALLOC_REUSE = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}


def pypde_fresh_process(n: int, steps: int, dt: float, env: dict) -> float:
    """py-pde's rate in a fresh Python process with ``env`` added to the environment."""
    out = subprocess.run([sys.executable, __file__, "--pypde-only", "--grid", str(n), "--steps", str(steps),
                          "--dt", str(dt)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **env))
    return float(json.loads(out.stdout.strip().splitlines()[-1])["pypde"])


def numpy_rate(n: int, steps: int, dt: float) -> float:
    """Hand-written NumPy reference: padded arrays, slices, in-place updates."""
    h2 = (DOMAIN / n) ** 2
    Du, Dv, F, k = (PARAMS[p] for p in ("Du", "Dv", "F", "k"))
    u, v = initial(n)
    U = np.zeros((n + 2, n + 2))
    V = np.zeros((n + 2, n + 2))
    U[1:-1, 1:-1], V[1:-1, 1:-1] = u, v

    def lap(A):
        return (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:] - 4 * A[1:-1, 1:-1]) / h2

    def step():
        for A in (U, V):
            A[0, :], A[-1, :] = A[-2, :], A[1, :]
            A[:, 0], A[:, -1] = A[:, -2], A[:, 1]
        uc, vc = U[1:-1, 1:-1], V[1:-1, 1:-1]
        uvv = uc * vc * vc
        du = Du * lap(U) - uvv + F * (1 - uc)
        dv = Dv * lap(V) + uvv - (F + k) * vc
        uc += dt * du
        vc += dt * dv

    def run():
        for _ in range(steps):
            step()

    return n * n * steps / best_of(run, 2)


def bandwidth_gbs() -> float:
    """Sustained memory bandwidth of a parallel triad a = b + s*c on 3 x 256 MiB arrays."""
    from numba import njit, prange

    @njit(parallel=True, cache=False)
    def triad(a, b, c, s):
        for i in prange(a.size):
            a[i] = b[i] + s * c[i]

    n = 32 * 2**20
    a, b, c = np.zeros(n), np.ones(n), np.ones(n)
    triad(a, b, c, 0.5)
    seconds = best_of(lambda: triad(a, b, c, 0.5), 5)
    return 3 * 8 * n / seconds / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=512)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--dt", type=float, default=0.25, help="stable for forward Euler up to 512^2 (limit 0.3)")
    ap.add_argument("--skip-pypde", action="store_true")
    ap.add_argument("--pypde-only", action="store_true", help=argparse.SUPPRESS)  # one fresh py-pde process
    args = ap.parse_args()
    n, steps, dt = args.grid, args.steps, args.dt
    if args.pypde_only:
        print(json.dumps({"pypde": pypde_rate(n, steps, dt)}))
        return

    print(f"load average {load_average()} at the start", flush=True)
    bw = bandwidth_gbs()
    roofline = bw * 1e9 / BYTES_PER_CELL_STEP
    threaded, final = pdeforge_rate(n, steps, dt, parallel=True)
    if not np.isfinite(final).all():
        raise SystemExit(f"dt = {dt} is unstable on {n}^2: choose a smaller --dt")
    serial, _ = pdeforge_rate(n, steps, dt, parallel=False)
    # pdeforge.solve times both loops as it runs and keeps the faster one
    ours = max(threaded, serial)
    ours_rk4 = max(pdeforge_rate(n, steps // 4, dt, "rk4", p)[0] for p in (True, False))
    front = solve_rate(n, steps, dt)
    ref = numpy_rate(n, max(20, steps // 20), dt)
    rows = [
        {"implementation": "pdeforge numba (euler)", "Mcell_steps_per_s": ours / 1e6, "vs_pdeforge": 1.0},
        {"implementation": "  of which: threaded loop", "Mcell_steps_per_s": threaded / 1e6, "vs_pdeforge": threaded / ours},
        {"implementation": "  of which: serial loop", "Mcell_steps_per_s": serial / 1e6, "vs_pdeforge": serial / ours},
        {"implementation": "pf.solve (euler, its defaults)", "Mcell_steps_per_s": front / 1e6,
         "vs_pdeforge": front / ours},
        {"implementation": "hand-written NumPy (euler)", "Mcell_steps_per_s": ref / 1e6, "vs_pdeforge": ref / ours},
    ]
    if not args.skip_pypde:
        default = pypde_fresh_process(n, steps, dt, {})
        reuse = pypde_fresh_process(n, steps, dt, MALLOC_REUSE)
        theirs = max(default, reuse)
        rows.insert(3, {"implementation": "py-pde numba (euler)", "Mcell_steps_per_s": theirs / 1e6,
                        "vs_pdeforge": theirs / ours})
        rows.insert(4, {"implementation": "  glibc malloc defaults", "Mcell_steps_per_s": default / 1e6,
                        "vs_pdeforge": default / ours})
        rows.insert(5, {"implementation": "  malloc thresholds raised", "Mcell_steps_per_s": reuse / 1e6,
                        "vs_pdeforge": reuse / ours})
    rows.append({"implementation": "pdeforge numba (rk4, per step)", "Mcell_steps_per_s": ours_rk4 / 1e6,
                 "vs_pdeforge": ours_rk4 / ours})
    print(f"Gray-Scott {n}x{n} periodic, dt = {dt}, {steps} steps; {machine()}")
    print(table(rows, ["implementation", "Mcell_steps_per_s", "vs_pdeforge"]))
    speedup = {r["implementation"]: ours / (r["Mcell_steps_per_s"] * 1e6) for r in rows}
    if not args.skip_pypde:
        print(f"\npdeforge / py-pde = {speedup['py-pde numba (euler)']:.2f}x against py-pde's faster process "
              f"({speedup['  glibc malloc defaults']:.2f}x against glibc's defaults; target >= 20x; load average "
              f"{load_average()})")
    if not args.skip_pypde:
        print(f"pf.solve / py-pde = {front / theirs:.2f}x (what a user gets, py-pde's faster process; load average "
              f"{load_average()})")
    print(f"pdeforge / NumPy  = {speedup['hand-written NumPy (euler)']:.2f}x")
    print(f"memory bandwidth (parallel triad): {bw:.1f} GB/s; roofline at {BYTES_PER_CELL_STEP} B/cell-step = "
          f"{roofline / 1e6:.0f} Mcell-steps/s; pdeforge reaches {ours / roofline:.2f} of it (target >= 0.5)")
    save("gray_scott", rows, grid=n, steps=steps, dt=dt, bandwidth_GBs=bw,
         bytes_per_cell_step=BYTES_PER_CELL_STEP, roofline_fraction=ours / roofline,
         speedup_vs_pypde=speedup.get("py-pde numba (euler)"),
         solve_vs_pypde=None if args.skip_pypde else front / theirs)


if __name__ == "__main__":
    main()

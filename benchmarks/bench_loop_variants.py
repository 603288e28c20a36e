"""What bounds one core's Gray-Scott forward-Euler loop, measured by rewriting it.

pdeforge's generated serial stage (``_stage_euler_ser`` of the ``gray-scott`` kernel) is timed
beside hand-written variants of the same update on the same line-aligned buffers, interleaved
(variant by variant, round after round; best of each), one thread, thread CPU time:

* ``generated``: pdeforge's loop (what ``pf.solve`` runs on one core);
* ``as_printed``: the generated expression typed out by hand (checks the harness: should tie);
* ``factored``: ``c1*(w + e) + c2*(n + s)``: four fewer FMAs per cell, two adds on the add pipes;
* ``dt_folded``: ``dt`` folded into the stencil weights (``y = a0 u + a1 (w + e) + ...``);
* ``tree``: sums bracketed as balanced trees (dependency chains of 3 instead of 6);
* ``jam2``: two rows per iteration (unroll-and-jam: 8 instead of 10 loads per cell pair). LLVM
  vectorizes it only where its runtime overlap checks of the four store streams against the
  load streams pass (seen: rows of 2048 cells, 1285 against the plain loop's 1436 Mcell-steps/s
  on a Zen 4 core); on square grids it runs the scalar fallback, a third of the rate;
* ``recurrence``: the west and centre values carried over from the previous cell (a first-order
  recurrence, which LLVM vectorizes with lane permutes): one unaligned load stream per field
  instead of two;
* ``aligned_probe``: the two neighbour loads along the rows moved to aligned addresses (wrong
  physics, not checked): what the loads that straddle cache lines cost;
* ``copy``: the state copied (the same loads and stores as one step, no arithmetic).

If the variants with less arithmetic, shorter chains or fewer loads are no faster than
``generated`` while ``copy`` is twice as fast, the loop is bound neither by its flops, nor by
latency, nor by its loads' count, nor by the bytes moved: by what the core's front end and
load/store units do with the loop as a whole. Each variant's answer is checked against the
generated loop's (to 1e-12 relative; they reassociate)::

    python benchmarks/bench_loop_variants.py            # 64^2, 128^2, 512^2
    python benchmarks/bench_loop_variants.py --grid 256 1024 --rounds 5
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import load_average, machine
from numba import njit

FM = {"contract", "arcp", "nsz"}  # pdeforge's fastmath flags
JIT = dict(fastmath=FM, error_model="numpy", nogil=True)


@njit(**JIT)
def _cell(S, i0, i1, c, F, c0, c1, c2, c3, c4, c5):
    """One cell's update as pdeforge prints it (``as_printed`` and ``jam2``)."""
    t0 = S[1, i0 + 1, i1 + 1] * S[1, i0 + 1, i1 + 1]
    k0 = (F + c1 * S[0, i0 + 1, i1] + c1 * S[0, i0 + 1, i1 + 2] + c2 * S[0, i0, i1 + 1]
          + c2 * S[0, i0 + 2, i1 + 1] + S[0, i0 + 1, i1 + 1] * (c0 - t0))
    k1 = (c3 * S[1, i0 + 1, i1 + 1] + c4 * S[1, i0 + 1, i1] + c4 * S[1, i0 + 1, i1 + 2]
          + c5 * S[1, i0, i1 + 1] + c5 * S[1, i0 + 2, i1 + 1] + t0 * S[0, i0 + 1, i1 + 1])
    return S[0, i0 + 1, i1 + 1] + c * k0, S[1, i0 + 1, i1 + 1] + c * k1


@njit(**JIT)
def as_printed(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    for i0 in range(n0):
        for i1 in range(n1):
            y0, y1 = _cell(S, i0, i1, c, F, c0, c1, c2, c3, c4, c5)
            OUT[0, i0 + 1, i1 + 1] = y0
            OUT[1, i0 + 1, i1 + 1] = y1


@njit(**JIT)
def factored(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    for i0 in range(n0):
        for i1 in range(n1):
            u = S[0, i0 + 1, i1 + 1]
            v = S[1, i0 + 1, i1 + 1]
            t0 = v * v
            k0 = F + c1 * (S[0, i0 + 1, i1] + S[0, i0 + 1, i1 + 2]) + c2 * (S[0, i0, i1 + 1] + S[0, i0 + 2, i1 + 1]) + u * (c0 - t0)
            k1 = c3 * v + c4 * (S[1, i0 + 1, i1] + S[1, i0 + 1, i1 + 2]) + c5 * (S[1, i0, i1 + 1] + S[1, i0 + 2, i1 + 1]) + t0 * u
            OUT[0, i0 + 1, i1 + 1] = u + c * k0
            OUT[1, i0 + 1, i1 + 1] = v + c * k1


@njit(**JIT)
def dt_folded(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    a0, a1, a2, aF = 1.0 + c * c0, c * c1, c * c2, c * F
    b3, b4, b5 = 1.0 + c * c3, c * c4, c * c5
    for i0 in range(n0):
        for i1 in range(n1):
            u = S[0, i0 + 1, i1 + 1]
            v = S[1, i0 + 1, i1 + 1]
            r = c * (u * v * v)
            y0 = aF + a1 * (S[0, i0 + 1, i1] + S[0, i0 + 1, i1 + 2]) + a2 * (S[0, i0, i1 + 1] + S[0, i0 + 2, i1 + 1]) + a0 * u - r
            y1 = b3 * v + b4 * (S[1, i0 + 1, i1] + S[1, i0 + 1, i1 + 2]) + b5 * (S[1, i0, i1 + 1] + S[1, i0 + 2, i1 + 1]) + r
            OUT[0, i0 + 1, i1 + 1] = y0
            OUT[1, i0 + 1, i1 + 1] = y1


@njit(**JIT)
def tree(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    for i0 in range(n0):
        for i1 in range(n1):
            u = S[0, i0 + 1, i1 + 1]
            v = S[1, i0 + 1, i1 + 1]
            t0 = v * v
            k0 = (F + c1 * (S[0, i0 + 1, i1] + S[0, i0 + 1, i1 + 2])) + (c2 * (S[0, i0, i1 + 1] + S[0, i0 + 2, i1 + 1]) + u * (c0 - t0))
            k1 = (c3 * v + c4 * (S[1, i0 + 1, i1] + S[1, i0 + 1, i1 + 2])) + (c5 * (S[1, i0, i1 + 1] + S[1, i0 + 2, i1 + 1]) + t0 * u)
            OUT[0, i0 + 1, i1 + 1] = u + c * k0
            OUT[1, i0 + 1, i1 + 1] = v + c * k1


@njit(**JIT)
def jam2(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    for j in range(n0 // 2):
        i0 = 2 * j
        for i1 in range(n1):
            y0, y1 = _cell(S, i0, i1, c, F, c0, c1, c2, c3, c4, c5)
            z0, z1 = _cell(S, i0 + 1, i1, c, F, c0, c1, c2, c3, c4, c5)
            OUT[0, i0 + 1, i1 + 1] = y0
            OUT[1, i0 + 1, i1 + 1] = y1
            OUT[0, i0 + 2, i1 + 1] = z0
            OUT[1, i0 + 2, i1 + 1] = z1
    if n0 % 2:
        for i1 in range(n1):
            y0, y1 = _cell(S, n0 - 1, i1, c, F, c0, c1, c2, c3, c4, c5)
            OUT[0, n0, i1 + 1] = y0
            OUT[1, n0, i1 + 1] = y1


@njit(**JIT)
def recurrence(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    for i0 in range(n0):
        uw, uc = S[0, i0 + 1, 0], S[0, i0 + 1, 1]
        vw, vc = S[1, i0 + 1, 0], S[1, i0 + 1, 1]
        for i1 in range(n1):
            ue = S[0, i0 + 1, i1 + 2]
            ve = S[1, i0 + 1, i1 + 2]
            t0 = vc * vc
            k0 = F + c1 * uw + c1 * ue + c2 * S[0, i0, i1 + 1] + c2 * S[0, i0 + 2, i1 + 1] + uc * (c0 - t0)
            k1 = c3 * vc + c4 * vw + c4 * ve + c5 * S[1, i0, i1 + 1] + c5 * S[1, i0 + 2, i1 + 1] + t0 * uc
            OUT[0, i0 + 1, i1 + 1] = uc + c * k0
            OUT[1, i0 + 1, i1 + 1] = vc + c * k1
            uw, uc, vw, vc = uc, ue, vc, ve


@njit(**JIT)
def aligned_probe(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    # the west/east loads replaced by loads 8 cells (64 bytes) east in the rows above and at the
    # centre, aligned like the centre (past a row's end they read the next row, inside the
    # buffer): wrong physics, a timing probe
    for i0 in range(n0):
        for i1 in range(n1):
            t0 = S[1, i0 + 1, i1 + 1] * S[1, i0 + 1, i1 + 1]
            k0 = (F + c1 * S[0, i0, i1 + 9] + c1 * S[0, i0 + 1, i1 + 9] + c2 * S[0, i0, i1 + 1]
                  + c2 * S[0, i0 + 2, i1 + 1] + S[0, i0 + 1, i1 + 1] * (c0 - t0))
            k1 = (c3 * S[1, i0 + 1, i1 + 1] + c4 * S[1, i0, i1 + 9] + c4 * S[1, i0 + 1, i1 + 9]
                  + c5 * S[1, i0, i1 + 1] + c5 * S[1, i0 + 2, i1 + 1] + t0 * S[0, i0 + 1, i1 + 1])
            OUT[0, i0 + 1, i1 + 1] = S[0, i0 + 1, i1 + 1] + c * k0
            OUT[1, i0 + 1, i1 + 1] = S[1, i0 + 1, i1 + 1] + c * k1


@njit(**JIT)
def copy(S, OUT, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
    for i0 in range(n0):
        for i1 in range(n1):
            a = S[0, i0 + 1, i1 + 1]
            b = S[1, i0 + 1, i1 + 1]
            OUT[0, i0 + 1, i1 + 1] = a
            OUT[1, i0 + 1, i1 + 1] = b


VARIANTS = {"as_printed": as_printed, "factored": factored, "dt_folded": dt_folded, "tree": tree,
            "jam2": jam2, "recurrence": recurrence, "aligned_probe": aligned_probe, "copy": copy}
UNCHECKED = ("aligned_probe", "copy")  # not the same update: timing probes


def _driver(fn):
    @njit(nogil=True)
    def steps(S, O, n, c, F, c0, c1, c2, c3, c4, c5, n0, n1):
        for _ in range(n):
            fn(S, O, c, F, c0, c1, c2, c3, c4, c5, n0, n1)
            S, O = O, S
    return steps


def main() -> int:
    import pdeforge as pf

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, nargs="+", default=[64, 128, 512])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"Gray-Scott forward-Euler loop variants, one thread; {machine()}; load average {load_average()}")
    model = pf.models.get_model("gray-scott")
    system = model.system()
    kernel = pf.compile(system, target="numba")
    Du, Dv, F, k = (float(system.params[p]) for p in ("Du", "Dv", "F", "k"))
    for n in args.grid:
        grid = pf.UniformGrid.from_spec(system.domain, n)
        bound = kernel.bind(grid)
        ic = model.initial_condition(grid, system.params, seed=0)
        dt = 0.25 * (512 / n) ** 2
        hx, hy = (float(h) for h in bound.h)
        consts = (dt, F, -2 * Du / hy**2 - 2 * Du / hx**2 - F, Du / hy**2, Du / hx**2,
                  -2 * Dv / hy**2 - 2 * Dv / hx**2 - F - k, Dv / hy**2, Dv / hx**2, n, n)
        S, O = bound.new_aligned(), bound.new_aligned()
        bound.cells(S)[...] = np.stack([ic["u"], ic["v"]])
        bound.fill_ghosts(S, 0.0)
        gen = bound.kernel.module._stage_euler_ser
        def fresh(src):  # a line-aligned, page-staggered copy (what pf.solve steps on)
            out = bound.new_aligned()
            out[...] = src
            return out

        ref = fresh(O)
        gen(S, ref, 0.0, dt, bound.p, bound.h, *bound.coords)
        gen_drive = _generated_driver(gen)
        runs = {"generated": lambda m, A, B: gen_drive(A, B, m, dt, bound.p, bound.h, *bound.coords)}
        for name, fn in VARIANTS.items():
            out = fresh(O)
            fn(S, out, *consts)
            if name not in UNCHECKED:
                err = np.abs(bound.cells(out) - bound.cells(ref)).max() / np.abs(bound.cells(ref)).max()
                assert err < 1e-12, (name, err)
            drive = _driver(fn)
            runs[name] = lambda m, A, B, drive=drive: drive(A, B, m, *consts)
        steps = max(10, int(1e8 / n**2))
        best = dict.fromkeys(runs, math.inf)
        for _ in range(args.rounds):
            for name, run in runs.items():
                A, B = fresh(S), fresh(O)
                run(1, A, B)  # compile / warm
                t0 = time.thread_time()
                run(steps, A, B)
                best[name] = min(best[name], time.thread_time() - t0)
        rates = {name: n * n * steps / s / 1e6 for name, s in best.items()}
        parts = ", ".join(f"{name} {r:.0f}" for name, r in rates.items())
        print(f"{n}^2 ({steps} steps, best of {args.rounds}), Mcell-steps/s: {parts}; "
              f"load average {load_average()}", flush=True)
    return 0


def _generated_driver(gen):
    """``n`` steps of the generated stage from compiled code, as the variants are driven (the
    ghosts are left as first filled: this times the loop, the answers are checked above)."""
    @njit(nogil=True)
    def steps(S, O, n, dt, p, h, cx, cy):
        for _ in range(n):
            gen(S, O, 0.0, dt, p, h, cx, cy)
            S, O = O, S
    return steps


if __name__ == "__main__":
    sys.exit(main())

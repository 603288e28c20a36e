"""Cost of one spectral time step against its FFT-only lower bound.

For a 1-D Kuramoto-Sivashinsky system (``u_t = -u u_x - u_xx - u_xxxx`` on 32 pi, 256 points)
and Kolmogorov flow (256^2), ETDRK4 with a fixed step: the time per step of the solver's
stepper, the FFTs a step makes (per right-hand side times four), the bytes those FFTs read
and write, and the lower bound: the same FFTs back to back on the same arrays (ducc0, one
thread, called from Python as the solver calls them). What is above the bound is pointwise
work (the fused passes) and Python dispatch between the FFTs.

    python benchmarks/bench_spectral_step.py [--steps 400] [--rounds 3]

Prints the load average; figures from a loaded machine are provisional.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

common.pin_early("--cores", 1)

import numpy as np  # noqa: E402
from common import load_average, machine, table  # noqa: E402


def _cases():
    import pdeforge as pf
    from pdeforge.models import get_model

    L = 32 * math.pi
    ks = pf.PDESystem({"u": "-u*d(u, x) - d(u, x, 2) - d(u, x, 4)"}, domain=[(0.0, L)], bcs="periodic")
    yield "kuramoto-sivashinsky 256", ks, pf.UniformGrid.from_spec([(0.0, L)], (256,)), {"u": "cos(x/16)*(1 + sin(x/16))"}, 0.01
    system, defaults = get_model("kolmogorov-flow").setup(grid=256, seed=0)
    yield "kolmogorov-flow 256^2", system, defaults["grid"], defaults["ic"], 0.005


def fft_only(op, per_step: tuple[int, int], steps: int) -> float:
    """Seconds per step of the step's FFTs alone (inverse, forward), into preallocated arrays."""
    K = op.K
    a = np.random.default_rng(0).standard_normal(K.shape)
    A = K.rfft(a)
    inverse, forward = per_step
    started = time.perf_counter()
    for _ in range(steps):
        for _ in range(inverse):
            K.irfft(A, "bound_inverse")
        for _ in range(forward):
            K.rfft(a, "bound_forward")
    return (time.perf_counter() - started) / steps


def measure(steps: int, rounds: int) -> list[dict]:
    from pdeforge.solvers.spectral.solve import _compile_and_project, make_stepper

    rows = []
    for name, system, grid, ic, dt in _cases():
        _, op, _, uh = _compile_and_project(system, grid, ic, "numpy", None, "float64")
        op.K.workers = 1
        stepper = make_stepper(op, uh.copy(), 0.0, "etdrk4", dt)
        counts = op.transform_counts
        per_step = (4 * counts["inverse"], 4 * counts["forward"])
        best_step = best_fft = math.inf
        for _ in range(rounds):  # interleaved
            started = time.perf_counter()
            for _ in range(steps):
                stepper.step(dt)
            best_step = min(best_step, (time.perf_counter() - started) / steps)
            best_fft = min(best_fft, fft_only(op, per_step, steps))
        real, cplx = 8 * math.prod(op.K.shape), 16 * math.prod(op.K.kshape)
        rows.append({
            "case": name, "ffts_per_step": sum(per_step), "fft_MB_per_step": sum(per_step) * (real + cplx) / 1e6,
            "us_per_step": 1e6 * best_step, "fft_only_us": 1e6 * best_fft, "over_bound": best_step / best_fft,
        })
        print(f"{name}: {rows[-1]['us_per_step']:.1f} us/step, FFT-only bound {rows[-1]['fft_only_us']:.1f} us "
              f"({sum(per_step)} FFTs) -> {rows[-1]['over_bound']:.2f}x the bound (load {load_average()})", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=1, help="pin to this many cores (0: no pinning)")
    args = ap.parse_args()
    print(f"spectral step vs FFT-only bound; {machine()}; load average {load_average()}", flush=True)
    rows = measure(args.steps, args.rounds)
    print(table(rows, ["case", "ffts_per_step", "fft_MB_per_step", "us_per_step", "fft_only_us", "over_bound"]))
    print(f"load average {load_average()} at the end; figures from a loaded machine are provisional")
    common.save("spectral_step", rows, load_average_end=load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())

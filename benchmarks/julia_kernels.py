"""Julia (Symbolics build_function) kernels next to Numba kernels, in one process.

Times the right-hand side and the exact sparse Jacobian of the Symbolics.jl tutorial's
3-species reaction-diffusion model (symbolics-rd) and Gray-Scott on growing grids, and prints
Julia/Numba time ratios (below 1: Julia faster). Needs Julia (see the README's Julia section);
without it the script says so and exits 0.

    python benchmarks/julia_kernels.py [N ...]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import pdeforge as pf
from pdeforge.julia.environment import julia_available


def best_of(fn, repeat: int = 7) -> float:
    fn()  # warm-up (JIT of both sides)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(sizes: list[int]) -> int:
    if not julia_available():
        print("no Julia installation found: nothing to compare (set PDEFORGE_JULIA or put julia on PATH)")
        return 0
    from pdeforge.julia.bridge import session

    print(f"Julia threads: {session().threads}; load average at start {os.getloadavg()}")
    print(f"{'model':<14}{'N':>6}{'rhs numba':>12}{'rhs julia':>12}{'ratio':>8}{'jac numba':>12}{'jac julia':>12}{'ratio':>8}")
    rng = np.random.default_rng(0)
    for name in ("symbolics-rd", "gray-scott"):
        system = pf.models.get_model(name).system()
        for n in sizes:
            grid = pf.UniformGrid.from_spec(system.domain, (n, n))
            numba = pf.compile(system, target="numba").bind(grid)
            julia = pf.compile(system, target="julia").bind(grid)
            y = rng.random(numba.size)
            r = [best_of(lambda b=b: b.rhs(0.0, y)) for b in (numba, julia)]
            j = [best_of(lambda b=b: b.jacobian(0.0, y), 3) for b in (numba, julia)]
            print(f"{name:<14}{n:>6}{r[0] * 1e3:>10.3f}ms{r[1] * 1e3:>10.3f}ms{r[1] / r[0]:>8.2f}"
                  f"{j[0] * 1e3:>10.3f}ms{j[1] * 1e3:>10.3f}ms{j[1] / j[0]:>8.2f}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [32, 128, 512]))

"""ODE-PDE systems: the cost of a scalar and of the bordered preconditioner.

1. Right-hand side of ``u_t = D laplace(u) - a u + b A`` with ``A`` a scalar
   (``A' = a integral(u) - b A``: two compiled kernels and the lifting) against the same field
   equation with ``A`` a parameter (one kernel), numba, per call.
2. CVODE BDF on a 2-D exchange model with the bordered (Woodbury) preconditioner around the
   field preconditioners "split" and "lu", and without a preconditioner.

Timings interleave the variants round by round and keep the best of each (wall and process CPU
time); the load average is printed: on a shared machine the ratios are the figures to read.
Run pinned to one core: ``taskset -c 1 python benchmarks/bench_scalars.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np

import pdeforge as pf
from pdeforge.codegen.build import compile_system
from pdeforge.discretize.grid import UniformGrid

from common import machine, save, table


def _time(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def rhs_overhead(n: int = 256, calls: int = 20, rounds: int = 5) -> dict:
    coupled = pf.PDESystem({"u": "D*laplace(u) - a*u + b*A", "A": "a*integral(u) - b*A"}, scalars=("A",),
                           params={"D": 1e-3, "a": 1.0, "b": 0.5}, domain=[(0, 1), (0, 1)], bcs="neumann")
    plain = pf.PDESystem({"u": "D*laplace(u) - a*u + b*A"}, params={"D": 1e-3, "a": 1.0, "b": 0.5, "A": 0.3},
                         domain=[(0, 1), (0, 1)], bcs="neumann")
    grid = UniformGrid.from_spec(coupled.domain, (n, n))
    bc = compile_system(coupled, target="numba").bind(grid)
    bp = compile_system(plain, target="numba").bind(grid)
    y = np.random.default_rng(0).random(bc.size)
    bc.rhs(0.0, y), bp.rhs(0.0, y[:-1])
    best = {"scalar": [np.inf, np.inf], "parameter": [np.inf, np.inf]}
    for _ in range(rounds):
        for name, fn in (("scalar", lambda: [bc.rhs(0.0, y) for _ in range(calls)]),
                         ("parameter", lambda: [bp.rhs(0.0, y[:-1]) for _ in range(calls)])):
            w, c = _time(fn)
            best[name] = [min(best[name][0], w / calls), min(best[name][1], c / calls)]
    return {"grid": f"{n}x{n}", "rhs_scalar_ms": 1e3 * best["scalar"][0], "rhs_parameter_ms": 1e3 * best["parameter"][0],
            "ratio_wall": best["scalar"][0] / best["parameter"][0], "ratio_cpu": best["scalar"][1] / best["parameter"][1]}


def preconditioners(n: int = 64, rounds: int = 2) -> list[dict]:
    s = pf.PDESystem({"u": "D*laplace(u) - u + A", "A": "mean(u) - 2*A"}, scalars=("A",), params={"D": 0.05},
                     domain=[(0, 1), (0, 1)], bcs="neumann", ic={"u": "1 + cos(pi*x)*cos(pi*y)", "A": 0.0})
    ref = pf.solve(s, grid=(n, n), t_span=1.0, method=pf.RK45(rtol=1e-10, atol=1e-12), progress=False, output=pf.Output(save_every=1.0))
    rows = {}
    for _ in range(rounds):
        for pc in ("split", "lu", "none"):
            out = {}

            def run():
                out["ds"] = pf.solve(s, grid=(n, n), t_span=1.0, method=pf.BDF(rtol=1e-6, atol=1e-9, preconditioner=pc), progress=False, output=pf.Output(save_every=1.0))

            w, c = _time(run)
            ds = out["ds"]
            row = rows.setdefault(pc, {"preconditioner": pc, "wall_s": np.inf, "cpu_s": np.inf})
            row.update(wall_s=min(row["wall_s"], w), cpu_s=min(row["cpu_s"], c), steps=ds.attrs["steps"],
                       rhs_evals=ds.attrs["rhs_evaluations"], pc_solves=ds.attrs.get("preconditioner_solves", 0),
                       error_A=abs(float(ds.A[-1] - ref.A[-1])), error_u=float(np.max(np.abs(ds.u[-1] - ref.u[-1]))))
    return list(rows.values())


if __name__ == "__main__":
    print(machine())
    print("load average before:", os.getloadavg())
    over = rhs_overhead()
    print(table([over], list(over)))
    pcs = preconditioners()
    print(table(pcs, ["preconditioner", "wall_s", "cpu_s", "steps", "rhs_evals", "pc_solves", "error_A", "error_u"]))
    load = os.getloadavg()
    print("load average after:", load)
    save("scalars", [over, *pcs], load_average=list(load))

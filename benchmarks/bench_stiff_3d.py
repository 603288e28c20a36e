"""3-D stiff reaction-diffusion on the Krylov path: the symbolics-rd model extended to 3-D.

    A_t = D lap A + alpha1(x) - beta1 A - r1 A B + r2 C,  B_t = alpha2 - beta2 B - r1 A B + r2 C,
    C_t = alpha3 - beta3 C + r1 A B - r2 C,   zero flux on [0, 32]^3, alpha1 = 1 for x >= 25.6.

pdeforge's default implicit method (CVODE BDF, GMRES, split preconditioner whose transport
part is a 3-D DCT) at N^3 cells (3 N^3 unknowns; N = 64 gives 786 432). Prints the wall time,
counters and the peak resident memory of the process (ru_maxrss).

    python benchmarks/bench_stiff_3d.py [--grid 64] [--t-end 1] [--rtol 1e-6] [--atol 1e-8]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from common import machine, save


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=64)
    ap.add_argument("--t-end", type=float, default=1.0)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-8)
    args = ap.parse_args()
    import pdeforge as pf

    system = pf.PDESystem(
        {"A": "D*laplace(A) + Heaviside(x - 25.6, 1) - A - A*B + C",
         "B": "1 - B - A*B + C",
         "C": "1 - C + A*B - C"},
        params={"D": 100.0}, domain=[(0.0, 32.0)] * 3, bcs="neumann", name="symbolics-rd-3d")
    n = args.grid
    print(f"{machine()}; load average at start {os.getloadavg()}")
    t0 = time.perf_counter()
    ds = pf.solve(system, grid=n, t_span=(0, args.t_end), ic={"A": 0.0, "B": 0.0, "C": 0.0}, method=pf.BDF(rtol=args.rtol, atol=args.atol), progress=False, output=pf.Output(save_every=args.t_end))
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"N": n, "unknowns": 3 * n ** 3, "status": ds.attrs["status"], "stepping_s": ds.attrs["wall_time_s"],
           "total_s": total, "steps": ds.attrs["steps"], "rhs_evals": ds.attrs["rhs_evaluations"],
           "jac_evals": ds.attrs["jacobian_evaluations"], "transport": ds.attrs.get("transport_solver"),
           "peak_rss_mb": peak, "load_end": os.getloadavg()[0]}
    print(row)
    save("stiff_3d", [row], rtol=args.rtol, atol=args.atol, t_end=args.t_end)


if __name__ == "__main__":
    main()

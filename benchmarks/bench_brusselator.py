"""Benchmark: the stiff 2-D Brusselator of the MethodOfLines / DifferentialEquations.jl tutorials.

    u_t = 1 + u^2 v - 4.4 u + alpha lap u + f(x, y, t),   v_t = 3.4 u - u^2 v + alpha lap v,
    alpha = 10, periodic [0, 1]^2, f = 5 in the disc (x-0.3)^2 + (y-0.6)^2 <= 0.1^2 from t = 1.1,
    u0 = 22 (y(1-y))^1.5, v0 = 27 (x(1-x))^1.5, t in [0, 11.5].

pdeforge's default implicit method (``method="bdf"``: SUNDIALS CVODE, GMRES with the split
reaction x transport preconditioner from the exact Jacobian) against SciPy's BDF driven by
pdeforge's own compiled right-hand side and exact sparse Jacobian (``bound.rhs``,
``bound.jacobian``), same rtol/atol, same machine, interleaved. Answers must agree to 1e-3
relative. SciPy is skipped above ``--scipy-max`` (its sparse LU fill grows with N: 86-259 s
at N = 128 here).

    python benchmarks/bench_brusselator.py [--grids 32,64,128,256] [--rtol 1e-6] [--atol 1e-8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.integrate import solve_ivp

from common import machine, save, table

EQUATIONS = {
    "u": "1 + u**2*v - 4.4*u + alpha*laplace(u)"
         " + 5*Heaviside(t - 1.1, 1)*Heaviside(0.01 - (x - 0.3)**2 - (y - 0.6)**2, 1)",
    "v": "3.4*u - u**2*v + alpha*laplace(v)",
}


def brusselator():
    import pdeforge as pf

    return pf.PDESystem(EQUATIONS, params={"alpha": 10.0}, domain=[(0.0, 1.0), (0.0, 1.0)], bcs="periodic",
                        name="mol-brusselator")


def initial(grid) -> dict:
    X, Y = grid.mesh()
    return {"u": 22.0 * (Y * (1 - Y)) ** 1.5, "v": 27.0 * (X * (1 - X)) ** 1.5}


def run_pdeforge(system, grid, rtol, atol):
    import pdeforge as pf

    ds = pf.solve(system, grid=grid, t_span=(0, 11.5), ic=initial(grid), method=pf.BDF(rtol=rtol, atol=atol), progress=False, output=pf.Output(save_every=11.5))
    assert ds.attrs["status"] == "completed", ds.attrs["status"]
    y = np.stack([ds[f].isel(t=-1).values for f in ("u", "v")])
    return ds.attrs["wall_time_s"], y, ds.attrs


def run_scipy(system, grid, rtol, atol):
    import pdeforge as pf

    bound = pf.compile(system, target="numba").bind(grid)
    ic = initial(grid)
    y = np.stack([ic["u"], ic["v"]]).ravel()
    bound.rhs(0.0, y), bound.jacobian(0.0, y)  # compile outside the timing
    t0 = time.perf_counter()
    stats = {"nfev": 0, "njev": 0, "nlu": 0}
    for a, b in ((0.0, 1.1), (1.1, 11.5)):  # the source switches on at 1.1: SciPy restarts there too
        sol = solve_ivp(bound.rhs, (a, b), y, method="BDF", rtol=rtol, atol=atol, jac=bound.jacobian)
        assert sol.success, sol.message
        y = sol.y[:, -1].copy()
        for k in stats:
            stats[k] += getattr(sol, k)
    return time.perf_counter() - t0, y.reshape(2, *grid.shape), stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grids", default="32,64,128,256")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-8)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best of each side)")
    ap.add_argument("--scipy-max", type=int, default=128, help="largest N SciPy's BDF is run at")
    args = ap.parse_args()
    import pdeforge as pf

    system = brusselator()
    rows = []
    print(f"stiff Brusselator (MethodOfLines tutorial), t in [0, 11.5], rtol {args.rtol}, atol {args.atol}; "
          f"{machine()}; load average at start {os.getloadavg()}")
    for n in map(int, args.grids.split(",")):
        grid = pf.UniformGrid.from_spec(system.domain, n)
        run_pdeforge(system, pf.UniformGrid.from_spec(system.domain, 8), args.rtol, args.atol)  # compile once
        ours, theirs = [], []
        y_ours = y_scipy = None
        for _ in range(args.rounds):
            wall, y_ours, attrs = run_pdeforge(system, grid, args.rtol, args.atol)
            ours.append(wall)
            if n <= args.scipy_max:
                wall, y_scipy, stats = run_scipy(system, grid, args.rtol, args.atol)
                theirs.append(wall)
        row = {"N": n, "unknowns": 2 * n * n, "pdeforge_s": min(ours), "rhs_evals": attrs.get("rhs_evaluations"),
               "jac_evals": attrs.get("jacobian_evaluations"), "transport": attrs.get("transport_solver"),
               "load_1min": os.getloadavg()[0]}
        if theirs:
            diff = float(np.abs(y_ours - y_scipy).max() / np.abs(y_scipy).max())
            row.update(scipy_s=min(theirs), speedup=min(theirs) / min(ours), rel_diff=diff)
            assert diff < 1e-3, diff
        rows.append(row)
        print(table([row], list(row)), flush=True)
    print()
    print(table(rows, ["N", "unknowns", "pdeforge_s", "scipy_s", "speedup", "rel_diff", "rhs_evals", "jac_evals",
                       "transport", "load_1min"]))
    save("brusselator", rows, rtol=args.rtol, atol=args.atol, load_end=os.getloadavg())


if __name__ == "__main__":
    main()

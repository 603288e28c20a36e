"""Benchmark (b): the Symbolics.jl 3-species reaction-diffusion model with implicit BDF.

pdeforge (compiled right-hand side, exact sparse Jacobian) against the naive route a NumPy
user would write: a vectorised NumPy right-hand side of the same discretization and SciPy's
BDF with its default Jacobian (dense, by finite differences). Same tolerances; the answers
must agree to 1e-4. Symbolics.jl reports 157x for its traced sparse parallel version of
this model (N = 32, TRBDF2, 33.1 s -> 0.21 s).

    python benchmarks/bench_symbolics_rd.py [--grid 32] [--rtol 1e-6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

from common import machine, save, table


def naive_rhs_factory(n: int, params: dict):
    """NumPy right-hand side of the same cell-centred discretization (zero-flux mirror ghosts)."""
    D, a2, a3 = params["D"], params["alpha2"], params["alpha3"]
    b1, b2, b3, r1, r2 = (params[k] for k in ("beta1", "beta2", "beta3", "r1", "r2"))
    x = np.arange(1, n + 1) * (32 / n) + 0.5 - 0.5 * 32 / n  # cell centres on [0.5, 32.5]
    alpha1 = (x >= 4 * 32 / 5).astype(float)[:, None] * np.ones((1, n))
    h2 = (32 / n) ** 2

    def rhs(t, y):
        A, B, C = y.reshape(3, n, n)
        P = np.pad(A, 1, mode="edge")  # mirror about the face: ghost = first cell
        lap = (P[:-2, 1:-1] + P[2:, 1:-1] + P[1:-1, :-2] + P[1:-1, 2:] - 4 * A) / h2
        dA = D * lap + alpha1 - b1 * A - r1 * A * B + r2 * C
        dB = a2 - b2 * B - r1 * A * B + r2 * C
        dC = a3 - b3 * C + r1 * A * B - r2 * C
        return np.concatenate([dA.ravel(), dB.ravel(), dC.ravel()])

    return rhs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-8)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the pdeforge routes (best of each)")
    args = ap.parse_args()
    import os

    print(f"load average at start: {os.getloadavg()}")
    import pdeforge as pf

    model = pf.models.get_model("symbolics-rd")
    n = args.grid
    def ours_run(method):
        t0 = time.perf_counter()
        ds = pf.solve("symbolics-rd", grid=n, t_span=(0, 10), method=pf.methods.with_settings(method, rtol=args.rtol, atol=args.atol), progress=False, output=pf.Output(save_every=10))
        return ds, time.perf_counter() - t0

    ours_run("bdf"), ours_run("scipy-bdf")  # compile both outside the timings
    results = {m: [] for m in ("bdf", "scipy-bdf")}
    for _ in range(args.rounds):  # interleaved: A, B, A, B
        for m in results:
            results[m].append(ours_run(m))
    ds, total = min(results["bdf"], key=lambda r: r[0].attrs["wall_time_s"])
    ours = ds.attrs["wall_time_s"]
    ds_scipy = min(results["scipy-bdf"], key=lambda r: r[0].attrs["wall_time_s"])[0]
    y_ours = np.stack([ds[f].isel(t=-1).values for f in ("A", "B", "C")])

    rhs = naive_rhs_factory(n, model.params)
    y0 = np.zeros(3 * n * n)
    np.testing.assert_allclose(rhs(0.0, y0 + 0.3), pf.compile(model.system(), "numpy").bind(
        pf.UniformGrid.from_spec(model.domain, n)).rhs(0.0, y0 + 0.3), atol=1e-12)
    t0 = time.perf_counter()
    sol = solve_ivp(rhs, (0, 10), y0, method="BDF", rtol=args.rtol, atol=args.atol)
    naive = time.perf_counter() - t0
    y_naive = sol.y[:, -1].reshape(3, n, n)
    diff = float(np.abs(y_ours - y_naive).max())
    rows = [
        {"route": "pdeforge bdf: CVODE + GMRES, split preconditioner from the exact Jacobian", "seconds": ours,
         "rhs_evals": ds.attrs["rhs_evaluations"], "jac_evals": ds.attrs["jacobian_evaluations"], "speedup": naive / ours},
        {"route": "pdeforge scipy-bdf: compiled rhs + exact sparse Jacobian (SciPy BDF)",
         "seconds": ds_scipy.attrs["wall_time_s"], "rhs_evals": ds_scipy.attrs["rhs_evaluations"],
         "jac_evals": ds_scipy.attrs["jacobian_evaluations"], "speedup": naive / ds_scipy.attrs["wall_time_s"]},
        {"route": "naive: NumPy rhs + SciPy BDF, dense finite-difference Jacobian", "seconds": naive,
         "rhs_evals": sol.nfev, "jac_evals": sol.njev, "speedup": 1.0},
    ]
    print(f"symbolics-rd {n}x{n} (3 species, {3 * n * n} unknowns), t in [0, 10], rtol {args.rtol}, atol {args.atol}; "
          f"{machine()}")
    print(table(rows, ["route", "seconds", "rhs_evals", "jac_evals", "speedup"]))
    print(f"\nmax |difference| of the final states: {diff:.2e} (must be < 1e-4)")
    print(f"speedup {naive / ours:.0f}x time stepping, {naive / total:.0f}x including parse+compile+warm-up "
          f"({total - ours:.2f} s); Symbolics.jl reports 157x")
    assert diff < 1e-4, diff
    print(f"load average at end: {os.getloadavg()}")
    save("symbolics_rd", rows, grid=n, rtol=args.rtol, atol=args.atol, max_difference=diff,
         speedup=naive / ours, speedup_with_compile=naive / total, load_end=os.getloadavg())


if __name__ == "__main__":
    main()

"""Benchmark (c): time from PDESystem to the first step of Gray-Scott, cold and warm cache.

Each measurement runs in a fresh Python process (targets: cold < 3 s, warm < 0.5 s). "Cold" uses an empty kernel cache (parse,
discretize, simplify, generate, Numba compile); "warm" reuses the cache of the previous run
(parse, hash, import the cached module, Numba loads machine code from disk). Library imports
are timed separately. The whole ``pdeforge run gray-scott --grid 64 --t-end 10`` command (a
fresh process: imports, catalogue, compile or cache load, stepping, writing the file) is timed
cold and warm too. py-pde's cold start (PDE(...) to its first step, numba backend) is
measured the same way for comparison.

    python benchmarks/bench_startup.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import time
from pathlib import Path

from common import load_average, machine, save, table

PDEFORGE = r"""
import time, json
t0 = time.perf_counter()
import numpy as np, pdeforge as pf, pdeforge.solvers.solve, numba, sympy, xarray
xarray.Dataset({"a": ("x", np.zeros(2))})  # xarray imports its optional array backends on first use
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
gs = pf.PDESystem({"u": "Du*laplace(u) - u*v**2 + F*(1 - u)", "v": "Dv*laplace(v) + u*v**2 - (F + k)*v"},
                  params={"Du": 2e-5, "Dv": 1e-5, "F": 0.04, "k": 0.06}, domain=[(0, 2.5), (0, 2.5)], bcs="periodic")
ds = pf.solve(gs, grid=(256, 256), t_span=(0, 1.0), ic={"u": 1.0, "v": 0.0}, method="rk4", dt=1.0,
              output=pf.Output(save_every=1.0), progress=False)  # exactly one step
t_first = time.perf_counter() - t0
print(json.dumps({"import_s": t_import, "first_step_s": t_first, "compile_s": ds.attrs["compile_time_s"],
                  "cache_hit": ds.attrs["kernel_cache_hit"]}))
"""

PYPDE = r"""
import time, json, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import pde
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
grid = pde.CartesianGrid([(0, 2.5), (0, 2.5)], [256, 256], periodic=True)
eq = pde.PDE({"u": "2e-5*laplace(u) - u*v**2 + 0.04*(1 - u)", "v": "1e-5*laplace(v) + u*v**2 - 0.1*v"})
state = pde.FieldCollection([pde.ScalarField(grid, 1.0), pde.ScalarField(grid, 0.0)])
eq.solve(state, t_range=1.0, dt=1.0, solver="euler", tracker=None, backend="numba")
print(json.dumps({"import_s": t_import, "first_step_s": time.perf_counter() - t0}))
"""


def run(code: str, env: dict | None = None) -> dict:
    import os

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **(env or {})))
    return json.loads(out.stdout.strip().splitlines()[-1])


def command(env: dict) -> float:
    """Wall seconds of ``pdeforge run gray-scott --grid 64 --t-end 10`` in a fresh process."""
    import os

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pdeforge.cli", "run", "gray-scott", "--grid", "64", "--t-end", "10",
                        "--out", str(Path(tmp) / "gs.nc")], capture_output=True, text=True, check=True,
                       env=dict(os.environ, **env))
        return time.perf_counter() - started


def main():
    print(f"load average {load_average()} at the start", flush=True)
    cache = tempfile.mkdtemp(prefix="pdeforge-bench-cache-")
    env = {"PDEFORGE_CACHE_DIR": cache}
    cold = run(PDEFORGE, env)
    warm = min((run(PDEFORGE, env) for _ in range(3)), key=lambda r: r["first_step_s"])
    rows = [
        {"run": "pdeforge cold cache", **cold},
        {"run": "pdeforge warm cache", **warm},
    ]
    cli_env = {"PDEFORGE_CACHE_DIR": tempfile.mkdtemp(prefix="pdeforge-bench-cli-")}
    cli_cold = command(cli_env)
    cli_warm = min(command(cli_env) for _ in range(3))
    rows += [{"run": "pdeforge run (whole process) cold cache", "first_step_s": cli_cold},
             {"run": "pdeforge run (whole process) warm cache", "first_step_s": cli_warm}]
    try:
        rows.append({"run": "py-pde (numba, cold)", **run(PYPDE)})
    except (subprocess.CalledProcessError, ModuleNotFoundError):
        pass
    print(f"Gray-Scott 256x256: PDESystem -> first step, fresh processes; {machine()}")
    print(table(rows, ["run", "first_step_s", "compile_s", "import_s", "cache_hit"]))
    print(f"\ncold {cold['first_step_s']:.2f} s (target < 3 s), warm {warm['first_step_s']:.2f} s (target < 0.5 s); "
          f"pdeforge run, whole process: cold {cli_cold:.2f} s, warm {cli_warm:.2f} s (load {load_average()})")
    save("startup", rows, load_average_end=load_average())


if __name__ == "__main__":
    main()

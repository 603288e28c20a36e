"""All GPU checks of the spectral LES work in one script (under 2 minutes on one GPU).

Checks (each prints PASS/FAIL with its number; the exit status is the number of failures):

1. torch on the device, float64, against the numpy target: right-hand side of the 3-D
   Smagorinsky LES on 32^3 (relative difference <= 1e-12), and float32 (<= 1e-5);
2. the PINO residual of the exact 2-D Taylor-Green vortex on the device is second order in dt,
   its divergence at round-off, and autograd gives a finite gradient in the trajectory and Cs;
3. a Taylor-Green run on the device decays as exp(-2 nu |k|^2 t) at RK4's order;
4. a 32^3 les-hit run on the device matches the numpy run to round-off (float64) and stays
   divergence-free.

Then the throughput table (right-hand-side evaluations per second, as benchmarks/les_rhs.py,
with the device's rows added) and the wall time of a 64^3 les-hit run to t = 0.25 on the
device against numpy on the CPU. Usage (from the repository root)::

    PYTHONPATH=python python benchmarks/gpu_les.py            # device cuda
    PYTHONPATH=python python benchmarks/gpu_les.py --device cpu --quick   # dry run anywhere
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))
from common import load_average  # noqa: E402

FAILURES: list[str] = []
RESULTS: dict = {}


def check(name: str, ok: bool, detail: str) -> None:
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)
    RESULTS[name] = {"ok": bool(ok), "detail": detail}
    if not ok:
        FAILURES.append(name)


def agreement(device: str) -> None:
    import numpy as np
    import torch

    import pdeforge as pf

    system = pf.les_system(3, nu=1 / 64, Cs=0.1)
    n = 32
    ref_op = pf.spectral_operator(system, n)
    u = ref_op.project(np.random.default_rng(0).standard_normal((3, n, n, n)))
    ref = ref_op.rhs(u)
    scale = float(np.abs(ref).max())
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        op = pf.spectral_operator(system, n, target="torch", device=device, dtype=dtype)
        got = op.rhs(torch.from_numpy(u)).cpu().numpy()
        err = float(np.abs(got - ref).max()) / scale
        check(f"rhs torch {device} {dtype} = numpy", err <= tol, f"max relative difference {err:.2e} (tolerance {tol:g})")


def residual(device: str) -> None:
    import numpy as np
    import torch

    import pdeforge as pf

    nu = 0.1
    op = pf.spectral_operator(pf.les_system(2, nu=nu, Cs=0.0), 32, target="torch", device=device)
    x, y = op.grid.mesh()
    sizes = []
    for dt in (0.1, 0.05, 0.025):
        times = dt * np.arange(5)
        traj = np.stack([np.stack([np.sin(x) * np.cos(y), -np.cos(x) * np.sin(y)]) * math.exp(-2 * nu * t) for t in times])
        R, D = op.residual(torch.from_numpy(traj), dt)
        sizes.append(float(R.abs().max()))
        div = float(D.abs().max())
    orders = [math.log2(a / b) for a, b in zip(sizes, sizes[1:])]
    check(f"Taylor-Green residual on {device}", all(abs(o - 2) < 0.05 for o in orders) and div < 1e-12,
          f"max |R| {', '.join(f'{s:.2e}' for s in sizes)} (orders {', '.join(f'{o:.3f}' for o in orders)}), "
          f"max |div| {div:.1e}")
    op_cs = pf.spectral_operator(pf.les_system(2, nu=nu, Cs=0.1), 32, target="torch", device=device)
    traj = torch.tensor(np.random.default_rng(1).standard_normal((2, 5, 2, 32, 32)), device=device, requires_grad=True)
    cs = torch.tensor(0.1, dtype=torch.float64, device=device, requires_grad=True)
    R, D = op_cs.residual(traj, 0.02, params={"Cs": cs})
    ((R**2).mean() + (D**2).mean()).backward()
    ok = bool(torch.isfinite(traj.grad).all()) and cs.grad is not None and math.isfinite(float(cs.grad))
    check(f"autograd through the residual on {device}", ok, f"d loss / d Cs = {float(cs.grad):.4e}")


def taylor_green(device: str) -> None:
    import numpy as np

    import pdeforge as pf
    from pdeforge.models import get_model

    nu = 0.1
    system = pf.les_system(2, nu=nu, Cs=0.0)
    grid = pf.UniformGrid.from_spec(system.domain, 16)  # RK4 at dt = 0.5 is stable up to |k| = 5 here
    ic = get_model("taylor-green").initial_condition(grid)
    errors = []
    for dt in (0.5, 0.25, 0.125):
        ds = pf.solve(system, grid=grid, t_span=4.0, ic=ic, method=pf.RK4(stability="ignore"), dt=dt, progress=False, backend=pf.Torch(device=device), output=pf.Output(save_every=4.0))
        e = ds.energy.values
        errors.append(abs(e[-1] / (e[0] * math.exp(-4 * nu * 4.0)) - 1))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    check(f"Taylor-Green decay on {device} (rk4)", bool(np.all(np.abs(orders - 4) < 0.15)),
          f"energy errors {', '.join(f'{e:.2e}' for e in errors)}, orders {', '.join(f'{o:.2f}' for o in orders)}")


def hit_run(device: str, n: int) -> None:
    import numpy as np

    import pdeforge as pf

    kw = dict(grid=n, t_span=0.2, output=pf.Output(save_every=0.1), progress=False, seed=0, dt=0.01)
    a = pf.solve("les-hit", backend="numpy", **kw)
    b = pf.solve("les-hit", backend=pf.Torch(device=device), **kw)
    err = max(float(np.abs(a[f] - b[f]).max()) / float(np.abs(a[f]).max()) for f in "uvw")
    op = pf.spectral_operator(pf.les_system(3), n)
    u = np.stack([b[c].values for c in "uvw"], axis=1)
    div = float(np.abs(op.divergence(u)).max()) / math.sqrt(2 * float(b.enstrophy.max()))
    check(f"les-hit {n}^3 run torch {device} = numpy", err < 1e-11 and div < 1e-12,
          f"max relative difference {err:.2e}, max |div u| / |grad u| {div:.1e}")


def throughput(device: str, grids: list[int], rounds: int) -> None:
    from les_rhs import measure

    for n in grids:
        # torch-on-CPU rows only where they are quick; the numpy peers always
        devices = ["cpu", device] if device != "cpu" and n < 128 else [device]
        rows = measure(n, 1, devices, rounds if n < 128 else 2)
        base = rows[0]["seconds"]
        print(f"\n{n}^3 LES right-hand side (CPU rows single-threaded)")
        print(f"  {'implementation':<38} {'ms/rhs':>9} {'Mpoint-rhs/s':>13} {'vs hand numpy.fft':>18} {'max rel diff':>12}")
        for row in rows:
            print(f"  {row['name']:<38} {1e3 * row['seconds']:9.3f} {row['points_per_s'] / 1e6:13.2f} "
                  f"{base / row['seconds']:17.1f}x {row['rel_err']:12.1e}")
        RESULTS[f"throughput_{n}"] = [
            {"name": r["name"], "ms": 1e3 * r["seconds"], "mpoints_per_s": r["points_per_s"] / 1e6,
             "vs_hand": base / r["seconds"], "rel_err": r["rel_err"]} for r in rows
        ]


def solver_wall(device: str, n: int, t_end: float) -> None:
    import pdeforge as pf

    rows = []
    for backend, dev, dtype in (("numpy", None, "float64"), ("torch", device, "float64"), ("torch", device, "float32")):
        chosen = pf.NumPy(dtype=dtype) if backend == "numpy" else pf.Torch(device=dev, dtype=dtype)
        pf.solve("les-hit", grid=n, t_span=0.02, progress=False, backend=chosen)  # warm
        t0 = time.perf_counter()
        ds = pf.solve("les-hit", grid=n, t_span=t_end, progress=False, backend=chosen, output=pf.Output(save_every=t_end / 5))
        wall = time.perf_counter() - t0
        rows.append((f"{backend} {dev or 'cpu'} {dtype}", wall, ds.attrs["steps"], float(ds.energy[-1])))
    print(f"\nles-hit {n}^3 to t = {t_end:g} (CFL steps, diagnostics every frame)")
    for name, wall, steps, energy in rows:
        print(f"  {name:<28} {wall:8.2f} s  {steps} steps  {rows[0][1] / wall:6.1f}x numpy  final energy {energy:.6f}")
    RESULTS[f"solve_{n}"] = [{"name": r[0], "wall_s": r[1], "steps": r[2], "energy": r[3]} for r in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small grids (a dry run on a CPU)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PDEFORGE_CACHE_DIR", tempfile.mkdtemp(prefix="pdeforge-gpu-les-"))
    import numpy
    import scipy
    import sympy
    import torch

    started = time.perf_counter()
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}; torch {torch.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
          f"sympy {sympy.__version__}, {os.cpu_count()} CPUs; host load average {load_average()}", flush=True)
    agreement(args.device)
    residual(args.device)
    taylor_green(args.device)
    hit_run(args.device, 16 if args.quick else 32)
    throughput(args.device, [32] if args.quick else [32, 64, 128], 3 if args.quick else 5)
    solver_wall(args.device, 16 if args.quick else 64, 0.1 if args.quick else 0.25)
    print(f"\n{len(FAILURES)} failure(s); total {time.perf_counter() - started:.1f} s; host load average "
          f"{load_average()}")
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_les.json").write_text(json.dumps(RESULTS, indent=1))
    return len(FAILURES)


if __name__ == "__main__":
    sys.exit(main())

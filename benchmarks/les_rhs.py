"""LES right-hand-side throughput: generated spectral kernels against a hand-written NumPy peer.

The peer (benchmarks/les_handwritten.py) is the straightforward NumPy implementation of the
same equations: 3-D Smagorinsky LES, convective advection, 2/3-rule dealiasing, Leray
projection. It runs with ``numpy.fft`` as written, and once more with ``scipy.fft`` swapped in,
so the effect of code generation can be told apart from the choice of FFT library.

Every candidate is run on the same divergence-free random field, its result checked against
the peer's, and timed in interleaved rounds (median of the rounds), in one process.
Throughput is grid points times right-hand-side evaluations per second; one RK4 step is four
evaluations. Usage::

    python benchmarks/les_rhs.py                 # 32^3 and 64^3, one thread
    python benchmarks/les_rhs.py --grid 32 64 128 --threads 2 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))


def _candidates(n: int, threads: int, devices: list[str], rng):
    import numpy as np
    import scipy.fft

    import pdeforge as pf
    from les_handwritten import HandWrittenLES

    system = pf.les_system(3, nu=1 / 64, Cs=0.1)
    op = pf.spectral_operator(system, n)
    u = op.project(rng.standard_normal((3, n, n, n)))
    uh = op.to_spectral(u)
    out = []
    hw = HandWrittenLES(n, 1 / 64, 0.1)
    out.append(("hand-written NumPy (numpy.fft)", lambda: hw.rhs_hat(uh), lambda r: r, None))
    hw_sp = HandWrittenLES(n, 1 / 64, 0.1, fft=scipy.fft)
    out.append(("hand-written NumPy (scipy.fft)", lambda: hw_sp.rhs_hat(uh), lambda r: r, None))
    gen = pf.compile_spectral(system, "numpy").bind(n, workers=threads)
    buf = np.empty_like(uh)
    from pdeforge.codegen.spectral.backend import _ducc_fft

    fft = "ducc0" if gen.K.fft_library == "ducc0" and _ducc_fft() is not None else "scipy.fft"
    out.append((f"generated numpy ({fft})", lambda: gen.rhs_hat(uh, out=buf), lambda r: r, None))
    try:
        import torch
    except ImportError:
        return out, hw.rhs_hat(uh)
    torch.set_num_threads(threads)
    for device in devices:
        for dtype in ("float64", "float32"):
            opt = pf.spectral_operator(system, n, target="torch", device=device, dtype=dtype)
            uht = opt.K.asarray(uh, complex_=True)
            bt = torch.empty_like(uht)
            sync = torch.cuda.synchronize if device.startswith("cuda") else None

            def run(opt=opt, uht=uht, bt=bt):
                with torch.inference_mode():
                    return opt.rhs_hat(uht, out=bt)

            out.append((f"generated torch {device} {dtype}", run, lambda r: r.cpu().numpy(), sync))
    return out, hw.rhs_hat(uh)


def measure(n: int, threads: int, devices: list[str], rounds: int) -> list[dict]:
    """Median seconds per right-hand side of every candidate on an ``n^3`` grid."""
    import numpy as np

    rng = np.random.default_rng(0)
    cands, reference = _candidates(n, threads, devices, rng)
    scale = float(np.abs(reference).max())
    rows = []
    for name, fn, to_np, sync in cands:
        for _ in range(2):  # warm-up: plans, caches, CUDA kernels
            result = fn()
        if sync:
            sync()
        err = float(np.abs(to_np(result) - reference).max()) / scale
        rows.append({"name": name, "fn": fn, "sync": sync, "times": [], "rel_err": err})
    for _ in range(rounds):
        for row in rows:
            t0 = time.perf_counter()
            row["fn"]()
            if row["sync"]:
                row["sync"]()
            row["times"].append(time.perf_counter() - t0)
    for row in rows:
        row["seconds"] = statistics.median(row["times"])
        row["points_per_s"] = n**3 / row["seconds"]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--threads", type=int, default=1, help="threads of scipy.fft and torch (CPU)")
    parser.add_argument("--device", nargs="*", default=["cpu"], help="torch devices to time (cpu, cuda)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}")
    print(f"LES right-hand side (3-D Smagorinsky, 2/3 dealiasing, projection), threads = {args.threads}, "
          f"median of {args.rounds} interleaved rounds")
    for n in args.grid:
        rows = measure(n, args.threads, args.device, args.rounds)
        base = rows[0]["seconds"]
        print(f"\n{n}^3 grid")
        print(f"  {'implementation':<36} {'ms/rhs':>9} {'Mpoint-rhs/s':>13} {'RK4 Mpoint-steps/s':>19} "
              f"{'speed vs hand (numpy.fft)':>26} {'max rel diff':>13}")
        for row in rows:
            print(f"  {row['name']:<36} {1e3 * row['seconds']:9.2f} {row['points_per_s'] / 1e6:13.2f} "
                  f"{row['points_per_s'] / 4e6:19.2f} {base / row['seconds']:25.2f}x {row['rel_err']:13.1e}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

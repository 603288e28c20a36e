"""Throughput of the generated PyTorch kernels against the Numba and NumPy kernels (Gray-Scott).

The same symbolic Gray-Scott system is compiled for each target; each is stepped with RK4
through the same fused-stage interface the solver uses, on the same grid, in this process.
Reported: cell-steps per second (cells x RK4 steps / wall seconds) and ratios to Numba.

    python benchmarks/torch_target.py [--grid 256] [--steps 100] [--device cpu|cuda] [--threads N]
        [--targets numba,numpy,torch,torch-f32]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _rate(bound, cells, steps: int, dt: float, sync=None) -> tuple[float, np.ndarray]:
    from pdeforge.solvers.explicit.runge_kutta import FixedStepRK

    if bound.kernel.target == "torch":
        from pdeforge.solvers.explicit.torch_runge_kutta import TorchFixedStepRK as Stepper
    else:
        Stepper = FixedStepRK
    stepper = Stepper(bound, cells, 0.0, dt, "rk4")
    bound.warm_up(stepper.kernels_used())
    stepper._rk4(0.0, dt)  # first call (allocations, JIT) outside the timing
    if sync:
        sync()
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(steps):
            stepper._rk4(i * dt, dt)
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return bound.grid.size * steps / best, np.array(stepper.cells(), copy=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--targets", default="numba,numpy,torch,torch-f32", help="comma-separated subset")
    args = parser.parse_args(argv)
    wanted = set(args.targets.split(","))

    import torch

    import pdeforge as pf
    from pdeforge.codegen.build import compile_system
    from pdeforge.models import get_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = get_model("gray-scott")
    system, defaults = model.setup(grid=args.grid)
    grid = defaults["grid"]
    cells = np.stack([defaults["ic"][f] for f in system.fields])
    # RK4 is stable for 2-D diffusion up to dt = 0.35 h^2 / D: dt 1 (the model's) up to 256^2,
    # smaller on finer grids, so every target steps a finite state (NaN arithmetic times differently)
    h = min(grid.spacing)
    dt = min(1.0, 0.25 * h**2 / max(system.params["Du"], system.params["Dv"]))
    rows = []
    results = {}
    for name, target, options in (("numba", "numba", {}), ("numpy", "numpy", {}), ("torch", "torch", {"device": args.device}),
                                  ("torch-f32", "torch", {"device": args.device, "dtype": "float32"})):
        if name not in wanted:
            continue
        bound = compile_system(system, target).bind(grid, **options)
        sync = torch.cuda.synchronize if "cuda" in str(options.get("device", "")) else None
        steps = args.steps if target != "numpy" else max(10, args.steps // 4)
        rate, final = _rate(bound, cells, steps, dt, sync)
        if not np.isfinite(final).all():
            raise SystemExit(f"{name}: non-finite state after the timed steps (dt {dt:g}); the timing is void")
        label = target + (f" {options['device']}" if "device" in options else "") + (
            f" {options['dtype']}" if "dtype" in options else "")
        results[label] = (rate, final, steps)
        rows.append(label)
    base = results["numba"][0] if "numba" in results else next(iter(results.values()))[0]
    print(f"Gray-Scott {args.grid}x{args.grid}, RK4 dt {dt:.3g}, torch threads {torch.get_num_threads()}, pdeforge {pf.__version__}; "
          f"load average {os.getloadavg()}")
    print(f"{'target':<22} {'cell-steps/s':>14} {'vs numba':>9}")
    for label in rows:
        rate = results[label][0]
        print(f"{label:<22} {rate:14.3e} {rate / base:9.2f}")
    # same trajectory: numba and torch float64 after the same number of steps
    if "numba" in results and f"torch {args.device}" in results:
        nb = results["numba"][1]
        tf = results[f"torch {args.device}"][1]
        if results["numba"][2] == results[f"torch {args.device}"][2]:
            print(f"max |torch - numba| after the timed steps: {np.abs(nb - tf).max():.2e}")


if __name__ == "__main__":
    main()

"""PINO inference against the pdeforge LES solver for the same horizon (wall time, ratio).

The cost of an FNO forward pass does not depend on its weights, so the network here is
untrained (seeded): what is measured is the time to produce ``windows * steps_out`` frames of
``dt`` by autoregressive inference, against the generated pseudo-spectral RK4 solver (CFL
step, frames saved every ``dt``, no diagnostics) from the same field over the same horizon.
Both sides are warmed up (compilation, FFT plans, CUDA context) before timing; runs are
interleaved and the best of ``--repeat`` is kept. Besides wall time, the process CPU time of
each side is reported (on CPU; a loaded machine preempts both, and CPU time does not count
that): for the solver, the CPU time of the run minus that of a run over two frames (what
remains is the stepping, without setup and output, and slightly less than the whole
horizon: the ratio is conservative). Pin the process to one core (``taskset -c N``) so that
neither side runs threads the other does not.

    python benchmarks/pino_inference.py                      # CPU: 2-D 32^2, 2-D 64^2, LESnets 3-D 32^3
    python benchmarks/pino_inference.py --device cuda --threads 0
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: (label, dim, grid, width, layers, modes, dt, steps_out, windows[, lifting ratio, default 2]).
#: The 2-D cases use the example's network (width 24, 4 layers, a linear lifting: lifting ratio
#: 0), modes scaled with the grid; "w32" is a wider network of 32 channels.
CASES = [
    ("2-D example", 2, 32, 24, 4, 20, 0.05, 10, 4, 0),
    ("2-D 64^2", 2, 64, 24, 4, 16, 0.05, 10, 4, 0),
    ("2-D 64^2 w32", 2, 64, 32, 4, 16, 0.05, 10, 4),
    ("2-D 64^2 m42", 2, 64, 24, 4, 42, 0.05, 10, 4, 0),
    ("2-D 128^2", 2, 128, 24, 4, 16, 0.05, 10, 4, 0),
    ("LESnets 3-D", 3, 32, 80, 6, 12, 0.02, 10, 5),
]


def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def measure(case, device: str = "cpu", repeat: int = 3, solver_backends=("numpy", "torch"), fno: str = "auto") -> dict:
    """Inference and solver wall times of one case (see :data:`CASES`)."""
    import torch

    from pdeforge.models.les import les_system
    from pdeforge.neural.pino import PINOConfig, PINOTrainer
    from pdeforge.neural.pino_data import solver_reference, spun_up_fields

    label, dim, grid, width, layers, modes, dt, steps_out, windows, *rest = case
    lifting = rest[0] if rest else 2
    system = les_system(dim, nu=1 / 64, Cs=0.1)
    u0 = spun_up_fields(system, grid, 1, 1, 0.0, seed=7)[0]
    horizon = windows * steps_out * dt
    trainer = PINOTrainer(system, grid, PINOConfig(steps_out=steps_out, dt=dt, width=width, layers=layers, modes=modes,
                                                   lifting_ratio=lifting, fno=fno), device=device, seed=0)
    trainer.rollout(u0[None], 1)
    _sync(device)
    backends = [b for b in solver_backends
                if not (b == "numpy" and str(device).startswith("cuda") and dim == 3 and grid > 64)]
    for backend in backends:  # compile, FFT plans
        solver_reference(system, grid, u0, 2 * dt, dt, backend=backend, device=device if backend == "torch" else None,
                         dtype="float32" if backend == "torch" else "float64")
    infer = infer_cpu = np.inf
    keys = [f"{b} ({device if b == 'torch' else 'cpu'})" for b in backends]
    solver = dict.fromkeys(keys, np.inf)
    solver_cpu = dict.fromkeys(keys, np.inf)
    for _ in range(repeat):  # interleaved, best of each: a loaded machine slows both alike
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.rollout(u0[None], windows)
        _sync(device)
        infer = min(infer, time.perf_counter() - t0)
        infer_cpu = min(infer_cpu, time.process_time() - c0)
        for backend, key in zip(backends, keys):
            dev = device if backend == "torch" else None
            dtype = "float32" if backend == "torch" else "float64"
            c0 = time.process_time()
            solver_reference(system, grid, u0, 2 * dt, dt, backend=backend, device=dev, dtype=dtype)
            c1 = time.process_time()
            _, wall = solver_reference(system, grid, u0, horizon, dt, backend=backend, device=dev, dtype=dtype)
            c2 = time.process_time()
            solver[key] = min(solver[key], wall)
            solver_cpu[key] = min(solver_cpu[key], (c2 - c1) - (c1 - c0))
    params = sum(p.numel() for p in trainer.model.parameters())
    return {"label": label, "grid": f"{grid}^{dim}", "params": params, "fno": trainer.model.fno_backend, "horizon": horizon,
            "frames": windows * steps_out, "inference_s": infer, "solver_s": solver, "inference_cpu_s": infer_cpu,
            "solver_cpu_s": solver_cpu, "modes": modes}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cases", default=",".join(c[0] for c in CASES), help="comma-separated case labels")
    p.add_argument("--fno", default="auto", choices=("auto", "neuralop", "builtin"))
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = [c.strip() for c in args.cases.split(",")]
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"PINO (FNO float32, taylor ansatz) inference vs pdeforge LES solver (RK4, CFL step), device {args.device}, "
          f"torch threads {torch.get_num_threads()}, {cpus} core(s) allowed, load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<13} {'fno':>8} {'grid':>6} {'modes':>5} {'params':>8} {'horizon':>8} {'frames':>6} {'PINO':>10}"
          "  solver (ratio solver/PINO); wall, then CPU time")
    for case in CASES:
        if case[0] not in wanted:
            continue
        r = measure(case, args.device, args.repeat, fno=args.fno)
        solver = ", ".join(f"{k} {v * 1e3:.1f} ms ({v / r['inference_s']:.1f}x)" for k, v in r["solver_s"].items())
        cpu = ", ".join(f"{k} {v * 1e3:.1f} ms ({v / r['inference_cpu_s']:.1f}x)" for k, v in r["solver_cpu_s"].items())
        print(f"{r['label']:<13} {r['fno']:>8} {r['grid']:>6} {r['modes']:5d} {r['params'] / 1e6:7.2f}M {r['horizon']:8.2f} "
              f"{r['frames']:6d} {r['inference_s'] * 1e3:8.1f}ms  {solver}", flush=True)
        if not str(args.device).startswith("cuda"):
            print(f"{'':<13} {'CPU time':>8} {'':>6} {'':>5} {'':>8} {'':>8} {'':>6} {r['inference_cpu_s'] * 1e3:8.1f}ms  {cpu}",
                  flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

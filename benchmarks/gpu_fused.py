"""Fused (torch.compile) against eager torch and Numba: Gray-Scott RK4, and the differentiable solve.

One short script for a GPU (CUDA) or the CPU, printing a log to keep under benchmarks/results/:

1. Memory bandwidth measured in the same run: a large device-to-device copy (GPU: HBM;
   CPU: DRAM, a copy larger than the caches), read + write bytes over the best time.
2. Gray-Scott RK4 cell-steps/s at the given grids and dtypes: eager torch (fused stages,
   one launch per tensor operation), torch.compile-d whole steps (Inductor: Triton on GPU,
   C++/OpenMP on CPU; ``--mode reduce-overhead`` adds CUDA graphs), and Numba on CPU. Each
   variant is timed A, B, A, B ... and the best of each kept (a shared machine's load varies;
   the load average is printed). Bytes per cell-step are stated for the stage-fused RK4
   (3 stage_two passes reading S, Y0, A and writing OUT, OUTA, one stage_axpy reading S, A and
   writing OUT: 18 arrays x fields x itemsize) and give the bandwidth roofline.
3. The differentiable solve (:func:`pdeforge.neural.differentiable_solve`, checkpointed):
   forward and backward time, and memory: CUDA peak allocation on a GPU; on the CPU the bytes
   autograd keeps (the segment states of the forward plus one recomputed segment), against one
   state times sqrt(steps).

    python benchmarks/gpu_fused.py                       # CPU: 256^2 and 512^2, float64
    python benchmarks/gpu_fused.py --device cuda --grids 512,1024,2048,4096 --dtypes float32,float64
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bandwidth(device, nbytes: int, repeats: int = 5) -> float:
    """Bytes per second of ``dst.copy_(src)`` for ``nbytes`` buffers (read + write counted)."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(device)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def _runner(variant: str, system, grid, cells, dt, device, dtype, mode):
    """A function ``run(steps) -> seconds`` for one variant, warmed up (compiled) already."""
    from pdeforge.codegen.build import compile_system
    from pdeforge.solvers.explicit.torch_runge_kutta import TorchFixedStepRK
    from pdeforge.solvers.explicit.runge_kutta import FixedStepRK

    if variant == "numba":
        bound = compile_system(system, "numba").bind(grid)
        stepper = FixedStepRK(bound, cells, 0.0, dt, "rk4")
        bound.warm_up(("rk4:serial", "rk4:parallel") if bound.parallel else ("rk4:serial",))

        def run(n):
            t0 = time.perf_counter()
            bound.advance_compiled("rk4", stepper.buf, 0.0, dt, n)
            return time.perf_counter() - t0

        return run, lambda: np.array(stepper.cells(), copy=True)
    compiled = variant == "compiled"
    bound = compile_system(system, "torch").bind(grid, device=device, dtype=dtype,
                                                 torch_compile=(mode or True) if compiled else False)
    stepper = TorchFixedStepRK(bound, cells, 0.0, dt, "rk4")
    bound.warm_up(stepper.kernels_used())

    def run(n):
        _sync(bound.device)
        t0 = time.perf_counter()
        if compiled:
            bound.advance_compiled("rk4", stepper.buf, 0.0, dt, n)
        else:
            for i in range(n):
                stepper._rk4(i * dt, dt)
        _sync(bound.device)
        return time.perf_counter() - t0

    run(1)
    return run, lambda: np.array(stepper.cells(), copy=True)


def gray_scott(grids, dtypes, device, steps: int, rounds: int, mode, variants) -> list[dict]:
    from pdeforge.models import get_model

    model = get_model("gray-scott")
    rows = []
    for n in grids:
        system, defaults = model.setup(grid=n)
        grid = defaults["grid"]
        cells = np.stack([defaults["ic"][f] for f in system.fields])
        h = min(grid.spacing)
        dt = min(1.0, 0.25 * h**2 / max(system.params["Du"], system.params["Dv"]))
        for dtype in dtypes:
            runs = {}
            for v in variants:
                if v == "numba" and (device.type != "cpu" or dtype != "float64"):
                    continue
                t0 = time.perf_counter()
                runs[v] = _runner(v, system, grid, cells, dt, device, dtype, mode)
                print(f"  {n}^2 {dtype} {v}: ready in {time.perf_counter() - t0:.1f} s (compile/warm-up)", flush=True)
            best = {v: math.inf for v in runs}
            for _ in range(rounds):  # A, B, C, A, B, C, ...
                for v, (run, _) in runs.items():
                    best[v] = min(best[v], run(steps))
            itemsize = 4 if dtype == "float32" else 8
            bytes_per = 18 * len(system.fields) * itemsize
            finals = {v: get() for v, (_, get) in runs.items()}
            for v in runs:
                if not np.isfinite(finals[v]).all():
                    raise SystemExit(f"{v} {n}^2 {dtype}: non-finite state; the timing is void")
            for v in runs:
                rows.append({"grid": n, "dtype": dtype, "variant": v, "cell_steps_s": grid.size * steps / best[v],
                             "bytes_per_cell_step": bytes_per})
    return rows


def differentiable(n: int, steps: int, device, dtype: str) -> dict:
    import torch

    from pdeforge.models import get_model
    from pdeforge.neural.differentiable import differentiable_solve, saved_bytes

    model = get_model("gray-scott")
    system, defaults = model.setup(grid=n)
    ic = {f: torch.as_tensor(defaults["ic"][f]) for f in system.fields}
    F = torch.tensor(0.04, dtype=getattr(torch, dtype), requires_grad=True)
    dt = 1.0
    import pdeforge as pf

    kw = dict(method="rk4", dt=dt, output=pf.Output(save_every=steps * dt),
              backend=pf.Torch(device=device, dtype=dtype))
    state = len(system.fields) * n * n * (4 if dtype == "float32" else 8)
    best_f = best_b = math.inf
    for _ in range(2):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        t0 = time.perf_counter()
        out = differentiable_solve(system, n, steps * dt, ic, params={"F": F}, **kw)
        loss = (out[-1, 1] ** 2).sum()
        _sync(device)
        t1 = time.perf_counter()
        loss.backward()
        _sync(device)
        t2 = time.perf_counter()
        best_f, best_b = min(best_f, t1 - t0), min(best_b, t2 - t1)
        F.grad = None
    with torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        differentiable_solve(system, n, steps * dt, ic, params={"F": F.detach()}, **kw)
        _sync(device)
        plain = time.perf_counter() - t0
    with saved_bytes() as outer:
        differentiable_solve(system, n, steps * dt, ic, params={"F": F}, **kw)
    seg = math.ceil(math.sqrt(steps))
    with saved_bytes() as one:
        differentiable_solve(system, n, seg * dt, ic, params={"F": F},
                             **{**kw, "output": pf.Output(save_every=seg * dt), "checkpoint": False})
    row = {"grid": n, "steps": steps, "forward_s": best_f, "backward_s": best_b, "no_grad_forward_s": plain,
           "saved_bytes_peak": outer["bytes"] + one["bytes"], "state_bytes": state,
           "sqrt_steps": math.sqrt(steps)}
    if device.type == "cuda":
        row["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--grids", default=None, help="comma-separated (default: 256,512 on CPU; 512..4096 on GPU)")
    p.add_argument("--dtypes", default=None, help="default: float64 on CPU; float32,float64 on GPU")
    p.add_argument("--steps", type=int, default=None, help="RK4 steps per timing (default 20 CPU, 200 GPU)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--mode", default=None, help="torch.compile mode (e.g. reduce-overhead)")
    p.add_argument("--variants", default="eager,compiled,numba")
    p.add_argument("--diff-grid", type=int, default=None, help="differentiable solve grid (128 CPU, 1024 GPU)")
    p.add_argument("--diff-steps", type=int, default=100)
    args = p.parse_args(argv)

    import torch

    import pdeforge as pf

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    grids = [int(g) for g in (args.grids or ("512,1024,2048,4096" if gpu else "256,512")).split(",")]
    dtypes = (args.dtypes or ("float32,float64" if gpu else "float64")).split(",")
    steps = args.steps or (200 if gpu else 20)
    print(f"pdeforge {pf.__version__}, torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if gpu else f", {torch.get_num_threads()} torch threads")
          + f", load average {os.getloadavg()}", flush=True)
    bw = bandwidth(device, (1 << 30) if gpu else (1 << 28))
    print(f"measured copy bandwidth: {bw / 1e9:.1f} GB/s (read + write)", flush=True)
    rows = gray_scott(grids, dtypes, device, steps, args.rounds, args.mode, args.variants.split(","))
    print(f"\nGray-Scott RK4, {steps} steps per timing, best of {args.rounds} interleaved rounds; "
          f"load average {os.getloadavg()}")
    print(f"{'grid':>6} {'dtype':>8} {'variant':>9} {'cell-steps/s':>13} {'B/cell-step':>12} {'% roofline':>11} "
          f"{'vs eager':>9} {'vs numba':>9}")
    for r in rows:
        same = [q for q in rows if q["grid"] == r["grid"] and q["dtype"] == r["dtype"]]
        eager = next((q["cell_steps_s"] for q in same if q["variant"] == "eager"), math.nan)
        numba = next((q["cell_steps_s"] for q in same if q["variant"] == "numba"), math.nan)
        roof = bw / r["bytes_per_cell_step"]
        print(f"{r['grid']:>6} {r['dtype']:>8} {r['variant']:>9} {r['cell_steps_s']:13.3e} {r['bytes_per_cell_step']:12d} "
              f"{100 * r['cell_steps_s'] / roof:10.1f}% {r['cell_steps_s'] / eager:9.2f} {r['cell_steps_s'] / numba:9.2f}")
    d = differentiable(args.diff_grid or (1024 if gpu else 128), args.diff_steps, device, "float64")
    print(f"\ndifferentiable solve, Gray-Scott {d['grid']}^2 float64, {d['steps']} RK4 steps, checkpointed "
          f"(segments of {math.ceil(d['sqrt_steps'])} steps); load average {os.getloadavg()}")
    print(f"  forward {d['forward_s']:.3f} s (no-grad forward {d['no_grad_forward_s']:.3f} s), backward "
          f"{d['backward_s']:.3f} s: backward / forward = {d['backward_s'] / d['forward_s']:.2f}")
    print(f"  memory autograd keeps at its peak: {d['saved_bytes_peak'] / 2**20:.1f} MiB = "
          f"{d['saved_bytes_peak'] / (d['state_bytes'] * d['sqrt_steps']):.2f} x (one state x sqrt(steps))")
    if "cuda_peak_bytes" in d:
        print(f"  CUDA peak allocation {d['cuda_peak_bytes'] / 2**20:.1f} MiB = "
              f"{d['cuda_peak_bytes'] / (d['state_bytes'] * d['sqrt_steps']):.2f} x (one state x sqrt(steps))")


if __name__ == "__main__":
    main()

"""CPU time of the stepping alone: Smagorinsky formula vs a learned MLP closure, both in Numba.

    taskset -c 1 python benchmarks/learned_closure_cpu.py [--grid 64] [--steps 300] [--rounds 5]

The same compiled RK4 loops ``pf.solve`` uses (:meth:`BoundKernel.advance_compiled`), warmed up
first, then interleaved A, B, A, B rounds; best wall and process CPU time of each, and the load
average, are printed. The network is trained briefly on Smagorinsky pairs (its speed does not
depend on how well it fits).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--hidden", type=int, default=24)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--activation", default="relu")
    args = p.parse_args(argv)

    import torch

    import pdeforge as pf
    from pdeforge.models import get_model
    from pdeforge.models.burgers_les import closure_system
    from pdeforge.neural.closures import MLPClosure, SmagorinskyViscosity, gradient_samples, train_closure

    model = get_model("burgers-les")
    params = model.params
    run = pf.solve("burgers-les", grid=args.grid, t_span=1.0, seed=1, progress=False, output=pf.Output(save_every=0.5))
    inputs = gradient_samples(run)
    targets = SmagorinskyViscosity(params["Cs"], params["Delta"])(torch.as_tensor(inputs)).numpy()
    net = MLPClosure(4, hidden=args.hidden, layers=args.layers, activation=args.activation, seed=0)
    train_closure(net, inputs, targets, steps=300, batch=2048, seed=0, progress=False)

    system, defaults = model.setup(grid=args.grid)
    grid = defaults["grid"]
    kernels = {
        "formula": pf.compile(system, "numba").bind(grid),
        "learned": pf.compile(closure_system(params["nu"]), "numba", closures={"nu_t": net}).bind(grid),
    }
    cells = np.stack([run.u.values[0], run.v.values[0]])
    buffers = {}
    for name, bound in kernels.items():
        bound.warm_up(("rk4:serial",))
        buffers[name] = [bound.new_padded() for _ in range(5)]
    best = {name: [np.inf, np.inf] for name in kernels}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, bound in kernels.items():
            bufs = buffers[name]
            bound.cells(bufs[0])[...] = cells
            w0, c0 = time.perf_counter(), time.process_time()
            bound.advance_compiled("rk4", bufs, 0.0, model.dt, args.steps, parallel=False)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
        loads.append(os.getloadavg()[0])
    f, g = best["formula"], best["learned"]
    print(f"burgers-les {args.grid}^2, {args.steps} RK4 steps, serial Numba loops; {args.rounds} interleaved rounds, "
          f"best of each; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
    print(f"formula: wall {f[0]:.4f} s, cpu {f[1]:.4f} s")
    print(f"learned ({args.layers}x{args.hidden} {args.activation}): wall {g[0]:.4f} s, cpu {g[1]:.4f} s")
    print(f"learned / formula: wall {g[0] / f[0]:.2f}, cpu {g[1] / f[1]:.2f}")
    return {"formula": f, "learned": g, "load": loads}


if __name__ == "__main__":
    main()

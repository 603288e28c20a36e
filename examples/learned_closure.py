"""A neural network in place of the Smagorinsky eddy viscosity, inside the generated solver.

    python examples/learned_closure.py [--grid 64] [--t-end 3] [--steps 800] [--device cpu] [--compile]

1. Reference: the ``burgers-les`` model (2-D Burgers turbulence, nu_t = (Cs Delta)^2 |S| in
   flux form), solved with generated Numba kernels from several seeded random starts.
2. Training pairs: velocity gradients (u_x, u_y, v_x, v_y) of the training runs and the
   Smagorinsky nu_t they give; a 2 x 32 MLP learns nu_t from them.
3. The same equations with nu_t a *closure term* (``nu_t(d(u,x), d(u,y), d(v,x), d(v,y))``),
   compiled for the torch target with the network bound to it: the generated kernel calls the
   network on every cell face where the flux form needs nu_t. Solved from a held-out start and
   compared with the Smagorinsky run, with the eager torch stages on one intra-op thread for
   this small grid (:func:`pdeforge.codegen.torch_fused.thread_count`). ``--compile`` steps with
   ``torch.compile``-d RK4 steps instead (measured slower here on CPU with the network inside:
   see the README).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--t-end", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=800, help="Adam steps")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--train-runs", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile-d RK4 steps instead of eager stages")
    args = p.parse_args(argv)

    import torch

    import pdeforge as pf
    from pdeforge.models import get_model
    from pdeforge.models.burgers_les import closure_system
    from pdeforge.neural.closures import MLPClosure, SmagorinskyViscosity, gradient_samples, relative_l2, train_closure

    if args.threads:
        torch.set_num_threads(args.threads)
    params = get_model("burgers-les").params
    kw = dict(grid=args.grid, t_span=args.t_end, save_every=args.t_end / 4, progress=False)
    train_runs = [pf.solve("burgers-les", seed=s, **kw) for s in range(1, 1 + args.train_runs)]
    reference = pf.solve("burgers-les", seed=0, **kw)
    smagorinsky = SmagorinskyViscosity(params["Cs"], params["Delta"])
    inputs = np.concatenate([gradient_samples(ds) for ds in train_runs])
    targets = smagorinsky(torch.as_tensor(inputs)).numpy()
    net = MLPClosure(4, hidden=args.hidden, layers=2, seed=0)
    t0 = time.perf_counter()
    history = train_closure(net, inputs, targets, steps=args.steps, batch=2048, seed=0, device=args.device)
    train_s = time.perf_counter() - t0
    held_out = gradient_samples(reference)
    with torch.no_grad():
        predicted = net(torch.as_tensor(held_out, dtype=torch.float32, device=args.device))[:, 0].cpu()
    nu_t_error = relative_l2(predicted, smagorinsky(torch.as_tensor(held_out)))
    print(f"MLP {args.hidden}x2 ({sum(q.numel() for q in net.parameters())} weights) on {len(inputs)} samples, "
          f"{args.steps} steps in {train_s:.1f} s: loss {history[0]:.2e} -> {history[-1]:.2e}; "
          f"held-out nu_t relative L2 error {nu_t_error:.4f}")

    learned = pf.solve(
        closure_system(params["nu"]), grid=args.grid, t_span=args.t_end, save_every=args.t_end / 4, method="rk4",
        dt=get_model("burgers-les").dt, ic={"u": reference.u.values[0], "v": reference.v.values[0]},
        backend="torch", device=args.device, closures={"nu_t": net}, progress=False, torch_compile=args.compile,
    )
    print(f"\n{'t':>6} {'rel. L2 (learned vs Smagorinsky)':>34} {'energy Smag.':>13} {'energy learned':>15}")
    errors = []
    for i, t in enumerate(reference.t.values):
        ref = np.stack([reference.u[i], reference.v[i]])
        got = np.stack([learned.u[i], learned.v[i]])
        errors.append(relative_l2(got, ref) if i else 0.0)
        print(f"{t:6.2f} {errors[-1]:34.4f} {0.5 * np.mean(np.sum(ref**2, 0)):13.4f} {0.5 * np.mean(np.sum(got**2, 0)):15.4f}")
    mode = "torch.compile" if args.compile else "eager"
    print(f"\nwall time of the time stepping: Smagorinsky (numba) {reference.attrs['wall_time_s']:.2f} s, "
          f"learned closure (torch {mode}, {args.device}) {learned.attrs['wall_time_s']:.2f} s "
          f"(+ {learned.attrs['compile_time_s']:.1f} s code generation and compilation); load average "
          f"{os.getloadavg()[0]:.1f}")
    return {"nu_t_error": nu_t_error, "errors": errors}


if __name__ == "__main__":
    main()

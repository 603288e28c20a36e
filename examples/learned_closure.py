"""A neural network in place of the Smagorinsky eddy viscosity, inside the generated solver.

    python examples/learned_closure.py [--grid 64] [--t-end 3] [--steps 1500] [--hidden 24] [--layers 1]
                                       [--activation relu] [--rounds 3] [--torch] [--compile]

1. Reference: the ``burgers-les`` model (2-D Burgers turbulence, nu_t = (Cs Delta)^2 |S| in
   flux form), solved with generated Numba kernels from several seeded random starts.
2. Training pairs: velocity gradients (u_x, u_y, v_x, v_y) of the training runs and the
   Smagorinsky nu_t they give; an MLP learns nu_t from them. By default one hidden layer of 24
   ReLU units (145 weights), which fits nu_t as well as the former 2 x 32 SiLU network (1249
   weights; both are trained alike and their held-out errors printed): nu_t = (Cs Delta)^2 |S|
   is a norm of a linear map of the gradient, which a ReLU layer approximates piecewise linearly.
3. The same equations with nu_t a *closure term* (``nu_t(d(u,x), d(u,y), d(v,x), d(v,y))``),
   compiled for the Numba target with the network exported as frozen arrays
   (:meth:`MLPClosure.dense_network`): its layers are straight-line code in the cell loop,
   vectorised across cells. Solved from a held-out start and compared with the Smagorinsky run.
   ``--torch`` also runs the network through the torch target (eager stages, one intra-op
   thread on this small grid) and checks that both give the same velocities to round-off;
   ``--compile`` adds ``torch.compile``-d RK4 steps (compilation timed separately).

Timings: the runs are interleaved over ``--rounds`` rounds and the best of each is printed with
the process CPU time and the load average (on a shared machine, ratios are the figure).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _timed(solve):
    """Run ``solve()``; return the Dataset and the process CPU seconds it took."""
    c0 = time.process_time()
    ds = solve()
    return ds, time.process_time() - c0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--t-end", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=1500, help="Adam steps")
    p.add_argument("--hidden", type=int, default=24)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--activation", default="relu", choices=["relu", "silu", "tanh"])
    p.add_argument("--train-runs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--torch", action="store_true", help="also run the network through the torch target (eager)")
    p.add_argument("--compile", action="store_true", help="and with torch.compile-d RK4 steps")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: pdeforge's policy)")
    args = p.parse_args(argv)

    import torch

    import pdeforge as pf
    from pdeforge.models import get_model
    from pdeforge.models.burgers_les import closure_system
    from pdeforge.neural.closures import MLPClosure, SmagorinskyViscosity, gradient_samples, relative_l2, train_closure

    if args.threads:
        torch.set_num_threads(args.threads)
    model = get_model("burgers-les")
    params = model.params
    kw = dict(grid=args.grid, t_span=args.t_end, output=pf.Output(save_every=args.t_end / 4), progress=False)
    train_runs = [pf.solve("burgers-les", seed=s, **kw) for s in range(1, 1 + args.train_runs)]
    reference = pf.solve("burgers-les", seed=0, **kw)
    smagorinsky = SmagorinskyViscosity(params["Cs"], params["Delta"])
    inputs = np.concatenate([gradient_samples(ds) for ds in train_runs])
    targets = smagorinsky(torch.as_tensor(inputs)).numpy()
    held_out = gradient_samples(reference)
    exact = smagorinsky(torch.as_tensor(held_out))

    def fit(hidden: int, layers: int, activation: str):
        net = MLPClosure(4, hidden=hidden, layers=layers, activation=activation, seed=0)
        t0 = time.perf_counter()
        history = train_closure(net, inputs, targets, steps=args.steps, batch=2048, seed=0, progress=False)
        with torch.no_grad():
            predicted = net(torch.as_tensor(held_out, dtype=torch.float32))[:, 0]
        error = relative_l2(predicted, exact)
        print(f"MLP {layers}x{hidden} {activation} ({sum(q.numel() for q in net.parameters())} weights), "
              f"{args.steps} Adam steps in {time.perf_counter() - t0:.1f} s: loss {history[0]:.2e} -> "
              f"{history[-1]:.2e}; held-out nu_t relative L2 error {error:.4f}")
        return net, error

    net, nu_t_error = fit(args.hidden, args.layers, args.activation)
    baseline = (32, 2, "silu")
    baseline_error = fit(*baseline)[1] if (args.hidden, args.layers, args.activation) != baseline else nu_t_error

    system = closure_system(params["nu"])
    ic = {"u": reference.u.values[0], "v": reference.v.values[0]}
    solve_kw = dict(grid=args.grid, t_span=args.t_end, output=pf.Output(save_every=args.t_end / 4), method="rk4",
                    dt=model.dt, ic=ic, progress=False)
    runs = {
        "formula (numba)": lambda: pf.solve("burgers-les", seed=0, **kw),
        "learned (numba)": lambda: pf.solve(system, backend=pf.Numba(closures={"nu_t": net}), **solve_kw),
    }
    if args.torch or args.compile:
        runs["learned (torch eager)"] = lambda: pf.solve(system, backend=pf.Torch(closures={"nu_t": net}), **solve_kw)
    if args.compile:
        runs["learned (torch.compile)"] = lambda: pf.solve(system, backend=pf.Torch(closures={"nu_t": net}, compile=True),
                                                           **solve_kw)
    results: dict[str, dict] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, solve in runs.items():
            ds, cpu = _timed(solve)
            r = results.setdefault(name, {"wall": np.inf, "cpu": np.inf, "compile": ds.attrs["compile_time_s"]})
            r["wall"] = min(r["wall"], ds.attrs["wall_time_s"])
            r["cpu"] = min(r["cpu"], cpu)  # the whole call; the first round's includes compiling
            r["ds"] = ds
        loads.append(os.getloadavg()[0])
    learned = results["learned (numba)"]["ds"]

    print(f"\n{'t':>6} {'rel. L2 (learned vs Smagorinsky)':>34} {'energy Smag.':>13} {'energy learned':>15}")
    errors = []
    for i, t in enumerate(reference.t.values):
        ref = np.stack([reference.u[i], reference.v[i]])
        got = np.stack([learned.u[i], learned.v[i]])
        errors.append(relative_l2(got, ref) if i else 0.0)
        print(f"{t:6.2f} {errors[-1]:34.4f} {0.5 * np.mean(np.sum(ref**2, 0)):13.4f} {0.5 * np.mean(np.sum(got**2, 0)):15.4f}")
    same = {}
    for name in ("learned (torch eager)", "learned (torch.compile)"):
        if name in results:
            other = results[name]["ds"]
            a = np.stack([learned.u.values, learned.v.values])
            b = np.stack([other.u.values, other.v.values])
            same[name] = float(np.abs(a - b).max() / np.abs(b).max())
            print(f"{name} vs learned (numba), same network in float64: max |difference| / max |u| = {same[name]:.1e}")

    formula = results["formula (numba)"]
    print(f"\n{args.rounds} interleaved rounds, best of each (wall: the stepping, cpu: the whole solve call; "
          f"{len(reference.t) - 1} frames, "
          f"{learned.attrs['steps']} RK4 steps, {args.grid}^2); load average {min(loads):.1f}-{max(loads):.1f} "
          f"on {os.cpu_count()} CPUs{' (a loaded machine: times are inflated, ratios are the figure)' if max(loads) > 1 else ''}")
    print(f"{'run':<26} {'wall s':>8} {'cpu s (call)':>13} {'wall / formula':>15} {'compile s':>10}")
    for name, r in results.items():
        print(f"{name:<26} {r['wall']:8.3f} {r['cpu']:13.3f} {r['wall'] / formula['wall']:15.1f} {r['compile']:10.1f}")
    ratio = results["learned (numba)"]["wall"] / formula["wall"]
    return {"nu_t_error": nu_t_error, "baseline_nu_t_error": baseline_error, "errors": errors, "ratio": ratio,
            "same": same, "timings": {k: {"wall": v["wall"], "cpu": v["cpu"], "compile": v["compile"]}
                                      for k, v in results.items()}, "load": loads}


if __name__ == "__main__":
    main()

"""Train the eddy-viscosity closure through solver rollouts (a posteriori) and compare it with the alternatives.

    python examples/closure_a_posteriori.py [--fine 128] [--coarse 32] [--t-end 2] [--iters 40]

1. Reference: the ``burgers-les`` equations on a fine grid (``--fine`` cells per axis, the
   Smagorinsky term with the fine grid's filter width, which is nearly DNS there), solved by
   pdeforge's Numba kernels from seeded random starts, then box-filtered onto the coarse grid
   (each coarse cell the mean of the fine cells it covers).
2. Coarse models on ``--coarse`` cells, all from the filtered start of held-out seeds:
   - no model (nu_t = 0);
   - Smagorinsky with the best Cs of a small scan (scored on the training seeds);
   - a-priori MLP: fit pointwise to Smagorinsky's nu_t (Cs of the model) on the filtered
     training fields, as ``examples/learned_closure.py`` does;
   - a-posteriori MLP: the a-priori network trained further through rollouts of the
     differentiable solver (:func:`pdeforge.neural.differentiable_solve`): the loss is the
     misfit of short coarse rollouts to the filtered fine frames, its gradient to the weights
     through every solver step.
3. Errors on the held-out seeds over time: relative L2 of the velocity against the filtered
   reference, and the mean |log E(k)| error of the energy spectrum (shells k = 1 .. coarse/3).
   Whatever wins is printed as measured.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np


def box_filter(field: np.ndarray, r: int) -> np.ndarray:
    """Mean over r x r blocks of the last two axes (the coarse cell average)."""
    *lead, nx, ny = field.shape
    return field.reshape(*lead, nx // r, r, ny // r, r).mean(axis=(-3, -1))


def spectrum(u: np.ndarray, v: np.ndarray, kmax: int) -> np.ndarray:
    """Shell-summed kinetic energy E(k), k = 1 .. kmax, of periodic fields on a 2 pi box."""
    n = u.shape[-1]
    uh, vh = np.fft.fft2(u) / n**2, np.fft.fft2(v) / n**2
    k = np.fft.fftfreq(n, 1.0 / n)
    kk = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int)
    e = 0.5 * (np.abs(uh) ** 2 + np.abs(vh) ** 2)
    return np.bincount(kk.ravel(), e.ravel(), minlength=kmax + 1)[1 : kmax + 1]


def scores(traj: np.ndarray, ref: np.ndarray, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: relative L2 error of (u, v), and mean |log E_model(k) - log E_ref(k)|."""
    l2, se = [], []
    for a, b in zip(traj, ref):
        if not np.isfinite(a).all():
            l2.append(np.inf)
            se.append(np.inf)
            continue
        l2.append(np.linalg.norm(a - b) / np.linalg.norm(b))
        se.append(np.mean(np.abs(np.log(spectrum(*a, kmax)) - np.log(spectrum(*b, kmax)))))
    return np.array(l2), np.array(se)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fine", type=int, default=128)
    p.add_argument("--coarse", type=int, default=32)
    p.add_argument("--t-end", type=float, default=2.0)
    p.add_argument("--every", type=float, default=0.1, help="time between frames")
    p.add_argument("--train-seeds", default="1,2")
    p.add_argument("--test-seeds", default="10,11")
    p.add_argument("--iters", type=int, default=40, help="a-posteriori Adam steps")
    p.add_argument("--rollout", type=float, default=0.4, help="length of each training rollout")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    import torch

    import pdeforge as pf
    from pdeforge.discretize.grid import UniformGrid
    from pdeforge.models import get_model
    from pdeforge.models.burgers_les import closure_system, random_velocity
    from pdeforge.neural import differentiable_solve
    from pdeforge.codegen.torch.fused import thread_count, threads
    from pdeforge.neural.closures import MLPClosure, SmagorinskyViscosity, gradient_samples, train_closure

    t_start = time.perf_counter()
    model = get_model("burgers-les")
    nu, cs0 = model.params["nu"], model.params["Cs"]
    les = closure_system(nu)  # parsed once, compiled once (then from the kernel cache)
    r = args.fine // args.coarse
    L = 2 * np.pi
    fine_grid = UniformGrid.from_spec(model.domain, args.fine)
    delta_c = 2 * L / args.coarse
    dt_c = 0.5 * L / args.coarse / 4.0  # CFL ~ 0.5 for |u| up to ~4
    dt_f = dt_c / r
    kmax = args.coarse // 3
    n_frames = int(round(args.t_end / args.every)) + 1
    train_seeds = [int(s) for s in args.train_seeds.split(",")]
    test_seeds = [int(s) for s in args.test_seeds.split(",")]

    def reference(seed: int) -> np.ndarray:
        ic = random_velocity(fine_grid, np.random.default_rng(seed))
        ds = pf.solve("burgers-les", grid=args.fine, t_span=args.t_end, ic=ic, method="rk4", dt=dt_f, params={"Delta": 2 * L / args.fine, "Cs": cs0}, backend="numba", progress=False, output=pf.Output(save_every=args.every))
        return box_filter(np.stack([ds.u.values, ds.v.values], axis=1), r)  # (frames, 2, nc, nc)

    refs = {s: reference(s) for s in train_seeds + test_seeds}
    t_ref = time.perf_counter() - t_start

    def smagorinsky_run(seed: int, cs: float) -> np.ndarray:
        ic0 = refs[seed][0]
        ds = pf.solve("burgers-les", grid=args.coarse, t_span=args.t_end, ic={"u": ic0[0], "v": ic0[1]}, method=pf.RK4(stability="ignore"), dt=dt_c, params={"Delta": delta_c, "Cs": cs}, backend="numba", progress=False, output=pf.Output(save_every=args.every))
        out = np.full((n_frames, 2, args.coarse, args.coarse), np.nan)
        got = np.stack([ds.u.values, ds.v.values], axis=1)
        out[: len(got)] = got
        if ds.attrs["status"] != "completed":
            out[len(got) - 1:] = np.nan  # blew up: the frames after the last good one are void
        return out

    scan = [0.05, 0.1, 0.15, 0.2, 0.3]
    scan_err = {cs: np.mean([scores(smagorinsky_run(s, cs), refs[s], kmax)[0][1:].mean() for s in train_seeds])
                for cs in scan}
    best_cs = min(scan_err, key=scan_err.get)

    # a priori: pointwise fit to Smagorinsky's nu_t on the filtered training fields
    import xarray as xr

    smag = SmagorinskyViscosity(cs0, delta_c)
    coarse_x = UniformGrid.from_spec(model.domain, args.coarse).coordinates
    samples = []
    for s in train_seeds:
        ds = xr.Dataset({"u": (("t", "x", "y"), refs[s][:, 0]), "v": (("t", "x", "y"), refs[s][:, 1])},
                        coords={"x": coarse_x[0], "y": coarse_x[1]})
        samples.append(gradient_samples(ds))
    inputs = np.concatenate(samples)
    prior = MLPClosure(4, hidden=16, layers=2, seed=0)
    train_closure(prior, inputs, smag(torch.as_tensor(inputs)).numpy(), steps=600, batch=2048, seed=0,
                  device=args.device, progress=False)
    prior = prior.double()

    def closure_run(net, seed: int) -> np.ndarray:
        ic0 = torch.as_tensor(refs[seed][0])
        with torch.no_grad():
            out = differentiable_solve(les, args.coarse, args.t_end, {"u": ic0[0], "v": ic0[1]},
                                       dt=dt_c, output=pf.Output(save_every=args.every),
                                       backend=pf.Torch(device=args.device, closures={"nu_t": net}))
        return out.cpu().numpy()

    # a posteriori: the prior's weights trained through short rollouts of the solver
    post = MLPClosure(4, hidden=16, layers=2, seed=0).double()
    post.load_state_dict(prior.state_dict())
    opt = torch.optim.Adam(post.net.parameters(), lr=args.lr)
    window = int(round(args.rollout / args.every))
    rng = np.random.default_rng(0)
    history = []
    t0 = time.perf_counter()
    for it in range(args.iters):
        seed = train_seeds[it % len(train_seeds)]
        start = int(rng.integers(0, n_frames - window))
        target = torch.as_tensor(refs[seed][start + 1 : start + window + 1], device=args.device)
        ic0 = torch.as_tensor(refs[seed][start], device=args.device)
        traj = differentiable_solve(les, args.coarse, args.rollout, {"u": ic0[0], "v": ic0[1]},
                                    dt=dt_c, output=pf.Output(save_every=args.every),
                                    backend=pf.Torch(device=args.device, closures={"nu_t": post}))
        loss = ((traj[1:] - target) ** 2).mean() / (target**2).mean()
        opt.zero_grad()
        with threads(thread_count(args.coarse**2) if args.device == "cpu" else None):
            loss.backward()
        opt.step()
        history.append(loss.item())
    train_s = time.perf_counter() - t0

    runs = {
        "no model": lambda s: smagorinsky_run(s, 0.0),
        f"Smagorinsky Cs={best_cs:g}": lambda s: smagorinsky_run(s, best_cs),
        "a-priori MLP": lambda s: closure_run(prior, s),
        "a-posteriori MLP": lambda s: closure_run(post, s),
    }
    results = {name: [scores(run(s), refs[s], kmax) for s in test_seeds] for name, run in runs.items()}

    print(f"burgers-les: reference {args.fine}^2 (box-filtered to {args.coarse}^2), coarse dt {dt_c:.4f}, "
          f"seeds train {train_seeds} / held out {test_seeds}; references in {t_ref:.1f} s")
    print("Smagorinsky Cs scan (mean rel. L2 on the training seeds): "
          + ", ".join(f"{cs:g}: {e:.3f}" for cs, e in scan_err.items()))
    print(f"a-posteriori training: {args.iters} Adam steps on {window}-frame rollouts in {train_s:.1f} s, "
          f"rollout loss {np.mean(history[:5]):.4f} (first 5) -> {np.mean(history[-5:]):.4f} (last 5)")
    times = np.arange(n_frames) * args.every
    show = [i for i in range(1, n_frames) if i % max(1, (n_frames - 1) // 4) == 0]
    print(f"\nheld-out mean relative L2 error of (u, v) | mean |log E(k)| error (k = 1..{kmax})")
    print(f"{'model':<24}" + "".join(f"{f't={times[i]:.1f}':>16}" for i in show) + f"{'mean over t':>16}")
    summary = {}
    for name, res in results.items():
        l2 = np.mean([a for a, _ in res], axis=0)
        se = np.mean([b for _, b in res], axis=0)
        summary[name] = (float(np.mean(l2[1:])), float(np.mean(se[1:])))
        print(f"{name:<24}" + "".join(f"{l2[i]:>8.3f} |{se[i]:>6.3f}" for i in show)
              + f"{summary[name][0]:>8.3f} |{summary[name][1]:>6.3f}")
    finite = {k: v for k, v in summary.items() if math.isfinite(v[0])}
    if finite:
        print(f"\nlowest field error: {min(finite, key=lambda k: finite[k][0])}; "
              f"lowest spectrum error: {min(finite, key=lambda k: finite[k][1])}")
    print(f"total {time.perf_counter() - t_start:.0f} s (load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores; a shared machine)")
    return {"summary": summary, "best_cs": best_cs, "history": history}


if __name__ == "__main__":
    main()

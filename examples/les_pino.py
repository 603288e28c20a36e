"""Physics-informed neural operator for Smagorinsky LES, trained on pdeforge's generated residual.

    python examples/les_pino.py                       # 2-D, 32^2, a few minutes on 2 CPU cores
    python examples/les_pino.py --lesnets --device cuda   # LESnets scale: 32^3, width 80, 6 layers,
                                                          # 12 modes, dt 0.02, 10 output steps

1. Initial fields: seeded random divergence-free velocities (E(k) ~ k^4 exp(-2 (k/4)^2)), evolved
   by the pdeforge LES solver for a while so that the inputs look like the flow the operator
   will see (they are inputs only: no target trajectory enters the training).
2. Training with the physics loss alone: the residual of the generated pseudo-spectral LES
   right-hand side along the predicted trajectory (fourth-order quadrature between frames) plus
   the divergence of every frame (as LESnets, Zhao et al. JCP 2025). The network sees the
   generated right-hand side f(u0) and predicts u0 + t f(u0) + t^2 N (the "taylor" ansatz).
3. Rollout on a held-out field, window after window, against the pdeforge LES solver over the
   same horizon: relative L2 error over time (and that of the persistence forecast u(t) = u(0)
   for scale), energy spectra at the end, and the wall-time speedup of inference over the solver.

Checkpoints: ``--checkpoint run.pt`` saves during training; ``--resume`` continues from it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

LESNETS = dict(dim=3, grid=32, width=80, layers=6, modes=12, dt=0.02, steps_out=10, nu=1 / 64, cs=0.1, lifting_ratio=2)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lesnets", action="store_true", help="LESnets settings: 32^3, width 80, 6 layers, modes 12, dt 0.02, T 10")
    p.add_argument("--dim", type=int, default=2, choices=(2, 3))
    p.add_argument("--grid", type=int, default=32, help="points per axis")
    p.add_argument("--nu", type=float, default=1 / 64)
    p.add_argument("--cs", type=float, default=0.1, help="Smagorinsky constant")
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--modes", type=int, default=20, help="Fourier modes per axis (20 on 32^2: |k| <= 10, the solver's 2/3 range)")
    p.add_argument("--lifting-ratio", type=float, default=0,
                   help="hidden channels of the lifting MLP per width (0, the default: one linear layer)")
    p.add_argument("--dt", type=float, default=0.05, help="time between output frames")
    p.add_argument("--steps-out", type=int, default=10, help="output frames per window")
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-3, help="peak learning rate")
    p.add_argument("--schedule", default="onecycle", choices=("onecycle", "cosine"), help="learning-rate schedule")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clipping (0: off)")
    p.add_argument("--ansatz", default="taylor", choices=("taylor", "increment"),
                   help="taylor: u0 + t f(u0) + t^2 N(u0, f(u0)); increment: u0 + t N(u0)")
    p.add_argument("--runs", type=int, default=32, help="random starts evolved for training inputs")
    p.add_argument("--snapshots", type=int, default=8, help="inputs kept per start")
    p.add_argument("--spin-up", type=float, default=3.5, help="length of each input run")
    p.add_argument("--test-age", type=float, default=1.25,
                   help="the held-out field: a new random start evolved by the solver for this long")
    p.add_argument("--windows", type=int, default=4, help="rollout windows compared with the solver")
    p.add_argument("--residual", default="quadrature", choices=("quadrature", "central"),
                   help="time discretisation of the physics residual (quadrature: 4th order; central: 2nd)")
    p.add_argument("--energy-weight", type=float, default=0.0,
                   help="weight of the energy-budget term (dE/dt = <u . f(u)> by the same quadrature)")
    p.add_argument("--learn-cs", action="store_true", help="train Cs with the network")
    p.add_argument("--fno", default="auto", choices=("auto", "neuralop", "builtin"),
                   help="FNO implementation (auto: neuraloperator if installed)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None, help="checkpoint file (saved every 100 steps and at the end)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--plot", default=None, help="PNG with errors, spectra and vorticity")
    p.add_argument("--json", default=None, help="write the measured figures to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.lesnets:
        for k, v in LESNETS.items():
            setattr(args, k.replace("-", "_"), v)
        args.spin_up = min(args.spin_up, 1.0)
        args.test_age = min(args.test_age, 0.5)
    return args


def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run(args) -> dict:
    """Train, roll out and compare; returns the measured figures."""
    import torch

    from pdeforge.models.les import les_system
    from pdeforge.neural.pino import PINOConfig, PINOTrainer, energy_spectrum, relative_l2_over_time
    from pdeforge.neural.pino_data import solver_reference, spun_up_fields

    if args.threads:
        torch.set_num_threads(args.threads)
    system = les_system(args.dim, nu=args.nu, Cs=args.cs)
    solver_backend = "torch" if str(args.device).startswith("cuda") else "numpy"
    t0 = time.perf_counter()
    inputs = spun_up_fields(system, args.grid, args.runs, args.snapshots, args.spin_up, seed=args.seed,
                            backend=solver_backend, device=args.device if solver_backend == "torch" else None)
    data_s = time.perf_counter() - t0
    print(f"{len(inputs)} training inputs from {args.runs} solver runs of t = {args.spin_up:g} ({data_s:.1f} s)")

    config = PINOConfig(steps_out=args.steps_out, dt=args.dt, width=args.width, layers=args.layers, modes=args.modes,
                        lifting_ratio=args.lifting_ratio,
                        batch_size=args.batch, lr=args.lr, learn_cs=args.learn_cs, energy_weight=args.energy_weight, fno=args.fno,
                        residual=args.residual, ansatz=args.ansatz, schedule=args.schedule, grad_clip=args.grad_clip)
    trainer = PINOTrainer(system, args.grid, config, device=args.device, seed=args.seed, checkpoint=args.checkpoint)
    if args.resume:
        if not args.checkpoint:
            raise SystemExit("--resume needs --checkpoint")
        trainer.load(args.checkpoint, steps=args.train_steps)
        print(f"resumed at step {trainer.step}")
    nparams = sum(p.numel() for p in trainer.model.parameters())
    print(f"FNO ({trainer.model.fno_backend}): {args.dim}-D, width {args.width}, {args.layers} layers, {args.modes} modes, "
          f"{args.steps_out} frames of dt = {args.dt:g}, {args.residual} residual; {nparams / 1e6:.2f} M parameters; device {trainer.device}")
    cpu0 = time.process_time()
    history = trainer.fit(inputs, steps=args.train_steps, progress=not args.quiet,
                          checkpoint_every=100 if args.checkpoint else 0)
    train_cpu = time.process_time() - cpu0
    k = max(1, min(20, len(history.physics) // 10))
    physics0 = float(np.mean(history.physics[:k])) if history.physics else float("nan")
    physics1 = float(np.mean(history.physics[-k:])) if history.physics else float("nan")
    print(f"trained {trainer.step} steps in {history.wall_s:.1f} s (process CPU time {train_cpu:.1f} s, "
          f"load average {os.getloadavg()[0]:.1f}): physics loss {physics0:.3e} -> {physics1:.3e}, "
          f"divergence {history.divergence[-1]:.2e}" + (f", Cs {trainer.loss_fn.cs:.4f}" if args.learn_cs else ""))

    # held-out initial field: another seed, evolved like the training inputs
    u0 = spun_up_fields(system, args.grid, 1, 1, args.test_age, seed=args.seed + 1000, backend=solver_backend,
                        device=args.device if solver_backend == "torch" else None)[0]
    horizon = args.windows * args.steps_out * args.dt
    solver_backends = [solver_backend] + (["torch"] if solver_backend == "numpy" else [])
    solver_times = {}
    reference = None
    for backend in solver_backends:
        solver_reference(system, args.grid, u0, args.dt * 2, args.dt, backend=backend,
                         device=args.device if backend == "torch" else None)  # compile, first-call costs
        frames, wall = solver_reference(system, args.grid, u0, horizon, args.dt, backend=backend,
                                        device=args.device if backend == "torch" else None,
                                        dtype="float64" if backend == "numpy" else "float32")
        solver_times[backend] = wall
        if reference is None:
            reference = frames
    trainer.rollout(u0[None], 1)  # warm-up
    _sync(args.device)
    t0, cpu0 = time.perf_counter(), time.process_time()
    pred = trainer.rollout(u0[None], args.windows)
    _sync(args.device)
    infer_s, infer_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    pred = pred[0].float().cpu().numpy()

    times = args.dt * np.arange(1, len(reference) + 1)
    err = relative_l2_over_time(pred[None], reference[None])
    persist = relative_l2_over_time(np.repeat(u0[None], len(reference), axis=0)[None], reference[None])
    k_ref, e_ref = energy_spectrum(reference[-1])
    _, e_pred = energy_spectrum(pred[-1])
    kmax = args.grid // 3
    spec_err = float(np.abs(np.log(e_pred[1:kmax] / e_ref[1:kmax])).mean())

    print(f"\nrollout of {args.windows} windows (horizon t = {horizon:g}) against the pdeforge LES solver:")
    print(f"{'t':>7} {'PINO rel. L2':>13} {'persistence':>12}")
    for i in range(args.steps_out - 1, len(times), args.steps_out):
        print(f"{times[i]:7.3f} {err[i]:13.3f} {persist[i]:12.3f}")
    print(f"energy at t = {horizon:g}: solver {0.5 * np.mean(np.sum(reference[-1] ** 2, 0)):.4f}, "
          f"PINO {0.5 * np.mean(np.sum(pred[-1] ** 2, 0)):.4f}; spectrum mean |log(E_pino/E_solver)| "
          f"over 1 <= k < {kmax}: {spec_err:.3f}")
    # turbulence statistics at the window ends: energy, resolved dissipation nu <|grad u|^2>,
    # vorticity PDF (L1 distance of histograms from the solver's), for the PINO, a no-model
    # (Cs = 0) run of the same resolution and the persistence forecast
    no_model, _ = solver_reference(les_system(args.dim, nu=args.nu, Cs=0.0), args.grid, u0, horizon, args.dt)
    stats = {name: _statistics(traj, args.nu) for name, traj in
             (("solver", reference), ("PINO", pred), ("no-model", no_model))}
    nomodel_err = relative_l2_over_time(no_model[None], reference[None])
    edges = np.linspace(-4, 4, 41) * stats["solver"]["omega_rms"][-1]
    pdf = {name: np.histogram(_vorticity(traj[-1], args.dim), bins=edges, density=True)[0]
           for name, traj in (("solver", reference), ("PINO", pred), ("no-model", no_model), ("persistence", u0[None]))}
    pdf_l1 = {name: float(np.abs(h - pdf["solver"]).sum() * (edges[1] - edges[0])) for name, h in pdf.items() if name != "solver"}
    print(f"\n{'t':>7} {'E solver':>9} {'E PINO':>9} {'E Cs=0':>9} {'eps solver':>11} {'eps PINO':>9} {'eps Cs=0':>9} {'L2 Cs=0':>8}")
    for i in range(args.steps_out - 1, len(times), args.steps_out):
        s_, p_, n_ = stats["solver"], stats["PINO"], stats["no-model"]
        print(f"{times[i]:7.3f} {s_['energy'][i]:9.4f} {p_['energy'][i]:9.4f} {n_['energy'][i]:9.4f} "
              f"{s_['dissipation'][i]:11.4f} {p_['dissipation'][i]:9.4f} {n_['dissipation'][i]:9.4f} {nomodel_err[i]:8.3f}")
    print("vorticity PDF at t = {:g}, L1 distance from the solver's: ".format(horizon)
          + ", ".join(f"{k} {v:.3f}" for k, v in pdf_l1.items()))
    print(f"\nwall time for t = {horizon:g}: PINO inference {infer_s * 1e3:.1f} ms ({trainer.device}; process CPU time "
          f"{infer_cpu * 1e3:.1f} ms; load average {os.getloadavg()[0]:.1f}; benchmarks/pino_inference.py measures "
          "both sides interleaved)")
    for backend, wall in solver_times.items():
        dev = args.device if backend == "torch" else "cpu"
        print(f"  pdeforge LES solver, {backend} ({dev}): {wall * 1e3:.1f} ms -> speedup {wall / infer_s:.1f}x")

    result = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("plot", "json")},
        "parameters": nparams,
        "fno": trainer.model.fno_backend,
        "train_steps": trainer.step,
        "train_seconds": history.wall_s,
        "train_cpu_seconds": train_cpu,
        "inference_cpu_seconds": infer_cpu,
        "physics_loss_start": physics0,
        "physics_loss_end": physics1,
        "times": times.tolist(),
        "relative_l2": err.tolist(),
        "persistence_relative_l2": persist.tolist(),
        "spectrum_log_error": spec_err,
        "no_model_relative_l2": nomodel_err.tolist(),
        "statistics": {k: {q: np.asarray(v).tolist() for q, v in d.items()} for k, d in stats.items()},
        "vorticity_pdf_l1": pdf_l1,
        "inference_seconds": infer_s,
        "solver_seconds": solver_times,
        "speedup": {b: w / infer_s for b, w in solver_times.items()},
    }
    if args.learn_cs:
        result["learned_cs"] = trainer.loss_fn.cs
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot:
        _plot(args.plot, times, err, persist, k_ref, e_ref, e_pred, reference, pred, args)
    return result


def _vorticity(u, dim: int) -> np.ndarray:
    """Vorticity of a 2-D field (F, n, n), or of the mid-plane of a 3-D one (z component)."""
    v = u if dim == 2 else u[:, :, :, u.shape[-1] // 2]
    n = v.shape[-1]
    kk = np.fft.fftfreq(n, 1.0 / n)
    kx, ky = np.meshgrid(kk, kk, indexing="ij")
    return np.real(np.fft.ifft2(1j * kx * np.fft.fft2(v[1]) - 1j * ky * np.fft.fft2(v[0])))


def _statistics(traj, nu: float) -> dict:
    """Energy <|u|^2>/2, resolved dissipation nu <|grad u|^2> and rms vorticity of frames (n, F, *shape)."""
    traj = np.asarray(traj, dtype=float)
    axes = tuple(range(2, traj.ndim))
    shape = traj.shape[2:]
    ks = np.meshgrid(*[np.fft.fftfreq(m, 1.0 / m) for m in shape], indexing="ij")
    uh = np.fft.fftn(traj, axes=axes) / np.prod(shape)
    k2 = sum(k * k for k in ks)
    grad2 = (np.abs(uh) ** 2 * k2).sum(axis=tuple(range(1, traj.ndim)))
    energy = 0.5 * np.mean(np.sum(traj**2, axis=1), axis=tuple(range(1, traj.ndim - 1)))
    omega = np.array([_vorticity(f, len(shape)) for f in traj])
    return {"energy": energy, "dissipation": nu * grad2, "omega_rms": np.sqrt((omega**2).mean(axis=(1, 2)))}


def _plot(path, times, err, persist, k, e_ref, e_pred, reference, pred, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))
    ax[0].plot(times, err, label="PINO")
    ax[0].plot(times, persist, "--", label="persistence")
    ax[0].set(xlabel="t", ylabel="relative L2 error", title="rollout vs solver")
    ax[0].legend()
    kmax = args.grid // 3 + 1  # the solver's state is truncated by the 2/3 rule beyond
    ax[1].loglog(k[1:kmax], e_ref[1:kmax], label="solver")
    ax[1].loglog(k[1:kmax], e_pred[1:kmax], "--", label="PINO")
    ax[1].set(xlabel="k", ylabel="E(k)", title=f"spectrum at t = {times[-1]:g}")
    ax[1].legend()
    wr, wp = _vorticity(reference[-1], args.dim), _vorticity(pred[-1], args.dim)
    lim = np.abs(wr).max()
    ax[2].imshow(wr.T, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[2].set_title("solver vorticity")
    ax[3].imshow(wp.T, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[3].set_title("PINO vorticity")
    for a in ax[2:]:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


def main(argv=None) -> None:
    run(parse(argv))


if __name__ == "__main__":
    main()

"""ProbConserv on the generalized porous medium family: heat, porous medium, Stefan.

Two base models:

* ``--base anp`` (default): the protocol of Hansen et al., "Learning Physical Models that Can
  Respect Conservation Laws", ICML 2023 (reference code amazon-science/probconserv). An
  attentive neural process is trained on functions sampled from the catalogue's exact
  solutions (parameter uniform in the training range; 100 context and 100 target points per
  function) and must infer each test solution from its 100 context points. SoftC-ANP adds the
  PDE residual to the training loss; HardC and ProbConserv update every latent sample with the
  constraint G u = b and mix. Scored at one time (heat, porous medium t = 0.5, Stefan
  t = 0.05) on 201 points, 50 functions per test value, mean +- standard error; the table is
  printed beside the paper's Table 1, and the Stefan front position is sampled from the
  predictive distributions (500 samples per function).
* ``--base fno``: a deep ensemble of Fourier neural operators that is given the parameter and
  u0 (presets ``laptop``, ``large``; see :func:`main_fno`).

ANP presets: ``--preset laptop`` (minutes on two CPU cores: hidden 32, 800 steps of 10 fresh
functions with a one-cycle learning rate, the six models in two processes) and ``--preset
paper`` (the reference configuration: 128 hidden, 10,000 functions, 500 epochs of 250, lr 1e-4,
100 latent samples; sized for a GPU).

Torch runs single-threaded in each process unless ``--threads`` says otherwise, and
``--jobs`` processes train side by side: the tensors are small, and on a busy two-core machine
two OpenMP threads per process spinning against other processes made each step about ten times
slower (56-109 ms against 634-1037 ms per step of 10 functions, measured at load 6-7).

    python examples/probconserv_gpme.py --preset laptop --log benchmarks/results/probconserv_anp_laptop.log
    python examples/probconserv_gpme.py --preset paper --device cuda
    python examples/probconserv_gpme.py --base fno --preset large
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

EQUATIONS = {
    # name: parameter, training range, test values, t_end
    "heat": ("k", (1.0, 5.0), (1.0, 3.0, 5.0)),
    "porous-medium": ("m", (1.0, 6.0), (1.0, 3.0, 6.0)),
    # p_star = 0.5 lies outside the training range, as in the paper
    "stefan": ("p_star", (0.55, 0.7), (0.5, 0.6, 0.65)),
}

PRESETS = {
    "laptop": dict(members=3, epochs=60, width=32, modes=16, layers=4, train_functions=32, nx=65, eval_nx=257, nt=21,
                   batch_size=64),
    "large": dict(members=5, epochs=100, width=48, modes=24, layers=4, train_functions=64, nx=129, eval_nx=513, nt=21,
                  batch_size=64),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="ProbConserv with a deep ensemble of FNOs as the base model (--base fno)")
    p.add_argument("--base", choices=["fno"], default="fno", help="base model")
    p.add_argument("--equations", default="heat,porous-medium,stefan", help="comma-separated subset of " + ", ".join(EQUATIONS))
    p.add_argument("--preset", choices=sorted(PRESETS), default="laptop", help="default sizes (flags below override)")
    for name, kind, text in [
        ("members", int, "ensemble members"), ("epochs", int, "training epochs per member"),
        ("width", int, "FNO hidden channels"), ("modes", int, "FNO Fourier modes"), ("layers", int, "FNO layers"),
        ("train-functions", int, "parameter values in the training set"),
        ("nx", int, "training points in x (ends included)"),
        ("eval-nx", int, "test points in x: the FNO predicts on any grid; a fine one keeps the quadrature "
                         "error of the exact solution itself well below the model's conservation error"),
        ("nt", int, "times from 0 to t_end"), ("batch-size", int, "time slices per step"),
    ]:
        p.add_argument(f"--{name}", type=kind, default=None, help=text)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--beta", type=float, default=0.5, help="beta of the beta-NLL loss (0: plain Gaussian NLL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads on the CPU (default: torch's)")
    p.add_argument("--plot-time", type=float, default=0.5, help="time of the profile plots, as a fraction of t_end")
    p.add_argument("--front-samples", type=int, default=2000, help="samples of N(mean~, S~) for the Stefan front")
    p.add_argument("--out", default="probconserv_gpme_out", help="folder for the table, metrics, plots and checkpoints")
    p.add_argument("--no-resume", action="store_true", help="retrain even if a finished checkpoint exists")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 unless CE <= 1e-10 after the updates on every test function and the "
                        "ProbConserv MSE is not above the base model's on any equation")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.equations = [e.strip() for e in args.equations.split(",") if e.strip()]
    unknown = [e for e in args.equations if e not in EQUATIONS]
    if unknown:
        p.error(f"--equations: unknown {unknown[0]!r} (valid: {', '.join(EQUATIONS)})")
    return args


def run_equation(name, args, log):
    """Train, predict, update and score one equation; returns (rows, arrays for plots)."""
    import torch

    from pdeforge.models.conservation import constraint
    from pdeforge.models import get_model
    from pdeforge.neural import hardc_update, probconserv_update
    from pdeforge.neural.data import generate_dataset
    from pdeforge.neural.deep_ensemble import DeepEnsemble
    from pdeforge.neural.metrics import conservation_error, gaussian_log_likelihood, mean_squared_error

    pname, (lo, hi), test_values = EQUATIONS[name]
    model = get_model(name)
    (x_lo, x_hi), = model.domain
    x_train = np.linspace(x_lo, x_hi, args.nx)
    t = np.linspace(0.0, model.t_end, args.nt)
    rng = np.random.default_rng(args.seed)
    train = generate_dataset(name, {pname: np.sort(rng.uniform(lo, hi, args.train_functions))}, t, x_train)
    x = np.linspace(x_lo, x_hi, args.eval_nx)
    test = generate_dataset(name, {pname: list(test_values)}, t, x)

    ens = DeepEnsemble(1, n_members=args.members, modes=args.modes, width=args.width, layers=args.layers,
                       seed=args.seed, device=args.device)
    ckpt = os.path.join(args.out, f"{name}_ensemble.pt")
    start = time.perf_counter()
    ens.fit(train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta, checkpoint=ckpt,
            resume=not args.no_resume, progress=not args.no_progress)
    train_s = time.perf_counter() - start
    mean, var = ens.predict_data(test)  # (F, T, X) float64 on the device

    # the constraint from the symbols: one row of trapezoid weights per time, b = U(t)
    cons = [constraint(name, x, t, params={pname: v}) for v in test_values]
    device = mean.device
    G = torch.as_tensor(cons[0].weights, device=device)[None]  # (1, X), the same for every test function
    b = torch.as_tensor(np.stack([c.b for c in cons]), device=device)[..., None]  # (F, T, 1)
    truth = torch.as_tensor(test.u, device=device)

    start = time.perf_counter()
    results = {"base": (mean, var, None)}
    m_pc, S_pc = probconserv_update(mean, var, G, b)  # full covariance per time: (F, T, X, X)
    results["ProbConserv"] = (m_pc, torch.diagonal(S_pc, dim1=-2, dim2=-1), S_pc)
    m_hc, v_hc = hardc_update(mean, var, G, b)
    results["HardC"] = (m_hc, v_hc, None)
    if name != "heat":  # u >= 0 holds for the porous medium and Stefan solutions, not for sin x
        m_nn, _ = probconserv_update(mean, var, G, b, nonnegative=True, return_cov="diag")
        results["ProbConserv+nonneg"] = (m_nn, results["ProbConserv"][1], S_pc)
    update_s = time.perf_counter() - start

    rows = []
    truth_ce = conservation_error(truth, G, b)
    rows.append(dict(equation=name, method="exact solution", mse=0.0, ce=float(truth_ce.abs().mean()),
                     ce_max=float(truth_ce.abs().max()), ll=float("nan"), per_function={}))
    for method, (m, v, _) in results.items():
        mse = mean_squared_error(m, truth)  # per test function
        ce = conservation_error(m, G, b).abs()  # (F, T, 1): one row per time
        ll = gaussian_log_likelihood(m, v, truth)
        rows.append(dict(equation=name, method=method, mse=float(mse.mean()), ce=float(ce.mean()),
                         ce_max=float(ce.max()), ll=float(ll.mean()),
                         per_function={f"{pname}={p:g}": dict(mse=float(mse[i]), ce_max=float(ce[i].max()),
                                                                ll=float(ll[i]))
                                       for i, p in enumerate(test_values)}))
    log(f"{name}: trained {args.members} x {args.epochs} epochs in {train_s:.1f} s, updates in {update_s:.2f} s")
    return rows, dict(x=x, t=t, truth=test.u, pname=pname, test_values=test_values,
                      results={k: (m.cpu().numpy(), v.cpu().numpy(), None if S is None else S.cpu())
                               for k, (m, v, S) in results.items()}, train_s=train_s)


def format_table(rows):
    head = f"| {'equation':14s} | {'method':18s} | {'MSE':>9s} | {'CE (mean)':>9s} | {'CE (max)':>9s} | {'LL':>7s} |"
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        ll = "" if math.isnan(r["ll"]) else f"{r['ll']:7.3f}"
        mse = "" if r["method"] == "exact solution" else f"{r['mse']:9.2e}"
        lines.append(f"| {r['equation']:14s} | {r['method']:18s} | {mse:>9s} | {r['ce']:9.2e} | {r['ce_max']:9.2e} | {ll:>7s} |")
    return "\n".join(lines)


def plot_profiles(name, data, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, t, truth = data["x"], data["t"], data["truth"]
    j = int(round(args.plot_time * (len(t) - 1)))
    methods = [m for m in ("base", "ProbConserv", "HardC", "ProbConserv+nonneg") if m in data["results"]]
    fig, axes = plt.subplots(1, len(data["test_values"]), figsize=(4.2 * len(data["test_values"]), 3.4), squeeze=False)
    colors = {"base": "tab:blue", "ProbConserv": "tab:red", "HardC": "tab:green", "ProbConserv+nonneg": "tab:purple"}
    for i, p in enumerate(data["test_values"]):
        ax = axes[0, i]
        ax.plot(x, truth[i, j], "k-", lw=1.5, label="exact")
        for meth in methods:
            m, v, _ = data["results"][meth]
            sd = np.sqrt(np.maximum(v[i, j], 0.0))
            if meth == "ProbConserv+nonneg":  # same band as ProbConserv: only the mean differs
                ax.plot(x, m[i, j], color=colors[meth], lw=1, ls="--", label=meth)
                continue
            ax.plot(x, m[i, j], color=colors[meth], lw=1, label=meth)
            ax.fill_between(x, m[i, j] - 2 * sd, m[i, j] + 2 * sd, color=colors[meth], alpha=0.15)
        ax.set_title(f"{name}, {data['pname']} = {p:g}, t = {t[j]:.3g}")
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("u (mean ± 2 sd)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def stefan_fronts(data, args):
    """Front-position samples per test p_star at the plot time: base (independent points),
    ProbConserv (full covariance S~); and the exact front alpha sqrt(t)."""
    import torch

    from pdeforge.models.gpme import stefan_front
    from pdeforge.neural.metrics import front_positions, sample_gaussian

    x, t = data["x"], data["t"]
    j = int(round(args.plot_time * (len(t) - 1)))
    out = []
    for i, p in enumerate(data["test_values"]):
        threshold = 0.5 * p  # the exact profile jumps from p_star to 0 at the front
        m, v, _ = data["results"]["base"]
        base = sample_gaussian(torch.as_tensor(m[i, j]), torch.diag(torch.as_tensor(v[i, j])), args.front_samples,
                               seed=args.seed)
        m, _, S = data["results"]["ProbConserv"]
        pc = sample_gaussian(torch.as_tensor(m[i, j]), S[i, j], args.front_samples, seed=args.seed)
        out.append(dict(p_star=p, t=float(t[j]), exact=float(stefan_front(t[j], p)),
                        base=front_positions(base, x, threshold).numpy(),
                        probconserv=front_positions(pc, x, threshold).numpy()))
    return out


def plot_fronts(fronts, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fronts), figsize=(4.2 * len(fronts), 3.2), squeeze=False)
    for ax, f in zip(axes[0], fronts):
        both = np.concatenate([f["base"], f["probconserv"]])
        lo, hi = np.quantile(both, [0.002, 0.998])
        pad = 0.1 * (hi - lo) + 1e-3
        lo, hi = min(lo, f["exact"]) - pad, max(hi, f["exact"]) + pad
        bins = np.linspace(lo, hi, 50)
        ax.hist(f["base"], bins=bins, alpha=0.5, color="tab:blue", label="base (diagonal)")
        ax.hist(f["probconserv"], bins=bins, alpha=0.5, color="tab:red", label="ProbConserv (full S~)")
        ax.axvline(f["exact"], color="k", lw=1.5, label="exact front")
        ax.set_title(f"Stefan p* = {f['p_star']:g}, t = {f['t']:.3g}")
        ax.set_xlabel("front position x")
        ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main_fno(argv=None) -> int:
    """The deep-ensemble (FNO) base model: the FNO presets laptop and large."""
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available to torch", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    log = print
    settings = {k: getattr(args, k) for k in ("members", "epochs", "width", "modes", "layers", "train_functions", "nx",
                                              "eval_nx", "nt", "batch_size", "lr", "beta", "seed", "device")}
    log("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    all_rows, fronts_summary = [], []
    start = time.perf_counter()
    for name in args.equations:
        rows, data = run_equation(name, args, log)
        all_rows += rows
        log(format_table(rows))
        if not args.no_plots:
            plot_profiles(name, data, args, os.path.join(args.out, f"{name}_profiles.png"))
        if name == "stefan":
            fronts = stefan_fronts(data, args)
            for f in fronts:
                summary = {k: f[k] for k in ("p_star", "t", "exact")}
                for meth in ("base", "probconserv"):
                    summary[meth] = dict(mean=float(f[meth].mean()), sd=float(f[meth].std()),
                                         q05=float(np.quantile(f[meth], 0.05)), q95=float(np.quantile(f[meth], 0.95)))
                fronts_summary.append(summary)
                log(f"stefan p*={f['p_star']:g} t={f['t']:.3g}: exact front {f['exact']:.4f}; base samples "
                    f"{summary['base']['mean']:.4f} ± {summary['base']['sd']:.4f}; ProbConserv samples "
                    f"{summary['probconserv']['mean']:.4f} ± {summary['probconserv']['sd']:.4f}")
            if not args.no_plots:
                plot_fronts(fronts, os.path.join(args.out, "stefan_front_histogram.png"))
    total = time.perf_counter() - start
    table = format_table(all_rows)
    print()
    print(table)
    print(f"\ntotal {total:.1f} s on {args.device}")
    with open(os.path.join(args.out, "table.md"), "w") as fh:
        fh.write(table + "\n")
    with open(os.path.join(args.out, "metrics.json"), "w") as fh:
        json.dump(dict(settings=settings, rows=all_rows, stefan_fronts=fronts_summary, total_s=total), fh, indent=1)
    if args.check:
        failures = check_targets(all_rows)
        for f in failures:
            print("CHECK FAILED: " + f)
        print("check: " + ("all targets met" if not failures else f"{len(failures)} target(s) missed"))
        return 1 if failures else 0
    return 0


def check_targets(rows):
    """The targets: exact conservation after the updates, ProbConserv MSE <= base MSE."""
    failures = []
    by = {(r["equation"], r["method"]): r for r in rows}
    for (eq, method), r in by.items():
        if method in ("base", "exact solution"):
            continue
        if not r["ce_max"] <= 1e-10:
            failures.append(f"{eq} {method}: CE max {r['ce_max']:.2e} > 1e-10")
        if method == "ProbConserv" and r["mse"] > by[(eq, "base")]["mse"]:
            failures.append(f"{eq}: ProbConserv MSE {r['mse']:.3e} > base {by[(eq, 'base')]['mse']:.3e}")
    return failures


# --------------------------------------------------------------------------------------------
# the attentive neural process and the paper's protocol

ANP_PRESETS = {
    # the reference configuration (experiments/conf of amazon-science/probconserv)
    "paper": dict(hidden=128, dropout=0.1, train_functions=10000, epochs=500, batch_size=250, lr=1e-4,
                  schedule="constant", latent_samples=100, per_value=50, device="cuda", jobs=1),
    # minutes on two CPU cores: narrower, far fewer steps; every step sees fresh functions (one
    # pass over train_functions) and the rate follows a one-cycle schedule, which at this budget
    # reaches a lower loss than epochs over a smaller set at a constant rate
    "laptop": dict(hidden=32, dropout=0.0, train_functions=8000, epochs=1, batch_size=10, lr=2e-3,
                   schedule="one-cycle", latent_samples=100, per_value=50, device="cpu", jobs=2),
}

#: Table 1 of Hansen et al. (ICML 2023): heat row as the paper prints it (CE x 1e-3, LL,
#: MSE x 1e-4; mean over 50 test functions at t = 0.5). Rows that could not be checked against
#: a copy of the paper are left out rather than quoted from memory.
PAPER_TABLE_1 = {
    "heat": {"ANP": (4.68e-3, 2.72, 1.71e-4), "SoftC": (3.47e-3, 2.40, 2.24e-4),
             "HardC": (0.0, 3.08, 1.37e-4), "ProbConserv": (0.0, 2.74, 1.55e-4)},
}

SIGMA_G_SOFT = 1e-3  # the ProbConserv row with a noisy constraint


def parse_anp_args(argv=None):
    p = argparse.ArgumentParser(description="ProbConserv with an attentive neural process as the base model")
    p.add_argument("--base", choices=["anp"], default="anp")
    p.add_argument("--preset", choices=sorted(ANP_PRESETS), default="laptop")
    p.add_argument("--equations", default="heat,porous-medium,stefan")
    for name, kind in [("hidden", int), ("dropout", float), ("train-functions", int), ("epochs", int),
                       ("batch-size", int), ("lr", float), ("latent-samples", int), ("per-value", int)]:
        p.add_argument(f"--{name}", type=kind, default=None)
    p.add_argument("--schedule", choices=["constant", "one-cycle"], default=None, help="learning-rate schedule")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process on the CPU (see the module docstring)")
    p.add_argument("--jobs", type=int, default=None,
                   help="processes that train the 2 x 3 models side by side (laptop preset: 2, one per core)")
    p.add_argument("--b-from", choices=["quadrature", "exact"], default="quadrature",
                   help="right-hand side of G u = b: the quadrature of the exact solution on the 201 points "
                        "(default: the discrete exact profile satisfies it) or the exact mass U(t)")
    p.add_argument("--front-samples", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="probconserv_gpme_out")
    p.add_argument("--log", default=None, help="also append the output to this file (e.g. under benchmarks/results/)")
    p.add_argument("--front-plot", default=None,
                   help="where the Stefan shock-position histogram goes (default: OUT/stefan_front_histogram_anp.png)")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    for key, value in ANP_PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.equations = [e.strip() for e in args.equations.split(",") if e.strip()]
    unknown = [e for e in args.equations if e not in EQUATIONS]
    if unknown:
        p.error(f"--equations: unknown {unknown[0]!r} (valid: {', '.join(EQUATIONS)})")
    if args.jobs < 1 or args.threads < 1:
        p.error(f"--jobs and --threads: at least 1 each, got {args.jobs} and {args.threads}")
    return args


def _stats(per_function, params, value):
    """(mean, standard error) over the functions of one test value."""
    v = per_function[params == value]
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def _data(name, args):
    """Training and test functions of one equation; the same for every model trained on it."""
    from pdeforge.neural.gpme_protocol import evaluation_set, get_task, sample_training_set

    task = get_task(name)
    rng = np.random.default_rng(args.seed)
    train = sample_training_set(task, args.train_functions, rng, device=args.device)
    test = evaluation_set(task, args.per_value, rng, b_from=args.b_from, device=args.device)
    return task, train, test


def train_and_predict(name, label, args):
    """Train the ANP ("ANP") or SoftC-ANP ("SoftC") of one equation and predict its test set.

    Runs in a worker process when ``--jobs`` > 1, so it sets its own torch threads.

    Returns:
        ``(means, variances, line)``: per-latent-sample predictions (S, F, 201) on the CPU and
        the log line of the training.
    """
    import torch

    from pdeforge.neural.anp import AttentiveNeuralProcess, fit_anp, predict_anp
    from pdeforge.neural.baselines import gpme_residual_penalty

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    task, train, test = _data(name, args)
    sampled = time.perf_counter() - start
    (t0, t1), (x0, x1) = task.t_range, task.x_range
    torch.manual_seed(args.seed)
    model = AttentiveNeuralProcess(hidden=args.hidden, dropout=args.dropout, input_low=[t0, x0],
                                   input_high=[t1, x1], device=args.device)
    penalty = gpme_residual_penalty(name) if label == "SoftC" else None
    start = time.perf_counter()
    steps = args.epochs * math.ceil(args.train_functions / args.batch_size)
    history = fit_anp(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      schedule=args.schedule, penalty=penalty, seed=args.seed, per_step=True)
    took = time.perf_counter() - start
    tenth = max(1, steps // 10)
    line = (f"  {label}: trained {steps} steps of {args.batch_size} functions in {took:.1f} s "
            f"({1e3 * took / steps:.0f} ms/step, load {os.getloadavg()[0]:.1f}; mean loss of the first and last "
            f"tenth of the steps {np.mean(history[:tenth]):.4g} -> {np.mean(history[-tenth:]):.4g}); "
            f"functions sampled in {sampled:.1f} s")
    means, variances = predict_anp(model, test.data.context_x, test.data.context_y, test.data.target_x,
                                   n_samples=args.latent_samples, seed=args.seed + 1)
    return means.cpu(), variances.cpu(), line


def train_all(args, log):
    """Every (equation, ANP | SoftC) pair, in ``args.jobs`` processes; {(name, label): (means, variances)}."""
    pairs = [(name, label) for name in args.equations for label in ("ANP", "SoftC")]
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_and_predict, name, label, args) for name, label in pairs]
            results = [f.result() for f in futures]
    else:
        results = [train_and_predict(name, label, args) for name, label in pairs]
    out = {}
    for (name, label), (means, variances, line) in zip(pairs, results):
        log(f"{name} {line.strip()}")
        out[name, label] = (means.to(args.device), variances.to(args.device))
    return out


def run_anp_equation(name, args, log, trained):
    """Apply the updates to the predictions of one equation's ANP and SoftC-ANP and score them."""
    from pdeforge.neural.baselines import conserved_mixture
    from pdeforge.neural.metrics import conservation_error, gaussian_log_likelihood, mean_squared_error

    task, _, test = _data(name, args)
    log(f"{name}: {len(test.params)} test functions; b - U(t) on the 201 points: "
        + ", ".join(f"{task.param}={v:g}: {float((test.b - test.exact_mass)[test.params == v][0]):+.2e}"
                    for v in task.test_values))
    bases = {label: trained[name, label] for label in ("ANP", "SoftC")}
    means, variances = bases["ANP"]
    w, b = test.weights, test.b
    nonneg = name != "heat"  # u >= 0 holds for the porous medium and Stefan, not for sin x
    methods = {
        "ANP": conserved_mixture(means, variances, w, b, "none", full_covariance=name == "stefan"),
        "SoftC": conserved_mixture(*bases["SoftC"], w, b, "none", full_covariance=name == "stefan"),
        "HardC": conserved_mixture(means, variances, w, b, "hardc", full_covariance=name == "stefan"),
        "ProbConserv": conserved_mixture(means, variances, w, b, "probconserv", full_covariance=name == "stefan"),
        f"ProbConserv sg={SIGMA_G_SOFT:g}": conserved_mixture(means, variances, w, b, "probconserv", sigma_g=SIGMA_G_SOFT),
    }
    if nonneg:
        methods["ProbConserv+nonneg"] = conserved_mixture(means, variances, w, b, "probconserv", nonnegative=True)
    rows = []
    for method, out in methods.items():
        ce = conservation_error(out["mean"], w[None], b[:, None])[:, 0].cpu().numpy()
        ll = gaussian_log_likelihood(out["mean"], out["var"], test.truth, dims=(-1,)).cpu().numpy()
        mse = mean_squared_error(out["mean"], test.truth, dims=(-1,)).cpu().numpy()
        for v in task.test_values:
            rows.append(dict(equation=name, param=f"{task.param}={v:g}", method=method,
                             ce=_stats(ce, test.params, v), ll=_stats(ll, test.params, v),
                             mse=_stats(mse, test.params, v)))
    fronts = stefan_front_samples(test, methods, args) if name == "stefan" else None
    return rows, fronts


FRONT_METHODS = ("ANP", "SoftC", "HardC", "ProbConserv")


def stefan_front_samples(test, methods, args):
    """Front positions sampled from each method's predictive Gaussian, and where the update put mass.

    As the reference code (``estimate_shock_interval`` in its ``analyze.py``), the front of a
    sample is where it first falls to 0 or below. Every method is sampled from the Gaussian with
    the full covariance of its mixture of latent samples (the per-sample variances plus the
    spread of the sample means; for ProbConserv the updated per-sample covariances, so every
    sample satisfies ``G u = b``). Per test value: the mean over the 50 functions of the signed
    and absolute error of each function's mean sampled front, the spread of one function's
    samples, the samples of function 1 (the histogram), and two diagnostics: the front of the
    mean profile itself (where it falls through half the jump, ``p*/2``) and the part of the
    mass that ProbConserv added or removed ahead of the exact front.
    """
    import torch

    from pdeforge.models.gpme import stefan_front
    from pdeforge.neural.metrics import front_positions, sample_gaussian

    x = test.x
    w = test.weights
    out = {}
    for v in test.task.test_values:
        exact = float(stefan_front(test.task.eval_time, v))
        idx = np.flatnonzero(test.params == v)
        res = {"exact": exact}
        for method in FRONT_METHODS:
            pred = methods[method]
            cov = pred["cov"][idx]
            samples = sample_gaussian(pred["mean"][idx], cov, args.front_samples, seed=args.seed)
            pos = front_positions(samples, x, 0.0).cpu().numpy()  # (samples, functions)
            err = pos.mean(0) - exact
            half = front_positions(pred["mean"][idx], x, 0.5 * v).cpu().numpy() - exact
            res[method] = dict(signed_error=float(err.mean()), mean_abs_error=float(np.abs(err).mean()),
                               se=float(np.abs(err).std(ddof=1) / np.sqrt(len(err))), sd=float(pos.std(0).mean()),
                               mean_profile_half_jump=float(np.abs(half).mean()), function1=pos[:, 1])
        # the reference's analyze.py samples the ANP with its standard deviations on the diagonal of
        # the covariance (cov = scale * eye), i.e. with noise of sd var^(1/4) instead of var^(1/2)
        pred = methods["ANP"]
        samples = sample_gaussian(pred["mean"][idx], torch.diag_embed(pred["var"][idx].sqrt()), args.front_samples,
                                  seed=args.seed)
        res["ANP"]["signed_error_sd_as_variance"] = float((front_positions(samples, x, 0.0).cpu().numpy().mean(0)
                                                           - exact).mean())
        moved = (methods["ProbConserv"]["mean"][idx] - methods["ANP"]["mean"][idx]) * w
        ahead = torch.as_tensor(x > exact, device=moved.device)
        res["mass_moved"] = dict(total=float(moved.sum(-1).mean()), ahead=float((moved * ahead).sum(-1).mean()))
        out[v] = res
    return out


def format_anp_table(rows):
    def ms(pair, scale=1.0, fmt="{:.2f}"):
        m, s = pair
        return f"{fmt.format(m / scale)} ± {fmt.format(s / scale)}"

    head = f"| {'equation':14s} | {'test':10s} | {'method':20s} | {'CE x1e-3':>15s} | {'LL':>15s} | {'MSE x1e-4':>15s} |"
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(f"| {r['equation']:14s} | {r['param']:10s} | {r['method']:20s} | {ms(r['ce'], 1e-3):>15s} | "
                     f"{ms(r['ll']):>15s} | {ms(r['mse'], 1e-4):>15s} |")
    for eq, table in PAPER_TABLE_1.items():
        for method, (ce, ll, mse) in table.items():
            lines.append(f"| {eq:14s} | {'paper':10s} | {method:20s} | {ce / 1e-3:>15.2f} | {ll:>15.2f} | {mse / 1e-4:>15.2f} |")
    return "\n".join(lines)


def plot_anp_fronts(fronts, path):
    """The paper's figure: histograms of the sampled front of test function 1, one row per
    method, one column per test value, the exact front as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(FRONT_METHODS, ("#F8766D", "#7CAE00", "#00BFC4", "#C77CFF")))
    fig, axes = plt.subplots(len(FRONT_METHODS), len(fronts), figsize=(3.6 * len(fronts), 1.9 * len(FRONT_METHODS)),
                             squeeze=False, sharex="col")
    for j, (v, f) in enumerate(fronts.items()):
        both = np.concatenate([f[m]["function1"] for m in FRONT_METHODS])
        lo, hi = np.quantile(both, [0.002, 0.998])
        bins = np.linspace(min(lo, f["exact"]) - 0.01, max(hi, f["exact"]) + 0.01, 50)
        for i, m in enumerate(FRONT_METHODS):
            ax = axes[i, j]
            ax.hist(f[m]["function1"], bins=bins, color=colors[m])
            ax.axvline(f["exact"], color="k", lw=1.5)
            ax.set_title(f"{m}, p* = {v:g}", fontsize=9)
        axes[-1, j].set_xlabel("shock position x (t = 0.05)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main_anp(argv=None) -> int:
    """The paper's protocol with the attentive neural process (presets laptop and paper)."""
    args = parse_anp_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available to torch (use --device cpu)", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    lines = []

    def log(text):
        print(text, flush=True)
        lines.append(text)

    settings = {k: getattr(args, k) for k in ("preset", "hidden", "dropout", "train_functions", "epochs", "batch_size",
                                              "lr", "schedule", "latent_samples", "per_value", "device", "threads", "jobs", "b_from", "seed")}
    log("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    import platform

    log(f"machine: {platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start, "
        f"torch {torch.__version__}")
    start = time.perf_counter()
    rows, fronts = [], None
    trained = train_all(args, log)
    for name in args.equations:
        eq_rows, eq_fronts = run_anp_equation(name, args, log, trained)
        rows += eq_rows
        fronts = eq_fronts or fronts
    total = time.perf_counter() - start
    log("")
    log(format_anp_table(rows))
    if fronts:
        log("\nStefan shock position at t = 0.05, 500 samples per test function; the front of a sample is where it "
            "first falls to 0 (as the reference). Per method: signed and absolute error of each function's mean "
            "sampled front, averaged over the 50 functions (± se); sd: spread of one function's samples; "
            "'profile': |error| of the mean profile's own front, where it falls through p*/2:")
        for v, f in fronts.items():
            log(f"  p*={v:g}: exact front {f['exact']:.4f}")
            for m in FRONT_METHODS:
                r = f[m]
                log(f"    {m:12s} signed {r['signed_error']:+.4f}, |error| {r['mean_abs_error']:.4f} ± {r['se']:.4f}, "
                    f"sd {r['sd']:.4f}; profile |error| {r['mean_profile_half_jump']:.4f}")
            log(f"    (ANP sampled as the reference's analyze.py does, its standard deviations on the covariance "
                f"diagonal: signed {f['ANP']['signed_error_sd_as_variance']:+.4f})")
            mm = f["mass_moved"]
            log(f"    ProbConserv changed the mass by {mm['total']:+.2e}, of which {mm['ahead']:+.2e} ahead of the exact front")
        if not args.no_plots:
            path = args.front_plot or os.path.join(args.out, "stefan_front_histogram_anp.png")
            plot_anp_fronts(fronts, path)
            log(f"shock-position histogram: {path}")
    log(f"\ntotal {total:.1f} s on {args.device} ({args.jobs} process(es) of {args.threads} torch thread(s)), "
        f"load average {os.getloadavg()[0]:.1f} at the end")
    with open(os.path.join(args.out, "table_anp.md"), "w") as fh:
        fh.write(format_anp_table(rows) + "\n")
    with open(os.path.join(args.out, "metrics_anp.json"), "w") as fh:
        json.dump(dict(settings=settings, rows=rows, total_s=total,
                       fronts={str(v): {k: (x if not isinstance(x, dict) else {a: c for a, c in x.items() if a != "function1"})
                                        for k, x in f.items()} for v, f in (fronts or {}).items()}), fh, indent=1)
    if args.log:
        os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
        with open(args.log, "a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


def main(argv=None) -> int:
    """Dispatch on ``--base``: the attentive neural process (default) or the FNO ensemble."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--base", choices=["anp", "fno"], default="anp")
    known, _ = pre.parse_known_args(argv)
    if known.base == "fno":
        return main_fno(argv)
    return main_anp(argv)


if __name__ == "__main__":
    sys.exit(main())

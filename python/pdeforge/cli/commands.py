"""The commands ``pdeforge list``, ``show`` and ``run``: each ``cmd_*(args) -> exit status``."""

from __future__ import annotations

import math
import shlex
import sys

from pdeforge.cli.options import EXIT_BLOWUP, EXIT_INTERRUPTED, UsageError, parse_params
from pdeforge.errors import RunInterrupted
from pdeforge.solvers.run.signals import EXIT_STATUS


def cmd_list(args) -> int:
    from pdeforge.models import list_models

    for m in list_models():
        print(f"{m.name:<18} {m.title}")
    return 0


def cmd_show(args) -> int:
    import sympy as sp

    from pdeforge.codegen.build import compile_system
    from pdeforge.discretize.semidiscrete import discretize
    from pdeforge.cli.user_system import resolve_model
    from pdeforge.simplify.rewrite import simplify

    model = resolve_model(args.model)
    system = model.system(**parse_params(args.param))
    print(model.describe())
    print("\nparsed equations:")
    for f in system.fields:
        print(f"  d{f}/dt = {system.rhs[f]}".replace(f"({', '.join(system.axes)})", ""))
    if getattr(system, "discretization", "fd") == "spectral":
        return _show_spectral(system, args.code)
    scheme = args.scheme or model.scheme
    semi = simplify(discretize(_show_scalars(system), args.order, scheme))
    print(f"\nsemi-discrete right-hand side (order {args.order}, scheme {scheme}; f_p1_0 is f at offset (+1, 0)):")
    for f, expr in zip(semi.fields, semi.rhs):
        print(f"  {f}: {sp.sstr(expr)}")
    rep = semi.simplification
    print("\noperation counts per cell (after hoisting parameter/spacing invariants):")
    for f, counts in rep["fields"].items():
        print(
            f"  {f}: discretized {counts['ops_per_cell_raw']}, simplified {counts['ops_per_cell']}"
            f" (SymPy count of the raw stencil: {counts['ops_raw']})"
        )
    print(f"  all fields: {rep['ops_per_cell_before_cse']} before CSE, {rep['ops_per_cell_cse']} after CSE")
    ghost = ", ".join(f"{a}: {g}" for a, g in zip(system.axes, semi.ghost))
    print(f"ghost layers per axis: {ghost}")
    if args.code:
        # printing the source needs no runtime (a Julia kernel module starts Julia on its first call)
        kernel = compile_system(system, target=args.code, order=args.order, scheme=scheme, runtime=False)
        print(f"\n# ---- generated {args.code} kernels ({kernel.path}) ----")
        print(kernel.source)
    return 0


def _show_scalars(system):
    """Print the scalars' equations and reductions; the system to discretize (the lifted one)."""
    from pdeforge.symbolic.global_unknowns import coupling_of, has_coupling, lift

    if not has_coupling(system):
        return system
    for s in system.scalars:
        print(f"  d{s}/dt = {system.scalar_rhs[s]}   (scalar)".replace(f"({', '.join(system.axes)})", ""))
    coupling = coupling_of(system)
    print("\nscalars and reductions as space-constant fields of the lifted system:")
    for node, name in zip(coupling.reductions, coupling.reduction_names):
        print(f"  {name} = {node}".replace(f"({', '.join(system.axes)})", ""))
    return lift(system, coupling)


def _show_spectral(system, code: str | None) -> int:
    from pdeforge.codegen.spectral.compile import SPECTRAL_TARGETS, compile_spectral
    from pdeforge.discretize.spectral import spectral_discretize

    print("\nFourier pseudo-spectral plan of the solver (divergence-free, 2/3-truncated states):")
    print(spectral_discretize(system, form="solenoidal").describe())
    counts = spectral_discretize(system, with_radius=False).transform_counts()
    print(f"as written (PINO residual, any state): {counts['inverse']} inverse and {counts['forward']} forward "
          "real FFTs per right-hand side")
    if code:
        target = code if code in SPECTRAL_TARGETS else "numpy"
        kernel = compile_spectral(system, target=target, form="solenoidal")
        print(f"\n# ---- generated {target} spectral kernels ({kernel.path}) ----")
        print(kernel.source)
    return 0


def interrupted_line(exc: RunInterrupted, args) -> str:
    """One line: which signal stopped the run, what was saved, and the command that continues it."""
    from pdeforge.solvers.run.signals import signal_name

    ds = exc.dataset
    line = f"stopped by {signal_name(exc.signum)}: {len(ds.t)} frames up to t = {float(ds.t[-1]):g}"
    if not args.out:
        return line + " (not saved: give --out FILE.nc to keep and resume a run)"
    argv = list(getattr(args, "argv", []))
    command = shlex.join(["pdeforge", *argv, *([] if "--resume" in argv else ["--resume"])])
    return f"{line} saved in {args.out}; resume with: {command}"


def cmd_run(args) -> int:
    import warnings

    from pdeforge.cli.plotting import check_plot_path, plot_run
    from pdeforge.errors import BlowUpWarning
    from pdeforge.cli.user_system import resolve_model
    from pdeforge.plotting.movie import check_movie_path
    from pdeforge.models.run import solve
    from pdeforge.parallel.comm import launched_rank, launched_size
    from pdeforge.solvers.run.output import check_output_path, check_store_path

    model = resolve_model(args.model)
    params = parse_params(args.param)
    system, defaults = model.setup(params=params, grid=args.grid, seed=args.seed)
    # under mpiexec with several ranks the run is one simulation across them: one zarr store,
    # and the summary, warnings and picture come from rank 0
    distributed = launched_size() > 1
    quiet = args.quiet or launched_rank() != 0
    if args.out:
        (check_store_path if distributed else check_output_path)(args.out)
    elif args.resume:
        raise UsageError("--resume needs --out FILE.nc (the file of the run to continue)")
    if args.plot:
        check_plot_path(args.plot)
    if args.movie:
        check_movie_path(args.movie)
    from pdeforge.codegen.backends import get_backend
    from pdeforge.discretize.options import FiniteDifference
    from pdeforge.solvers.methods import get_method
    from pdeforge.solvers.run.output import Output

    method = get_method(args.method or defaults["method"])
    settings = {}
    if "stability" in method.SETTINGS:
        settings["stability"] = "error"
    # a model's preferred step is an upper bound; solve() lowers it to the stability limit
    if args.dt is None and args.method in (None, defaults["method"]) and defaults["dt"] is not None \
            and "dt_max" in method.SETTINGS:
        settings["dt_max"] = defaults["dt"]
    method = method.replace(**settings)
    t_end = args.t_end if args.t_end is not None else defaults["t_end"]
    save_every = args.save_every if args.save_every is not None else defaults["save_every"]
    if save_every is not None and save_every > t_end:
        save_every = t_end
    backend = None
    if args.backend is not None or args.device is not None or args.dtype not in (None, "float64"):
        name = args.backend or ("torch" if args.device is not None else None)
        if name is None:
            name = "numpy" if getattr(system, "discretization", "fd") == "spectral" else "numba"
        backend = get_backend(name)
        if args.device is not None:
            backend = backend.replace(device=args.device)
        if args.dtype is not None and "dtype" in backend.SETTINGS:
            backend = backend.replace(dtype=args.dtype)
    scheme = args.scheme or defaults["scheme"]
    discretization = None
    if getattr(system, "discretization", "fd") != "spectral":
        discretization = FiniteDifference(order=args.order, scheme=scheme)
    output = Output(args.out, save_every=save_every, resume=args.resume, in_memory=args.out is None,
                    variable_attrs=model.variable_attrs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BlowUpWarning)
        try:
            ds = solve(
                system,
                grid=defaults["grid"],
                t_span=(0.0, t_end),
                ic=defaults.pop("ic"),
                method=method,
                dt=args.dt,
                backend=backend,
                discretization=discretization,
                output=output,
                progress=False if quiet else None,
            )
        except RunInterrupted as exc:
            if launched_rank() == 0:
                print(f"pdeforge: {interrupted_line(exc, args)}", file=sys.stderr)
            return EXIT_STATUS.get(exc.signum, EXIT_INTERRUPTED)
    blew_up = [w for w in caught if issubclass(w.category, BlowUpWarning)]
    for w in caught if launched_rank() == 0 else ():
        if not issubclass(w.category, BlowUpWarning):
            print(f"pdeforge: warning: {w.message}", file=sys.stderr)
    a = ds.attrs
    if not quiet:
        cells = math.prod(ds[system.fields[0]].shape[1:])
        rate = cells * a["steps"] / a["wall_time_s"] / 1e6 if a["wall_time_s"] > 0 else float("nan")
        print(f"{model.name}: {a['grid']} cells, {a['method']} ({a['backend']}), {a['steps']} steps to t = {float(ds.t[-1]):g}")
        print(f"  compile {a['compile_time_s']:.2f} s (cache {'hit' if a['kernel_cache_hit'] else 'miss'}), "
              f"time stepping {a['wall_time_s']:.2f} s ({rate:.1f} M cell-steps/s)")
        from pdeforge.cli.plotting import volume_weights

        weights = volume_weights(ds)  # curvilinear grids: the mean over the disc, ball or cylinder
        for f in system.fields:
            last = ds[f].isel(t=-1)
            mean = last.mean() if weights is None else last.weighted(weights).mean()
            print(f"  {f}: min {float(last.min()):.4g}  mean {float(mean):.4g}  max {float(last.max()):.4g}")
    if args.plot and launched_rank() == 0:
        plot_run(ds, args.plot)
        if not quiet:
            print(f"  picture: {args.plot}")
    if args.movie and launched_rank() == 0:
        from pdeforge.plotting import animate

        animate(ds, args.movie)
        if not quiet:
            print(f"  movie: {args.movie}")
    if args.out and not quiet:
        print(f"  data: {args.out}")
    if blew_up:
        where = f"; last finite state saved in {args.out}" if args.out else ""
        if launched_rank() == 0:
            print(f"pdeforge: {blew_up[0].message}{where}", file=sys.stderr)
        return EXIT_BLOWUP
    return 0

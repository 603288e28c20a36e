"""The ``pdeforge`` command.

``pdeforge list``, ``pdeforge show MODEL``, ``pdeforge run MODEL [options]``. Bad input
exits with status 2 and one line on stderr; a run that blows up exits with status 1 after
saving its last finite state; Ctrl-C exits with status 130 after saving every frame so far.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from .errors import PDEForgeError, RunInterrupted

EXIT_USAGE = 2
EXIT_BLOWUP = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input (printed as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def _positive(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{name} must be a positive number, got {text!r}")
        return value

    return parse


def parse_grid(text: str) -> tuple[int, ...] | int:
    """``"256"`` -> 256, ``"64x32"`` -> (64, 32)."""
    parts = text.lower().split("x")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must look like N, NxM or NxMxK, got {text!r}") from None
    if not 1 <= len(sizes) <= 3 or any(n < 2 for n in sizes):
        raise argparse.ArgumentTypeError(f"grid must look like N, NxM or NxMxK with sizes >= 2, got {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def parse_params(items: Sequence[str] | None) -> dict[str, float]:
    """``["F=0.04", "k=0.06"]`` -> ``{"F": 0.04, "k": 0.06}``."""
    params: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param expects NAME=VALUE, got {item!r}")
        try:
            v = float(value)
        except ValueError:
            raise UsageError(f"--param {name.strip()}: value {value!r} is not a number") from None
        if not math.isfinite(v):
            raise UsageError(f"--param {name.strip()}: value {value!r} is not finite")
        params[name.strip()] = v
    return params


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {text!r}")
    return value


# --------------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from .models import list_models

    for m in list_models():
        print(f"{m.name:<18} {m.title}")
    return 0


def cmd_show(args) -> int:
    import sympy as sp

    from .backends.sympy_backend import simplify
    from .codegen.build import compile_system
    from .discretize.semidiscrete import discretize
    from .models import get_model

    model = get_model(args.model)
    system = model.system(**parse_params(args.param))
    print(model.describe())
    print("\nparsed equations:")
    for f in system.fields:
        print(f"  d{f}/dt = {system.rhs[f]}".replace(f"({', '.join(system.axes)})", ""))
    if getattr(system, "discretization", "fd") == "spectral":
        return _show_spectral(system, args.code)
    semi = simplify(discretize(system, args.order))
    print(f"\nsemi-discrete right-hand side (order {args.order}; f_p1_0 is f at offset (+1, 0)):")
    for f, expr in zip(system.fields, semi.rhs):
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
        kernel = compile_system(system, target=args.code, order=args.order)
        print(f"\n# ---- generated {args.code} kernels ({kernel.path}) ----")
        print(kernel.source)
    return 0


def _show_spectral(system, code: str | None) -> int:
    from .codegen.spectral import SPECTRAL_TARGETS, compile_spectral
    from .discretize.spectral import spectral_discretize

    print("\nFourier pseudo-spectral plan:")
    print(spectral_discretize(system).describe())
    if code:
        target = code if code in SPECTRAL_TARGETS else "numpy"
        kernel = compile_spectral(system, target=target)
        print(f"\n# ---- generated {target} spectral kernels ({kernel.path}) ----")
        print(kernel.source)
    return 0


def cmd_run(args) -> int:
    import warnings

    from .errors import BlowUpWarning
    from .models import get_model
    from .plotting import check_plot_path, plot_run
    from .solvers.output import check_output_path
    from .solvers.solve import solve

    model = get_model(args.model)
    params = parse_params(args.param)
    system, defaults = model.setup(params=params, grid=args.grid, seed=args.seed)
    if args.out:
        check_output_path(args.out)
    if args.plot:
        check_plot_path(args.plot)
    method = args.method or defaults["method"]
    dt = args.dt if args.dt is not None else (defaults["dt"] if args.method in (None, defaults["method"]) else None)
    t_end = args.t_end if args.t_end is not None else defaults["t_end"]
    save_every = args.save_every if args.save_every is not None else defaults["save_every"]
    if save_every is not None and save_every > t_end:
        save_every = t_end
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BlowUpWarning)
        try:
            ds = solve(
                system,
                grid=defaults["grid"],
                t_span=(0.0, t_end),
                ic=defaults["ic"],
                method=method,
                dt=dt,
                backend=args.backend,
                save_every=save_every,
                out=args.out,
                order=args.order,
                stability="error",
                progress=False if args.quiet else None,
                in_memory=args.out is None,
                device=args.device,
                dtype=args.dtype,
            )
        except RunInterrupted as exc:
            where = f"; saved to {args.out}" if args.out else ""
            print(f"pdeforge: interrupted: {len(exc.dataset.t)} frames up to t = {float(exc.dataset.t[-1]):g}{where}",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
    blew_up = [w for w in caught if issubclass(w.category, BlowUpWarning)]
    for w in caught:
        if not issubclass(w.category, BlowUpWarning):
            print(f"pdeforge: warning: {w.message}", file=sys.stderr)
    a = ds.attrs
    if not args.quiet:
        cells = math.prod(ds[system.fields[0]].shape[1:])
        rate = cells * a["steps"] / a["wall_time_s"] / 1e6 if a["wall_time_s"] > 0 else float("nan")
        print(f"{model.name}: {a['grid']} cells, {a['method']} ({a['backend']}), {a['steps']} steps to t = {float(ds.t[-1]):g}")
        print(f"  compile {a['compile_time_s']:.2f} s (cache {'hit' if a['kernel_cache_hit'] else 'miss'}), "
              f"time stepping {a['wall_time_s']:.2f} s ({rate:.1f} M cell-steps/s)")
        for f in system.fields:
            last = ds[f].isel(t=-1)
            print(f"  {f}: min {float(last.min()):.4g}  mean {float(last.mean()):.4g}  max {float(last.max()):.4g}")
    if args.plot:
        plot_run(ds, args.plot)
        if not args.quiet:
            print(f"  picture: {args.plot}")
    if args.out and not args.quiet:
        print(f"  data: {args.out}")
    if blew_up:
        where = f"; last finite state saved in {args.out}" if args.out else ""
        print(f"pdeforge: {blew_up[0].message}{where}", file=sys.stderr)
        return EXIT_BLOWUP
    return 0


# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pdeforge`` command."""
    from .codegen.build import TARGETS
    from .codegen.spectral import SPECTRAL_TARGETS
    from .solvers.methods import METHODS

    parser = _Parser(prog="pdeforge", description="Symbolic PDE systems to fast solvers.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="list the models of the catalogue")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="equations, simplified stencils, operation counts and kernels of a model")
    p.add_argument("model")
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    p.add_argument("--order", type=int, choices=(2, 4), default=2)
    p.add_argument("--code", choices=sorted(set(TARGETS) | set(SPECTRAL_TARGETS)),
                   help="also print the generated kernel source")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("run", help="run a model and write its results")
    p.add_argument("model")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="parameter value (repeatable)")
    p.add_argument("--grid", type=parse_grid, help="cells per axis: N, NxM or NxMxK")
    p.add_argument("--t-end", type=_positive("t-end"), dest="t_end")
    p.add_argument("--dt", type=_positive("dt"))
    p.add_argument("--method", choices=list(METHODS))
    p.add_argument("--backend", choices=sorted(set(TARGETS) | set(SPECTRAL_TARGETS)),
                   help="kernel target (default: numba for finite differences, numpy for spectral models)")
    p.add_argument("--device", help="torch device of the torch backend of spectral models (cpu, cuda, ...)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the spectral kernels")
    p.add_argument("--order", type=int, choices=(2, 4), default=2, help="accuracy order of the differences")
    p.add_argument("--save-every", type=_positive("save-every"), dest="save_every")
    p.add_argument("--out", metavar="FILE.nc")
    p.add_argument("--plot", metavar="FILE.png")
    p.add_argument("--seed", type=_seed)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_run)

    import importlib

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(sub)
    return parser


#: modules with an ``add_commands(subparsers)`` function that adds more subcommands
#: (each subcommand's ``func(args) -> int`` is called with the parsed arguments)
COMMAND_MODULES: tuple[str, ...] = ("pdeforge.export.cli",)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pdeforge`` command; returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except (UsageError, PDEForgeError) as exc:
        print(f"pdeforge: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"pdeforge: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pdeforge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # an internal bug: one line, the traceback on request
        if os.environ.get("PDEFORGE_DEBUG"):
            raise
        print(f"pdeforge: internal error: {type(exc).__name__}: {_one_line(exc)} (set PDEFORGE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``pdeforge export-julia MODEL``: write a standalone MethodOfLines.jl script of a model."""

from __future__ import annotations

import sys


def add_commands(subparsers) -> None:
    """Register ``export-julia`` (called by :func:`pdeforge.cli.build_parser`)."""
    from pdeforge.cli.options import _positive, _seed, parse_grid
    from pdeforge.solvers.methods import METHODS

    p = subparsers.add_parser(
        "export-julia",
        help="write a Julia script (ModelingToolkit + MethodOfLines) that solves a model",
        description="Write a standalone Julia script that solves MODEL with ModelingToolkit and "
        "MethodOfLines.jl on the same grid and saves the result as CSV (read it back with "
        "pdeforge.julia.export.read_mol_csv).",
    )
    p.add_argument("model")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="parameter value (repeatable)")
    p.add_argument("--grid", type=parse_grid, help="cells per axis: N, NxM or NxMxK")
    p.add_argument("--t-end", type=_positive("t-end"), dest="t_end")
    p.add_argument("--dt", type=_positive("dt"))
    p.add_argument("--method", choices=list(METHODS))
    p.add_argument("--order", type=int, choices=(2, 4), default=2)
    p.add_argument("--save-every", type=_positive("save-every"), dest="save_every")
    p.add_argument("--seed", type=_seed)
    p.add_argument("--out", metavar="FILE.jl", help="write the script here (default: standard output)")
    p.add_argument("--result", metavar="FILE.csv", help="CSV file the script writes its solution to")
    p.set_defaults(func=cmd_export_julia)


def cmd_export_julia(args) -> int:
    from pdeforge.cli.options import UsageError, parse_params
    from pdeforge.errors import PDEForgeError
    from pdeforge.julia.export import export_julia

    # PDEForgeError, not cli.UsageError: under `python -m pdeforge.cli` the running CLI module
    # is __main__, whose UsageError is another class than pdeforge.cli's
    if args.out is not None and not args.out.endswith(".jl"):
        raise PDEForgeError(f"--out expects a .jl file, got {args.out!r}")
    try:
        params = parse_params(args.param)
    except UsageError as exc:
        raise PDEForgeError(str(exc)) from None
    from pdeforge.discretize.options import FiniteDifference
    from pdeforge.solvers.run.output import Output

    text = export_julia(
        args.model,
        grid=args.grid,
        t_span=args.t_end,
        method=args.method,
        dt=args.dt,
        discretization=FiniteDifference(order=args.order),
        output=Output(args.result, save_every=args.save_every),
        params=params,
        seed=args.seed,
        script=args.out,
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"pdeforge: wrote {args.out}; run it with: julia --project=<pdeforge checkout> {args.out}", file=sys.stderr)
    return 0

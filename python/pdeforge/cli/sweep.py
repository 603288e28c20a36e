"""``pdeforge sweep MODEL``: a parameter sweep on Dask from the command line.

    pdeforge sweep gray-scott --param F=0.02,0.03 --param k=0.05:0.07:5 --seeds 0:100 \\
        [--scheduler ADDRESS | --workers N] --out runs.zarr

Exit status: 0 when every member completed; 1 when some blew up or failed (each recorded
in the store with its message); 2 for bad input; 130 when interrupted by Ctrl-C, 143 by SIGTERM
(the store is valid, rerunning the same command finishes it).
"""

from __future__ import annotations

import sys

from pdeforge.ensembles.values import SweepSpecError, parse_seeds, parse_values

VALUES_HELP = (
    "NAME=VALUES, repeatable: comma-separated numbers and start:stop:count ranges "
    "(count values from start to stop, both included), e.g. F=0.02,0.03 or k=0.05:0.07:5"
)
SEEDS_HELP = "seeds of the random initial condition: start:stop (stop excluded, as range) and commas, e.g. 0:100 or 1,5,9"


def parse_param_values(items: list[str] | None) -> dict[str, list[float]]:
    """``["F=0.02,0.03", "k=0.05:0.07:5"]`` -> ``{"F": [...], "k": [...]}``."""
    out: dict[str, list[float]] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SweepSpecError(f"--param expects NAME=VALUES, got {item!r}")
        if name in out:
            raise SweepSpecError(f"--param {name} is given twice; put all its values in one --param {name}=...")
        out[name] = parse_values(name, text)
    return out


def add_commands(subparsers) -> None:
    """Add ``pdeforge sweep`` to the ``pdeforge`` command."""
    from pdeforge.cli.options import add_simulation_options

    p = subparsers.add_parser(
        "sweep",
        help="run a parameter sweep (values x seeds) on Dask into one zarr store",
        description="Every combination of the --param values and --seeds, each one solve, run as Dask tasks "
        "and written member by member into a zarr store; rerunning the same command resumes it.",
    )
    p.add_argument("model")
    p.add_argument("--param", action="append", metavar="NAME=VALUES", help=VALUES_HELP)
    p.add_argument("--seeds", type=_seeds, metavar="SEEDS", help=SEEDS_HELP)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler (tcp://host:8786)")
    where.add_argument("--workers", type=_count, metavar="N", help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--out", default="runs.zarr", metavar="RUNS.zarr", help="the zarr store (default runs.zarr)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep store at --out")
    p.add_argument("--skip-failed", action="store_true", help="on a rerun, do not retry members that failed")
    add_simulation_options(p, torch_options=False)
    p.add_argument("--float32", action="store_true", help="store the fields as float32")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_sweep)


def _seeds(text: str) -> list[int]:
    import argparse

    try:
        return parse_seeds(text)
    except SweepSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--seeds: ")) from None


def _count(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"workers must be a positive whole number, got {text!r}")
    return value


def cmd_sweep(args) -> int:
    import numpy as np

    from pdeforge.cli.options import EXIT_INTERRUPTED
    from pdeforge.ensembles.member import STATUS_BLEW_UP, STATUS_COMPLETED, STATUS_FAILED
    from pdeforge.ensembles.runner import SweepInterrupted, SweepSpecError, sweep

    params = parse_param_values(args.param)
    try:
        from pdeforge.discretize.options import FiniteDifference
        from pdeforge.solvers.methods import get_method
        from pdeforge.solvers.run.output import Output

        method = get_method(args.method) if args.method is not None else None
        if args.dt is not None:
            if method is None:
                from pdeforge.models import get_model

                method = get_method(get_model(args.model).method)
            method = method.replace(dt=args.dt)
        if args.scheduler is not None and args.workers is not None:
            raise SweepSpecError("give either --scheduler (an existing cluster) or --workers (a local one), not both")
        ds = sweep(
            args.model, params=params, seeds=args.seeds, grid=args.grid, t_span=args.t_end,
            method=method, backend=args.backend or "numba",
            discretization=FiniteDifference(order=args.order, scheme=args.scheme),
            output=Output(args.out, save_every=args.save_every, dtype="float32" if args.float32 else "float64"),
            client=args.scheduler if args.scheduler is not None else args.workers, overwrite=args.overwrite,
            retry_failed=not args.skip_failed, progress=not args.quiet,
        )
    except SweepInterrupted as exc:
        from pdeforge.solvers.run.signals import EXIT_STATUS

        print(f"pdeforge: {exc}", file=sys.stderr)
        return EXIT_STATUS.get(exc.signum, EXIT_INTERRUPTED)
    status = ds.status.values
    counts = {code: int(np.sum(status == code)) for code in (STATUS_COMPLETED, STATUS_BLEW_UP, STATUS_FAILED)}
    if not args.quiet:
        print(f"{ds.attrs['model']}: {len(status)} members in {args.out}: {counts[STATUS_COMPLETED]} completed, "
              f"{counts[STATUS_BLEW_UP]} blew up, {counts[STATUS_FAILED]} failed")
    bad = np.flatnonzero((status == STATUS_BLEW_UP) | (status == STATUS_FAILED))
    if len(bad):
        first = int(bad[0])
        print(f"pdeforge: member {first}: {ds.error.values[first]} (see the store's status and error variables)",
              file=sys.stderr)
        return 1
    return 0

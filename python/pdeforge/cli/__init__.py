"""The ``pdeforge`` command.

``pdeforge list``, ``pdeforge show MODEL``, ``pdeforge run MODEL [options]``. Bad input
exits with status 2 and one line on stderr; a run that blows up exits with status 1 after
saving its last finite state; Ctrl-C exits with status 130 and SIGTERM with 143 after saving
every frame so far (``--resume`` continues the run).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pdeforge.errors import PDEForgeError
from pdeforge.solvers.run.signals import EXIT_STATUS, StopOnSignals, signal_name, signal_of
from pdeforge.cli import export_julia, plot_command, sweep
from pdeforge.cli.commands import cmd_list, cmd_run, cmd_show
from pdeforge.cli.options import (
    EXIT_BLOWUP,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    _Parser,
    _positive,
    _seed,
    add_simulation_options,
    parse_grid,
    parse_params,
)

__all__ = [
    "EXIT_BLOWUP", "EXIT_INTERRUPTED", "EXIT_USAGE", "UsageError", "_Parser", "_positive", "_seed",
    "add_simulation_options", "build_parser", "main", "parse_grid", "parse_params",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pdeforge`` command."""
    from pdeforge.codegen.build import TARGETS
    from pdeforge.discretize.finite_volume import SCHEMES
    from pdeforge.codegen.spectral.compile import SPECTRAL_TARGETS

    from pdeforge import __version__

    parser = _Parser(prog="pdeforge", description="Symbolic PDE systems to fast solvers.")
    parser.add_argument("--version", action="version", version=f"pdeforge {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="list the models of the catalogue")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="equations, simplified stencils, operation counts and kernels of a model")
    p.add_argument("model", help="a catalogue model or a system file (.toml, .py)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    p.add_argument("--order", type=int, choices=(2, 4), default=2)
    p.add_argument("--code", choices=sorted(set(TARGETS) | set(SPECTRAL_TARGETS)),
                   help="also print the generated kernel source")
    p.add_argument("--scheme", choices=list(SCHEMES), help="spatial scheme (default: the model's)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("run", help="run a model, or your own system from a .toml or .py file, and write its results")
    p.add_argument("model", help="a catalogue model (pdeforge list) or a system file: my_system.toml, my_system.py")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="parameter value (repeatable)")
    add_simulation_options(p)
    p.add_argument("--out", metavar="FILE.nc")
    p.add_argument("--plot", metavar="FILE.png", help="a quick-look picture of the last frame and the field means")
    p.add_argument("--movie", metavar="FILE.gif|FILE.mp4", help="a movie of every frame (mp4 needs imageio-ffmpeg)")
    p.add_argument("--seed", type=_seed)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last complete frame to --t-end (same options)")
    p.set_defaults(func=cmd_run)

    # more subcommands: each module's add_commands(subparsers) adds its parsers, whose
    # func(args) -> int is called with the parsed arguments
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


COMMAND_MODULES = (plot_command, export_julia, sweep)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pdeforge`` command; returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for the line that says how to resume
        with StopOnSignals():  # SIGTERM stops a command as Ctrl-C does, wherever it lands
            return int(args.func(args) or 0)
    except (UsageError, PDEForgeError) as exc:
        if _launched_rank() == 0:  # under mpiexec every rank meets the same error: one line, rank 0's
            print(f"pdeforge: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"pdeforge: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        signum = signal_of(exc)
        print(f"pdeforge: interrupted ({signal_name(signum)})", file=sys.stderr)
        return EXIT_STATUS.get(signum, EXIT_INTERRUPTED)
    except Exception as exc:  # an internal bug: one line, the traceback on request
        if os.environ.get("PDEFORGE_DEBUG"):
            raise
        print(f"pdeforge: internal error: {type(exc).__name__}: {_one_line(exc)} (set PDEFORGE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


def _launched_rank() -> int:
    from pdeforge.parallel.comm import launched_rank

    return launched_rank()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())



"""``pdeforge plot RUN.nc``: a picture (several frames) or a movie of any run's file."""

from __future__ import annotations

from pathlib import Path


def add_commands(subparsers) -> None:
    """Register ``plot`` (called by :func:`pdeforge.cli.build_parser`)."""
    p = subparsers.add_parser(
        "plot",
        help="draw several frames of a run's file (or write a movie of it)",
        description="Draw a run's file (written by pdeforge run --out or pdeforge.solve(output=...)): "
        "several frames of every field; 1-D fields as an x-t diagram, 3-D fields on a named slice.",
    )
    p.add_argument("file", help="the run's file (.nc or .zarr)")
    p.add_argument("--out", metavar="FILE.png", help="the picture (default: the run's name with .png)")
    p.add_argument("--frames", metavar="N|I,J,...", help="how many frames, spread evenly, or frame indices (0,-1)")
    p.add_argument("--field", action="append", metavar="NAME", help="a field to draw (repeatable; default all)")
    p.add_argument("--slice", metavar="DIM=VALUE", help="the plane of 3-D fields, e.g. z=0.5 (default: the middle)")
    p.add_argument("--movie", metavar="FILE.gif|FILE.mp4", help="write a movie of every frame instead of a picture")
    p.set_defaults(func=cmd_plot)


def parse_frames(text: str | None):
    """``"4"`` -> 4 frames; ``"0,-1"`` -> indices [0, -1]."""
    from pdeforge.errors import PDEForgeError

    if text is None:
        return None
    try:
        if "," in text:
            return [int(i) for i in text.split(",") if i.strip()]
        return int(text)
    except ValueError:
        raise PDEForgeError(f"--frames: a number of frames or indices like 0,5,-1, got {text[:40]!r}") from None


def parse_slice(text: str | None):
    """``"z=0.5"`` -> ``{"z": 0.5}``."""
    from pdeforge.errors import PDEForgeError

    if text is None:
        return None
    dim, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not dim.strip() or number is None:
        raise PDEForgeError(f"--slice expects DIM=VALUE such as z=0.5, got {text[:40]!r}")
    return {dim.strip(): number}


def cmd_plot(args) -> int:
    from pdeforge.cli.plotting import check_plot_path
    from pdeforge.plotting import animate, plot
    from pdeforge.plotting.frames import open_run

    ds = open_run(args.file)
    fields, at = args.field, parse_slice(args.slice)
    if args.movie:
        animate(ds, args.movie, fields=fields, slice=at)
        print(f"movie: {args.movie}")
        return 0
    out = check_plot_path(args.out or Path(args.file).with_suffix(".png").name)
    import matplotlib.pyplot as plt

    fig = plot(ds, frames=parse_frames(args.frames), fields=fields, slice=at, out=out)
    plt.close(fig)
    print(f"picture: {out}")
    return 0

"""``animate``: a run as a movie, every field side by side, one picture per frame.

GIFs are written by Pillow (a Matplotlib dependency); MP4s by the ffmpeg that the
``imageio-ffmpeg`` wheel ships, never a system binary, so a movie needs no installation beyond
pip. Frames are drawn once with fixed colour limits and updated in place, which keeps a
100-frame movie at a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pdeforge.errors import PDEForgeError, SolverError
from pdeforge.plotting.frames import colour_limits, cut, extent, fields_of, open_run, real_values

MOVIE_SUFFIXES = (".gif", ".mp4")


def check_output_file(path: str | os.PathLike, what: str, suffixes: tuple[str, ...]) -> Path:
    """Refuse a picture or movie path before a run starts: its suffix (one of ``suffixes``), and a
    folder that is missing or not writable; ``what`` names it in the message ("plot", "movie")."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise SolverError(f"{what} {str(p)!r}: use one of {', '.join(suffixes)}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise SolverError(f"{what} {str(p)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise SolverError(f"{what} {str(p)!r}: folder {str(folder)!r} is not writable")
    return p


def check_movie_path(path: str | os.PathLike) -> Path:
    """Refuse a movie path before a run starts: the suffix, the folder, and mp4 without its encoder."""
    p = check_output_file(path, "movie", MOVIE_SUFFIXES)
    if p.suffix.lower() == ".mp4":
        _ffmpeg()
    return p


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise PDEForgeError("an .mp4 movie needs the imageio-ffmpeg wheel (pip install imageio-ffmpeg, "
                            "or pdeforge[movie]); a .gif needs nothing more") from None
    return imageio_ffmpeg


def animate(
    ds,
    path: str | os.PathLike,
    fields: Sequence[str] | str | None = None,
    fps: float = 10,
    slice: Mapping[str, float] | None = None,
    cmap: str = "viridis",
    dpi: int = 80,
) -> Path:
    """Write a movie of a run: each frame shows every field side by side with the time.

    Colour limits (and the y-range of 1-D curves) are fixed over the whole run, so a fading
    field looks faded; 3-D fields are shown on a slice named in the panel's title.

    Args:
        ds: a Dataset from :func:`pdeforge.solve`, or the path of a file a run wrote.
        path: ``run.gif`` (Pillow) or ``run.mp4`` (H.264 through the imageio-ffmpeg wheel).
        fields: the fields to show (default: every field on time and space).
        fps: frames per second of the movie.
        slice: for 3-D fields, the plane as ``{dim: coordinate}`` (default: middle of the last axis).
        cmap: the Matplotlib colour map of images.
        dpi: resolution of each picture.

    Returns:
        The movie's path.
    """
    path = check_movie_path(path)
    ds = open_run(ds)
    names = fields_of(ds, fields)
    if not fps > 0:
        raise PDEForgeError(f"fps must be positive, got {fps!r}")
    from pdeforge.plotting.figure import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(3.9 * len(names), 3.5), squeeze=False, layout="constrained")
    panels = [_panel(fig, ax, ds, name, slice, cmap) for ax, name in zip(axes[0], names)]
    times = ds.t.values
    pictures = []
    for i, t in enumerate(times):
        for update in panels:
            update(i)
        fig.suptitle(f"t = {float(t):.4g}")
        fig.canvas.draw()
        pictures.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    if path.suffix.lower() == ".gif":
        _write_gif(path, pictures, fps)
    else:
        _write_mp4(path, pictures, fps)
    return path


def _panel(fig, ax, ds, name, at, cmap):
    """Draw frame 0 of one field and return ``update(i)`` that shows frame i."""
    data, where = cut(ds, name, at)
    data, modulus = real_values(data)
    data = data.load()
    label = (f"|{name}|" if modulus else name) + (f", {where}" if where else "")
    lo, hi = colour_limits(data)
    dims = [d for d in data.dims if d != "t"]
    ax.set_title(label)
    if len(dims) == 1:
        (line,) = ax.plot(data[dims[0]].values, data.isel(t=0).values, lw=1.5)
        pad = 0.05 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel(dims[0])
        return lambda i: line.set_ydata(data.isel(t=i).values)
    x, y = data[dims[0]].values, data[dims[1]].values
    im = ax.imshow(np.asarray(data.isel(t=0), dtype=float).T, origin="lower", extent=extent(x, y),
                   vmin=lo, vmax=hi, cmap=cmap, interpolation="nearest")
    ax.set_xlabel(dims[0])
    ax.set_ylabel(dims[1])
    fig.colorbar(im, ax=ax, shrink=0.85)
    return lambda i: im.set_data(np.asarray(data.isel(t=i), dtype=float).T)


def _write_gif(path: Path, pictures: list[np.ndarray], fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(p).convert("P", palette=Image.Palette.ADAPTIVE) for p in pictures]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)


def _write_mp4(path: Path, pictures: list[np.ndarray], fps: float) -> None:
    ffmpeg = _ffmpeg()
    h, w = pictures[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2  # H.264 with yuv420p needs even sizes
    writer = ffmpeg.write_frames(str(path), (w2, h2), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                 macro_block_size=1, quality=7)
    writer.send(None)
    for p in pictures:
        if (h2, w2) != (h, w):
            p = np.pad(p, ((0, h2 - h), (0, w2 - w), (0, 0)), mode="edge")
        writer.send(np.ascontiguousarray(p))
    writer.close()

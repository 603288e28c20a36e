"""``plot``: several frames of every field in one figure."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pdeforge.errors import PDEForgeError
from pdeforge.plotting.frames import (
    colour_limits, cut, extent, fields_of, frame_indices, open_run, real_values, spatial_dims,
)


def _pyplot():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    """Whether figures can be shown on screen (a notebook or an interactive session)."""
    import sys

    return "ipykernel" in sys.modules or hasattr(sys, "ps1")


def plot(
    ds,
    frames: int | Sequence[int] | None = None,
    fields: Sequence[str] | str | None = None,
    slice: Mapping[str, float] | None = None,
    out: str | os.PathLike | None = None,
    cmap: str = "viridis",
):
    """Draw a run: several frames of each field.

    1-D fields get an x-t diagram (space across, time up) beside curves of the chosen frames;
    2-D fields a row of images with one colour scale per field; 3-D fields the same on a
    slice, named in the row's label (``u, z = 0.49``). Complex fields are drawn by modulus.

    Args:
        ds: a Dataset from :func:`pdeforge.solve`, or the path of a file a run wrote.
        frames: how many frames to show, spread evenly from first to last, or their indices
            (``[0, -1]``). Default: 4 (5 curves in 1-D).
        fields: the fields to draw (default: every field on time and space).
        slice: for 3-D fields, the plane as ``{dim: coordinate}``, e.g. ``{"z": 0.5}``
            (default: the middle of the last axis).
        out: an image file to write (``.png``, ``.pdf``, ``.svg``); the figure is returned either way.
        cmap: the Matplotlib colour map of images.

    Returns:
        The Matplotlib figure.
    """
    ds = open_run(ds)
    names = fields_of(ds, fields)
    plt = _pyplot()
    one_d = all(len(spatial_dims(ds, f)) == 1 for f in names)
    if slice and all(len(spatial_dims(ds, f)) < 3 for f in names):
        raise PDEForgeError("slice: the fields drawn are not 3-D; slices are for 3-D fields")
    picked = frame_indices(ds.sizes["t"], frames, 5 if one_d else 4)
    if one_d:
        fig = _plot_1d(plt, ds, names, picked)
    else:
        fig = _plot_images(plt, ds, names, picked, slice, cmap)
    title = ds.attrs.get("model") or ds.attrs.get("system") or ""
    details = ", ".join(str(ds.attrs[k]) for k in ("method", "backend") if k in ds.attrs)
    if title or details:
        fig.suptitle(f"{title}  ({details})" if details else title)
    if out is not None:
        fig.savefig(Path(out), dpi=110)
    return fig


def _plot_1d(plt, ds, names, picked):
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 3.4 * len(names)), squeeze=False, layout="constrained")
    t = ds.t.values
    for (ax_xt, ax_curves), name in zip(axes, names):
        data, modulus = real_values(ds[name])
        label = f"|{name}|" if modulus else name
        (dim,) = spatial_dims(ds, name)
        x = ds[dim].values
        lo, hi = colour_limits(data)
        mesh = ax_xt.pcolormesh(x, t, np.asarray(data, dtype=float), shading="auto", vmin=lo, vmax=hi, cmap="viridis")
        fig.colorbar(mesh, ax=ax_xt, label=label)
        ax_xt.set_xlabel(dim)
        ax_xt.set_ylabel("t")
        ax_xt.set_title(f"{label}: x-t diagram")
        colours = plt.cm.viridis(np.linspace(0, 0.9, len(picked)))
        for colour, i in zip(colours, picked):
            ax_curves.plot(x, data.isel(t=i), color=colour, lw=1.4, label=f"t = {t[i]:.4g}")
        ax_curves.set_xlabel(dim)
        ax_curves.set_ylabel(label)
        ax_curves.legend(fontsize=8)
    return fig


def _plot_images(plt, ds, names, picked, at, cmap):
    n = len(picked)
    fig, axes = plt.subplots(len(names), n, figsize=(2.9 * n + 1.0, 2.8 * len(names)), squeeze=False,
                             layout="constrained")
    for row, name in zip(axes, names):
        data, where = cut(ds, name, at)
        data, modulus = real_values(data)
        label = (f"|{name}|" if modulus else name) + (f", {where}" if where else "")
        if data.ndim == 2:  # a 1-D field among 2-D ones: its x-t diagram in the row
            data = data.transpose("t", ...)
        lo, hi = colour_limits(data.isel(t=picked))
        xd, yd = [d for d in data.dims if d != "t"][:2] if data.ndim == 3 else (data.dims[1], "t")
        x = data[xd].values
        y = data[yd].values
        for ax, i in zip(row, picked):
            image = np.asarray(data.isel(t=i), dtype=float).T if data.ndim == 3 else np.asarray(data, dtype=float)
            im = ax.imshow(image, origin="lower", extent=extent(x, y), vmin=lo, vmax=hi, cmap=cmap,
                           aspect="equal" if data.ndim == 3 else "auto", interpolation="nearest")
            ax.set_title(f"t = {float(ds.t[i]):.4g}", fontsize=10)
            ax.set_xlabel(xd)
        row[0].set_ylabel(f"{label}\n{yd}")
        fig.colorbar(im, ax=list(row), shrink=0.85, label=label)
    return fig

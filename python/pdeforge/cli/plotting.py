"""Quick-look figures of a run: final fields and a time series of field means."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg")


def check_plot_path(path: str | os.PathLike) -> Path:
    """Validate a figure path before a run starts."""
    from pdeforge.plotting.movie import check_output_file

    return check_output_file(path, "plot", FIGURE_SUFFIXES)


def plot_run(ds, path: str | os.PathLike) -> Path:
    """Draw the last frame of every field and the mean of each field over time.

    1-D fields are drawn as curves (with the first frame for comparison), 2-D fields as
    images, 3-D fields as their middle z-slice.

    Args:
        ds: a Dataset from :func:`pdeforge.solve`.
        path: the figure file.
    """
    from pdeforge.cli.flowplot import is_flow, plot_flow

    if is_flow(ds):  # velocity fields with spectra: vorticity, E(k), energy
        return plot_flow(ds, path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = [v for v in ds.data_vars if "t" in ds[v].dims and ds[v].ndim >= 2]
    spatial = [d for d in ds[fields[0]].dims if d != "t"] if fields else []  # x, y, z or r, z
    n = len(fields)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.8), squeeze=False)
    axes = axes[0]
    t_last = float(ds.t[-1])
    for ax, name in zip(axes, fields):
        last = ds[name].isel(t=-1)
        if len(spatial) == 1:
            ax.plot(ds[spatial[0]], ds[name].isel(t=0), color="0.6", lw=1, label=f"t = {float(ds.t[0]):g}")
            ax.plot(ds[spatial[0]], last, lw=1.5, label=f"t = {t_last:g}")
            ax.set_xlabel(spatial[0])
            ax.set_ylabel(name)
            ax.legend(fontsize=8)
        else:
            if len(spatial) == 3:
                last = last.isel(z=last.sizes["z"] // 2)
            x, y = ds[spatial[0]].values, ds[spatial[1]].values
            im = ax.imshow(
                np.asarray(last).T, origin="lower", extent=(x[0], x[-1], y[0], y[-1]), cmap="viridis", aspect="equal"
            )
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_xlabel(spatial[0])
            ax.set_ylabel(spatial[1])
        ax.set_title(f"{name} at t = {t_last:g}")
    ax = axes[-1]
    weights = volume_weights(ds)
    for name in fields:
        mean = ds[name].mean(dim=spatial) if weights is None else ds[name].weighted(weights).mean(dim=spatial)
        ax.plot(ds.t, mean, label=f"mean {name}")
    ax.set_xlabel("t")
    ax.set_title("field means")
    ax.legend(fontsize=8)
    title = ds.attrs.get("model", "")
    fig.suptitle(f"{title}  ({ds.attrs.get('grid', '')}, {ds.attrs.get('method', '')}, {ds.attrs.get('backend', '')})")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def volume_weights(ds):
    """The cell volumes (up to a constant) of a curvilinear run's radius, else None (equal cells)."""
    m = {"polar": 1, "cylindrical": 1, "spherical": 2}.get(ds.attrs.get("geometry", "cartesian"))
    if m is None or "r" not in ds.dims or ds.sizes["r"] < 2:
        return None
    r = ds["r"]
    h = float(r[1] - r[0])
    return (r + h / 2) ** (m + 1) - (r - h / 2) ** (m + 1)

"""Quick-look figure of a flow run: vorticity slice, energy spectra, energy and enstrophy in time.

Used by :func:`pdeforge.cli.plotting.plot_run` for Datasets with flow diagnostics (those of the
spectral solver, which carry ``E_k``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

VELOCITY = ("u", "v", "w")


def is_flow(ds) -> bool:
    """Whether ``ds`` is a flow run with diagnostics (velocity fields and ``E_k``)."""
    return "E_k" in ds.data_vars and "u" in ds.data_vars and "v" in ds.data_vars


def vorticity_slice(ds, frame: int = -1) -> np.ndarray:
    """Vorticity ``dv/dx - du/dy`` of one frame (2-D), or of its middle z-slice (3-D), spectrally.

    Args:
        ds: a Dataset with periodic velocity ``u``, ``v`` on uniform ``x``, ``y`` (, ``z``).
        frame: index along ``t``.
    """
    u = np.asarray(ds["u"].isel(t=frame))
    v = np.asarray(ds["v"].isel(t=frame))
    axes = (0, 1)
    ks = []
    for a, name in enumerate(("x", "y")):
        c = np.asarray(ds[name])
        n = len(c)
        length = n * (c[1] - c[0])
        k = 2 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)
        if n % 2 == 0:
            k[n // 2] = 0.0  # odd derivative of the Nyquist mode
        shape = [1] * u.ndim
        shape[a] = n
        ks.append(k.reshape(shape))
    dvdx = np.real(np.fft.ifftn(1j * ks[0] * np.fft.fftn(v, axes=axes), axes=axes))
    dudy = np.real(np.fft.ifftn(1j * ks[1] * np.fft.fftn(u, axes=axes), axes=axes))
    w = dvdx - dudy
    if w.ndim == 3:
        w = w[:, :, w.shape[2] // 2]
    return w


def plot_flow(ds, path: str | os.PathLike) -> Path:
    """Vorticity of the last frame, E(k) at several times, energy and enstrophy over time.

    Args:
        ds: a flow Dataset (see :func:`is_flow`).
        path: the figure file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    t_last = float(ds.t[-1])
    w = vorticity_slice(ds)
    x, y = ds["x"].values, ds["y"].values
    lim = float(np.max(np.abs(w))) or 1.0
    im = axes[0].imshow(w.T, origin="lower", extent=(x[0], x[-1], y[0], y[-1]), cmap="RdBu_r",
                        vmin=-lim, vmax=lim, aspect="equal")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    where = " (middle z-slice)" if "z" in ds.dims else ""
    axes[0].set_title(f"vorticity at t = {t_last:g}{where}")
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("y")

    k = ds["k"].values
    ax = axes[1]
    picks = sorted(set(np.linspace(0, len(ds.t) - 1, min(5, len(ds.t))).round().astype(int)))
    cmap = plt.get_cmap("viridis")
    for j, i in enumerate(picks):
        e = ds["E_k"].isel(t=i).values
        keep = (k > 0) & (e > 0)
        ax.loglog(k[keep], e[keep], color=cmap(j / max(1, len(picks) - 1)), label=f"t = {float(ds.t[i]):.3g}")
    ax.set_xlabel("k")
    ax.set_ylabel("E(k)")
    ax.set_title("energy spectrum")
    ax.legend(fontsize=8)

    ax = axes[2]
    ax.plot(ds.t, ds["energy"], label="energy")
    ax.set_xlabel("t")
    ax.set_ylabel("energy")
    ax2 = ax.twinx()
    ax2.plot(ds.t, ds["enstrophy"], color="C1", label="enstrophy")
    ax2.set_ylabel("enstrophy")
    ax.set_title("energy and enstrophy")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8)
    fig.suptitle(f"{ds.attrs.get('model', '')}  ({ds.attrs.get('grid', '')}, {ds.attrs.get('method', '')}, "
                 f"{ds.attrs.get('backend', '')}, spectral)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

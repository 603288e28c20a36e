"""What a picture of a run shows: which fields, which frames, which 2-D cut of a 3-D field."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from pdeforge.errors import PDEForgeError


def open_run(ds_or_path):
    """A Dataset, or the Dataset in a file (netCDF or zarr) written by a run."""
    if not isinstance(ds_or_path, (str, os.PathLike)):
        return ds_or_path
    import xarray as xr

    path = os.fspath(ds_or_path)
    if not os.path.exists(path):
        raise PDEForgeError(f"{path!r}: no such file")
    try:
        if os.path.isdir(path) or path.endswith(".zarr"):
            return xr.open_zarr(path)
        return xr.open_dataset(path)
    except (OSError, ValueError) as exc:
        raise PDEForgeError(f"{path!r} is not a run's file that xarray can open ({' '.join(str(exc).split())[:120]})") from None


def fields_of(ds, fields: Sequence[str] | str | None = None) -> list[str]:
    """The fields to draw: variables on ``t`` and at least one space dimension (all, or those named)."""
    if "t" not in ds.dims:
        raise PDEForgeError("the Dataset has no time dimension 't'; give a run's Dataset or file")
    available = [v for v in ds.data_vars if ds[v].dims[:1] == ("t",) and ds[v].ndim >= 2]
    if not available:
        raise PDEForgeError("the Dataset has no field on (t, space); nothing to draw")
    if fields is None:
        return available
    names = [fields] if isinstance(fields, str) else list(fields)
    for name in names:
        if name not in available:
            raise PDEForgeError(f"no field {name!r} to draw (fields: {', '.join(available)})")
    return names


def spatial_dims(ds, field: str) -> list[str]:
    """The space dimensions of a field, in order (x, y, z or r, z)."""
    return [d for d in ds[field].dims if d != "t"]


def frame_indices(n_frames: int, frames: int | Sequence[int] | None, default: int) -> list[int]:
    """Frame indices to draw.

    Args:
        n_frames: frames in the run.
        frames: a number of frames spread evenly from first to last, or frame indices
            (negative counts from the end), or None for ``default`` evenly spread frames.
        default: how many frames None means.
    """
    if frames is None:
        frames = default
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        if frames < 1:
            raise PDEForgeError(f"frames: a positive number of frames or a list of frame indices, got {frames}")
        count = min(int(frames), n_frames)
        return sorted({int(round(i)) for i in np.linspace(0, n_frames - 1, count)})
    try:
        picked = [int(i) for i in frames]
    except (TypeError, ValueError):
        raise PDEForgeError(f"frames: a number of frames or a list of frame indices, got {frames!r}") from None
    for i in picked:
        if not -n_frames <= i < n_frames:
            raise PDEForgeError(f"frames: index {i} is outside the run's {n_frames} frames")
    return [i % n_frames for i in picked]


def cut(ds, field: str, at: Mapping[str, float] | None):
    """A 3-D field's 2-D slice (``at`` = {dim: coordinate}; default the middle of the last axis).

    Returns:
        (DataArray on t and two space dims, text naming the slice, e.g. ``"z = 0.49"``); a
        field of one or two space dimensions is returned as it is with an empty text.
    """
    dims = spatial_dims(ds, field)
    if len(dims) < 3:
        if at:
            raise PDEForgeError(f"slice: field {field!r} is {len(dims)}-D; slices are for 3-D fields")
        return ds[field], ""
    at = dict(at or {dims[-1]: float(ds[dims[-1]][ds.sizes[dims[-1]] // 2])})
    if len(at) != 1 or next(iter(at)) not in dims:
        raise PDEForgeError(f"slice: give one of {', '.join(dims)} and a coordinate, e.g. {{'{dims[-1]}': 0.5}}")
    (dim, value), = at.items()
    sliced = ds[field].sel({dim: value}, method="nearest")
    return sliced, f"{dim} = {float(sliced[dim]):.3g}"


def real_values(data):
    """Complex fields are drawn by their modulus (the name says so)."""
    if np.iscomplexobj(data.values if hasattr(data, "values") else data):
        return abs(data), True
    return data, False


def colour_limits(data) -> tuple[float, float]:
    """Fixed limits over every frame (finite values), so colours mean the same in each."""
    values = np.asarray(data, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def extent(x, y) -> tuple[float, float, float, float]:
    """The image extent of cell-centred coordinates: from the first cell's edge to the last's."""
    def edges(c):
        c = np.asarray(c, dtype=float)
        h = (c[-1] - c[0]) / (len(c) - 1) / 2 if len(c) > 1 else 0.5
        return c[0] - h, c[-1] + h

    return (*edges(x), *edges(y))

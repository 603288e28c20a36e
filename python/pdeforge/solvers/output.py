"""Results as xarray Datasets, and incremental netCDF files that survive interruptions."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import SolverError


def check_output_path(path: str | os.PathLike) -> Path:
    """Validate an output path before any work is done.

    Raises:
        SolverError: if the suffix is not ``.nc`` or the folder does not exist or is not writable.
    """
    p = Path(path)
    if p.suffix not in (".nc", ".nc4"):
        raise SolverError(f"output {str(p)!r}: use a .nc file name (netCDF)")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise SolverError(f"output {str(p)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise SolverError(f"output {str(p)!r}: folder {str(folder)!r} is not writable")
    if p.is_dir():
        raise SolverError(f"output {str(p)!r} is a folder")
    return p


class NetCDFWriter:
    """Appends one frame per call to a netCDF-4 file with an unlimited time dimension.

    Each frame is flushed to disk as it is written, so whatever stops the run (a blow-up, an
    exception, Ctrl-C) leaves a valid file with every frame written so far.

    Args:
        path: the ``.nc`` file to create (overwritten).
        grid: the grid (coordinates are written as cell centres).
        fields: data-variable names.
        attrs: global attributes (str, int or float values).
    """

    def __init__(self, path: str | os.PathLike, grid: UniformGrid, fields: Sequence[str], attrs: Mapping[str, object]):
        import netCDF4

        self.path = Path(path)
        self.fields = list(fields)
        # frames are written once and flushed: the default chunk cache (64 MiB per variable)
        # would only keep copies of frames already on disk, growing the process by a frame per
        # write. HDF5 takes the cache size when the file is created, so set the library default
        # around the creation and restore it afterwards.
        previous = netCDF4.get_chunk_cache()
        netCDF4.set_chunk_cache(0, 0, 1.0)
        try:
            self.nc = netCDF4.Dataset(self.path, "w", format="NETCDF4")
        except BaseException:
            netCDF4.set_chunk_cache(*previous)
            raise
        self.nc.createDimension("t", None)
        tvar = self.nc.createVariable("t", "f8", ("t",))
        tvar.long_name = "time"
        for a, name in enumerate(grid.axes):
            self.nc.createDimension(name, grid.shape[a])
            var = self.nc.createVariable(name, "f8", (name,))
            var[:] = grid.coordinates[a]
            var.long_name = f"cell-centre coordinate {name}"
        dims = ("t", *grid.axes)
        chunks = [1, *grid.shape]
        try:
            self.vars = {f: self.nc.createVariable(f, "f8", dims, chunksizes=chunks) for f in self.fields}
        finally:
            netCDF4.set_chunk_cache(*previous)
        self.set_attrs(attrs)
        self.count = 0
        # one contiguous frame buffer, reused: handing netCDF4 strided views of padded arrays
        # makes it copy every frame, and those short-lived 8 MB copies fragment the heap
        self._frame = np.empty(tuple(grid.shape))
        self.nc.sync()

    def append(self, t: float, cells: np.ndarray) -> None:
        """Write one frame (fields, *shape) at time ``t`` and flush it."""
        k = self.count
        self.nc.variables["t"][k] = t
        for i, f in enumerate(self.fields):
            np.copyto(self._frame, cells[i])
            self.vars[f][k] = self._frame
        self.count += 1
        self.nc.sync()

    def set_attrs(self, attrs: Mapping[str, object]) -> None:
        for key, value in attrs.items():
            self.nc.setncattr(key, value if isinstance(value, (int, float, str)) else str(value))
        self.nc.sync()

    def close(self) -> None:
        if self.nc.isopen():
            self.nc.close()


def to_dataset(
    grid: UniformGrid,
    fields: Sequence[str],
    times: Sequence[float],
    frames: Sequence[np.ndarray],
    attrs: Mapping[str, object],
):
    """An ``xarray.Dataset`` with dimension t plus x, y, z and one variable per field."""
    import xarray as xr

    data = np.stack(frames) if frames else np.zeros((0, len(fields), *grid.shape))
    dims = ("t", *grid.axes)
    coords = {"t": ("t", np.asarray(times, dtype=float), {"long_name": "time"})}
    for a, name in enumerate(grid.axes):
        coords[name] = (name, grid.coordinates[a], {"long_name": f"cell-centre coordinate {name}"})
    variables = {f: (dims, data[:, i]) for i, f in enumerate(fields)}
    return xr.Dataset(variables, coords=coords, attrs=dict(attrs))

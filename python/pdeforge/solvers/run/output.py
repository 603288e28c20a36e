"""Results as xarray Datasets, and incremental netCDF files that survive interruptions."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import SolverError

FRAMES_ATTR = "frames_complete"
RESTART_ATTR = "restart"
#: The CF conventions the files follow.
CONVENTIONS = "CF-1.10"
_AXIS = {"t": "T", "x": "X", "y": "Y", "z": "Z"}
#: CF standard names of coordinates in physical units (only given when the units are a length or a time).
_STANDARD_NAME = {"t": "time", "x": "projection_x_coordinate", "y": "projection_y_coordinate"}


def coordinate_attrs(name: str, meta: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """CF attributes of coordinate ``name`` (t, x, y, z): ``long_name``, ``units``
    (``meta[name]["units"]``, else "1": dimensionless), ``axis`` and a ``standard_name`` where
    the units allow one.

    CF makes a coordinate with ``axis = "T"`` a time coordinate, whose units must be a time
    since a reference date; the dimensionless time of most models is not one, so it gets no
    ``axis`` (it is still the record dimension). Space always gets its X, Y, Z axis.
    """
    given = dict((meta or {}).get(name, {}))
    units = given.get("units", "1")
    attrs = {"units": units, "long_name": "time" if name == "t" else f"cell-centre coordinate {name}"}
    physical = ("since" in units) if name == "t" else units in ("m", "km", "cm", "mm")
    if name == "r":  # the radius of a curvilinear grid: no CF axis (X, Y, Z, T) is one
        attrs["long_name"] = "cell-centre radius r"
    elif name != "t" or physical:
        attrs["axis"] = _AXIS.get(name, name.upper())
    if physical and name in _STANDARD_NAME:
        attrs["standard_name"] = _STANDARD_NAME[name]
    if physical and name == "t":
        attrs["calendar"] = "standard"
    attrs.update(given)
    return attrs


def field_attrs(name: str, meta: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """CF attributes of field ``name``: the model's ``units``/``long_name``/``standard_name``,
    else ``long_name`` = the name and ``units`` = "1"."""
    return {"long_name": name, "units": "1"} | dict((meta or {}).get(name, {}))


def check_output_path(path: str | os.PathLike) -> Path:
    """Validate an output path before any work is done.

    Raises:
        SolverError: if the suffix is not ``.nc`` or the folder does not exist or is not writable.
    """
    p = Path(path)
    if p.suffix not in (".nc", ".nc4"):
        raise SolverError(f"output {str(p)!r}: use a .nc file name (netCDF)")
    _check_folder(p)
    if p.is_dir():
        raise SolverError(f"output {str(p)!r} is a folder")
    return p


def check_store_path(path: str | os.PathLike) -> Path:
    """Validate the ``.zarr`` store of a run on several MPI ranks before any work is done."""
    p = Path(path)
    if p.suffix != ".zarr":
        raise SolverError(f"output {str(p)!r}: a distributed run writes one zarr store; use a .zarr name")
    _check_folder(p)
    return p


def _check_folder(p: Path) -> None:
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise SolverError(f"output {str(p)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise SolverError(f"output {str(p)!r}: folder {str(folder)!r} is not writable")


class NetCDFWriter:
    """Appends one frame per call to a netCDF-4 file with an unlimited time dimension.

    Each frame is flushed to disk as it is written, so whatever stops the run (a blow-up, an
    exception, Ctrl-C, SIGTERM) leaves a valid file with every frame written so far; only after
    a frame is synced is it counted in the ``frames_complete`` attribute, next to the stepper's
    ``restart`` state (:mod:`pdeforge.solvers.run.restart`). Coordinates and fields carry CF
    attributes (:func:`coordinate_attrs`, ``variable_attrs``).

    Args:
        path: the ``.nc`` file to create (overwritten).
        grid: the grid (coordinates are written as cell centres).
        fields: data-variable names.
        attrs: global attributes (str, int or float values).
        variable_attrs: per variable name (fields and coordinates ``t``, ``x``, ...), attributes
            such as ``units`` and ``long_name``.
        restart_state: called after each frame; its JSON-able dict is saved as ``restart``.
    """

    def __init__(self, path: str | os.PathLike, grid: UniformGrid, fields: Sequence[str], attrs: Mapping[str, object],
                 variable_attrs: Mapping[str, Mapping[str, str]] | None = None,
                 restart_state: Callable[[], dict] | None = None):
        import netCDF4

        self.path = Path(path)
        self.fields = list(fields)
        self.restart_state = restart_state
        #: called as ``on_frame(index)`` after a frame's fields are written, before it is counted
        self.on_frame: Callable[[int], None] | None = None
        meta = variable_attrs or {}
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
        tvar.setncatts(coordinate_attrs("t", meta))
        for a, name in enumerate(grid.axes):
            self.nc.createDimension(name, grid.shape[a])
            var = self.nc.createVariable(name, "f8", (name,))
            var[:] = grid.coordinates[a]
            var.setncatts(coordinate_attrs(name, meta))
        dims = ("t", *grid.axes)
        chunks = [1, *grid.shape]
        try:
            self.vars = {f: self.nc.createVariable(f, "f8", dims, chunksizes=chunks) for f in self.fields}
        finally:
            netCDF4.set_chunk_cache(*previous)
        for f, var in self.vars.items():
            var.setncatts(field_attrs(f, meta))
        self.count = 0
        self.set_attrs(dict(attrs) | {FRAMES_ATTR: 0})
        # one contiguous frame buffer, reused: handing netCDF4 strided views of padded arrays
        # makes it copy every frame, and those short-lived 8 MB copies fragment the heap
        self._frame = np.empty(tuple(grid.shape))
        self.nc.sync()

    @classmethod
    def reopen(cls, path: str | os.PathLike, grid: UniformGrid, fields: Sequence[str], frames: int,
               attrs: Mapping[str, object], restart_state: Callable[[], dict] | None = None) -> NetCDFWriter:
        """Open a file written by this class to append after its first ``frames`` frames.

        Frames beyond ``frames`` (cut by a crash) are dropped first.
        """
        import netCDF4

        self = cls.__new__(cls)
        self.path = Path(path)
        self.fields = list(fields)
        self.restart_state = restart_state
        self.on_frame = None
        drop_torn_frames(self.path, frames)
        previous = netCDF4.get_chunk_cache()
        netCDF4.set_chunk_cache(0, 0, 1.0)
        try:
            self.nc = netCDF4.Dataset(self.path, "a")
        finally:
            netCDF4.set_chunk_cache(*previous)
        self.vars = {f: self.nc.variables[f] for f in self.fields}
        self.count = int(frames)
        self._frame = np.empty(tuple(grid.shape))
        self.set_attrs(attrs)
        return self

    def append(self, t: float, cells: np.ndarray) -> None:
        """Write one frame (fields, *shape) at time ``t``, flush it, then count it as complete."""
        k = self.count
        self.nc.variables["t"][k] = t
        for i, f in enumerate(self.fields):
            np.copyto(self._frame, cells[i])
            self.vars[f][k] = self._frame
        if self.on_frame is not None:
            self.on_frame(k)
        self.nc.sync()
        self.count += 1
        done = {FRAMES_ATTR: self.count}
        if self.restart_state is not None:
            done[RESTART_ATTR] = json.dumps(self.restart_state())
        self.set_attrs(done)

    def set_attrs(self, attrs: Mapping[str, object]) -> None:
        for key, value in attrs.items():
            self.nc.setncattr(key, value if isinstance(value, (int, float, str)) else str(value))
        self.nc.sync()

    def close(self) -> None:
        if self.nc.isopen():
            self.nc.close()


def drop_torn_frames(path: Path, frames: int) -> None:
    """Rewrite ``path`` without the frames beyond ``frames`` (a frame cut by a crash).

    netCDF cannot shrink a dimension, so the whole frames are copied to a new file that then
    replaces the old one (a rename: the file is whole at every moment).
    """
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        if len(nc.dimensions["t"]) <= frames:
            return
    tmp = path.with_name(path.name + ".resume-tmp")
    with netCDF4.Dataset(path, "r") as src, netCDF4.Dataset(tmp, "w", format="NETCDF4") as dst:
        dst.setncatts({k: src.getncattr(k) for k in src.ncattrs()})
        for name, dim in src.dimensions.items():
            dst.createDimension(name, None if dim.isunlimited() else len(dim))
        for name, var in src.variables.items():
            chunks = var.chunking()
            out = dst.createVariable(name, var.dtype, var.dimensions,
                                     chunksizes=None if chunks == "contiguous" else chunks)
            out.setncatts({k: var.getncattr(k) for k in var.ncattrs()})
            out[:] = var[:frames] if var.dimensions[:1] == ("t",) else var[:]
    os.replace(tmp, path)


def open_writer(path, grid: UniformGrid, fields: Sequence[str], attrs: Mapping[str, object], restart=None,
                variable_attrs: Mapping[str, Mapping[str, str]] | None = None,
                restart_state: Callable[[], dict] | None = None, decomposition=None,
                times: Sequence[float] | None = None):
    """The writer of a run's file: a new one, or (``restart``, a :class:`~pdeforge.solvers.run.restart.Restart`)
    the file reopened after its last complete frame; None without a path.

    A run on several MPI ranks (``decomposition``, the process grid) writes one zarr store
    (:class:`~pdeforge.parallel.store.ZarrWriter`), sized for the output ``times``, each rank its block;
    with ``restart`` the store is continued after its last complete frame.
    """
    if path is None:
        return None
    if decomposition is not None:
        from pdeforge.parallel.store import ZarrWriter

        return ZarrWriter(check_store_path(path), decomposition, fields, times, attrs, coordinate_attrs, field_attrs,
                          variable_attrs, restart_state, frames=0 if restart is None else restart.frames)
    if restart is None:
        return NetCDFWriter(path, grid, fields, attrs, variable_attrs, restart_state)
    return NetCDFWriter.reopen(path, grid, fields, restart.frames, attrs, restart_state)


def to_dataset(
    grid: UniformGrid,
    fields: Sequence[str],
    times: Sequence[float],
    frames: Sequence[np.ndarray],
    attrs: Mapping[str, object],
    variable_attrs: Mapping[str, Mapping[str, str]] | None = None,
):
    """An ``xarray.Dataset`` with dimension t plus x, y, z and one variable per field (CF attributes
    as in the file: :func:`coordinate_attrs`, :func:`field_attrs`)."""
    import xarray as xr

    data = np.stack(frames) if frames else np.zeros((0, len(fields), *grid.shape))
    dims = ("t", *grid.axes)
    coords = {"t": ("t", np.asarray(times, dtype=float), coordinate_attrs("t", variable_attrs))}
    for a, name in enumerate(grid.axes):
        coords[name] = (name, grid.coordinates[a], coordinate_attrs(name, variable_attrs))
    variables = {f: (dims, data[:, i], field_attrs(f, variable_attrs)) for i, f in enumerate(fields)}
    return xr.Dataset(variables, coords=coords, attrs=dict(attrs))


class Output:
    """Where and how often a run writes, and whether it continues an earlier one.

    Args:
        path: a ``.nc`` file written frame by frame while the run goes (None: memory only).
        save_every: model time between saved frames (default: 50 frames over the span).
        resume: continue the run in ``path`` from its last complete frame to ``t_span``'s end,
            appending frames (:mod:`pdeforge.solvers.run.restart`). The options that decide the
            solution must be those recorded in the file; fixed-step methods continue bit for bit,
            adaptive and implicit ones from the saved step size.
        in_memory: keep every frame in memory (default). With a path and ``in_memory=False``
            frames go only to the file and the returned Dataset reads them lazily from it.
        variable_attrs: CF attributes per variable (fields, ``t``, ``x``, ...) such as ``units``,
            ``long_name`` (catalogue models pass theirs).
        dtype: precision of the stored fields of a sweep's store ("float64" or "float32"; None:
            the run's). A single run's file holds the run's own precision.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, save_every: float | None = None,
                 resume: bool = False, in_memory: bool = True,
                 variable_attrs: Mapping[str, Mapping[str, str]] | None = None, dtype: str | None = None):
        if save_every is not None:
            if isinstance(save_every, bool) or not isinstance(save_every, (int, float)) or not (
                    save_every > 0 and np.isfinite(save_every)):
                raise SolverError(f"save_every must be a positive number, got {save_every!r}")
        if resume and path is None:
            raise SolverError("resume=True needs a path: Output('run.nc', resume=True) (the file of the run to continue)")
        if not in_memory and path is None:
            raise SolverError("in_memory=False needs a path: Output('run.nc', in_memory=False)")
        self.path = path
        self.save_every = None if save_every is None else float(save_every)
        self.resume = bool(resume)
        self.in_memory = bool(in_memory)
        self.variable_attrs = variable_attrs
        if dtype not in (None, "float64", "float32"):
            raise SolverError(f"Output: dtype {dtype!r} is not valid (valid: 'float64', 'float32', None)")
        self.dtype = dtype

    def replace(self, **changes) -> Output:
        """A copy with ``changes`` applied."""
        values = dict(path=self.path, save_every=self.save_every, resume=self.resume, in_memory=self.in_memory,
                      variable_attrs=self.variable_attrs, dtype=self.dtype)
        values.update(changes)
        path = values.pop("path")
        return Output(path, **values)

    def __repr__(self) -> str:
        shown = [repr(str(self.path))] if self.path is not None else []
        shown += [f"{k}={getattr(self, k)!r}" for k, default in
                  (("save_every", None), ("resume", False), ("in_memory", True)) if getattr(self, k) != default]
        return f"Output({', '.join(shown)})"


def get_output(output) -> Output:
    """The :class:`Output` for ``output``: None (memory only), a path, or an object."""
    if output is None:
        return Output()
    if isinstance(output, Output):
        return output
    if isinstance(output, (str, os.PathLike)):
        return Output(output)
    raise SolverError(f"output: expected a path or pdeforge.Output(path, save_every=...), got {type(output).__name__}")

"""One zarr store written by every rank of a distributed run.

Rank 0 writes the template: the same variables, coordinates and attributes as the netCDF
file of a one-process run (:class:`pdeforge.solvers.run.output.NetCDFWriter`), with the time
axis sized for every output time and each field chunked one frame by one block. Each rank then
writes its own block of every frame (whole chunks where the split is even, so no two ranks
write one chunk); after all ranks have written a frame, rank 0 writes its time and counts it in
``frames_complete``. Closing cuts the time axis to the complete frames, so the store opened by
``xarray.open_zarr`` holds exactly the frames computed, whatever stopped the run.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np

from pdeforge.parallel.decomposition import Decomposition

FRAMES_ATTR = "frames_complete"
RESTART_ATTR = "restart"


def chunks_of(decomposition: Decomposition) -> tuple[int, ...]:
    """Chunk length per axis that every block boundary falls on (one block per chunk where the
    split is even; a common divisor of the block boundaries where it is not)."""
    out = []
    for a, blocks in enumerate(decomposition.blocks):
        bounds = [start for start, _ in blocks[1:]] + [decomposition.grid.shape[a]]
        out.append(reduce(math.gcd, bounds))
    return tuple(out)


class ZarrWriter:
    """Frames of a distributed run into one zarr store (every rank calls every method).

    Args:
        path: the ``.zarr`` store to create (replaced).
        decomposition: the process grid (its global grid gives the coordinates).
        fields: data-variable names.
        times: every output time of the run (the time axis is sized for them).
        attrs: global attributes.
        coordinate_attrs, field_attrs: functions giving the CF attributes of a coordinate and of
            a field (the netCDF writer's), with ``variable_attrs`` passed to them.
        variable_attrs: per variable, attributes such as ``units`` and ``long_name``.
        restart_state: called after each frame; its JSON-able dict is saved as ``restart``.
        frames: the complete frames of a store being continued (0: a new store). Its time axis
            is resized to hold them and ``times`` after the first (the frame it resumes from),
            and its attributes are updated with ``attrs``.
    """

    def __init__(self, path: str | os.PathLike, decomposition: Decomposition, fields: Sequence[str],
                 times: Sequence[float], attrs: Mapping[str, object], coordinate_attrs: Callable,
                 field_attrs: Callable, variable_attrs: Mapping[str, Mapping[str, str]] | None = None,
                 restart_state: Callable[[], dict] | None = None, frames: int = 0):
        self.path = Path(path)
        self.decomposition = decomposition
        self.comm = decomposition.comm
        self.fields = list(fields)
        self.restart_state = restart_state
        self.on_frame: Callable[[int], None] | None = None  # writes a frame's variables beside the fields
        self.count = int(frames)
        grid = decomposition.grid
        self.slices = decomposition.block.slices
        import zarr

        def open_group():  # the metadata as written: the consolidated copy is the template's
            return zarr.open_group(str(self.path), mode="r+", use_consolidated=False)

        if self.comm.Get_rank() == 0:
            if frames == 0:
                self._template(grid, len(times), attrs, coordinate_attrs, field_attrs, variable_attrs)
            else:
                self._continue(open_group(), frames + len(times) - 1, attrs)
        self.comm.Barrier()
        self.group = open_group()
        self.arrays = {f: self.group[f] for f in self.fields}
        # a store continued under another decomposition may have chunks that two blocks share:
        # then the ranks write in turn, as two writers of one chunk would lose each other's part
        chunks = self.arrays[self.fields[0]].chunks[1:]
        aligned = all(s.start % c == 0 and (s.stop % c == 0 or s.stop == n)
                      for s, c, n in zip(self.slices, chunks, grid.shape))
        self.in_turn = not all(self.comm.allgather(aligned))

    def _continue(self, group, nt: int, attrs) -> None:
        """Size the time axis of an existing store for ``nt`` frames and update its attributes."""
        _resize_time(group, nt)
        group["t"][self.count:] = np.nan
        group.attrs.update(_plain(attrs))

    def add_variables(self, variables: Mapping[str, tuple], coords: Mapping[str, tuple] | None = None) -> None:
        """Add variables beside the fields, filled with NaN (every rank calls; rank 0 writes).

        Args:
            variables: ``name -> (dims, attrs)``; ``dims`` are "t" (sized for every output
                time, cut with the fields on :meth:`close`) and the axes of ``coords``.
            coords: ``name -> (values, attrs)`` of the new axes.
        """
        if self.comm.Get_rank() == 0:
            import xarray as xr

            sizes = {"t": self.group["t"].shape[0]} | {name: len(values) for name, (values, _) in (coords or {}).items()}
            data = {name: (dims, np.full(tuple(sizes[d] for d in dims), np.nan), attrs)
                    for name, (dims, attrs) in variables.items()}
            ds = xr.Dataset(data, coords={name: (name, np.asarray(values), attrs)
                                          for name, (values, attrs) in (coords or {}).items()})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                ds.to_zarr(str(self.path), mode="a", consolidated=True)
        self.comm.Barrier()
        import zarr

        self.group = zarr.open_group(str(self.path), mode="r+", use_consolidated=False)

    def define_series(self, name: str, attrs: Mapping[str, str]) -> None:
        """Add a variable on dimension ``t`` beside the fields (a scalar unknown); rank 0 writes it."""
        if self.comm.Get_rank() == 0:
            n = self.group["t"].shape[0]
            self.group.create_array(name, shape=(n,), chunks=(max(n, 1),), dtype="f8", fill_value=np.nan,
                                    dimension_names=("t",), attributes=dict(attrs))

    def write_series(self, name: str, index: int, value: float) -> None:
        """Write frame ``index`` of a variable added by :meth:`define_series` (rank 0; the value
        is the same on every rank)."""
        if self.comm.Get_rank() == 0:
            self.group[name][index] = value

    def _template(self, grid, nt, attrs, coordinate_attrs, field_attrs, variable_attrs) -> None:
        import dask.array as da
        import xarray as xr

        dims = ("t", *grid.axes)
        chunks = (1, *chunks_of(self.decomposition))
        coords = {"t": ("t", np.full(nt, np.nan), coordinate_attrs("t", variable_attrs))}
        for a, name in enumerate(grid.axes):
            coords[name] = (name, grid.coordinates[a], coordinate_attrs(name, variable_attrs))
        data = {f: (dims, da.full((nt, *grid.shape), np.nan, chunks=chunks), field_attrs(f, variable_attrs))
                for f in self.fields}
        ds = xr.Dataset(data, coords=coords, attrs=_plain(attrs) | {FRAMES_ATTR: 0})
        encoding = {f: {"chunks": chunks} for f in self.fields} | {"t": {"chunks": (max(nt, 1),)}}
        with warnings.catch_warnings():  # consolidated metadata: what xarray.open_zarr reads first
            warnings.simplefilter("ignore", UserWarning)
            ds.to_zarr(str(self.path), mode="w", compute=False, encoding=encoding, consolidated=True)

    def append(self, t: float, cells: np.ndarray) -> None:
        """Write this rank's block of one frame at time ``t``; rank 0 counts it once all have.

        ``cells``: this rank's block ``(fields, *block shape)``, or the whole frame (gathered
        for the in-memory Dataset), of which the block is written.
        """
        k = self.count
        whole = tuple(cells.shape[1:]) == tuple(self.decomposition.grid.shape)
        for turn in range(self.comm.Get_size()) if self.in_turn else [None]:
            if turn is None or turn == self.comm.Get_rank():
                for i, f in enumerate(self.fields):
                    block = cells[(i, *self.slices)] if whole else cells[i]
                    self.arrays[f][(k, *self.slices)] = np.ascontiguousarray(block)
            if turn is not None:
                self.comm.Barrier()
        if self.on_frame is not None:
            self.on_frame(k)
        state = self.restart_state() if self.restart_state is not None else None
        self.comm.Barrier()  # every block of frame k is on disk
        self.count += 1
        if self.comm.Get_rank() == 0:
            self.group["t"][k] = t
            done = {FRAMES_ATTR: self.count}
            if state is not None:
                done[RESTART_ATTR] = json.dumps(state)
            self.group.attrs.update(done)

    def set_attrs(self, attrs: Mapping[str, object]) -> None:
        if self.comm.Get_rank() == 0:
            self.group.attrs.update(_plain(attrs))

    def close(self) -> None:
        """Cut the time axis to the complete frames and consolidate the metadata (rank 0)."""
        self.comm.Barrier()
        if self.comm.Get_rank() == 0:
            import zarr

            _resize_time(self.group, self.count)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                zarr.consolidate_metadata(str(self.path))
        self.comm.Barrier()


def _resize_time(group, nt: int) -> None:
    """Resize every variable of ``group`` whose first dimension is ``t`` to ``nt`` frames."""
    for _, arr in group.arrays():
        if tuple(arr.metadata.dimension_names or ())[:1] == ("t",) and arr.shape[0] != nt:
            arr.resize((nt, *arr.shape[1:]))


def _plain(attrs: Mapping[str, object]) -> dict[str, Any]:
    """Attributes as the netCDF file stores them: str, int and float values, others as text."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value if isinstance(value, (int, float, str)) else str(value)
    return out

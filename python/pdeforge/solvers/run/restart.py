"""Continue a run from its output file (``pdeforge.solve(..., out=path, resume=True)``, ``--resume``).

A file written by :class:`~pdeforge.solvers.run.output.NetCDFWriter` records, after every frame
that is fully written and synced to disk, two global attributes:

``frames_complete``
    how many frames (along ``t``) are whole. A frame cut by a crash or ``kill -9`` lies beyond
    it and is never counted; resuming drops it.
``restart``
    JSON of what a restart needs besides the state at the last frame: ``steps`` (steps taken so
    far), ``dt`` (the current step size: the fixed step, or the adaptive controller's next
    step), ``err_prev`` (the Dormand-Prince PI controller's memory), counters of the implicit
    solver, and ``rng_state``: the slot for the random generator's state of systems with noise
    terms (``numpy.random.Generator.bit_generator.state``). A stepper that draws random numbers
    returns it from ``restart_state()`` and takes it back in ``restore()``; the file carries it
    unchanged.

The options that decide the solution (equations, parameters, grid, domain, boundary
conditions, method, order, scheme, dt, tolerances) must be those recorded in the file; the
backend may differ. Fixed-step methods split every interval between output times into equal
steps, so a resumed run whose output times continue those of the file takes exactly the
steps of an uninterrupted run and agrees with it to round-off.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pdeforge.errors import SolverError
from pdeforge.solvers.run.inputs import RunInputs, save_times
from pdeforge.solvers.run.output import FRAMES_ATTR, RESTART_ATTR
#: Attributes whose values must agree between the file and the resumed run.
CHECKED = ("model", "equations", "parameters", "grid", "domain", "bcs", "method", "order", "scheme",
           "discretization", "dt", "dt_rule", "rtol", "atol")


@dataclass
class Restart:
    """The last complete frame of a file and what continuing from it needs.

    Attributes:
        path: the file.
        attrs: its global attributes.
        frames: number of complete frames.
        t0: time of the first frame (where the run began).
        t: time of the last complete frame (where the resumed run begins).
        state: the stepper's restart state (see the module docstring).
        read: reads the state there, ``(fields, *shape)``, or the block of it that a tuple of
            slices (one per axis) names (a rank of a distributed run reads only its own block).
    """

    path: Path
    attrs: dict
    frames: int
    t0: float
    t: float
    state: dict
    read: Callable[[tuple[slice, ...] | None], np.ndarray]

    @property
    def cells(self) -> np.ndarray:
        """The whole state at the last complete frame, ``(fields, *shape)``."""
        return self.read(None)

    def block(self, slices: tuple[slice, ...]) -> np.ndarray:
        """The block ``slices`` of the state at the last complete frame, ``(fields, *block shape)``."""
        return self.read(tuple(slices))

    @property
    def dt(self) -> float | None:
        """The step recorded for the run (None when it chose none)."""
        dt = float(self.attrs.get("dt", math.nan))
        return dt if math.isfinite(dt) else None


def _damaged(path: Path, why: str) -> SolverError:
    return SolverError(f"resume {str(path)!r}: {why}; it cannot be resumed (run without resume to start anew)")


def read_restart(path: str | os.PathLike, fields) -> Restart:
    """Open ``path`` and read its last complete frame of ``fields``.

    Raises:
        SolverError: one line if the file is missing, damaged (unreadable, truncated), not a
            pdeforge run, lacks a field, or has no complete frame.
    """
    path = Path(path)
    if path.suffix == ".zarr":
        return read_store_restart(path, fields)
    import netCDF4

    if not path.is_file():
        raise SolverError(f"resume {str(path)!r}: no such file (run without resume to create it)")
    try:
        nc = netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise _damaged(path, f"the file is damaged or not netCDF ({' '.join(str(exc).split())})") from None
    try:
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
        if FRAMES_ATTR not in attrs or RESTART_ATTR not in attrs:
            raise _damaged(path, f"it has no {FRAMES_ATTR!r} and {RESTART_ATTR!r} attributes (not a pdeforge run "
                                 "file, or one written before restarts were recorded)")
        frames = int(attrs[FRAMES_ATTR])
        missing = [f for f in fields if f not in nc.variables]
        if "t" not in nc.variables or missing:
            raise _damaged(path, f"it lacks the variable(s) {', '.join(missing or ['t'])}")
        if frames < 1 or frames > len(nc.variables["t"]):
            raise _damaged(path, f"{FRAMES_ATTR} = {frames} but the file holds {len(nc.variables['t'])} frames")
        try:
            t = np.asarray(nc.variables["t"][:frames], dtype=float)
            cells = np.stack([np.asarray(nc.variables[f][frames - 1], dtype=float) for f in fields])
            state = json.loads(attrs[RESTART_ATTR])
        except (OSError, RuntimeError, ValueError, IndexError) as exc:
            raise _damaged(path, f"its last complete frame cannot be read ({' '.join(str(exc).split())})") from None
    finally:
        nc.close()
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0) and np.all(np.isfinite(cells))):
        raise _damaged(path, "its last complete frame is not finite, or its times do not increase")
    return Restart(path, attrs, frames, float(t[0]), float(t[-1]), state,
                   lambda slices: cells if slices is None else cells[(slice(None), *slices)])


def read_store_restart(path: Path, fields) -> Restart:
    """The last complete frame of the zarr store of a distributed run (see
    :class:`~pdeforge.parallel.store.ZarrWriter`); the state is read block by block when asked.

    Frames beyond ``frames_complete`` (a run stopped between frames) are ignored; the writer
    that continues the store overwrites them.
    """
    import zarr

    if not path.is_dir():
        raise SolverError(f"resume {str(path)!r}: no such store (run without resume to create it)")
    try:
        # the metadata as written, not the consolidated copy (stale in a store whose run was stopped)
        group = zarr.open_group(str(path), mode="r", use_consolidated=False)
        attrs = dict(group.attrs)
    except Exception as exc:  # zarr raises several kinds for a folder that is not a store
        raise _damaged(path, f"it is not a zarr store ({' '.join(str(exc).split())})") from None
    if FRAMES_ATTR not in attrs or RESTART_ATTR not in attrs:
        raise _damaged(path, f"it has no {FRAMES_ATTR!r} and {RESTART_ATTR!r} attributes (not the store of a "
                             "pdeforge run)")
    frames = int(attrs[FRAMES_ATTR])
    missing = [f for f in ("t", *fields) if f not in group]
    if missing:
        raise _damaged(path, f"it lacks the variable(s) {', '.join(missing)}")
    if frames < 1 or frames > group["t"].shape[0]:
        raise _damaged(path, f"{FRAMES_ATTR} = {frames} but the store holds {group['t'].shape[0]} frames")
    t = np.asarray(group["t"][:frames], dtype=float)
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
        raise _damaged(path, "the times of its complete frames are not finite or do not increase")
    arrays = [group[f] for f in fields]

    def read(slices):
        where = (frames - 1, *(slices if slices is not None else ()))
        return np.stack([np.asarray(a[where], dtype=float) for a in arrays])

    return Restart(path, attrs, frames, float(t[0]), float(t[-1]), json.loads(attrs[RESTART_ATTR]), read)


def check_options(restart: Restart, attrs: dict, keys=CHECKED) -> None:
    """Raise one :class:`SolverError` naming every option of ``attrs`` that differs from the file's."""
    diffs = []
    for key in keys:
        if key not in attrs and key not in restart.attrs:
            continue
        new, old = attrs.get(key), restart.attrs.get(key)
        if key == "dt" and "dt_chosen" in attrs and "dt_chosen" in restart.attrs:
            # a fixed-step run records the step taken (its rounding depends on the output times);
            # the option is the step it chose
            new, old = attrs["dt_chosen"], restart.attrs["dt_chosen"]
        if not _same(old, new):
            diffs.append(f"{key} is {_show(old)} in the file but {_show(new)} now")
    if diffs:
        raise SolverError(f"resume {str(restart.path)!r}: options differ from the run being resumed: "
                          + "; ".join(diffs))


def _same(a, b) -> bool:
    if isinstance(a, (float, int, np.floating, np.integer)) and isinstance(b, (float, int, np.floating, np.integer)):
        return float(a) == float(b) or (math.isnan(float(a)) and math.isnan(float(b)))
    return a is not None and b is not None and str(a) == str(b)


def _show(value) -> str:
    return "absent" if value is None else repr(value.item() if isinstance(value, np.generic) else value)


def begin_resume(inputs: RunInputs, resume: bool, fields, save_every) -> tuple[RunInputs, Restart | None]:
    """With ``resume``: the file's last complete frame, and the inputs of the run continuing from it
    (``t0`` its time; output times those of a run from the file's first frame, after it)."""
    if not resume:
        return inputs, None
    if inputs.out_path is None:
        raise SolverError("resume=True needs out= (the file of the run to continue)")
    restart = read_restart(inputs.out_path, fields)
    grid = {"grid": "x".join(map(str, inputs.grid.shape)), "domain": json.dumps(inputs.grid.domain)}
    check_options(restart, grid, keys=tuple(grid))  # before anything is sized by the grid
    if abs(inputs.t0 - restart.t0) > 1e-12 * max(1.0, abs(restart.t0)):
        raise SolverError(f"resume {str(restart.path)!r}: t_span starts at {inputs.t0:g} but the file's run at "
                          f"{restart.t0:g}")
    times = resume_times(restart, save_times(restart.t0, inputs.t1, save_every))
    return replace(inputs, t0=restart.t, times=times), restart


def already_done(restart: Restart, in_memory: bool):
    """The Dataset of a file that already reaches the requested end time (nothing to step)."""
    import xarray as xr

    ds = xr.open_dataset(restart.path)
    if in_memory:
        ds = ds.load()
        ds.close()
    return ds.isel(t=slice(0, restart.frames))


def history_of(restart: Restart, attrs: dict) -> str:
    """The CF ``history`` of a resumed run: this run's line above the file's earlier ones."""
    earlier = str(restart.attrs.get("history", "")).strip()
    return f"{attrs['history']} (resumed at t = {restart.t:g})" + (f"\n{earlier}" if earlier else "")


def resume_times(restart: Restart, full_times: np.ndarray) -> np.ndarray:
    """The output times of the resumed run: the last complete frame, then those of
    ``full_times`` (the output times of a run from the file's first frame) after it."""
    eps = 1e-9 * max(1.0, abs(restart.t), float(np.max(np.abs(full_times))))
    later = full_times[full_times > restart.t + eps]
    return np.concatenate([[restart.t], later])


def apply_restart(restart: Restart, attrs: dict, stepper, implicit: bool, done: bool, in_memory: bool):
    """Check a resumed run's options against its file and give the stepper its saved state.

    An implicit method's dt is the restart's first step, not an option: the file's is kept.
    Returns the file's Dataset when the file already reaches the end (``done``), else None.
    """
    if implicit:
        attrs["dt"] = restart.attrs.get("dt", attrs["dt"])
    check_options(restart, attrs)
    if done:
        return already_done(restart, in_memory)
    stepper.restore(restart.state)
    attrs["history"] = history_of(restart, attrs)
    return None

"""The sweep store: one zarr group, pre-allocated, filled member by member.

Layout (opens with ``xarray.open_zarr``)::

    dims    member, t, x[, y, z]
    coords  member (0..N-1), one coordinate per swept parameter along member, seed along
            member (when seeds are swept), t, x, y, z
    data    one variable per field (member, t, x, ...); NaN where not (yet) computed
            status (member) int8   0 pending, 1 completed, 2 blew_up, 3 failed
            error  (member) str    the failure or blow-up message ("" when completed)
            t_reached, steps, dt, wall_time_s, compile_time_s, task_time_s, kernel_cache_hit,
            kernels_loaded, kernels_compiled, worker, run, written_at (member): what each member's solve reported

Why this is safe with many workers and loss-free on interruption:

- The whole store (metadata, coordinates) is created once, in a temporary folder renamed
  into place, so a store either does not exist or is complete and valid.
- Every variable is chunked one member per chunk, and a member's record is written by one
  process, the client, as its task finishes. No two writes ever touch the same chunk, so no
  lock is needed; the client (not the workers) writes because only it is sure to see the
  store's path: workers of a remote scheduler need not share its file system.
- Zarr writes each chunk atomically (a temporary file renamed over the old one), and a
  member's ``status`` is written last: a member marked completed always has its data, and an
  interruption between the data and the status only makes a rerun compute that member again.
- The client defers Ctrl-C while it writes one member, so a store is never left half-written
  even at the level of one member's variables.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from pdeforge.ensembles.member import STATUS_BLEW_UP, STATUS_COMPLETED, STATUS_FAILED, STATUS_NAMES, STATUS_PENDING
from pdeforge.ensembles.plan import SweepPlan
from pdeforge.ensembles.values import SweepSpecError

#: attribute that marks a folder as a pdeforge sweep store (its value: the plan's fingerprint)
SPEC_ATTR = "pdeforge_sweep"

#: per-member scalar records: name -> (dtype, fill, long_name)
RECORDS = {
    "t_reached": ("f8", np.nan, "last time the member's solution was finite"),
    "steps": ("i8", 0, "time steps taken"),
    "dt": ("f8", np.nan, "time step (fixed-step methods)"),
    "wall_time_s": ("f8", np.nan, "seconds of time stepping"),
    "compile_time_s": ("f8", np.nan, "seconds spent compiling or loading kernels in the member's solve"),
    "task_time_s": ("f8", np.nan, "seconds the member's whole task took on its worker"),
    "kernel_cache_hit": ("i1", 0, "1 if the generated kernel module came from the disk cache"),
    "kernels_loaded": ("i4", 0, "Numba kernels the worker process had loaded from the disk cache so far"),
    "kernels_compiled": ("i4", 0, "Numba kernels the worker process had compiled itself (0: all loaded from cache)"),
    "run": ("i2", 0, "which invocation of the sweep computed the member (1, 2, ...)"),
    "written_at": ("f8", np.nan, "when the client wrote the member (seconds since 1970-01-01 UTC)"),
}


def check_store_path(path: str | os.PathLike) -> Path:
    """Validate the store path: a ``.zarr`` name in an existing, writable folder."""
    p = Path(path)
    if p.suffix != ".zarr":
        raise SweepSpecError(f"out {str(p)!r}: use a folder name ending in .zarr")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise SweepSpecError(f"out {str(p)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise SweepSpecError(f"out {str(p)!r}: folder {str(folder)!r} is not writable")
    if p.exists() and not p.is_dir():
        raise SweepSpecError(f"out {str(p)!r} exists and is a file, not a zarr store")
    return p


def read_spec(path: Path) -> dict | None:
    """The fingerprint stored in ``path``, or None if it is not a sweep store."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:
        return None
    spec = group.attrs.get(SPEC_ATTR)
    return json.loads(spec) if isinstance(spec, str) else None


def prepare_store(path: str | os.PathLike, plan: SweepPlan, overwrite: bool = False) -> SweepStore:
    """Create the store for ``plan``, or reopen the one a previous run of the same sweep left.

    Args:
        path: the ``.zarr`` folder.
        plan: the sweep.
        overwrite: delete an existing sweep store at ``path`` first (never another kind of folder).

    Raises:
        SweepSpecError: the folder holds something else, or a different sweep.
    """
    p = check_store_path(path)
    spec = plan.fingerprint()
    if p.exists():
        old = read_spec(p)
        if old is None:
            if any(p.iterdir()):
                raise SweepSpecError(f"out {str(p)!r} exists and is not a pdeforge sweep store; choose another name")
            p.rmdir()
        elif overwrite:
            shutil.rmtree(p)
        elif old != json.loads(json.dumps(spec)):
            differ = sorted(k for k in set(old) | set(spec) if old.get(k) != json.loads(json.dumps(spec.get(k))))
            raise SweepSpecError(
                f"out {str(p)!r} holds a different sweep (it differs in: {', '.join(differ)}); "
                "rerun with the same options to resume it, use another --out, or pass --overwrite"
            )
    if not p.exists():
        _create(p, plan, spec)
    return SweepStore(p)


def _create(path: Path, plan: SweepPlan, spec: dict) -> None:
    import dask.array as da
    import xarray as xr

    c = plan.common
    n = plan.size
    members = plan.members()
    axes = tuple(plan.system.axes)
    shape = tuple(len(x) for x in c.coordinates)
    nt = len(c.times)
    coords = {"member": ("member", np.arange(n, dtype=np.int64), {"long_name": "member of the sweep"})}
    for name in plan.param_names:
        coords[name] = ("member", np.array([m[0][name] for m in members], dtype=float), {"long_name": f"parameter {name}"})
    if plan.seeds is not None:
        coords["seed"] = ("member", np.array([m[1] for m in members], dtype=np.int64),
                          {"long_name": "seed of the random initial condition"})
    coords["t"] = ("t", np.asarray(c.times, dtype=float), {"long_name": "time"})
    for name, x in zip(axes, c.coordinates):
        coords[name] = (name, x, {"long_name": f"cell-centre coordinate {name}"})

    data = {}
    encoding = {}
    for f in c.fields:
        data[f] = (("member", "t", *axes), da.full((n, nt, *shape), np.nan, dtype=c.dtype, chunks=(1, nt, *shape)),
                   {"long_name": f"field {f}"})
    data["status"] = (("member",), da.full((n,), STATUS_PENDING, dtype="i1", chunks=1), {
        "long_name": "member status", "flag_values": list(range(len(STATUS_NAMES))),
        "flag_meanings": " ".join(STATUS_NAMES)})
    data["error"] = (("member",), da.full((n,), "", dtype=object, chunks=1),
                     {"long_name": "why the member failed or blew up"})
    data["worker"] = (("member",), da.full((n,), "", dtype=object, chunks=1), {"long_name": "Dask worker that ran it"})
    for name, (dtype, fill, long_name) in RECORDS.items():
        data[name] = (("member",), da.full((n,), fill, dtype=dtype, chunks=1), {"long_name": long_name})
    for name in ("error", "worker"):
        encoding[name] = {"chunks": (1,)}

    system = plan.system
    kw = c.solve_kwargs
    attrs = {
        "title": f"pdeforge sweep of {plan.title}",
        "model": plan.title,
        "equations": system.equations_text(),
        "parameters": json.dumps(system.params),
        "swept_parameters": json.dumps(plan.param_names),
        "fields": json.dumps(c.fields),
        "axes": json.dumps(list(axes)),
        "members": n,
        "grid": "x".join(map(str, shape)),
        "domain": json.dumps([list(map(float, d)) for d in system.domain]),
        "method": plan.method,
        "scheme": plan.scheme,
        "backend": kw["backend"].name,
        "order": getattr(kw["discretization"], "order", 2) if kw["discretization"] is not None else 2,
        "pdeforge_version": __import__("pdeforge").__version__,
        SPEC_ATTR: json.dumps(spec),
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or "."))
    try:
        with warnings.catch_warnings():
            # object-dtype strings are loaded to pick their type (tiny); consolidated metadata
            # is not yet part of the zarr v3 spec but xarray reads it, and it never changes here
            warnings.simplefilter("ignore")
            ds.to_zarr(str(tmp), mode="w", compute=False, encoding=encoding, consolidated=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class SweepStore:
    """An open sweep store that the client writes member records into.

    Args:
        path: the ``.zarr`` folder (created by :func:`prepare_store`).
    """

    def __init__(self, path: str | os.PathLike):
        import zarr

        self.path = Path(path)
        self.group = zarr.open_group(str(self.path), mode="r+")
        self.fields = json.loads(self.group.attrs["fields"])
        # array handles opened once: opening one reads its metadata from disk
        self.arrays = {name: self.group[name] for name in (*self.fields, *RECORDS, "status", "error", "worker")}

    def status(self) -> np.ndarray:
        """Status code of every member (``STATUS_*``)."""
        return np.asarray(self.group["status"][:])

    def next_run(self) -> int:
        """Number of the next invocation (1 for a new store)."""
        runs = np.asarray(self.group["run"][:])
        return int(runs.max(initial=0)) + 1

    def todo(self, retry_failed: bool = True) -> list[int]:
        """Members still to compute: pending ones, and failed ones when ``retry_failed``.

        Completed and blown-up members are final: a blow-up is a property of the member's
        parameters, not an accident of the run.
        """
        status = self.status()
        todo = status == STATUS_PENDING
        if retry_failed:
            todo |= status == STATUS_FAILED
        return [int(i) for i in np.flatnonzero(todo)]

    def write(self, record: dict, run: int) -> None:
        """Write one member's record; its status goes last (the completion record)."""
        i = record["index"]
        g = self.arrays
        fields = record.get("fields")
        for k, f in enumerate(self.fields):
            if fields is not None:
                g[f][i] = fields[:, k]
            elif record["status"] == STATUS_FAILED:
                g[f][i] = np.full(g[f].shape[1:], np.nan, dtype=g[f].dtype)  # a retry that failed clears stale data
        for name in RECORDS:
            if name in ("run", "written_at"):
                continue
            g[name][i] = record.get(name, RECORDS[name][1])
        g["error"][i] = record.get("error", "")
        g["worker"][i] = record.get("worker", "")
        g["run"][i] = run
        g["written_at"][i] = time.time()
        g["status"][i] = record["status"]


def open_sweep(path: str | os.PathLike):
    """Open a sweep store as an ``xarray.Dataset`` (lazily, with dask).

    Args:
        path: the ``.zarr`` folder written by :func:`pdeforge.sweep`.
    """
    import xarray as xr

    p = Path(path)
    if read_spec(p) is None:
        raise SweepSpecError(f"{str(p)!r} is not a pdeforge sweep store")
    return xr.open_zarr(str(p))


__all__ = [
    "STATUS_BLEW_UP", "STATUS_COMPLETED", "STATUS_FAILED", "STATUS_PENDING", "SweepStore", "open_sweep",
    "prepare_store",
]

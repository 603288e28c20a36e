"""One member of a sweep, as it runs on a Dask worker: one :func:`pdeforge.solve`.

Whatever happens inside the solve comes back as a plain result record (never as a raised
exception), so a member that blows up or has a bad parameter is written to the store with
its message and the sweep goes on.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Mapping

import numpy as np

from pdeforge.ensembles.plan import MemberCommon

STATUS_PENDING = 0
STATUS_COMPLETED = 1
STATUS_BLEW_UP = 2
STATUS_FAILED = 3
STATUS_NAMES = ("pending", "completed", "blew_up", "failed")

_installed: set[str] = set()
#: sweep token -> its shared spec, in this (worker) process
_SPECS: dict[str, MemberCommon] = {}


def register_spec(token: str, common: MemberCommon) -> None:
    """Make a sweep's spec available to :func:`run_member` in this process.

    Also installs the shipped kernel modules and imports the solver, so that the first member
    on a fresh worker does not pay for either.
    """
    from pdeforge.solvers import solve  # noqa: F401  (import cost paid at registration)

    install_kernels(common.kernel_sources)
    _SPECS[token] = common


def forget_spec(token: str) -> None:
    """Drop a finished sweep's spec."""
    _SPECS.pop(token, None)


def install_kernels(sources: list[tuple[str, str]]) -> None:
    """Put kernel modules compiled on the client into this worker's disk cache (once per process).

    On a worker sharing the client's cache folder the modules are already there and this does
    nothing; on a remote worker it saves the symbolic discretization and simplification.
    """
    from pdeforge.codegen import cache

    for key, source in sources:
        if key in _installed:
            continue
        if not cache.module_path(key).exists():
            cache.store(key, source)
        _installed.add(key)


def kernel_compile_counts() -> tuple[int, int]:
    """``(loaded, compiled)``: Numba kernels of pdeforge modules that this process loaded from
    Numba's disk cache, and that it had to compile (cache misses), since it started."""
    loaded = compiled = 0
    seen: set[int] = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("pdeforge_kernel_"):
            continue
        # every Numba dispatcher of the module: the right-hand side and stage kernels, and the
        # compiled stepping loops that call them (some under two names, hence the ids)
        for fn in list(vars(module).values()):
            stats = getattr(fn, "stats", None)
            if id(fn) in seen or not hasattr(stats, "cache_hits"):
                continue
            seen.add(id(fn))
            loaded += sum(stats.cache_hits.values())
            compiled += sum(stats.cache_misses.values())
    return loaded, compiled


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "client"


def run_member(token: str | MemberCommon, index: int, params: Mapping[str, float], seed: int | None) -> dict:
    """Solve member ``index`` and return its record (see :mod:`pdeforge.ensembles.store`).

    Args:
        token: the sweep's token, under which its spec was registered in this process
            (:func:`register_spec`), or the spec itself.
        index: the member's position along the store's ``member`` dimension.
        params: the member's parameter values.
        seed: the member's seed (None: the default initial condition).

    Returns:
        dict with ``index``, ``status`` (a ``STATUS_*`` code), ``error`` (message or ""),
        ``fields`` (array ``(times, fields, *grid)`` with NaN after a blow-up, or None),
        ``t_reached``, ``steps``, ``dt``, ``wall_time_s``, ``compile_time_s``, ``task_time_s``,
        ``kernel_cache_hit``, ``kernels_loaded``, ``kernels_compiled`` (Numba kernels this worker
        process loaded from the disk cache / compiled itself so far) and ``worker``.
    """
    from pdeforge.errors import BlowUpWarning
    from pdeforge.models.run import solve

    record = {
        "index": int(index), "status": STATUS_FAILED, "error": "", "fields": None, "t_reached": float("nan"),
        "steps": -1, "dt": float("nan"), "wall_time_s": float("nan"), "compile_time_s": float("nan"),
        "kernel_cache_hit": -1, "kernels_loaded": -1, "kernels_compiled": -1, "worker": _worker_name(),
    }
    started = time.perf_counter()
    try:
        common = token if isinstance(token, MemberCommon) else _SPECS.get(token)
        if common is None:
            raise RuntimeError(f"this worker has no spec for sweep {token!r} (its worker plugin was not set up)")
        install_kernels(common.kernel_sources)
        target, kwargs = common.member_call(params, seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BlowUpWarning)
            ds = solve(target, **kwargs)
        record.update(_frames(common, ds))
        attrs = ds.attrs
        record.update(
            steps=int(attrs["steps"]), dt=float(attrs.get("dt", np.nan)), wall_time_s=float(attrs["wall_time_s"]),
            compile_time_s=float(attrs["compile_time_s"]), kernel_cache_hit=int(attrs["kernel_cache_hit"]),
        )
        if str(attrs.get("status", "")).startswith("blew up"):
            blow = [str(w.message) for w in caught if issubclass(w.category, BlowUpWarning)]
            record.update(status=STATUS_BLEW_UP, error=blow[0] if blow else str(attrs["status"]))
        else:
            record["status"] = STATUS_COMPLETED
    except Exception as exc:  # the member's failure is its result; the sweep goes on
        record.update(status=STATUS_FAILED, error=f"{type(exc).__name__}: {' '.join(str(exc).split())}", fields=None)
    record["kernels_loaded"], record["kernels_compiled"] = kernel_compile_counts()
    record["task_time_s"] = time.perf_counter() - started
    return record


def _frames(common: MemberCommon, ds) -> dict:
    """The member's frames on the sweep's output times (NaN where it never got)."""
    from pdeforge.errors import GridError

    for axis, coords in zip(ds[common.fields[0]].dims[1:], common.coordinates):
        if ds[axis].shape != coords.shape or not np.array_equal(ds[axis].values, coords):
            raise GridError(
                f"this member's grid along {axis!r} differs from the sweep's (a parameter changes the domain); "
                "members of one store share one grid"
            )
    times = common.times
    got = ds.t.values
    # a blown-up run ends with its last finite state at an off-grid time: keep the on-grid prefix
    k = 0
    while k < min(len(got), len(times)) and got[k] == times[k]:
        k += 1
    data = np.full((len(times), len(common.fields), *ds[common.fields[0]].shape[1:]), np.nan, dtype=common.dtype)
    for i, f in enumerate(common.fields):
        data[:k, i] = ds[f].values[:k]
    return {"fields": data, "t_reached": float(got[-1])}

"""``pdeforge.sweep``: a parameter sweep as Dask tasks, written into one zarr store."""

from __future__ import annotations

import os
import signal
import sys
import uuid
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

from pdeforge.solvers.run.signals import StopOnSignals, signal_name, signal_of
from pdeforge.symbolic.system import PDESystem
from pdeforge.ensembles.member import STATUS_BLEW_UP, STATUS_COMPLETED, STATUS_FAILED, run_member
from pdeforge.ensembles.plan import SweepPlan, make_plan
from pdeforge.ensembles.store import open_sweep, prepare_store
from pdeforge.ensembles.values import SweepSpecError


class SweepInterrupted(KeyboardInterrupt):
    """A sweep was interrupted (Ctrl-C or SIGTERM); the store is valid and a rerun resumes it.

    Attributes:
        path: the store.
        completed: members finished (any final status) when it stopped.
        total: members in the sweep.
    """

    def __init__(self, message: str, path: str, completed: int, total: int, signum: int = signal.SIGINT):
        super().__init__(message)
        self.path = path
        self.completed = completed
        self.total = total
        self.signum = int(signum)


def sweep(
    model_or_system: str | PDESystem,
    params: Mapping[str, object] | None = None,
    seeds: Sequence[int] | range | None = None,
    grid=None,
    t_span: float | tuple[float, float] | None = None,
    *,
    ic=None,
    method=None,
    backend=None,
    discretization=None,
    output="runs.zarr",
    client=None,
    overwrite: bool = False,
    retry_failed: bool = True,
    progress: bool | None = None,
):
    """Run every combination of parameter values and seeds as one :func:`pdeforge.solve` each,
    as tasks on a Dask cluster, and write them into one zarr store.

    Members are the Cartesian product of the parameter values (in the order given) and the
    seeds (varying fastest). Each finished member is written as soon as its task ends, so the
    store always holds every member finished so far; rerunning the same call skips them.

    Example:
        >>> import pdeforge as pf
        >>> ds = pf.sweep("gray-scott", params={"F": [0.03, 0.04], "k": "0.055:0.065:3"},
        ...               seeds=range(4), grid=(64, 64), t_span=2000, out="gs.zarr")  # doctest: +SKIP
        >>> ds.u.sel(member=(ds.F == 0.04) & (ds.seed == 2))                           # doctest: +SKIP

    Args:
        model_or_system: a model name from the catalogue, or a :class:`~pdeforge.PDESystem`.
        params: swept parameter -> values: a list of numbers, one number, or a string in the
            value syntax (``"0.02,0.03"``, ``"0.05:0.07:5"`` = 5 values from 0.05 to 0.07).
        seeds: seeds of the random initial condition (e.g. ``range(100)``); None: the
            default one. For a system, seeds need ``ic`` as a function ``ic(grid, params, rng)``.
        grid: cells per axis (a model's default grid when None).
        t_span: ``(t0, t_end)`` or ``t_end`` (a model's default when None).
        ic, method, backend, discretization: as in :func:`pdeforge.solve`, shared by every member
            (a model's defaults when None, as ``pdeforge run`` takes them). A method's
            ``stability`` defaults to "error" here, so that a dt too large for some parameter
            values fails those members with the reason instead of blowing up.
        output: the ``.zarr`` store to create or resume: a path, or ``Output(path,
            save_every=..., dtype="float32")`` (``dtype``: of the stored fields).
        client: a ``distributed.Client``, a scheduler address (``"tcp://host:8786"``), or the
            number of worker processes of a ``LocalCluster`` started for the sweep's duration
            (None: one per CPU core).
        overwrite: discard an existing store of a different (or the same) sweep at ``out``.
        retry_failed: on a rerun, compute members that failed again (completed and blown-up
            members are always kept).
        progress: show a progress bar over members and print the Dask dashboard address
            (default True; False for silence).

    Returns:
        The store, opened lazily with ``xarray.open_zarr``: dimension ``member`` plus ``t`` and
        the spatial ones, the swept parameters and ``seed`` as coordinates along ``member``,
        ``status`` (0 pending, 1 completed, 2 blew_up, 3 failed) and ``error`` per member.

    Raises:
        SweepSpecError: bad values, seeds, options, or a store holding a different sweep.
        SweepInterrupted: on Ctrl-C, after writing every member finished so far.
    """
    from pdeforge.solvers.run.output import get_output

    output = get_output(output)
    if output.path is None:
        raise SweepSpecError("output: give the .zarr store of the sweep")
    plan = make_plan(model_or_system, params, seeds, grid, t_span, ic=ic, method=method, backend=backend,
                     discretization=discretization, save_every=output.save_every, dtype=output.dtype or "float64")
    workers = None
    if isinstance(client, int) and not isinstance(client, bool):
        if client < 1:
            raise SweepSpecError(f"client: a number of local workers must be positive, got {client!r}")
        client, workers = None, client
    elif isinstance(client, bool):
        raise SweepSpecError(f"client: a distributed.Client, a scheduler address or a number of workers, got {client!r}")
    store = prepare_store(output.path, plan, overwrite=overwrite)
    todo = store.todo(retry_failed)
    if todo:
        _run(plan, store, todo, client, workers, progress is not False)
    return open_sweep(store.path)


def _run(plan: SweepPlan, store, todo: list[int], client, workers, show: bool) -> None:
    total = plan.size
    with StopOnSignals() as guard:
        try:
            with _dask_client(client, workers) as dask_client:
                if show:
                    _print_dashboard(dask_client)
                members = plan.members()
                common = replace(plan.common, kernel_sources=_compile_on_client(plan, [members[i] for i in todo]))
                _collect(dask_client, client is not None, common, store, todo, members, guard,
                         title=plan.title, total=total, show=show)
        except KeyboardInterrupt as exc:
            done = total - len(store.todo(retry_failed=False))
            signum = signal_of(exc)
            raise SweepInterrupted(
                f"sweep interrupted ({signal_name(signum)}): {done} of {total} members done in {str(store.path)!r}; "
                "run the same command again to finish it",
                str(store.path), done, total, signum,
            ) from None


def _collect(dask_client, shared: bool, common, store, todo, members, guard, title: str, total: int, show: bool) -> None:
    """Submit the members still to do and write each one as its task finishes."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    from pdeforge.ensembles.plugin import SweepSpecPlugin

    run = store.next_run()
    token = uuid.uuid4().hex[:8]
    plugin = SweepSpecPlugin(token, common)
    counts: Counter = Counter()
    futures: dict[int, object] = {}
    bar = tqdm(total=total, initial=total - len(todo), unit="member", desc=title, disable=not show, dynamic_ncols=True)
    dask_client.register_plugin(plugin)
    try:
        # one call for all members: the scheduler sees one group of independent tasks and
        # queues them over the workers as threads free up
        submitted = dask_client.map(
            run_member, [token] * len(todo), todo, [members[i][0] for i in todo], [members[i][1] for i in todo],
            key=[f"pdeforge-member-{i}-{token}" for i in todo],
        )
        futures = dict(zip(todo, submitted))
        index_of = {f.key: i for i, f in futures.items()}
        del submitted
        for future in as_completed(list(futures.values())):
            record = _record_of(future, index_of[future.key])
            with guard.critical():
                store.write(record, run)
            counts[record["status"]] += 1
            del futures[record["index"]]  # lets Dask drop the result from the worker
            bar.update(1)
            bar.set_postfix_str(_counts_text(counts), refresh=False)
    except KeyboardInterrupt:
        if shared:  # leave a shared cluster idle; one of our own is shut down anyway
            dask_client.cancel(list(futures.values()))
        raise
    finally:
        bar.close()  # before the cluster's shutdown, which takes a few seconds
        if shared:
            _unregister(dask_client, plugin.name)


def _unregister(dask_client, name: str) -> None:
    try:
        dask_client.unregister_worker_plugin(name)
    except Exception:  # a worker that left meanwhile; nothing to clean there
        pass


def _record_of(future, index: int) -> dict:
    """The member's record, or a failure record when the task itself did not return.

    A member's own failures come back inside its record; what raises here is the cluster's:
    the workers running it died too often, or its result was lost and could not be rebuilt.
    """
    from distributed.scheduler import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        message = f"KilledWorker: the worker processes running this member died each time ({exc})"
    except Exception as exc:
        message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return {"index": index, "status": STATUS_FAILED, "error": message, "fields": None}


def _counts_text(counts: Counter) -> str:
    parts = [f"{counts[STATUS_COMPLETED]} ok"]
    if counts[STATUS_BLEW_UP]:
        parts.append(f"{counts[STATUS_BLEW_UP]} blew up")
    if counts[STATUS_FAILED]:
        parts.append(f"{counts[STATUS_FAILED]} failed")
    return ", ".join(parts)


def _compile_on_client(plan: SweepPlan, candidates: list) -> list[tuple[str, str]]:
    """Build the kernels once, here, before any task is submitted.

    A one-step solve of a member generates the kernel module into the disk cache and makes
    Numba compile every kernel that member's time stepper calls, for the member's grid (its
    serial or parallel variant); Numba caches the machine code beside the module. Workers
    that share the cache folder then load both instead of compiling. The module sources are
    returned to ship with the tasks, for workers that do not share the folder.

    A member that fails here is tried on a worker anyway (where its failure is recorded);
    the next candidate is used to compile.
    """
    from pdeforge.codegen.build import compile_system
    from pdeforge.models.run import solve

    c = plan.common
    failure = ""
    for params, seed in candidates[:3]:
        target, kwargs = c.member_call(params, seed)
        t0, t1 = kwargs["t_span"]
        eps = (t1 - t0) * 1e-6
        method = kwargs.get("method")
        if method is not None and "stability" in method.SETTINGS:
            method = method.replace(stability="ignore")
        kwargs.update(t_span=(t0, t0 + eps), output=kwargs["output"].replace(save_every=eps), method=method,
                      progress=False)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                solve(target, **kwargs)
            if isinstance(target, str):
                from pdeforge.models import get_model

                system = get_model(target).system(**params)
            else:
                system = target.with_params(**params) if params else target
            disc, backend = kwargs["discretization"], kwargs["backend"]
            kernel = compile_system(system, target=backend.name, order=getattr(disc, "order", 2),
                                    simplifier=backend.simplifier, scheme=plan.scheme)
            return [(kernel.key, kernel.source)]
        except Exception as exc:  # the member fails again on a worker, where its failure is recorded
            failure = f"{type(exc).__name__}: {exc}"
            continue
    if candidates:
        warnings.warn(f"sweep: the kernels could not be built before the members were sent out ({failure}); "
                      "each worker compiles its own", RuntimeWarning, stacklevel=3)
    return []


def _print_dashboard(dask_client) -> None:
    try:
        services = dask_client.scheduler_info().get("services", {})
    except Exception:
        return
    if "dashboard" in services and dask_client.dashboard_link:
        print(f"Dask dashboard: {dask_client.dashboard_link}", file=sys.stderr)


def default_workers() -> int:
    """One worker process per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextmanager
def _dask_client(client, workers: int | None):
    """A ``distributed.Client``: the one given, one connected to an address, or a LocalCluster's."""
    from distributed import Client, LocalCluster

    if client is not None and not isinstance(client, str):
        if not isinstance(client, Client):
            raise SweepSpecError(f"client: expected a distributed.Client or a scheduler address, got {type(client).__name__}")
        yield client
        return
    if isinstance(client, str):
        try:
            own = Client(client, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepSpecError(f"scheduler {client!r}: cannot connect ({' '.join(str(exc).split())})") from None
        try:
            yield own
        finally:
            own.close()
        return
    n = workers or default_workers()
    # one thread per worker process; Numba's parallel kernels (large grids) share the cores out
    threads = max(1, default_workers() // n)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           env={"NUMBA_NUM_THREADS": str(threads)}, preload=["pdeforge.ensembles.worker_setup"])
    own = None
    try:
        own = Client(cluster)
        yield own
    except KeyboardInterrupt:
        # the workers are stopped mid-member on purpose: their complaints are noise
        with _quiet("distributed"):
            if own is not None:
                try:
                    own.run(_quiet_worker)
                except Exception:
                    pass
                own.close()
            cluster.close()
        raise
    finally:
        if own is not None:
            own.close()
        cluster.close()


def _quiet_worker() -> None:
    """Silence a worker process's distributed logging (it is about to be shut down)."""
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextmanager
def _quiet(logger_name: str):
    import logging

    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)

"""A sweep's plan: the members (Cartesian product of parameter values and seeds) and the
solve options every member shares, resolved once on the client.

The plan is what makes a rerun recognisable: :meth:`SweepPlan.fingerprint` is stored in the
zarr store, and a rerun with a different fingerprint is refused instead of mixing two sweeps.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pdeforge.discretize.grid import grid_of
from pdeforge.symbolic.system import PDESystem
from pdeforge.ensembles.values import SweepSpecError, check_seeds, normalize_params

#: names the store uses itself; a swept parameter may not take one of them
RESERVED_NAMES = frozenset(
    {"member", "seed", "t", "x", "y", "z", "status", "error", "t_reached", "steps", "dt", "wall_time_s",
     "compile_time_s", "task_time_s", "kernel_cache_hit", "kernels_loaded", "kernels_compiled", "worker", "run", "written_at"}
)
DTYPES = ("float64", "float32")


@dataclass
class MemberCommon:
    """What every member's task needs besides its own parameter values and seed.

    Shipped to the workers once (as one Dask task whose result the member tasks share).

    Attributes:
        target: model name, or the :class:`PDESystem`.
        solve_kwargs: keyword arguments of :func:`pdeforge.solve` shared by all members.
        ic: initial condition: None (the model's or system's), a mapping, or for systems a
            function ``ic(grid, params, rng) -> {field: array}`` called with each member's seed.
        times: the output times every member saves.
        coordinates: cell-centre coordinates per axis (a member whose grid differs is an error).
        fields: field names, in store order.
        dtype: dtype the fields are stored with.
        kernel_sources: ``(cache key, module source)`` of kernels compiled on the client, so that
            workers without the client's disk cache neither regenerate nor re-simplify them.
    """

    target: str | PDESystem
    solve_kwargs: dict
    ic: object
    times: np.ndarray
    coordinates: tuple
    fields: list[str]
    dtype: str
    kernel_sources: list[tuple[str, str]] = field(default_factory=list)

    def member_call(self, params: Mapping[str, float], seed: int | None) -> tuple[str | PDESystem, dict]:
        """The ``(system_or_model, kwargs)`` of :func:`pdeforge.solve` for one member."""
        kwargs = dict(self.solve_kwargs, params=dict(params))
        if isinstance(self.target, str):
            kwargs.update(seed=seed, ic=self.ic)
        elif callable(self.ic) and not isinstance(self.ic, Mapping):
            system = self.target.with_params(**params) if params else self.target
            grid = grid_of(system, kwargs["grid"])
            rng = np.random.default_rng(0 if seed is None else seed)
            kwargs["ic"] = self.ic(grid, dict(system.params), rng)
        else:
            kwargs["ic"] = self.ic
        return self.target, kwargs


@dataclass
class SweepPlan:
    """The members of a sweep and their shared options.

    Attributes:
        common: the shared part of every member's solve call.
        param_values: swept parameter -> its values (in the order given).
        seeds: the seeds, or None when members take the default initial condition.
        system: the first member's system (names, equations, domain).
        title: model name or system name.
        method: the time integrator the members use (the model's when not given).
        scheme: the spatial scheme the members use (the model's when not given).
    """

    common: MemberCommon
    param_values: dict[str, list[float]]
    seeds: list[int] | None
    system: PDESystem
    title: str
    method: str
    scheme: str

    @property
    def param_names(self) -> list[str]:
        return list(self.param_values)

    @property
    def size(self) -> int:
        """Number of members."""
        n = len(self.seeds) if self.seeds is not None else 1
        for values in self.param_values.values():
            n *= len(values)
        return n

    def members(self) -> list[tuple[dict[str, float], int | None]]:
        """``(params, seed)`` of every member, in member order (seeds vary fastest)."""
        names = self.param_names
        seeds = self.seeds if self.seeds is not None else [None]
        out = []
        for combo in itertools.product(*(self.param_values[n] for n in names), seeds):
            out.append((dict(zip(names, combo[:-1])), combo[-1]))
        return out

    def fingerprint(self) -> dict:
        """JSON-able description of everything that determines the members' results."""
        c = self.common
        kw = {k: v for k, v in c.solve_kwargs.items() if k not in ("progress",)}
        target = (
            {"model": c.target}
            if isinstance(c.target, str)
            else {"system": c.target.name, "equations": c.target.equations_text(), "structure": c.target.structure_key(),
                  "params": c.target.params, "domain": [list(map(float, d)) for d in c.target.domain]}
        )
        return {
            "format": 1,
            "target": target,
            "params": self.param_values,
            "seeds": self.seeds,
            "solve": {k: (list(v) if isinstance(v, tuple) else v if v is None or isinstance(v, (int, float, str))
                          else repr(v)) for k, v in kw.items()},
            "ic": describe_ic(c.ic),
            "times": hashlib.sha256(np.ascontiguousarray(c.times, dtype=float).tobytes()).hexdigest()[:16],
            "n_times": int(len(c.times)),
            "dtype": c.dtype,
        }


def describe_ic(ic) -> object:
    """A stable description of an initial condition for the store fingerprint."""
    if ic is None:
        return "default"
    if isinstance(ic, Mapping):
        out = {}
        for k, v in ic.items():
            if isinstance(v, (str, int, float)):
                out[k] = v
            elif isinstance(v, np.ndarray):
                out[k] = "array:" + hashlib.sha256(np.ascontiguousarray(v, dtype=float).tobytes()).hexdigest()[:16]
            elif callable(v):
                out[k] = "callable:" + getattr(v, "__qualname__", type(v).__name__)
            else:
                out[k] = repr(v)
        return out
    return "function:" + getattr(ic, "__qualname__", type(ic).__name__)


def make_plan(
    target: str | PDESystem,
    params: Mapping[str, object] | None,
    seeds: Sequence[int] | range | None,
    grid,
    t_span,
    *,
    ic=None,
    method=None,
    backend=None,
    discretization=None,
    save_every: float | None = None,
    dtype: str = "float64",
) -> SweepPlan:
    """Resolve a sweep's members and shared options on the client (see :func:`pdeforge.sweep`)."""
    from pdeforge.codegen.build import check_target
    from pdeforge.discretize.finite_volume import get_scheme
    from pdeforge.solvers.methods import get_method
    from pdeforge.solvers.run.inputs import _save_times, _time_span

    param_values = normalize_params(params)
    bad = sorted(set(param_values) & RESERVED_NAMES)
    if bad:
        raise SweepSpecError(f"params: {bad[0]!r} is a name the sweep store uses itself; it cannot be swept")
    seed_list = check_seeds(seeds) if seeds is not None else None
    if dtype not in DTYPES:
        raise SweepSpecError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    from pdeforge.codegen.backends import get_backend
    from pdeforge.discretize.options import get_discretization

    backend = get_backend(backend)
    check_target(backend.name)
    discretization = get_discretization(discretization)
    scheme = getattr(discretization, "scheme", None) if discretization is not None else None
    if scheme is not None:
        get_scheme(scheme)
    if method is not None:
        method = get_method(method)
    if method is not None and "stability" in method.SETTINGS and method.stability == "warn":
        # a dt too large for some parameter values fails those members with the reason, not a blow-up
        method = method.replace(stability="error")
    first = {n: v[0] for n, v in param_values.items()}

    if isinstance(target, str):
        from pdeforge.models import get_model

        model = get_model(target)
        model.check_params(first)  # unknown names fail here, before any work
        system = model.system(**first)
        grid = grid if grid is not None else model.grid
        t_span = t_span if t_span is not None else model.t_end
        t0, t1 = _time_span(t_span)
        # the defaults `pdeforge run` takes: the model's save interval (within the span), and
        # the model's step as the largest automatic one when its own method is used
        if save_every is None and model.save_every is not None:
            save_every = min(model.save_every, t1 - t0)
        if method is None:
            method = get_method(model.method)
            if model.dt is not None and "dt_max" in method.SETTINGS:
                method = method.replace(dt_max=model.dt)
            if "stability" in method.SETTINGS:
                method = method.replace(stability="error")
        shown_method, shown_scheme = method.name, scheme or model.scheme
        title = model.name
    elif isinstance(target, PDESystem):
        unknown = [n for n in param_values if n not in target.params]
        if unknown:
            raise SweepSpecError(
                f"params: system {target.name!r} has no parameter {unknown[0]!r} (parameters: {', '.join(target.params) or 'none'})"
            )
        if seed_list is not None and not (callable(ic) and not isinstance(ic, Mapping)):
            raise SweepSpecError(
                "seeds: a system's initial condition is the same for every seed; give ic as a function "
                "ic(grid, params, rng) -> {field: array} to draw it from each member's seed, or leave seeds out"
            )
        system = target.with_params(**first) if first else target
        if grid is None:
            raise SweepSpecError("grid: give the number of cells per axis")
        if t_span is None:
            raise SweepSpecError("t_span: give (t0, t_end) or t_end")
        t0, t1 = _time_span(t_span)
        if method is None:
            method = get_method("rk4").replace(stability="error")
        shown_method, shown_scheme = method.name, scheme or "fd"
        title = target.name
    else:
        raise SweepSpecError(f"model_or_system: expected a model name or a PDESystem, got {type(target).__name__}")

    if getattr(system, "scalars", None):
        raise SweepSpecError(
            f"{title}: the sweep store holds fields only, and this system has scalars "
            f"({', '.join(system.scalars)}); run its members with pdeforge.solve(..., out=...) instead"
        )
    ugrid = grid_of(system, grid)
    times = _save_times(t0, t1, save_every)
    from pdeforge.solvers.run.output import Output

    solve_kwargs = {
        "grid": tuple(int(n) for n in ugrid.shape),
        "t_span": (t0, t1),
        "method": method,
        "backend": backend,
        "discretization": discretization,
        "output": Output(save_every=None if save_every is None else float(save_every)),
        "progress": False,
    }
    common = MemberCommon(
        target=target,
        solve_kwargs=solve_kwargs,
        ic=ic,
        times=times,
        coordinates=tuple(np.asarray(c, dtype=float) for c in ugrid.coordinates),
        fields=list(system.fields),
        dtype=dtype,
    )
    return SweepPlan(common=common, param_values=param_values, seeds=seed_list, system=system, title=title,
                     method=shown_method, scheme=shown_scheme)


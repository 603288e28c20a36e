"""``pdeforge.solve``: a system or a catalogue model name -> xarray Dataset.

A model name fills in everything the call leaves out (grid, time span, initial condition,
output interval, method and its preferred step, scheme, variable attributes) from the model's
defaults, then hands the system to :func:`pdeforge.solvers.solve.solve`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pdeforge.codegen.backends import Backend
from pdeforge.discretize.grid import UniformGrid
from pdeforge.discretize.options import Discretization, FiniteDifference, get_discretization
from pdeforge.models.base import get_model
from pdeforge.solvers.methods import Method, get_method
from pdeforge.solvers.run.callbacks import Callback
from pdeforge.solvers.run.inputs import time_span
from pdeforge.solvers.run.output import Output, get_output
from pdeforge.solvers.solve import solve as solve_system
from pdeforge.symbolic.system import PDESystem


def solve(
    system: PDESystem | str,
    grid: int | Sequence[int] | UniformGrid | None = None,
    t_span: float | tuple[float, float] | None = None,
    ic: Mapping[str, object] | None = None,
    *,
    method: str | Method | None = None,
    dt: float | None = None,
    backend: str | Backend | None = None,
    discretization: str | Discretization | None = None,
    output: str | Output | None = None,
    params: Mapping[str, float] | None = None,
    constants: Mapping[str, float] | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    callbacks: Sequence[Callback] | Callback | None = None,
):
    if isinstance(system, str):
        model = get_model(system)
        system, defaults = model.setup(params=params, grid=grid, seed=seed)
        grid = grid if grid is not None else defaults["grid"]
        t_span = t_span if t_span is not None else defaults["t_end"]
        ic = ic if ic is not None else defaults["ic"]
        output = get_output(output)
        if output.save_every is None and defaults["save_every"] is not None:
            t0, t1 = time_span(t_span)
            output = output.replace(save_every=min(defaults["save_every"], t1 - t0))
        if output.variable_attrs is None:
            output = output.replace(variable_attrs=model.variable_attrs)
        if method is None:
            method = get_method(defaults["method"])
            if dt is None and defaults.get("dt") is not None and "dt_max" in method.SETTINGS:
                method = method.replace(dt_max=defaults["dt"])  # the model's preferred step, an upper bound
        disc = get_discretization(discretization)
        fd = getattr(system, "discretization", "fd") == "fd"
        if defaults["scheme"] is not None and ((disc is None and fd) or (
                disc is not None and disc.family == "fd" and disc.scheme is None)):
            disc = (disc or FiniteDifference()).replace(scheme=defaults["scheme"])
        discretization = disc
        params, seed = None, None  # the model's parameters and random initial condition are set up
    return solve_system(system, grid, t_span, ic, method=method, dt=dt, backend=backend,
                        discretization=discretization, output=output, params=params, constants=constants, seed=seed,
                        progress=progress, callbacks=callbacks)


solve.__doc__ = (solve_system.__doc__ or "").replace(
    "        system: a :class:`~pdeforge.PDESystem` (``pdeforge.solve`` also takes a model name from\n"
    "            the catalogue: :func:`pdeforge.models.run.solve`).",
    "        system: a :class:`~pdeforge.PDESystem`, or a model name from the catalogue (``pdeforge\n"
    "            list``): then every argument left out takes the model's default (grid, time span,\n"
    "            initial condition, output interval, method and its preferred step, scheme),\n"
    "            ``params`` override its parameters and ``seed`` seeds its random initial condition.")

"""``pdeforge.solve``: a system or a catalogue model name -> xarray Dataset.

A model name fills in everything the call leaves out (grid, time span, initial condition,
output interval, method, preferred dt, scheme) from the model's defaults, then hands the
system to :func:`pdeforge.solvers.solve.solve`.
"""

from __future__ import annotations

from pdeforge.models.base import get_model
from pdeforge.solvers.run.inputs import time_span
from pdeforge.solvers.solve import solve as solve_system


def solve(system, grid=None, t_span=None, ic=None, method=None, dt=None, backend=None, save_every=None,
          out=None, order: int = 2, params=None, *args, seed: int | None = None, dt_max=None, scheme=None, **kwargs):
    """Solve a PDE system, or a model of the catalogue by name, and return an ``xarray.Dataset``.

    Args:
        system: a :class:`~pdeforge.PDESystem`, or a model name from the catalogue (then every
            other argument defaults to the model's, and ``params`` override its parameters).
        seed: seed of a model's random initial condition (model names), or of the noise of a
            system with stochastic terms.
        grid, t_span, ic, method, dt, backend, save_every, out, order, params, dt_max, scheme,
            and every other keyword: as :func:`pdeforge.solvers.solve.solve`.

    Returns:
        The Dataset of :func:`pdeforge.solvers.solve.solve`.
    """
    if isinstance(system, str):
        model = get_model(system)
        system, defaults = model.setup(params=params, grid=grid, seed=seed)
        grid = grid if grid is not None else defaults["grid"]
        t_span = t_span if t_span is not None else defaults["t_end"]
        ic = ic if ic is not None else defaults["ic"]
        if save_every is None and defaults["save_every"] is not None:
            t0, t1 = time_span(t_span)
            save_every = min(defaults["save_every"], t1 - t0)
        if method is None:
            method = defaults["method"]
            if dt is None and dt_max is None:
                dt_max = defaults.get("dt")
        scheme = scheme if scheme is not None else defaults["scheme"]
        kwargs.setdefault("variable_attrs", model.variable_attrs)
        params = None
    else:
        kwargs["seed"] = seed  # the noise of a system's stochastic terms
    return solve_system(system, grid, t_span, ic, method, dt, backend, save_every, out, order, params, *args,
                        dt_max=dt_max, scheme=scheme, **kwargs)


solve.__doc__ += "\n    Full argument list:\n" + "\n".join(
    "    " + line for line in (solve_system.__doc__ or "").splitlines()[2:]
)

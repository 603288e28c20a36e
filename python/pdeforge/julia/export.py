"""Exports of pdeforge problems to other tools: a standalone MethodOfLines.jl script.

``pdeforge.export_julia(system_or_model, ...)`` and ``pdeforge export-julia MODEL`` write a
Julia script that solves the same problem with ModelingToolkit + MethodOfLines and saves the
result as CSV; :func:`read_mol_csv` reads it back into an ``xarray.Dataset`` shaped like
pdeforge's, and :func:`on_pdeforge_grid` picks pdeforge's cell centres out of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pdeforge.discretize.grid import UniformGrid, grid_of
from pdeforge.errors import PDEForgeError, SolverError
from pdeforge.symbolic.system import PDESystem
from pdeforge.julia.methodoflines import MethodOfLinesUnsupported, MOLProblem, check_expressible, describe

__all__ = ["export_julia", "mol_problem", "read_mol_csv", "on_pdeforge_grid", "MethodOfLinesUnsupported"]


def mol_problem(
    system: PDESystem | str,
    grid: int | Sequence[int] | UniformGrid | None = None,
    t_span: float | tuple[float, float] | None = None,
    ic: Mapping[str, object] | None = None,
    method: str | None = None,
    dt: float | None = None,
    save_every: float | None = None,
    order: int = 2,
    params: Mapping[str, float] | None = None,
    seed: int | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> MOLProblem:
    """The checked MethodOfLines description of a system or catalogue model.

    Arguments are those of :func:`pdeforge.solve`; for a model name every one defaults to
    the model's (grid, time span, method, step, seeded initial condition).

    Raises:
        MethodOfLinesUnsupported: for systems MethodOfLines cannot express.
    """
    from pdeforge.solvers.methods import get_method
    from pdeforge.solvers.run.inputs import SAFETY, _save_times, _time_span

    discretization = None
    if isinstance(system, str):
        from pdeforge.models import get_model

        model = get_model(system)
        discretization = getattr(model, "discretization", None)
        system, defaults = model.setup(params=params, grid=grid, seed=seed)
        grid = defaults["grid"]
        t_span = t_span if t_span is not None else defaults["t_end"]
        ic = ic if ic is not None else defaults["ic"]
        if method is None:
            method = defaults["method"]
            dt = dt if dt is not None else defaults.get("dt")
        save_every = save_every if save_every is not None else defaults.get("save_every")
        params = None
    if not isinstance(system, PDESystem):
        raise SolverError(f"system: expected a PDESystem or a model name, got {type(system).__name__}")
    # refuse what MethodOfLines cannot express before the finite-difference step estimate,
    # which has no meaning for (and cannot evaluate) a spectral system's grid symbols
    check_expressible(system, discretization)
    if params:
        system = system.with_params(**params)
    if grid is None:
        raise SolverError("grid: give the number of cells per axis")
    if t_span is None:
        raise SolverError("t_span: give (t0, t_end) or t_end")
    grid = grid_of(system, grid)
    t0, t1 = _time_span(t_span)
    if save_every is not None and save_every > t1 - t0:
        save_every = t1 - t0
    times = _save_times(t0, t1, save_every)
    method = method or "rk45"
    ic = ic if ic is not None else system.ic
    m = get_method(method)
    if m.kind == "fixed" and dt is None:
        from pdeforge.solvers.run.initial import initial_state
        from pdeforge.solvers.explicit.stability import explicit_dt_limit

        est = explicit_dt_limit(system, grid, initial_state(system, grid, ic), t0, m, order)
        if not math.isfinite(est.dt_max):
            raise SolverError(f"dt: no stability limit could be estimated for {m.name}; give dt")
        dt = SAFETY * est.dt_max
    return describe(system, grid, (t0, t1), ic, m.name, dt, times, order, rtol, atol, discretization)


def export_julia(
    system: PDESystem | str,
    grid: int | Sequence[int] | UniformGrid | None = None,
    t_span: float | tuple[float, float] | None = None,
    ic: Mapping[str, object] | None = None,
    *,
    method=None,
    dt: float | None = None,
    discretization=None,
    output=None,
    params: Mapping[str, float] | None = None,
    seed: int | None = None,
    script: str | Path | None = None,
) -> str:
    """A standalone Julia script that solves the problem with ModelingToolkit + MethodOfLines.

    Args:
        system: a :class:`~pdeforge.PDESystem` or a catalogue model name.
        grid, t_span, ic, method, dt, params, seed: as in :func:`pdeforge.solve` (model defaults
            for a model name); the method's tolerances (``BDF(rtol=..., atol=...)``) go into the script.
        discretization: ``FiniteDifference(order=...)`` (or "fd"): the order of MethodOfLines' differences.
        output: the CSV file the script writes its solution to and how often: a path or
            ``Output("run.csv", save_every=...)`` (default: ``script`` with ``.csv``, or
            ``<name>_mol.csv``); ``$PDEFORGE_MOL_OUT`` overrides the path when the script runs.
        script: optional path of the ``.jl`` file to write. Initial-value tables of more than
            :data:`~pdeforge.julia.script.LITERAL_VALUES` cells are written next to it as
            ``<stem>_<field>_ic.f64`` (little-endian Float64, C order); without it such
            tables are refused.

    Returns:
        The script text.

    Raises:
        MethodOfLinesUnsupported: for systems MethodOfLines cannot express.
        PDEForgeError: for a bad ``script`` path, or a large initial-value table without ``script``.
    """
    from pdeforge.discretize.options import get_discretization
    from pdeforge.julia.script import julia_script, table_files
    from pdeforge.solvers.methods import Method, with_dt
    from pdeforge.solvers.run.output import get_output

    rtol, atol = 1e-6, 1e-9
    if isinstance(method, Method):
        dt = with_dt(method, dt).dt
        rtol, atol = method.setting("rtol", rtol), method.setting("atol", atol)
        method = method.name
    disc = get_discretization(discretization)
    if disc is not None and disc.family != "fd":
        raise PDEForgeError("discretization: the MethodOfLines export discretizes with finite differences "
                            "(FiniteDifference(order=...))")
    order = disc.order if disc is not None else 2
    out_csv = get_output(output)
    save_every, result = out_csv.save_every, (None if out_csv.path is None else str(out_csv.path))
    path = Path(script) if script is not None else None
    if path is not None:
        if path.suffix != ".jl":
            raise PDEForgeError(f"script: a Julia script path ending in .jl, got {str(script)!r}")
        if not path.parent.exists():
            raise PDEForgeError(f"script: folder {str(path.parent)!r} does not exist")
    problem = mol_problem(system, grid, t_span, ic, method, dt, save_every, order, params, seed, rtol, atol)
    if result is None:
        result = str(path.with_suffix(".csv").name) if path is not None else f"{problem.system.name}_mol.csv"
    stem = path.stem if path is not None else None
    text = julia_script(problem, result, stem)
    if path is not None:
        # large initial-value tables: little-endian Float64 files next to the script (read with read!)
        for name, values in table_files(problem, stem).items():
            np.ascontiguousarray(values, dtype="<f8").tofile(path.parent / name)
        path.write_text(text)
    return text


def read_mol_csv(path: str | Path, name: str = "methodoflines"):
    """Read the CSV an exported script wrote into an ``xarray.Dataset`` (dims t, x, ...)."""
    import xarray as xr

    path = Path(path)
    with open(path) as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    axes = [c for c in header[1:] if c in ("x", "y", "z")]
    fields = header[1 + len(axes):]
    coords = {"t": np.unique(data[:, 0])}
    for k, a in enumerate(axes):
        coords[a] = np.unique(data[:, 1 + k])
    shape = tuple(len(coords[c]) for c in ("t", *axes))
    if int(np.prod(shape)) != data.shape[0]:
        raise PDEForgeError(f"{path}: {data.shape[0]} rows do not form a grid of shape {shape}")
    order = np.lexsort(tuple(data[:, k] for k in reversed(range(1 + len(axes)))))
    data = data[order]
    variables = {f: (("t", *axes), data[:, 1 + len(axes) + i].reshape(shape)) for i, f in enumerate(fields)}
    return xr.Dataset(variables, coords=coords, attrs={"source": name, "file": str(path)})


def on_pdeforge_grid(ds, grid: UniformGrid):
    """The values of a MethodOfLines dataset at pdeforge's cell centres.

    Raises:
        PDEForgeError: if the MethodOfLines grid does not contain every cell centre.
    """
    selection = {}
    for a, centres in zip(grid.axes, grid.coordinates):
        nodes = ds[a].values
        index = np.searchsorted(nodes, centres)
        index = np.clip(index, 0, len(nodes) - 1)
        best = np.where(
            np.abs(nodes[np.clip(index - 1, 0, None)] - centres) < np.abs(nodes[index] - centres), np.clip(index - 1, 0, None), index
        )
        tol = 1e-9 * (grid.domain[grid.axes.index(a)][1] - grid.domain[grid.axes.index(a)][0])
        if np.max(np.abs(nodes[best] - centres)) > tol:
            raise PDEForgeError(f"the MethodOfLines grid on {a} does not contain pdeforge's cell centres")
        selection[a] = best
    out = ds.isel(selection)
    return out.assign_coords({a: c for a, c in zip(grid.axes, grid.coordinates)})

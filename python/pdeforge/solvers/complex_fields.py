"""Solving complex systems through their real form, and complex Datasets from files.

:func:`solve_complex` runs the real form of a complex system (fields ``psi_real``,
``psi_imag``; see :mod:`pdeforge.symbolic.complex_fields`) and returns the Dataset with the
complex variables. A file written by ``out=`` keeps the two real variables (netCDF has no
complex type that ``xarray.open_dataset`` reads), with the global attribute
``complex_fields`` (JSON: complex field -> its two variable names); :func:`open_dataset`
reads such a file back into complex variables.
"""

from __future__ import annotations

import json
import os

from pdeforge.discretize.grid import grid_of
from pdeforge.errors import SolverError
from pdeforge.solvers.run.initial import initial_state

#: complex dtype -> the real dtype of its parts
_PART_DTYPES = {"complex128": "float64", "complex64": "float32", "float64": "float64", "float32": "float32"}


def solve_complex(solve, system, grid=None, ic=None, params=None, dtype="float64", backend=None, **options):
    """Solve complex ``system`` with ``solve`` (:func:`pdeforge.solvers.solve.solve`) on its real form.

    Arguments are those of ``solve``; ``dtype`` may be "complex128" (default) or, with backend
    "torch", "complex64" (float32 parts). Returns the Dataset with complex variables.
    """
    if dtype not in _PART_DTYPES:
        raise SolverError(f"dtype {dtype!r}: a complex system runs in 'complex128' (or 'complex64' with backend 'torch')")
    part_dtype = _PART_DTYPES[dtype]
    if part_dtype == "float32" and backend != "torch":
        raise SolverError(f"dtype {dtype!r} needs backend 'torch'; backend {backend or 'numba'!r} runs in complex128")
    if params:
        system = system.with_params(**params)
    if grid is None:
        raise SolverError("grid: give the number of cells per axis")
    grid = grid_of(system, grid)
    cells = initial_state(system, grid, ic, complex_values=True)
    real = system.real_form()
    parts_ic = {}
    for i, f in enumerate(system.fields):
        re_name, im_name = real.complex_parts[f]
        parts_ic[re_name], parts_ic[im_name] = cells[i].real.copy(), cells[i].imag.copy()
    del cells
    ds = solve(real, grid=grid, ic=parts_ic, backend=backend, dtype=part_dtype, **options)
    return combine_parts(ds)


def combine_parts(ds):
    """A Dataset with each pair of part variables (attribute ``complex_fields``) as one complex variable."""
    parts = json.loads(ds.attrs.get("complex_fields", "{}"))
    if not parts:
        return ds
    for f, (re_name, im_name) in parts.items():
        value = ds[re_name] + 1j * ds[im_name]
        value.attrs = {"parts": f"{re_name}, {im_name}"}
        ds = ds.drop_vars([re_name, im_name]).assign({f: value})
    return ds


def open_dataset(path: str | os.PathLike, **kwargs):
    """Open a result file written by ``out=`` / ``--out``, with complex fields as complex variables.

    Args:
        path: the ``.nc`` file.
        kwargs: passed to :func:`xarray.open_dataset`.
    """
    import xarray as xr

    return combine_parts(xr.open_dataset(path, **kwargs))


__all__ = ["solve_complex", "combine_parts", "open_dataset"]

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


def solve_complex(run, system, grid, ic, params, backend):
    """Solve complex ``system`` on its real form with ``run(real_system, real_ic, real_backend)``.

    The backend's dtype may be "complex128" (default; "float64" means the same) or, with
    ``Torch``, "complex64" (float32 parts). Returns the Dataset with complex variables.
    """
    from pdeforge.codegen.backends import Backend, get_backend

    if isinstance(backend, (str, Backend)) or backend is not None:
        b = get_backend(backend)
        dtype = b.settings().get("dtype", "float64")
        part_dtype = _PART_DTYPES.get(dtype)
        if part_dtype is None:
            raise SolverError(f"dtype {dtype!r}: a complex system runs in 'complex128' (or 'complex64' with "
                              "backend Torch)")
        if part_dtype == "float32" and b.name != "torch":
            raise SolverError(f"dtype {dtype!r} needs backend 'torch'; backend {b.name!r} runs in complex128")
        if "dtype" in b.SETTINGS:
            backend = b.replace(dtype=part_dtype)
    if params:
        system = system.with_params(**params)
    grid = grid_of(system, grid)
    cells = initial_state(system, grid, ic, complex_values=True)
    real = system.real_form()
    parts_ic = {}
    for i, f in enumerate(system.fields):
        re_name, im_name = real.complex_parts[f]
        parts_ic[re_name], parts_ic[im_name] = cells[i].real.copy(), cells[i].imag.copy()
    del cells
    return combine_parts(run(real, parts_ic, backend))


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

"""Ensembles: parameter sweeps as Dask tasks into one zarr store, and loaders for training.

- :func:`pdeforge.sweep` / ``pdeforge sweep MODEL``: the Cartesian product of parameter values
  and seeds, each member one :func:`pdeforge.solve`, run on dask.distributed (a LocalCluster by
  default, any scheduler address when given), written member by member, resumable.
- :func:`open_sweep`: the store as an ``xarray.Dataset``.
- :class:`~pdeforge.ensembles.torch_data.SweepDataset`: a PyTorch ``Dataset`` over a store.
"""

from __future__ import annotations

from pdeforge.ensembles.store import open_sweep
from pdeforge.ensembles.values import SweepSpecError, parse_seeds, parse_values

__all__ = ["SweepSpecError", "open_sweep", "parse_seeds", "parse_values"]

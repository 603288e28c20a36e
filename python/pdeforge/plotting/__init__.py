"""Pictures and movies of a run: :func:`plot` (several frames) and :func:`animate` (GIF or MP4).

Both read an ``xarray.Dataset`` as :func:`pdeforge.solve` returns it or a file written by a run
(any path ``xarray.open_dataset`` opens), so they serve the Python API and ``pdeforge plot``
alike. Matplotlib is imported on the first call.
"""

from __future__ import annotations

from pdeforge.plotting.frames import fields_of, frame_indices, spatial_dims
from pdeforge.plotting.movie import MOVIE_SUFFIXES, animate
from pdeforge.plotting.figure import plot

__all__ = ["MOVIE_SUFFIXES", "animate", "fields_of", "frame_indices", "plot", "spatial_dims"]

"""One simulation across MPI ranks: domain decomposition, halo exchange, reductions, one store.

mpi4py is imported only when a run is launched under ``mpiexec`` (or ``srun``) with more than
one rank, or when a communicator is passed explicitly, so ``import pdeforge`` stays fast and a
single process never needs MPI.

- :mod:`~pdeforge.parallel.comm`: which communicator a run uses, rank-0-only messages, one
  rank at a time for the disk caches.
- :mod:`~pdeforge.parallel.decomposition`: the process grid (``MPI.Compute_dims``, uneven
  splits) and each rank's block of cells.
- :mod:`~pdeforge.parallel.halo`: ghost layers of padded blocks exchanged with the neighbours.
- :mod:`~pdeforge.parallel.reduce`: sums, minima and blow-up checks over all ranks.
- :mod:`~pdeforge.parallel.block`: a bound kernel on one rank's block whose ghost fill
  exchanges halos and closes only the walls that rank owns.
- :mod:`~pdeforge.parallel.store`: one zarr store written by every rank.
- :mod:`~pdeforge.parallel.spectral`: the spectral kernels' runtime on one rank's slab or pencil
  (mpi4py-fft's distributed FFTs, local wavenumbers and masks, reductions over all ranks).
"""

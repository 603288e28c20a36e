"""How space is discretized: finite differences (or finite volumes) and Fourier pseudo-spectral.

``discretization="fd"`` is shorthand for ``FiniteDifference()``, ``"spectral"`` for ``Spectral()``.
"""

from __future__ import annotations

from pdeforge.errors import SolverError
from pdeforge.options import OptionError, Options


class Discretization(Options):
    """A spatial discretization and its settings (``family``: "fd" or "spectral")."""

    kind = "discretization"
    family = ""


class FiniteDifference(Discretization):
    """Finite differences on a uniform (or curvilinear) grid, or a conservative finite-volume scheme.

    Settings:
        order: accuracy order of the differences, 2 (default) or 4.
        scheme: "fd" (flux-form finite differences, default) or a finite-volume scheme
            ("fv-upwind", "fv-upwind-mc", "fv-upwind1", "fv-rusanov"; see
            :mod:`pdeforge.discretize.finite_volume`). With a finite-volume scheme the default
            step of the explicit methods is 0.8 of the scheme's CFL limit. None: the model's, else "fd".
        decomposition: blocks per axis of a run on several MPI ranks, e.g. ``(2, 2)`` (0 entries
            are chosen; None: ``MPI.Compute_dims``). Not read by a run on one process.
        comm: the mpi4py communicator of a run on several ranks. None: ``COMM_WORLD`` when the
            process was started by ``mpiexec``/``srun`` with more than one rank, else one process
            and MPI is never loaded. A communicator of one rank is one process too.

    Under several ranks each rank holds its block of the grid plus halos, the output is one zarr
    store (``.zarr``) written by every rank, and the returned Dataset is the same on every rank
    (:mod:`pdeforge.solvers.distributed` says what runs distributed).
    """

    family = "fd"
    SETTINGS = {"order": 2, "scheme": None, "decomposition": None, "comm": None}

    def check(self) -> None:
        if self.order not in (2, 4):
            raise OptionError(f"FiniteDifference: order must be 2 or 4, got {self.order!r}")
        _check_mpi_settings(self, 0, "blocks per axis, e.g. (2, 2) (0: chosen)")


def _check_mpi_settings(owner: Discretization, smallest: int, valid: str, names: tuple[str, ...] = ()) -> None:
    """Check the ``decomposition`` (one of ``names``, or whole numbers >= ``smallest`` per axis,
    kept as a tuple) and ``comm`` (an mpi4py communicator) of a run on several ranks."""
    kind = type(owner).__name__
    d = owner.decomposition
    if d is not None and not (isinstance(d, str) and d in names):
        if isinstance(d, (str, bytes)) or not hasattr(d, "__iter__") or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= smallest for n in d):
            raise OptionError(f"{kind}: decomposition must be {valid}, got {d!r}")
        object.__getattribute__(owner, "_values")["decomposition"] = tuple(d)
    if owner.comm is not None and not hasattr(owner.comm, "Get_size"):
        raise OptionError(f"{kind}: comm must be an mpi4py communicator, got {type(owner.comm).__name__}")


class Spectral(Discretization):
    """Fourier pseudo-spectral on periodic domains (2/3 dealiasing; Leray projection for
    incompressible systems).

    Settings:
        diagnostics: add kinetic energy, enstrophy, dissipation, energy rate and the energy
            spectrum for systems with a velocity (default True).
        decomposition: how a run on several MPI ranks splits the grid for its distributed FFTs
            (mpi4py-fft): "slab" (the first axis), "pencil" (the first two axes of a 3-D grid),
            ranks per axis such as ``(2, 2, 1)`` (the last entry 1), or None: slabs where every
            rank gets a plane, else pencils. Not read by a run on one process.
        comm: the mpi4py communicator of a run on several ranks (None: ``COMM_WORLD`` when
            started by ``mpiexec``/``srun`` with more than one rank, else one process).
    """

    family = "spectral"
    SETTINGS = {"diagnostics": True, "decomposition": None, "comm": None}

    def check(self) -> None:
        _check_mpi_settings(self, 1, "'slab', 'pencil' or ranks per axis such as (2, 2, 1)", ("slab", "pencil"))


DISCRETIZATIONS = {"fd": FiniteDifference, "spectral": Spectral}


def get_discretization(value: str | Discretization | None) -> Discretization | None:
    """The :class:`Discretization` for ``value`` (None stays None: the system chooses)."""
    if value is None or isinstance(value, Discretization):
        return value
    if isinstance(value, type) and issubclass(value, Discretization):
        return value()
    if value in DISCRETIZATIONS:
        return DISCRETIZATIONS[value]()
    raise SolverError(f"discretization {value!r} is not available (valid: 'fd', 'spectral', "
                      "pdeforge.FiniteDifference(order=..., scheme=...), pdeforge.Spectral())")

"""Uniform cell-centred grids: Cartesian boxes and the symmetric curvilinear grids (r; r, z)."""

from __future__ import annotations

from collections.abc import Sequence
import math
from dataclasses import dataclass, replace

import numpy as np

from pdeforge.errors import GridError

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class UniformGrid:
    """A uniform, cell-centred grid on a box.

    Cell ``i`` along an axis covers ``[low + i*h, low + (i+1)*h]`` and its value sits at the
    centre ``low + (i + 1/2)*h``; boundaries lie on cell faces, which is what finite-volume
    conservation and ghost-cell boundary closures want.

    In a curvilinear geometry (``"polar"``, ``"cylindrical"``, ``"spherical"``, see
    :mod:`pdeforge.symbolic.geometry`) the first axis is the radius r and a cell is the ring or
    shell between its two faces: :meth:`cell_volumes` are those physical volumes (with the
    factor ``2 pi`` or ``4 pi`` of the symmetric directions), and :meth:`face_areas` the areas
    of the faces.

    Attributes:
        domain: one ``(low, high)`` pair per axis.
        shape: number of cells per axis.
        names: the axis names (default x, y, z up to the dimension).
        geometry: "cartesian" (default), "polar", "cylindrical" or "spherical".
    """

    domain: tuple[tuple[float, float], ...]
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None
    geometry: str = "cartesian"

    def __post_init__(self) -> None:
        # a grid built directly from lists or ints equals (and hashes like) one built by from_spec
        try:
            domain = tuple((float(a), float(b)) for a, b in self.domain)
        except (TypeError, ValueError):
            raise GridError(f"domain: expected one (low, high) pair of numbers per axis, got {self.domain!r}") from None
        try:
            shape = tuple(int(n) for n in self.shape)
        except (TypeError, ValueError):
            raise GridError(f"shape: expected one int per axis, got {self.shape!r}") from None
        if len(shape) != len(domain):
            raise GridError(f"shape {shape} has {len(shape)} axes but the domain has {len(domain)}; give one size per axis")
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "shape", shape)
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))

    @classmethod
    def from_spec(cls, domain: Sequence[tuple[float, float]], grid, names: Sequence[str] | None = None,
                  geometry: str = "cartesian") -> UniformGrid:
        """Build from a domain and ``grid`` (an int for every axis, or one int per axis).

        ``names`` and ``geometry`` are the axis names and geometry (Cartesian x, y, z by default);
        :func:`grid_of` takes them from a system.

        Raises:
            GridError: if the number of axes differs from the domain's or a size is < 2.
        """
        domain = tuple((float(a), float(b)) for a, b in domain)
        dim = len(domain)
        axes = tuple(names) if names is not None else AXES[:dim]
        if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
            shape = (int(grid),) * dim
        else:
            try:
                shape = tuple(int(n) for n in grid)
            except (TypeError, ValueError):
                raise GridError(f"grid: expected an int or a tuple of ints, got {grid!r}") from None
            if any(int(n) != n for n in grid):
                raise GridError(f"grid: sizes must be integers, got {grid!r}")
        if len(shape) != dim:
            raise GridError(
                f"grid {'x'.join(map(str, shape))} has {len(shape)} axes but the domain has {dim} "
                f"({', '.join(axes)}); give {dim} sizes or one int"
            )
        if any(n < 2 for n in shape):
            raise GridError(f"grid: every axis needs at least 2 cells, got {shape}")
        if np.prod(shape, dtype=np.int64) > 2**31:
            raise GridError(f"grid: {shape} has more than 2**31 cells")
        return cls(domain, shape, None if names is None else axes, geometry)

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def axes(self) -> tuple[str, ...]:
        return self.names if self.names is not None else AXES[: self.dim]

    @property
    def curvilinear(self) -> bool:
        return self.geometry != "cartesian"

    @property
    def spacing(self) -> tuple[float, ...]:
        """Cell width per axis."""
        return tuple((b - a) / n for (a, b), n in zip(self.domain, self.shape))

    @property
    def cell_volume(self) -> float:
        """The volume of every cell (Cartesian grids; curvilinear cells differ: :meth:`cell_volumes`)."""
        if self.curvilinear:
            raise GridError(f"a {self.geometry} grid has cells of different volumes: use cell_volumes()")
        return float(np.prod(self.spacing))

    def _radial(self) -> tuple[int, float]:
        """``(m, angular factor)`` of the measure ``factor * r^m dr`` of the radial axis."""
        m = 2 if self.geometry == "spherical" else 1
        return m, (4.0 if m == 2 else 2.0) * math.pi

    def cell_volumes(self) -> np.ndarray:
        """The volume of each cell, shape :attr:`shape` (physical volumes in curvilinear grids)."""
        if not self.curvilinear:
            return np.full(self.shape, self.cell_volume)
        m, factor = self._radial()
        faces = self.domain[0][0] + np.arange(self.shape[0] + 1) * self.spacing[0]
        shells = factor * np.diff(faces ** (m + 1)) / (m + 1)
        return np.multiply.outer(shells, np.full(self.shape[1:], float(np.prod(self.spacing[1:]))))

    def face_areas(self, axis: int, side: int) -> np.ndarray:
        """Areas of the boundary faces of ``axis`` on ``side`` (0 low, 1 high), one per boundary cell."""
        others = tuple(n for b, n in enumerate(self.shape) if b != axis)
        if not self.curvilinear:
            return np.full(others, float(np.prod([h for b, h in enumerate(self.spacing) if b != axis])))
        m, factor = self._radial()
        if axis == 0:
            radius = self.domain[0][side]
            return np.full(others, factor * radius**m * float(np.prod(self.spacing[1:])))
        return np.take(self.cell_volumes(), 0, axis=axis) / self.spacing[axis]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def axis_coordinates(self, axis: int, ghost: int = 0) -> np.ndarray:
        """Cell-centre coordinates along ``axis``, extended by ``ghost`` cells on each side."""
        (a, _), n, h = self.domain[axis], self.shape[axis], self.spacing[axis]
        return a + (np.arange(-ghost, n + ghost) + 0.5) * h

    @property
    def coordinates(self) -> tuple[np.ndarray, ...]:
        """Cell-centre coordinates, one 1-D array per axis."""
        return tuple(self.axis_coordinates(a) for a in range(self.dim))

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Cell-centre coordinates broadcast to the full grid (``indexing='ij'``)."""
        return tuple(np.meshgrid(*self.coordinates, indexing="ij"))

    def describe(self) -> str:
        text = "x".join(map(str, self.shape)) + " cells on " + " x ".join(f"[{a:g}, {b:g}]" for a, b in self.domain)
        return text if not self.curvilinear else f"{text} ({self.geometry}: {', '.join(self.axes)})"


def grid_of(system, grid) -> UniformGrid:
    """The grid of a run of ``system``: cell counts on its domain, or a given grid checked against it.

    Args:
        system: a :class:`~pdeforge.PDESystem` (its domain, axis names and geometry).
        grid: an int (every axis), one int per axis, or a :class:`UniformGrid`. A Cartesian
            UniformGrid on the system's domain takes the system's axis names and geometry.

    Raises:
        GridError: a grid of another geometry or domain, or bad cell counts.
    """
    geometry = getattr(getattr(system, "geometry", None), "name", "cartesian")
    names = None if geometry == "cartesian" else tuple(system.axes)
    if not isinstance(grid, UniformGrid):
        return UniformGrid.from_spec(system.domain, grid, names, geometry)
    if grid.geometry != geometry:
        if grid.geometry != "cartesian":
            raise GridError(f"grid: a {grid.geometry} grid, but the system's geometry is {geometry!r}")
        grid = replace(grid, names=names, geometry=geometry)
    return grid

"""Uniform Cartesian cell-centred grids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pdeforge.errors import GridError

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class UniformGrid:
    """A uniform, cell-centred grid on a box.

    Cell ``i`` along an axis covers ``[low + i*h, low + (i+1)*h]`` and its value sits at the
    centre ``low + (i + 1/2)*h``; boundaries lie on cell faces, which is what finite-volume
    conservation and ghost-cell boundary closures want.

    Attributes:
        domain: one ``(low, high)`` pair per axis.
        shape: number of cells per axis.
    """

    domain: tuple[tuple[float, float], ...]
    shape: tuple[int, ...]

    @classmethod
    def from_spec(cls, domain: Sequence[tuple[float, float]], grid) -> UniformGrid:
        """Build from a domain and ``grid`` (an int for every axis, or one int per axis).

        Raises:
            GridError: if the number of axes differs from the domain's or a size is < 2.
        """
        domain = tuple((float(a), float(b)) for a, b in domain)
        dim = len(domain)
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
                f"({', '.join(AXES[:dim])}); give {dim} sizes or one int"
            )
        if any(n < 2 for n in shape):
            raise GridError(f"grid: every axis needs at least 2 cells, got {shape}")
        if np.prod(shape, dtype=np.int64) > 2**31:
            raise GridError(f"grid: {shape} has more than 2**31 cells")
        return cls(domain, shape)

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def axes(self) -> tuple[str, ...]:
        return AXES[: self.dim]

    @property
    def spacing(self) -> tuple[float, ...]:
        """Cell width per axis."""
        return tuple((b - a) / n for (a, b), n in zip(self.domain, self.shape))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.spacing))

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
        return "x".join(map(str, self.shape)) + " cells on " + " x ".join(f"[{a:g}, {b:g}]" for a, b in self.domain)

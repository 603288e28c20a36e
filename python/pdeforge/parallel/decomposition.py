"""The process grid of a distributed run and each rank's block of cells.

The global grid is split into ``dims[0] x dims[1] x ...`` blocks (``MPI.Compute_dims`` by
default, or the user's ``dims``); along an axis of ``n`` cells split ``p`` ways, the first
``n % p`` blocks get one cell more (uneven splits are fine). Periodic axes wrap: the first and
last block along them are neighbours. A block narrower than the stencil's ghost width would
need cells from beyond its neighbour and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import GridError
from pdeforge.parallel.comm import mpi


def split(n: int, p: int) -> list[tuple[int, int]]:
    """``(start, count)`` of each of ``p`` blocks of an axis of ``n`` cells (the first ``n % p``
    blocks one cell longer)."""
    base, extra = divmod(n, p)
    out, start = [], 0
    for i in range(p):
        count = base + (1 if i < extra else 0)
        out.append((start, count))
        start += count
    return out


@dataclass(frozen=True)
class BlockGrid(UniformGrid):
    """One rank's block of a global grid, as a grid the kernels bind to.

    ``domain`` stays the global domain (the walls' face coordinates) and ``shape`` is the
    block's; cell widths and coordinates are those of the global grid at the block's cells,
    bit for bit, so a block computes exactly what one process computes there.

    Attributes:
        whole: the global grid.
        start: index of the block's first cell along each axis.
    """

    whole: UniformGrid | None = field(default=None, compare=False)
    start: tuple[int, ...] = ()

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.whole.spacing

    def axis_coordinates(self, axis: int, ghost: int = 0) -> np.ndarray:
        full = self.whole.axis_coordinates(axis, ghost)
        s = self.start[axis]
        return full[s: s + self.shape[axis] + 2 * ghost].copy()

    @property
    def slices(self) -> tuple[slice, ...]:
        """Where the block lies in the global cell arrays."""
        return tuple(slice(s, s + n) for s, n in zip(self.start, self.shape))

    def cell_volumes(self) -> np.ndarray:
        return self.whole.cell_volumes()[self.slices]

    def describe(self) -> str:
        where = ", ".join(f"{a}[{s}:{s + n}]" for a, s, n in zip(self.axes, self.start, self.shape))
        return f"block {where} of {self.whole.describe()}"


@dataclass
class Decomposition:
    """How a grid is split over the ranks of a communicator.

    Attributes:
        comm: the Cartesian communicator of the process grid.
        dims: blocks per axis.
        coords: this rank's position in the process grid.
        periodic: per axis, whether the process grid wraps (periodic axis).
        grid: the global grid.
        block: this rank's :class:`BlockGrid`.
        neighbours: per axis, the ``(low, high)`` neighbour ranks (``MPI.PROC_NULL`` at a wall).
        blocks: per axis, ``(start, count)`` of every block along it.
    """

    comm: Any
    dims: tuple[int, ...]
    coords: tuple[int, ...]
    periodic: tuple[bool, ...]
    grid: UniformGrid
    block: BlockGrid
    neighbours: tuple[tuple[int, int], ...]
    blocks: tuple[tuple[tuple[int, int], ...], ...]

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    def owns_wall(self, axis: int, side: int) -> bool:
        """Whether this block touches the global boundary of ``axis`` on ``side`` (0 low, 1 high)."""
        return self.coords[axis] == (0 if side == 0 else self.dims[axis] - 1)

    def split_axes(self) -> tuple[int, ...]:
        """The axes along which there is more than one block (the axes halos are exchanged on)."""
        return tuple(a for a, d in enumerate(self.dims) if d > 1)

    def block_of(self, rank: int) -> tuple[slice, ...]:
        """Where ``rank``'s block lies in the global cell arrays."""
        coords = self.comm.Get_coords(rank)
        return tuple(slice(self.blocks[a][c][0], self.blocks[a][c][0] + self.blocks[a][c][1])
                     for a, c in enumerate(coords))

    def describe(self) -> str:
        return "x".join(map(str, self.dims)) + f" blocks of {'x'.join(map(str, self.grid.shape))} cells"


def process_grid(nranks: int, dim: int, dims: Sequence[int] | None = None) -> tuple[int, ...]:
    """Blocks per axis: ``dims`` checked (0 entries chosen), or ``MPI.Compute_dims``."""
    given = [0] * dim if dims is None else [int(d) for d in dims]
    if len(given) != dim:
        raise GridError(f"decomposition: {len(given)} entries for a {dim}-axis grid; give one per axis")
    if any(d < 0 for d in given):
        raise GridError(f"decomposition: blocks per axis must be >= 0 (0: chosen), got {tuple(given)}")
    fixed = int(np.prod([d for d in given if d > 0]))
    if fixed == 0 or nranks % fixed or (0 not in given and fixed != nranks):
        raise GridError(f"decomposition {'x'.join(map(str, given))} does not split {nranks} ranks "
                        f"(the product of the blocks per axis must be the number of ranks)")
    return tuple(mpi().Compute_dims(nranks, given))


def decompose(grid: UniformGrid, comm: Any, ghost: Sequence[int], periodic: Sequence[bool],
              dims: Sequence[int] | None = None, widths: Sequence[int] | None = None) -> Decomposition:
    """Split ``grid`` over the ranks of ``comm``.

    Args:
        grid: the global grid.
        comm: an mpi4py communicator (every rank of it calls this).
        ghost: ghost layers per axis of the kernels.
        periodic: per axis, whether every field is periodic along it (the process grid wraps).
        dims: blocks per axis (0 or None: chosen by ``MPI.Compute_dims``).
        widths: per axis, the fewest cells a block next to a wall needs for the boundary
            closures (default: the ghost width).

    Raises:
        GridError: a decomposition that does not fit the ranks, or a block narrower than the
            ghost width (or the closure width next to a wall).
    """
    MPI = mpi()
    dim = grid.dim
    dims = process_grid(comm.Get_size(), dim, dims)
    widths = tuple(ghost) if widths is None else tuple(widths)
    for a in range(dim):
        narrowest = grid.shape[a] // dims[a]
        need = max(ghost[a], 1 if periodic[a] else widths[a])
        if narrowest < need:
            raise GridError(
                f"decomposition {'x'.join(map(str, dims))}: blocks along {grid.axes[a]!r} would have "
                f"{narrowest} cells, fewer than the {need} the stencil needs (ghost width {ghost[a]}); "
                f"use fewer ranks along {grid.axes[a]!r} (decomposition=...) or more cells")
    cart = comm.Create_cart(list(dims), periods=[bool(p) for p in periodic], reorder=False)
    coords = tuple(cart.Get_coords(cart.Get_rank()))
    blocks = tuple(tuple(split(grid.shape[a], dims[a])) for a in range(dim))
    start = tuple(blocks[a][coords[a]][0] for a in range(dim))
    shape = tuple(blocks[a][coords[a]][1] for a in range(dim))
    block = BlockGrid(grid.domain, shape, grid.names, grid.geometry, whole=grid, start=start)
    neighbours = tuple(cart.Shift(a, 1) for a in range(dim))
    del MPI
    return Decomposition(cart, dims, coords, tuple(bool(p) for p in periodic), grid, block, neighbours, blocks)

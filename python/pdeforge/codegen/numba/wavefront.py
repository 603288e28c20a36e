"""Wavefront temporal blocking of the compiled forward-Euler loop: several steps per sweep, no
redundant cells, no copies.

The plain loop streams both states through the memory hierarchy once per step. The wavefront
(time skewing, as in Wonnacott's and Pluto's schedules) runs ``T`` steps ("levels") in one
sweep along the outermost axis: at clock ``tau`` level ``l`` advances row ``j = tau - (l-1) D``
(a row is a line in 2-D, a plane in 3-D) from level ``l-1``, levels in increasing order. Level
``l`` needs level ``l-1``'s rows ``j - r .. j + r`` (``r``: the stencil's reach along the axis,
at most its ghost width), which the lag ``D >= r`` guarantees are done; two arrays suffice
(level ``l`` overwrites level ``l-2``, whose rows no later level reads), and only the few rows
in flight (about ``(T - 1) D + 2 r`` per array) need to stay in cache, so each state crosses
the memory bus once per ``T`` steps instead of once per step. Each advanced row gets its
ghosts along the other axes at once (the same generated fill as the plain loop, restricted to
that row); a wall's ghost rows are filled as soon as the rows its closure reads (``CW`` of
them) are done, which the lag ``D >= CW - 1`` also orders before their first reader.

Rows are split into tiles along the outermost axis (one per thread, or one). Phase 1 advances
each tile's *trapezoid*: level ``l`` covers the tile less ``(l-1) r`` rows at every edge shared
with another tile (or with itself across a periodic wrap), so a tile reads only its own cells
and the level-0 rows next to it. Phase 2 fills each seam's inverted trapezoid (``2 (l-1) r``
rows of level ``l`` around it), level by level; across a periodic seam the ghost rows are
copies of the rows just advanced. Tiles of one phase touch disjoint rows, so threads need one
barrier per phase: two per ``T`` steps, where the plain threaded loop has one per step.

Every value is computed by the same generated right-hand side and fill from the same inputs in
the same order of operations as the plain loop, so results are equal to it (tests: every
boundary kind, order 2 and 4, 2-D and 3-D, threaded and not).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pdeforge.codegen.module import KernelSpec

#: Steps per sweep tried at most (more steps save more traffic but keep more rows in flight).
MAX_LEVELS = 16
#: Cells one call advances at least (a band of rows). Measured (Gray-Scott 512^2, two threads,
#: 4 levels): bands of 1 row 1340, 2 rows 1480, 3 rows 1560, 4 rows 1600-1800, 8 rows 1580
#: Mcell-steps/s: one call's fixed cost (arguments, the row fill) against ~2000 cells of work.
BAND_CELLS = 2048
#: Share of the L2 the rows in flight of one thread may take.
L2_SHARE = 0.6


def wavefront_source(spec: KernelSpec, parallel: bool) -> list[str]:
    """Source of ``_wave_row`` (advance one row one level, fill its ghosts) and of
    ``_advance_euler_wave`` / ``_advance_euler_wavepar`` (the sweeps, serial or one tile per
    thread); an empty list where the outermost axis mixes periodic and other fields, or the
    system has one dimension."""
    semi = spec.semi
    dim, nf = semi.dim, len(semi.fields)
    if dim < 2:
        return []
    kinds = {semi.bcs[(f, 0)][0].periodic for f in range(nf)}
    if len(kinds) != 1:
        return []
    periodic = kinds.pop()
    g0, cw = semi.ghost[0], semi.closure_width
    axes = semi.system.axes
    coords = ", ".join(f"c{ax}" for ax in axes)
    pcoords = ", ".join(f"p{ax}" for ax in axes)
    kargs = f"p, h, {coords}"
    fargs = f"p, W, B, dom, {pcoords}"
    L: list[str] = []
    if not parallel:
        L += ["@njit(cache=True, nogil=True, error_model='numpy')",
              f"def _wave_rows(SRC, DST, j0, j1, t, tn, dt, {kargs}, W, B, dom, {pcoords}):",
              f"    n0 = c{axes[0]}.shape[0]",
              f"    _stage_euler_rows(SRC, DST, t, dt, j0, j1, {kargs})",
              f"    _fill_rows(DST, tn, j0 + {g0}, j1 + {g0}, {fargs})"]
        if periodic:  # ghost rows across the wrap are copies of the rows just advanced
            L += [f"    for j in range(j0, min(j1, {g0})):",
                  f"        DST[:{nf}, n0 + {g0} + j] = DST[:{nf}, {g0} + j]",
                  f"    for j in range(max(j0, n0 - {g0}), j1):",
                  f"        DST[:{nf}, j - n0 + {g0}] = DST[:{nf}, {g0} + j]"]
        else:  # a wall's ghost rows once the rows its closure reads are done
            L += [f"    if j0 <= {cw - 1} < j1:",
                  f"        _fill_wall0(DST, tn, {fargs})",
                  f"        _fill_rows(DST, tn, 0, {g0}, {fargs})",
                  "    if j0 <= n0 - 1 < j1:",
                  f"        _fill_wall1(DST, tn, {fargs})",
                  f"        _fill_rows(DST, tn, n0 + {g0}, n0 + {2 * g0}, {fargs})"]
        L += ["", ""]
    name = f"_advance_euler_wave{'par' if parallel else ''}"
    loop = "prange" if parallel else "range"
    rows = f"{kargs}, W, B, dom, {pcoords}"

    def call(indent: str) -> list[str]:  # level l reads A0 when odd, A1 when even
        return [f"{indent}if l % 2 == 1:",
                f"{indent}    _wave_rows(A0, A1, a, b, tl, tn, dt, {rows})",
                f"{indent}else:",
                f"{indent}    _wave_rows(A1, A0, a, b, tl, tn, dt, {rows})"]

    L += [
        f"@njit(cache=True, nogil=True, error_model='numpy', parallel={parallel})",
        # E: tile edges (one tile per thread); R: rows per band (the unit of one call, >= the lag)
        f"def {name}(Y, Z, t0, dt, n, {kargs}, W, B, dom, {pcoords}, T, E, R):",
        f"    n0 = c{axes[0]}.shape[0]",
        "    K = E.shape[0] - 1",
        f"    _fill(Y, t0, {fargs})",
        "    A0, A1 = Y, Z",
        "    done = 0",
        "    while done < n:",
        "        m = min(T, n - done)",
        f"        for k in {loop}(K):",  # phase 1: each tile's trapezoid, levels one band apart
        "            lo = E[k]",
        "            hi = E[k + 1]",
        f"            slo = {g0} if ({periodic} or k > 0) else 0",
        f"            shi = {g0} if ({periodic} or k < K - 1) else 0",
        "            bands = (hi - lo + R - 1) // R",
        "            for tau in range(bands + m - 1):",
        "                for l in range(1, m + 1):",
        "                    a = max(lo + (tau - l + 1) * R, lo + (l - 1) * slo)",
        "                    b = min(lo + (tau - l + 2) * R, hi - (l - 1) * shi)",
        "                    if a >= b:",
        "                        continue",
        "                    tl = t0 + (done + l - 1) * dt",
        "                    tn = t0 + (done + l) * dt",  # as the plain loop computes its stage times
        *call("                    "),
        f"        for q in {loop}(K if {periodic} else K - 1):",  # phase 2: the seams, level by level
        f"            e = E[q] if {periodic} else E[q + 1]",
        "            for l in range(2, m + 1):",
        f"                w = (l - 1) * {g0}",
        "                tl = t0 + (done + l - 1) * dt",
        "                tn = t0 + (done + l) * dt",
        "                s = -w",
        "                while s < w:",  # the seam's rows, split where they wrap
        "                    a = (e + s) % n0",
        "                    b = min(a + w - s, n0)",
        *call("                    "),
        "                    s += b - a",
        "        if m % 2 == 1:",
        "            A0, A1 = A1, A0",
        "        done += m",
        "    return n % 2",
        "",
        "",
    ]
    return L


@dataclass(frozen=True)
class Wavefront:
    """A wavefront schedule of one grid: ``levels`` steps per sweep over ``tiles`` tiles of the
    outermost axis (edges in ``edges``), ``band`` rows per call (the levels' lag)."""

    levels: int
    edges: np.ndarray
    band: int = 1

    @property
    def tiles(self) -> int:
        return len(self.edges) - 1

    @property
    def args(self) -> tuple:
        """The schedule's arguments of ``_advance_euler_wave[par]``."""
        return self.levels, self.edges, self.band

    def describe(self) -> str:
        return (f"wavefront, {self.levels} steps per sweep, {self.tiles} tile(s) along the outermost axis, "
                f"{self.band} row(s) per band")


def lag(ghost0: int, closure_width: int) -> int:
    """Fewest rows a level may run ahead of the next: the stencil's reach along the swept axis
    (its ghost width) and, at a wall, the rows the closure reads less one."""
    return max(ghost0, closure_width - 1)


def min_tile(levels: int, ghost0: int, closure_width: int) -> int:
    """Fewest rows a tile needs for ``levels`` levels: its trapezoid keeps a row at the last
    level, seams stay apart, and a wall's closure rows lie outside the seam regions."""
    return 2 * levels * ghost0 + max(closure_width, ghost0) + 2


@functools.lru_cache(maxsize=None)
def cache_bytes(level: int, default: int) -> int:
    """Bytes of this machine's data (or unified) cache of ``level`` per core, from sysfs
    (``default`` where it cannot be read); read once per process."""
    from pathlib import Path

    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if int((index / "level").read_text()) != level or (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            return int(text.rstrip("KMG")) * scale
        except ValueError:
            continue
    return default


def band_rows(row_cells: int, ghost0: int, closure_width: int) -> int:
    """Rows per band: at least the lag, and enough cells (``BAND_CELLS``) that one call's fixed
    cost (argument set-up, the row fill) is small against its stencil work."""
    return max(lag(ghost0, closure_width), -(-BAND_CELLS // max(1, row_cells)))


def wavefront_for(shape: tuple[int, ...], row_bytes: int, ghost0: int, closure_width: int, tiles: int,
                  levels: int | None = None, band: int | None = None) -> Wavefront | None:
    """The schedule for ``tiles`` tiles (threads) with ``levels`` steps per sweep, or as many as
    keep the rows in flight of each tile in cache (``row_bytes``: one padded row of every field
    of both arrays), ``band`` rows per call (default :func:`band_rows`); None where the axis is
    too short for it."""
    n0 = shape[0]
    row_cells = int(np.prod(shape[1:]))
    band = band_rows(row_cells, ghost0, closure_width) if band is None else max(int(band), lag(ghost0, closure_width))
    if levels is None:
        levels = 0
        # rows in flight: one band per level, plus the reach of the first and the last
        # the L2's share measured best (Gray-Scott 512^2, two threads, 512 KiB L2: 4 levels of
        # 4-row bands in 0.6 of it 1600-1800 Mcell-steps/s, 8 levels 1530, 16 levels 1450), else
        # a quarter of the L3 where rows are too long for 4 levels in L2 (1024^2, 3-D planes)
        for budget in (int(L2_SHARE * cache_bytes(2, 1 << 20)), cache_bytes(3, 32 << 20) // 4):
            rows = budget // max(1, row_bytes)
            levels = min(MAX_LEVELS, int((rows - 2 * ghost0) // band))
            if levels >= 4:
                break
    levels = int(levels)
    tiles = max(1, int(tiles))
    while tiles > 1 and n0 // tiles < min_tile(levels, ghost0, closure_width):
        tiles -= 1
    if levels < 2 or n0 < min_tile(levels, ghost0, closure_width):
        return None
    edges = np.array([round(i * n0 / tiles) for i in range(tiles + 1)], dtype=np.int64)
    return Wavefront(levels, edges, band)


__all__ = ["wavefront_source", "Wavefront", "wavefront_for", "min_tile", "lag", "band_rows", "cache_bytes", "MAX_LEVELS"]

"""Temporal blocking of the compiled fixed-step loops: several steps per sweep over cache-sized tiles.

A plain step streams both states through the cache hierarchy once per step; above L2 size that
is bandwidth-bound. The tiled loop (overlapped tiling, as in Holewinski et al. and YASK's
"temporal wave-front" alternative) copies a *window* of the state — a tile plus a halo of
``T * reach`` cells on each side, ``reach`` = stages x ghost width — into a scratch array that
fits L2, runs ``T`` ordinary steps on the scratch with the very same generated loop
(``_advance_<method>_ser``, ghost fill included), and copies the tile's own cells back into the
other global state. Every step the scratch's ghost fill treats the window's edges as if they
were the domain's: where an edge *is* the domain's boundary (a clamped window, or an axis not
tiled) that is exactly the global fill; elsewhere the values it makes are wrong, and they
travel ``reach`` cells inwards per step, so after ``T`` steps they have crossed the halo and
no more. The tile's cells thus see the same values, in the same order of operations, as in
the plain loop: results agree to round-off (tests: every boundary kind, order 2 and 4, 1-D to
3-D, every fixed-step method).

Windows along periodic axes wrap around (gathered through index arrays); along other axes they
are clamped inside the domain. All windows have one shape, so the scratch is allocated once.
The threaded variant splits each sweep's tiles into one chunk per thread (tiles read one state
and write disjoint cells of the other): one barrier per sweep of ``T`` steps. The Python side
(:func:`plan`) chooses ``T`` and the tile sizes from a cache budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pdeforge.codegen.module import KernelSpec

#: Stages of each fixed-step method: the halo a step needs is stages x ghost width.
STAGES = {"euler": 1, "ssprk3": 3, "rk4": 4}
#: Work buffers of each method, and which one holds the result when the loop reports a swap.
BUFFERS = {"euler": 2, "ssprk3": 3, "rk4": 5}
RESULT = {"euler": 1, "ssprk3": 1, "rk4": 2}


def tiled_source(spec: KernelSpec, method: str, parallel: bool = False) -> list[str]:
    """Source lines of ``_advance_<method>_tiled`` (serial) or ``_advance_<method>_tiledpar``
    (the tiles of each sweep split into one chunk per thread, ``prange`` over the chunks).

    Both call ``_advance_<method>_ser`` on a window per tile; ``threads`` (last argument, the
    serial variant ignores it) is the number of chunks, passed in rather than asked of Numba
    inside (that would make the function uncacheable). Within a sweep the tiles only read
    one global state and write disjoint cells of the other, so the chunks need no
    synchronisation but the one barrier at the end of the sweep (every ``T`` steps, where the
    plain threaded loop has one per stage). Each chunk owns its scratch windows, allocated once.
    """
    semi = spec.semi
    dim, nf, g = semi.dim, len(semi.fields), semi.ghost
    axes = semi.system.axes
    nbuf, res = BUFFERS[method], RESULT[method]
    bufs = ", ".join(f"G{b}" for b in range(nbuf))
    coords = ", ".join(f"c{ax}" for ax in axes)
    pcoords = ", ".join(f"p{ax}" for ax in axes)
    shape = ", ".join(f"WL[{a}] + {2 * g[a]}" for a in range(dim))
    name = f"_advance_{method}_tiled{'par' if parallel else ''}"
    L = [
        f"@njit(cache=True, nogil=True, error_model='numpy', parallel={parallel})",
        f"def {name}({bufs}, t0, dt, n, p, h, {coords}, W, B, dom, {pcoords}, T, TB, NT, WS, WL, PER, threads):",
    ]
    for a in range(dim):
        L.append(f"    n{a} = c{axes[a]}.shape[0]")
    L.append("    ntiles = " + " * ".join(f"NT[{a}]" for a in range(dim)))
    L.append("    chunks = max(1, min(threads, ntiles))" if parallel else "    chunks = 1")
    for b in range(nbuf):
        L.append(f"    X{b} = np.empty((chunks, {nf}, {shape}), G0.dtype)")  # the state's precision
    for a in range(dim):
        L += [
            f"    I{a} = np.empty((chunks, WL[{a}] + {2 * g[a]}), np.int64)",
            f"    Q{a} = np.empty((chunks, WL[{a}] + {2 * g[a]}), p{axes[a]}.dtype)",
            f"    C{a} = np.empty((chunks, WL[{a}]), c{axes[a]}.dtype)",
        ]
    L += ["    A, Z = G0, G" + str(res), "    done = 0", "    sweeps = 0", "    while done < n:",
          "        m = min(T, n - done)", "        t = t0 + done * dt",
          f"        for ch in {'prange' if parallel else 'range'}(chunks):",
          "            for u in range(ch * ntiles // chunks, (ch + 1) * ntiles // chunks):",
          "                r = u"]
    ind = "                "
    for a in reversed(range(dim)):  # the tile's position per axis, innermost fastest
        L += [f"{ind}u{a} = r % NT[{a}]", f"{ind}r = r // NT[{a}]"]
    for a in range(dim):
        L += [
            f"{ind}s{a} = WS[{a}, u{a}]",
            f"{ind}for k in range(WL[{a}] + {2 * g[a]}):",
            f"{ind}    q = s{a} + k - {g[a]}",
            f"{ind}    if PER[{a}]:",
            f"{ind}        q = q % n{a}",
            f"{ind}    I{a}[ch, k] = q + {g[a]}",
            f"{ind}    Q{a}[ch, k] = p{axes[a]}[q + {g[a]}]",
            f"{ind}for k in range(WL[{a}]):",
            f"{ind}    C{a}[ch, k] = c{axes[a]}[I{a}[ch, k + {g[a]}] - {g[a]}]",
        ]
    # gather the window into the first scratch buffer; rows that do not wrap are copied whole
    last = dim - 1
    L.append(f"{ind}Y = X0[ch]")
    L.append(f"{ind}wl = WL[{last}] + {2 * g[last]}")
    L.append(f"{ind}lo = I{last}[ch, 0]")
    L.append(f"{ind}contiguous = I{last}[ch, wl - 1] - lo == wl - 1")
    gi = _nest(L, ind, [f"for f in range({nf}):"]
               + [f"for k{a} in range(WL[{a}] + {2 * g[a]}):\n    r{a} = I{a}[ch, k{a}]" for a in range(last)])
    ks = "".join(f"k{a}, " for a in range(last))
    rs = "".join(f"r{a}, " for a in range(last))
    L += [
        f"{gi}if contiguous:",
        f"{gi}    Y[f, {ks}:] = A[f, {rs}lo:lo + wl]",
        f"{gi}else:",
        f"{gi}    for k{last} in range(wl):",
        f"{gi}        Y[f, {ks}k{last}] = A[f, {rs}I{last}[ch, k{last}]]",
    ]
    xs = ", ".join(f"X{b}[ch]" for b in range(nbuf))
    cs = ", ".join(f"C{a}[ch]" for a in range(dim))
    qs = ", ".join(f"Q{a}[ch]" for a in range(dim))
    L.append(f"{ind}swapped = _advance_{method}_ser({xs}, t, dt, m, p, h, {cs}, W, B, dom, {qs})")
    L.append(f"{ind}R = X{res}[ch] if swapped else Y")
    # scatter the tile's own cells into the other global state
    si = _nest(L, ind, [f"for f in range({nf}):"]
               + [f"for i{a} in range(TB[{a}, u{a}], TB[{a}, u{a} + 1]):" for a in range(last)])
    dst = "".join(f"i{a} + {g[a]}, " for a in range(last))
    src = "".join(f"i{a} - s{a} + {g[a]}, " for a in range(last))
    a0, a1 = f"TB[{last}, u{last}]", f"TB[{last}, u{last} + 1]"
    L.append(f"{si}Z[f, {dst}{a0} + {g[last]}:{a1} + {g[last]}] = "
             f"R[f, {src}{a0} - s{last} + {g[last]}:{a1} - s{last} + {g[last]}]")
    L += ["        A, Z = Z, A", "        done += m", "        sweeps += 1", "    return sweeps % 2", "", ""]
    return L


def _nest(lines: list[str], indent: str, heads: list[str]) -> str:
    """Append nested loop heads (each may carry lines for its body after a newline); the body's indent."""
    for head in heads:
        first, *rest = head.split("\n")
        lines.append(indent + first)
        indent += "    "
        lines += [indent + r[4:] for r in rest]
    return indent


@dataclass(frozen=True)
class Tiling:
    """A tiling of one grid for one method: ``steps`` fused steps per sweep and the arguments
    of ``_advance_<method>_tiled`` after ``steps`` (tile bounds, counts, window starts and
    lengths, periodic flags)."""

    steps: int
    tiles: tuple[int, ...]
    redundancy: float
    args: tuple

    def describe(self) -> str:
        return f"{self.steps} steps per sweep, tiles {'x'.join(map(str, self.tiles))}, redundancy {self.redundancy:.2f}"


def tiling_for(shape: tuple[int, ...], ghost: tuple[int, ...], periodic: tuple[bool | None, ...], method: str,
               steps: int, tiles: tuple[int, ...]) -> Tiling:
    """The tiling with ``steps`` steps per sweep and tiles of (at most) ``tiles`` cells per axis.

    ``periodic`` per axis: True (windows wrap around), False (windows clamped inside the
    domain) or None (fields differ: the axis is not tiled). An axis whose tile plus halo would
    cover it all is not tiled either (one window: the whole axis).
    """
    dim = len(shape)
    halo = [steps * STAGES[method] * g for g in ghost]
    bounds, starts, lengths, counts = [], [], [], []
    redundancy = 1.0
    for a in range(dim):
        n, H = shape[a], halo[a]
        tile = max(1, min(int(tiles[a]), n))
        if tile + 2 * H >= n or periodic[a] is None:
            bounds.append([0, n])
            starts.append([0])
            lengths.append(n)
            counts.append(1)
            continue
        k = math.ceil(n / tile)
        edges = [round(i * n / k) for i in range(k + 1)]  # equal tiles, within one cell
        width = max(b - a_ for a_, b in zip(edges, edges[1:]))
        L = width + 2 * H
        if periodic[a]:
            ws = [e - H for e in edges[:-1]]
        else:
            ws = [min(max(e - H, 0), n - L) for e in edges[:-1]]
        bounds.append(edges)
        starts.append(ws)
        lengths.append(L)
        counts.append(k)
        redundancy *= L * k / n
    m = max(counts)
    TB = np.zeros((dim, m + 1), dtype=np.int64)
    WS = np.zeros((dim, m), dtype=np.int64)
    for a in range(dim):
        TB[a, : counts[a] + 1] = bounds[a]
        WS[a, : counts[a]] = starts[a]
    args = (int(steps), TB, np.array(counts, dtype=np.int64), WS, np.array(lengths, dtype=np.int64),
            np.array([bool(p) for p in periodic], dtype=np.int64))
    return Tiling(int(steps), tuple(int(b[1] - b[0]) for b in bounds), redundancy, args)


#: Scratch bytes a window may take (this machine: 2 MiB of L2 per core; half of it, so that
#: the gather and scatter streams and the code's own data keep their place).
CACHE_BYTES = 1 << 20
#: Steps per sweep tried; more steps amortise the copies, but cost halo.
STEP_CHOICES = (4, 8, 16)
#: Largest redundant work (cells computed per cell advanced) worth the saved traffic.
MAX_REDUNDANCY = 1.25
#: The plain loop is used while the work buffers take at most this many times ``cache_bytes``:
#: measured (one core, Gray-Scott Euler, CPU time), 512^2 (8.4 MB of states) ran at 555
#: Mcell-steps/s plain and 444 tiled, 1024^2 (34 MB) 322-414 plain and 409-438 tiled, 2048^2
#: (134 MB) 245 plain and 408 tiled: tiles pay once the states stream from far out in L3.
STREAM_FACTOR = 12
#: Cost of copying a window in and out, in steps over it (gather, scatter: measured ~2).
COPY_STEPS = 2.0


def plan(shape: tuple[int, ...], ghost: tuple[int, ...], periodic: tuple[bool | None, ...], nfields: int,
         method: str, cache_bytes: int = CACHE_BYTES) -> Tiling | None:
    """The tiling that keeps a window of every work buffer in ``cache_bytes``, or None where
    the states fit in cache anyway (nothing to save) or no tiling stays under ``MAX_REDUNDANCY``.

    Cost model per cell-step: redundant work times (1 + COPY_STEPS / steps); windows are square
    or wider along the innermost axis (contiguous rows stream best).
    """
    nbuf = BUFFERS[method]
    padded = int(np.prod([n + 2 * g for n, g in zip(shape, ghost)]))
    if nbuf * nfields * padded * 8 <= STREAM_FACTOR * cache_bytes:
        return None
    cells = cache_bytes // (8 * nfields * nbuf)  # padded window cells per field and buffer
    dim = len(shape)
    best, best_cost = None, math.inf
    for steps in STEP_CHOICES:
        for widen in (1, 2, 4, 8):  # the innermost axis `widen` times the cube's side
            inner = min(shape[-1] + 2 * ghost[-1], int(widen * cells ** (1.0 / dim)))
            outer = (cells / inner) ** (1.0 / (dim - 1)) if dim > 1 else inner
            widths = [int(outer)] * (dim - 1) + [inner]
            tiles = tuple(max(1, w - 2 * (steps * STAGES[method] + 1) * g) for w, g in zip(widths, ghost))
            t = tiling_for(shape, ghost, periodic, method, steps, tiles)
            if t.redundancy > MAX_REDUNDANCY or all(c == 1 for c in t.args[2]):
                continue
            cost = t.redundancy * (1.0 + COPY_STEPS / steps)
            if cost < best_cost:
                best, best_cost = t, cost
    return best


__all__ = ["tiled_source", "Tiling", "tiling_for", "plan", "CACHE_BYTES"]

"""Helpers shared by the benchmarks: machine description, timing, result files."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def pin_early(flag: str = "--cores", default: int = 1) -> int:
    """Pin this process to its first ``N`` allowed cores *before* NumPy, Numba, JAX or torch
    start their thread pools (``N`` from ``flag N`` on the command line, else ``default``;
    0: no pinning). Returns N.

    ``os.sched_setaffinity(0, ...)`` changes only the calling thread: threads that already
    exist (OpenBLAS starts its pool when NumPy is imported) keep running on the other cores,
    so pinning after the imports lets a "one core" benchmark use two (seen: process CPU time
    twice its wall time). Threads created after this call inherit the mask.
    """
    import sys

    n = default
    if flag in sys.argv[1:-1]:
        n = int(sys.argv[sys.argv.index(flag) + 1])
    if n and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])
    return n


def machine() -> str:
    """One line describing this machine (CPU model, cores, memory)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages as "a/b/c" ("n/a" where the OS has none): every
    benchmark prints it beside its ratios, since a ratio from a loaded machine is not a figure
    of the code."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def best_of(fn, repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def save(name: str, rows: list[dict], **extra) -> Path:
    """Write ``rows`` to benchmarks/results/NAME.json with the date and machine."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "date": date.today().isoformat(), "machine": machine(),
               "load_average_at_save": load_average(), "rows": rows, **extra}
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path} (load average {payload['load_average_at_save']})")
    return path


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of ``rows``."""
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)

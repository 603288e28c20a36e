"""Benchmark (d): peak memory of a 1024^2 Gray-Scott RK4 run with ten saved frames, and no
allocation per step in the Numba path.

Peak resident memory comes from ``/usr/bin/time -v`` around the real command line. The
per-step allocation check counts Numba runtime allocations (NRT statistics) across compiled
blocks of 1 and of 50 steps: the count must not grow with the number of steps.

    python benchmarks/bench_memory.py [--grid 1024] [--t-end 5000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, save, table


def peak_rss_mb(args: list[str]) -> float:
    time_bin = shutil.which("time") or "/usr/bin/time"
    r = subprocess.run([time_bin, "-v", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return kb / 1024


ALLOC_PROBE = r"""
import sys
import numpy as np
from numba.core.runtime import rtsys
import pdeforge as pf
system = pf.models.get_model("gray-scott").system()
b = pf.compile(system, target="numba").bind(pf.UniformGrid.from_spec(system.domain, 256))
bufs = [b.new_padded() for _ in range(5)]
bufs[0][:] = 1.0
b.advance_compiled("rk4", bufs, 0.0, 1.0, 1)
for steps in (1, 50):
    before = rtsys.get_allocation_stats()
    b.advance_compiled("rk4", bufs, 0.0, 1.0, steps)
    after = rtsys.get_allocation_stats()
    print(after.alloc - before.alloc)
assert np.isfinite(bufs[0]).all()
"""


def allocations_per_block() -> tuple[int, int]:
    """Numba runtime allocations during compiled blocks of 1 and 50 RK4 steps (NRT statistics)."""
    import os

    r = subprocess.run([sys.executable, "-c", ALLOC_PROBE], capture_output=True, text=True, check=True,
                       env=dict(os.environ, NUMBA_NRT_STATS="1"))
    a1, a50 = (int(v) for v in r.stdout.split())
    return a1, a50


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=1024)
    ap.add_argument("--t-end", type=float, default=5000.0)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp()) / "gs.nc"
    cmd = [sys.executable, "-m", "pdeforge.cli", "run", "gray-scott", "--grid", str(args.grid), "--method", "rk4",
           "--t-end", str(args.t_end), "--save-every", str(args.t_end / 10), "--out", str(out), "--quiet"]
    rss = peak_rss_mb(cmd)
    a1, a50 = allocations_per_block()
    state_mb = 2 * args.grid**2 * 8 / 2**20
    rows = [{"measure": "peak RSS of `pdeforge run gray-scott --grid %d --method rk4` (10 frames)" % args.grid,
             "value": f"{rss:.0f} MB", "target": "< 400 MB"},
            {"measure": "one state (2 fields, float64)", "value": f"{state_mb:.0f} MB", "target": ""},
            {"measure": "Numba runtime allocations in a 1-step block", "value": str(a1), "target": ""},
            {"measure": "Numba runtime allocations in a 50-step block", "value": str(a50), "target": "same as 1-step"}]
    print(machine())
    print(table(rows, ["measure", "value", "target"]))
    save("memory", rows, peak_rss_mb=rss, allocs_1=a1, allocs_50=a50)


if __name__ == "__main__":
    main()

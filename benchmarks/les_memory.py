"""Peak memory of a 64^3 ``les-hit`` run on the CPU (target: under 1.5 GB).

Runs ``pdeforge run les-hit --grid 64 ...`` in a child process and reads its peak resident set
size from ``/usr/bin/time -v`` (GNU time) when it exists, else by polling the child with
psutil. The whole process is counted: Python, NumPy/SciPy/SymPy/xarray, the generated
kernels, every saved frame and the diagnostics. Usage::

    python benchmarks/les_memory.py                  # 64^3, t_end 0.2, numpy backend
    python benchmarks/les_memory.py --backend torch --t-end 0.5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT_GB = 1.5


def _command(args, out: str) -> list[str]:
    return [
        sys.executable, "-m", "pdeforge.cli", "run", "les-hit", "--grid", str(args.grid), "--t-end", str(args.t_end),
        "--save-every", str(args.save_every), "--backend", args.backend, "--quiet", "--out", out,
    ]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "python") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def peak_with_gnu_time(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in GB, wall seconds) of ``cmd`` from ``/usr/bin/time -v``."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return int(match.group(1)) / 1024**2, wall


def peak_with_psutil(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in GB, wall seconds) of ``cmd`` by polling it every 10 ms."""
    import psutil

    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.01)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr.read().decode()[-2000:]}")
    return peak / 1024**3, time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, default=64)
    parser.add_argument("--t-end", type=float, default=0.2, dest="t_end")
    parser.add_argument("--save-every", type=float, default=0.05, dest="save_every")
    parser.add_argument("--backend", default="numpy", choices=("numpy", "torch"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = _command(args, str(Path(tmp) / "hit.nc"))
        how = "/usr/bin/time -v" if shutil.which("/usr/bin/time") else "psutil polling"
        peak, wall = peak_with_gnu_time(cmd) if how.startswith("/usr") else peak_with_psutil(cmd)
    frames = int(round(args.t_end / args.save_every)) + 1
    print(f"les-hit {args.grid}^3, t_end {args.t_end:g}, {frames} frames, backend {args.backend}: "
          f"peak RSS {peak:.3f} GB ({how}), limit {LIMIT_GB} GB -> {'ok' if peak < LIMIT_GB else 'OVER'}; "
          f"{peak / LIMIT_GB:.2f} of the limit; wall {wall:.1f} s")
    return 0 if peak < LIMIT_GB else 1


if __name__ == "__main__":
    sys.exit(main())

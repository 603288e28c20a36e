"""SIGTERM (a batch scheduler at the time limit) and SIGINT (Ctrl-C) stop ``pdeforge run`` alike:
every whole frame kept, the file valid, exit status 143 / 130, one line with the command that resumes."""

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import netCDF4
import numpy as np
import pdeforge as pf
import pytest
import xarray as xr
from pdeforge.solvers.run.signals import StopOnSignals, Stopped

# heat at 256 cells: 100 frames, ~0.3 s of stepping on an idle core
RUN = ["run", "heat", "--grid", "256", "--t-end", "1", "--save-every", "0.01", "--backend", "numpy", "--quiet"]


def _env():
    # the run writes the file while this process reads it: HDF5's file lock would refuse the reader
    return dict(os.environ, PYTHONPATH=str(Path(pf.__file__).parents[1]), HDF5_USE_FILE_LOCKING="FALSE")


def _frames(path: Path) -> int:
    try:
        with netCDF4.Dataset(path) as nc:
            return int(nc.getncattr("frames_complete"))
    except (OSError, AttributeError, KeyError):
        return 0


def _start_and_signal(out: Path, signum: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pdeforge.cli", *RUN, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and _frames(out) < 2:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_sigterm_keeps_a_valid_file_and_resume_completes_it_bit_for_bit(tmp_path):
    out = tmp_path / "run.nc"
    stopped = _start_and_signal(out, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pdeforge: stopped by SIGTERM:")
    resume_cmd = lines[0].split("resume with: ")[1]
    assert shlex.split(resume_cmd) == ["pdeforge", *RUN, "--out", str(out), "--resume"]
    with xr.open_dataset(out) as part:
        n = part.attrs["frames_complete"]
        assert 2 <= n < 101 and part.sizes["t"] == n and "SIGTERM" in part.attrs["status"]
        assert np.isfinite(part.u.values).all()

    argv = shlex.split(resume_cmd)[1:]
    done = subprocess.run([sys.executable, "-m", "pdeforge.cli", *argv], env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    full = pf.solve("heat", grid=256, t_span=1.0, backend="numpy", progress=False, output=pf.Output(save_every=0.01))
    with xr.open_dataset(out) as resumed:
        assert resumed.sizes["t"] == 101 and resumed.attrs["status"] == "completed"
        np.testing.assert_allclose(resumed.u.values, full.u.values, rtol=0, atol=1e-12)
        assert resumed.attrs["steps"] == full.attrs["steps"]


def test_sigint_ends_the_run_the_same_way(tmp_path):
    out = tmp_path / "run.nc"
    stopped = _start_and_signal(out, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGINT" in lines[0] and lines[0].endswith("--resume")
    with xr.open_dataset(out) as part:
        assert part.sizes["t"] == part.attrs["frames_complete"] >= 2


def test_handlers_are_restored_and_only_installed_in_the_main_thread():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Stopped) as info:
        with StopOnSignals() as guard:
            assert signal.getsignal(signal.SIGTERM) == guard._handler
            with guard.critical():  # deferred to the block's end: a frame is written whole
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                written = True
    assert written and info.value.signum == signal.SIGTERM
    assert {s: signal.getsignal(s) for s in before} == before

    seen = {}

    def in_thread():
        with StopOnSignals() as guard:
            seen["active"] = guard.active
        seen["handler"] = signal.getsignal(signal.SIGTERM)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert seen == {"active": False, "handler": before[signal.SIGTERM]}

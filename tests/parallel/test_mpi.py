"""Distributed runs under ``mpiexec -n 2`` and ``-n 4`` equal one process (mpi_cases.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
PYTHON = HERE.parents[1] / "python"

pytestmark = [
    pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec not found (pip install mpich)"),
    pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import mpi4py"], capture_output=True).returncode != 0,
                       reason="mpi4py not installed (pip install mpi4py)"),
]

#: Round-off: the blocks compute the same arithmetic per cell as one process (stage kernels
#: beside the fused one-process loop may round a last bit differently).
ROUND_OFF = 1e-13


#: mpi4py-fft (the distributed FFTs of spectral runs) is importable
FFT = subprocess.run([sys.executable, "-c", "import mpi4py_fft"], capture_output=True).returncode == 0
needs_fft = pytest.mark.skipif(not FFT, reason="mpi4py-fft not installed (apt-get install libfftw3-dev; "
                                               "pip install mpi4py-fft)")

#: Spectral runs: the same modes, the same arithmetic per mode; only the FFT library (FFTW in
#: mpi4py-fft, ducc0 on one process) rounds differently (largest difference over max |u|).
SPECTRAL_ROUND_OFF = 1e-12
SPECTRAL_TWO = ("spec2d-rk4", "spec2d-etdrk4", "spec2d-etdrk4-adaptive", "spec2d-etdrk4-rejects", "spec2d-cnrk4",
                "spec2d-float32", "spec3d-rk4-slab", "spec3d-ifrk4")
SPECTRAL_FOUR = ("spec3d-etdrk4-adaptive-pencil", "spec3d-euler-pencil-uneven", "spec3d-rk4-slab", "spec2d-cnrk4",
                 "spec2d-etdrk4-rejects", "refuse-spectral-2d-slabs")


def mpirun(n: int, tmp_path: Path, *cases: str) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PYTHON), os.environ.get("PYTHONPATH")])))
    out = tmp_path / f"results-{n}.json"
    proc = subprocess.run(["mpiexec", "-n", str(n), sys.executable, str(HERE / "mpi_cases.py"), str(out), *cases],
                          capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpi2")
    return mpirun(2, tmp, "gs-2x1-rk4", "gs-1x2-euler", "gs-auto-ssprk3", "gs-rk45", "walls-2x1-rk4",
                  "walls-1x1x2-ssprk3", "coupled-2x1-rk4", "coupled-1x2-rk45", "scalar-walls-2x1", "coefficients-2x1",
                  "coefficients-1x2", f"store:{tmp}", f"both:{tmp}", f"resume:{tmp}", f"coupled-store:{tmp}", "refuse-bdf",
                  "refuse-narrow", "refuse-netcdf", "refuse-resume", "refuse-spectral-torch", "refuse-spectral-2d-pencil",
                  *(SPECTRAL_TWO if FFT else ()),
                  *(["spec2d-blow-up", f"spectral-store:{tmp}", f"spectral-resume:{tmp}", f"spectral-both:{tmp}"] if FFT else [])) | {"tmp": str(tmp)}


@pytest.fixture(scope="module")
def four(two, tmp_path_factory):
    # resumes the store whose first half two ranks wrote
    return mpirun(4, tmp_path_factory.mktemp("mpi4"), "gs-2x2-rk4", "gs-4x1-uneven-euler", "walls-2x2-rk4",
                  "walls-1x2x2-euler", "coupled-2x2-euler", "coefficients-2x2", f"resume-from-2:{two['tmp']}",
                  *(SPECTRAL_FOUR if FFT else ()))


@pytest.mark.parametrize("case", ["gs-2x1-rk4", "gs-1x2-euler", "gs-auto-ssprk3", "walls-2x1-rk4",
                                  "walls-1x1x2-ssprk3"])
def test_two_ranks_equal_one_process(two, case):
    r = two[case]
    assert r["maxdiff"] <= ROUND_OFF, r
    assert r["steps"][0] == r["steps"][1]
    assert r["dt_rule"][0] == r["dt_rule"][1]
    assert r["halo_bytes_per_step"] > 0


def test_rk45_takes_the_same_steps_with_a_global_error_norm(two):
    r = two["gs-rk45"]
    assert r["steps"][0] == r["steps"][1]
    assert r["maxdiff"] <= 1e-10, r


@pytest.mark.parametrize("case", ["gs-2x2-rk4", "gs-4x1-uneven-euler", "walls-2x2-rk4", "walls-1x2x2-euler"])
def test_four_ranks_equal_one_process(four, case):
    r = four[case]
    assert r["maxdiff"] <= ROUND_OFF, r
    assert r["steps"][0] == r["steps"][1]


#: Sums over the ranks add the blocks' partial quadratures in another order than one process's sum
#: over all cells: integral(), mean() and the scalars they drive agree to round-off relative to their size.
SUM_ORDER = 1e-13


@pytest.mark.parametrize("ranks, case", [(2, "coupled-2x1-rk4"), (2, "coupled-1x2-rk45"), (4, "coupled-2x2-euler"),
                                         (2, "scalar-walls-2x1")])
def test_scalars_integral_and_mean_over_ranks_equal_one_process(two, four, ranks, case):
    r = (two if ranks == 2 else four)[case]
    assert r["relative"] <= SUM_ORDER, r
    assert r["steps"][0] == r["steps"][1]  # rk45 too: the error norm counts the scalars once
    assert r["halo_bytes_per_step"] > 0


@pytest.mark.parametrize("ranks, case", [(2, "coefficients-2x1"), (2, "coefficients-1x2"), (4, "coefficients-2x2")])
def test_coefficient_arrays_of_the_whole_grid_are_cut_to_each_block(two, four, ranks, case):
    r = (two if ranks == 2 else four)[case]
    assert r["maxdiff"] <= ROUND_OFF, r
    assert r["steps"][0] == r["steps"][1]


def test_scalars_are_variables_of_the_store_and_resume_from_it(two):
    r = next(v for k, v in two.items() if k.startswith("coupled-store:"))
    assert r["resumed"] == 0.0  # continued bit for bit as the uninterrupted distributed run
    assert r["one_process"] <= SUM_ORDER, r
    assert r["scalars"] == ["t", "t"] and r["frames"] == [3, 3]


def test_decompositions_are_the_requested_ones(two, four):
    assert two["gs-2x1-rk4"]["decomposition"] == "2x1"
    assert two["walls-1x1x2-ssprk3"]["decomposition"] == "1x1x2"
    assert four["gs-4x1-uneven-euler"]["decomposition"] == "4x1"
    assert four["walls-2x2-rk4"]["decomposition"] == "2x2x1"


def test_one_zarr_store_matches_the_netcdf_of_one_process(two):
    r = next(v for k, v in two.items() if k.startswith("store:"))
    assert r["maxdiff"] == 0.0 and r["times"] == 0.0
    assert r["variables"] and r["frames"][0] == r["frames"][1] == 5
    assert r["missing_attrs"] == [] and r["status"] == "completed"


def test_the_in_memory_dataset_equals_the_store_and_a_callback_stops_every_rank(two):
    r = next(v for k, v in two.items() if k.startswith("both:"))
    assert r["maxdiff"] == 0.0
    assert r["frames"] == [3, 3]  # t = 0, 2.5, 5: rank 0's callback stopped every rank at t = 5
    assert r["status"] == "stopped by watch"
    assert r["shapes"] == [[[24, 20]], [[24, 20]]]  # callbacks see the whole state on every rank


def test_a_resumed_store_continues_bit_for_bit_as_one_uninterrupted_run(two):
    r = next(v for k, v in two.items() if k.startswith("resume:"))
    assert r["maxdiff"] == 0.0 and r["times"] == 0.0  # the same ranks: the same arithmetic in the same order
    assert r["steps"][0] == r["steps"][1] == 20
    assert r["frames"] == [5, 5] and r["status"] == "completed" and r["history"] == 1


def test_a_store_written_by_two_ranks_is_continued_by_four(four):
    r = next(v for k, v in four.items() if k.startswith("resume-from-2:"))
    # blocks of another shape compute each cell with the same arithmetic: equal to round-off
    assert r["maxdiff"] <= ROUND_OFF, r
    assert r["steps"][0] == r["steps"][1] == 20
    assert r["frames"] == [5, 5] and r["ranks"] == [4, 2] and r["status"] == "completed"


def test_a_one_process_run_has_no_distributed_attributes(two):
    assert two["gs-2x1-rk4"]["one_process_attrs"] == []


def test_what_does_not_run_distributed_is_refused_clearly(two):
    assert "runs on one process only" in two["refuse-bdf"]["message"]
    message = two["refuse-bdf"]["message"]
    assert "rk45" in message and "resume=True continues" in message and "the spectral discretization with backend 'numpy'" in message
    assert "fewer than the" in two["refuse-narrow"]["message"]
    assert ".zarr" in two["refuse-netcdf"]["message"]
    assert "no such store" in two["refuse-resume"]["message"]
    message = two["refuse-spectral-torch"]["message"]
    assert "backend 'torch' runs on one process only" in message and "backend 'numpy'" in message
    assert "pencils split two axes of a 3-D grid" in two["refuse-spectral-2d-pencil"]["message"]


def test_the_command_line_runs_one_simulation_across_ranks_into_one_store(tmp_path):
    import xarray as xr

    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PYTHON), os.environ.get("PYTHONPATH")])))
    command = ["mpiexec", "-n", "2", sys.executable, "-m", "pdeforge.cli", "run", "gray-scott", "--grid", "24",
               "--t-end", "10", "--save-every", "5"]
    proc = subprocess.run([*command, "--out", "run.zarr"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("gray-scott: 24x24 cells") == 1  # the summary comes from rank 0 only
    with xr.open_zarr(tmp_path / "run.zarr") as ds:
        assert ds.sizes["t"] == 3 and ds.attrs["mpi_ranks"] == 2 and ds.attrs["status"] == "completed"
    later = [*command[:command.index("--t-end")], "--t-end", "15", "--save-every", "5"]
    for out, more in (("run.zarr", ["--resume"]), ("whole.zarr", [])):
        proc = subprocess.run([*later, "--out", out, *more], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with xr.open_zarr(tmp_path / "run.zarr") as resumed, xr.open_zarr(tmp_path / "whole.zarr") as whole:
        assert resumed.sizes["t"] == whole.sizes["t"] == 4 and resumed.attrs["steps"] == whole.attrs["steps"]
        assert float(abs(resumed.u - whole.u).max()) == 0.0  # --resume continues bit for bit
    refused = subprocess.run([*command, "--out", "run.nc"], capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=600)
    assert refused.returncode == 2
    assert refused.stderr.count(".zarr") == 1 and "Traceback" not in refused.stderr


@needs_fft
@pytest.mark.parametrize("case", [c for c in SPECTRAL_TWO if c != "spec2d-float32"])
def test_spectral_runs_on_two_ranks_equal_one_process(two, case):
    r = two[case]
    assert r["maxdiff"] <= SPECTRAL_ROUND_OFF, r
    assert r["diagnostics"] <= SPECTRAL_ROUND_OFF and r["n_diagnostics"] == 5, r  # energies and spectra
    assert r["steps"][0] == r["steps"][1] and r["rejected"][0] == r["rejected"][1], r
    assert r["variables"] and r["frames"] == 3 and r["status"] == "completed"
    assert r["fft"] == "mpi4py-fft slab" and r["transpose_bytes"] > 0


@needs_fft
def test_error_controlled_etdrk4_accepts_and_rejects_alike_on_every_rank(two, four):
    # Kolmogorov flow to t = 8 rejects a step (the flow leaves its laminar start); the 3-D
    # pencil case accepts every step, on every rank alike
    for r in (two["spec2d-etdrk4-rejects"], four["spec2d-etdrk4-rejects"]):
        assert r["rejected"][0] == r["rejected"][1] > 0, r  # the global error norm: the same decisions
        assert r["steps"][0] == r["steps"][1]
    r = four["spec3d-etdrk4-adaptive-pencil"]
    assert r["rejected"][0] == r["rejected"][1] and r["steps"][0] == r["steps"][1], r


@needs_fft
def test_a_float32_spectral_run_equals_one_process_to_float32_round_off(two):
    r = two["spec2d-float32"]
    assert r["maxdiff"] <= 1e-5 and r["steps"][0] == r["steps"][1], r


@needs_fft
@pytest.mark.parametrize("case", SPECTRAL_FOUR[:-1])
def test_spectral_runs_on_four_ranks_equal_one_process(four, case):
    r = four[case]
    assert r["maxdiff"] <= SPECTRAL_ROUND_OFF, r
    assert r["diagnostics"] <= SPECTRAL_ROUND_OFF, r
    assert r["steps"][0] == r["steps"][1] and r["rejected"][0] == r["rejected"][1], r


@needs_fft
def test_spectral_slabs_and_pencils_are_the_requested_ones(two, four):
    assert two["spec3d-rk4-slab"]["decomposition"] == "2x1x1"
    assert four["spec3d-rk4-slab"]["decomposition"] == "4x1x1"
    assert four["spec2d-cnrk4"]["decomposition"] == "4x1"
    assert four["spec3d-etdrk4-adaptive-pencil"]["decomposition"] == "2x2x1"
    assert four["spec3d-etdrk4-adaptive-pencil"]["fft"] == "mpi4py-fft pencil"
    assert four["spec3d-euler-pencil-uneven"]["decomposition"] == "2x2x1"
    assert "too few planes for one slab per rank" in four["refuse-spectral-2d-slabs"]["message"]


@needs_fft
def test_a_spectral_zarr_store_matches_the_netcdf_of_one_process(two):
    r = next(v for k, v in two.items() if k.startswith("spectral-store:"))
    assert r["maxdiff"] <= SPECTRAL_ROUND_OFF and r["diagnostics"] <= SPECTRAL_ROUND_OFF, r
    assert r["variables"] and r["extra"] == [] and r["k"] == 0.0, r  # fields, energies, E_k and its k axis
    assert r["frames"] == [3, 3] and r["missing_attrs"] == [] and r["status"] == "completed"


@needs_fft
def test_a_spectral_blow_up_stops_every_rank_at_the_same_step(two):
    r = two["spec2d-blow-up"]
    assert r["statuses"][0] == r["statuses"][1] == r["status"] and r["status"].startswith("blew up"), r
    assert r["frames"][0] == r["frames"][1]
    # the last finite frames come from a growing instability, which amplifies round-off
    assert r["maxdiff"] <= 1e-8, r


@needs_fft
def test_the_command_line_runs_a_spectral_les_across_ranks_into_one_store(tmp_path):
    import xarray as xr

    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PYTHON), os.environ.get("PYTHONPATH")])))
    command = ["mpiexec", "-n", "2", sys.executable, "-m", "pdeforge.cli", "run", "les-hit", "--grid", "12",
               "--t-end", "0.05", "--save-every", "0.025", "--out", "les.zarr"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("les-hit: 12x12x12 cells") == 1  # the summary comes from rank 0 only
    with xr.open_zarr(tmp_path / "les.zarr") as ds:
        assert ds.attrs["fft"] == "mpi4py-fft slab" and ds.attrs["status"] == "completed"
        assert ds.sizes["t"] == 3 and ds.E_k.sizes == {"t": 3, "k": ds.sizes["k"]}
        assert np.all(np.isfinite(ds.energy.values)) and np.all(np.diff(ds.energy.values) < 0)  # decaying


@needs_fft
def test_a_spectral_run_resumes_from_its_store_across_ranks(two):
    r = two[f"spectral-resume:{two['tmp']}"]
    # the state restarts from its physical frame (one forward transform), as one process's does
    assert r["maxdiff"] <= SPECTRAL_ROUND_OFF and r["diagnostics"] <= SPECTRAL_ROUND_OFF, r
    assert r["variables"] and r["frames"] == [5, 5] and r["steps"][0] == r["steps"][1] and r["status"] == "completed"
    assert r["history"] == 1


@needs_fft
def test_a_callback_on_one_rank_stops_a_spectral_run_on_every_rank(two):
    r = two[f"spectral-both:{two['tmp']}"]
    assert r["statuses"] == ["stopped by watch"] * 2
    assert r["frames"] == [3, 3] and r["maxdiff"] == 0.0, r  # t = 0, 0.25, 0.5: stopped at t = 0.5 everywhere
    assert r["shapes"] == [[[32, 32]], [[32, 32]]]  # callbacks see the whole state on every rank

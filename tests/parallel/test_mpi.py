"""Distributed runs under ``mpiexec -n 2`` and ``-n 4`` equal one process (mpi_cases.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
                  "refuse-narrow", "refuse-netcdf", "refuse-resume", "refuse-spectral") | {"tmp": str(tmp)}


@pytest.fixture(scope="module")
def four(two, tmp_path_factory):
    # resumes the store whose first half two ranks wrote
    return mpirun(4, tmp_path_factory.mktemp("mpi4"), "gs-2x2-rk4", "gs-4x1-uneven-euler", "walls-2x2-rk4",
                  "walls-1x2x2-euler", "coupled-2x2-euler", "coefficients-2x2", f"resume-from-2:{two['tmp']}")


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
    assert "rk45 run distributed" in two["refuse-bdf"]["message"]
    assert "fewer than the" in two["refuse-narrow"]["message"]
    assert ".zarr" in two["refuse-netcdf"]["message"]
    assert "no such store" in two["refuse-resume"]["message"]
    assert "spectral discretization runs on one process only" in two["refuse-spectral"]["message"]


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

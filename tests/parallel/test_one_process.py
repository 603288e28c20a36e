"""One process: no MPI is loaded, and the distributed settings are checked where they are given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pdeforge as pf
import pytest
from pdeforge.options import OptionError
from pdeforge.parallel.comm import SIZE_VARIABLES, launched_rank, launched_size

PYTHON = Path(__file__).resolve().parents[2] / "python"

SCRIPT = """
import sys
import pdeforge as pf
assert "mpi4py" not in sys.modules, "import pdeforge loaded mpi4py"
ds = pf.solve("gray-scott", grid=16, t_span=2.0, method=pf.RK4(dt=0.5), progress=False,
              discretization=pf.FiniteDifference(decomposition=(2, 1)))
assert "mpi_ranks" not in ds.attrs and ds.sizes["x"] == 16
assert "mpi4py" not in sys.modules, "a one-process solve loaded mpi4py"
print("ok")
"""


def _one_process_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SIZE_VARIABLES and not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON), os.environ.get("PYTHONPATH")]))
    return env


def test_a_one_process_run_never_imports_mpi4py():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=_one_process_env(),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_the_launcher_environment_gives_size_and_rank(monkeypatch):
    for name in SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert launched_size() == 1 and launched_rank() == 0
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("PMI_RANK", "3")
    assert launched_size() == 4 and launched_rank() == 3


@pytest.mark.parametrize("bad", ["2x2", (2, -1), (1.5, 2), 3])
def test_a_bad_decomposition_is_refused_where_it_is_given(bad):
    with pytest.raises(OptionError, match="decomposition"):
        pf.FiniteDifference(decomposition=bad)


def test_comm_must_be_a_communicator_and_belongs_to_the_discretization():
    with pytest.raises(OptionError, match="mpi4py communicator"):
        pf.FiniteDifference(comm="world")
    with pytest.raises(OptionError, match=r"FiniteDifference\(decomposition"):
        pf.RK4(decomposition=(2, 1))
    assert pf.FiniteDifference(decomposition=[2, 1]) == pf.FiniteDifference(decomposition=(2, 1))


@pytest.mark.parametrize("bad", ["slabs", (2, 0, 1), (1.5, 2), 3])
def test_a_bad_spectral_decomposition_is_refused_where_it_is_given(bad):
    with pytest.raises(OptionError, match="Spectral: decomposition must be 'slab', 'pencil' or ranks per axis"):
        pf.Spectral(decomposition=bad)
    with pytest.raises(OptionError, match="mpi4py communicator"):
        pf.Spectral(comm="world")
    assert pf.Spectral(decomposition=[2, 2, 1]) == pf.Spectral(decomposition=(2, 2, 1))


def test_the_spectral_process_grid_is_a_slab_where_every_rank_gets_planes():
    from pdeforge.errors import GridError
    from pdeforge.parallel.spectral import process_grid

    assert process_grid((64, 64), 4) == (4, 1)
    assert process_grid((16, 16, 16), 4, "slab") == (4, 1, 1)
    assert process_grid((16, 12, 8), 4, (2, 2, 1)) == (2, 2, 1)
    # a 2-D slab splits the half spectrum along the rfft axis: 8 / 2 + 1 = 5 modes for 8 ranks
    with pytest.raises(GridError, match="too few planes for one slab per rank"):
        process_grid((64, 8), 8)
    with pytest.raises(GridError, match="the last 1"):
        process_grid((16, 16, 16), 8, (2, 2, 2))
    with pytest.raises(GridError, match="pencils split two axes of a 3-D grid"):
        process_grid((16, 16), 4, "pencil")
    with pytest.raises(GridError, match="some rank would hold no plane"):
        process_grid((16, 2, 16), 4, "slab")  # the half spectrum of a 3-D slab is split along y

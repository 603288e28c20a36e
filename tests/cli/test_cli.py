"""The pdeforge command: runs, files, and one-line errors with exit status 2."""

import subprocess
import sys

import pytest
import xarray as xr

from pdeforge.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pdeforge.cli", *args], capture_output=True, text=True)


def test_list_names_every_model(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("gray-scott", "brusselator", "fitzhugh-nagumo", "fisher-kpp", "heat", "symbolics-rd"):
        assert name in out


def test_show_prints_equations_stencils_counts_and_code(capsys):
    assert main(["show", "gray-scott", "--code", "numba"]) == 0
    out = capsys.readouterr().out
    assert "Du*laplace(u) - u*v**2 + F*(1 - u)" in out
    assert "semi-discrete right-hand side" in out and "after CSE" in out
    assert "@njit(cache=True, parallel=True" in out and "prange(" in out
    assert "gliders" in out  # the Well's regimes are documented


def test_run_writes_netcdf_and_picture(tmp_path, capsys):
    out, png = tmp_path / "gs.nc", tmp_path / "gs.png"
    code = main(["run", "gray-scott", "--grid", "24", "--t-end", "20", "--save-every", "10", "--out", str(out),
                 "--plot", str(png), "--param", "F=0.03", "--seed", "3", "--quiet"])
    assert code == 0
    with xr.open_dataset(out) as ds:
        assert ds.u.shape == (3, 24, 24) and ds.attrs["status"] == "completed"
        assert '"F": 0.03' in ds.attrs["parameters"]
    assert png.stat().st_size > 10_000
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "unknown model 'nope'"),
        (["run", "heat", "--param", "q=1"], "no parameter 'q'"),
        (["run", "heat", "--param", "k=abc"], "is not a number"),
        (["run", "heat", "--param", "k"], "NAME=VALUE"),
        (["run", "heat", "--grid", "8x8"], "has 2 axes but the domain has 1"),
        (["run", "heat", "--grid", "ax3"], "NxM"),
        (["run", "heat", "--dt", "0"], "positive number"),
        (["run", "heat", "--dt", "1.0", "--method", "euler"], "exceeds the estimated euler stability limit"),
        (["run", "heat", "--t-end", "-2"], "positive number"),
        (["run", "heat", "--method", "leapfrog"], "invalid choice"),
        (["run", "heat", "--backend", "fortran"], "invalid choice"),
        (["run", "heat", "--out", "/no/such/dir/x.nc"], "does not exist"),
        (["run", "heat", "--out", "x.txt"], ".nc"),
        (["run", "heat", "--plot", "x.gif"], "use one of"),
        (["run", "heat", "--seed", "-1"], "non-negative"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    r = run_cli(*args)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in lines[0]


def test_blow_up_exits_1_with_state_saved(tmp_path):
    # backward heat equation: round-off in the highest mode grows like exp(4|k| t / h^2)
    out = tmp_path / "h.nc"
    r = run_cli("run", "heat", "--param", "k=-1", "--out", str(out), "--quiet")
    assert r.returncode == 1, r
    assert "non-finite" in r.stderr and str(out) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with xr.open_dataset(out) as ds:
        assert ds.attrs["status"].startswith("blew up")
        assert float(ds.t[-1]) < 1.0 and bool(abs(ds.u).max() < float("inf"))

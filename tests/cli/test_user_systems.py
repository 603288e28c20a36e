"""`pdeforge run` on a user's own system (.toml, .py), `pdeforge plot`, `--movie`, `--version`."""

import subprocess
import sys

import pytest
import xarray as xr

from pdeforge.cli import main

HEAT_TOML = """
name = "my-heat"
domain = [[0, 1]]
bcs = {x = ["dirichlet", {neumann = 0}]}

[equations]
u = "D*laplace(u) + s"

[params]
D = 0.1
s = "sin(pi*x)"

[ic]
u = "x*(1 - x)"

[run]
grid = 16
t_end = 0.2
save_every = 0.05
"""

ADVECTION_PY = """
import pdeforge as pf
system = pf.PDESystem({"u": "D*laplace(u) - w*(-(y - 0.5)*d(u, x) + (x - 0.5)*d(u, y))"},
                      params={"D": 0.01, "w": 1.0}, domain=[(0, 1), (0, 1)], bcs="neumann", name="rotating")
ic = {"u": "exp(-50*((x - 0.7)**2 + (y - 0.5)**2))"}
grid = 12
t_end = 0.2
save_every = 0.1
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "heat.toml").write_text(HEAT_TOML)
    (tmp_path / "adv.py").write_text(ADVECTION_PY)
    return tmp_path


def test_run_a_toml_system_with_the_catalogue_options(files, capsys):
    out = files / "heat.nc"
    assert main(["run", str(files / "heat.toml"), "--param", "D=0.2", "--out", str(out), "--quiet"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds.u.shape == (5, 16) and ds.attrs["status"] == "completed"
        assert '"D": 0.2' in ds.attrs["parameters"]
    assert capsys.readouterr().err == ""


def test_run_a_python_system_with_movie_and_plot_then_plot_the_file(files, capsys):
    out, gif = files / "adv.nc", files / "adv.gif"
    assert main(["run", str(files / "adv.py"), "--grid", "10x10", "--out", str(out), "--movie", str(gif), "--quiet"]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"
    with xr.open_dataset(out) as ds:
        assert ds.u.shape == (3, 10, 10)
    png = files / "frames.png"
    assert main(["plot", str(out), "--out", str(png), "--frames", "0,-1"]) == 0
    assert png.stat().st_size > 5_000


def test_show_a_toml_system(files, capsys):
    assert main(["show", str(files / "heat.toml")]) == 0
    out = capsys.readouterr().out
    assert "D*laplace(u) + s" in out and "low dirichlet, high neumann" in out


def test_version():
    done = subprocess.run([sys.executable, "-m", "pdeforge.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("pdeforge ")


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, ["run", "missing.toml"], "does not exist"),
        ("x = [", ["run", "bad.toml"], "not valid TOML"),
        ("domain = [[0, 1]]\n", ["run", "bad.toml"], "no [equations] table"),
        ("domain = [[0, 1]]\ncolour = 1\n[equations]\nu = 'u'\n", ["run", "bad.toml"], "unknown key 'colour'"),
        ("domain = [[0, 1]]\n[equations]\nu = 'laplace(u) + foo'\n", ["run", "bad.toml"], "unknown name 'foo'"),
        ("domain = [[0, 1]]\n[equations]\nu = 'u'\n[run]\ncolor = 1\n", ["run", "bad.toml"], "in [run]"),
        ("domain = [[0, 1]]\n[equations]\nu = 'laplace(u)'\n", ["run", "bad.toml"], "no initial condition"),
        ("import pdeforge\n", ["run", "bad.py"], "define a variable 'system'"),
        ("raise ValueError('boom')\n", ["run", "bad.py"], "ValueError: boom"),
        ("def (:\n", ["run", "bad.py"], "line 1"),
        (None, ["plot", "missing.nc"], "no such file"),
        ("not netcdf", ["plot", "bad.nc"], "not a run's file"),
        (None, ["run", "heat", "--movie", "x.avi"], "use one of .gif, .mp4"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, monkeypatch, content, args, message):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / args[1]).write_text(content)
    done = subprocess.run([sys.executable, "-m", "pdeforge.cli", *args], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_plot_options_are_checked(files):
    (files / "heat.toml")
    assert main(["run", str(files / "heat.toml"), "--out", str(files / "h.nc"), "--quiet"]) == 0
    for args in (["--frames", "x"], ["--slice", "z=1"], ["--field", "v"], ["--frames", "0,99"]):
        assert main(["plot", str(files / "h.nc"), "--out", str(files / "p.png"), *args]) == 2

"""The Julia environment files, the Julia module's syntax, and failing fast without Julia."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from julia_helpers import syntax_errors

import pdeforge as pf
from pdeforge.julia import environment as julia_env
from pdeforge.errors import JuliaUnavailable

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "Symbolics": "0c5d862f-8b57-4792-8d23-62f2024744c7",
    "SymbolicUtils": "d1185830-fcd6-423d-90d6-eec64667417b",
    "ModelingToolkit": "961ee093-0014-501f-94e3-6117800e7a78",
    "MethodOfLines": "94925ecb-adb7-4558-8ed8-f975c56a0bf4",
    "DomainSets": "5b8099bc-c8ec-5219-889f-1d9e522a28bf",
    "OrdinaryDiffEq": "1dea7af3-3e70-54e6-95c3-0bf5283fa5ed",
    "PythonCall": "6099a3de-0909-46bc-b1f4-468b9a2dfc0d",
}


def _no_julia_env(tmp_path) -> dict:
    """The environment of a process that cannot find Julia: PATH without julia, no settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON_JULIA", "PDEFORGE_JULIA"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not (Path(p) / "julia").exists())
    env["PDEFORGE_CONFIG"] = str(tmp_path / "absent.toml")
    env["PYTHONPATH"] = str(ROOT / "python")
    return env


def test_project_toml_and_juliapkg_json_agree():
    project = tomllib.loads((ROOT / "Project.toml").read_text())
    juliapkg = json.loads((ROOT / "python" / "pdeforge" / "juliapkg.json").read_text())
    packages = juliapkg["packages"]
    assert set(project["deps"]) == set(packages)
    for name, uuid in project["deps"].items():
        assert packages[name]["uuid"] == uuid, name
        assert packages[name]["version"] == project["compat"][name], name
    assert juliapkg["julia"] == project["compat"]["julia"]
    for name, uuid in REQUIRED.items():
        assert project["deps"].get(name) == uuid, f"{name} must have UUID {uuid}"


def test_juliapkg_json_is_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "juliapkg.json" in pyproject["tool"]["setuptools"]["package-data"]["pdeforge"]


def test_julia_module_parses():
    source = (ROOT / "julia" / "PDEForge.jl").read_text()
    assert syntax_errors(source) == []
    assert "module PDEForge" in source
    for name in ("build_function", "sparsejacobian", "MultithreadedForm", "MOLFiniteDifference", "discretize",
                 "PDESystem", "simplify"):
        assert name in source, name


def test_backend_julia_fails_fast_without_julia(tmp_path):
    code = (
        "import sys, time\n"
        "import pdeforge as pf\n"
        "t0 = time.perf_counter()\n"
        "try:\n"
        "    pf.solve('heat', grid=16, t_span=0.01, backend='julia')\n"
        "except pf.errors.JuliaUnavailable as exc:\n"
        "    print('ELAPSED', time.perf_counter() - t0)\n"
        "    print('MESSAGE', exc)\n"
        "try:\n"
        "    pf.compile(pf.models.get_model('heat').system(), target='numpy', simplifier='julia')\n"
        "except pf.errors.JuliaUnavailable as exc:\n"
        "    print('SIMPLIFIER', exc)\n"
        "print('JULIACALL', 'juliacall' in sys.modules, 'juliapkg' in sys.modules)\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=_no_julia_env(tmp_path), capture_output=True,
                         text=True, timeout=120).stdout
    assert time.perf_counter() - started < 60  # the whole interpreter, imports included
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert float(lines["ELAPSED"]) < 5.0
    for key in ("MESSAGE", "SIMPLIFIER"):
        assert "PDEFORGE_JULIA" in lines[key] and "PATH" in lines[key] and "never downloads" in lines[key]
    assert lines["JULIACALL"] == "False False"


def test_cli_run_with_julia_backend_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pdeforge.cli", "run", "heat", "--backend", "julia", "--grid", "8", "--t-end", "0.01",
         "--quiet"],
        env=_no_julia_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Julia" in lines[0] and "PDEFORGE_JULIA" in lines[0]
    assert "Traceback" not in proc.stderr


def _fake_julia(folder: Path, version: str = "1.11.2") -> Path:
    exe = folder / "julia"
    exe.write_text(f"#!/bin/sh\necho 'julia version {version}'\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE", "PDEFORGE_JULIA", "PDEFORGE_JULIA_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PDEFORGE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return tmp_path


def test_find_julia_order_and_messages(clean_env, monkeypatch):
    with pytest.raises(JuliaUnavailable, match="none was found"):
        julia_env.find_julia()
    assert not julia_env.julia_available()
    exe = _fake_julia(clean_env)
    # a folder or the executable, via the pdeforge setting
    monkeypatch.setenv("PDEFORGE_JULIA", str(clean_env))
    found = julia_env.find_julia()
    assert found.executable == str(exe.resolve()) and found.source == "PDEFORGE_JULIA"
    assert julia_env.julia_version(found) == (1, 11, 2)
    # juliapkg's own variable wins
    other = clean_env / "other"
    other.mkdir()
    exe2 = _fake_julia(other)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(exe2))
    assert julia_env.find_julia().source == "PYTHON_JULIAPKG_EXE"
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(clean_env / "nope"))
    with pytest.raises(JuliaUnavailable, match="PYTHON_JULIAPKG_EXE"):
        julia_env.find_julia()


def test_find_julia_from_config_and_path(clean_env, monkeypatch):
    exe = _fake_julia(clean_env)
    (clean_env / "config.toml").write_text(f'[julia]\nexecutable = "{exe}"\nthreads = 3\n')
    assert julia_env.find_julia().source == "config"
    assert julia_env.threads_setting() == "3"
    (clean_env / "config.toml").write_text("")
    monkeypatch.setenv("PATH", str(clean_env))
    assert julia_env.find_julia().source == "PATH"


def test_threads_setting(clean_env, monkeypatch):
    assert julia_env.threads_setting() == "auto"
    monkeypatch.setenv("PDEFORGE_JULIA_THREADS", "4")
    assert julia_env.threads_setting() == "4"
    monkeypatch.setenv("PDEFORGE_JULIA_THREADS", "zero")
    with pytest.raises(pf.errors.PDEForgeError, match="positive integer or 'auto'"):
        julia_env.threads_setting()


def test_old_julia_is_refused_before_juliacall(clean_env, monkeypatch):
    import importlib.util

    exe = _fake_julia(clean_env, "1.6.7")
    monkeypatch.setenv("PDEFORGE_JULIA", str(exe))
    if importlib.util.find_spec("juliacall") is None:
        with pytest.raises(JuliaUnavailable, match="juliacall is missing"):
            julia_env.prepare_juliacall(julia_env.find_julia())
    else:
        with pytest.raises(JuliaUnavailable, match="older than 1.10"):
            julia_env.prepare_juliacall(julia_env.find_julia())
    assert "juliacall" not in sys.modules

"""The Julia environment files, the Julia module's syntax, and failing fast without Julia."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from julia_helpers import syntax_errors

import pdeforge as pf
from pdeforge.julia import environment as julia_env
from pdeforge.errors import JuliaUnavailable

ROOT = Path(__file__).resolve().parents[2]
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
        assert packages[name].get("version") == project["compat"].get(name), name
    assert juliapkg["julia"] == project["compat"]["julia"]
    for name, uuid in REQUIRED.items():
        assert project["deps"].get(name) == uuid, f"{name} must have UUID {uuid}"


def test_compat_bounds_are_the_resolvable_ones():
    """Bounds that resolve together (tests/julia/data/upstream_exports.json has the versions read).

    OrdinaryDiffEq 7.7.0 builds on OrdinaryDiffEqCore 4 / DiffEqBase 7, which only the 2.x
    sub-packages use (LowOrderRK 1.14.0 needs DiffEqBase 6.194); MethodOfLines 0.11.20 is the
    first release with ArrayDiscretization; RuntimeGeneratedFunctions 0.5.25 fixes RGF#141
    (a multithreaded deadlock); juliacall 0.9.29-0.9.34 require Julia ^1.10.3.
    """
    compat = tomllib.loads((ROOT / "Project.toml").read_text())["compat"]
    assert compat["OrdinaryDiffEqLowOrderRK"] == "2" and compat["OrdinaryDiffEqSSPRK"] == "2"
    assert compat["MethodOfLines"] == "0.11.20" and compat["RuntimeGeneratedFunctions"] == "0.5.25"
    assert compat["julia"] == "1.10.3" and julia_env.MIN_VERSION == (1, 10, 3)
    upstream = json.loads((ROOT / "tests" / "julia" / "data" / "upstream_exports.json").read_text())["packages"]
    assert upstream["OrdinaryDiffEqLowOrderRK"]["version"].startswith("2.")
    assert upstream["OrdinaryDiffEqSSPRK"]["version"].startswith("2.")
    assert upstream["MethodOfLines"]["version"] == "0.11.20"
    assert "ArrayDiscretization" in upstream["MethodOfLines"]["exports"]


@pytest.mark.slow
def test_built_wheel_contains_pdeforge_jl(tmp_path):
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("pdeforge-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "pdeforge/julia/PDEForge.jl" in names and "pdeforge/juliapkg.json" in names
        text = zf.read("pdeforge/julia/PDEForge.jl").decode()
    assert text == (ROOT / "julia" / "PDEForge.jl").read_text()  # the file, not a dangling link


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
    # fast means: no download, no Julia package resolution, juliacall never imported (a wall
    # clock would measure the machine's load, not the code)
    out = subprocess.run([sys.executable, "-c", code], env=_no_julia_env(tmp_path), capture_output=True,
                         text=True, timeout=120).stdout
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert "ELAPSED" in lines
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
    exe = _fake_julia(clean_env, "1.6.7")
    monkeypatch.setenv("PDEFORGE_JULIA", str(exe))
    # the version is checked first, whether juliacall is installed or not
    with pytest.raises(JuliaUnavailable, match="outside the supported range >= 1.10.3"):
        julia_env.prepare_juliacall(julia_env.find_julia())
    assert "juliacall" not in sys.modules


@pytest.mark.parametrize("version", ["1.10.2", "1.10.0", "2.0.1"])
def test_julia_outside_caret_1_10_3_is_refused(clean_env, monkeypatch, version):
    exe = _fake_julia(clean_env, version)
    monkeypatch.setenv("PDEFORGE_JULIA", str(exe))
    with pytest.raises(JuliaUnavailable, match=r"outside the supported range >= 1\.10\.3, < 2"):
        julia_env.prepare_juliacall(julia_env.find_julia())
    assert "juliacall" not in sys.modules


def test_handle_signals_only_with_several_threads(clean_env, monkeypatch):
    """juliacall: HANDLE_SIGNALS=yes is for threads, and then Ctrl-C no longer raises KeyboardInterrupt."""
    for var in ("PYTHON_JULIACALL_HANDLE_SIGNALS", "PYTHON_JULIACALL_THREADS"):
        monkeypatch.delenv(var, raising=False)
    installation = julia_env.JuliaInstallation(str(_fake_julia(clean_env)), "test")
    monkeypatch.setenv("PDEFORGE_JULIA_THREADS", "1")
    one = julia_env.juliacall_variables(installation)
    assert one["PYTHON_JULIACALL_THREADS"] == "1" and "PYTHON_JULIACALL_HANDLE_SIGNALS" not in one
    monkeypatch.setenv("PDEFORGE_JULIA_THREADS", "4")
    four = julia_env.juliacall_variables(installation)
    assert four["PYTHON_JULIACALL_THREADS"] == "4" and four["PYTHON_JULIACALL_HANDLE_SIGNALS"] == "yes"
    assert four["PYTHON_JULIAPKG_EXE"] == installation.executable
    monkeypatch.setenv("PYTHON_JULIACALL_HANDLE_SIGNALS", "no")  # the user's choice stays
    assert "PYTHON_JULIACALL_HANDLE_SIGNALS" not in julia_env.juliacall_variables(installation)


def _juliacall_project(folder: Path, complete: bool) -> Path:
    packages = json.loads((ROOT / "python" / "pdeforge" / "juliapkg.json").read_text())["packages"]
    names = sorted(packages) if complete else ["PythonCall", "Symbolics"]
    folder.mkdir()
    (folder / "Project.toml").write_text("[deps]\n" + "".join(f'{n} = "{packages[n]["uuid"]}"\n' for n in names))
    return folder


# (settings, what the one line must say); "JULIA" is a fake Julia 1.11.2, "NOTJULIA" a program
# that answers --version with something else
ENVIRONMENTS = {
    "juliacall exe alone": ({"PYTHON_JULIACALL_EXE": "JULIA"}, "PYTHON_JULIACALL_EXE is set but PYTHON_JULIACALL_PROJECT is not"),
    "juliacall project alone": ({"PYTHON_JULIACALL_PROJECT": "PARTIAL"}, "PYTHON_JULIACALL_PROJECT is set but PYTHON_JULIACALL_EXE is not"),
    "juliacall both, project without pdeforge's packages": (
        {"PYTHON_JULIACALL_EXE": "JULIA", "PYTHON_JULIACALL_PROJECT": "PARTIAL"},
        "juliacall ignores pdeforge's juliapkg.json"),
    "juliacall both, complete project": (
        {"PYTHON_JULIACALL_EXE": "JULIA", "PYTHON_JULIACALL_PROJECT": "COMPLETE"}, "juliacall"),
    "juliapkg exe not a julia": ({"PYTHON_JULIAPKG_EXE": "NOTJULIA"}, "does not answer `--version` as a Julia"),
    "juliapkg project alone": ({"PYTHON_JULIAPKG_PROJECT": "COMPLETE"}, "none was found"),
    "juliapkg offline alone": ({"PYTHON_JULIAPKG_OFFLINE": "yes"}, "none was found"),
    "juliapkg all together": (
        {"PYTHON_JULIAPKG_EXE": "JULIA", "PYTHON_JULIAPKG_PROJECT": "COMPLETE", "PYTHON_JULIAPKG_OFFLINE": "yes"},
        "juliacall"),
    "every variable together": (
        {"PYTHON_JULIACALL_EXE": "JULIA", "PYTHON_JULIACALL_PROJECT": "PARTIAL", "PYTHON_JULIAPKG_EXE": "JULIA",
         "PYTHON_JULIAPKG_PROJECT": "COMPLETE", "PYTHON_JULIAPKG_OFFLINE": "yes", "PDEFORGE_JULIA": "JULIA"},
        "lacks"),
    "PDEFORGE_JULIA not a julia": ({"PDEFORGE_JULIA": "NOTJULIA"}, "does not answer `--version` as a Julia"),
    "PDEFORGE_JULIA missing": ({"PDEFORGE_JULIA": "MISSING"}, "is not an executable Julia"),
    "PDEFORGE_JULIA too old": ({"PDEFORGE_JULIA": "OLDJULIA"}, "outside the supported range"),
}
# one scrubbed process runs the CLI once per case (a process each would cost ~1 s of imports
# per case): the environment of each case, then `pdeforge run heat --backend julia`, its exit
# status and stderr, and whether juliacall/juliapkg (which download) were imported
CLI = """\
import contextlib, io, json, os, sys
from pdeforge.cli import main
base = dict(os.environ)
results = {}
for case, settings in json.loads(sys.argv[1]).items():
    os.environ.clear()
    os.environ.update(base)
    os.environ.update(settings)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", "heat", "--backend", "julia", "--grid", "8", "--t-end", "0.01", "--quiet"])
    results[case] = [rc, err.getvalue(), "juliacall" in sys.modules or "juliapkg" in sys.modules]
print(json.dumps(results))
"""


def test_every_environment_combination_ends_in_one_line_and_exit_2(tmp_path):
    """Each juliacall/juliapkg variable alone and together: exit 2, one line, nothing imported or fetched."""
    bin_, old = tmp_path / "bin", tmp_path / "old"
    bin_.mkdir()
    old.mkdir()
    values = {
        "JULIA": str(_fake_julia(bin_)),
        "OLDJULIA": str(_fake_julia(old, "1.10.2")),
        "NOTJULIA": str(bin_ / "notjulia"),
        "MISSING": str(tmp_path / "nowhere" / "julia"),
        "PARTIAL": str(_juliacall_project(tmp_path / "partial", complete=False)),
        "COMPLETE": str(_juliacall_project(tmp_path / "complete", complete=True)),
    }
    (bin_ / "notjulia").write_text("#!/bin/sh\necho 'hello from not-julia'\n")
    (bin_ / "notjulia").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = _no_julia_env(tmp_path)
    # nothing may be downloaded: an unreachable proxy, and a fresh HOME to see that nothing came
    env.update(HOME=str(home), JULIA_DEPOT_PATH=str(home / ".julia"), http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", PDEFORGE_JULIA_THREADS="1")
    cases = {case: {k: values.get(v, v) for k, v in settings.items()} for case, (settings, _) in ENVIRONMENTS.items()}
    proc = subprocess.run([sys.executable, "-c", CLI, json.dumps(cases)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failures = []
    for case, (rc, err, imported) in results.items():
        lines = err.strip().splitlines()
        expected = ENVIRONMENTS[case][1]
        if rc != 2 or len(lines) != 1 or expected not in lines[0] or "Traceback" in err:
            failures.append(f"{case}: exit {rc}, stderr {err!r}")
        if imported:
            failures.append(f"{case}: juliacall/juliapkg was imported")
    assert not failures, "\n".join(failures)
    assert list(home.iterdir()) == [], "something was written to HOME (a download?)"


def test_show_code_julia_prints_the_kernel_without_julia(tmp_path):
    """`show --code julia` only prints text: it needs no Julia (a run of the kernel would)."""
    proc = subprocess.run([sys.executable, "-m", "pdeforge.cli", "show", "fisher-kpp", "--code", "julia"],
                          env=_no_julia_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "JULIA_SPEC = 'fields u" in proc.stdout and "KERNELS = julia_kernels(JULIA_SPEC)" in proc.stdout


def test_a_juliacall_project_is_checked_and_the_bypass_said(clean_env, monkeypatch):
    """Both juliacall variables: juliapkg.json is ignored, so the project must hold pdeforge's packages."""
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", str(_fake_julia(clean_env)))
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(_juliacall_project(clean_env / "partial", complete=False)))
    with pytest.raises(JuliaUnavailable, match=r"ignores pdeforge's juliapkg.json .* lacks .*RuntimeGeneratedFunctions"):
        julia_env._check_juliacall_project()
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(_juliacall_project(clean_env / "complete", complete=True)))
    note = julia_env._check_juliacall_project()
    assert "ignores pdeforge's juliapkg.json" in note and "lists pdeforge's packages" in note
    monkeypatch.delenv("PYTHON_JULIACALL_EXE")
    monkeypatch.delenv("PYTHON_JULIACALL_PROJECT")
    assert julia_env._check_juliacall_project() is None

"""Finding Julia and configuring the Julia process, without importing juliacall.

Importing :mod:`juliacall` starts Julia; when juliacall cannot find a Julia it *downloads*
one. pdeforge therefore looks for a Julia installation itself, first, using only the file
system (no subprocess, no network), and raises :class:`~pdeforge.errors.JuliaUnavailable`
within milliseconds when there is none. Only when a Julia executable exists is juliacall
imported, pointed at that executable so that it never downloads another.

Where Julia is looked for, in order:

1. ``PYTHON_JULIACALL_EXE`` and ``PYTHON_JULIAPKG_EXE`` (juliacall's and JuliaPkg's own settings);
2. ``PDEFORGE_JULIA`` (path of the ``julia`` executable, or of the folder holding it);
3. the pdeforge configuration file (``$PDEFORGE_CONFIG`` or
   ``$XDG_CONFIG_HOME/pdeforge/config.toml``, default ``~/.config/pdeforge/config.toml``),
   key ``executable`` of table ``[julia]``;
4. ``julia`` on ``PATH``.

Threads (``PDEFORGE_JULIA_THREADS``, config key ``threads``, or :func:`configure`; default
``auto``: one per CPU core) and an optional system image (``PDEFORGE_JULIA_SYSIMAGE`` or
config key ``sysimage``) are handed to juliacall before Julia starts; they cannot change later.

juliacall's own settings are checked before it is imported, because juliacall reports them
with a bare ``Exception`` or by downloading: ``PYTHON_JULIACALL_EXE`` and
``PYTHON_JULIACALL_PROJECT`` must be set together (juliacall 0.9.34
pysrc/juliacall/__init__.py:189-203), and with both set juliacall never reads pdeforge's
``juliapkg.json``, so that project must already hold pdeforge's Julia packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from pdeforge.errors import JuliaUnavailable, PDEForgeError

ENV_EXECUTABLE = "PDEFORGE_JULIA"
ENV_THREADS = "PDEFORGE_JULIA_THREADS"
ENV_SYSIMAGE = "PDEFORGE_JULIA_SYSIMAGE"
ENV_CONFIG = "PDEFORGE_CONFIG"
#: Oldest Julia the Julia environment (Project.toml, juliapkg.json) supports: juliacall
#: 0.9.29-0.9.34 declare ``"julia": "^1.10.3"`` (pysrc/juliacall/juliapkg.json).
MIN_VERSION = (1, 10, 3)
#: Oldest juliacall pdeforge drives (pyproject.toml's bound): the first to read
#: ``PYTHON_JULIACALL_EXE``/``PYTHON_JULIACALL_PROJECT``.
MIN_JULIACALL = (0, 9, 28)
JULIACALL_EXE = "PYTHON_JULIACALL_EXE"
JULIACALL_PROJECT = "PYTHON_JULIACALL_PROJECT"

HOW_TO = (
    "install Julia >= 1.10.3, < 2 (https://julialang.org/downloads or juliaup) and put `julia` on PATH, "
    f"or set {ENV_EXECUTABLE}=/path/to/julia (or PYTHON_JULIAPKG_EXE, or `executable` under [julia] "
    "in ~/.config/pdeforge/config.toml); pdeforge never downloads Julia. The other backends "
    "(numba, numpy) need no Julia"
)

_settings: dict[str, object] = {}


@dataclass(frozen=True)
class JuliaInstallation:
    """A Julia executable pdeforge can use.

    Attributes:
        executable: absolute path of the ``julia`` executable.
        source: where it was found (an environment variable, the config file, or PATH).
    """

    executable: str
    source: str


def config_path() -> Path:
    """The pdeforge configuration file (it need not exist)."""
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pdeforge" / "config.toml"


def _config() -> dict:
    path = config_path()
    if not path.is_file():
        return {}
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PDEForgeError(f"pdeforge config {path}: cannot be read ({exc})") from None
    julia = data.get("julia", {})
    if not isinstance(julia, dict):
        raise PDEForgeError(f"pdeforge config {path}: [julia] must be a table")
    return julia


def _executable(candidate: str, where: str) -> str:
    """Absolute path of the executable named by ``candidate`` (a file or a folder), or an error."""
    path = Path(os.path.expanduser(candidate))
    if path.is_dir():
        for name in ("julia", "julia.exe", os.path.join("bin", "julia"), os.path.join("bin", "julia.exe")):
            if (path / name).is_file():
                path = path / name
                break
    if not path.is_file() or not os.access(path, os.X_OK):
        found = shutil.which(str(path)) if not path.is_absolute() else None
        if found is None:
            raise JuliaUnavailable(f"{where} = {candidate!r} is not an executable Julia; {HOW_TO}")
        path = Path(found)
    return str(path.resolve())


def find_julia() -> JuliaInstallation:
    """The Julia installation to use, found without starting anything.

    Raises:
        JuliaUnavailable: if no Julia executable is configured or on ``PATH``, with a message
            that says how to point pdeforge at one, or if only one of juliacall's
            ``PYTHON_JULIACALL_EXE`` / ``PYTHON_JULIACALL_PROJECT`` is set.
    """
    _check_juliacall_pair()
    for var in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE", ENV_EXECUTABLE):
        value = os.environ.get(var)
        if value:
            return JuliaInstallation(_executable(value, var), var)
    cfg = _config()
    if cfg.get("executable"):
        return JuliaInstallation(_executable(str(cfg["executable"]), f"{config_path()} [julia] executable"), "config")
    found = shutil.which("julia")
    if found:
        return JuliaInstallation(str(Path(found).resolve()), "PATH")
    raise JuliaUnavailable(f"the Julia backend needs Julia, and none was found; {HOW_TO}")


def _check_juliacall_pair() -> None:
    exe, project = os.environ.get(JULIACALL_EXE), os.environ.get(JULIACALL_PROJECT)
    if bool(exe) != bool(project):
        given, missing = (JULIACALL_EXE, JULIACALL_PROJECT) if exe else (JULIACALL_PROJECT, JULIACALL_EXE)
        raise JuliaUnavailable(
            f"{given} is set but {missing} is not; juliacall needs both or neither. Unset {given} "
            f"(pdeforge then uses PDEFORGE_JULIA / PYTHON_JULIAPKG_EXE / PATH and installs its packages "
            f"through juliapkg), or also set {missing}"
        )


def _check_juliacall_project() -> str | None:
    """With both juliacall variables set, juliapkg (and pdeforge's juliapkg.json) is bypassed.

    Returns:
        None when the variables are not set, else a note saying so (the project is complete).

    Raises:
        JuliaUnavailable: if that project lacks a package of pdeforge's juliapkg.json.
    """
    import json
    import tomllib

    if not os.environ.get(JULIACALL_PROJECT):
        return None
    folder = Path(os.path.expanduser(os.environ[JULIACALL_PROJECT]))
    required = json.loads((Path(__file__).resolve().parents[1] / "juliapkg.json").read_text())["packages"]
    note = (f"{JULIACALL_EXE} and {JULIACALL_PROJECT} are both set, so juliacall ignores pdeforge's "
            "juliapkg.json and installs nothing")
    project = folder / "Project.toml"
    if not project.is_file():
        project = folder / "JuliaProject.toml"
    try:
        deps = tomllib.loads(project.read_text()).get("deps", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise JuliaUnavailable(f"{note}; {JULIACALL_PROJECT} = {str(folder)!r} has no readable Project.toml ({exc})") from None
    missing = sorted(n for n, spec in required.items() if deps.get(n) != spec["uuid"])
    if missing:
        raise JuliaUnavailable(
            f"{note}; its project {project} lacks {', '.join(missing)}: add them there "
            "(julia --project=... -e 'using Pkg; Pkg.add([...])', or Pkg.instantiate() with pdeforge's Project.toml), "
            f"or unset both variables"
        )
    return (f"{note}; its project {project} lists pdeforge's packages (their versions are not checked "
            "against pdeforge's compat bounds)")


def julia_available() -> bool:
    """Whether a Julia executable can be found (nothing is started)."""
    try:
        find_julia()
    except (JuliaUnavailable, PDEForgeError):
        return False
    return True


def julia_version(installation: JuliaInstallation, timeout: float = 20.0) -> tuple[int, ...] | None:
    """``julia --version`` as a tuple (None if the executable does not answer in time)."""
    try:
        out = subprocess.run(
            [installation.executable, "--startup-file=no", "--version"],
            capture_output=True, text=True, timeout=timeout, check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = out.split()
    if len(words) >= 3 and words[0] == "julia":
        try:
            return tuple(int(p) for p in words[2].split("-")[0].split(".")[:3])
        except ValueError:
            return None
    return None


def configure(threads: int | str | None = None, sysimage: str | None = None) -> None:
    """Set options of the Julia process; call before the first use of the Julia backend.

    Args:
        threads: Julia threads for the multithreaded kernels: a positive int or ``"auto"``
            (one per CPU core, the default).
        sysimage: a Julia system image (built with PackageCompiler) that contains the
            compiled packages, so the first call does not pay their compilation.

    Raises:
        PDEForgeError: if Julia has already started, or on an invalid value.
    """
    if "juliacall" in sys.modules:
        raise PDEForgeError("the Julia process is already running: set threads/sysimage before its first use")
    if threads is not None:
        _settings["threads"] = _check_threads(threads, "threads")
    if sysimage is not None:
        _settings["sysimage"] = str(sysimage)


def _check_threads(value, where: str) -> str:
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise PDEForgeError(f"{where}: Julia threads must be a positive integer or 'auto', got {value!r}")
    return str(n)


def threads_setting() -> str:
    """The Julia thread count that the process will start with (``"auto"`` or a number)."""
    if "threads" in _settings:
        return str(_settings["threads"])
    env = os.environ.get(ENV_THREADS)
    if env:
        return _check_threads(env, ENV_THREADS)
    cfg = _config()
    if "threads" in cfg:
        return _check_threads(cfg["threads"], f"{config_path()} [julia] threads")
    return "auto"


def julia_threads(setting: str) -> int:
    """The number of Julia threads a thread setting (``"auto"`` or a number) starts."""
    try:
        return int(str(setting).split(",")[0])  # juliacall also takes "N,M" (default and interactive pools)
    except ValueError:
        return os.cpu_count() or 1  # "auto"


def juliacall_variables(installation: JuliaInstallation) -> dict[str, str]:
    """The juliacall/juliapkg variables pdeforge sets (those not already set by the user).

    * ``PYTHON_JULIAPKG_EXE``: the Julia found, so that juliapkg never looks further or
      downloads one (not with ``PYTHON_JULIACALL_EXE``, which bypasses juliapkg);
    * ``PYTHON_JULIACALL_THREADS``: :func:`threads_setting`;
    * ``PYTHON_JULIACALL_HANDLE_SIGNALS=yes`` only when Julia gets more than one thread:
      juliacall recommends it for threads (Julia's GC safepoints are segfaults that Python must
      not handle), "Note however that this interferes with Python's own signal handling, so for
      example Ctrl-C will not raise KeyboardInterrupt" (juliacall docs/src/juliacall.md:211-226),
      which would lose pdeforge's interrupt-with-saved-frames; one thread keeps Python's.
    """
    out: dict[str, str] = {}
    if JULIACALL_EXE not in os.environ and "PYTHON_JULIAPKG_EXE" not in os.environ:
        out["PYTHON_JULIAPKG_EXE"] = installation.executable
    threads = os.environ.get("PYTHON_JULIACALL_THREADS") or threads_setting()
    if "PYTHON_JULIACALL_THREADS" not in os.environ:
        out["PYTHON_JULIACALL_THREADS"] = threads
    if "PYTHON_JULIACALL_HANDLE_SIGNALS" not in os.environ and julia_threads(threads) > 1:
        out["PYTHON_JULIACALL_HANDLE_SIGNALS"] = "yes"
    return out


def _installed_juliacall() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("juliacall")
    except metadata.PackageNotFoundError:
        return None


def check_juliacall_version(version: str | None) -> None:
    """Refuse a juliacall older than :data:`MIN_JULIACALL` (``None``: version unknown, accepted).

    juliacall reads ``PYTHON_JULIACALL_EXE``/``PYTHON_JULIACALL_PROJECT`` from 0.9.28 on and
    starts Julia with threads from 0.9.22; an older one would ignore the Julia pdeforge found
    (and download its own) and the thread setting.

    Raises:
        JuliaUnavailable: naming the installed version and the one needed.
    """
    if version is None:
        return
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
        parts.append(int(digits))
    if tuple(parts) < MIN_JULIACALL:
        need = ".".join(map(str, MIN_JULIACALL))
        raise JuliaUnavailable(
            f"juliacall {version} is too old: pdeforge needs juliacall >= {need} (the first that reads "
            f"{JULIACALL_EXE}/{JULIACALL_PROJECT}); pip install 'juliacall>={need}'"
        )


def prepare_juliacall(installation: JuliaInstallation) -> None:
    """Check the installation and set juliacall's variables; call just before importing it.

    Raises:
        JuliaUnavailable: if the executable does not answer ``--version`` as a Julia, the Julia
            is outside ``^1.10.3`` (juliacall would otherwise download another one), juliacall's
            variables are inconsistent or name a project without pdeforge's packages, or
            juliacall is not installed.
    """
    import importlib.util

    version = julia_version(installation)
    if version is None:
        raise JuliaUnavailable(
            f"{installation.executable} (from {installation.source}) does not answer `--version` as a Julia "
            f"(`julia version X.Y.Z`, within 20 s); {HOW_TO}"
        )
    if not (MIN_VERSION <= version[:3] and version[0] < 2):
        raise JuliaUnavailable(
            f"Julia {'.'.join(map(str, version))} at {installation.executable} is outside the supported "
            f"range >= {'.'.join(map(str, MIN_VERSION))}, < 2 (juliacall's ^1.10.3); {HOW_TO}"
        )
    _check_juliacall_pair()
    bypassed = _check_juliacall_project()
    if importlib.util.find_spec("juliacall") is None:
        raise JuliaUnavailable(
            f"Julia found at {installation.executable}, but the Python package juliacall is missing: "
            "pip install 'pdeforge[julia]'"
        )
    check_juliacall_version(_installed_juliacall())
    if bypassed:  # after the checks, so that a failure stays one line
        warnings.warn(bypassed, RuntimeWarning, stacklevel=2)
    variables = juliacall_variables(installation)
    os.environ.update(variables)
    if "PYTHON_JULIACALL_HANDLE_SIGNALS" in variables:
        warnings.warn(
            f"Julia runs {julia_threads(os.environ['PYTHON_JULIACALL_THREADS'])} threads with its own signal "
            "handling (PYTHON_JULIACALL_HANDLE_SIGNALS=yes, juliacall's advice for threads): Ctrl-C will not "
            f"interrupt a run; set {ENV_THREADS}=1 to keep Ctrl-C (the run then stops with its frames saved)",
            RuntimeWarning, stacklevel=2,
        )
    sysimage = _settings.get("sysimage") or os.environ.get(ENV_SYSIMAGE) or _config().get("sysimage")
    if sysimage:
        if not Path(str(sysimage)).is_file():
            raise PDEForgeError(f"Julia system image {sysimage!r} does not exist")
        os.environ.setdefault("PYTHON_JULIACALL_SYSIMAGE", str(sysimage))

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
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pdeforge.errors import JuliaUnavailable, PDEForgeError

ENV_EXECUTABLE = "PDEFORGE_JULIA"
ENV_THREADS = "PDEFORGE_JULIA_THREADS"
ENV_SYSIMAGE = "PDEFORGE_JULIA_SYSIMAGE"
ENV_CONFIG = "PDEFORGE_CONFIG"
#: Oldest Julia the Julia environment (Project.toml, juliapkg.json) supports.
MIN_VERSION = (1, 10)

HOW_TO = (
    "install Julia >= 1.10 (https://julialang.org/downloads or juliaup) and put `julia` on PATH, "
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
            that says how to point pdeforge at one.
    """
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


def julia_available() -> bool:
    """Whether a Julia executable can be found (nothing is started)."""
    try:
        find_julia()
    except (JuliaUnavailable, PDEForgeError):
        return False
    return True


def julia_version(installation: JuliaInstallation, timeout: float = 30.0) -> tuple[int, ...] | None:
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


def prepare_juliacall(installation: JuliaInstallation) -> None:
    """Check the installation and set juliacall's variables; call just before importing it.

    Raises:
        JuliaUnavailable: if juliacall is not installed or the Julia is too old (juliacall
            would otherwise download a newer one).
    """
    import importlib.util

    if importlib.util.find_spec("juliacall") is None:
        raise JuliaUnavailable(
            f"Julia found at {installation.executable}, but the Python package juliacall is missing: "
            "pip install 'pdeforge[julia]'"
        )
    version = julia_version(installation)
    if version is not None and version[:2] < MIN_VERSION:
        raise JuliaUnavailable(
            f"Julia {'.'.join(map(str, version))} at {installation.executable} is older than "
            f"{'.'.join(map(str, MIN_VERSION))}; {HOW_TO}"
        )
    # juliapkg would look on PATH and then download; hand it the executable we found
    if "PYTHON_JULIACALL_EXE" not in os.environ:
        os.environ["PYTHON_JULIAPKG_EXE"] = installation.executable
    os.environ.setdefault("PYTHON_JULIACALL_THREADS", threads_setting())
    # several Julia threads inside Python need Julia's own signal handling (juliacall's advice)
    os.environ.setdefault("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")
    sysimage = _settings.get("sysimage") or os.environ.get(ENV_SYSIMAGE) or _config().get("sysimage")
    if sysimage:
        if not Path(str(sysimage)).is_file():
            raise PDEForgeError(f"Julia system image {sysimage!r} does not exist")
        os.environ.setdefault("PYTHON_JULIACALL_SYSIMAGE", str(sysimage))

"""On-disk cache of generated kernel modules, keyed by a content hash.

The key hashes the system's structure (equations, boundary conditions, fields, dimension;
not parameter values or grid sizes), the options that shape the code, and the source of
pdeforge's own symbolic and code-generation stages, so editing any of those invalidates the
cache by itself. The generated module is written once, atomically; Numba caches the machine
code of its kernels beside it, so a second run neither regenerates nor recompiles.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from types import ModuleType

_STAGES = ("symbolic", "discretize", "backends", "codegen")


def cache_dir() -> Path:
    """The kernel cache folder: ``$PDEFORGE_CACHE_DIR`` or ``$XDG_CACHE_HOME/pdeforge`` (``~/.cache``)."""
    env = os.environ.get("PDEFORGE_CACHE_DIR")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "pdeforge"
    path = path / "kernels"
    if path not in _MADE:  # a mkdir per kernel lookup cost ~5 ms on an overlay file system
        path.mkdir(parents=True, exist_ok=True)
        _MADE.add(path)
    return path


_MADE: set[Path] = set()


@lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """Hash of the pdeforge sources that shape generated code."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for stage in _STAGES:
        for path in sorted((root / stage).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(*parts: object) -> str:
    """Content hash of ``parts`` plus the source fingerprint and tool versions."""
    import numpy

    h = hashlib.sha256()
    for p in (*parts, source_fingerprint(), sys.version_info[:2], numpy.__version__):
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def module_path(key: str) -> Path:
    return cache_dir() / f"pdeforge_kernel_{key[:32]}.py"


def load(key: str) -> ModuleType | None:
    """The cached module for ``key``, or None if it was never generated."""
    path = module_path(key)
    if not path.exists():
        return None
    return _import(path)


def store(key: str, source: str) -> ModuleType:
    """Write ``source`` for ``key`` (atomically) and import it."""
    path = module_path(key)
    compile(source, str(path), "exec")  # a generator bug must not poison the cache
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)  # the folder may have been removed since it was made
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    return _import(path)


def _import(path: Path) -> ModuleType:
    name = path.stem
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module

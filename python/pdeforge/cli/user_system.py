"""A user's own system as a command-line model: ``pdeforge run my_system.toml`` or ``my_system.py``.

A TOML file states the system as data (equations stay strings, read by the same safe parser as
in Python: nothing in it is evaluated)::

    name = "keller-segel"
    domain = [[0, 10], [0, 10]]
    bcs = "neumann"

    [equations]
    u = "Du*laplace(u) - chi*div(u*grad(c))"
    c = "laplace(c) + u - c"

    [params]
    Du = 0.1
    chi = 5.0

    [ic]
    u = "1 + 0.5*exp(-((x-5)**2 + (y-5)**2))"
    c = 0

    [run]            # defaults of `pdeforge run`; the command-line options override them
    grid = 64        # or [64, 64]
    t_end = 5
    method = "rk4"

A Python file is run as a script and must define ``system`` (a :class:`~pdeforge.PDESystem`);
it may define the same defaults as variables (``grid``, ``t_end``, ``method``, ``dt``,
``save_every``) and ``ic`` (a dict like the ``ic`` of :func:`pdeforge.solve`).
Either way the result is a :class:`~pdeforge.models.base.Model`, so every option of a catalogue
model works.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from pdeforge.errors import PDEForgeError, SystemDefinitionError

#: the file suffixes ``pdeforge run`` reads as a user's system
SYSTEM_SUFFIXES = (".toml", ".py")
#: keys of the TOML file's top level and of its [run] table
SYSTEM_KEYS = ("name", "equations", "params", "domain", "bcs", "ic", "geometry", "scalars", "noise", "run")
RUN_KEYS = ("grid", "t_end", "method", "dt", "save_every", "scheme")


def is_system_file(name: str) -> bool:
    """Whether ``pdeforge run NAME`` names a file (by its suffix) rather than a catalogue model."""
    return Path(name).suffix.lower() in SYSTEM_SUFFIXES


def resolve_model(name: str):
    """A catalogue model by name, or the model of a system file (``.toml``, ``.py``)."""
    if is_system_file(name):
        return load_model(name)
    from pdeforge.models import get_model

    return get_model(name)


def load_model(path: str | os.PathLike):
    """The :class:`~pdeforge.models.base.Model` of a ``.toml`` or ``.py`` system file."""
    p = Path(path)
    if not p.is_file():
        raise PDEForgeError(f"system file {str(p)!r} does not exist")
    if p.suffix.lower() == ".toml":
        spec = _read_toml(p)
        system, run = _system_from_toml(spec, p), spec.get("run", {})
    else:
        system, run = _system_from_python(p)
    return _model(system, run, p)


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise PDEForgeError("reading a .toml system on Python 3.10 needs tomli (pip install tomli)") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PDEForgeError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise PDEForgeError(f"{path}: not a text file") from None


def _tuples(value):
    """TOML arrays as tuples: ``bcs`` reads a (low, high) pair or ``(alpha, beta, g)`` as a tuple."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _domain(value, path: Path):
    """``[[0, 1], [0, 2]]`` or a table ``{x = [0, 1], y = [0, 2]}`` -> list of pairs."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if not isinstance(value, list) or not value:
        raise PDEForgeError(f"{path}: domain must be a list of [low, high] pairs, e.g. domain = [[0, 1], [0, 1]]")
    return [tuple(v) if isinstance(v, list) else v for v in value]


def _system_from_toml(spec: dict, path: Path):
    from pdeforge.symbolic.system import PDESystem

    unknown = [k for k in spec if k not in SYSTEM_KEYS]
    if unknown:
        raise PDEForgeError(f"{path}: unknown key {unknown[0]!r} (keys: {', '.join(SYSTEM_KEYS)})")
    if "equations" not in spec or not isinstance(spec["equations"], Mapping):
        raise PDEForgeError(f"{path}: no [equations] table (field = \"right-hand side\")")
    if "domain" not in spec:
        raise PDEForgeError(f"{path}: no domain (e.g. domain = [[0, 1], [0, 1]])")
    run = spec.get("run", {})
    if not isinstance(run, Mapping):
        raise PDEForgeError(f"{path}: run must be a table ([run] with {', '.join(RUN_KEYS)})")
    bad = [k for k in run if k not in RUN_KEYS]
    if bad:
        raise PDEForgeError(f"{path}: unknown key {bad[0]!r} in [run] (keys: {', '.join(RUN_KEYS)})")
    return PDESystem(
        {str(k): v for k, v in spec["equations"].items()},
        params=spec.get("params"),
        domain=_domain(spec["domain"], path),
        bcs=_tuples(spec.get("bcs", "periodic")),
        ic=spec.get("ic"),
        name=spec.get("name") or path.stem,
        noise=spec.get("noise"),
        geometry=spec.get("geometry", "cartesian"),
        scalars=tuple(spec.get("scalars", ())),
    )


def _system_from_python(path: Path):
    """Run the user's script (their own code, as ``python my_system.py`` would) and take its ``system``."""
    import runpy

    from pdeforge.symbolic.system import PDESystem

    try:
        namespace = runpy.run_path(str(path), run_name="__pdeforge_system__")
    except PDEForgeError:
        raise
    except SyntaxError as exc:
        raise PDEForgeError(f"{path}: line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # the user's script failed: say where, in one line
        raise PDEForgeError(f"{path}: the script raised {type(exc).__name__}: {exc}") from None
    system = namespace.get("system")
    if not isinstance(system, PDESystem):
        raise PDEForgeError(f"{path}: define a variable 'system' holding a pdeforge.PDESystem")
    run = {k: namespace[k] for k in RUN_KEYS if k in namespace}
    if "ic" in namespace:
        system = _with_ic(system, namespace["ic"])
    return system, run


def _with_ic(system, ic):
    new = object.__new__(type(system))
    new.__dict__.update(system.__dict__)
    new.ic = dict(ic)
    return new


def _model(system, run: Mapping, path: Path):
    from pdeforge.models.base import Model
    from pdeforge.symbolic.display import boundary_lines

    grid = run.get("grid", 64)
    grid = tuple(grid) if isinstance(grid, (list, tuple)) else (int(grid),) * system.dim
    t_end = run.get("t_end")
    if t_end is not None and not (isinstance(t_end, (int, float)) and t_end > 0 and math.isfinite(t_end)):
        raise PDEForgeError(f"{path}: t_end must be a positive number, got {t_end!r}")
    ic = system.ic

    def initial(grid, params, rng):
        if ic is None:
            raise SystemDefinitionError(f"{path}: no initial condition: give an [ic] table (TOML) or ic = {{...}}")
        return dict(ic)

    return Model(
        name=system.name,
        title=f"user system from {path.name}",
        equations=dict(system.equation_text),
        params=dict(system.params),
        domain=system.domain,
        bcs="; ".join(boundary_lines(system)),
        grid=grid,
        t_end=float(t_end) if t_end is not None else 1.0,
        method=run.get("method") or ("euler" if system.noise else "rk4"),
        dt=run.get("dt"),
        initial=initial,
        save_every=run.get("save_every"),
        builder=lambda values: system.with_params(**values),
        scheme=run.get("scheme", "fd"),
        geometry=system.geometry.name,
    )

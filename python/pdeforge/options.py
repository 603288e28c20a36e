"""Option objects: settings that live with what they configure.

A method carries its step or tolerances (``RK4(dt=0.01)``, ``BDF(rtol=1e-8)``), a backend its
device and precision (``Torch(device="cuda")``), the output where and how often it writes
(``Output("run.nc", save_every=0.5)``), a discretization its order and scheme
(``FiniteDifference(order=4)``). Each is a small immutable object whose settings are keyword
arguments with defaults; a setting that the object does not read is refused with a message
naming where it belongs. Like :mod:`pdeforge.errors`, this module may be used by every stage.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

from pdeforge.errors import SolverError

#: setting -> where it belongs, for the message when it is given to something that does not read it
BELONGS = {
    "dt": "the method, e.g. method=pf.RK4(dt=...)",
    "dt_max": "the method, e.g. method=pf.RK4(dt_max=...)",
    "stability": "an explicit fixed-step method, e.g. method=pf.RK4(stability='error')",
    "rtol": "an error-controlled method: pf.RK45(rtol=...), pf.BDF(rtol=...), pf.ScipyBDF, pf.Rosenbrock23",
    "atol": "an error-controlled method: pf.RK45(atol=...), pf.BDF(atol=...), pf.ScipyBDF, pf.Rosenbrock23",
    "linear_solver": "an implicit method: pf.BDF(linear_solver=...) or pf.Rosenbrock23(linear_solver=...)",
    "preconditioner": "the method pf.BDF(preconditioner=...)",
    "device": "the backend pf.Torch(device=...)",
    "compile": "the backend pf.Torch(compile=...)",
    "torch_compile": "the backend pf.Torch(compile=...)",
    "closures": "the backend: pf.Torch(closures=...) or pf.Numba(closures=...) (dense networks)",
    "dtype": "the backend, e.g. backend=pf.Numba(dtype='float32') or pf.Torch(dtype=...)",
    "workers": "the backend pf.NumPy(workers=...) (FFT threads of the spectral discretization)",
    "simplifier": "the backend, e.g. backend=pf.Numba(simplifier='julia')",
    "order": "the discretization pf.FiniteDifference(order=...)",
    "scheme": "the discretization pf.FiniteDifference(scheme=...)",
    "diagnostics": "the discretization pf.Spectral(diagnostics=...)",
    "decomposition": "the discretization pf.FiniteDifference(decomposition=...) (a run on several MPI ranks)",
    "comm": "the discretization pf.FiniteDifference(comm=...) (a run on several MPI ranks)",
    "save_every": "the output, e.g. output=pf.Output('run.nc', save_every=...)",
    "out": "the output: output='run.nc' or output=pf.Output('run.nc', ...)",
    "path": "the output: output=pf.Output(path, ...)",
    "resume": "the output pf.Output(path, resume=True)",
    "in_memory": "the output pf.Output(path, in_memory=False)",
    "variable_attrs": "the output pf.Output(variable_attrs=...)",
    "seed": "pf.solve(..., seed=...)",
    "params": "pf.solve(..., params=...)",
    "constants": "pf.solve(..., constants=...)",
}


class OptionError(SolverError, TypeError):
    """A setting given to an option object that does not read it, or a bad value."""


class Options:
    """Base of the option objects: named settings with defaults, immutable, comparable.

    A subclass lists its settings in ``SETTINGS`` (name -> default); ``kind`` names what the
    object is for messages ("method", "backend", ...).
    """

    SETTINGS: ClassVar[dict[str, object]] = {}
    kind: ClassVar[str] = "option"
    name: ClassVar[str] = ""

    def __init__(self, **settings):
        unknown = [k for k in settings if k not in self.SETTINGS]
        if unknown:
            key = unknown[0]
            where = BELONGS.get(key)
            valid = ", ".join(self.SETTINGS) or "none"
            raise OptionError(
                f"{type(self).__name__}: takes no setting {key!r}"
                + (f"; it belongs to {where}" if where else "")
                + f" (settings of {type(self).__name__}: {valid})"
            )
        values = dict(self.SETTINGS)
        values.update(settings)
        object.__setattr__(self, "_values", values)
        self.check()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        params = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in cls.SETTINGS.items()]
        cls.__signature__ = inspect.Signature(params)

    def check(self) -> None:
        """Check the values (subclasses raise :class:`OptionError` naming the bad one)."""

    def __getattr__(self, key: str):
        values = self.__dict__.get("_values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"{type(self).__name__} has no setting {key!r}")

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is immutable: use .replace({key}=...)")

    def settings(self) -> dict[str, object]:
        """Every setting with its value."""
        return dict(self._values)

    def replace(self, **changes) -> Options:
        """A copy with ``changes`` applied."""
        return type(self)(**{**self._values, **changes})

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._values == self._values

    def __hash__(self) -> int:
        return hash((type(self), tuple((k, repr(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._values.items() if v != self.SETTINGS[k])
        return f"{type(self).__name__}({shown})"


def check_choice(owner: Options, key: str, valid) -> None:
    """Raise :class:`OptionError` unless setting ``key`` of ``owner`` is one of ``valid``."""
    value = getattr(owner, key)
    if value not in valid:
        raise OptionError(f"{type(owner).__name__}: {key} {value!r} is not valid "
                          f"(valid: {', '.join(repr(v) for v in valid)})")


def check_positive(owner: Options, *keys: str) -> None:
    """Raise :class:`OptionError` unless each setting in ``keys`` is None or a positive finite number."""
    import math

    for key in keys:
        value = getattr(owner, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
            raise OptionError(f"{type(owner).__name__}: {key} must be a positive number, got {value!r}")


def option_of(value, base: type[Options], named: dict[str, type[Options]], what: str, example: str) -> Options | str:
    """``value`` as an option object of ``base``: the object itself, its class (default settings)
    or a name in ``named``; a name not in ``named`` is returned for the caller to look up
    elsewhere. Anything else is refused naming ``what`` and an ``example`` of a valid value."""
    if isinstance(value, base):
        return value
    if isinstance(value, type) and issubclass(value, base):
        return value()
    if not isinstance(value, str):
        raise OptionError(f"{what}: expected a name or an object such as {example}, got {type(value).__name__}")
    return named[value]() if value in named else value

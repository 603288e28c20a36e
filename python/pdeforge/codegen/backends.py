"""Backends: the code target of a run and its own settings (precision, device, threads).

``backend="numba"`` is shorthand for ``Numba()``. Targets that plugins register
(:data:`pdeforge.codegen.build.TARGETS`, the Julia one) are reached by name, or through
:class:`Julia`.
"""

from __future__ import annotations

from typing import ClassVar

from pdeforge.errors import SolverError
from pdeforge.options import Options, check_choice, check_positive, option_of

SIMPLIFIERS = ("sympy", "julia", "none")


class Backend(Options):
    """A code target and its settings (``target``: the name the code generator knows)."""

    kind = "backend"
    target: ClassVar[str] = ""
    DTYPES: ClassVar[tuple[str, ...]] = ("float64", "float32")
    SETTINGS: ClassVar[dict[str, object]] = {"dtype": "float64", "simplifier": "sympy"}

    def check(self) -> None:
        if "dtype" in self.SETTINGS:
            check_choice(self, "dtype", self.DTYPES)
        check_choice(self, "simplifier", SIMPLIFIERS)

    @property
    def name(self) -> str:  # noqa: D401 - the name recorded in the Dataset
        """The target's name, as recorded in the Dataset's ``backend`` attribute."""
        return self.target


class Numba(Backend):
    """Numba-compiled kernels and step loops (the default for finite differences).

    Settings:
        dtype: "float64" (default) or "float32" (fixed-step methods; the Dataset holds float64 copies).
        closures: closure name -> a dense network (:mod:`pdeforge.codegen.dense_network`) compiled
            into the kernels, for the closure terms of a :class:`~pdeforge.ClosureSystem`.
        simplifier: "sympy" (default), "julia" (Symbolics.jl) or "none".
    """

    target = "numba"
    SETTINGS = {"dtype": "float64", "closures": None, "simplifier": "sympy"}


class NumPy(Backend):
    """NumPy kernels (the default of the spectral discretization).

    Settings:
        dtype: "float64" (default) or "float32" (spectral).
        workers: threads of ``scipy.fft`` for the spectral discretization (None: chosen by size).
        simplifier: "sympy" (default), "julia" or "none".
    """

    target = "numpy"
    SETTINGS = {"dtype": "float64", "workers": None, "simplifier": "sympy"}

    def check(self) -> None:
        super().check()
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise SolverError(f"NumPy: workers must be a positive integer or None, got {self.workers!r}")


class Torch(Backend):
    """PyTorch kernels, on the CPU or a GPU.

    Settings:
        device: "cpu" (default), "cuda", "cuda:1", ... or a ``torch.device``.
        dtype: "float64" (default) or "float32"; complex systems "complex128" or "complex64".
        compile: fixed-step methods step with whole RK steps compiled by ``torch.compile``
            (True, or a mode such as "reduce-overhead").
        closures: closure name -> ``torch.nn.Module`` (or callable) for the closure terms of the
            system (:mod:`pdeforge.symbolic.closure_terms`).
        simplifier: "sympy" (default), "julia" or "none".
    """

    target = "torch"
    DTYPES = ("float64", "float32", "complex128", "complex64")
    SETTINGS = {"device": None, "dtype": "float64", "compile": False, "closures": None, "simplifier": "sympy"}


class Julia(Backend):
    """Symbolics.jl kernels through juliacall (needs a Julia installation; see the Julia guide).

    Settings:
        simplifier: "sympy" (default), "julia" or "none".
    """

    target = "julia"
    SETTINGS = {"simplifier": "sympy"}


class _Named(Backend):
    """A target a plugin registered under a name, with default settings."""

    SETTINGS = {"simplifier": "sympy"}

    def __init__(self, target: str, **settings):
        object.__setattr__(self, "_target", target)
        super().__init__(**settings)

    @property
    def name(self) -> str:
        return self._target

    target = property(lambda self: self._target)  # type: ignore[assignment]


BACKENDS: dict[str, type[Backend]] = {"numba": Numba, "numpy": NumPy, "torch": Torch, "julia": Julia}


def get_backend(backend: str | Backend | None, default: str = "numba") -> Backend:
    """The :class:`Backend` for ``backend``: a name (default settings), an object, or None (``default``)."""
    found = option_of(default if backend is None else backend, Backend, BACKENDS, "backend", "pdeforge.Numba()")
    if not isinstance(found, str):
        return found
    backend = found
    from pdeforge.codegen.build import TARGETS

    if backend in TARGETS:
        return _Named(backend)
    valid = list(dict.fromkeys([*BACKENDS, *TARGETS]))
    raise SolverError(f"backend {backend!r} is not available (valid: {', '.join(valid)})")


__all__ = ["Backend", "Numba", "NumPy", "Torch", "Julia", "get_backend", "check_positive"]

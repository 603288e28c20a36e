"""The juliacall session: one Julia process per Python process, module PDEForge loaded once.

Nothing here runs at import. :func:`session` finds Julia first
(:func:`pdeforge.julia.environment.find_julia`, no subprocess, no network) and only then
imports juliacall, so a machine without Julia gets :class:`~pdeforge.errors.JuliaUnavailable`
at once instead of a Julia download.

Arrays cross the boundary without copies: Python hands Julia the address and length of each
C-contiguous float64 NumPy buffer, and PDEForge wraps it (``unsafe_wrap``) and indexes it
with C-order strides, so Julia's column-major convention never reorders anything.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from pdeforge.errors import JuliaUnavailable, PDEForgeError
from pdeforge.julia.environment import find_julia, prepare_juliacall

ENV_SOURCE = "PDEFORGE_JULIA_SOURCE"

_lock = threading.Lock()
_session: JuliaSession | None = None


def module_source() -> Path:
    """Path of ``PDEForge.jl``: ``$PDEFORGE_JULIA_SOURCE``, else the copy shipped in the package.

    In a checkout the package's ``PDEForge.jl`` is a link to ``julia/PDEForge.jl`` at the
    repository root; a wheel holds the file itself (package data).
    """
    env = os.environ.get(ENV_SOURCE)
    candidates = [Path(env)] if env else []
    here = Path(__file__).absolute().parent
    candidates += [here / "PDEForge.jl", here.parents[2] / "julia" / "PDEForge.jl"]
    for path in candidates:
        if path.is_file():
            return path
    raise PDEForgeError(
        f"the Julia source of pdeforge (PDEForge.jl) was not found (looked at {', '.join(map(str, candidates))}); "
        f"set {ENV_SOURCE} to the julia/PDEForge.jl of a pdeforge checkout"
    )


class JuliaSession:
    """The running Julia process with module PDEForge loaded.

    Attributes:
        main: juliacall's ``Main`` module.
        module: the ``PDEForge`` module.
        executable: the Julia executable in use.
    """

    def __init__(self, main, module, executable: str):
        self.main = main
        self.module = module
        self.executable = executable
        self._kernels: dict[str, int] = {}
        self._apply = self.julia_function("apply_kernel!")

    @property
    def threads(self) -> int:
        """Number of Julia threads."""
        return int(self.main.seval("Threads.nthreads()"))

    def simplify_texts(self, fields: list[str], names: list[str], texts: list[str]) -> list[tuple[str, str]]:
        """Symbolics ``simplify`` of each stencil text: (plain, expanded) text pairs."""
        out = str(self.module.simplify_texts(" ".join(fields), " ".join(names), "\n".join(texts)))
        pairs = []
        for line in out.split("\n"):
            plain, _, expanded = line.partition("\t")
            pairs.append((plain, expanded))
        if len(pairs) != len(texts):
            raise PDEForgeError(f"Julia simplify returned {len(pairs)} expressions for {len(texts)}")
        return pairs

    def kernel(self, spec_text: str) -> int:
        """Handle of the compiled kernel for a specification (built once per process)."""
        key = hashlib.sha256(spec_text.encode()).hexdigest()
        with _lock:
            if key not in self._kernels:
                self._kernels[key] = int(self.module.build_kernel(spec_text))
            return self._kernels[key]

    def apply(self, kernel_id: int, which: int, threaded: bool, S, OUT, t, p, h, coords) -> None:
        """Run kernel ``kernel_id`` (1: right-hand side, 2: Jacobian) on NumPy arrays in place."""
        S = _f64(S)
        out = OUT if (OUT.flags.c_contiguous and OUT.dtype == np.float64) else np.empty(OUT.shape)
        p = _f64(p)
        h = _f64(h)
        cs = [_f64(c) for c in coords]
        flat: list[int] = []
        for c in cs:
            flat += [c.ctypes.data, c.size]
        self._apply(
            int(kernel_id), int(which), bool(threaded), S.ctypes.data, S.size, out.ctypes.data, out.size,
            float(t), p.ctypes.data, p.size, h.ctypes.data, h.size, tuple(int(n) for n in OUT.shape[1:]), tuple(flat),
        )
        if out is not OUT:
            OUT[...] = out

    def julia_function(self, name: str):
        """A function of module PDEForge by its Julia name (names with ``!`` included)."""
        return self.main.seval(f"PDEForge.{name}")


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def session() -> JuliaSession:
    """The Julia session, started on first use (a few seconds, more the first time packages compile).

    Raises:
        JuliaUnavailable: if no Julia installation can be found (nothing is downloaded).
    """
    global _session
    if _session is not None:
        return _session
    with _lock:
        if _session is None:
            installation = find_julia()
            source = module_source()
            prepare_juliacall(installation)
            try:
                import juliacall
            except Exception as exc:  # juliacall raises a bare Exception for bad settings
                message = " ".join(str(exc).split()) or type(exc).__name__
                raise JuliaUnavailable(f"juliacall could not start Julia {installation.executable}: {message}") from None
            main = juliacall.Main
            # include() of pdeforge's own source file (a path, not user text)
            main.seval("p -> Base.include(Main, p)")(str(source))
            module = main.seval("PDEForge")
            _session = JuliaSession(main, module, installation.executable)
    return _session


def started() -> bool:
    """Whether the Julia session is running in this process."""
    return _session is not None

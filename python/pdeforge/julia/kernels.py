"""Python callables for Julia kernels, in the calling convention of every pdeforge target.

``KERNELS[(kind, parallel)](S, OUT, t, p, h, *coords)`` with ``S`` the padded state and
``OUT`` the output per cell, as :class:`~pdeforge.codegen.kernel.BoundKernel` calls them. The
Julia session starts, and the kernel is compiled, on the first call, so importing a cached
kernel module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable


class JuliaKernel:
    """One kernel kind (right-hand side or Jacobian entries) of a Julia kernel specification.

    Args:
        spec_text: the specification written by :func:`pdeforge.julia.target.julia_spec`.
        which: 1 for the right-hand side, 2 for the Jacobian entries.
        threaded: loop over the first axis with ``Threads.@threads`` (if Julia has threads).
    """

    def __init__(self, spec_text: str, which: int, threaded: bool):
        self.spec_text = spec_text
        self.which = which
        self.threaded = threaded
        self._id: int | None = None

    def __call__(self, S, OUT, t, p, h, *coords) -> None:
        from pdeforge.julia.bridge import session

        s = session()
        if self._id is None:
            self._id = s.kernel(self.spec_text)
        s.apply(self._id, self.which, self.threaded, S, OUT, t, p, h, coords)


def julia_kernels(spec_text: str) -> dict[tuple[str, bool], Callable]:
    """The ``KERNELS`` table of a generated Julia kernel module."""
    return {
        (kind, threaded): JuliaKernel(spec_text, which, threaded)
        for kind, which in (("rhs", 1), ("jac", 2))
        for threaded in (True, False)
    }

"""Exceptions and warnings that pdeforge raises.

Every error derives from :class:`PDEForgeError` (itself a ``ValueError``), so callers can catch
one type; the command line turns each of them into one line on stderr and exit status 2.
"""

from __future__ import annotations


class PDEForgeError(ValueError):
    """Base class of every user-facing pdeforge error."""


class EquationParseError(PDEForgeError):
    """An equation or expression string uses syntax or names outside the allow-list."""


class SystemDefinitionError(PDEForgeError):
    """A PDE system is inconsistent: missing equations, parameters without values, bad domain."""


class BoundaryConditionError(PDEForgeError):
    """A boundary-condition specification cannot be understood or does not fit the system."""


class GridError(PDEForgeError):
    """A grid does not fit the domain (dimension mismatch, too few points)."""


class InitialConditionError(PDEForgeError):
    """An initial condition is missing, has the wrong shape or is not finite."""


class SolverError(PDEForgeError):
    """A solver option is invalid (method, backend, dt, time span)."""


class NotConservativeError(PDEForgeError):
    """A system is not in divergence (conservation) form where one is required."""


class JuliaUnavailable(PDEForgeError, RuntimeError):
    """No Julia installation could be found for the Julia backend."""


class StabilityWarning(UserWarning):
    """The requested explicit time step exceeds the estimated stability limit."""


class BlowUpWarning(RuntimeWarning):
    """The solution became non-finite; the run stopped with the last good state kept."""


class RunInterrupted(KeyboardInterrupt):
    """A run was interrupted (Ctrl-C or SIGTERM); ``dataset`` holds every frame computed so far.

    ``signum`` is the signal that stopped it (2 SIGINT, 15 SIGTERM) and ``out`` the file that
    ``resume=True`` continues (None without one).
    """

    def __init__(self, message: str, dataset=None, signum: int = 2, out=None):
        super().__init__(message)
        self.dataset = dataset
        self.signum = signum
        self.out = out


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue a warning at the user's line: the first frame outside the pdeforge package.

    A warning that points into pdeforge's own sources tells a user nothing about which of
    their calls caused it, and Python's default filter shows each location once, so a
    warning from a loop over runs would hide behind the first one.

    Args:
        message: the warning text.
        category: the warning class (e.g. :class:`StabilityWarning`).
    """
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, stacklevel=2, skip_file_prefixes=(package,))
        return
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)

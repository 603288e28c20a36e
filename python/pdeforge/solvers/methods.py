"""The time integrators: one registered class each, carrying its own settings.

A method is a small object: its class says what it is (name, kind, order, stability region,
the discretizations it serves, its Butcher tableau where it is a Runge-Kutta method) and its
instance carries the settings a user chooses (``RK4(dt=0.01)``, ``BDF(rtol=1e-8,
preconditioner="amg")``). ``method="rk4"`` is shorthand for ``RK4()``. Adding a method is one
class here, registered with :func:`register`, plus its tableau (:mod:`pdeforge.tableaus`) or
stepping rule.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pdeforge.errors import SolverError
from pdeforge.options import OptionError, Options, check_choice, check_positive, option_of
from pdeforge.tableaus import TABLEAUS, Tableau

#: name -> method class, in the order help texts list them
METHODS: dict[str, type[Method]] = {}

STABILITY_POLICIES = ("warn", "error", "ignore")
LINEAR_SOLVERS = ("auto", "gmres", "bicgstab", "tfqmr", "sparse", "dense", "lu")
PRECONDITIONERS = ("auto", "split", "lu", "ilu", "amg", "none")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available by its ``name`` (``method="name"``)."""
    METHODS[cls.name] = cls
    return cls


class Method(Options):
    """A time integrator and its settings.

    Class attributes:
        name: the name users pass (``method=``).
        kind: "fixed" (explicit, fixed step), "adaptive" (explicit, error-controlled),
            "implicit" (error-controlled), "imex" (implicit transport, fixed step) or
            "stochastic" (fixed step, systems with noise).
        order: order of accuracy.
        real_extent: length of the stability region along the negative real axis (explicit).
        imag_extent: half-length of the stability region along the imaginary axis (explicit).
        stiff: whether the method is meant for stiff systems (implicit or exponential).
        families: the discretizations it serves ("fd", "spectral").
        tableau: its Butcher tableau, where it is a Runge-Kutta method.
        description: one line for help texts.
    """

    kind: ClassVar[str] = "fixed"
    order: ClassVar[int] = 1
    real_extent: ClassVar[float] = 0.0
    imag_extent: ClassVar[float] = 0.0
    stiff: ClassVar[bool] = False
    families: ClassVar[tuple[str, ...]] = ("fd",)
    tableau: ClassVar[Tableau | None] = None
    description: ClassVar[str] = ""
    SETTINGS: ClassVar[dict[str, object]] = {"dt": None}

    def check(self) -> None:
        check_positive(self, *(k for k in ("dt", "dt_max", "rtol", "atol") if k in self.SETTINGS))
        if "stability" in self.SETTINGS:
            check_choice(self, "stability", STABILITY_POLICIES)

    def setting(self, key: str, default=None):
        """The value of setting ``key``, or ``default`` when this method has no such setting."""
        return self._values.get(key, default)

    @property
    def resumable(self) -> str:
        """How a run continues from its file: "bit for bit" (fixed steps) or "within tolerance"."""
        return "bit for bit" if self.kind in ("fixed", "imex", "stochastic") else "within tolerance"

    def stable_dt(self, lr: float, li: float, lf: float = 0.0, cfl: float = 1.0) -> float:
        """The largest stable step for a spectrum inside ``[-lr, 0] x [-i li, i li]`` and a flux
        CFL rate ``lf`` (limit ``cfl``): the region's extents against the spectrum's."""
        if lr <= 0 and li <= 0 and lf <= 0:
            return math.inf
        if self.imag_extent == 0.0 and li > 0:  # no imaginary axis: the disc |1 + z| <= 1
            dt = 2.0 * lr / (lr * lr + li * li) if lr > 0 else 0.0
            return min(dt, cfl / lf) if lf > 0 else dt
        imag = li / self.imag_extent if li > 0 else 0.0
        return 1.0 / (lr / self.real_extent + imag + (lf / cfl if lf > 0 else 0.0))


_FIXED = {"dt": None, "dt_max": None, "stability": "warn", "rtol": None, "atol": None}
_ADAPTIVE = {"rtol": 1e-6, "atol": 1e-9, "dt": None, "dt_max": None}


class _ExplicitFixed(Method):
    """An explicit Runge-Kutta method with a fixed step.

    Settings:
        dt: the step (default: 0.8 of the estimated stability limit, at most ``dt_max``).
        dt_max: the largest step when dt is chosen automatically.
        stability: what a given dt above the estimated limit does: "warn", "error" or "ignore".
        rtol, atol: with no dt, the step is also shortened until the local error of a step at the
            start (step doubling) is within these tolerances (None: the stability limit alone).
            ``pdeforge.solve`` with no method at all runs ``RK4(rtol=1e-6, atol=1e-9)``.
    """

    kind = "fixed"
    families = ("fd", "spectral")
    SETTINGS = dict(_FIXED)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.order = cls.tableau.order
        cls.real_extent, cls.imag_extent = cls.tableau.stability_extents()


@register
class Euler(_ExplicitFixed):
    """Forward Euler (``method="euler"``); settings as :class:`_ExplicitFixed`."""

    name = "euler"
    tableau = TABLEAUS["euler"]
    description = "forward Euler"


@register
class SSPRK3(_ExplicitFixed):
    """Strong-stability-preserving RK3 of Shu and Osher (``method="ssprk3"``); settings as
    :class:`_ExplicitFixed`."""

    name = "ssprk3"
    tableau = TABLEAUS["ssprk3"]
    description = "strong-stability-preserving RK3 (Shu-Osher)"


@register
class RK4(_ExplicitFixed):
    """The classic fourth-order Runge-Kutta method (``method="rk4"``); settings as
    :class:`_ExplicitFixed`."""

    name = "rk4"
    tableau = TABLEAUS["rk4"]
    description = "classic fourth-order Runge-Kutta"


@register
class RK45(Method):
    """Dormand-Prince 5(4) with error control (``method="rk45"``).

    Settings:
        rtol, atol: relative and absolute tolerances of the local error.
        dt: the first step (default: chosen from the tolerances).
        dt_max: the largest step.
    """

    name = "rk45"
    kind = "adaptive"
    order = 5
    tableau = TABLEAUS["dopri5"]
    real_extent, imag_extent = 3.3066, 3.3
    description = "Dormand-Prince 5(4) with error control"
    SETTINGS = dict(_ADAPTIVE)


@register
class BDF(Method):
    """Variable-order BDF (SUNDIALS CVODE), Newton-Krylov with a preconditioner from the exact
    sparse Jacobian (``method="bdf"``).

    Settings:
        rtol, atol: tolerances.
        linear_solver: "auto" (GMRES), "gmres", "bicgstab", "tfqmr", "sparse" (SuperLU_MT on the
            exact Jacobian) or "dense".
        preconditioner: of the Krylov solvers: "auto" (the split reaction x transport one), "split",
            "lu", "ilu", "amg" or "none".
        dt: the first step.
    """

    name = "bdf"
    kind = "implicit"
    order = 5
    stiff = True
    description = ("variable-order BDF (SUNDIALS CVODE), Newton-Krylov with a preconditioner from the exact "
                   "sparse Jacobian")
    SETTINGS = {"rtol": 1e-6, "atol": 1e-9, "linear_solver": "auto", "preconditioner": "auto", "dt": None}

    def check(self) -> None:
        super().check()
        check_choice(self, "linear_solver", ("auto", "gmres", "bicgstab", "tfqmr", "sparse", "dense"))
        check_choice(self, "preconditioner", PRECONDITIONERS)


#: the name SUNDIALS gives the integrator behind ``BDF``
CVODE = BDF


@register
class Rosenbrock23(Method):
    """Rosenbrock 2(3) (ode23s), L-stable, for moderate tolerances (``method="rosenbrock23"``).

    Settings:
        rtol, atol: tolerances.
        linear_solver: "auto", "lu" or "gmres".
        dt: the first step; dt_max: the largest step.
    """

    name = "rosenbrock23"
    kind = "implicit"
    order = 2
    stiff = True
    description = "Rosenbrock 2(3) (ode23s), L-stable, for moderate tolerances"
    SETTINGS = {"rtol": 1e-6, "atol": 1e-9, "linear_solver": "auto", "dt": None, "dt_max": None}

    def check(self) -> None:
        super().check()
        check_choice(self, "linear_solver", ("auto", "lu", "gmres"))


@register
class IMEX(Method):
    """SBDF2: implicit transport (constant, factorised once), explicit reactions (``method="imex"``).

    Settings:
        dt: the step (default: from the reactions' stability limit); dt_max: the largest step.
    """

    name = "imex"
    kind = "imex"
    order = 2
    stiff = True
    description = "SBDF2: implicit transport (constant, factorised once), explicit reactions"
    SETTINGS = {"dt": None, "dt_max": None}


@register
class ScipyBDF(Method):
    """Variable-order BDF (SciPy) with the exact sparse Jacobian (``method="scipy-bdf"``).

    Settings:
        rtol, atol: tolerances; dt: the first step.
    """

    name = "scipy-bdf"
    kind = "implicit"
    order = 5
    stiff = True
    description = "variable-order BDF (SciPy) with the exact sparse Jacobian"
    SETTINGS = {"rtol": 1e-6, "atol": 1e-9, "dt": None}


class _Stochastic(Method):
    kind = "stochastic"
    real_extent, imag_extent = 2.0, 0.0  # the drift steps like forward Euler
    tableau = TABLEAUS["euler"]
    SETTINGS = dict(_FIXED)


@register
class EulerMaruyama(_Stochastic):
    """Euler-Maruyama for systems with noise, strong order 1/2 (``method="euler-maruyama"``;
    ``"euler"`` on a system with noise means this).

    Settings: as :class:`Euler`.
    """

    name = "euler-maruyama"
    scheme = "euler"
    order = 1
    description = "Euler-Maruyama (strong order 1/2)"


@register
class Milstein(_Stochastic):
    """Milstein for diagonal noise, strong order 1 (``method="milstein"``).

    Settings: as :class:`Euler`.
    """

    name = "milstein"
    scheme = "milstein"
    order = 1
    description = "Milstein for diagonal noise (strong order 1)"


class _Exponential(Method):
    kind = "fixed"
    order = 4
    stiff = True
    families = ("spectral",)
    tableau = TABLEAUS["rk4"]  # the explicit part's stages
    real_extent, imag_extent = TABLEAUS["rk4"].stability_extents()
    SETTINGS = dict(_FIXED)


@register
class IFRK4(_Exponential):
    """Integrating-factor RK4: the stiff linear part exact (spectral; ``method="ifrk4"``).

    Settings: as :class:`RK4`; the step is limited by the explicit part alone.
    """

    name = "ifrk4"
    description = "integrating-factor RK4 (linear part exact)"


@register
class ETDRK4(_Exponential):
    """Exponential time differencing RK4 (Cox-Matthews; spectral; ``method="etdrk4"``).

    Settings:
        dt: a fixed step, used exactly. None (default): the step is error-controlled by an
            embedded third-order estimate (:mod:`pdeforge.solvers.spectral.adaptive`).
        rtol, atol: tolerances of that control (None: rtol 1e-4, atol 1e-12, relative L2 of the state).
        dt_max, stability: as :class:`RK4`.
    """

    name = "etdrk4"
    description = "exponential time differencing RK4 (Cox-Matthews)"
    SETTINGS = {**_FIXED, "rtol": None, "atol": None}


@register
class CNRK4(_Exponential):
    """Low-storage RK4 (Carpenter-Kennedy) with Crank-Nicolson for the linear part, as JAX-CFD
    (spectral; ``method="cnrk4"``).

    Settings: as :class:`RK4`.
    """

    name = "cnrk4"
    order = 2
    description = "Carpenter-Kennedy RK4 with Crank-Nicolson linear part (second order)"


def default_method() -> Method:
    """The method of a run that names none: RK4 with its step chosen for accuracy (local error
    within rtol 1e-6, atol 1e-9) as well as stability."""
    return RK4(rtol=1e-6, atol=1e-9)


def get_method(method: str | Method) -> Method:
    """The :class:`Method` for ``method``: a name (its default settings) or a method object."""
    found = option_of(method, Method, METHODS, "method", "pdeforge.RK4(dt=...)")
    if isinstance(found, str):
        raise SolverError(f"method {method!r} is unknown (valid: {', '.join(METHODS)})")
    return found


def with_dt(method: Method, dt: float | None) -> Method:
    """``method`` with the step ``dt`` (the shorthand ``solve(..., dt=...)``); an error if the method
    object already has another one."""
    if dt is None:
        return method
    if "dt" not in method.SETTINGS:
        raise OptionError(f"dt: {type(method).__name__} takes no step")
    if method.dt is not None and method.dt != dt:
        raise OptionError(f"dt: given twice, {dt!r} to solve() and {method.dt!r} to {type(method).__name__}; give one")
    return method.replace(dt=dt)


def method_names(family: str | None = None) -> list[str]:
    """The registered names, those serving ``family`` ("fd", "spectral") when given."""
    return [n for n, c in METHODS.items() if family is None or family in c.families]


def with_settings(method: str | Method, **settings) -> Method:
    """``method`` with those of ``settings`` that it reads, the others left out: one set of
    settings for a comparison across methods (``[with_settings(m, rtol=1e-8) for m in ("rk4", "bdf")]``).
    A setting no registered method reads is still an error."""
    m = get_method(method)
    known = {k for cls in METHODS.values() for k in cls.SETTINGS}
    unknown = [k for k in settings if k not in known]
    if unknown:
        m.replace(**{unknown[0]: settings[unknown[0]]})  # raises, naming where it belongs
    return m.replace(**{k: v for k, v in settings.items() if k in m.SETTINGS})

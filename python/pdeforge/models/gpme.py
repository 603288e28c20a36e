"""The ProbConserv benchmark family: generalized porous medium equation, advection, Burgers.

Hansen, Maddix, Alizadeh, Gupta, Wang, Mahoney, "Learning Physical Models that Can Respect
Conservation Laws", ICML 2023 (reference code amazon-science/probconserv). Every model
here is a scalar conservation law ``u_t + div F(u, grad u) = 0`` in one dimension with an
exact solution (:attr:`Model.exact`) and an exact total mass ``U(t) = integral of u dx``
(:attr:`Model.mass`, :meth:`Model.exact_mass`):

======================  ===========================  ======================================
model                   equation                     difficulty
======================  ===========================  ======================================
``heat``                u_t = k u_xx                 smooth, periodic (in ``diffusion.py``)
``porous-medium``       u_t = (u^m u_x)_x            degenerate: k = 0 where u = 0, a front
``stefan``              u_t = (k(u) u_x)_x           k jumps from 0 to 1 at p_star: a jump
``advection``           u_t + a u_x = 0              hyperbolic, a moving discontinuity
``burgers``             u_t + (u^2/2)_x = 0          hyperbolic, a compression wave -> shock
======================  ===========================  ======================================

Parameters keep the names of the literature: ``k`` (diffusivity), ``m`` (porous-medium
exponent), ``p_star`` (Stefan threshold), ``a`` (speed, or Burgers' left state). The exact
solutions take any points: ``get_model("stefan").exact_solution(t, np.linspace(0, 1, 101))``.

The diffusive models default to the implicit ``bdf`` method (exact sparse Jacobian); the
hyperbolic ones to ``ssprk3`` with the MUSCL finite-volume scheme ``fv-upwind`` and a CFL
step (see :mod:`pdeforge.discretize.finite_volume`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf

from pdeforge.models.base import Model, dimensionless, register

# --------------------------------------------------------------------------------------------
# porous medium: u_t = (u^m u_x)_x


def _pme_ic(grid, params, rng):
    return {"u": np.zeros(grid.shape)}


def _pme_exact(t, mesh, params):
    (x,) = mesh
    m = params["m"]
    return {"u": (m * np.maximum(t - x, 0.0)) ** (1.0 / m)}


def _pme_mass(t, params):
    m = params["m"]
    # the front x = t leaves [0, 1] at t = 1; beyond it the profile is cut at x = 1
    if t <= 1.0:
        return m ** (1.0 + 1.0 / m) / (m + 1.0) * t ** (1.0 + 1.0 / m)
    return m ** (1.0 + 1.0 / m) / (m + 1.0) * (t ** (1.0 + 1.0 / m) - (t - 1.0) ** (1.0 + 1.0 / m))


register(
    Model(
        name="porous-medium",
        title="Porous medium equation with a moving front (degenerate diffusion, 1-D)",
        variable_attrs=dimensionless(u="density (pressure-free porous medium form)"),
        # max(u, 0) = u on the solution (u >= 0); it keeps u**m real for non-integer m when a
        # Newton iterate undershoots slightly below zero ahead of the front
        equations={"u": "div(max(u, 0)**m*grad(u))"},
        params={"m": 3.0},
        domain=((0.0, 1.0),),
        # the right boundary follows the exact solution, so it stays exact after the front
        # reaches x = 1 at t = 1 (before that it is u = 0)
        bcs={"x": ({"dirichlet": "(m*t)**(1/m)"}, {"dirichlet": "(m*max(t - 1, 0))**(1/m)"})},
        grid=(200,),
        t_end=1.0,
        method="bdf",
        dt=None,
        save_every=0.02,
        initial=_pme_ic,
        exact=_pme_exact,
        mass=_pme_mass,
        param_help={"m": "exponent of the diffusivity k(u) = u^m (ProbConserv samples m in [1, 6])"},
        description=(
            "u_t = div(k(u) grad u) with k(u) = u^m on [0, 1], t in [0, 1]; u(0, x) = 0, "
            "u(t, 0) = (m t)^(1/m), u(t, 1) = 0 (for t <= 1). Exact solution u = (m max(t - x, 0))^(1/m): a front "
            "at x = t behind which the diffusivity vanishes (degenerate). Total mass "
            "U(t) = m^(1 + 1/m) / (m + 1) t^(1 + 1/m). ProbConserv (Hansen et al. 2023), 'PME'."
        ),
    )
)

# --------------------------------------------------------------------------------------------
# Stefan: k(u) = 1 for u >= p_star, 0 below


@functools.lru_cache(maxsize=4096)
def stefan_constants(p_star: float) -> tuple[float, float, float]:
    """``(z1, alpha, c1)`` of the exact Stefan solution for threshold ``p_star`` in (0, 1).

    ``z1`` is the root in (0, 10) of ``p_star erf(z) z exp(z^2) - (1 - p_star)/sqrt(pi)``;
    the front sits at ``x = alpha sqrt(t)`` with ``alpha = 2 z1``, and behind it
    ``u = 1 - c1 erf(x / (2 sqrt(t)))`` with ``c1 = (1 - p_star) / erf(z1)``. Cached per
    ``p_star``: sampling thousands of solutions evaluates the same threshold at many times.
    """
    if not 0.0 < p_star < 1.0:
        raise ValueError(f"p_star must lie in (0, 1), got {p_star}")

    def g(z):
        return p_star * math.erf(z) * z * math.exp(z * z) - (1.0 - p_star) / math.sqrt(math.pi)

    z1 = brentq(g, 1e-12, 10.0, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    alpha = 2.0 * z1
    c1 = (1.0 - p_star) / math.erf(alpha / 2.0)
    return z1, alpha, c1


def stefan_front(t, p_star: float):
    """Exact front position ``alpha sqrt(t)`` of the Stefan model (array or float ``t``)."""
    _, alpha, _ = stefan_constants(p_star)
    return alpha * np.sqrt(t)


def _stefan_ic(grid, params, rng):
    return {"u": np.zeros(grid.shape)}


def _stefan_exact(t, mesh, params):
    (x,) = mesh
    _, alpha, c1 = stefan_constants(params["p_star"])
    if t <= 0.0:
        return {"u": np.where(x <= 0.0, 1.0, 0.0) + 0.0 * x}
    s = np.sqrt(t)
    u = np.where(x <= alpha * s, 1.0 - c1 * erf(x / (2.0 * s)), 0.0)
    return {"u": u}


def _stefan_mass(t, params):
    _, alpha, c1 = stefan_constants(params["p_star"])
    if alpha * math.sqrt(max(t, 0.0)) > 1.0:
        raise ValueError(f"stefan: the front has left [0, 1] by t = {t}; U(t) holds while alpha sqrt(t) <= 1")
    # inflow flux c1/sqrt(pi t) at x = 0, nothing through the front (k = 0 ahead of it)
    return 2.0 * c1 * math.sqrt(max(t, 0.0) / math.pi)


register(
    Model(
        name="stefan",
        title="Stefan problem: diffusivity that jumps from 0 to 1 at u = p_star (1-D)",
        variable_attrs=dimensionless(u="temperature"),
        equations={"u": "div(Piecewise((1, u >= p_star), (0, True))*grad(u))"},
        params={"p_star": 0.6},
        domain=((0.0, 1.0),),
        bcs={"x": ({"dirichlet": 1}, "dirichlet")},
        grid=(200,),
        t_end=0.1,
        method="bdf",
        dt=None,
        save_every=0.002,
        initial=_stefan_ic,
        exact=_stefan_exact,
        mass=_stefan_mass,
        param_help={"p_star": "threshold where k(u) jumps from 0 to 1 (ProbConserv: 0.55 to 0.7)"},
        description=(
            "u_t = div(k(u) grad u), k(u) = 1 for u >= p_star and 0 below, on [0, 1], t in [0, 0.1]; "
            "u(0, x) = 0, u(t, 0) = 1. Exact: z1 the root in (0, 10) of p_star erf(z) z exp(z^2) = "
            "(1 - p_star)/sqrt(pi), alpha = 2 z1, c1 = (1 - p_star)/erf(alpha/2); "
            "u = 1 - c1 erf(x/(2 sqrt t)) for x <= alpha sqrt t, else 0. The solution jumps from "
            "p_star to 0 at the front alpha sqrt t. U(t) = 2 c1 sqrt(t/pi). ProbConserv (Hansen et al. 2023)."
        ),
        notes=(
            "The Jacobian of the piecewise diffusivity is taken piecewise: d k/du = 0 on both sides "
            "of the jump (the Dirac delta at u = p_star is dropped), so Newton sees the face "
            "diffusivities as frozen; the right-hand side itself jumps when a face value crosses p_star."
        ),
    )
)

# --------------------------------------------------------------------------------------------
# linear advection: u_t + a u_x = 0


def _advection_ic(grid, params, rng):
    (x,) = grid.mesh()
    return {"u": np.where(x <= 0.5, 1.0, 0.0)}


def _advection_exact(t, mesh, params):
    (x,) = mesh
    return {"u": np.where(x <= 0.5 + params["a"] * t, 1.0, 0.0) + 0.0 * x}


def _advection_mass(t, params):
    return 0.5 + min(params["a"] * t, 0.5)


register(
    Model(
        name="advection",
        title="Linear advection of a step (hyperbolic, 1-D)",
        variable_attrs=dimensionless(u="advected quantity"),
        equations={"u": "-a*d(u, x)"},
        params={"a": 1.0},
        domain=((0.0, 1.0),),
        # inflow u = 1 at x = 0; zero-gradient outflow at x = 1
        bcs={"x": ({"dirichlet": 1}, "neumann")},
        grid=(200,),
        t_end=0.4,
        method="ssprk3",
        dt=None,
        save_every=0.01,
        initial=_advection_ic,
        exact=_advection_exact,
        mass=_advection_mass,
        scheme="fv-upwind",
        param_help={"a": "advection speed (> 0: inflow at x = 0; ProbConserv: 1 to 5)"},
        description=(
            "u_t + a u_x = 0 on [0, 1], u(0, x) = 1 for x <= 0.5 else 0, inflow u = 1 at x = 0, "
            "outflow at x = 1. Exact u = 1 for x <= 0.5 + a t, else 0; U(t) = 0.5 + min(a t, 0.5). "
            "ProbConserv (Hansen et al. 2023). Default scheme: MUSCL finite volumes with the upwind "
            "flux and a minmod limiter, SSPRK3 at CFL 0.4."
        ),
    )
)

# --------------------------------------------------------------------------------------------
# inviscid Burgers: u_t + (u^2/2)_x = 0


def _burgers_ic(grid, params, rng):
    (x,) = grid.mesh()
    a = params["a"]
    return {"u": np.where(x <= -1.0, a, np.where(x <= 0.0, -a * x, 0.0))}


def _burgers_exact(t, mesh, params):
    (x,) = mesh
    a = params["a"]
    x = np.asarray(x, dtype=float)
    if a * t < 1.0:
        # compression wave: characteristics from [-1, 0] meet at x = 0 when t = 1/a
        tip = a * t - 1.0
        ramp = a * x / tip
        return {"u": np.where(x <= tip, a, np.where(x <= 0.0, ramp, 0.0))}
    # shock of speed a/2 from (t, x) = (1/a, 0)
    return {"u": np.where(x <= (a * t - 1.0) / 2.0, a, 0.0) + 0.0 * x}


def _burgers_mass(t, params):
    a = params["a"]
    # inflow flux a^2/2 at x = -1 until the shock leaves at x = 1 (t = 3/a); then in = out
    return min(0.5 * a * (1.0 + a * t), 2.0 * a)


register(
    Model(
        name="burgers",
        title="Inviscid Burgers: a compression wave that steepens into a shock (1-D)",
        variable_attrs=dimensionless(u="velocity"),
        equations={"u": "-d(u**2/2, x)"},
        params={"a": 1.0},
        domain=((-1.0, 1.0),),
        bcs={"x": ({"dirichlet": "a"}, "neumann")},
        grid=(200,),
        t_end=1.5,
        method="ssprk3",
        dt=None,
        save_every=0.03,
        initial=_burgers_ic,
        exact=_burgers_exact,
        mass=_burgers_mass,
        scheme="fv-upwind",
        param_help={"a": "left state (> 0; ProbConserv: 1 to 4)"},
        description=(
            "u_t + (u^2/2)_x = 0 on [-1, 1], inflow u = a at x = -1, outflow at x = 1, "
            "u(0, x) = a for x <= -1, -a x on [-1, 0], 0 after. Exact: for t <= 1/a, u = a for "
            "x <= a t - 1, a x/(a t - 1) for a t - 1 < x <= 0, 0 otherwise; after t = 1/a a shock "
            "u = a for x <= (a t - 1)/2. U(t) = (a/2)(1 + a t) while the shock is inside. "
            "ProbConserv (Hansen et al. 2023). Default scheme: MUSCL finite volumes with the "
            "Godunov flux and a minmod limiter, SSPRK3 at CFL 0.4."
        ),
    )
)


def exact_front(model_name: str, t, params: Mapping[str, float] | None = None):
    """Exact front (or shock) position of the models with one: porous-medium, stefan, advection, burgers.

    Args:
        model_name: one of the four names.
        t: time (float or array).
        params: parameter values overriding the defaults.
    """
    from pdeforge.models.base import get_model

    values = get_model(model_name).check_params(params)
    t = np.asarray(t, dtype=float)
    if model_name == "porous-medium":
        out = t
    elif model_name == "stefan":
        out = stefan_front(t, values["p_star"])
    elif model_name == "advection":
        out = 0.5 + values["a"] * t
    elif model_name == "burgers":
        a = values["a"]
        out = np.where(a * t < 1.0, 0.0, (a * t - 1.0) / 2.0)
    else:
        raise ValueError(f"model {model_name!r} has no front")
    return float(out) if out.ndim == 0 else out

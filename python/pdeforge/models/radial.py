"""Heat flow in a disc and in a ball: the symmetric curvilinear grids with exact solutions.

Both solve ``u_t = D laplace(u)`` with ``u = 0`` on the outer radius ``R`` and a regular centre,
from the slowest eigenmode, which decays without changing shape:

* disc (polar): ``u = J0(a r) exp(-a^2 D t)`` with ``a = j_{0,1} / R`` (``J0(a R) = 0``);
* ball (spherical): ``u = sin(k r)/(k r) exp(-k^2 D t)`` with ``k = pi / R``.

Their total masses (integrals over the disc and the ball) are exact too:
``2 pi R J1(a R)/a`` and ``4 R^3 / pi`` (``4 pi`` times ``integral of r sin(k r)/k dr``), both
times the decay factor.
"""

from __future__ import annotations

import math

import numpy as np

from pdeforge.models.base import Model, dimensionless, register

#: first zero of the Bessel function J0
J0_ZERO = 2.404825557695773
#: the outer radius
R = 1.0


def _bessel():
    import scipy.special

    return scipy.special


def _disc_ic(grid, params, rng):
    (r,) = grid.mesh()
    return {"u": _bessel().j0(J0_ZERO / R * r)}


def _disc_exact(t, mesh, params):
    (r,) = mesh
    a = J0_ZERO / R
    return {"u": _bessel().j0(a * r) * np.exp(-a * a * params["D"] * t)}


def _disc_mass(t, params):
    a = J0_ZERO / R
    return 2 * math.pi * R * float(_bessel().j1(a * R)) / a * math.exp(-a * a * params["D"] * t)


def _ball_ic(grid, params, rng):
    (r,) = grid.mesh()
    k = math.pi / R
    return {"u": np.sinc(k * r / math.pi)}  # sin(k r)/(k r), regular at r = 0


def _ball_exact(t, mesh, params):
    (r,) = mesh
    k = math.pi / R
    return {"u": np.sinc(k * r / math.pi) * np.exp(-k * k * params["D"] * t)}


def _ball_mass(t, params):
    k = math.pi / R
    return 4 * R**3 / math.pi * math.exp(-k * k * params["D"] * t)


def _heat_model(name: str, title: str, geometry: str, initial, exact, mass, description: str) -> Model:
    """A heat-flow model on ``r in [0, R]`` with ``u(R) = 0`` in ``geometry``."""
    return Model(
        name=name, title=title, geometry=geometry, initial=initial, exact=exact, mass=mass,
        description=description, equations={"u": "D*laplace(u)"}, params={"D": 1.0}, domain=((0.0, R),),
        variable_attrs=dimensionless(u="temperature", r="radius"), bcs={"u": {"r": "dirichlet"}}, grid=(64,),
        t_end=0.1, method="rk4", dt=None, save_every=0.01, param_help={"D": "diffusivity"},
    )


register(_heat_model(
    "heat-disc", "Heat flow in a disc, polar grid, exact Bessel solution", "polar", _disc_ic, _disc_exact, _disc_mass,
    "u_t = D (1/r) d(r u_r)/dr on the disc r < R (polar, axisymmetric), u(R) = 0, from the slowest "
    "mode u = J0(a r), a = j01/R; exact u = J0(a r) exp(-a^2 D t). The conservative face-area scheme "
    "(py-pde's PolarSymGrid discretizes alike).",
))

register(_heat_model(
    "heat-ball", "Heat flow in a ball, spherical grid, exact sin(kr)/r solution", "spherical", _ball_ic, _ball_exact,
    _ball_mass,
    "u_t = D (1/r^2) d(r^2 u_r)/dr in the ball r < R (spherically symmetric), u(R) = 0, from "
    "u = sin(k r)/(k r), k = pi/R; exact u = sin(k r)/(k r) exp(-k^2 D t). Conservative shell "
    "volumes (py-pde's SphericalSymGrid with conservative stencils discretizes alike).",
))

"""The wave equation as a first-order system, with an exact standing wave."""

from __future__ import annotations

import numpy as np

from pdeforge.models.base import Model, register


def _omega(params) -> float:
    return params["c"] * np.sqrt(2.0)


def _wave_ic(grid, params, rng):
    x, y = grid.mesh()
    return {"u": np.sin(x) * np.sin(y), "v": np.zeros(grid.shape)}


def _wave_exact(t, mesh, params):
    x, y = mesh
    w = _omega(params)
    mode = np.sin(x) * np.sin(y)
    return {"u": np.cos(w * t) * mode, "v": -w * np.sin(w * t) * mode}


def _wave_mass(t, params):
    # the mode sin x sin y integrates to zero over the periodic box, and so does u_t = v
    return 0.0


register(
    Model(
        name="wave",
        title="Wave equation as a system, standing wave with an exact solution (2-D, periodic)",
        equations={"u": "v", "v": "c**2*laplace(u)"},
        params={"c": 1.0},
        domain=((0.0, 2 * np.pi), (0.0, 2 * np.pi)),
        bcs="periodic",
        grid=(64, 64),
        t_end=2.0,
        method="rk4",
        dt=None,
        save_every=0.1,
        initial=_wave_ic,
        exact=_wave_exact,
        mass=_wave_mass,
        param_help={"c": "wave speed"},
        description=(
            "u_t = v, v_t = c^2 (u_xx + u_yy) on [0, 2 pi]^2, periodic, u(0) = sin x sin y, v(0) = 0; "
            "exact u = cos(sqrt(2) c t) sin x sin y. The spectrum of the semi-discrete operator is "
            "imaginary: the explicit step limit is a CFL condition dt < I h / (c sqrt(8)) (I = 2.83 "
            "for rk4), read from the exact Jacobian's eigenvalues."
        ),
    )
)

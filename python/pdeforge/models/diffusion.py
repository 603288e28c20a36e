"""Linear diffusion with an analytic solution."""

from __future__ import annotations

import numpy as np

from pdeforge.models.base import Model, dimensionless, register


def _heat_ic(grid, params, rng):
    (x,) = grid.mesh()
    return {"u": np.sin(x)}


def _heat_exact(t, mesh, params):
    (x,) = mesh
    return {"u": np.exp(-params["k"] * t) * np.sin(x)}


def _heat_mass(t, params):
    # sin x integrates to zero over its period, and the periodic heat flow keeps it there
    return 0.0


register(
    Model(
        name="heat",
        title="Heat equation with an exact solution (1-D, periodic)",
        variable_attrs=dimensionless(u="temperature"),
        equations={"u": "k*laplace(u)"},
        params={"k": 1.0},
        domain=((0.0, 2 * np.pi),),
        bcs="periodic",
        grid=(128,),
        t_end=1.0,
        method="rk4",
        dt=None,
        save_every=0.05,
        initial=_heat_ic,
        exact=_heat_exact,
        mass=_heat_mass,
        param_help={"k": "diffusivity"},
        description=(
            "u_t = k u_xx on [0, 2 pi], periodic, u(0, x) = sin x; exact u = exp(-k t) sin x and "
            "total mass U(t) = 0 (the 'easy' end of the generalized porous medium family of "
            "ProbConserv, Hansen et al. 2023)."
        ),
    )
)

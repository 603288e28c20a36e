"""2-D viscous Burgers turbulence with a Smagorinsky subgrid stress (finite differences).

The model of the learned-closure example: its eddy viscosity nu_t = (Cs Delta)^2 |S| is the
term a neural closure replaces (:mod:`pdeforge.neural.closures`).
"""

from __future__ import annotations

import numpy as np

from pdeforge.models.base import Model, dimensionless, register

#: |S| = sqrt(2 S_ij S_ij) with S_11 = u_x, S_22 = v_y, S_12 = (u_y + v_x)/2
STRAIN_RATE = "sqrt(2*(d(u,x)**2 + d(v,y)**2) + (d(u,y) + d(v,x))**2)"
SMAGORINSKY = f"(Cs*Delta)**2*{STRAIN_RATE}"


def burgers_les_equations(eddy_viscosity: str = SMAGORINSKY) -> dict[str, str]:
    """Momentum equations u_t = -(u.grad)u + nu lap u + div(2 nu_t S) with ``eddy_viscosity`` as nu_t.

    The subgrid stress -2 nu_t S_ij is written in divergence form, so the finite-difference
    discretization evaluates nu_t on cell faces (flux form).
    """
    nut = f"({eddy_viscosity})"
    return {
        "u": f"-(u*d(u,x) + v*d(u,y)) + nu*laplace(u) + d(2*{nut}*d(u,x), x) + d({nut}*(d(u,y) + d(v,x)), y)",
        "v": f"-(u*d(v,x) + v*d(v,y)) + nu*laplace(v) + d({nut}*(d(u,y) + d(v,x)), x) + d(2*{nut}*d(v,y), y)",
    }


def random_velocity(grid, rng, kmax: int = 4, rms: float = 1.0) -> dict[str, np.ndarray]:
    """Smooth random periodic velocity: Fourier modes 1 <= |k| <= kmax with random phases, rms ``rms``."""
    x, y = grid.mesh()
    (x0, x1), (y0, y1) = grid.domain
    fields = {}
    for name in ("u", "v"):
        f = np.zeros(grid.shape)
        for kx in range(-kmax, kmax + 1):
            for ky in range(0, kmax + 1):
                k = np.hypot(kx, ky)
                if k == 0 or k > kmax or (ky == 0 and kx < 0):
                    continue
                amp = rng.standard_normal() / k
                phase = rng.uniform(0, 2 * np.pi)
                f += amp * np.cos(2 * np.pi * (kx * (x - x0) / (x1 - x0) + ky * (y - y0) / (y1 - y0)) + phase)
        fields[name] = f
    scale = rms / np.sqrt(np.mean(fields["u"] ** 2 + fields["v"] ** 2) / 2)
    return {k: v * scale for k, v in fields.items()}


def _ic(grid, params, rng):
    return random_velocity(grid, rng)


register(
    Model(
        name="burgers-les",
        title="2-D Burgers turbulence with a Smagorinsky subgrid model (periodic)",
        variable_attrs=dimensionless(u="filtered x-velocity", v="filtered y-velocity"),
        equations=burgers_les_equations(),
        params={"nu": 0.005, "Cs": 0.2, "Delta": 2 * np.pi / 32},
        domain=((0.0, 2 * np.pi), (0.0, 2 * np.pi)),
        bcs="periodic",
        grid=(64, 64),
        t_end=3.0,
        method="rk4",
        dt=0.01,
        save_every=0.1,
        initial=_ic,
        param_help={
            "nu": "molecular viscosity",
            "Cs": "Smagorinsky constant",
            "Delta": "filter width (default: twice the cell width of the default 64^2 grid)",
        },
        description=(
            "u_t + (u.grad)u = nu lap u + div(2 nu_t S), nu_t = (Cs Delta)^2 |S|, |S| = sqrt(2 S_ij S_ij) "
            "(Smagorinsky 1963) for a 2-D velocity (u, v) on [0, 2 pi]^2: Burgers turbulence forms "
            "shocks that the eddy viscosity smears over a few cells (with Cs = 0 the central differences "
            "of the default grid blow up by t = 0.4). The learned-closure example "
            "(examples/learned_closure.py) replaces nu_t by a small neural network."
        ),
    )
)


def closure_system(nu: float = 0.005, name: str = "burgers-les-closure"):
    """The ``burgers-les`` equations with nu_t a closure term ``nu_t(u_x, u_y, v_x, v_y)``.

    Compile with ``closures={"nu_t": module}`` (target / backend "torch"); a module computing
    (Cs Delta)^2 |S| from its four inputs reproduces ``burgers-les`` exactly
    (:class:`pdeforge.neural.closures.SmagorinskyViscosity`).
    """
    from pdeforge.symbolic.closure_terms import ClosureSystem

    return ClosureSystem(
        burgers_les_equations("nu_t(d(u,x), d(u,y), d(v,x), d(v,y))"),
        closures={"nu_t": 4},
        params={"nu": nu},
        domain=((0.0, 2 * np.pi), (0.0, 2 * np.pi)),
        bcs="periodic",
        name=name,
    )

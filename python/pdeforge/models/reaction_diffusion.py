"""Reaction-diffusion models: Gray-Scott, Brusselator, FitzHugh-Nagumo, Fisher-KPP, Symbolics.jl RD."""

from __future__ import annotations

import numpy as np

from pdeforge.models.base import Model, dimensionless, register

# --------------------------------------------------------------------------------------------
# Gray-Scott


def _gray_scott_ic(grid, params, rng):
    """u = 1, v = 0, with seeded square spots (u = 1/2, v = 1/4) and 1% noise (Pearson 1993)."""
    mesh = grid.mesh()
    u = np.ones(grid.shape)
    v = np.zeros(grid.shape)
    (x0, x1), (y0, y1) = grid.domain
    side = 0.08 * min(x1 - x0, y1 - y0)
    centres = [((x0 + x1) / 2, (y0 + y1) / 2)]
    centres += [(rng.uniform(x0 + side, x1 - side), rng.uniform(y0 + side, y1 - side)) for _ in range(4)]
    for cx, cy in centres:
        inside = (np.abs(mesh[0] - cx) <= side / 2) & (np.abs(mesh[1] - cy) <= side / 2)
        u[inside] = 0.5
        v[inside] = 0.25
    u *= 1 + 0.01 * rng.standard_normal(grid.shape)
    v *= 1 + 0.01 * rng.standard_normal(grid.shape)
    return {"u": u, "v": v}


register(
    Model(
        name="gray-scott",
        title="Gray-Scott reaction-diffusion (2-D, periodic)",
        variable_attrs=dimensionless(u="concentration of the substrate U", v="concentration of the autocatalyst V"),
        equations={
            "u": "Du*laplace(u) - u*v**2 + F*(1 - u)",
            "v": "Dv*laplace(v) + u*v**2 - (F + k)*v",
        },
        params={"F": 0.04, "k": 0.06, "Du": 2e-5, "Dv": 1e-5},
        domain=((0.0, 2.5), (0.0, 2.5)),
        bcs="periodic",
        grid=(256, 256),
        t_end=5000.0,
        method="rk4",
        dt=1.0,
        save_every=250.0,
        initial=_gray_scott_ic,
        param_help={"F": "feed rate", "k": "kill rate", "Du": "diffusivity of u", "Dv": "diffusivity of v"},
        description=(
            "Two species, u + 2v -> 3v, u fed at rate F and v removed at rate F + k. Setting of "
            "J. E. Pearson, 'Complex patterns in a simple system', Science 261 (1993): [0, 2.5]^2, "
            "256^2 cells, Du = 2e-5, Dv = 1e-5. Initial condition: u = 1, v = 0 with five seeded "
            "square spots (u = 1/2, v = 1/4) and 1% multiplicative noise."
        ),
        notes=(
            "The Well's gray_scott_reaction_diffusion data set (domain [-1, 1]^2, 128^2, Du = 2e-5, "
            "Dv = 1e-5, t in [0, 10000]) uses six regimes of (F, k):\n"
            "  gliders  F = 0.014, k = 0.054\n"
            "  bubbles  F = 0.098, k = 0.057\n"
            "  maze     F = 0.029, k = 0.057\n"
            "  worms    F = 0.058, k = 0.065\n"
            "  spirals  F = 0.018, k = 0.051\n"
            "  spots    F = 0.030, k = 0.062\n"
            "e.g. pdeforge run gray-scott --param F=0.029 --param k=0.057"
        ),
    )
)

# --------------------------------------------------------------------------------------------
# Brusselator


def _brusselator_ic(grid, params, rng):
    A, B = params["A"], params["B"]
    u = A + 0.01 * A * rng.standard_normal(grid.shape)
    v = B / A + 0.01 * (B / A) * rng.standard_normal(grid.shape)
    return {"u": u, "v": v}


register(
    Model(
        name="brusselator",
        title="Brusselator with Turing patterns (2-D, periodic)",
        variable_attrs=dimensionless(u="concentration of the intermediate X", v="concentration of the intermediate Y"),
        equations={
            "u": "Du*laplace(u) + A - (B + 1)*u + u**2*v",
            "v": "Dv*laplace(v) + B*u - u**2*v",
        },
        params={"A": 4.5, "B": 7.5, "Du": 2.0, "Dv": 16.0},
        domain=((0.0, 64.0), (0.0, 64.0)),
        bcs="periodic",
        grid=(64, 64),
        t_end=100.0,
        method="rk45",
        dt=None,
        save_every=2.0,
        initial=_brusselator_ic,
        param_help={"A": "feed", "B": "control parameter", "Du": "diffusivity of u", "Dv": "diffusivity of v"},
        description=(
            "Prigogine-Lefever Brusselator. The homogeneous steady state (A, B/A) is Turing-unstable "
            "when (1 + A sqrt(Du/Dv))^2 < B < 1 + A^2 (here 6.71 < 7.5 < 21.25), so the seeded 1% "
            "noise grows into stationary spots and stripes. Initial condition: steady state plus "
            "seeded noise."
        ),
    )
)

# --------------------------------------------------------------------------------------------
# FitzHugh-Nagumo (PDEBench 2-D diffusion-reaction)


def _fhn_ic(grid, params, rng):
    return {"u": rng.standard_normal(grid.shape), "v": rng.standard_normal(grid.shape)}


register(
    Model(
        name="fitzhugh-nagumo",
        title="FitzHugh-Nagumo activator-inhibitor (PDEBench 2-D diffusion-reaction)",
        variable_attrs=dimensionless(u="activator (fast variable, membrane potential)", v="inhibitor (slow recovery variable)"),
        equations={
            "u": "Du*laplace(u) + u - u**3 - k - v",
            "v": "Dv*laplace(v) + u - v",
        },
        params={"Du": 1e-3, "Dv": 5e-3, "k": 5e-3},
        domain=((-1.0, 1.0), (-1.0, 1.0)),
        bcs="neumann",
        grid=(128, 128),
        t_end=5.0,
        method="rk4",
        dt=None,
        save_every=0.05,
        initial=_fhn_ic,
        param_help={"Du": "activator diffusivity", "Dv": "inhibitor diffusivity", "k": "threshold"},
        description=(
            "The 2-D diffusion-reaction problem of PDEBench (Takamoto et al., NeurIPS 2022): "
            "[-1, 1]^2, zero-flux (Neumann) boundaries, t in [0, 5], initial u, v iid standard normal "
            "(seeded with --seed)."
        ),
    )
)

# --------------------------------------------------------------------------------------------
# Fisher-KPP


def _fisher_ic(grid, params, rng):
    (x,) = grid.mesh()
    return {"u": (x < params["L"] / 10).astype(float)}


def _fisher_builder(values):
    from pdeforge.symbolic.system import PDESystem

    return PDESystem(
        {"u": "D*laplace(u) + r*u*(1 - u)"},
        params=values,
        domain=[(0.0, values["L"])],
        bcs="neumann",
        name="fisher-kpp",
    )


register(
    Model(
        name="fisher-kpp",
        title="Fisher-KPP travelling front (1-D)",
        variable_attrs=dimensionless(u="population density"),
        equations={"u": "D*laplace(u) + r*u*(1 - u)"},
        params={"D": 1.0, "r": 1.0, "L": 100.0},
        domain=((0.0, 100.0),),
        bcs="neumann",
        grid=(1000,),
        t_end=30.0,
        method="rk4",
        dt=None,
        save_every=0.5,
        initial=_fisher_ic,
        builder=_fisher_builder,
        param_help={"D": "diffusivity", "r": "growth rate", "L": "domain length"},
        description=(
            "Fisher (1937), Kolmogorov-Petrovsky-Piskunov (1937). A step u = 1 for x < L/10 "
            "invades the unstable state u = 0 as a front whose speed tends to 2 sqrt(D r) "
            "(Bramson: position 2 sqrt(D r) t - (3/2) sqrt(D/r) log t + const). Zero-flux ends."
        ),
    )
)

# --------------------------------------------------------------------------------------------
# Symbolics.jl auto-parallel tutorial model


def _zeros_ic(grid, params, rng):
    return {"A": np.zeros(grid.shape), "B": np.zeros(grid.shape), "C": np.zeros(grid.shape)}


register(
    Model(
        name="symbolics-rd",
        title="3-species reaction-diffusion of the Symbolics.jl auto-parallel tutorial (2-D)",
        variable_attrs=dimensionless(A="concentration of species A", B="concentration of species B", C="concentration of species C"),
        equations={
            "A": "D*laplace(A) + Heaviside(x - 4*32/5, 1) - beta1*A - r1*A*B + r2*C",
            "B": "alpha2 - beta2*B - r1*A*B + r2*C",
            "C": "alpha3 - beta3*C + r1*A*B - r2*C",
        },
        params={"D": 100.0, "alpha2": 1.0, "alpha3": 1.0, "beta1": 1.0, "beta2": 1.0, "beta3": 1.0,
                "r1": 1.0, "r2": 1.0},
        domain=((0.5, 32.5), (0.5, 32.5)),
        bcs="neumann",
        grid=(32, 32),
        t_end=10.0,
        method="bdf",
        dt=None,
        save_every=0.5,
        initial=_zeros_ic,
        description=(
            "The model of the Symbolics.jl tutorial 'Automated Sparse Parallelism of Julia Functions "
            "via Tracing' (Gowda et al.; N = 32, unit spacing, D = 100, other constants 1, "
            "alpha1 = 1 where x >= 4N/5 = 25.6, zero-flux boundaries, zero initial state, t in [0, 10]). "
            "Only A diffuses. Cell centres sit at 1..32 as in the tutorial; the tutorial's mirror "
            "boundary is about the first node, pdeforge's about the cell face. A stiff system: "
            "the default is implicit BDF with the exact sparse Jacobian."
        ),
    )
)

"""
Lotka-Volterra predator and prey in space
=========================================

Prey ``a`` grow logistically and are eaten by predators ``b``, both diffuse:

.. math::

    a_t = D_a \\nabla^2 a + a (1 - a) - \\frac{a b}{a + h}, \\qquad
    b_t = D_b \\nabla^2 b + \\beta \\frac{a b}{a + h} - m b

with a Holling type II response. With a small half-saturation ``h`` the coexistence state
oscillates (the paradox of enrichment), and a local disturbance of it sets off rings of
pursuit and evasion that meet across the periodic box.
"""

import pdeforge as pf

predation = pf.PDESystem(
    {"a": "Da*laplace(a) + a*(1 - a) - a*b/(a + h)",
     "b": "Db*laplace(b) + beta*a*b/(a + h) - m*b"},
    params={"Da": 1.0, "Db": 1.0, "h": 0.2, "beta": 1.0, "m": 0.5},
    domain=[(0, 100), (0, 100)],
    bcs="periodic",
    ic={"a": "0.2 + 0.2*exp(-((x - 50)**2 + (y - 40)**2)/30)",
        "b": "0.32 + 0.1*exp(-((x - 55)**2 + (y - 50)**2)/30)"},
    name="Lotka-Volterra",
)

ds = pf.solve(predation, grid=(64, 64), t_span=150, method="rk4", backend="numpy")
pf.plot(ds, frames=4)

"""
Lotka-Volterra predator and prey in space
=========================================

Prey ``a`` grow logistically and are eaten by predators ``b``, both diffuse:

.. math::

    a_t = D_a \\nabla^2 a + a (1 - a) - \\frac{a b}{a + h}, \\qquad
    b_t = D_b \\nabla^2 b + \\beta \\frac{a b}{a + h} - m b

with a Holling type II response. A local disturbance of the coexistence state sets off
travelling waves of pursuit and evasion.
"""

import pdeforge as pf

predation = pf.PDESystem(
    {"a": "Da*laplace(a) + a*(1 - a) - a*b/(a + h)",
     "b": "Db*laplace(b) + beta*a*b/(a + h) - m*b"},
    params={"Da": 1.0, "Db": 1.0, "h": 0.4, "beta": 1.0, "m": 0.5},
    domain=[(0, 100), (0, 100)],
    bcs="periodic",
    ic={"a": "0.4 + 0.3*exp(-((x - 50)**2 + (y - 50)**2)/50)", "b": "0.24"},
    name="Lotka-Volterra",
)

ds = pf.solve(predation, grid=(64, 64), t_span=60, method="rk4", backend="numpy")
pf.plot(ds, frames=4)

"""
Keller-Segel chemotaxis with logistic growth
============================================

Cells ``u`` move up the gradient of a chemical ``c`` that they secrete themselves:

.. math::

    u_t = D \\nabla^2 u - \\chi \\nabla\\cdot(u \\nabla c) + r u (1 - u), \\qquad
    c_t = \\nabla^2 c + u - c

The chemotactic flux is written in divergence form, so it is discretized as a conservative
flux; the logistic term keeps the aggregates bounded. Zero flux at the walls.
"""

import pdeforge as pf

chemotaxis = pf.PDESystem(
    {"u": "D*laplace(u) - chi*div(u*grad(c)) + r*u*(1 - u)",
     "c": "laplace(c) + u - c"},
    params={"D": 1.0, "chi": 5.0, "r": 1.0},
    domain=[(0, 20), (0, 20)],
    bcs="neumann",
    ic={"u": "1 + 0.1*cos(0.7*x)*cos(0.9*y) + 0.05*sin(1.3*x + 0.4*y)", "c": 1},
    name="Keller-Segel",
)

ds = pf.solve(chemotaxis, grid=(48, 48), t_span=30, method="rk4", backend="numpy")
pf.plot(ds, frames=4)

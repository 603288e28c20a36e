"""
Viscous Burgers: a steepening front
===================================

``u_t = nu u_xx - u u_x`` on [0, 1] with fixed ends. The sine steepens into a front that
viscosity keeps a few cells wide; the x-t diagram shows it travel and decay.
"""

import pdeforge as pf

burgers = pf.PDESystem(
    {"u": "nu*laplace(u) - u*d(u, x)"},
    params={"nu": 0.005},
    domain=[(0, 1)],
    bcs="dirichlet",
    ic={"u": "sin(pi*x)"},
    name="viscous Burgers",
)
print(burgers)

ds = pf.solve(burgers, grid=200, t_span=1.5, method="rk4", backend="numpy")
pf.plot(ds, frames=5)

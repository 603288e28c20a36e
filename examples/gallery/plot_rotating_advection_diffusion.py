"""
Advection-diffusion in a rotating flow
======================================

A blob carried by solid-body rotation about the centre, ``(-(y - 1/2), x - 1/2)`` times
``omega``, while it diffuses. The velocity is written into the equation with the
coordinates; ``omega = 2 pi`` makes one turn per unit time.
"""

import pdeforge as pf

rotating = pf.PDESystem(
    {"u": "D*laplace(u) - omega*(-(y - 0.5)*d(u, x) + (x - 0.5)*d(u, y))"},
    params={"D": 5e-4, "omega": 6.283185307179586},
    domain=[(0, 1), (0, 1)],
    bcs="neumann",
    ic={"u": "exp(-150*((x - 0.75)**2 + (y - 0.5)**2))"},
    name="rotating advection-diffusion",
)

ds = pf.solve(rotating, grid=(64, 64), t_span=1.0, method="rk4", backend="numpy")
pf.plot(ds, frames=[0, 12, 25, 37, 49])

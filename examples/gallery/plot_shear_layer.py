"""
A double shear layer rolls up
=============================

Incompressible Navier-Stokes on the periodic square, written by hand:
``IncompressibleSystem`` keeps the velocity divergence-free by a Leray projection (no pressure
term to write) and is solved with Fourier pseudo-spectral kernels. Two thin shear layers,
nudged by a small transverse wave, roll up into vortices (Bell, Colella and Glaz 1989).
"""

import numpy as np

import pdeforge as pf

flow = pf.IncompressibleSystem(
    {"u": "-dot(vec(u, v), grad(u)) + nu*laplace(u)",
     "v": "-dot(vec(u, v), grad(v)) + nu*laplace(v)"},
    params={"nu": 2e-3},
    domain=[(0, 2 * np.pi), (0, 2 * np.pi)],
    name="double shear layer",
)


def shear(x, y, rho=15.0):
    return np.where(y <= np.pi, np.tanh(rho * (y - np.pi / 2)), np.tanh(rho * (3 * np.pi / 2 - y)))


ds = pf.solve(flow, grid=(64, 64), t_span=6.0, method="etdrk4",
              ic={"u": shear, "v": lambda x, y: 0.05 * np.sin(x)})
vorticity = ds.v.differentiate("x") - ds.u.differentiate("y")
ds["omega"] = vorticity.assign_attrs(long_name="vorticity")
pf.plot(ds, frames=4, fields="omega", cmap="RdBu_r")

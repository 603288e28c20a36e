"""
Allen-Cahn in 3-D: coarsening of phases
=======================================

``phi_t = eps^2 laplace(phi) + phi - phi^3`` on a periodic cube from small random values. The
two phases separate and their interfaces shrink by mean curvature; a 3-D field is drawn on a
slice, named in the row label.
"""

import numpy as np

import pdeforge as pf

allen_cahn = pf.PDESystem(
    {"phi": "eps**2*laplace(phi) + phi - phi**3"},
    params={"eps": 0.03},
    domain=[(0, 1), (0, 1), (0, 1)],
    bcs="periodic",
    name="Allen-Cahn",
)
rng = np.random.default_rng(1)
start = {"phi": 0.1 * rng.standard_normal((24, 24, 24))}

ds = pf.solve(allen_cahn, grid=(24, 24, 24), t_span=8.0, ic=start, method="rk4", backend="numpy")
pf.plot(ds, frames=4, slice={"z": 0.5})

"""
Gray-Scott from the catalogue, and a movie
==========================================

A model of the catalogue gives its system, its default initial condition and its defaults;
here the "worms" regime of the Well (F = 0.058, k = 0.065) on a small grid. ``pf.animate``
writes the whole run as a GIF (or an MP4 with imageio-ffmpeg installed).
"""

import pdeforge as pf

model = pf.models.get_model("gray-scott")
system, defaults = model.setup(params={"F": 0.058, "k": 0.065}, grid=(48, 48), seed=2)

ds = pf.solve(system, grid=defaults["grid"], t_span=1000.0, ic=defaults["ic"], method="rk4", backend="numpy")
pf.plot(ds, frames=4)
pf.animate(ds.isel(t=slice(None, None, 2)), "gray_scott.gif", fps=8)  # every other frame

"""The README example runs and gives a Dataset of the documented shape."""

import json

import numpy as np

import pdeforge as pf


def test_gray_scott_example_dataset_contract():
    gs = pf.PDESystem(
        {"u": "Du*laplace(u) - u*v**2 + F*(1 - u)", "v": "Dv*laplace(v) + u*v**2 - (F + k)*v"},
        params={"Du": 2e-5, "Dv": 1e-5, "F": 0.04, "k": 0.06},
        domain=[(0, 2.5), (0, 2.5)],
        bcs="periodic",
    )
    ic = {"u": lambda x, y: 1 - 0.5 * (np.hypot(x - 1.25, y - 1.25) < 0.2),
          "v": lambda x, y: 0.25 * (np.hypot(x - 1.25, y - 1.25) < 0.2)}
    ds = pf.solve(gs, grid=(32, 32), t_span=(0, 20), ic=ic, method="rk4", dt=1.0, backend="numba", output=pf.Output(save_every=5))
    assert list(ds.data_vars) == ["u", "v"]
    assert ds.u.dims == ("t", "x", "y")
    np.testing.assert_allclose(ds.t.values, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(ds.x.values, (np.arange(32) + 0.5) * 2.5 / 32)
    for key in ("equations", "parameters", "backend", "method", "steps", "compile_time_s", "wall_time_s"):
        assert key in ds.attrs
    assert json.loads(ds.attrs["parameters"])["F"] == 0.04
    assert ds.attrs["steps"] == 20 and ds.attrs["method"] == "rk4" and ds.attrs["backend"] == "numba"
    assert np.isfinite(ds.u.values).all()

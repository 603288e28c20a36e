"""A blow-up is reported once: NumPy's overflow and invalid-value warnings from the kernels are
silenced while stepping, pdeforge's BlowUpWarning is the one message."""

import warnings

import numpy as np
import pdeforge as pf
import pytest
from pdeforge.errors import BlowUpWarning


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_numpy_kernels_blow_up_with_one_warning(method):
    # u' = u**3 from u ~ 10 leaves the floats by t ~ 0.005; NumPy would warn at every overflowing stage
    system = pf.PDESystem({"u": "laplace(u) + u**3"}, domain=[(0, 1)], bcs="neumann", name="cubic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pf.solve(system, grid=32, t_span=(0, 1.0), ic={"u": "10 + cos(pi*x)"}, method=pf.methods.with_settings(method, stability="ignore"), dt=2e-3, progress=False, backend="numpy", output=pf.Output(save_every=0.01))
    assert [w.category for w in caught] == [BlowUpWarning], [str(w.message) for w in caught]
    assert ds.attrs["status"].startswith("blew up") and np.isfinite(ds.u.values).all()
    assert np.geterr()["over"] == "warn"  # the silencing ends with the run

"""Complex-valued fields: the language, the real form, every stepper, files.

References: the exact plane-wave solution of the linear Schrodinger equation (observed order),
conservation of the norm by the nonlinear Schrodinger equation, complex arithmetic evaluated
directly (for the symbolic split), the NumPy target (for Numba and torch), finite differences
(for the exact Jacobian).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import xarray as xr

import pdeforge as pf
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import PDEForgeError

TWO_PI = 2 * np.pi
NLS = "I*laplace(psi) - I*abs(psi)**2*psi"


def test_linear_schrodinger_plane_wave_is_second_order():
    system = pf.PDESystem({"psi": "I*laplace(psi)"}, domain=[(0, TWO_PI)], bcs="periodic")
    assert system.is_complex and system.dtype == "complex128"
    errors = []
    for n in (16, 32, 64):
        ds = pf.solve(system, grid=n, t_span=(0, 0.5), ic={"psi": "exp(2*I*x)"}, method="rk4", dt=2.0 / n**2, backend="numpy", output=pf.Output(save_every=0.5))
        assert ds.psi.dtype == np.complex128
        exact = np.exp(1j * (2 * ds.x.values - 2.0))
        errors.append(np.max(np.abs(ds.psi.isel(t=-1).values - exact)))
    errors = np.array(errors)
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(orders - 2) < 0.1), orders


def test_split_matches_complex_arithmetic():
    system = pf.PDESystem({"psi": "conj(psi)*exp(I*x) - re(psi)**2 + I*im(psi)*arg(psi) + abs(psi)"},
                          domain=[(0, 1)], bcs="periodic")
    real = system.real_form()
    assert real.fields == ["psi_real", "psi_imag"] and real.complex_parts == {"psi": ("psi_real", "psi_imag")}
    x = sp.Symbol("x", real=True)
    rng = np.random.default_rng(3)
    for z, xv in zip(rng.standard_normal(5) + 1j * rng.standard_normal(5), rng.uniform(0, 1, 5)):
        direct = complex(system.rhs["psi"].subs(system.field_functions["psi"], z).subs(x, xv).evalf())
        parts = {real.field_functions["psi_real"]: z.real, real.field_functions["psi_imag"]: z.imag}
        got = [float(real.rhs[f].subs(parts).subs(x, xv).evalf()) for f in real.fields]
        assert abs(got[0] - direct.real) < 1e-12 and abs(got[1] - direct.imag) < 1e-12


def _packet(n):
    return {"psi": "(1 + 0.3*cos(x))*exp(I*x)"}


def test_nls_norm_numba_numpy_and_files(tmp_path):
    system = pf.PDESystem({"psi": NLS}, domain=[(0, TWO_PI)], bcs="periodic")
    out = tmp_path / "nls.nc"
    ds = pf.solve(system, grid=48, t_span=(0, 1.0), ic=_packet(48), method=pf.RK45(rtol=1e-10, atol=1e-12), backend="numba", output=pf.Output(str(out), save_every=0.25))
    norm = (np.abs(ds.psi) ** 2).sum("x").values * TWO_PI / 48
    # the semi-discrete NLS conserves sum |psi|^2 exactly; rk45 to its tolerance
    assert np.max(np.abs(norm - norm[0])) < 1e-8 * norm[0]
    assert ds.attrs["equations"] == f"psi_t = {NLS}"
    raw = xr.open_dataset(out)
    assert set(raw.data_vars) == {"psi_real", "psi_imag"} and raw.psi_real.dtype == np.float64
    back = pf.open_dataset(out)
    assert back.psi.dtype == np.complex128 and np.array_equal(back.psi.values, ds.psi.values)
    raw.close(), back.close()
    numpy = pf.solve(system, grid=48, t_span=(0, 1.0), ic=_packet(48), method=pf.RK45(rtol=1e-10, atol=1e-12), backend="numpy", output=pf.Output(save_every=0.25))
    assert np.max(np.abs(ds.psi.values - numpy.psi.values)) < 1e-12


def test_exact_jacobian_of_the_real_form():
    system = pf.PDESystem({"psi": NLS + " + conj(psi)*d(psi, x)"}, domain=[(0, 1)], bcs="dirichlet")
    grid = UniformGrid.from_spec(system.domain, 7)
    bound = pf.compile(system, target="numpy").bind(grid)
    y = np.random.default_rng(2).standard_normal(2 * grid.size)
    J = bound.jacobian(0.0, y).toarray()
    eps = 1e-6
    fd = np.column_stack([(bound.rhs(0.0, y + eps * e) - bound.rhs(0.0, y - eps * e)) / (2 * eps)
                          for e in np.eye(y.size)])
    assert np.max(np.abs(J - fd)) < 1e-6 * np.max(np.abs(J))


def test_torch_complex64_and_complex128():
    pytest.importorskip("torch")
    system = pf.PDESystem({"psi": NLS}, domain=[(0, TWO_PI)], bcs="periodic")
    run = dict(grid=16, t_span=(0, 0.05), ic=_packet(16), method="rk4", dt=5e-3, output=pf.Output(save_every=0.05))
    ref = pf.solve(system, backend="numpy", **run)
    double = pf.solve(system, backend=pf.Torch(dtype="complex128"), **run)
    single = pf.solve(system, backend=pf.Torch(dtype="complex64"), **run)
    assert np.max(np.abs(double.psi.values - ref.psi.values)) < 1e-12
    assert np.max(np.abs(single.psi.values - ref.psi.values)) < 1e-5
    assert single.attrs["dtype"] == "float32"


def test_errors():
    real = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs="periodic")
    with pytest.raises(PDEForgeError, match=r"ic for 'u': complex values, but system 'system' is real"):
        pf.solve(real, grid=8, t_span=1e-3, ic={"u": "exp(I*x)"}, dt=1e-5)
    with pytest.raises(PDEForgeError, match=r"dtype='float64', but the equations .* complex"):
        pf.PDESystem({"u": "I*laplace(u)"}, dtype="float64")
    with pytest.raises(PDEForgeError, match=r"name 'u_imag' is taken"):
        pf.PDESystem({"u": "I*u", "u_imag": "u_imag"})
    # the backend checks its dtype when it is made: complex precision is the torch backend's alone
    with pytest.raises(PDEForgeError, match=r"Numba: dtype 'complex64' is not valid \(valid: 'float64', 'float32'\)"):
        pf.solve(pf.PDESystem({"u": "I*u"}), grid=4, t_span=0.1, ic={"u": 1}, dt=0.01, backend=pf.Numba(dtype="complex64"))
    # an explicit dtype makes a system complex whose equations alone do not say so
    assert pf.PDESystem({"u": "-conj(u)"}, dtype="complex128").is_complex

"""Method of manufactured solutions: observed order of convergence for every BC type, 1-D to 3-D.

The exact solution u = 1 + exp(-t/2) prod cos(1.3 x_i + 0.4) is forced into the equation by
the source term f = u_t - L(u) (derived with SymPy), its boundary values, normal derivatives
or Robin combinations (time dependent) are imposed, and the error at t = 0.1 is measured on
three grids (observed order = least-squares slope of log error against log h). RK4 with the stability-limited step keeps the time error far below the
spatial one.
"""

import numpy as np
import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.symbolic.system import coordinate_symbols

GRIDS = {1: (16, 32, 64), 2: (16, 32, 64), 3: (12, 16, 24)}
T = 0.1


def manufactured(dim: int, kind: str, nonlinear: bool):
    xs = coordinate_symbols(dim)
    t = sp.Symbol("t", real=True)
    ue = 1 + sp.exp(-t / 2) * sp.Mul(*[sp.cos(sp.Rational(13, 10) * c + sp.Rational(2, 5)) for c in xs])
    if nonlinear:
        op = sum(sp.diff((1 + ue**2 / 2) * sp.diff(ue, c), c) for c in xs)
        eq = "div((1 + u**2/2)*grad(u))"
    else:
        op = sp.Rational(7, 10) * sum(sp.diff(ue, c, 2) for c in xs)
        eq = "D*laplace(u)"
    source = sp.simplify(sp.diff(ue, t) - op)
    bcs = {}
    for a, c in enumerate(xs):
        pair = []
        for side, x0, normal in ((0, 0, -1), (1, 1, 1)):
            value = ue.subs(c, x0)
            dn = (normal * sp.diff(ue, c)).subs(c, x0)
            if kind == "dirichlet" or (kind == "mixed" and side == 0):
                pair.append({"dirichlet": value})
            elif kind == "neumann":
                pair.append({"neumann": dn})
            else:  # robin on both sides, or on the high side of "mixed"
                alpha, beta = (2, sp.Rational(1, 2)) if kind == "robin" else (1, 1)
                pair.append({"robin": (alpha, beta, alpha * value + beta * dn)})
        bcs["xyz"[a]] = pair
    system = pf.PDESystem({"u": f"{eq} + ({source})"}, params={"D": 0.7}, domain=[(0, 1)] * dim, bcs=bcs)
    return system, sp.lambdify((*xs, t), ue, "numpy")


def errors(dim, kind, order, nonlinear=False, backend="numpy"):
    system, exact = manufactured(dim, kind, nonlinear)
    errs = []
    for n in GRIDS[dim]:
        grid = pf.UniformGrid.from_spec(system.domain, n)
        ds = pf.solve(system, grid=grid, t_span=(0, T), ic={"u": lambda *X: exact(*X, 0.0)}, method="rk4", backend=backend, progress=False, discretization=pf.FiniteDifference(order=order), output=pf.Output(save_every=T))
        errs.append(np.abs(ds.u[-1].values - exact(*grid.mesh(), T)).max())
    errs = np.array(errs)
    # least-squares slope of log(error) against log(h) over all grids
    order = np.polyfit(np.log(1.0 / np.array(GRIDS[dim])), np.log(errs), 1)[0]
    return errs, order


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("kind", ["dirichlet", "neumann", "robin", "mixed"])
def test_second_order(dim, kind):
    errs, orders = errors(dim, kind, 2)
    assert abs(orders - 2) <= 0.15, (errs, orders)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("kind", ["dirichlet", "neumann", "robin", "mixed"])
def test_fourth_order_option(dim, kind):
    errs, orders = errors(dim, kind, 4)
    assert abs(orders - 4) <= 0.25, (errs, orders)


@pytest.mark.parametrize("dim, kind, order", [(1, "dirichlet", 2), (1, "neumann", 4), (1, "robin", 4), (1, "mixed", 4),
                                             (2, "robin", 2), (2, "dirichlet", 4)])
def test_nonlinear_flux_form(dim, kind, order):
    errs, orders = errors(dim, kind, order, nonlinear=True, backend="numba")
    assert abs(orders - order) <= (0.15 if order == 2 else 0.25), (errs, orders)


def report():  # pragma: no cover - run by hand: python tests/discretize/test_mms.py
    for dim in (1, 2, 3):
        for kind in ("dirichlet", "neumann", "robin", "mixed"):
            for order in (2, 4):
                errs, observed = errors(dim, kind, order, backend="numba")
                print(f"{dim}-D {kind:9s} order {order}: errors {np.array2string(errs, precision=2)} observed {observed:.3f}")


if __name__ == "__main__":  # pragma: no cover
    report()

"""The MethodOfLines route without Julia: grid ranges, algorithm tables, refusals, the simplifier.

Julia is not needed: Julia's float range is reproduced in Python (and checked here on cases
whose Julia results are known), and the Julia sources are read as text.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from julia_helpers import syntax_errors

import pdeforge as pf
from pdeforge.discretize.grid import UniformGrid
from pdeforge.errors import JuliaUnavailable, SolverError
from pdeforge.julia.float_range import exact_ends, float_range, is_exact, rat
from pdeforge.julia.methodoflines import ALGORITHMS, MethodOfLinesUnsupported, check_expressible, describe

ROOT = Path(__file__).resolve().parents[2]
PDEFORGE_JL = (ROOT / "julia" / "PDEForge.jl").read_text()


# --------------------------------------------------------------------------------------------
# Julia's float range and the MethodOfLines grid


def test_float_range_reproduces_julia():
    # results of Julia 1.10 at the REPL
    assert float_range(0.0, 0.1, 1.0) == (11, 1.0)  # rational lift: exact
    assert float_range(0.0, 1 / 3, 1.0) == (4, 1.0)
    assert float_range(1.0, 0.5, 0.0) == (0, 1.0)
    assert rat(0.1) == (1, 10) and rat(0.5) == (1, 2)
    # literal start and step: length from the rounded quotient, last point correctly rounded
    n, last = float_range(0.0, 2 * math.pi / 7, 2 * math.pi)
    assert n == 8 and abs(last - 2 * math.pi) <= 2 * math.ulp(2 * math.pi)


@pytest.mark.parametrize("n", [15, 21, 50, 100, 200])
def test_periodic_mol_grid_is_an_exact_range(n):
    # on [0, 2 pi] these sizes shifted by half a cell give inexact ranges, which MethodOfLines
    # would turn into a non-uniform grid that its periodic closure refuses
    h = 2 * math.pi / n
    assert not is_exact(h / 2, 2 * math.pi + h / 2, n)
    system = pf.PDESystem({"u": "-d(u, x)"}, domain=[(0, 2 * math.pi)], bcs="periodic")
    grid = UniformGrid(system.domain, (n,))
    problem = describe(system, grid, (0, 0.1), {"u": "sin(x)"}, method="rk4", dt=0.01)
    (lo, hi), = problem.bounds
    assert problem.points == [n + 1] and is_exact(lo, hi, n)
    # still pdeforge's cell centres, to round-off
    nodes = lo + np.arange(n + 1) * ((hi - lo) / n)
    assert np.max(np.abs(nodes[:-1] - grid.axis_coordinates(0, 0))) < 1e-13


def test_exact_ends_for_many_sizes_stay_within_round_off():
    for n in [*range(2, 300), 1024, 4096]:
        for lo, hi in ((0.0, 1.0), (-math.pi, math.pi), (math.pi / n, 2 * math.pi + math.pi / n), (0.3, 1.7)):
            a, b = exact_ends(lo, hi, n)
            assert is_exact(a, b, n)
            assert abs(a - lo) <= 1e-13 * (hi - lo) and abs(b - hi) <= 1e-13 * (hi - lo)


# --------------------------------------------------------------------------------------------
# the in-process route's algorithm table and fixed steps


def _julia_algorithms() -> dict[str, str]:
    block = re.search(r"const ALGORITHMS = Dict\{String,Any\}\((.*?)\n\)", PDEFORGE_JL, re.S)
    assert block, "PDEForge.ALGORITHMS not found"
    return dict(re.findall(r'"([\w-]+)"\s*=>\s*(\w+)', block.group(1)))


def test_in_process_algorithm_table_covers_every_method_the_cli_offers():
    from pdeforge.solvers.methods import METHODS

    table = _julia_algorithms()
    assert table == {m: alg for m, (alg, _) in ALGORITHMS.items()}
    assert table["rosenbrock23"] == "Rosenbrock23" and table["scipy-bdf"] == "FBDF"
    system = pf.PDESystem({"u": "d(u, x, 2)"}, domain=[(0, 1)], bcs="dirichlet")
    grid = UniformGrid(system.domain, (8,))
    for method in METHODS:
        if method in table:
            describe(system, grid, (0, 0.1), {"u": "sin(pi*x)"}, method=method, dt=1e-3)
        else:  # no counterpart: refused before Julia is asked
            with pytest.raises(SolverError, match="no MethodOfLines counterpart"):
                describe(system, grid, (0, 0.1), {"u": "sin(pi*x)"}, method=method, dt=1e-3)


def test_fixed_step_in_process_solve_stops_at_the_save_times():
    body = PDEFORGE_JL[PDEFORGE_JL.index("function mol_solve"):]
    fixed = next(line for line in body.splitlines() if "adaptive = false" in line)
    assert "tstops = saveat" in fixed
    assert syntax_errors(PDEFORGE_JL) == []


# --------------------------------------------------------------------------------------------
# features the export does not write are refused in one line, before anything is written


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: pf.PDESystem({"u": "d(a*d(u, x), x)"}, params={"a": "1 + x"}, domain=[(0, 1)], bcs="neumann"),
         "coefficient field"),
        (lambda: pf.PDESystem({"u": "d(u, x, 2) - S*u", "S": "integral(u)"}, domain=[(0, 1)], bcs="neumann",
                              scalars=("S",)), "scalar"),
        (lambda: pf.PDESystem({"u": "d(u, x, 2)"}, params={"sigma": 0.1}, noise={"u": "sigma"}, domain=[(0, 1)],
                              bcs="neumann"), "noise"),
        (lambda: pf.PDESystem({"psi": "I*d(psi, x, 2)"}, domain=[(0, 2 * math.pi)], bcs="periodic"), "complex"),
    ],
    ids=["coefficient", "scalar", "noise", "complex"],
)
def test_export_refuses_what_it_cannot_write(make, word, tmp_path):
    system = make()
    with pytest.raises(MethodOfLinesUnsupported, match=word):
        check_expressible(system)
    with pytest.raises(MethodOfLinesUnsupported) as info:
        pf.export_julia(system, grid=(8,), t_span=0.1, script=str(tmp_path / "run.jl"))
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_complex_system_exports_as_its_real_form():
    system = pf.PDESystem({"psi": "I*d(psi, x, 2)"}, domain=[(0, 2 * math.pi)], bcs="periodic")
    check_expressible(system.real_form())


# --------------------------------------------------------------------------------------------
# the Julia simplifier with coefficient fields


class _EchoSession:
    """Stands in for Julia: 'simplifies' every stencil text to itself."""

    def __init__(self):
        self.rows = None

    def simplify_texts(self, fields, names, texts):
        self.rows = list(fields)
        return [(t, t) for t in texts]


def test_julia_simplifier_reads_coefficient_rows(monkeypatch):
    from pdeforge.discretize.semidiscrete import discretize
    from pdeforge.julia import bridge
    from pdeforge.julia.simplifier import simplify

    system = pf.PDESystem({"u": "d(k*d(u, x), x) + g"}, params={"k": "1 + x**2", "g": np.linspace(0, 1, 8)},
                          domain=[(0, 1)], bcs="dirichlet")
    semi = discretize(system, 2)
    before = list(semi.rhs)
    session = _EchoSession()
    monkeypatch.setattr(bridge, "session", lambda: session)
    out = simplify(semi)
    assert session.rows == ["u", *semi.coefficients] and len(session.rows) == 3
    assert all(sp.simplify(a - b) == 0 for a, b in zip(out.rhs, before))


# --------------------------------------------------------------------------------------------
# juliacall


def test_juliacall_lower_bound_is_the_first_with_the_settings_pdeforge_uses():
    from pdeforge.julia.environment import MIN_JULIACALL, check_juliacall_version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    spec = next(s for s in project["project"]["optional-dependencies"]["julia"] if s.startswith("juliacall"))
    assert spec == "juliacall>=" + ".".join(map(str, MIN_JULIACALL)) == "juliacall>=0.9.28"
    for old in ("0.9.21", "0.9.27"):
        with pytest.raises(JuliaUnavailable, match="0.9.28"):
            check_juliacall_version(old)
    for fine in ("0.9.28", "0.9.31", "1.0.0", None):
        check_juliacall_version(fine)


def test_robin_coefficients_of_t_are_refused_before_writing(tmp_path):
    from pdeforge.julia.methodoflines import MethodOfLinesUnsupported, check_expressible

    system = pf.PDESystem({"u": "laplace(u)"}, domain=[(0, 1)], bcs={"x": {"robin": ("1 + t**2", -3, 0)}})
    with pytest.raises(MethodOfLinesUnsupported, match="depend on t"):
        check_expressible(system)


def test_wall_data_are_written_as_normal_derivative_conditions():
    from pdeforge.julia.methodoflines import _boundary_equations, face_symbols

    system = pf.PDESystem({"u": "-d(u, x, 3) - 6*u*d(u, x)"}, domain=[(0, 1)],
                          bcs={"u": {"dirichlet": "sin(t)"}, "laplace(u)": {"dirichlet": "cos(t)*x"}})
    second = [e for e in _boundary_equations(system) if isinstance(e.lhs, sp.Subs) and e.lhs.expr.derivative_count == 2]
    faces = face_symbols(system)[0]
    assert [sp.simplify(e.rhs - sp.cos(system.t) * v) for e, v in zip(second, faces)] == [0, 0]


def test_clamped_wall_data_are_written_as_first_derivative_conditions():
    from pdeforge.julia.methodoflines import _boundary_equations

    system = pf.PDESystem({"u": "-d(u, x, 4)"}, domain=[(0, 1)],
                          bcs={"u": "dirichlet", "d(u, x)": {"dirichlet": "sin(t)"}})
    slopes = [e for e in _boundary_equations(system) if isinstance(e.lhs, sp.Subs) and e.lhs.expr.derivative_count == 1]
    assert [sp.simplify(e.rhs - sp.sin(system.t)) for e in slopes] == [0, 0]  # d(u, x) on both walls

"""The equation parser accepts the language and rejects everything else without running it."""

import os

import pytest
import sympy as sp

import pdeforge as pf
from pdeforge.errors import EquationParseError, SystemDefinitionError


def system(eq, **kw):
    return pf.PDESystem({"u": eq}, params=kw.pop("params", {"D": 1.0}), domain=kw.pop("domain", [(0, 1), (0, 1)]),
                        bcs="periodic", **kw)


def test_language_builds_unevaluated_derivatives():
    s = system("D*laplace(u) + d(u, x, 2) + d(u, x, y) + div(exp(u)*grad(u)) + dot(grad(u), grad(u))")
    x, y = s.coords
    u = s.field_functions["u"]
    rhs = s.rhs["u"]
    assert sp.Derivative(u, (x, 2)) in rhs.atoms(sp.Derivative)
    assert sp.Derivative(u, x, y) in rhs.atoms(sp.Derivative)
    # div(k grad u) stays in flux form: d/dx(exp(u) du/dx), not expanded by the product rule
    assert sp.Derivative(sp.exp(u) * sp.Derivative(u, x), x) in rhs.atoms(sp.Derivative)
    terms = sp.Add.make_args(rhs)
    assert sp.Derivative(u, x) ** 2 in terms and sp.Derivative(u, y) ** 2 in terms


def test_functions_and_piecewise():
    s = system("Piecewise((1, u >= D), (0, True)) + erf(u) + Heaviside(u - 1) + max(u, 0) + min(u, 1) + tanh(u)")
    rhs = s.rhs["u"]
    assert rhs.has(sp.Piecewise) and rhs.has(sp.erf) and rhs.has(sp.Heaviside)
    assert rhs.has(sp.Max) and rhs.has(sp.Min) and rhs.has(sp.tanh)


@pytest.mark.parametrize(
    "text, token",
    [
        ("u.__class__", "attribute access"),
        ("__import__('os')", "dunder"),
        ("__import__('os').system('touch pwned')", "only plain function names"),
        ("(lambda: 1)()", "lambda"),
        ("open('pwned', 'w')", "'open' is not an allowed function"),
        ("eval('1')", "'eval' is not an allowed function"),
        ("u[0]", "subscripts"),
        ("[u for u in (1,)]", "comprehensions"),
        ("u if D else 0", "conditional expressions"),
        ("u^2", "'^' is not a power"),
        ("exp(x=1)", "keyword arguments"),
        ("'text'", "constant of type str"),
        ("import os", "syntax error"),
        ("2**2**2**2**2", "exponent larger"),
    ],
)
def test_rejects_outside_allow_list_without_executing(text, token, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EquationParseError) as info:
        system(text)
    assert token in str(info.value)
    assert "equation for 'u'" in str(info.value)
    assert not os.path.exists(tmp_path / "pwned")


def test_unknown_name_lists_what_is_allowed():
    with pytest.raises(EquationParseError) as info:
        system("D*laplace(u) + foo")
    msg = str(info.value)
    assert "unknown name 'foo'" in msg and "column" in msg
    for word in ("fields u", "parameters D", "coordinates x, y, t", "laplace", "exp"):
        assert word in msg


def test_missing_parameter_value_is_an_unknown_name():
    with pytest.raises(EquationParseError, match="unknown name 'k'"):
        system("D*laplace(u) - k*u")


def test_field_without_equation():
    with pytest.raises(SystemDefinitionError, match="field 'v' has no equation"):
        pf.PDESystem({"u": "laplace(u)"}, fields=["u", "v"], domain=[(0, 1)], bcs="periodic")


def test_bad_parameter_values_and_names():
    with pytest.raises(SystemDefinitionError, match="not a number"):
        system("D*u", params={"D": {"a": 1}})
    # a string is a coefficient field's expression: an unknown name in it is named
    with pytest.raises(SystemDefinitionError, match="unknown name 'abc'.*neither a number nor an expression"):
        system("D*u", params={"D": "abc"})
    with pytest.raises(SystemDefinitionError, match="not finite"):
        system("D*u", params={"D": float("nan")})
    with pytest.raises(SystemDefinitionError, match="reserved"):
        pf.PDESystem({"u": "u"}, params={"exp": 1.0}, domain=[(0, 1)], bcs="periodic")


def test_domain_and_grid_mismatch():
    from pdeforge.errors import GridError

    with pytest.raises(SystemDefinitionError, match="low < high"):
        system("u", domain=[(1, 0)])
    s = system("D*laplace(u)")
    with pytest.raises(GridError, match="3 axes but the domain has 2"):
        pf.solve(s, grid=(8, 8, 8), t_span=1, ic={"u": 0.0})


def test_vector_misuse():
    with pytest.raises(EquationParseError, match="takes a vector"):
        system("div(u)")
    with pytest.raises(EquationParseError, match="takes a scalar"):
        system("laplace(grad(u))")
    with pytest.raises(SystemDefinitionError, match="scalar expression"):
        system("grad(u)")


def test_sympy_input_is_matched_by_name():
    x, y, D = sp.symbols("x y D")
    u = sp.Function("u")(x, y)
    s = pf.PDESystem({"u": D * (sp.Derivative(u, (x, 2)) + sp.Derivative(u, (y, 2)))}, params={"D": 2.0},
                     domain=[(0, 1), (0, 1)], bcs="periodic")
    t = system("D*laplace(u)", params={"D": 2.0})
    assert sp.simplify(s.rhs["u"] - t.rhs["u"]) == 0
    with pytest.raises(SystemDefinitionError, match="unknown symbol 'q'"):
        pf.PDESystem({"u": sp.Symbol("q") * u}, domain=[(0, 1), (0, 1)], bcs="periodic")

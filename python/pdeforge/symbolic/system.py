"""The PDE system: fields, coordinates, parameters, equations, domain, boundary conditions."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp

from pdeforge.errors import BoundaryConditionError, EquationParseError, SystemDefinitionError
from pdeforge.symbolic.boundary import BoundarySpec, check_coefficients, parse_bcs
from pdeforge.symbolic.geometry import (
    axis_names, check_domain_for, check_radial_orders, curvilinear_operators, get_geometry, regular_centre,
)
from pdeforge.symbolic.complex_fields import COMPLEX_FUNCTIONS, is_complex_expression, part_names, real_form_parts
from pdeforge.symbolic.walls import SecondSpec, close_walls, normal_orders
from pdeforge.symbolic.operators import CONSTANTS, MATH_FUNCTIONS, make_operators
from pdeforge.symbolic.parser import Namespace, parse_expression
from pdeforge.symbolic.global_unknowns import (
    REDUCTION_TYPES,
    REDUCTIONS,
    boundary_outside_reductions,
    check_integrand,
    check_scalar_names,
    parse_scalar_equations,
)

AXES = ("x", "y", "z")
TIME = sp.Symbol("t", real=True)
RESERVED = set(AXES) | {"t"} | set(CONSTANTS) | set(MATH_FUNCTIONS) | set(COMPLEX_FUNCTIONS) | {
    "laplace", "inv_laplace", "grad", "div", "d", "dot", "vec", "True", "False", *REDUCTIONS,
}


def coordinate_symbols(dim: int) -> tuple[sp.Symbol, ...]:
    """The spatial coordinate symbols x, y, z of a ``dim``-dimensional domain."""
    return tuple(sp.Symbol(a, real=True) for a in AXES[:dim])


class PDESystem:
    """A system of evolution equations ``d(field)/dt = rhs`` on a box.

    Args:
        equations: field name -> right-hand side of its time derivative, as a string in the
            equation language (parsed safely, see :mod:`pdeforge.symbolic.parser`) or a SymPy
            expression (symbols and functions are matched by name).
        params: parameter name -> value. Every name in the equations that is not a field,
            coordinate, constant or function must be a parameter with a value. A value is a
            number, or a *coefficient field* (a heterogeneous source, a diffusivity map):
            an array of the grid's shape (checked when the system is bound to a grid), a
            callable of the coordinate meshes, or an expression string of the coordinates
            and the numeric parameters (``"1 + 0.5*sin(x)"``). Coefficient fields are read
            by the kernels as frozen fields: changing their values does not recompile.
        domain: one ``(low, high)`` pair per spatial dimension (1 to 3); coordinates are
            named x, y, z in that order (r, or r and z, in a curvilinear ``geometry``).
        bcs: boundary conditions, see :mod:`pdeforge.symbolic.boundary`.
        ic: optional default initial condition: field -> string expression of the coordinates
            and parameters, callable of the coordinate arrays, or array.
        fields: optional explicit list of fields; each must have an equation.
        name: optional name for messages and output attributes.
        dtype: "float64" (real fields) or "complex128" (complex fields). Default: complex
            when an equation or the default ``ic`` needs it (``I``; ``re``, ``im``, ``conj``,
            ``arg`` then act on complex values), else real. A complex system is solved through
            its :meth:`real_form` (fields ``psi_real``, ``psi_imag``).
        noise: field -> strength ``sigma`` of space-time white noise added to its equation, in
            Ito form: an expression of the fields, coordinates, t and parameters (additive
            ``"sigma"`` or multiplicative ``"sigma*u"``). Each step, each cell receives
            ``sigma*sqrt(dt/cell_volume)*N(0, 1)`` (py-pde's scaling; py-pde's ``noise`` is
            ``sigma**2``). Solved with method "euler" (Euler-Maruyama) or "milstein".
        geometry: "cartesian" (default), or a symmetric curvilinear grid: "polar" (r),
            "cylindrical" (r, z) or "spherical" (r), whose laplace/div/grad are the
            divergence forms and whose r = 0 needs no condition (see
            :mod:`pdeforge.symbolic.geometry`).
        scalars: names among ``equations`` that are *scalars*: unknowns without space
            dimensions (a reservoir, a controller), solved together with the fields
            (:mod:`pdeforge.symbolic.global_unknowns`). Their equations may use ``integral(expr)`` and
            ``mean(expr)`` over the domain; field equations may use the scalars and these
            reductions too (global feedback).

    Attributes:
        fields: field names in order.
        coords: SymPy coordinate symbols.
        t: the time symbol.
        params: numeric parameter values.
        param_symbols: name -> SymPy symbol (numeric parameters).
        coefficients: coefficient field name -> value (array, callable or SymPy expression
            of the coordinates and numeric parameters).
        coefficient_functions: coefficient field name -> ``k(x, y)`` as in the equations.
        rhs: field name -> SymPy right-hand side, fields appearing as ``u(x, y)``.
        scalars: scalar unknowns in order; scalar_symbols: name -> SymPy symbol;
            scalar_rhs: scalar name -> right-hand side (reductions as ``integral(...)``).
        is_complex: whether the fields are complex-valued.
        bcs: canonical boundary specification (field, axis) -> (low, high).
    """

    def __init__(
        self,
        equations: Mapping[str, str | sp.Expr],
        params: Mapping[str, float] | None = None,
        domain: Sequence[tuple[float, float]] = ((0.0, 1.0),),
        bcs="periodic",
        ic: Mapping[str, object] | None = None,
        fields: Sequence[str] | None = None,
        name: str | None = None,
        dtype: str | None = None,
        noise: Mapping[str, str | sp.Expr | float] | None = None,
        geometry: str = "cartesian",
        scalars: Sequence[str] = (),
    ):
        started = time.perf_counter()
        if dtype not in (None, "float64", "complex128"):
            raise SystemDefinitionError(f"dtype: 'float64' or 'complex128', got {dtype!r}")
        if not isinstance(equations, Mapping) or not equations:
            raise SystemDefinitionError("equations: give a dict of field name -> right-hand side")
        self.name = name or "system"
        self.geometry = get_geometry(geometry)
        self.domain = _check_domain(domain, self.geometry.axes)
        check_domain_for(self.geometry, self.domain)
        self.dim = len(self.domain)
        self.axes = axis_names(self.geometry, self.dim)
        self.coords = tuple(sp.Symbol(a, real=True) for a in self.axes)
        self.t = TIME

        self.scalars: list[str] = check_scalar_names(scalars, equations, params)
        for s in self.scalars:
            _check_identifier(s, "scalar")
        self.scalar_symbols = {s: sp.Symbol(s, real=True) for s in self.scalars}
        names = [n for n in equations if n not in self.scalars]
        if fields is not None:
            missing = [f for f in fields if f not in equations]
            if missing:
                raise SystemDefinitionError(
                    f"field {missing[0]!r} has no equation; give equations for every field ({', '.join(fields)})"
                )
            extra = [f for f in names if f not in fields]
            if extra:
                raise SystemDefinitionError(f"equation given for {extra[0]!r}, which is not among fields {list(fields)}")
            names = list(fields)
        for n in names:
            _check_identifier(n, "field", self.axes)
        self.fields: list[str] = names

        params = dict(params or {})
        for p in params:
            _check_identifier(p, "parameter", self.axes)
            if p in self.fields:
                raise SystemDefinitionError(f"parameter {p!r} has the same name as a field")
        if not self.fields:
            raise SystemDefinitionError(
                "equations: a system needs at least one field (an equation that is not a scalar's)")
        scalar = {p: v for p, v in params.items() if not is_coefficient_value(v)}
        self.params: dict[str, float] = {p: _check_value(p, v) for p, v in scalar.items()}
        self.param_symbols = {p: sp.Symbol(p, real=True) for p in self.params}
        self.field_functions = {f: sp.Function(f, real=True)(*self.coords) for f in self.fields}
        self.coefficient_functions = {
            p: sp.Function(p, real=True)(*self.coords) for p in params if p not in self.params
        }
        self.coefficients: dict[str, object] = {
            p: self._check_coefficient(p, params[p]) for p in self.coefficient_functions
        }

        self.is_complex = False
        self._parse_equations(equations)
        if dtype == "complex128" or any(map(is_complex_expression, self.rhs.values())) or _complex_ic(self, ic):
            if dtype == "float64":
                raise SystemDefinitionError("dtype='float64', but the equations or the ic use complex numbers (I)")
            for f in self.fields:
                for part in part_names(f):
                    if part in self.fields or part in params:
                        raise SystemDefinitionError(
                            f"name {part!r} is taken: complex field {f!r} stores its parts as {' and '.join(part_names(f))}"
                        )
            # fields without the real assumption: abs(psi)**2 must not become psi**2
            self.is_complex = True
            self.field_functions = {f: sp.Function(f)(*self.coords) for f in self.fields}
            self._parse_equations(equations)
        self.scalar_rhs: dict[str, sp.Expr] = parse_scalar_equations(self, equations)
        self._check_symbols()

        bcs, second = self._second_conditions(bcs)
        orders = normal_orders(self.rhs, self.coords)
        check_radial_orders(self.geometry, orders)
        self.bcs: BoundarySpec = close_walls(
            parse_bcs(bcs, self.fields, self.axes, self._parse_bc_value),
            orders,
            second,
            self.field_functions,
            self.axes,
            set(getattr(self, "scalar_symbols", {}).values()),
        )
        if self.geometry.curvilinear and self.domain[0][0] == 0:
            self.bcs = regular_centre(self.bcs, bcs, self.fields, self.axes, self._parse_bc_value)
        check_coefficients(self.bcs, {self.t, *self.param_symbols.values()}, self.axes)
        self.ic = dict(ic) if ic is not None else None
        self.noise: dict[str, sp.Expr] = self._parse_noise(noise)
        #: seconds spent parsing and checking the equations (part of a run's compile time)
        self.parse_time_s = time.perf_counter() - started

    @property
    def dtype(self) -> str:
        """The fields' type: "complex128" for complex fields, else "float64"."""
        return "complex128" if self.is_complex else "float64"

    def real_form(self) -> PDESystem:
        """The system in real fields: each complex field ``psi`` as ``psi_real`` and ``psi_imag``.

        The equations are split symbolically (:mod:`pdeforge.symbolic.complex_fields`); the
        result carries ``complex_parts`` (complex field -> its two real field names) and
        ``complex_equations`` (the equations as written). A real system is returned as is.
        """
        if not self.is_complex:
            return self
        parts = self.__dict__.get("_real_parts")
        if parts is None:
            parts = self._real_parts = real_form_parts(self)
        new = object.__new__(type(self))
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_real_parts"})
        new.fields = list(parts["fields"])
        new.field_functions = dict(parts["field_functions"])
        new.rhs = dict(parts["rhs"])
        new.bcs = dict(parts["bcs"])
        new.equation_text = dict(parts["equation_text"])
        new.is_complex = False
        new.complex_parts = dict(parts["parts"])
        new.complex_equations = self.equations_text()
        new.ic = None
        return new

    def _parse_noise(self, noise) -> dict[str, sp.Expr]:
        if not noise:
            return {}
        if not isinstance(noise, Mapping):
            raise SystemDefinitionError("noise: give a dict of field name -> noise strength (expression)")
        out = {}
        for f, value in noise.items():
            if f not in self.fields:
                raise SystemDefinitionError(
                    f"noise: {f!r} is not a field of this system (fields: {', '.join(self.fields)})"
                )
            if self.is_complex:
                raise SystemDefinitionError("noise: complex fields take no noise terms (give noise to real fields)")
            what = f"noise of {f!r}"
            if isinstance(value, str):
                expr = parse_expression(value, self.namespace(with_operators=False), what)
            elif isinstance(value, (int, float)):
                expr = sp.Float(value)
            elif isinstance(value, sp.Basic):
                expr = self._from_sympy(value, what)
            else:
                raise SystemDefinitionError(f"{what}: expected a number or an expression, got {describe_value(value)}")
            if isinstance(expr, (sp.MatrixBase, tuple)) or expr.has(sp.Derivative) or expr.has(sp.I):
                raise SystemDefinitionError(f"{what}: must be a real scalar expression without derivatives")
            if expr != 0:
                out[f] = sp.sympify(expr)
        return out

    def _parse_equations(self, equations) -> None:
        self.equation_text: dict[str, str] = {}
        self.rhs: dict[str, sp.Expr] = {}
        for f in self.fields:
            expr = equations[f]
            what = f"equation for {f!r}"
            if isinstance(expr, str):
                self.equation_text[f] = expr.strip()
                value = parse_expression(expr, self.namespace(), what)
            else:
                value = self._from_sympy(expr, what)
                self.equation_text[f] = str(value).replace(f"({', '.join(self.axes)})", "")
            if isinstance(value, (sp.MatrixBase, tuple)) or isinstance(value, sp.logic.boolalg.Boolean):
                raise SystemDefinitionError(f"{what}: the right-hand side must be a scalar expression")
            self.rhs[f] = sp.sympify(value)

    # namespaces ---------------------------------------------------------------------------
    def namespace(self, with_fields: bool = True, with_operators: bool = True) -> Namespace:
        """The names allowed in this system's expressions."""
        symbols: dict[str, object] = {}
        groups: dict[str, list[str]] = {}
        if with_fields:
            symbols.update(self.field_functions)
            groups["fields"] = list(self.fields)
        symbols.update(self.param_symbols)
        groups["parameters"] = list(self.params)
        if with_fields and getattr(self, "scalars", None):
            symbols.update(self.scalar_symbols)
            groups["scalars"] = list(self.scalars)
        if with_fields and self.coefficient_functions:
            symbols.update(self.coefficient_functions)
            groups["coefficient fields"] = list(self.coefficients)
        symbols.update({a: c for a, c in zip(self.axes, self.coords)})
        symbols["t"] = self.t
        groups["coordinates"] = [*self.axes, "t"]
        symbols.update(CONSTANTS)
        groups["constants"] = list(CONSTANTS)
        functions = {**MATH_FUNCTIONS, **COMPLEX_FUNCTIONS}
        groups["functions"] = [*MATH_FUNCTIONS, *COMPLEX_FUNCTIONS]
        if with_operators:
            ops = make_operators(self.coords)
            if self.geometry.curvilinear:
                ops = curvilinear_operators(self.coords, self.geometry, ops)
            ops = {**ops, **REDUCTIONS}
            functions.update(ops)
            groups["operators"] = list(ops)
        return Namespace(symbols, functions, groups)

    def parse(self, text: str, what: str = "expression", with_fields: bool = True) -> sp.Expr:
        """Parse an auxiliary expression (initial condition, exact solution) in this namespace."""
        return parse_expression(text, self.namespace(with_fields, with_operators=with_fields), what)

    def _parse_bc_value(self, value, what: str) -> sp.Expr:
        """A boundary value: coordinates, t, parameters, and (ODE-PDE systems) scalars and
        ``integral``/``mean`` of the fields; fields themselves only inside a reduction."""
        if isinstance(value, str):
            expr = parse_expression(value, self.namespace(), what)
        elif isinstance(value, (int, float)):
            expr = sp.Float(value) if isinstance(value, float) else sp.Integer(value)
        elif isinstance(value, sp.Basic):
            expr = self._from_sympy(value, what)
        else:
            raise EquationParseError(f"{what}: expected a number, string or SymPy expression, got {value!r}")
        if isinstance(expr, (sp.MatrixBase, tuple)) or (
                isinstance(expr, sp.logic.boolalg.Boolean) and not isinstance(expr, sp.Symbol)):
            raise EquationParseError(f"{what}: must be a scalar expression")
        expr = sp.sympify(expr)
        outside = boundary_outside_reductions(expr)
        allowed = set(self.coords) | {self.t} | set(self.param_symbols.values()) | set(self.scalar_symbols.values())
        bad = sorted(str(s) for s in outside.free_symbols if s not in allowed and not isinstance(s, sp.Dummy))
        fields = sorted(type(f).__name__ for f in outside.atoms(sp.core.function.AppliedUndef))
        if bad or fields or outside.has(sp.Derivative):
            raise EquationParseError(
                f"{what}: may depend on coordinates, t, parameters, scalars and integral()/mean() of the fields, "
                f"not on {bad or fields or 'derivatives'} outside integral()/mean()"
            )
        for node in expr.atoms(*REDUCTION_TYPES):
            check_integrand(node, what)
        return expr

    def _second_conditions(self, bcs) -> tuple[object, SecondSpec]:
        """Split expression keys (``"laplace(u)"``, ``"d(u, x)"``: a wall's second condition) off a
        per-field dict."""
        if not isinstance(bcs, Mapping) or not any(k in self.fields or k == "*" for k in bcs):
            return bcs, {}
        plain = {k: v for k, v in bcs.items() if k in self.fields or k == "*"}
        second: SecondSpec = {}
        for key, spec in bcs.items():
            if key in plain:
                continue
            if not isinstance(key, str):
                raise BoundaryConditionError(f"bcs: key {key!r} is neither a field ({', '.join(self.fields)}) nor '*'")
            try:
                expr = self.parse(key, f"bcs key {key!r}")
            except EquationParseError:
                raise BoundaryConditionError(
                    f"bcs: key {key!r} is neither a field ({', '.join(self.fields)}), '*', nor an expression of "
                    "one field such as 'laplace(u)'"
                ) from None
            names = sorted(type(fn).__name__ for fn in expr.atoms(sp.core.function.AppliedUndef))
            if len(names) != 1:
                raise BoundaryConditionError(f"bcs: key {key!r} must be an expression of exactly one field, found {names}")
            # a first derivative along one axis, d(u, x) (the clamped pair's slope), holds on the
            # walls of that axis only; any other expression on the walls of every axis
            along = [a for a, c in enumerate(self.coords)
                     if isinstance(expr, sp.Derivative) and expr.variable_count == ((c, 1),)]
            axes = [self.axes[a] for a in along] if along else list(self.axes)
            for (f, i), pair in parse_bcs(spec, [key], axes, self._parse_bc_value).items():
                a = self.axes.index(axes[i])
                if (names[0], a) in second:
                    raise BoundaryConditionError(f"bcs: two second conditions for field {names[0]!r} ({key!r})")
                second[(names[0], a)] = (key, expr, pair)
        return plain, second

    def _from_sympy(self, expr, what: str) -> sp.Expr:
        """Rename a user's SymPy expression onto this system's symbols and field functions."""
        expr = sp.sympify(expr)
        sub: dict = {}
        names = {**{a: c for a, c in zip(self.axes, self.coords)}, "t": self.t, **self.param_symbols,
                 **getattr(self, "scalar_symbols", {})}
        for s in expr.free_symbols:
            if s.name in self.field_functions:
                sub[s] = self.field_functions[s.name]
            elif s.name in self.coefficient_functions:
                sub[s] = self.coefficient_functions[s.name]
            elif s.name in names:
                sub[s] = names[s.name]
            else:
                raise SystemDefinitionError(
                    f"{what}: unknown symbol {s.name!r} (not a field, parameter or coordinate; "
                    f"{self.namespace().allowed_text()})"
                )
        for fn in expr.atoms(sp.core.function.AppliedUndef):
            fname = type(fn).__name__
            functions = {**self.field_functions, **self.coefficient_functions}
            if fname not in functions:
                raise SystemDefinitionError(f"{what}: unknown function {fname!r}; fields are {self.fields}")
            sub[fn] = functions[fname]
        return expr.xreplace(sub) if sub else expr

    def _check_symbols(self) -> None:
        allowed = set(self.coords) | {self.t} | set(self.param_symbols.values()) | set(getattr(self, "scalar_symbols", {}).values())
        for f, expr in self.rhs.items():
            for s in expr.free_symbols:
                if s not in allowed:
                    raise SystemDefinitionError(
                        f"equation for {f!r}: symbol {s.name!r} is not a field, parameter or coordinate"
                    )
            if expr.has(sp.zoo, sp.nan):
                raise SystemDefinitionError(f"equation for {f!r}: contains an undefined value (division by zero?)")

    # information ----------------------------------------------------------------------------
    @property
    def parameter_values(self) -> dict[sp.Symbol, float]:
        """Parameter symbol -> value."""
        return {self.param_symbols[p]: v for p, v in self.params.items()}

    def equations_text(self) -> str:
        """The equations as text, one ``field_t = rhs`` per line."""
        return "\n".join(f"{f}_t = {self.equation_text[f]}" for f in [*self.fields, *getattr(self, "scalars", ())])

    def with_params(self, **values) -> PDESystem:
        """A copy with some parameter values changed (the equations are not re-parsed).

        A coefficient field takes a new array, callable or expression (same structure: the
        compiled kernels are reused); a numeric parameter takes a number.
        """
        known = [*self.params, *self.coefficients]
        unknown = [p for p in values if p not in known]
        if unknown:
            raise SystemDefinitionError(
                f"unknown parameter {unknown[0]!r}; parameters of {self.name}: {', '.join(known) or 'none'}"
            )
        check_not_fixed(self, values)
        for p, v in values.items():
            if p in self.params and is_coefficient_value(v):
                raise SystemDefinitionError(
                    f"parameter {p!r} is a number in this system, got {describe_value(v)}; to make it a "
                    "coefficient field give the array, callable or expression when creating the PDESystem"
                )
        new = object.__new__(type(self))  # keep subclasses (e.g. incompressible systems)
        new.__dict__.update(self.__dict__)
        new.params = {**self.params, **{p: _check_value(p, v) for p, v in values.items() if p in self.params}}
        new.coefficients = {
            **self.coefficients,
            **{p: new._check_coefficient(p, v) for p, v in values.items() if p in self.coefficients},
        }
        return new

    def _check_coefficient(self, name: str, value) -> object:
        """A coefficient field's value, checked as far as it can be without a grid."""
        what = f"parameter {name!r}"
        if isinstance(value, str):
            try:
                value = parse_expression(value, self.namespace(with_fields=False, with_operators=False), what)
            except EquationParseError as exc:
                raise SystemDefinitionError(
                    f"{exc} ({what} is neither a number nor an expression of the coordinates and parameters)"
                ) from None
        if isinstance(value, sp.Basic):
            expr = self._from_sympy(value, what)
            if expr.atoms(sp.core.function.AppliedUndef):
                raise SystemDefinitionError(f"{what}: a coefficient field may depend on coordinates and numeric "
                                            "parameters only, not on fields")
            value = expr
        if isinstance(value, sp.Basic):
            if value.has(sp.I):
                raise SystemDefinitionError(f"{what}: coefficient fields are real; write a complex coefficient "
                                            "as two real ones (a + I*b in the equation)")
            return value
        if callable(value):
            return value
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise SystemDefinitionError(
                f"{what}: {describe_value(value)} is not a number, an array of the grid's shape, a callable of "
                "the coordinates or an expression string"
            ) from None
        if arr.ndim != self.dim:
            raise SystemDefinitionError(
                f"{what}: an array with {arr.ndim} axes; a coefficient field on this {self.dim}-D domain needs "
                f"an array of the grid's shape ({self.dim} axes)"
            )
        if not np.all(np.isfinite(arr)):
            raise SystemDefinitionError(f"{what}: the array {describe_value(value)} contains NaN or infinite values")
        return arr

    def structure_key(self) -> str:
        """Hash of everything that shapes generated code (not parameter values or domain size)."""
        payload = {
            "fields": self.fields,
            "params": sorted(self.params),
            "coefficients": list(getattr(self, "coefficients", {})),
            "dim": self.dim,
            "geometry": self.geometry.name,
            "complex": getattr(self, "is_complex", False),
            "rhs": [sp.srepr(self.rhs[f]) for f in self.fields],
            **({"scalars": [(s, sp.srepr(self.scalar_rhs[s])) for s in self.scalars]}
               if getattr(self, "scalars", None) else {}),
            "bcs": [
                (f, a, [(b.kind, sp.srepr(b.alpha), sp.srepr(b.beta), sp.srepr(b.value))
                        + ((b.reflect,) if b.reflect else ()) + ((sp.srepr(b.second),) if b.second != 0 else ())
                        + (("extrapolate",) if b.extrapolate else ()) + (("clamped",) if b.clamped else ())
                        for b in pair])
                for (f, a), pair in sorted(self.bcs.items())
            ],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        from pdeforge.symbolic.display import plain

        return plain(self)

    def _repr_markdown_(self) -> str:
        from pdeforge.symbolic.display import markdown

        return markdown(self)

    def _repr_latex_(self) -> str:
        from pdeforge.symbolic.display import latex

        return latex(self)


def check_not_fixed(system: PDESystem, values: Mapping[str, object]) -> None:
    """Refuse a value for a parameter fixed at compile time to another value
    (``system.constants``, set by :func:`pdeforge.symbolic.constants.fix_constants`)."""
    fixed = getattr(system, "constants", {})
    for p, v in values.items():
        if p in fixed:
            try:
                same = float(v) == fixed[p]
            except (TypeError, ValueError, RuntimeError):  # a tensor with several entries, say
                same = False
            if not same:
                raise SystemDefinitionError(
                    f"parameter {p!r} was fixed to {fixed[p]!r} when the kernels were generated (constants=); "
                    f"compile again without fixing it to use {p}={v!r}"
                )


def _check_identifier(name: str, kind: str, axes: Sequence[str] = ()) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise SystemDefinitionError(f"{kind} name {name!r} is not a valid identifier (letters, digits, _; no leading _)")
    if name in RESERVED or name in axes:
        raise SystemDefinitionError(
            f"{kind} name {name!r} is reserved (coordinates, t, constants, functions and operators cannot be reused)"
        )


def _complex_ic(system: PDESystem, ic) -> bool:
    """Whether a default initial condition has complex values (strings with I, complex arrays or numbers)."""
    for value in (ic or {}).values():
        if isinstance(value, str):
            try:
                value = system.parse(value, "initial condition", with_fields=False)
            except EquationParseError:
                continue  # reported when the initial condition is used
        if isinstance(value, sp.Basic):
            if value.has(sp.I):
                return True
        elif isinstance(value, complex) or (isinstance(value, np.ndarray) and np.iscomplexobj(value)):
            return True
    return False


def is_coefficient_value(value) -> bool:
    """Whether a parameter value is a coefficient field (array, callable, expression) rather than a number."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return True
        return False
    if isinstance(value, sp.Basic):
        return not isinstance(value, sp.Number)
    if callable(value):
        return True
    return isinstance(value, (np.ndarray, list, tuple)) and np.ndim(value) > 0


def describe_value(value) -> str:
    """A short description of a value for messages (an array by its shape, never its numbers)."""
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and np.ndim(value) > 0):
        arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
        return f"an array of shape {arr.shape} ({arr.dtype})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_value(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SystemDefinitionError(f"parameter {name!r}: {describe_value(value)} is not a number") from None
    if not math.isfinite(v):
        raise SystemDefinitionError(f"parameter {name!r}: value {value!r} is not finite")
    return v


def _check_domain(domain, axes: Sequence[str] | None = None) -> tuple[tuple[float, float], ...]:
    try:
        pairs = [tuple(float(v) for v in pair) for pair in domain]
    except (TypeError, ValueError):
        raise SystemDefinitionError(f"domain: expected a list of (low, high) pairs, got {domain!r}") from None
    if not 1 <= len(pairs) <= 3:
        raise SystemDefinitionError(f"domain: 1 to 3 dimensions are supported, got {len(pairs)}")
    for axis, pair in zip(axes or AXES, pairs):
        if len(pair) != 2 or not all(math.isfinite(v) for v in pair) or pair[1] <= pair[0]:
            raise SystemDefinitionError(f"domain on axis {axis!r}: need finite low < high, got {pair}")
    return tuple(pairs)  # type: ignore[return-value]


def field_of(expr: sp.Basic) -> str | None:
    """The field name of an applied field function ``u(x, y)``, else None."""
    if isinstance(expr, sp.core.function.AppliedUndef):
        return type(expr).__name__
    return None


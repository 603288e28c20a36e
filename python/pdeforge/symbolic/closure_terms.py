"""Closure terms: named functions in the equations whose values come from code bound later.

A closure term is written like any function of the equation language, ``nu_t(d(u, x), d(u, y))``,
but its definition is not symbolic: when the system is compiled for the ``torch`` target it is
bound to a callable (typically a ``torch.nn.Module``) that maps the stacked arguments
``(..., nargs)`` to the value ``(...)`` (or ``(..., 1)``). Everything symbolic still works
around it: the finite-difference discretizer samples the arguments on the stencil (on cell
faces in flux form), CSE shares identical calls, and the chain rule gives the exact Jacobian
through :class:`ClosureDerivativeBase` terms, which the generated code evaluates with forward-mode
automatic differentiation of the bound callable.

Closure classes are interned by ``(name, nargs)`` so that equal expressions built at different
times compare equal (SymPy compares function classes by identity). Their base classes end in
"Base" because SymPy printers look up print methods only on function base classes named so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp

from pdeforge.errors import EquationParseError, SystemDefinitionError
from pdeforge.symbolic.system import RESERVED, PDESystem


class ClosureTermBase(sp.Function):
    """Base class of closure terms; subclasses are made by :func:`closure_function`."""

    closure_name: str = ""
    closure_nargs: int = 0
    is_real = True

    def fdiff(self, argindex: int = 1):
        return closure_derivative(self.closure_name, self.closure_nargs, argindex - 1)(*self.args)


class ClosureDerivativeBase(sp.Function):
    """Partial derivative of a closure term with respect to one of its arguments."""

    closure_name: str = ""
    closure_nargs: int = 0
    closure_index: int = 0
    is_real = True

    def fdiff(self, argindex: int = 1):
        raise SystemDefinitionError(
            f"second derivatives of closure {self.closure_name!r} are not available (only the Jacobian "
            "of the right-hand side, a first derivative, is generated)"
        )


_CLASSES: dict[tuple, type] = {}


def closure_function(name: str, nargs: int) -> type[ClosureTermBase]:
    """The SymPy function class of closure ``name`` taking ``nargs`` scalar arguments."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise SystemDefinitionError(f"closure name {name!r} is not a valid identifier (letters, digits, _; no leading _)")
    if not isinstance(nargs, int) or isinstance(nargs, bool) or nargs < 1:
        raise SystemDefinitionError(f"closure {name!r}: the number of arguments must be a positive int, got {nargs!r}")
    key = ("f", name, nargs)
    cls = _CLASSES.get(key)
    if cls is None:
        cls = type(name, (ClosureTermBase,), {"closure_name": name, "closure_nargs": nargs, "nargs": nargs})
        _CLASSES[key] = cls
    return cls


def closure_derivative(name: str, nargs: int, index: int) -> type[ClosureDerivativeBase]:
    """The function class of d(closure ``name``)/d(argument ``index``)."""
    key = ("d", name, nargs, index)
    cls = _CLASSES.get(key)
    if cls is None:
        cls = type(
            f"{name}_d{index}",
            (ClosureDerivativeBase,),
            {"closure_name": name, "closure_nargs": nargs, "closure_index": index, "nargs": nargs},
        )
        _CLASSES[key] = cls
    return cls


def closure_names(exprs: Iterable[sp.Basic]) -> dict[str, int]:
    """Closure name -> number of arguments, for every closure term (or derivative) in ``exprs``."""
    found: dict[str, int] = {}
    for e in exprs:
        for atom in sp.sympify(e).atoms(ClosureTermBase, ClosureDerivativeBase):
            found[atom.closure_name] = atom.closure_nargs
    return dict(sorted(found.items()))


def system_closures(system) -> dict[str, int]:
    """Closure name -> number of arguments used by the right-hand sides of ``system``."""
    return closure_names(system.rhs.values())


def parser_functions(closures: Mapping[str, int]) -> dict:
    """Namespace entries (name -> callable on SymPy arguments) for the equation parser."""
    functions = {}
    for name, nargs in closures.items():
        cls = closure_function(name, nargs)

        def call(*args, _cls=cls, _name=name, _n=nargs):
            if len(args) != _n:
                raise EquationParseError(f"closure {_name}() takes {_n} argument(s), got {len(args)}")
            for a in args:
                if isinstance(a, (sp.MatrixBase, tuple)) or isinstance(a, sp.logic.boolalg.Boolean):
                    raise EquationParseError(f"closure {_name}() takes scalar arguments (not vectors or conditions)")
            return _cls(*[sp.sympify(a) for a in args])

        functions[name] = call
    return functions


class ClosureSystem(PDESystem):
    """A :class:`~pdeforge.PDESystem` whose equations may call closure terms.

    Args:
        equations: field -> right-hand side (strings may call the closures by name).
        closures: closure name -> number of scalar arguments, e.g. ``{"nu_t": 4}``.
        **kwargs: everything else :class:`~pdeforge.PDESystem` takes (params, domain, bcs, ...).

    Compile it with ``compile_system(system, target="torch", closures={"nu_t": module})``
    or ``solve(system, ..., backend="torch", closures=...)``.
    """

    def __init__(self, equations, closures: Mapping[str, int], **kwargs):
        if not isinstance(closures, Mapping) or not closures:
            raise SystemDefinitionError("closures: give a dict of closure name -> number of arguments")
        clash = [c for c in closures if c in RESERVED or c in equations or c in dict(kwargs.get("params") or {})]
        if clash:
            raise SystemDefinitionError(
                f"closure name {clash[0]!r} is already a field, parameter or reserved name of the language"
            )
        self.closures = {name: int(n) for name, n in closures.items()}
        self._closure_functions = parser_functions(self.closures)
        super().__init__(equations, **kwargs)

    def namespace(self, with_fields: bool = True, with_operators: bool = True):
        ns = super().namespace(with_fields, with_operators)
        if with_fields:
            ns.functions.update(self._closure_functions)
            ns.groups["closures"] = list(self.closures)
        return ns


def freeze_closure_calls(exprs: Iterable[sp.Expr]) -> tuple[list[sp.Expr], dict]:
    """Replace every closure call by a placeholder symbol (the same one for equal calls).

    Rewrites (expand, collect, factor) applied to the frozen expressions cannot change the
    arguments of a call differently in different equations, so after
    ``expr.xreplace(restore)`` equal calls are still equal and CSE evaluates each once.

    Returns:
        The frozen expressions and the placeholder -> call mapping that restores them.
    """
    exprs = [sp.sympify(e) for e in exprs]
    calls = sorted(
        set().union(*[e.atoms(ClosureTermBase, ClosureDerivativeBase) for e in exprs]), key=sp.default_sort_key
    )
    if not calls:
        return exprs, {}
    placeholders = {call: sp.Dummy(f"closure_{call.closure_name}_{i}", real=True) for i, call in enumerate(calls)}
    # a call inside another call's arguments is frozen there too
    restore = {ph: call.func(*[a.xreplace(placeholders) for a in call.args]) for call, ph in placeholders.items()}
    return [e.xreplace(placeholders) for e in exprs], restore

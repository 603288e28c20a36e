"""Safe parsing of equation strings into SymPy expressions.

The text is parsed by :func:`ast.parse` (which only builds a syntax tree and executes nothing),
then every node is checked against an allow-list and translated to SymPy by walking the tree.
No ``eval``, ``exec`` or ``sympy.parse_expr`` ever sees user text. Names resolve only through
the namespace the caller passes in (fields, parameters, coordinates, functions, operators), so
attribute access, subscripts, imports, lambdas, dunder names and calls of anything outside the
allow-list are rejected with a message that names the offending token.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from pdeforge.errors import EquationParseError

#: Longest equation text accepted; longer input is almost certainly not a PDE right-hand side.
MAX_LENGTH = 20_000
#: Largest magnitude of a numeric exponent (``9**9**9`` would otherwise hang exact arithmetic).
MAX_EXPONENT = 1000
#: Most decimal digits of an exact number, written or computed (``(2**1000)**1000`` has 301030).
MAX_DIGITS = 1000
#: Deepest nesting of the syntax tree; a chain ``a + b - c + ...`` (or ``a*b/c*...``) is one level.
MAX_DEPTH = 100

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_COMPARE = {
    ast.Lt: sp.StrictLessThan,
    ast.LtE: sp.LessThan,
    ast.Gt: sp.StrictGreaterThan,
    ast.GtE: sp.GreaterThan,
}
_SYNTAX_HELP = {
    ast.BitXor: "'^' is not a power here: write '**' (u**2)",
    ast.Attribute: "attribute access ('a.b') is not allowed",
    ast.Subscript: "subscripts ('a[i]') are not allowed",
    ast.Lambda: "lambda expressions are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.keyword: "keyword arguments are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.List: "list literals are not allowed: use a tuple inside Piecewise",
    ast.Set: "set literals are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
    ast.IfExp: "conditional expressions are not allowed: use Piecewise((a, cond), (b, True))",
    ast.Await: "await is not allowed",
}


@dataclass
class Namespace:
    """What names may appear in an expression and what each one means.

    Attributes:
        symbols: name -> SymPy object (field, parameter, coordinate, constant).
        functions: name -> callable taking SymPy arguments (math functions, differential
            operators). Only these names may be called.
        groups: name of a group ("fields", "parameters", ...) -> names, used in error messages
            to list what is allowed.
    """

    symbols: dict[str, object] = field(default_factory=dict)
    functions: dict[str, Callable] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def allowed_text(self) -> str:
        """One-line description of every allowed name, by group."""
        parts = [f"{group} {', '.join(names)}" for group, names in self.groups.items() if names]
        return "; ".join(parts)


def parse_expression(text: str, namespace: Namespace, what: str = "expression") -> sp.Basic:
    """Parse ``text`` into a SymPy object using only the names in ``namespace``.

    Args:
        text: the expression, in Python syntax (``**`` for powers).
        namespace: the allowed names and what they stand for.
        what: a description of the input for error messages, e.g. ``"equation for 'u'"``.

    Returns:
        The SymPy expression (or matrix, for vector-valued expressions).

    Raises:
        EquationParseError: on syntax errors and on anything outside the allow-list.
    """
    if not isinstance(text, str):
        raise EquationParseError(f"{what}: expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise EquationParseError(f"{what}: longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise EquationParseError(f"{what}: empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise EquationParseError(
            f"{what}: syntax error at column {col + 1} near {text.strip()[col:col + 12]!r} ({exc.msg})"
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:  # the parser's own limits on nesting and size
        raise EquationParseError(f"{what}: too deeply nested or too large to parse ({type(exc).__name__})") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise EquationParseError(f"{what}: nested more than {MAX_DEPTH} levels deep")
    return _Translator(text.strip(), namespace, what).visit(tree.body)


def _chain_family(node: ast.AST):
    """Sums/differences and products/quotients: a left-deep chain of one family is one level."""
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return "add"
        if isinstance(node.op, (ast.Mult, ast.Div)):
            return "mul"
    return None


def _depth(root: ast.AST) -> int:
    """Nesting depth of a syntax tree, without recursion (a deep tree must not exhaust the stack)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        family = _chain_family(node)
        for child in ast.iter_child_nodes(node):
            same_chain = family is not None and child is node.left and _chain_family(child) == family
            stack.append((child, depth if same_chain else depth + 1))
    return deepest


def _digits(n: int) -> int:
    """Decimal digits of ``n`` (counted exactly up to 4 MAX_DIGITS bits, beyond which it is too many)."""
    n = abs(int(n))
    return len(str(n)) if n.bit_length() <= 4 * MAX_DIGITS else 2 * MAX_DIGITS


def _too_many_digits(value) -> bool:
    """Whether an exact SymPy number has more than MAX_DIGITS digits (numerator or denominator)."""
    return isinstance(value, sp.Rational) and max(_digits(value.p), _digits(value.q)) > MAX_DIGITS


class _Translator:
    def __init__(self, text: str, namespace: Namespace, what: str):
        self.text = text
        self.ns = namespace
        self.what = what

    def fail(self, node: ast.AST, message: str) -> EquationParseError:
        snippet = ast.get_source_segment(self.text, node) or type(node).__name__
        col = getattr(node, "col_offset", 0) + 1
        return EquationParseError(f"{self.what}: {message} at column {col}: {snippet!r}")

    def visit(self, node: ast.AST):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            reason = _SYNTAX_HELP.get(type(node))
            if reason is None:
                reason = f"{type(node).__name__} syntax is not allowed"
            raise self.fail(node, reason)
        return method(node)

    # leaves -------------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return sp.true if value else sp.false
        if isinstance(value, int):
            if _digits(value) > MAX_DIGITS:
                raise self.fail(node, f"number with more than {MAX_DIGITS} digits")
            return sp.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(node, "number too large for a float (it would be infinite)")
            return sp.Float(value)
        raise self.fail(node, f"constant of type {type(value).__name__} is not allowed (only numbers)")

    def visit_Name(self, node: ast.Name):
        name = node.id
        if name.startswith("__") or name.endswith("__"):
            raise self.fail(node, "dunder names are not allowed")
        if name in self.ns.symbols:
            return self.ns.symbols[name]
        if name in self.ns.functions:
            raise self.fail(node, f"'{name}' is a function and must be called, e.g. {name}(u)")
        raise self.fail(
            node,
            f"unknown name '{name}' (allowed: {self.ns.allowed_text()})",
        )

    # operators ----------------------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp):
        # a left-deep chain (a + b - c + ...) is folded in a loop: its length must not cost stack
        chain = [node]
        family = _chain_family(node)
        while family is not None and _chain_family(chain[-1].left) == family:
            chain.append(chain[-1].left)
        value = self.visit(chain[-1].left)
        for link in reversed(chain):
            value = self._checked(link, self._binop(link, value, self.visit(link.right)))
        return value

    def _checked(self, node: ast.AST, value):
        if _too_many_digits(value):
            raise self.fail(node, f"the value has more than {MAX_DIGITS} digits")
        if isinstance(value, sp.Pow) and isinstance(value.exp, sp.Number) and abs(value.exp) > MAX_EXPONENT:
            raise self.fail(node, f"exponent larger than {MAX_EXPONENT} in magnitude")
        return value

    def _binop(self, node: ast.BinOp, left, right):
        op = type(node.op)
        if op is ast.Pow:
            if isinstance(right, sp.Number) and abs(right) > MAX_EXPONENT:
                raise self.fail(node, f"exponent larger than {MAX_EXPONENT} in magnitude")
            if isinstance(left, sp.MatrixBase) or isinstance(right, sp.MatrixBase):
                raise self.fail(node, "powers of vectors are not defined")
            if (isinstance(left, sp.Rational) and isinstance(right, sp.Rational) and abs(left) != 1 and left != 0
                    and abs(right) * (max(_digits(left.p), _digits(left.q)) - 1) > MAX_DIGITS):
                raise self.fail(node, f"the value has more than {MAX_DIGITS} digits")
            return left**right
        if op in _BINOPS:
            if op is ast.Div and isinstance(right, sp.MatrixBase):
                raise self.fail(node, "division by a vector is not defined")
            if op in (ast.Add, ast.Sub) and (
                isinstance(left, sp.MatrixBase) != isinstance(right, sp.MatrixBase)
            ):
                raise self.fail(node, "cannot add a vector and a scalar")
            try:
                return _BINOPS[op](left, right)
            except (TypeError, sp.ShapeError) as exc:
                raise self.fail(node, f"invalid operands ({exc})") from None
        reason = _SYNTAX_HELP.get(op, f"operator {op.__name__} is not allowed (use + - * / **)")
        raise self.fail(node, reason)

    def visit_UnaryOp(self, node: ast.UnaryOp):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not) and isinstance(operand, sp.MatrixBase):
            raise self.fail(node, "'not' of a vector is not defined")
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return sp.Not(operand)
        raise self.fail(node, f"unary operator {type(node.op).__name__} is not allowed")

    def visit_Compare(self, node: ast.Compare):
        left = self.visit(node.left)
        terms = []
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            if type(op) not in _COMPARE:
                raise self.fail(node, "only <, <=, >, >= comparisons are allowed")
            terms.append(_COMPARE[type(op)](left, right))
            left = right
        return sp.And(*terms) if len(terms) > 1 else terms[0]

    def visit_BoolOp(self, node: ast.BoolOp):
        values = [self.visit(v) for v in node.values]
        return sp.And(*values) if isinstance(node.op, ast.And) else sp.Or(*values)

    def visit_Tuple(self, node: ast.Tuple):
        return tuple(self.visit(e) for e in node.elts)

    def visit_Call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            raise self.fail(node.func, "only plain function names may be called")
        name = node.func.id
        if name.startswith("__"):
            raise self.fail(node.func, "dunder names are not allowed")
        if name not in self.ns.functions:
            raise self.fail(
                node.func,
                f"'{name}' is not an allowed function (allowed: {self.ns.allowed_text()})",
            )
        if node.keywords:
            raise self.fail(node.keywords[0], "keyword arguments are not allowed")
        args = [self.visit(a) for a in node.args]
        try:
            return self.ns.functions[name](*args)
        except EquationParseError:
            raise
        except (TypeError, ValueError, sp.ShapeError) as exc:
            raise self.fail(node, f"invalid call of {name}(): {exc}") from None



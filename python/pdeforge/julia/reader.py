"""Julia expression text -> SymPy, through pdeforge's safe parser.

Text that comes back from Julia (Symbolics' simplified expressions, what
:class:`~pdeforge.julia.printer.JuliaPrinter` wrote, equations of an exported
script) is never evaluated. It is tokenized and parsed here by a small precedence-climbing
parser that follows Julia's operator precedences (``-x^2 == -(x^2)``, ``1/2x == 1/(2x)``,
``a//b`` binding tighter than ``*``, right-associative ``^``), translated token by token into
the allow-listed Python syntax of the equation language (``^`` -> ``**``, ``//`` -> ``/``,
``&``/``&&`` -> ``and``, ``ifelse``/``? :`` -> ``Piecewise``, ``heaviside`` -> ``Heaviside``,
``Differential(x)(f)`` -> ``d(f, x)``, ``u(t, x)`` -> ``u``), and handed to the allow-list
translator of :mod:`pdeforge.symbolic.parser`, which resolves every name through the caller's
namespace only.
"""

from __future__ import annotations

import ast
import re
import sys
from contextlib import contextmanager
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sympy as sp

from pdeforge.errors import EquationParseError
from pdeforge.symbolic.parser import MAX_LENGTH, Namespace, _Translator

#: Module prefixes accepted in qualified names (``SpecialFunctions.erf`` reads as ``erf``).
QUALIFIERS = frozenset({"Base", "NaNMath", "SpecialFunctions", "Symbolics", "SymbolicUtils", "PDEForge"})
#: Julia function name -> equation-language function name (same name when absent).
FUNCTION_NAMES = {"abs": "abs", "min": "min", "max": "max", "heaviside": "Heaviside"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[^\W\d]\w*)
  | (?P<op>//|==|!=|<=|>=|&&|\|\||\.\*|\./|\.\^|\.\+|\.-|[-+*/^<>(),?:!&|.≤≥≠])
    """,
    re.VERBOSE,
)

# binding powers, after Julia's precedence table
_BINARY = {
    "||": 2, "&&": 3,
    "<": 6, "<=": 6, ">": 6, ">=": 6, "==": 6, "!=": 6, "≤": 6, "≥": 6, "≠": 6,
    "+": 9, "-": 9, "|": 9, ".+": 9, ".-": 9,
    "*": 11, "/": 11, "&": 11, ".*": 11, "./": 11,
    "//": 12,
    "^": 15, ".^": 15,
}
_COMPARISON = {"<", "<=", ">", ">=", "==", "!=", "≤", "≥", "≠"}
_UNARY_BP = 13
_JUXTAPOSE_BP = 14  # 2x^2 == 2*(x^2), 1/2x == 1/(2x)
_CALL_BP = 16


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str, what: str) -> list[_Tok]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise EquationParseError(f"{what}: unexpected character {text[pos]!r} at column {pos + 1} of Julia text")
        kind = m.lastgroup
        if kind != "space":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


class _Parser:
    """Precedence climbing over Julia tokens; nodes are small tuples."""

    def __init__(self, text: str, what: str):
        self.text = text
        self.what = what
        self.tokens = _tokenize(text, what)
        self.i = 0

    def fail(self, tok: _Tok, message: str) -> EquationParseError:
        return EquationParseError(f"{self.what}: {message} at column {tok.pos + 1} of Julia text {self.text[:60]!r}")

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.tok
        if text is not None and tok.text != text:
            raise self.fail(tok, f"expected {text!r}, found {tok.text or 'the end'!r}")
        self.i += 1
        return tok

    def parse(self):
        node = self.expression(0)
        if self.tok.kind != "end":
            raise self.fail(self.tok, f"unexpected {self.tok.text!r}")
        return node

    def expression(self, min_bp: int):
        left = self.prefix()
        while True:
            tok = self.tok
            if tok.kind == "op" and tok.text == "?":
                if min_bp > 1:
                    break
                self.take()
                yes = self.expression(1)
                self.take(":")
                no = self.expression(1)
                left = ("ternary", left, yes, no)
                continue
            if tok.kind == "op" and tok.text == "(":
                if left[0] == "num":  # 2(x + 1): juxtaposition
                    if _JUXTAPOSE_BP <= min_bp:
                        break
                    left = ("bin", "*", left, self.expression(_JUXTAPOSE_BP))
                    continue
                if _CALL_BP <= min_bp:
                    break
                left = ("call", left, self.arguments())
                continue
            if tok.kind == "name" and left[0] == "num":  # 2x
                if _JUXTAPOSE_BP <= min_bp:
                    break
                left = ("bin", "*", left, self.expression(_JUXTAPOSE_BP))
                continue
            if tok.kind == "op" and tok.text == "." and left[0] == "name":  # Module.name
                self.take()
                name = self.take()
                if name.kind != "name":
                    raise self.fail(name, "expected a name after '.'")
                if left[1] not in QUALIFIERS:
                    raise self.fail(tok, f"qualified name {left[1]}.{name.text} is not allowed")
                left = ("name", name.text)
                continue
            if tok.kind != "op" or tok.text not in _BINARY:
                break
            bp = _BINARY[tok.text]
            if bp <= min_bp:
                break
            self.take()
            if tok.text in ("^", ".^"):
                right = self.expression(bp - 1)  # right-associative
            else:
                right = self.expression(bp)
            if tok.text in _COMPARISON:
                if left[0] == "cmp" and not left[4]:
                    left = ("cmp", left[1] + [tok.text], left[2] + [right], left[3], False)
                else:
                    left = ("cmp", [tok.text], [right], left, False)
                continue
            left = ("bin", tok.text, left, right)
        if left[0] == "cmp":
            left = left[:4] + (True,)  # closed: a parenthesized comparison does not chain on
        return left

    def prefix(self):
        tok = self.take()
        if tok.kind == "number":
            return ("num", tok.text)
        if tok.kind == "name":
            return ("name", tok.text)
        if tok.kind == "op" and tok.text in ("-", "+", "!"):
            return ("unary", tok.text, self.expression(_UNARY_BP))
        if tok.kind == "op" and tok.text == "(":
            inner = self.expression(0)
            self.take(")")
            return ("paren", inner)
        raise self.fail(tok, f"unexpected {tok.text or 'end of text'!r}")

    def arguments(self) -> list:
        self.take("(")
        args = []
        if self.tok.text != ")":
            while True:
                args.append(self.expression(0))
                if self.tok.text == ",":
                    self.take()
                    continue
                break
        self.take(")")
        return args


_PY_BINARY = {
    "+": "+", ".+": "+", "-": "-", ".-": "-", "*": "*", ".*": "*", "/": "/", "./": "/", "//": "/",
    "^": "**", ".^": "**", "&": "and", "&&": "and", "|": "or", "||": "or",
}
_PY_COMPARE = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "≤": "<=", "≥": ">="}


class _Emitter:
    """Julia syntax tree -> Python text of the equation language (fully parenthesized)."""

    def __init__(self, what: str, fields: set[str], coordinates: set[str], operators: Mapping[str, tuple[str, int]]):
        self.what = what
        self.fields = fields
        self.coordinates = coordinates
        self.operators = dict(operators)

    def fail(self, message: str) -> EquationParseError:
        return EquationParseError(f"{self.what}: {message}")

    def emit(self, node) -> str:
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "name":
            return self.name(node[1])
        if kind == "paren":
            return self.emit(node[1])
        if kind == "unary":
            op = {"-": "-", "+": "+", "!": "not "}[node[1]]
            return f"({op}{self.emit(node[2])})"
        if kind == "bin":
            return self.binary(node)
        if kind == "cmp":
            return self.comparison(node)
        if kind == "ternary":
            return self.piecewise(node)
        if kind == "call":
            return self.call(node[1], node[2])
        raise self.fail(f"cannot read {kind}")

    def name(self, name: str) -> str:
        if name in ("pi", "π"):
            return "pi"
        if name == "ℯ":
            return "E"
        if name in ("true", "false"):
            return name.capitalize()
        if name in ("Inf", "NaN"):
            raise self.fail(f"{name} is not a finite value; the expression cannot be read back")
        return name

    def binary(self, node) -> str:
        op = _PY_BINARY[node[1]]
        if op in ("+", "*", "and", "or"):
            # flatten left-nested chains: Python's parser limits parenthesis nesting to 200
            terms = []
            cur = node
            while cur[0] == "bin" and _PY_BINARY[cur[1]] == op:
                terms.append(cur[3])
                cur = _strip(cur[2])
            terms.append(cur)
            return "(" + f" {op} ".join(self.emit(t) for t in reversed(terms)) + ")"
        return f"({self.emit(node[2])} {op} {self.emit(node[3])})"

    def comparison(self, node) -> str:
        ops, rights, first = node[1], node[2], node[3]
        parts = []
        left = self.emit(first)
        for op, right_node in zip(ops, rights):
            right = self.emit(right_node)
            if op == "==":
                parts.append(f"(({left} <= {right}) and ({left} >= {right}))")
            elif op in ("!=", "≠"):
                parts.append(f"(({left} < {right}) or ({left} > {right}))")
            else:
                parts.append(f"({left} {_PY_COMPARE[op]} {right})")
            left = right
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    def piecewise(self, node) -> str:
        pairs = []
        while True:
            cond, yes, no = node[1], node[2], node[3]
            pairs.append(f"({self.emit(yes)}, {self.emit(cond)})")
            node = _strip(no)
            if node[0] == "ternary":
                continue
            if node[0] == "call" and _callee_name(node[1]) == "ifelse" and len(node[2]) == 3:
                node = ("ternary", *node[2])
                continue
            break
        if not (node[0] == "name" and node[1] == "NaN"):  # NaN: undefined outside the conditions
            pairs.append(f"({self.emit(node)}, True)")
        return "Piecewise(" + ", ".join(pairs) + ")"

    def call(self, callee, args) -> str:
        callee = _strip(callee)
        derivative = self.derivative_operator(callee)
        if derivative is not None:
            if len(args) != 1:
                raise self.fail("a Differential operator takes one argument")
            var, order = derivative
            return f"d({self.emit(args[0])}, {var}, {order})" if order > 1 else f"d({self.emit(args[0])}, {var})"
        if callee[0] != "name":
            raise self.fail("only named functions and Differential operators may be called")
        name = callee[1]
        if name == "ifelse":
            if len(args) != 3:
                raise self.fail("ifelse takes (condition, value, otherwise)")
            return self.piecewise(("ternary", *args))
        if name == "stencil":
            return "stencil(" + ", ".join(self.emit(a) for a in args) + ")"
        if name in self.fields:
            names = [_strip(a) for a in args]
            if not all(n[0] == "name" and (n[1] in self.coordinates or n[1] == "t") for n in names):
                raise self.fail(f"field {name} is evaluated at a point ({len(args)} arguments); only u(t, x, ...) reads back")
            return name
        if name == "inv" and len(args) == 1:
            return f"(1 / {self.emit(args[0])})"
        if name == "exp" and len(args) == 1 and _strip(args[0]) == ("num", "1"):
            return "E"
        return FUNCTION_NAMES.get(name, name) + "(" + ", ".join(self.emit(a) for a in args) + ")"

    def derivative_operator(self, callee) -> tuple[str, int] | None:
        """(coordinate, order) if ``callee`` is ``Differential(x)``, ``Differential(x)^n`` or an alias."""
        if callee[0] == "name" and callee[1] in self.operators:
            return self.operators[callee[1]]
        order = 1
        if callee[0] == "bin" and callee[1] in ("^", ".^"):
            power = _strip(callee[3])
            if power[0] != "num" or not power[1].isdigit():
                return None
            order = int(power[1])
            callee = _strip(callee[2])
        if callee[0] == "call" and _callee_name(callee[1]) == "Differential" and len(callee[2]) == 1:
            var = _strip(callee[2][0])
            if var[0] != "name" or var[1] not in self.coordinates:
                raise self.fail("Differential(...) must name a spatial coordinate")
            return var[1], order
        return None


def _strip(node):
    while node[0] == "paren":
        node = node[1]
    return node


def _callee_name(node) -> str | None:
    node = _strip(node)
    return node[1] if node[0] == "name" else None


def julia_to_python(
    text: str,
    what: str = "Julia expression",
    fields: Iterable[str] = (),
    coordinates: Iterable[str] = ("x", "y", "z"),
    operators: Mapping[str, tuple[str, int]] | None = None,
) -> str:
    """Translate Julia expression text into the Python syntax of the equation language.

    Args:
        text: the Julia text.
        what: description of the text for error messages.
        fields: field names; ``u(t, x, y)`` reads as the field ``u``.
        coordinates: names of the spatial coordinates (arguments of ``Differential``).
        operators: named derivative operators, e.g. ``{"Dxx": ("x", 2)}``.
    """
    if not isinstance(text, str) or not text.strip():
        raise EquationParseError(f"{what}: empty Julia text")
    with _recursion_headroom(text.count("(")):
        tree = _Parser(text.strip(), what).parse()
        return _Emitter(what, set(fields), set(coordinates), operators or {}).emit(tree)


@contextmanager
def _recursion_headroom(depth: int):
    """Room for the recursive descent over machine-written text nested ``depth`` deep."""
    old = sys.getrecursionlimit()
    need = 8 * depth + 1000
    if need > old:
        sys.setrecursionlimit(min(need, 100_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def parse_julia(
    text: str,
    namespace: Namespace,
    what: str = "Julia expression",
    fields: Iterable[str] = (),
    coordinates: Iterable[str] = ("x", "y", "z"),
    operators: Mapping[str, tuple[str, int]] | None = None,
) -> sp.Basic:
    """Read Julia expression text into SymPy, resolving names only through ``namespace``.

    The Julia text is translated by :func:`julia_to_python`, then checked and converted by the
    allow-list translator of the equation language; nothing is evaluated.

    Raises:
        EquationParseError: on syntax outside the supported Julia subset or unknown names.
    """
    python = julia_to_python(text, what, fields, coordinates, operators)
    if len(text) > 50 * MAX_LENGTH:
        raise EquationParseError(f"{what}: Julia text longer than {50 * MAX_LENGTH} characters")
    try:
        tree = ast.parse(python, mode="eval")
    except SyntaxError as exc:  # a translation bug, not the user's: say what was produced
        raise EquationParseError(f"{what}: could not read the translated text ({exc.msg})") from None
    # the same allow-list walk as parse_expression, without its length limit: machine-written
    # Julia (simplified stencils) is longer than anything a person types
    with _recursion_headroom(python.count("(")):
        return _Translator(python, namespace, what).visit(tree.body)

"""A binding check of Julia source over its tree-sitter-julia parse: is every name bound?

Julia cannot run here, so an unbound name (a parameter that was never passed, a function a
package does not export) would surface only as an ``UndefVarError`` on a machine with Julia.
:func:`unbound_names` resolves every identifier of a source the way Julia's scoping does, in a
simplified but conservative form:

* a function's arguments (positional, keyword, ``where`` type parameters) and every name
  assigned anywhere in its body are its locals (``for`` and comprehension variables, ``do`` and
  ``->`` arguments, ``catch`` variables included); nested functions see their parents' locals;
* top-level definitions (functions, ``const``, assignments, ``struct``, ``@variables``,
  ``@parameters``, ``@independent_variables``, ``@named``) are globals; at top level a name must
  be defined *before* the statement that uses it, inside functions anywhere at top level;
* ``using P`` makes visible what P exports, transitively through ``@reexport`` (the
  ``visible_after_using`` lists of ``tests/julia/data/upstream_exports.json``, extracted from the
  upstream sources at the declared versions); ``using P: a, b`` makes visible exactly a and b,
  each of which P must export or declare public; Base and Core exports are always visible;
* ``P.name`` must be exported or public in P (or one of the few documented internals listed in
  :data:`DOCUMENTED_INTERNALS`, each with its upstream line), where P is a package the source
  loaded with a plain ``using P``.

Field names (``a.b`` of a value), keyword names in calls, quoted symbols (``:a``) and the
placeholder ``..`` of ``@variables u(..)`` are not uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from julia_helpers import julia_parser

DATA = Path(__file__).resolve().parent / "data" / "upstream_exports.json"

#: qualified names that are neither exported nor declared public upstream but documented or
#: defined as API at the declared versions (module, name) -> where
DOCUMENTED_INTERNALS = {
    ("RuntimeGeneratedFunctions", "init"): "RuntimeGeneratedFunctions 0.5.25 src/RuntimeGeneratedFunctions.jl:371-392 "
    "(docstring: 'Call `init` once at module top level')",
    ("Symbolics", "MultithreadedForm"): "Symbolics 7.36.0 src/build_function.jl:55 `const MultithreadedForm = ShardedForm{true}`",
    ("Base", "include"): "Julia Base.include(m::Module, path) (documented in the manual, Base.include)",
    ("Meta", "parse"): "Julia Meta.parse(str; raise = true) (documented in the manual, Base.Meta)",
}
#: Julia keywords and literals tree-sitter may hand over as identifiers
KEYWORDS = frozenset("true false nothing missing end begin".split())
#: macros whose arguments declare variables (ModelingToolkit/Symbolics)
DECLARING_MACROS = frozenset({"@variables", "@parameters", "@independent_variables"})
FUNCTION_NODES = frozenset({"function_definition", "arrow_function_expression", "do_clause", "macro_definition"})


def exports() -> dict:
    """The ``packages`` table of the upstream export data."""
    return json.loads(DATA.read_text())["packages"]


@dataclass
class Unbound:
    """One name that does not resolve: where, which, and why."""

    line: int
    column: int
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column} {self.name}: {self.reason}"


@dataclass
class _Scope:
    names: set[str] = field(default_factory=set)
    parent: _Scope | None = None

    def has(self, name: str) -> bool:
        scope = self
        while scope is not None:
            if name in scope.names:
                return True
            scope = scope.parent
        return False


def _text(node) -> str:
    return node.text.decode()


def _named(node) -> list:
    return [c for c in node.children if c.is_named and c.type not in ("line_comment", "block_comment")]


class _Checker:
    def __init__(self, packages: dict, predefined: set[str]):
        self.packages = packages
        self.always = set(packages["Base"]["exports"]) | set(packages["Core"]["exports"]) | {"Base", "Core", "include", "eval"}
        self.visible: set[str] = set(self.always) | predefined
        self.modules: set[str] = {"Base", "Core", "Meta"}
        self.globals_at: dict[str, int] = {}
        self.problems: list[Unbound] = []

    # -- imports -------------------------------------------------------------------------
    def package(self, name: str, node) -> dict | None:
        entry = self.packages.get(name)
        if entry is None:
            self.report(node, name, "not a package of the upstream export data (tests/julia/data)")
        return entry

    def using(self, node) -> None:
        parts = _named(node)
        for part in parts:
            if part.type == "selected_import":
                head, *names = _named(part)
                entry = self.package(_text(head), head)
                for n in names:
                    name = _text(n)
                    if entry is not None and name not in entry["exports"] + entry.get("public_not_exported", []) + entry["visible_after_using"]:
                        self.report(n, name, f"{_text(head)} neither exports nor declares it public")
                    self.visible.add(name)
            elif part.type in ("identifier", "scoped_identifier"):
                name = _text(part)
                entry = self.package(name, part)
                if entry is not None:
                    self.visible |= set(entry["visible_after_using"]) | {name.split(".")[-1]}
                    self.modules.add(name)
                    for sub in entry.get("reexports", []):
                        self.modules.add(sub)

    # -- reporting -----------------------------------------------------------------------
    def report(self, node, name: str, reason: str) -> None:
        self.problems.append(Unbound(node.start_point[0] + 1, node.start_point[1] + 1, name, reason))

    def resolve(self, node, name: str, scope: _Scope, toplevel_pos: int | None) -> None:
        if name in KEYWORDS or scope.has(name) or name in self.visible:
            return
        if name in self.globals_at:
            if toplevel_pos is not None and self.globals_at[name] >= toplevel_pos:
                self.report(node, name, "used at top level before it is defined")
            return
        self.report(node, name, "not an argument, local, definition, Base name or export of a loaded package")

    # -- definitions ---------------------------------------------------------------------
    def targets(self, node) -> list:
        """Identifier nodes an assignment left-hand side binds."""
        if node.type == "identifier":
            return [node]
        if node.type in ("tuple_expression", "open_tuple", "parenthesized_expression"):
            return [t for c in _named(node) for t in self.targets(c)]
        if node.type == "typed_expression":
            return self.targets(_named(node)[0])
        if node.type == "splat_expression":
            return self.targets(_named(node)[0])
        return []

    def function_name(self, lhs):
        """The name node a short or long function definition defines (None for ``Base.f``)."""
        node = lhs
        while node.type in ("where_expression", "typed_expression"):
            node = _named(node)[0]
        if node.type == "call_expression":
            head = _named(node)[0]
            return head if head.type == "identifier" else None
        return None

    def is_short_function(self, node) -> bool:
        lhs = _named(node)[0]
        while lhs.type in ("where_expression", "typed_expression"):
            lhs = _named(lhs)[0]
        return lhs.type == "call_expression"

    def declared(self, macro_args) -> list:
        """Names declared by ``@variables a b(..) c = 1`` and the like."""
        out = []
        for arg in _named(macro_args):
            if arg.type == "identifier":
                out.append(arg)
            elif arg.type == "call_expression" and _named(arg)[0].type == "identifier":
                out.append(_named(arg)[0])
            elif arg.type == "assignment":
                out += self.targets(_named(arg)[0])
        return out

    def collect_globals(self, root) -> None:
        """Top-level names and the index of the statement that first defines each."""
        for pos, stmt in enumerate(self.statements(root)):
            for name in self.defines(stmt):
                self.globals_at.setdefault(name, pos)

    def statements(self, root):
        for stmt in _named(root):
            if stmt.type == "module_definition":
                yield from (s for s in _named(stmt)[1:])
            else:
                yield stmt

    def defines(self, stmt) -> list[str]:
        node = stmt
        while node.type == "macrocall_expression" and _macro_name(node) not in DECLARING_MACROS | {"@named"}:
            args = [c for c in node.children if c.type == "macro_argument_list"]
            if not args or not _named(args[0]):
                return []
            node = _named(args[0])[-1]
        if node.type == "macrocall_expression":
            args = [c for c in node.children if c.type == "macro_argument_list"]
            if _macro_name(node) == "@named":
                return [_text(t) for a in _named(args[0]) if a.type == "assignment" for t in self.targets(_named(a)[0])]
            return [_text(n) for n in self.declared(args[0])]
        if node.type == "const_statement":
            node = _named(node)[0]
        if node.type == "function_definition":
            sig = _named(_named(node)[0])[0] if _named(node)[0].type == "signature" else _named(node)[0]
            name = self.function_name(sig)
            return [_text(name)] if name is not None else []
        if node.type == "struct_definition":
            head = _named([c for c in node.children if c.type == "type_head"][0])[0]
            while head.type in ("binary_expression", "parametrized_type_expression"):
                head = _named(head)[0]
            return [_text(head)]
        if node.type == "assignment":
            lhs = _named(node)[0]
            if self.is_short_function(node):
                name = self.function_name(lhs)
                return [_text(name)] if name is not None else []
            return [_text(t) for t in self.targets(lhs)]
        return []

    # -- the walk ------------------------------------------------------------------------
    def check(self, root) -> list[Unbound]:
        for stmt in self.statements(root):
            if stmt.type in ("using_statement", "import_statement"):
                self.using(stmt)
        self.collect_globals(root)
        top = _Scope()
        for pos, stmt in enumerate(self.statements(root)):
            if stmt.type in ("using_statement", "import_statement", "export_statement"):
                continue
            self.walk(stmt, top, pos)
        return self.problems

    def function_scope(self, node, scope: _Scope) -> _Scope:
        inner = _Scope(parent=scope)
        params = []
        if node.type == "function_definition":
            sig = _named(node)[0]
            params = self.signature_params(_named(sig)[0] if sig.type == "signature" else sig)
            body = _named(node)[1:]
        elif node.type == "assignment":  # f(x) = ...
            params = self.signature_params(_named(node)[0])
            body = _named(node)[1:]
        elif node.type == "arrow_function_expression":
            head, *body = _named(node)
            params = self.param_names(head)
        else:  # do_clause
            named = _named(node)
            if named and named[0].type == "argument_list":
                params = [p for a in _named(named[0]) for p in self.param_names(a)]
                body = named[1:]
            else:
                body = named
        inner.names |= {_text(p) for p in params}
        for b in body:
            inner.names |= self.assigned(b)
        return inner

    def signature_params(self, sig) -> list:
        node, typevars = sig, []
        while node.type in ("where_expression", "typed_expression"):
            kids = _named(node)
            if node.type == "where_expression":
                typevars += [t for k in kids[1:] for t in self.param_names(k)]
            node = kids[0]
        if node.type != "call_expression":
            return typevars
        args = [c for c in node.children if c.type == "argument_list"]
        params = [p for a in (_named(args[0]) if args else []) for p in self.param_names(a)]
        head = _named(node)[0]
        if head.type == "parenthesized_expression":  # (f::T)(x) = ...
            params += self.param_names(_named(head)[0])
        return params + typevars

    def param_names(self, node) -> list:
        if node.type == "identifier":
            return [node]
        if node.type in ("typed_expression", "splat_expression", "named_argument", "optional_parameter"):
            first = _named(node)[0]
            return self.param_names(first) if first.type != "operator" else []
        if node.type in ("tuple_expression", "argument_list", "curly_expression", "open_tuple", "parenthesized_expression"):
            return [p for c in _named(node) for p in self.param_names(c)]
        if node.type == "binary_expression":  # where {T <: Real}
            return self.param_names(_named(node)[0])
        return []

    def assigned(self, node) -> set[str]:
        """Names assigned in ``node`` (not inside nested functions, whose locals are their own)."""
        out: set[str] = set()
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in FUNCTION_NODES or (n.type == "assignment" and self.is_short_function(n)):
                name = None
                if n.type == "assignment":
                    name = self.function_name(_named(n)[0])
                elif n.type == "function_definition" and _named(n)[0].type == "signature":
                    name = self.function_name(_named(_named(n)[0])[0])
                if name is not None:
                    out.add(_text(name))
                continue
            if n.type == "assignment":
                out |= {_text(t) for t in self.targets(_named(n)[0])}
            elif n.type == "compound_assignment_expression" and _operator(n) != "~":
                out |= {_text(t) for t in self.targets(_named(n)[0])}
            elif n.type == "for_binding":
                out |= {_text(t) for t in self.targets(_named(n)[0])}
            elif n.type == "catch_clause" and _named(n) and _named(n)[0].type == "identifier":
                out.add(_text(_named(n)[0]))
            elif n.type == "local_statement":
                out |= {_text(t) for c in _named(n) for t in self.targets(c)}
            elif n.type == "macrocall_expression" and _macro_name(n) in DECLARING_MACROS:
                args = [c for c in n.children if c.type == "macro_argument_list"]
                out |= {_text(t) for t in self.declared(args[0])} if args else set()
            stack.extend(n.children)
        return out

    def walk(self, node, scope: _Scope, pos: int | None) -> None:
        t = node.type
        if t in ("quote_expression", "line_comment", "block_comment", "string_literal") and t != "string_literal":
            return
        if t == "string_literal":
            for c in node.children:
                if c.type == "string_interpolation":
                    for k in _named(c):
                        self.walk(k, scope, pos)
            return
        if t == "identifier":
            self.resolve(node, _text(node), scope, pos)
            return
        if t == "macrocall_expression":
            self.macro(node, scope, pos)
            return
        if t == "field_expression":
            self.qualified(node, scope, pos)
            return
        if t in FUNCTION_NODES and t != "macro_definition":
            inner = self.function_scope(node, scope)
            if t == "function_definition":
                sig = _named(node)[0]
                self.walk_signature(_named(sig)[0] if sig.type == "signature" else sig, inner)
                for b in _named(node)[1:]:
                    self.walk(b, inner, None)
            elif t == "arrow_function_expression":
                for b in _named(node)[1:]:
                    self.walk(b, inner, None)
            else:
                named = _named(node)
                for b in (named[1:] if named and named[0].type == "argument_list" else named):
                    self.walk(b, inner, None)
            return
        if t == "assignment" and self.is_short_function(node):
            inner = self.function_scope(node, scope)
            self.walk_signature(_named(node)[0], inner)
            for b in _named(node)[1:]:
                self.walk(b, inner, None)
            return
        if t == "struct_definition":
            self.struct(node, scope, pos)
            return
        if t == "comprehension_expression" or t == "generator":
            inner = _Scope(parent=scope)
            for c in _named(node):
                if c.type == "for_clause":
                    for b in _named(c):
                        inner.names |= {_text(x) for x in self.targets(_named(b)[0])}
            for c in _named(node):
                self.walk(c, inner, pos)
            return
        if t == "for_binding":
            target, *rest = _named(node)
            for r in rest:
                self.walk(r, scope, pos)
            if pos is not None:  # a top-level loop: its variables are local to the loop
                scope.names |= {_text(x) for x in self.targets(target)}
            return
        if t == "assignment":
            lhs, *rest = [c for c in node.children if c.is_named]
            for r in rest:
                if r.type != "operator":
                    self.walk(r, scope, pos)
            self.walk_target(lhs, scope, pos)
            return
        if t == "named_argument":  # keyword in a call: the name is not a use
            for c in _named(node)[1:]:
                self.walk(c, scope, pos)
            return
        if t == "catch_clause":
            named = _named(node)
            if named and named[0].type == "identifier":
                scope.names.add(_text(named[0]))
            for c in named:
                self.walk(c, scope, pos)
            return
        for c in _named(node):
            if c.type != "operator":
                self.walk(c, scope, pos)

    def walk_target(self, lhs, scope: _Scope, pos) -> None:
        if lhs.type in ("index_expression", "field_expression"):
            self.walk(lhs, scope, pos)
        elif lhs.type in ("tuple_expression", "open_tuple", "parenthesized_expression"):
            for c in _named(lhs):
                self.walk_target(c, scope, pos)
        elif lhs.type == "typed_expression":
            for c in _named(lhs)[1:]:
                self.walk(c, scope, pos)

    def walk_signature(self, sig, inner: _Scope) -> None:
        """Types and default values in a signature are uses; argument names are not."""
        node = sig
        while node.type in ("where_expression", "typed_expression"):
            kids = _named(node)
            for k in kids[1:]:
                if node.type == "typed_expression":
                    self.walk(k, inner, None)  # return type
                else:
                    self.walk_typevars(k, inner)
            node = kids[0]
        if node.type != "call_expression":
            return
        for a in (_named([c for c in node.children if c.type == "argument_list"][0]) if any(c.type == "argument_list" for c in node.children) else []):
            self.walk_param(a, inner)

    def walk_typevars(self, node, inner) -> None:
        for c in _named(node):
            if c.type == "binary_expression":
                for k in _named(c)[1:]:
                    if k.type != "operator":
                        self.walk(k, inner, None)

    def walk_param(self, node, inner) -> None:
        if node.type == "typed_expression":
            kids = _named(node)
            for k in kids[1:]:
                self.walk(k, inner, None)
        elif node.type in ("named_argument", "optional_parameter"):
            first, *rest = _named(node)
            self.walk_param(first, inner)
            for r in rest:
                if r.type != "operator":
                    self.walk(r, inner, None)
        elif node.type == "splat_expression":
            self.walk_param(_named(node)[0], inner)
        elif node.type == "unary_typed_expression":
            for k in _named(node):
                self.walk(k, inner, None)

    def struct(self, node, scope, pos) -> None:
        head = _named([c for c in node.children if c.type == "type_head"][0])[0]
        inner = _Scope(parent=scope)
        if head.type == "binary_expression":  # S{N} <: Super{...}
            name, *rest = _named(head)
            for r in rest:
                if r.type != "operator":
                    self.walk(r, inner, pos)
            head = name
        if head.type == "parametrized_type_expression":
            inner.names |= {_text(p) for c in _named(head)[1:] for p in self.param_names(c)}
        for c in _named(node)[1:]:
            if c.type == "typed_expression":
                for k in _named(c)[1:]:
                    self.walk(k, inner, pos)
            elif c.type != "identifier":
                self.walk(c, inner, pos)

    def macro(self, node, scope, pos) -> None:
        kids = [c for c in node.children if c.is_named]
        if kids[0].type == "identifier":  # Module.@macro
            module, ident = kids[0], kids[1]
            self.member(ident, _text(module), "@" + _text(_named(ident)[0]), scope)
            kids = kids[1:]
        else:
            name = _macro_name(node)
            if name not in self.visible and name not in self.globals_at:
                self.report(node, name, "macro not exported by a loaded package nor Base")
        name = _macro_name(node)
        args = [c for c in node.children if c.type == "macro_argument_list"]
        if not args:
            return
        if name in DECLARING_MACROS:
            for arg in _named(args[0]):
                if arg.type == "call_expression":  # u(..) or $f(..)
                    head = _named(arg)[0]
                    if head.type == "interpolation_expression":
                        self.walk(_named(head)[0], scope, pos)
                elif arg.type == "interpolation_expression":
                    self.walk(_named(arg)[0], scope, pos)
                elif arg.type == "assignment":
                    for r in _named(arg)[1:]:
                        if r.type != "operator":
                            self.walk(r, scope, pos)
            return
        if name == "@register_symbolic":  # a signature: f is a use, its argument names are not
            for arg in _named(args[0]):
                if arg.type == "call_expression":
                    self.walk(_named(arg)[0], scope, pos)
            return
        if name == "@named":
            for arg in _named(args[0]):
                if arg.type == "assignment":
                    for r in _named(arg)[1:]:
                        if r.type != "operator":
                            self.walk(r, scope, pos)
            return
        for c in _named(args[0]):
            self.walk(c, scope, pos)

    def qualified(self, node, scope, pos) -> None:
        value, member = _named(node)[0], _named(node)[-1]
        path = _dotted(value)
        if path is not None and path.split(".")[0] in self.modules and not scope.has(path.split(".")[0]):
            self.member(member, path, _text(member), scope)
            return
        self.walk(value, scope, pos)  # a value's field: the field name is not a use

    def member(self, node, module: str, name: str, scope) -> None:
        if (module, name) in DOCUMENTED_INTERNALS:
            return
        head = module.split(".")[0]
        entry = self.packages.get(module) or self.packages.get(head)
        if module != head:  # a submodule: its own exports
            subs = (self.packages.get(head) or {}).get("submodule_exports", {})
            names = set(subs.get(module, [])) | set(self.packages.get(module, {}).get("exports", []))
        elif entry is not None:
            names = set(entry["exports"]) | set(entry.get("public_not_exported", []))
            names |= {k.split(".")[-1] for k in entry.get("submodule_exports", {})}
            names |= set(entry.get("reexports", []))
        else:
            names = set()
        if name not in names:
            self.report(node, f"{module}.{name}", f"{module} neither exports nor declares {name} public")


def _operator(node) -> str:
    ops = [c for c in node.children if c.type == "operator"]
    return _text(ops[0]) if ops else ""


def _macro_name(node) -> str:
    ident = [c for c in node.children if c.type == "macro_identifier"][0]
    return "@" + _text(_named(ident)[0])


def _dotted(node) -> str | None:
    if node.type == "identifier":
        return _text(node)
    if node.type == "field_expression":
        left = _dotted(_named(node)[0])
        return None if left is None else left + "." + _text(_named(node)[-1])
    return None


def unbound_names(source: str, predefined: set[str] | frozenset[str] = frozenset()) -> list[Unbound]:
    """Names in Julia ``source`` that nothing binds (empty when every name resolves).

    Args:
        source: Julia source (a file, a script, or one expression).
        predefined: names the caller binds around ``source`` (e.g. a generated function's
            arguments).
    """
    tree = julia_parser().parse(source.encode())
    return _Checker(exports(), set(predefined)).check(tree.root_node)


def top_level_names(source: str) -> set[str]:
    """The names a source defines at top level (its globals)."""
    tree = julia_parser().parse(source.encode())
    checker = _Checker(exports(), set())
    checker.collect_globals(tree.root_node)
    return set(checker.globals_at)

"""Every name the Julia side uses is bound: module PDEForge, the kernel specifications it
compiles, the MethodOfLines specifications and the exported scripts (no Julia needed).

The names are resolved over the tree-sitter-julia parse (tests/julia_bindings.py) against the
export lists of the upstream packages at the declared versions
(tests/julia/data/upstream_exports.json). The arguments a generated function receives are read
from PDEForge.jl itself, so a specification line that names something its function is not given
(a parameter, a cell width) is caught here instead of as an ``UndefVarError`` in Julia.
"""

from __future__ import annotations

import functools
import json
import tomllib
from pathlib import Path

import pytest
from julia_bindings import exports, unbound_names
from julia_helpers import julia_parser

from pdeforge.models import get_model, list_models

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "julia" / "PDEForge.jl"
FD_MODELS = [m.name for m in list_models() if getattr(m.system(), "discretization", "fd") != "spectral"]
#: the kernel-spec check skips burgers-les: discretizing its LES closure alone takes ~20 s here,
#: and its parameters (Cs, nu) reach the kernel the same way as every other model's
SPEC_MODELS = [m for m in FD_MODELS if m != "burgers-les"]


def _named(node) -> list:
    return [c for c in node.children if c.is_named and c.type != "line_comment"]


@functools.cache
def _tree():
    return julia_parser().parse(SOURCE.read_bytes()).root_node


def _functions() -> dict[str, object]:
    """Top-level function definitions of PDEForge.jl by name (long and short forms)."""
    out = {}
    stack = [_tree()]
    while stack:
        node = stack.pop()
        if node.type == "function_definition":
            call = _named(_named(node)[0])[0]
            while call.type in ("where_expression", "typed_expression"):
                call = _named(call)[0]
            out[_named(call)[0].text.decode()] = node
        elif node.type == "assignment" and _named(node)[0].type == "call_expression":
            out[_named(_named(node)[0])[0].text.decode()] = node
        stack.extend(node.children)
    return out


def _calls(node, name: str) -> list:
    found, stack = [], [node]
    while stack:
        n = stack.pop()
        if n.type == "call_expression" and _named(n)[0].text.decode() == name:
            found.append(n)
        stack.extend(n.children)
    return found


def _assignment(function, name: str):
    for a in _calls_of_type(function, "assignment"):
        lhs = _named(a)[0]
        if lhs.type == "identifier" and lhs.text.decode() == name:
            return _named(a)[-1]
    raise AssertionError(f"{name} is not assigned in {function.text.decode()[:40]!r}")


def _calls_of_type(node, kind: str) -> list:
    found, stack = [], [node]
    while stack:
        n = stack.pop()
        if n.type == kind:
            found.append(n)
        stack.extend(n.children)
    return found


def _spec_fields(function, args: list, bound: dict | None = None) -> list[str]:
    """The KernelSpec fields (``params``, ``spacing``, ...) an argument list passes.

    Follows ``args...`` splats to their assignment, local aliases (``coordvec = spec.coords``)
    and calls of PDEForge functions (``cell_arguments(spec, U)``) into their body.
    """
    bound = bound or {}
    out: list[str] = []
    for a in args:
        if a.type == "splat_expression":
            value = _assignment(function, _named(a)[0].text.decode())
            out += _spec_fields(function, [value], bound)
        elif a.type == "tuple_expression":
            out += _spec_fields(function, _named(a), bound)
        elif a.type == "field_expression":
            out.append(a.text.decode().removeprefix("spec."))
        elif a.type == "identifier":
            name = a.text.decode()
            if name in bound:
                out.append(bound[name])
                continue
            try:
                value = _assignment(function, name)
            except AssertionError:
                value = None
            if value is not None and value.type in ("field_expression", "identifier", "tuple_expression"):
                out += _spec_fields(function, [value], bound)  # an alias such as coordvec = spec.coords
            else:
                out.append(name)  # the spec itself, or a state vector such as U
        elif a.type == "call_expression":
            callee = _functions()[_named(a)[0].text.decode()]
            sig = _named(callee)[0]
            params = [p.text.decode() for p in _named([c for c in sig.children if c.type == "argument_list"][0])]
            params = [p.split("::")[0] for p in params]
            actual = _named([c for c in a.children if c.type == "argument_list"][0])
            inner = {p: _spec_fields(function, [v], bound)[0] for p, v in zip(params, actual)}
            out += _spec_fields(callee, [_named(callee)[-1]], inner)
    return out


def _arguments(function_name: str, callee: str, first: str) -> list[str]:
    """Spec fields passed after ``first`` in the call ``callee(first, ...)`` inside a function."""
    function = _functions()[function_name]
    for call in _calls(function, callee):
        args = _named([c for c in call.children if c.type == "argument_list"][0])
        positional = [a for a in args if a.type != "named_argument"]
        if positional and positional[0].text.decode() == first:
            return _spec_fields(function, positional[1:])
    raise AssertionError(f"{function_name} has no call {callee}({first}, ...)")


def _spec(model: str) -> dict:
    """The kernel specification of a model's order-2 Julia kernel, by line kind."""
    from pdeforge.codegen.module import kernel_spec
    from pdeforge.discretize.semidiscrete import discretize
    from pdeforge.julia.target import julia_spec
    from pdeforge.simplify.rewrite import simplify

    text = julia_spec(kernel_spec(simplify(discretize(get_model(model).system(), 2))))
    out: dict = {"invariant": [], "rhs": []}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "invariant":
            name, expr = rest.split(" ", 1)
            out["invariant"].append((name, expr))
        elif key == "rhs":
            out["rhs"].append(rest)
        elif key != "jac":
            out[key] = rest.split()
    return out


def _names_of(expr: str) -> tuple[set[str], set[str]]:
    """(identifiers, fields read through ``stencil(field, ...)``) of one expression."""
    tree = julia_parser().parse(expr.encode()).root_node
    names, fields, stack = set(), set(), [tree]
    while stack:
        n = stack.pop()
        if n.type == "call_expression" and _named(n)[0].text.decode() == "stencil":
            fields.add(_named(_named(n)[1])[0].text.decode())
            continue
        if n.type == "identifier":
            names.add(n.text.decode())
        stack.extend(n.children)
    return names, fields


def _reader_functions() -> set[str]:
    """Function and constant names PDEForge's expression reader accepts (FUNCTIONS, CONSTANTS)."""
    out = set()
    for const in _calls_of_type(_tree(), "const_statement"):
        assign = _named(const)[0]
        if _named(assign)[0].text.decode() in ("FUNCTIONS", "CONSTANTS"):
            for q in _calls_of_type(assign, "quote_expression"):
                out.add(q.text.decode().lstrip(":").strip("()"))
    return out


def test_pdeforge_module_binds_every_name():
    problems = unbound_names(SOURCE.read_text())
    assert problems == [], "\n".join(map(str, problems))


def test_pdeforge_loads_only_declared_packages():
    """`using X` inside a file included into Main finds only the active project's [deps]."""
    deps = set(tomllib.loads((ROOT / "Project.toml").read_text())["deps"])
    loaded = set()
    for stmt in _calls_of_type(_tree(), "using_statement"):
        for part in _named(stmt):
            head = _named(part)[0] if part.type == "selected_import" else part
            loaded.add(head.text.decode().split(".")[0])
    assert loaded - {"Base"} <= deps, f"loaded but not in Project.toml [deps]: {sorted(loaded - {'Base'} - deps)}"


def test_runtime_generated_functions_are_initialised_where_they_are_built():
    """build_function(...; expression = Val{false}) compiles into PDEForge: init must run at top level."""
    builds = [c for c in _calls(_tree(), "build_function") if "Val{false}" in c.text.decode()]
    assert builds and all("expression_module = @__MODULE__" in c.text.decode() for c in builds)
    module = [s for s in _named(_tree()) if s.type == "module_definition"][0]
    top = [s for s in _named(module) if s.type == "call_expression"]
    inits = [s for s in top if s.text.decode().replace(" ", "") == "RuntimeGeneratedFunctions.init(@__MODULE__)"]
    assert inits, "module PDEForge never calls RuntimeGeneratedFunctions.init(@__MODULE__) at top level"
    first_build = min(c.start_byte for c in builds)
    assert inits[0].start_byte < first_build
    juliapkg = json.loads((ROOT / "python" / "pdeforge" / "juliapkg.json").read_text())["packages"]
    assert juliapkg["RuntimeGeneratedFunctions"]["uuid"] == exports()["RuntimeGeneratedFunctions"]["uuid"]


@pytest.mark.parametrize("model", SPEC_MODELS)
def test_kernel_spec_names_only_what_its_functions_receive(model):
    spec = _spec(model)
    kernel_args = _arguments("build_kernel", "_iip", "spec.rhs")
    traced_args = _arguments("trace_system", "build_function", "outs")
    invariant_args = _arguments("build_kernel", "_iip", "spec.invariants")
    known = _reader_functions()
    lines = {"params": spec.get("params", []), "spacing": spec["spacing"], "coords": spec["coords"], "t": ["t"],
             "invariant_names": [n for n, _ in spec["invariant"]]}
    for name, args in (("the per-cell kernel", kernel_args), ("the traced system", traced_args)):
        bound = {n for a in args for n in lines.get(a, [])}
        if name == "the traced system":
            bound |= set(spec["coords"])  # substituted by numbers before build_function
        for expr in spec["rhs"]:
            names, fields = _names_of(expr)
            assert fields <= set(spec["fields"]), expr
            free = names - bound - known - set(spec["fields"])
            assert not free, f"{model}: {name} is built with {args} but its rhs uses {sorted(free)}: {expr}"
    bound = {n for a in invariant_args for n in lines.get(a, [])}
    for inv, expr in spec["invariant"]:
        free = _names_of(expr)[0] - bound - known
        assert not free, f"{model}: invariant {inv} uses {sorted(free)}, not among {invariant_args}"


def _mol_problem(model: str):
    from pdeforge.julia.export import mol_problem

    m = get_model(model)
    dim = len(m.system().axes)
    return mol_problem(model, grid=(6,) * dim, t_span=0.01, save_every=0.01)


@pytest.mark.parametrize("model", FD_MODELS)
def test_methodoflines_spec_and_script_bind_every_name(model, tmp_path):
    from pdeforge.julia.methodoflines import MethodOfLinesUnsupported
    from pdeforge.julia.mol_route import mol_spec_text
    from pdeforge.julia.script import julia_script

    try:
        problem = _mol_problem(model)
    except MethodOfLinesUnsupported:
        pytest.skip(f"{model}: MethodOfLines cannot express it")
    spec = mol_spec_text(problem)
    coords = spec.splitlines()[0].split()[1:]
    fields = spec.splitlines()[1].split()[1:]
    allowed = set(coords) | set(fields) | {"t", "Differential", "sampled1", "sampled2", "sampled3"} | _reader_functions()
    for line in spec.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("eq", "bc"):
            for part in (rest.split(" ", 1)[1] if key == "eq" else rest).split("\t"):
                free = _names_of(part)[0] - allowed
                assert not free, f"{model}: {line!r} uses {sorted(free)}"
    script = julia_script(problem, "out.csv")  # 6 cells per axis: tables stay literals
    problems = unbound_names(script)
    assert problems == [], f"{model}:\n" + "\n".join(map(str, problems))

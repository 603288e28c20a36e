"""Helpers of the Julia-backend tests: tree-sitter parsing and the Julia marker's skip reason."""

from __future__ import annotations

import shutil

import pytest


def julia_parser():
    """A tree-sitter parser for Julia."""
    import tree_sitter
    import tree_sitter_julia

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_julia.language()))


def syntax_errors(source: str) -> list[str]:
    """ERROR and MISSING nodes of ``source`` as 'row:col text' strings (empty when it parses)."""
    tree = julia_parser().parse(source.encode())
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {node.type} {node.text[:60]!r}")
        stack.extend(node.children)
    return found


def julia_or_skip() -> str:
    """The julia executable pdeforge would use, or skip the test with the reason."""
    from pdeforge.julia.environment import find_julia
    from pdeforge.errors import JuliaUnavailable

    try:
        return find_julia().executable
    except JuliaUnavailable as exc:
        pytest.skip(f"no Julia installation: {exc}")


def has_julia() -> bool:
    from pdeforge.julia.environment import julia_available

    return julia_available() or shutil.which("julia") is not None

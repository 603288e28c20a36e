"""Imports follow the data flow (the architecture page of the docs): the import-linter contracts of pyproject.toml,
no import cycle between any two modules, and the contracts really catch a forbidden import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("importlinter", reason="import-linter is a test dependency: pip install -e '.[tests]'")


def _lint(root: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from importlinter.cli import lint_imports;"
        "sys.exit(lint_imports(config_filename=sys.argv[2], no_cache=True))"
    )
    return subprocess.run([sys.executable, "-c", code, str(root / "python"), str(root / "pyproject.toml")],
                          capture_output=True, text=True, timeout=300, cwd=root)


def test_import_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of size > 1 (iterative, so deep import chains do not recurse)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_no_import_cycles_between_modules():
    import grimp

    graph = grimp.build_graph("pdeforge", include_external_packages=False, cache_dir=None)
    # a package's __init__ that re-exports its modules is not a cycle with them
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if not m.startswith(i + ".")}
        for m in graph.modules
    }
    assert _strongly_connected(edges) == []


def test_the_contracts_catch_a_forbidden_import(tmp_path):
    """An earlier stage importing a later one (discretize -> solvers) breaks the layers contract."""
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "python", copy / "python", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                    symlinks=True)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    grid = copy / "python" / "pdeforge" / "discretize" / "grid.py"
    grid.write_text(grid.read_text() + "\n\ndef _bad():\n    from pdeforge.solvers import methods  # noqa: F401\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "pdeforge.discretize.grid -> pdeforge.solvers" in result.stdout
    assert "1 broken" in result.stdout

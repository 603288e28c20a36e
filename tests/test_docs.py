"""The documentation's Python code blocks run as written.

Every fenced block whose info string is exactly ``python`` in ``docs/**/*.md`` is run, the blocks
of one page in order in one namespace, in a fresh folder (pages write their example files
there). Blocks written as ``{code-block} python`` are shown only: they need a GPU, MPI, Julia or
minutes of training. The gallery runs when the docs are built (sphinx-gallery).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text())


RUNNABLE = [p for p in pages() if blocks(p)]


def test_the_guide_has_runnable_blocks():
    assert len(RUNNABLE) >= 10


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(DOCS)))
def test_blocks_compile(page):
    for i, code in enumerate(blocks(page)):
        compile(code, f"{page.name} block {i + 1}", "exec")


def _api_in_place() -> bool:
    import pdeforge as pf

    return all(hasattr(pf, name) for name in ("RK4", "Output", "Every"))


@pytest.mark.skipif(not _api_in_place(), reason="the pages use the option objects of pf.solve (pf.RK4, pf.Output, ...)")
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(DOCS)))
def test_blocks_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for i, code in enumerate(blocks(page)):
            exec(compile(code, f"{page.name} block {i + 1}", "exec"), namespace)
    finally:
        plt.close("all")

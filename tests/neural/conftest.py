"""Neural tests run torch single-threaded: their tensors are tiny, and on a loaded 2-core
machine two OpenMP threads spinning against other processes made them 20-60x slower."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="package")
def _torch_single_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

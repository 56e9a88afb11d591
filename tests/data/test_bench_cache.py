"""Benchmarks (run with --benchmark-only): building ml-100k from raw files, and loading it.

Targets (from the issue, reported, never asserted): build < 2 s, load < 0.2 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data import cache
from bench.data.raw import RawTables
from tests.data.helpers import write_ml100k

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def raw_folder(pypi_raw: RawTables, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real ml-100k in its official file format (setup, not timed)."""
    return write_ml100k(pypi_raw, tmp_path_factory.mktemp("raw") / "ml-100k")


def test_time_build_ml100k_from_files(benchmark, raw_folder: Path, tmp_path: Path) -> None:
    """Parse u.data/u.item/u.user, preprocess, write the cache (atomic replace each round)."""
    folder = benchmark.pedantic(
        cache.build, args=("ml-100k", str(raw_folder), tmp_path),
        kwargs={"force": True}, rounds=5, warmup_rounds=1,
    )
    assert cache.load_dataset("ml-100k", tmp_path).content_hash
    assert folder.is_dir()


def test_time_load_ml100k(benchmark, ml100k_cache: Path) -> None:
    """Read and verify every array (sha256 per file + content hash), assemble the Dataset."""
    data = benchmark(cache.load_dataset, "ml-100k", ml100k_cache)
    assert len(data.train) == 80_000 and len(data.test) == 20_000

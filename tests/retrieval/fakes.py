"""Searchers that misbehave on purpose, for the runner's crash and timeout paths."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from bench.retrieval.backends.numpy_search import NumpySearcher


class CrashOnLargeSearcher(NumpySearcher):
    """numpy search that kills its process (abort) when built on >= 3000 candidates."""

    def build(self, candidates: np.ndarray) -> None:
        if len(candidates) >= 3000:
            os.abort()
        super().build(candidates)


class RaisingSearcher(NumpySearcher):
    """numpy search whose k=5 calls raise: one failed setting, the others fine."""

    def search(self, queries: Any, k: int) -> np.ndarray:
        if k == 5:
            raise RuntimeError("k=5 is not supported by this fake")
        return super().search(queries, k)


class HangingSearcher(NumpySearcher):
    """numpy search that never returns in time."""

    def search(self, queries: Any, k: int) -> np.ndarray:
        time.sleep(600)
        return super().search(queries, k)

"""The contract every retrieval searcher meets, whatever its framework.

The worker drives it; searchers hold no timing, warm-up or statistics:

    s = Searcher(**contender.options)
    s.build(candidates)                      # timed: upload / index build
    for k in ks: for params in contender.params:
        s.set_params(params)
        q = s.to_device(queries)             # outside the timed region
        ids = s.to_numpy(s.search(q, k))     # timed: search + sync + host copy
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np


class Searcher(ABC):
    """Exact or approximate maximum-inner-product top-k over a fixed candidate set."""

    framework: ClassVar[str]
    sync_mechanism: ClassVar[str]  # what ends every timed call, e.g. "jax.block_until_ready"

    @abstractmethod
    def build(self, candidates: np.ndarray) -> None:
        """Take (N, dim) float32 candidates: copy to the framework / build the index."""

    def set_params(self, params: dict[str, Any]) -> None:
        """Apply search-time settings (nprobe, efSearch); exact searchers take none."""
        if params:
            raise ValueError(f"{type(self).__name__} takes no search parameters, got {params}")

    def to_device(self, queries: np.ndarray) -> Any:
        """A (B, dim) float32 query block as the framework's input (host->device here)."""
        return queries

    @abstractmethod
    def search(self, queries: Any, k: int) -> Any:
        """(B, k) candidate rows, best first, as the framework returns them (maybe async)."""

    def to_numpy(self, result: Any) -> np.ndarray:
        """The search result as a (B, k) integer numpy array; synchronises."""
        return np.asarray(result)

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the packages this searcher runs on."""

    def device_name(self) -> str:
        return "cpu"

    def resolved_options(self) -> dict[str, Any]:
        """Options as resolved (block size, jit mode, index parameters)."""
        return {}

    def phases(self, queries: Any, k: int) -> dict[str, Callable[[], Any]]:
        """Separately timeable parts of one search, each ending in its own sync.

        For the profile (bench/studies/retrieval_profile.py): typically "matmul" (the
        (B, N) scores), "top_k" (on precomputed scores) and "transfer" (result
        to host). Empty where the search is one opaque call (faiss).
        """
        return {}


def merge_top_k(best_scores: np.ndarray, best_ids: np.ndarray, scores: np.ndarray,
                ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (B, *) partial top-k lists into one (B, k), best first (numpy helper)."""
    all_scores = np.concatenate([best_scores, scores], axis=1)
    all_ids = np.concatenate([best_ids, ids], axis=1)
    order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(all_scores, order, axis=1), np.take_along_axis(all_ids, order, axis=1)

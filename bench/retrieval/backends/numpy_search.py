"""numpy: the plain baseline (whole score matrix) and its blocked variant."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.retrieval.backends.base import Searcher


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, k) rows and scores of each row's k largest entries, best first, ties by lower row.

    argpartition finds the unordered top k in O(N); only those k are sorted.
    """
    k = min(k, scores.shape[1])
    part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]  # (B, k) unordered
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # score desc, then row asc
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


class NumpySearcher(Searcher):
    """numpy matmul then argpartition + sort.

    Args:
        block: candidates per block; None scores all N at once, materialising the
            (B, N) float32 score matrix and argpartition's (B, N) int64 indices.
            With a block, each block's top k is kept and the B x (N/block * k)
            survivors are selected at the end, so memory is B x block.
    """

    framework: ClassVar[str] = "numpy"
    sync_mechanism: ClassVar[str] = "none (numpy is synchronous)"

    def __init__(self, block: int | None = None) -> None:
        self.block = block
        self.candidates = np.empty((0, 0), dtype=np.float32)

    def build(self, candidates: np.ndarray) -> None:
        self.candidates = np.ascontiguousarray(candidates, dtype=np.float32)

    def search(self, queries: Any, k: int) -> np.ndarray:
        if self.block is None or self.block >= len(self.candidates):
            return top_k_rows(queries @ self.candidates.T, k)[0]  # (B, N) scores
        ids, scores = [], []
        for start in range(0, len(self.candidates), self.block):
            block_ids, block_scores = top_k_rows(
                queries @ self.candidates[start : start + self.block].T, k  # (B, block)
            )
            ids.append(block_ids + start)
            scores.append(block_scores)
        survivors, survivor_scores = np.concatenate(ids, 1), np.concatenate(scores, 1)
        rows, _ = top_k_rows(survivor_scores, k)  # positions among the survivors
        return np.take_along_axis(survivors, rows, axis=1)

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def resolved_options(self) -> dict[str, Any]:
        return {"block": self.block}

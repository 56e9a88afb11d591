"""numpy: the plain baseline (whole score matrix) and its blocked variant."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def merge_candidates(ids: np.ndarray, scores: np.ndarray, rows: np.ndarray,
                     new_ids: np.ndarray, new_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best k of its current (B, k) list plus the new (row, id, score) triples.

    One lexsort over every entry: by row, then score descending, then id ascending
    (ties go to the lower id); the first k of each row are kept.
    """
    b, k = ids.shape
    all_rows = np.concatenate([np.repeat(np.arange(b), k), rows])
    all_ids = np.concatenate([ids.ravel(), new_ids])
    all_scores = np.concatenate([scores.ravel(), new_scores])
    order = np.lexsort((all_ids, -all_scores, all_rows))
    sorted_rows = all_rows[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_rows, np.arange(b))[sorted_rows]
    keep = order[rank < k]  # row-major, best first: k per row
    return all_ids[keep].reshape(b, k), all_scores[keep].reshape(b, k)


def streaming_top_k(queries: np.ndarray, candidates: np.ndarray, k: int,
                    block: int) -> np.ndarray:
    """(B, k) exact top-k rows, scoring `block` candidates at a time.

    The first block's top k (argpartition) sets each query's running k-th best
    score; in every later block only the scores above it (np.nonzero of one
    comparison, usually a handful) are merged in, so the cost per block is a
    matmul and a compare, and memory is one (B, block) tile.
    """
    first = max(block, k)
    ids, scores = top_k_rows(queries @ candidates[:first].T, k)  # (B, first) tile
    for start in range(first, len(candidates), block):
        tile = queries @ candidates[start : start + block].T  # (B, block)
        # Strictly above the k-th best: on a tie the earlier (lower) row stays.
        rows, cols = np.nonzero(tile > scores[:, -1:])
        if rows.size:
            ids, scores = merge_candidates(ids, scores, rows, cols + start, tile[rows, cols])
    return ids


class NumpySearcher(Searcher):
    """numpy matmul then argpartition + sort.

    Args:
        block: candidates per block; None scores all N at once, materialising the
            (B, N) float32 score matrix and argpartition's (B, N) int64 indices.
            With a block, `streaming_top_k`: memory is one (B, block) tile per thread.
        threads: query chunks searched in parallel (blocked only; default: CPU count).
    """

    framework: ClassVar[str] = "numpy"
    sync_mechanism: ClassVar[str] = "none (numpy is synchronous)"

    def __init__(self, block: int | None = None, threads: int | None = None) -> None:
        self.block = block
        self.threads = threads or os.cpu_count() or 1
        self.candidates = np.empty((0, 0), dtype=np.float32)
        self.pool = ThreadPoolExecutor(self.threads) if block and self.threads > 1 else None
        self.threads_used = 1  # by the last search (small batches run on one thread)

    def build(self, candidates: np.ndarray) -> None:
        self.candidates = np.ascontiguousarray(candidates, dtype=np.float32)
        if self.block is not None and self.block >= len(candidates):
            self.block = None  # one tile holds them all: the plain path

    def search(self, queries: Any, k: int) -> np.ndarray:
        if self.block is None:
            return top_k_rows(queries @ self.candidates.T, k)[0]  # (B, N) scores
        block = self.block
        if self.pool is None or len(queries) < 2 * self.threads:
            self.threads_used = 1
            return streaming_top_k(queries, self.candidates, k, block)
        self.threads_used = self.threads
        # numpy's compare, nonzero and sort hold one core each: split the queries
        # over threads (they release the GIL); BLAS threads its own matmuls.
        parts = np.array_split(queries, self.threads)
        return np.concatenate(list(self.pool.map(
            lambda q: streaming_top_k(q, self.candidates, k, block), parts)))

    def phases(self, queries: Any, k: int) -> dict[str, Callable[[], Any]]:
        if self.block is not None:
            return {}  # tiles interleave matmul and selection: no separate phases
        scores = queries @ self.candidates.T
        return {"matmul": lambda: queries @ self.candidates.T,
                "top_k": lambda: top_k_rows(scores, k)}

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def resolved_options(self) -> dict[str, Any]:
        return {"block": self.block, "threads": self.threads_used}

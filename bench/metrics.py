"""Top-k retrieval and accuracy in numpy: the harness's independent check."""

from __future__ import annotations

import numpy as np


def top_k_indices(
    queries: np.ndarray, candidates: np.ndarray, k: int, block: int = 4096
) -> np.ndarray:
    """(B, k) candidate row indices by descending dot product, ties by lower index.

    Blocked over queries so memory stays at block x num_candidates scores.
    """
    k = min(k, candidates.shape[0])
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], block):
        scores = queries[start : start + block] @ candidates.T  # (b, M)
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # unordered top k
        part_scores = np.take_along_axis(scores, part, axis=1)
        # Sort by score descending, then index ascending (lexsort: last key is primary).
        order = np.lexsort((part, -part_scores), axis=1)
        out[start : start + block] = np.take_along_axis(part, order, axis=1)
    return out


def top_k_accuracy(
    top_rows: np.ndarray, candidate_ids: np.ndarray, target_ids: np.ndarray, weight: np.ndarray
) -> float:
    """Weighted share of targets found among each row's retrieved candidates.

    Args:
        top_rows: (N, k) retrieved candidate row indices.
        candidate_ids: (M,) movie id of each candidate row.
        target_ids: (N,) the movie actually rated.
        weight: (N,) 1 for rows that count (5-star ratings), 0 otherwise.
    """
    hits = (candidate_ids[top_rows] == target_ids[:, None]).any(axis=1)
    total = float(weight.sum())
    return float((hits * weight).sum() / total) if total else 0.0

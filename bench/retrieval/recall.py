"""recall@k of a searcher's answer against the exact one, by ids and tie-aware by score.

Two contenders can both be exact and still return different ids when scores
tie or differ in the last float32 bit (summation order differs between BLAS,
XLA and faiss). So besides the plain id overlap, `recall` counts a returned
row as correct when its exact (float64) score reaches the k-th best exact
score within the float32 dot-product error bound; an exact method must score
1.0 on that, and any id difference left is a tie-order difference.
"""

from __future__ import annotations

import numpy as np

F32_EPS = float(np.finfo(np.float32).eps)


def _scores(queries: np.ndarray, candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(n, m) float64 dot products of each query with its m candidate rows."""
    cand = np.asarray(candidates[rows.ravel()], dtype=np.float64).reshape(*rows.shape, -1)
    return np.einsum("nd,nmd->nm", queries.astype(np.float64), cand)


def recall_at_k(found: np.ndarray, truth: np.ndarray, queries: np.ndarray,
                candidates: np.ndarray, k: int) -> dict[str, float]:
    """Mean recall@k over rows, and the share of rows whose id sets equal the truth's.

    Args:
        found: (n, k) returned candidate rows (-1 or out of range: nothing found).
        truth: (n, >= k) exact rows, best first.
        queries: (n, dim) the queries of those rows.
        candidates: (N, dim) all candidates (a memory map is fine).
        k: the depth asked for.

    Returns:
        recall: tie-aware recall (score-based), the figure exact methods must hit 1.0 on.
        recall_ids: plain id-set overlap / k.
        rows_id_equal: share of rows whose id set equals the exact one.
    """
    truth = truth[:, :k]
    found = _dedupe(np.where((found >= 0) & (found < candidates.shape[0]), found, -1))
    valid = found >= 0
    hits_ids = np.array([len(np.intersect1d(f[f >= 0], t))
                         for f, t in zip(found, truth, strict=True)])
    found_scores = _scores(queries, candidates, np.where(valid, found, 0))
    kth = _scores(queries, candidates, truth[:, -1:])[:, 0]
    rows = np.concatenate([truth, np.where(valid, found, truth[:, :1])], axis=1)
    cmax = np.linalg.norm(np.asarray(candidates[rows.ravel()], np.float64), axis=1).max()
    # |float32 dot - exact| <= dim * eps * |q| |c|; twice that covers both scores compared.
    tol = 2 * queries.shape[1] * F32_EPS * np.linalg.norm(queries, axis=1) * cmax
    hits_score = (valid & (found_scores >= (kth - tol)[:, None])).sum(1)
    return {
        "recall": float(np.mean(np.minimum(hits_score, k) / k)),
        "recall_ids": float(np.mean(hits_ids / k)),
        "rows_id_equal": float(np.mean(hits_ids == k)),
    }


def _dedupe(found: np.ndarray) -> np.ndarray:
    """`found` with repeated ids in a row replaced by -1 (a duplicate is not a second hit)."""
    order = np.argsort(found, axis=1, kind="stable")
    srt = np.take_along_axis(found, order, axis=1)
    dup = np.zeros(found.shape, dtype=bool)
    np.put_along_axis(dup, order[:, 1:], (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0), axis=1)
    return np.where(dup, -1, found)

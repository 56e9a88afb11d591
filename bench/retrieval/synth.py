"""Synthetic but realistic embeddings, and the exact answer they imply.

Candidates and queries come from one seeded Gaussian mixture: cluster sizes
follow a power law (a few huge genres, a long tail), every vector's norm is
scaled by a log-normal factor (popular items score higher everywhere, as in
trained retrieval models), and queries are drawn from the same mixture. The
arrays are written once per (candidates, dim, seed) to .npy files that every
worker memory-maps, so all contenders see identical bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

GENERATOR = "gaussian-mixture-v1"  # bump when the generator changes what it writes
ZIPF_EXPONENT = 1.1  # cluster sizes ~ 1 / rank^1.1
WITHIN_CLUSTER_STD = 0.35  # relative to unit-scale cluster centres
NORM_LOGSTD = 0.25  # log-normal spread of vector norms
CHUNK_ROWS = 1 << 18  # generate in chunks so 1M x 128 never needs float64 copies


@dataclass(frozen=True)
class SettingFiles:
    """The .npy files of one (candidates, dim, seed) setting.

    Args:
        candidates: (N, dim) float32 candidate embeddings.
        queries: (Q, dim) float32 query embeddings.
        truth_ids: (Q, k_max) int64 exact top-k candidate rows, best first.
        truth_scores: (Q, k_max) float32 their scores.
        content_hash: blake2b of the candidate and query bytes (16 hex digits).
    """

    candidates: Path
    queries: Path
    truth_ids: Path
    truth_scores: Path
    content_hash: str


def num_clusters(n: int) -> int:
    """About sqrt(N) clusters, at least 4: 1682 -> 41, 1M -> 1000."""
    return max(4, int(round(np.sqrt(n))))


def _mixture(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster centres (C, dim) and their power-law weights (C,)."""
    c = num_clusters(n)
    centres = rng.standard_normal((c, dim)).astype(np.float32) / np.float32(np.sqrt(dim))
    weights = 1.0 / np.arange(1, c + 1) ** ZIPF_EXPONENT
    return centres, weights / weights.sum()


def _draw(rng: np.random.Generator, centres: np.ndarray, weights: np.ndarray,
          out: np.ndarray) -> None:
    """Fill `out` (rows, dim) with mixture samples, chunk by chunk."""
    dim = centres.shape[1]
    scale = np.float32(WITHIN_CLUSTER_STD / np.sqrt(dim))
    for start in range(0, out.shape[0], CHUNK_ROWS):
        rows = min(CHUNK_ROWS, out.shape[0] - start)
        labels = rng.choice(len(weights), size=rows, p=weights)
        x = centres[labels] + scale * rng.standard_normal((rows, dim), dtype=np.float32)
        norms = rng.lognormal(0.0, NORM_LOGSTD, size=(rows, 1)).astype(np.float32)
        x *= norms / np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + rows] = x


def generate(n: int, dim: int, num_queries: int, seed: int, folder: Path) -> SettingFiles:
    """Write candidates and queries of one setting to `folder` (truth comes later).

    Args:
        n: number of candidates.
        dim: embedding dimension.
        num_queries: rows of the query pool (the largest batch).
        seed: the study's seed; (seed, n, dim) seeds this setting.
        folder: where the .npy files go (created).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, n, dim])
    centres, weights = _mixture(rng, n, dim)
    tag = f"n{n}-d{dim}-s{seed}"
    cand_path, query_path = folder / f"cand-{tag}.npy", folder / f"query-{tag}.npy"
    cand = open_memmap(cand_path, mode="w+", dtype=np.float32, shape=(n, dim))
    _draw(rng, centres, weights, cand)
    cand.flush()
    queries = open_memmap(query_path, mode="w+", dtype=np.float32, shape=(num_queries, dim))
    _draw(rng, centres, weights, queries)
    queries.flush()
    digest = hashlib.blake2b(digest_size=8)
    digest.update(np.asarray(cand).tobytes())
    digest.update(np.asarray(queries).tobytes())
    del cand, queries
    return SettingFiles(cand_path, query_path, folder / f"truth-ids-{tag}.npy",
                        folder / f"truth-scores-{tag}.npy", digest.hexdigest())


def exact_top_k(queries: np.ndarray, candidates: np.ndarray, k: int,
                rows_per_block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) exact top-k rows by descending float32 dot product, ties by lower row, and scores.

    Blocked over queries so memory stays at rows_per_block x N scores.
    """
    k = min(k, candidates.shape[0])
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], rows_per_block):
        s = queries[start : start + rows_per_block] @ candidates.T  # (b, N)
        part = np.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]  # unordered top k
        part_scores = np.take_along_axis(s, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)  # score desc, then row asc
        ids[start : start + len(s)] = np.take_along_axis(part, order, axis=1)
        scores[start : start + len(s)] = np.take_along_axis(part_scores, order, axis=1)
    return ids, scores


def write_truth(files: SettingFiles, k_max: int) -> None:
    """Compute the exact answer once (numpy) and save it beside the embeddings."""
    cand = np.load(files.candidates, mmap_mode="r")
    queries = np.load(files.queries)
    ids, scores = exact_top_k(queries, np.ascontiguousarray(cand), k_max)
    np.save(files.truth_ids, ids)
    np.save(files.truth_scores, scores)

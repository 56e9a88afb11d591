"""Deduplicated training batches, prepared once on the host (numpy only).

Only the -dedup variants (jax-dedup, torch-dedup) train on these; the primary
native implementations, like the Keras model, run the towers row by row on the
padded inputs. These are algorithmic shortcuts any framework could use, so a
-dedup variant is not a like-for-like comparison with the Keras model.

Two rewrites of a batch, each exact in real arithmetic (float32 summation
order aside, which the parity tests bound):

1. Distinct tower rows. In a batch of 1000 MovieLens ratings only ~500
   distinct users and ~550 distinct movies occur, and each tower's output
   depends on its own input row alone. So each tower runs once per distinct
   row and the ratings gather their embeddings back by index. By the chain
   rule the gradients are the same: duplicates are summed by the gather's
   transpose instead of by the embedding lookups'. Rows are compared on the
   tower's whole input (all its columns), so nothing is assumed about which
   feature determines which.
2. Compact bags. A title has ~3 tokens in 16 positions, a movie ~2 genres in
   6: the masked mean gathers and scatters mostly padding. Here each
   multi-valued feature becomes its non-zero ids, the distinct row each
   belongs to and that row's count, so the mean is a segment sum of the real
   embeddings divided by the count (Keras: sum(x * mask) / sum(mask)).

Shapes are padded to one size per epoch (jit needs static shapes): extra
distinct rows copy the first row and no rating points to them; extra bag
entries have weight 0; padded rows get count 1 (no 0/0). None of them
receives any gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.data.dataset import CANDIDATE_FEATURES, QUERY_FEATURES
from impls._shared import MASKED_FEATURES

TOWERS = {"query": QUERY_FEATURES, "candidate": CANDIDATE_FEATURES}
Batch = dict[str, Any]


def _distinct(arrays: dict[str, np.ndarray]) -> Batch:
    """{"label", "<tower>_index": (B,), "<tower>": {feature: (U, ...)}} without padding."""
    batch: Batch = {"label": arrays["label"]}
    for tower, features in TOWERS.items():
        flat = [arrays[f].reshape(len(arrays[f]), -1) for f in features]
        rows, inverse = np.unique(np.concatenate(flat, axis=1), axis=0, return_inverse=True)
        batch[f"{tower}_index"] = inverse.reshape(-1).astype(np.int32)
        columns, start = {}, 0
        for f, block in zip(features, flat, strict=True):
            width = block.shape[1]
            columns[f] = rows[:, start : start + width].reshape((len(rows),) + arrays[f].shape[1:])
            start += width
        batch[tower] = columns
    return batch


def _compact(ids: np.ndarray) -> dict[str, np.ndarray]:
    """A (U, L) padded id matrix as its non-zero entries, their rows, and per-row counts."""
    rows, cols = np.nonzero(ids)
    return {
        "ids": ids[rows, cols].astype(np.int32),
        "segment": rows.astype(np.int32),
        "weight": np.ones(len(rows), np.float32),
        "count": (ids != 0).sum(axis=1).astype(np.float32),
    }


def _sizes(batch: Batch) -> dict[str, int]:
    """Distinct rows of each tower and entries of each compact bag."""
    sizes = {
        tower: next(len(v) for v in batch[tower].values() if not isinstance(v, dict))
        for tower in TOWERS
    }
    for f in MASKED_FEATURES:
        sizes[f] = len(batch["candidate"][f]["ids"])
    return sizes


def _pad(a: np.ndarray, n: int, fill: float | None = None) -> np.ndarray:
    """`a` grown to n rows: with `fill`, or with copies of its first row."""
    extra = n - len(a)
    if extra <= 0:
        return a
    if fill is None:
        tail = np.repeat(a[:1], extra, axis=0)
    else:
        tail = np.full((extra,) + a.shape[1:], fill, a.dtype)
    return np.concatenate([a, tail])


def _padded(batch: Batch, sizes: dict[str, int]) -> Batch:
    out: Batch = {k: v for k, v in batch.items() if k not in TOWERS}
    for tower in TOWERS:
        out[tower] = {}
        for f, value in batch[tower].items():
            if isinstance(value, dict):  # a compact bag
                n = sizes[f]
                out[tower][f] = {
                    # Padding entries join the last row (keeps segments sorted), weight 0.
                    "ids": _pad(value["ids"], n, 0),
                    "segment": _pad(value["segment"], n, sizes[tower] - 1),
                    "weight": _pad(value["weight"], n, 0.0),
                    "count": _pad(value["count"], sizes[tower], 1.0),
                }
            else:
                out[tower][f] = _pad(value, sizes[tower])
    return out


def prepare(arrays: dict[str, np.ndarray]) -> Batch:
    """One batch with distinct tower rows apart and compact bags (unpadded)."""
    batch = _distinct(arrays)
    for f in MASKED_FEATURES:
        batch["candidate"][f] = _compact(batch["candidate"][f])
    return batch


def prepare_all(host_batches: list[dict[str, np.ndarray]], batch_size: int) -> list[Batch]:
    """Every batch prepared; full batches padded to one common shape, a short last one apart."""
    prepared = [prepare(b) for b in host_batches]
    full = [p for p, b in zip(prepared, host_batches, strict=True) if len(b["label"]) == batch_size]
    if not full:
        return prepared
    sizes = {k: max(_sizes(p)[k] for p in full) for k in _sizes(full[0])}
    return [
        _padded(p, sizes) if len(b["label"]) == batch_size else p
        for p, b in zip(prepared, host_batches, strict=True)
    ]


def stack(batches: list[Batch]) -> Batch:
    """Equal-shaped prepared batches stacked along a new leading (step) axis."""
    first = batches[0]
    if isinstance(first, dict):
        return {k: stack([b[k] for b in batches]) for k in first}
    return np.stack(batches)

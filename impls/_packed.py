"""Table-batched training batches, prepared once on the host (numpy only).

The native JAX and eager torch models train on these
(impls/jax_native/model.py `packed_loss_fn`, impls/torch_native/model.py
`packed_loss`). Each tower's embedding tables are used as one table, the
features' tables stacked in concatenation order (as fbgemm's table-batched
embeddings and TorchRec's EmbeddingBagCollection do), so a tower needs one
gather instead of one per feature:

- query: a (B, 5) matrix of row indices into the stacked query table; the
  gathered (B, 5, D) block reshaped to (B, 5*D) *is* the concatenation the
  Keras model builds from five lookups.
- candidate: the non-padding ids of each row (its movie, its title tokens, its
  genres) as one list of entries into the stacked candidate table, each with
  a segment = row * 3 + feature; a sorted segment sum divided by each
  segment's count gives (B * 3, D), reshaped to (B, 3*D): the movie embedding
  and the two masked means, concatenated. Padding ids are left out instead of
  masked to zero, as torch's `embedding_bag(padding_idx=0)` leaves them out.

Same arithmetic as the Keras model (the same rows summed and divided by the
same count; an all-padding row is 0/0 = NaN as in Keras), float32 summation
order aside, which the parity tests bound. For finite values the gradients
are the same too; a NaN or inf gradient would reach the padding rows (row 0)
of the title and genre tables in Keras (NaN * 0) and not here. The towers
still run once per rating: nothing is deduplicated (that is impls/_batches.py).

jit needs static shapes: the entry lists of full batches are padded to the
longest with id 0 and a segment one past the last real one, which the model
sums into a spare segment and drops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bench.data.dataset import Vocabulary
from bench.weights import embedding_rows
from impls._shared import CANDIDATE_EMBEDDINGS, MASKED_FEATURES, QUERY_EMBEDDINGS

Batch = dict[str, np.ndarray]


def table_offsets(vocab: Vocabulary, tables: Mapping[str, str]) -> dict[str, int]:
    """First row of each feature's table in its tower's stacked table (feature -> row)."""
    rows = embedding_rows(vocab)
    offsets, start = {}, 0
    for feature, weight_name in tables.items():
        offsets[feature] = start
        start += rows[weight_name]
    return offsets


def pack(arrays: Mapping[str, np.ndarray], vocab: Vocabulary) -> Batch:
    """One row-order batch as stacked-table indices (candidate entries unpadded)."""
    _check_ids(arrays, vocab)
    rows = len(arrays["label"])
    query_off = table_offsets(vocab, QUERY_EMBEDDINGS)
    query = np.stack([arrays[f] + query_off[f] for f in QUERY_EMBEDDINGS], axis=1)
    cand_off = table_offsets(vocab, CANDIDATE_EMBEDDINGS)
    blocks = len(CANDIDATE_EMBEDDINGS)
    ids, segments, real = [], [], []
    for block, feature in enumerate(CANDIDATE_EMBEDDINGS):
        values = arrays[feature].reshape(rows, -1)  # (B, 1) for the movie id
        ids.append(values + cand_off[feature])
        segments.append(np.broadcast_to(np.arange(rows)[:, None] * blocks + block, values.shape))
        real.append(values != 0 if feature in MASKED_FEATURES else np.ones(values.shape, bool))
    # Row-major over (row, feature, position): the kept entries are sorted by segment.
    keep = np.concatenate(real, axis=1)
    return {
        "query_ids": query.astype(np.int32),
        "candidate_ids": np.concatenate(ids, axis=1)[keep].astype(np.int32),
        "segment": np.concatenate(segments, axis=1)[keep].astype(np.int32),
        "count": np.stack([r.sum(axis=1) for r in real], axis=1).reshape(-1).astype(np.float32),
        "label": np.asarray(arrays["label"], np.float32),
    }


def _check_ids(arrays: Mapping[str, np.ndarray], vocab: Vocabulary) -> None:
    """ValueError for an id outside its table: stacked, it would read the next table's rows."""
    rows = embedding_rows(vocab)
    for feature, weight_name in {**QUERY_EMBEDDINGS, **CANDIDATE_EMBEDDINGS}.items():
        ids = arrays[feature]
        if ids.size and (ids.min() < 0 or ids.max() >= rows[weight_name]):
            raise ValueError(
                f"{feature} ids span {ids.min()}..{ids.max()}, outside the {rows[weight_name]} "
                f"rows of {weight_name}; rebuild the cache (python -m bench data build)"
            )


def with_bag_offsets(batch: Batch) -> Batch:
    """An unpadded packed batch plus "offsets": where each segment's entries start.

    torch's F.embedding_bag takes bags as offsets into one index list; an empty
    segment (a row with no real title token) is an empty bag, summing to 0.
    """
    segments = len(batch["count"])
    if len(batch["segment"]) and batch["segment"][-1] >= segments:
        raise ValueError("bag offsets need an unpadded batch (pack, not pack_all)")
    starts = np.searchsorted(batch["segment"], np.arange(segments))
    return {**batch, "offsets": starts.astype(np.int64)}


def _pad_entries(batch: Batch, entries: int) -> Batch:
    """`batch` with `entries` candidate entries: extra ones are row 0 of the spare segment."""
    extra = entries - len(batch["candidate_ids"])
    spare = len(batch["count"])  # one past the last real segment
    return {
        **batch,
        "candidate_ids": np.concatenate([batch["candidate_ids"], np.zeros(extra, np.int32)]),
        "segment": np.concatenate([batch["segment"], np.full(extra, spare, np.int32)]),
    }


def pack_all(host_batches: Sequence[Mapping[str, np.ndarray]], vocab: Vocabulary) -> list[Batch]:
    """Every batch packed; those of the first batch's size padded to one entry count.

    One shape for all full batches means one compiled step (and a scannable
    epoch); a short last batch keeps its own shape.
    """
    packed = [pack(b, vocab) for b in host_batches]
    if not packed:
        return packed
    size = len(packed[0]["label"])
    entries = max(len(p["candidate_ids"]) for p in packed if len(p["label"]) == size)
    return [_pad_entries(p, entries) if len(p["label"]) == size else p for p in packed]

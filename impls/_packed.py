"""The native implementations' one batch layout, prepared once on the host (numpy only).

Every native variant trains on batches from `train_batches`, in one of three
layouts, and its model has one loss that takes each of them
(impls/jax_native/model.py `loss_fn`, impls/torch_native/model.py
`RetrievalModel.loss`):

- "rows" (jax-padded, torch-compile): the padded per-feature inputs the Keras
  model takes, as they are.
- "packed" (jax, jax-scan, torch): table-batched. Each tower's embedding
  tables are used as one table, the features' tables stacked in concatenation
  order (as fbgemm's table-batched embeddings and TorchRec's
  EmbeddingBagCollection do), so a tower needs one gather instead of one per
  feature. Query: an (R, 5) matrix of row indices into the stacked query
  table; the gathered (R, 5, D) block reshaped to (R, 5*D) *is* the
  concatenation the Keras model builds from five lookups. Candidate: the
  non-padding ids of each row (its movie, its title tokens, its genres) as one
  list of entries into the stacked candidate table, each with a segment =
  row * 3 + feature; a sorted segment sum divided by each segment's count gives
  (R * 3, D), reshaped to (R, 3*D): the movie embedding and the two masked
  means, concatenated. Padding ids are left out instead of masked to zero, as
  torch's `embedding_bag(padding_idx=0)` leaves them out.
- "distinct" (jax-dedup, torch-dedup): "packed" over each tower's distinct
  input rows, plus "query_index" and "candidate_index", each rating's row
  among them. In a batch of 1000 MovieLens ratings only ~500 distinct users and
  ~550 distinct movies occur, and a tower's output depends on its own input row
  alone, so each tower runs once per distinct row and the ratings gather their
  embeddings back; by the chain rule the gradients are the same (duplicates
  are summed by the gather's transpose). Rows are compared on the tower's whole
  input. Less arithmetic than the Keras model: a shortcut any framework could
  take, so these variants are kept out of the framework comparison.

"packed" is the Keras model's arithmetic (the same rows summed and divided by
the same count; an all-padding row is 0/0 = NaN as in Keras), float32
summation order aside, which the parity tests bound. For finite values the
gradients are the same too; a NaN or inf gradient would reach the padding rows
(row 0) of the title and genre tables in Keras (NaN * 0) and not here.

Padding, one convention. jit needs one shape for every full batch, so full
batches are padded to the largest: extra tower rows are ids 0 (row 0 of each
stacked table: user 0, movie 0, which no rating has) with empty candidate
segments of count 1 (no 0/0); extra entries are id 0 in one spare segment past
the last, summed apart and dropped. No rating reads a padding row, so padding
gets no gradient. A spare segment, not weight-0 entries inside the last real
segment (the -dedup variants' former layout): a real segment then sums
exactly its real entries, so every variant keeps its arithmetic bit for bit
with no per-entry weight to multiply in the step (nor can a non-finite padding
row turn a real one NaN through NaN * 0); torch's bags just leave the spare
segment out (`with_bag_offsets`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from bench.data.dataset import Dataset, Vocabulary
from bench.weights import CANDIDATE_EMBEDDINGS, QUERY_EMBEDDINGS, embedding_rows
from impls import _shared
from impls._shared import MASKED_FEATURES

Batch = dict[str, np.ndarray]
LAYOUTS = ("rows", "packed", "distinct")
T = TypeVar("T")
U = TypeVar("U")


def table_offsets(vocab: Vocabulary, tables: Mapping[str, str]) -> dict[str, int]:
    """First row of each feature's table in its tower's stacked table (feature -> row)."""
    rows = embedding_rows(vocab)
    offsets, start = {}, 0
    for feature, weight_name in tables.items():
        offsets[feature] = start
        start += rows[weight_name]
    return offsets


def _query_ids(arrays: Mapping[str, np.ndarray], vocab: Vocabulary) -> np.ndarray:
    """(R, 5) rows of the stacked query table."""
    offsets = table_offsets(vocab, QUERY_EMBEDDINGS)
    return np.stack([arrays[f] + offsets[f] for f in QUERY_EMBEDDINGS], axis=1).astype(np.int32)


def _candidate_entries(arrays: Mapping[str, np.ndarray], vocab: Vocabulary) -> Batch:
    """The real ids of R candidate rows as entries of the stacked table, their segments, counts."""
    rows = len(arrays["movie_id"])
    offsets = table_offsets(vocab, CANDIDATE_EMBEDDINGS)
    blocks = len(CANDIDATE_EMBEDDINGS)
    ids, segments, real = [], [], []
    for block, feature in enumerate(CANDIDATE_EMBEDDINGS):
        values = arrays[feature].reshape(rows, -1)  # (R, 1) for the movie id
        ids.append(values + offsets[feature])
        segments.append(np.broadcast_to(np.arange(rows)[:, None] * blocks + block, values.shape))
        real.append(values != 0 if feature in MASKED_FEATURES else np.ones_like(values, bool))
    # Row-major over (row, feature, position): the kept entries are sorted by segment.
    keep = np.concatenate(real, axis=1)
    return {
        "candidate_ids": np.concatenate(ids, axis=1)[keep].astype(np.int32),
        "segment": np.concatenate(segments, axis=1)[keep].astype(np.int32),
        "count": np.stack([r.sum(axis=1) for r in real], axis=1).reshape(-1).astype(np.float32),
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


def pack(arrays: Mapping[str, np.ndarray], vocab: Vocabulary) -> Batch:
    """One row-order batch in the "packed" layout (unpadded)."""
    _check_ids(arrays, vocab)
    return {
        "query_ids": _query_ids(arrays, vocab),
        **_candidate_entries(arrays, vocab),
        "label": np.asarray(arrays["label"], np.float32),
    }


def _distinct(
    arrays: Mapping[str, np.ndarray], features: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A tower's distinct input rows (sorted, by column) and each rating's row among them."""
    flat = [arrays[f].reshape(len(arrays[f]), -1) for f in features]
    rows, inverse = np.unique(np.concatenate(flat, axis=1), axis=0, return_inverse=True)
    columns, start = {}, 0
    for f, block in zip(features, flat, strict=True):
        width = block.shape[1]
        columns[f] = rows[:, start : start + width].reshape((len(rows),) + arrays[f].shape[1:])
        start += width
    return columns, inverse.reshape(-1).astype(np.int32)


def pack_distinct(arrays: Mapping[str, np.ndarray], vocab: Vocabulary) -> Batch:
    """One row-order batch in the "distinct" layout (unpadded)."""
    _check_ids(arrays, vocab)
    query, query_index = _distinct(arrays, list(QUERY_EMBEDDINGS))
    candidate, candidate_index = _distinct(arrays, list(CANDIDATE_EMBEDDINGS))
    return {
        "query_ids": _query_ids(query, vocab),
        **_candidate_entries(candidate, vocab),
        "query_index": query_index,
        "candidate_index": candidate_index,
        "label": np.asarray(arrays["label"], np.float32),
    }


def _grow(a: np.ndarray, n: int, fill: float) -> np.ndarray:
    """`a` grown to n rows of `fill`."""
    return np.concatenate([a, np.full((n - len(a),) + a.shape[1:], fill, a.dtype)])


def _shape(batch: Batch) -> tuple[int, int, int]:
    """(query rows, candidate segments, candidate entries) of a packed batch."""
    return len(batch["query_ids"]), len(batch["count"]), len(batch["candidate_ids"])


def _pad(batch: Batch, shape: tuple[int, int, int]) -> Batch:
    """`batch` grown to `shape` as the module docstring says: ids 0, count 1, a spare segment."""
    rows, segments, entries = shape
    return {
        **batch,
        "query_ids": _grow(batch["query_ids"], rows, 0),
        "count": _grow(batch["count"], segments, 1.0),
        "candidate_ids": _grow(batch["candidate_ids"], entries, 0),
        "segment": _grow(batch["segment"], entries, segments),  # one past the last: the spare
    }


def pad_all(batches: list[Batch]) -> list[Batch]:
    """Batches of the first one's size padded to one shape; a short last batch keeps its own.

    One shape for all full batches means one compiled step (and a scannable epoch).
    """
    if not batches:
        return batches
    size = len(batches[0]["label"])
    full = [_shape(b) for b in batches if len(b["label"]) == size]
    shape = (max(s[0] for s in full), max(s[1] for s in full), max(s[2] for s in full))
    return [_pad(b, shape) if len(b["label"]) == size else b for b in batches]


def with_bag_offsets(batch: Batch) -> Batch:
    """`batch` for torch's F.embedding_bag: the spare segment's entries left out, plus "offsets".

    embedding_bag takes bags as offsets into one index list, where each bag
    starts; an empty segment (a padding row, or a row with no real title
    token) is an empty bag, summing to 0.
    """
    segments = len(batch["count"])
    real = int(np.searchsorted(batch["segment"], segments))  # entries before the spare segment
    segment = batch["segment"][:real]
    starts = np.searchsorted(segment, np.arange(segments))
    return {
        **batch,
        "candidate_ids": batch["candidate_ids"][:real],
        "segment": segment,
        "offsets": starts.astype(np.int64),
    }


def train_batches(
    host: Sequence[Batch], vocab: Vocabulary, layout: str, bags: bool = False
) -> list[Batch]:
    """The epoch's training batches (row-order host batches) in `layout`, full ones padded.

    bags: in torch's F.embedding_bag form (`with_bag_offsets`); "rows" has no bags.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "rows":
        return list(host)
    packed = pad_all([(pack if layout == "packed" else pack_distinct)(b, vocab) for b in host])
    return [with_bag_offsets(b) for b in packed] if bags else packed


def stack(batches: Sequence[Batch]) -> Batch:
    """Equal-shaped batches stacked along a new leading (step) axis: a scanned epoch's input."""
    return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


@dataclass(frozen=True)
class RunArrays(Generic[T]):
    """Everything a native run puts on its device, once, before training."""

    train: list[T]  # the training batches in the variant's layout
    test: list[T]  # the test split's batches, rows layout (for evaluate)
    queries: dict[str, T]  # the query columns of the "train" and "test" splits
    candidates: T  # every candidate's columns (its "movie_id" names it)

    def map(self, put: Callable[[Any], U]) -> RunArrays[U]:
        """The same arrays through `put` (host -> device)."""
        return RunArrays(
            train=[put(b) for b in self.train],
            test=[put(b) for b in self.test],
            queries={split: put(q) for split, q in self.queries.items()},
            candidates=put(self.candidates),
        )


def run_arrays(data: Dataset, batch_size: int, layout: str, bags: bool = False) -> RunArrays[Batch]:
    """A run's arrays on the host: training batches in `layout` (`train_batches`), the rest rows."""
    splits = {"train": data.train, "test": data.test}
    return RunArrays(
        train=train_batches(_shared.host_batches(data.train, batch_size), data.vocab, layout, bags),
        test=_shared.host_batches(data.test, batch_size),
        queries={name: _shared.query_arrays(_shared.split_arrays(s)) for name, s in splits.items()},
        candidates=_shared.candidate_arrays(data.candidates),
    )

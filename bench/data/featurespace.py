"""The reference program's keras.utils.FeatureSpace preprocessing, in numpy only.

Each function reproduces one Keras preprocessing layer as FeatureSpace uses it
(keras 3.15 source read for semantics; no TensorFlow or Keras import here):

- `tfds_stream_order`: the order tfds writes (and `tfds.load` reads) records.
- `adapt_discretization` / `discretize`: `Discretization(num_bins=...)` adapted
  by FeatureSpace on unbatched scalars, i.e. in batches of 32 in stream order.
- `integer_vocabulary` / `lookup`: `IntegerLookup(num_oov_indices=0)`.
- `hashed_cross`: `HashedCrossing` = `tf.sparse.cross_hashed` on the two
  *preprocessed* integer features.
- `text_vocabulary` / `vectorize_titles`: `TextVectorization` with the default
  `lower_and_strip_punctuation` standardisation and whitespace split.
"""

from __future__ import annotations

import hashlib
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

ADAPT_BATCH_SIZE = 32  # FeatureSpace.adapt batches unbatched datasets by 32
DISCRETIZATION_EPSILON = 0.01  # Discretization's default
CROSS_HASH_KEY = 0xDECAFCAFFE  # tf.sparse.cross_hashed's default hash key
MASK_TOKEN, OOV_TOKEN = "", "[UNK]"  # TextVectorization's reserved indices 0 and 1
_U64 = (1 << 64) - 1
_K_MUL = 0xC6A4A7935BD1E995  # FingerprintCat64's multiplier (tensorflow fingerprint.h)
# ASCII-only, as tf.strings.lower with its default (ASCII) encoding.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_PUNCTUATION = str.maketrans("", "", string.punctuation)  # the keras strip regex's set
_ASCII_SPACE = " \t\n\v\f\r"


def tfds_stream_order(num_rows: int, split: str = "train") -> np.ndarray:
    """Permutation putting file rows in tfds record order.

    tfds keys each generated example by its row number and writes the split
    sorted by md5(split name + str(key)); `tfds.load` reads it back in that
    order, so this is the order the reference adapts its FeatureSpace in.

    Args:
        num_rows: rows in the official ratings file.
        split: the tfds split name, used as the hash salt.
    """
    salt = hashlib.md5(split.encode())
    digests = np.empty(num_rows, dtype="S32")
    for row in range(num_rows):
        md5 = salt.copy()
        md5.update(str(row).encode())
        digests[row] = md5.hexdigest().encode()
    # Equal-length lowercase hex sorts like the 128-bit integers tfds compares.
    return np.argsort(digests, kind="stable")


def adapt_discretization(
    values: np.ndarray, num_bins: int, epsilon: float = DISCRETIZATION_EPSILON,
    batch_size: int = ADAPT_BATCH_SIZE,
) -> np.ndarray:
    """Bin boundaries Discretization.adapt finds streaming `values` in batches.

    Keras keeps a weighted quantile summary: each batch is summarised, merged
    with the running summary and compressed back to 1/epsilon points; the
    result depends on the stream order, which is why callers pass values in
    tfds record order. Float32 throughout, as Keras computes it.

    Args:
        values: (N,) the feature in stream order.
        num_bins: number of buckets; num_bins - 1 boundaries are returned.
        epsilon: the summary's precision.
        batch_size: rows per adapt batch.

    Returns:
        (num_bins - 1,) float32 boundaries, ascending.
    """
    values = np.asarray(values, np.float32)
    if batch_size * epsilon > 1:  # a batch's own summary drops values: the general path
        return _adapt_general(values, num_bins, epsilon, batch_size)
    # Each batch's summary is the batch itself, sorted, weight 1: the loop below is
    # _adapt_general's arithmetic with the summary kept as two rows and no per-batch
    # stacking (about 4x faster; 10 million values in ~3 s).
    targets = epsilon + np.arange(0.0, 1.0, epsilon)
    ones = np.ones(batch_size, np.float32)
    kept, weights = np.zeros(0, np.float32), np.zeros(0, np.float32)
    for start in range(0, values.shape[0], batch_size):
        batch = np.sort(values[start : start + batch_size])
        merged = np.concatenate((batch, kept))
        # A stable sort makes tie order (new batch first) independent of the CPU's
        # sort kernel; see datasets/README.md for the check against Keras.
        order = np.argsort(merged, kind="stable")
        kept, weights = merged[order], np.concatenate((ones[: batch.size], weights))[order]
        if kept.size * epsilon < 1:  # already small enough
            continue
        cum_weights = weights.cumsum()
        cum_fraction = cum_weights / cum_weights[-1]
        new_cum = np.interp(targets, cum_fraction, cum_weights)
        kept = np.interp(targets, cum_fraction, kept).astype(np.float32)
        new_cum[1:] -= new_cum[:-1].copy()  # np.diff(prepend=0.0), in place
        weights = new_cum.astype(np.float32)
    return _compress(np.stack((kept, weights)), 1.0 / num_bins)[0, :-1].astype(np.float32)


def _adapt_general(
    values: np.ndarray, num_bins: int, epsilon: float, batch_size: int
) -> np.ndarray:
    """adapt_discretization for batches larger than the summary (Keras's loop as written)."""
    summary = np.zeros((2, 0), np.float32)
    for start in range(0, values.shape[0], batch_size):
        batch = _summarize(values[start : start + batch_size], epsilon)
        merged = np.concatenate((batch, summary), axis=1)
        merged = merged[:, np.argsort(merged[0], kind="stable")]
        summary = _compress(merged, epsilon)
    return _compress(summary, 1.0 / num_bins)[0, :-1].astype(np.float32)


def _summarize(batch: np.ndarray, epsilon: float) -> np.ndarray:
    ordered = np.sort(batch)
    step = max(ordered.size / (1.0 / epsilon), 1)
    kept = ordered[int(step - 1) :: int(step)]
    return np.stack([kept, np.ones_like(kept) * step])


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    if summary.shape[1] * epsilon < 1:  # already small enough
        return summary
    targets = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_fraction = cum_weights / cum_weights[-1]
    new_values = np.interp(targets, cum_fraction, summary[0])
    new_cum = np.interp(targets, cum_fraction, cum_weights)
    new_weights = np.diff(new_cum, prepend=0.0)
    return np.stack((new_values, new_weights)).astype(np.float32)


def discretize(values: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Bucket index of each value: the number of boundaries <= value (int32)."""
    return np.digitize(np.asarray(values, np.float32), boundaries).astype(np.int32)


def integer_vocabulary(values: np.ndarray) -> np.ndarray:
    """IntegerLookup's adapted vocabulary: by count, descending; ties by value, descending."""
    tokens, counts = _token_counts(np.asarray(values))
    return tokens[np.lexsort((tokens, counts))[::-1]]


def lookup(values: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Index of each value in `vocabulary` (int32); without OOV indices, unknowns are errors."""
    values = np.asarray(values)
    if _dense(values) and _dense(vocabulary):  # small ids: one table read per value
        table = np.full(max(int(values.max()), int(vocabulary.max())) + 1, -1, np.int32)
        table[vocabulary] = np.arange(len(vocabulary), dtype=np.int32)
        index = table[values.astype(np.intp, copy=False)]
        if (index < 0).any():
            raise ValueError("value outside the adapted vocabulary (num_oov_indices=0)")
        return index
    order = np.argsort(vocabulary)
    pos = np.searchsorted(vocabulary, values, sorter=order)
    pos = np.minimum(pos, len(vocabulary) - 1)
    found = order[pos]
    if not np.array_equal(vocabulary[found], values):
        raise ValueError("value outside the adapted vocabulary (num_oov_indices=0)")
    return found.astype(np.int32)


_DENSE_LIMIT = 1 << 20  # integer ids below this are counted and looked up by table


def _dense(values: np.ndarray) -> bool:
    """Whether `values` are integers (or bools) in [0, _DENSE_LIMIT), where tables beat sorting."""
    return bool(values.size and values.dtype.kind in "bui"
                and values.min() >= 0 and values.max() < _DENSE_LIMIT)


def _token_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (ascending, int64) and their counts, as np.unique(return_counts=True)."""
    if _dense(values):  # a bincount instead of sorting millions of values
        counts = np.bincount(values.astype(np.intp, copy=False))
        tokens = np.flatnonzero(counts)
        return tokens.astype(np.int64), counts[tokens]
    tokens, counts = np.unique(values.astype(np.int64), return_counts=True)
    return tokens, counts


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def fingerprint_cat64(fp1: int, fp2: int) -> int:
    """TensorFlow's FingerprintCat64 on unsigned 64-bit integers."""
    result = (fp1 ^ _K_MUL) & _U64
    result ^= (_shift_mix((fp2 * _K_MUL) & _U64) * _K_MUL) & _U64
    result = (result * _K_MUL) & _U64
    result = (_shift_mix(result) * _K_MUL) & _U64
    return _shift_mix(result)


def hashed_cross(
    first: np.ndarray, second: np.ndarray, num_bins: int, hash_key: int = CROSS_HASH_KEY
) -> np.ndarray:
    """HashedCrossing of two integer features (int32 buckets in [0, num_bins)).

    For integer (not string) inputs the op folds the raw int64 values into the
    hash key with FingerprintCat64, in input order, then takes the modulus;
    FarmHash's Fingerprint64 only applies to string inputs.
    """
    if _dense(first) and _dense(second):  # lookup indices: hash every pair of the grid once
        rows, cols = int(first.max()) + 1, int(second.max()) + 1
        if rows * cols <= _CROSS_GRID_LIMIT:
            grid = np.mgrid[0:rows, 0:cols].reshape(2, -1).T
            table = _cross_buckets(grid, num_bins, hash_key).reshape(rows, cols)
            return table[first, second]
    pairs, inverse = np.unique(np.stack([first, second], axis=1), axis=0, return_inverse=True)
    return _cross_buckets(pairs, num_bins, hash_key)[inverse.reshape(-1)]


_CROSS_GRID_LIMIT = 4096


def _cross_buckets(pairs: np.ndarray, num_bins: int, hash_key: int) -> np.ndarray:
    """The bucket of each (a, b) row of `pairs` (int32)."""
    return np.array([
        fingerprint_cat64(fingerprint_cat64(hash_key, int(a) & _U64), int(b) & _U64) % num_bins
        for a, b in pairs
    ], np.int32)


def tokenize(title: str) -> list[str]:
    """lower (ASCII only), strip ASCII punctuation, split on ASCII whitespace."""
    cleaned = title.translate(_ASCII_LOWER).translate(_PUNCTUATION)
    for space in _ASCII_SPACE[1:]:
        cleaned = cleaned.replace(space, " ")
    return [tok for tok in cleaned.split(" ") if tok]


def text_vocabulary(
    titles: Sequence[str], weights: Iterable[int], max_tokens: int
) -> list[str]:
    """TextVectorization's adapted vocabulary ('' and '[UNK]' first).

    Args:
        titles: distinct titles.
        weights: how many times each title occurs in the adapt stream.
        max_tokens: vocabulary cap, reserved tokens included.
    """
    counts: Counter[str] = Counter()
    for title, weight in zip(titles, weights, strict=True):
        for token in tokenize(title):
            counts[token] += int(weight)
    # Keras sorts (count, token bytes) descending: ties go to the larger UTF-8 token.
    ranked = sorted(counts, key=lambda tok: (counts[tok], tok.encode()), reverse=True)
    return [MASK_TOKEN, OOV_TOKEN, *ranked[: max_tokens - 2]]


def vectorize_titles(titles: Sequence[str], vocabulary: Sequence[str], length: int) -> np.ndarray:
    """(len(titles), length) int32 token ids: OOV -> 1, padded with 0, truncated to length."""
    index = {tok: i for i, tok in enumerate(vocabulary) if i >= 2}
    out = np.zeros((len(titles), length), np.int32)
    for row, title in enumerate(titles):
        ids = [index.get(tok, 1) for tok in tokenize(title)][:length]
        out[row, : len(ids)] = ids
    return out

"""Unit checks of the numpy reproductions of the Keras preprocessing layers."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bench.data import featurespace as fs


def test_stream_order_is_tfds_md5_key_order() -> None:
    n = 1234
    expected = sorted(
        range(n), key=lambda i: int(hashlib.md5(b"train" + str(i).encode()).hexdigest(), 16)
    )
    assert fs.tfds_stream_order(n).tolist() == expected


def test_tokenize_is_ascii_lower_strip_punctuation_whitespace_split() -> None:
    assert fs.tokenize("Á köldum KLAKA: (Cold-Fever) l'été (1994) ") == [
        "Á", "köldum", "klaka", "coldfever", "lété", "1994",
    ]
    assert fs.tokenize("a\tb\nc\xa0d") == ["a", "b", "c\xa0d"]  # NBSP is not ASCII space
    assert fs.tokenize("!!! ...") == []


def test_integer_vocabulary_orders_by_count_then_value_descending() -> None:
    vocab = fs.integer_vocabulary(np.array([3, 3, 1, 1, 2, 7, 7, 7]))
    assert vocab.tolist() == [7, 3, 1, 2]
    assert fs.lookup(np.array([2, 7, 1]), vocab).tolist() == [3, 0, 2]
    with pytest.raises(ValueError, match="outside the adapted vocabulary"):
        fs.lookup(np.array([5]), vocab)


def test_text_vocabulary_ties_break_on_utf8_bytes_descending() -> None:
    vocab = fs.text_vocabulary(["b a", "é c", "a"], [1, 1, 1], max_tokens=10)
    assert vocab == ["", "[UNK]", "a", "é", "c", "b"]
    assert fs.text_vocabulary(["b a", "é c", "a"], [1, 1, 1], max_tokens=4) == [
        "", "[UNK]", "a", "é",
    ]
    weighted = fs.text_vocabulary(["b", "a"], [5, 2], max_tokens=10)
    assert weighted[2:] == ["b", "a"]


def test_vectorize_pads_truncates_and_maps_oov_to_one() -> None:
    vocab = ["", "[UNK]", "a", "b"]
    out = fs.vectorize_titles(["a zz b", "b " * 20], vocab, length=4)
    assert out.dtype == np.int32
    assert out.tolist() == [[2, 1, 3, 0], [3, 3, 3, 3]]


def test_hashed_cross_matches_tensorflow_golden_values() -> None:
    # tf.sparse.cross_hashed([a, b], num_buckets) on int64 columns, TensorFlow 2.21.
    a = np.array([0, 1, 5, 123456789, -7])
    b = np.array([0, 9, 3, 42, 2])
    raw = [7883058887674371304, 4422120709060084221, 1338262295730251342,
           6989962619736730880, 3938494474728496242]  # num_buckets=0: modulo 2**63 - 1
    m64 = (1 << 64) - 1
    for x, y, expected in zip(a, b, raw, strict=True):
        first = fs.fingerprint_cat64(fs.CROSS_HASH_KEY, int(x) & m64)
        h = fs.fingerprint_cat64(first, int(y) & m64)
        assert h % ((1 << 63) - 1) == expected
    assert fs.hashed_cross(a, b, 20).tolist() == [4, 1, 2, 7, 9]


def test_discretization_single_batch_interpolates_cumulative_weights() -> None:
    # One batch of 32 weight-1 points: boundary k sits where the cumulative share is k/10,
    # i.e. at value 3.2 k - 1 for the values 0..31.
    values = np.random.default_rng(0).permutation(np.arange(32, dtype=np.float32))
    bounds = fs.adapt_discretization(values, num_bins=10)
    assert bounds.dtype == np.float32
    np.testing.assert_allclose(bounds, 3.2 * np.arange(1, 10) - 1, rtol=1e-6)
    assert fs.discretize(np.array([0, 2.2, 30.9]), bounds).tolist() == [0, 1, 9]


def test_discretization_depends_on_stream_order() -> None:
    """Keras' streaming summary is order-sensitive (and far from exact deciles): why the
    cache adapts in tfds record order."""
    values = np.random.default_rng(1).integers(7, 74, 5000).astype(np.float32)
    forward = fs.adapt_discretization(values, num_bins=10)
    assert not np.array_equal(forward, fs.adapt_discretization(np.sort(values), num_bins=10))
    assert np.array_equal(forward, fs.adapt_discretization(values.copy(), num_bins=10))


def test_discretization_with_few_values_keeps_them_as_boundaries() -> None:
    # Fewer summary points than bins: Keras returns all but the last point.
    bounds = fs.adapt_discretization(np.array([5.0, 1.0, 3.0]), num_bins=10)
    assert bounds.tolist() == [1.0, 3.0]

"""The table-batched layout (impls/_packed.py) reproduces the Keras model's tower inputs.

numpy only: the stacked tables are gathered and segment-summed in numpy and
compared with the padded inputs' lookups and masked means, computed as Keras
computes them (sum(x * mask) / sum(mask)).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.weights import embedding_rows
from impls import _packed, _shared
from impls._shared import CANDIDATE_EMBEDDINGS, MASKED_FEATURES, QUERY_EMBEDDINGS
from tests.fixtures import make_dataset

DIM = 4


def _tables(rng: np.random.Generator, vocab) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return {name: rng.normal(size=(n, DIM)) for name, n in embedding_rows(vocab).items()}


def _keras_inputs(tables, arrays, features):  # type: ignore[no-untyped-def]
    """The padded batch's tower input: lookups, masked means where multi-valued, concatenated."""
    parts = []
    for feature, name in features.items():
        x = tables[name][arrays[feature]]
        if feature in MASKED_FEATURES:
            mask = (arrays[feature] != 0)[..., None]
            x = (x * mask).sum(axis=1) / mask.sum(axis=1)
        parts.append(x)
    return np.concatenate(parts, axis=1)


def _packed_inputs(tables, batch):  # type: ignore[no-untyped-def]
    """The same input from the packed batch, as model.packed_loss_fn computes it."""
    rows = len(batch["label"])
    query = np.concatenate([tables[n] for n in QUERY_EMBEDDINGS.values()])
    cand = np.concatenate([tables[n] for n in CANDIDATE_EMBEDDINGS.values()])
    sums = np.zeros((len(batch["count"]) + 1, DIM))
    np.add.at(sums, batch["segment"], cand[batch["candidate_ids"]])
    cand_in = (sums[:-1] / batch["count"][:, None]).reshape(rows, -1)
    return query[batch["query_ids"]].reshape(rows, -1), cand_in


def test_packed_batches_give_the_keras_tower_inputs() -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    tables = _tables(np.random.default_rng(0), data.vocab)
    host = _shared.host_batches(data.train, 100)  # 100, 100 and a short 30
    packed = _packed.pack_all(host, data.vocab)
    assert len(packed[0]["candidate_ids"]) == len(packed[1]["candidate_ids"])  # one shape
    unpadded = [_packed.pack(b, data.vocab) for b in host[:2]]
    assert any(len(u["candidate_ids"]) < len(packed[0]["candidate_ids"]) for u in unpadded)
    for arrays, batch in zip(host, packed, strict=True):
        assert np.all(np.diff(batch["segment"]) >= 0)  # sorted, as the model declares
        query_in, cand_in = _packed_inputs(tables, batch)
        np.testing.assert_allclose(query_in, _keras_inputs(tables, arrays, QUERY_EMBEDDINGS))
        np.testing.assert_allclose(cand_in, _keras_inputs(tables, arrays, CANDIDATE_EMBEDDINGS))


def test_padding_ids_are_left_out_and_counted_out() -> None:
    data = make_dataset(n_train=20, n_test=10, seed=6)
    arrays = _shared.host_batches(data.train, 20)[0]
    batch = _packed.pack(arrays, data.vocab)
    real = sum(int((arrays[f] != 0).sum()) for f in MASKED_FEATURES) + len(arrays["label"])
    assert len(batch["candidate_ids"]) == real
    counts = batch["count"].reshape(-1, len(CANDIDATE_EMBEDDINGS))
    np.testing.assert_array_equal(counts[:, 0], 1)
    np.testing.assert_array_equal(counts[:, 1], (arrays["movie_title_vector"] != 0).sum(axis=1))
    np.testing.assert_array_equal(counts[:, 2], (arrays["movie_genres"] != 0).sum(axis=1))


def test_an_id_outside_its_table_is_refused() -> None:
    data = make_dataset(n_train=20, n_test=10, seed=6)
    arrays = dict(_shared.host_batches(data.train, 20)[0])
    arrays["raw_user_age"] = arrays["raw_user_age"] + data.vocab.num_age_bins
    with pytest.raises(ValueError, match="raw_user_age ids span"):
        _packed.pack(arrays, data.vocab)


def test_bag_offsets_delimit_each_segment_even_an_empty_one() -> None:
    data = make_dataset(n_train=20, n_test=10, seed=6)
    arrays = dict(_shared.host_batches(data.train, 20)[0])
    titles = arrays["movie_title_vector"].copy()
    titles[3] = 0  # a row with no real title token: an empty bag
    arrays["movie_title_vector"] = titles
    batch = _packed.with_bag_offsets(_packed.pack(arrays, data.vocab))
    ends = np.append(batch["offsets"][1:], len(batch["segment"]))
    for segment, (start, end) in enumerate(zip(batch["offsets"], ends, strict=True)):
        assert np.all(batch["segment"][start:end] == segment)
        assert end - start == batch["count"][segment]
    assert batch["count"][3 * 3 + 1] == 0


def test_bag_offsets_refuse_a_padded_batch() -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    packed = _packed.pack_all(_shared.host_batches(data.train, 100), data.vocab)
    padded = next(p for p in packed[:2] if p["segment"][-1] == 300)  # the spare segment
    with pytest.raises(ValueError, match="unpadded batch"):
        _packed.with_bag_offsets(padded)

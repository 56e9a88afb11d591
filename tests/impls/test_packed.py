"""The native batch layout (impls/_packed.py) reproduces the Keras model's tower inputs.

numpy only: the stacked tables are gathered and segment-summed in numpy and
compared with the padded inputs' lookups and masked means, computed as Keras
computes them (sum(x * mask) / sum(mask)).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.weights import CANDIDATE_EMBEDDINGS, QUERY_EMBEDDINGS, embedding_rows
from impls import _packed, _shared
from impls._shared import MASKED_FEATURES
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
    """The towers' inputs from a packed batch as the models compute them (spare segment dropped)."""
    query = np.concatenate([tables[n] for n in QUERY_EMBEDDINGS.values()])
    cand = np.concatenate([tables[n] for n in CANDIDATE_EMBEDDINGS.values()])
    sums = np.zeros((len(batch["count"]) + 1, DIM))
    np.add.at(sums, batch["segment"], cand[batch["candidate_ids"]])
    means = sums[:-1] / batch["count"][:, None]
    query_in = query[batch["query_ids"]].reshape(len(batch["query_ids"]), -1)
    return query_in, means.reshape(len(batch["count"]) // len(CANDIDATE_EMBEDDINGS), -1)


@pytest.mark.parametrize("layout", ["packed", "distinct"])
def test_batches_give_the_keras_tower_inputs(layout: str) -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    tables = _tables(np.random.default_rng(0), data.vocab)
    host = _shared.host_batches(data.train, 100)  # 100, 100 and a short 30
    batches = _packed.train_batches(host, data.vocab, layout)
    assert _packed._shape(batches[0]) == _packed._shape(batches[1])  # one shape
    for arrays, batch in zip(host, batches, strict=True):
        assert np.all(np.diff(batch["segment"]) >= 0)  # sorted, as the models declare
        query_in, cand_in = _packed_inputs(tables, batch)
        if layout == "distinct":  # each rating gathers its tower rows back
            query_in, cand_in = query_in[batch["query_index"]], cand_in[batch["candidate_index"]]
        np.testing.assert_allclose(query_in, _keras_inputs(tables, arrays, QUERY_EMBEDDINGS))
        np.testing.assert_allclose(cand_in, _keras_inputs(tables, arrays, CANDIDATE_EMBEDDINGS))
        np.testing.assert_array_equal(batch["label"], arrays["label"])


def test_distinct_rows_are_fewer_and_distinct() -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    arrays = _shared.host_batches(data.train, 100)[0]
    batch = _packed.pack_distinct(arrays, data.vocab)
    assert len(batch["query_ids"]) == len(np.unique(batch["query_ids"], axis=0)) < 100
    rows = len(batch["count"]) // len(CANDIDATE_EMBEDDINGS)
    assert rows == len(np.unique(arrays["movie_id"])) < 100  # a movie fixes its title, genres
    np.testing.assert_array_equal(batch["query_ids"][batch["query_index"]],
                                  _packed.pack(arrays, data.vocab)["query_ids"])


@pytest.mark.parametrize("layout", ["packed", "distinct"])
def test_padding_is_ids_0_count_1_and_a_spare_segment(layout: str) -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    host = _shared.host_batches(data.train, 100)
    pack = _packed.pack if layout == "packed" else _packed.pack_distinct
    unpadded = [pack(b, data.vocab) for b in host]
    padded = _packed.train_batches(host, data.vocab, layout)
    assert _packed._shape(padded[2]) == _packed._shape(unpadded[2])  # the short batch as it is
    grown = 0
    for before, after in zip(unpadded[:2], padded[:2], strict=True):
        rows, segments, entries = _packed._shape(before)
        np.testing.assert_array_equal(after["query_ids"][rows:], 0)
        np.testing.assert_array_equal(after["count"][segments:], 1)
        np.testing.assert_array_equal(after["candidate_ids"][entries:], 0)
        np.testing.assert_array_equal(after["segment"][entries:], len(after["count"]))
        for key, value in before.items():
            np.testing.assert_array_equal(after[key][: len(value)], value)
        grown += _packed._shape(after) != _packed._shape(before)
    assert grown  # the test means something only if some batch was padded


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


def test_bags_leave_the_spare_segment_out() -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    host = _shared.host_batches(data.train, 100)
    padded = _packed.train_batches(host, data.vocab, "distinct")
    bags = _packed.train_batches(host, data.vocab, "distinct", bags=True)
    for p, b in zip(padded, bags, strict=True):
        real = p["segment"] < len(p["count"])
        np.testing.assert_array_equal(b["candidate_ids"], p["candidate_ids"][real])
        np.testing.assert_array_equal(b["segment"], p["segment"][real])
        assert len(b["offsets"]) == len(p["count"])  # padding rows: empty bags
    assert any(not np.all(p["segment"] < len(p["count"])) for p in padded)


def test_rows_are_the_host_batches_and_stack_adds_a_step_axis() -> None:
    data = make_dataset(n_train=230, n_test=10, seed=5)
    host = _shared.host_batches(data.train, 100)
    rows = _packed.train_batches(host, data.vocab, "rows")
    assert len(rows) == len(host) and all(r is h for r, h in zip(rows, host, strict=True))
    stacked = _packed.stack(_packed.train_batches(host, data.vocab, "packed")[:2])
    assert stacked["candidate_ids"].shape[0] == 2 and stacked["label"].shape == (2, 100)
    with pytest.raises(ValueError, match="layout must be one of"):
        _packed.train_batches(host, data.vocab, "dedup")

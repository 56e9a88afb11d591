"""Dataset.resplit: a seeded split of the cache's ratings is the split preprocessing makes.

The strong check: re-splitting a split-42 cache with seed s gives, column by
column, the Dataset that preprocessing with `Params(split_seed=s)` builds from
the same raw tables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict

import numpy as np
import pytest

from bench.data.cache import dataset_from_arrays
from bench.data.dataset import Dataset
from bench.data.names import parse_dataset
from bench.data.preprocess import Params, params_dict, preprocess
from bench.data.raw import RawTables
from bench.data.synthetic import generate
from tests.data.conftest import SMALL_SYNTHETIC
from tests.fixtures import make_dataset


def build(raw: RawTables, split_seed: int) -> Dataset:
    """The Dataset a cache built with `split_seed` holds, without touching disk."""
    params = Params(split_seed=split_seed)
    done = preprocess(raw, params)
    manifest = {"dataset": "test", "content_hash": "-", "parameters": params_dict(params),
                "content_meta": {"vocabulary": asdict(done.vocab), "num_train": done.num_train}}
    return dataset_from_arrays(manifest, done.arrays)


def columns(data: Dataset) -> dict[str, np.ndarray]:
    """Every per-row column, train rows then test rows, and the label."""
    both = (data.train, data.test)
    found = {name: np.concatenate([s.features[name] for s in both]) for name in data.train.features}
    return found | {"label": np.concatenate([s.label for s in both])}


def triples(data: Dataset) -> list[tuple[int, int, float]]:
    rows = columns(data)
    return sorted(zip(rows["user_id"].tolist(), rows["movie_id"].tolist(),
                      rows["label"].tolist(), strict=True))


@pytest.fixture(scope="module")
def raw() -> RawTables:
    return generate(parse_dataset(SMALL_SYNTHETIC))


@pytest.fixture(scope="module")
def cached(raw: RawTables) -> Dataset:
    return build(raw, 42)


def test_the_cache_records_its_split_seed(cached: Dataset) -> None:
    assert cached.split_seed == 42


@pytest.mark.parametrize("seed", [None, 42])
def test_the_cache_own_split_is_the_dataset_itself(cached: Dataset, seed: int | None) -> None:
    assert cached.resplit(seed) is cached


@pytest.mark.parametrize("stream_ordered", [True, False])
def test_resplit_reproduces_preprocessing_with_that_split_seed(
        raw: RawTables, stream_ordered: bool) -> None:
    raw = dataclasses.replace(raw, stream_ordered=stream_ordered)
    got, want = build(raw, 42).resplit(7), build(raw, 7)
    assert got.split_seed == 7
    assert (len(got.train), len(got.test)) == (len(want.train), len(want.test))
    for split in ("train", "test"):
        mine, theirs = getattr(got, split), getattr(want, split)
        assert sorted(mine.features) == sorted(theirs.features)
        for name in theirs.features:
            np.testing.assert_array_equal(mine.features[name], theirs.features[name], name)
            assert mine.features[name].dtype == theirs.features[name].dtype, name
        np.testing.assert_array_equal(mine.label, theirs.label)
    for name, column in want.candidates.items():
        np.testing.assert_array_equal(got.candidates[name], column, name)


def test_resplit_back_to_the_cache_seed_restores_its_rows(cached: Dataset) -> None:
    back = cached.resplit(7).resplit(42)
    for name, column in columns(cached).items():
        np.testing.assert_array_equal(columns(back)[name], column, name)


def test_resplit_permutes_the_same_ratings_deterministically(cached: Dataset) -> None:
    one, again, other = cached.resplit(1), cached.resplit(1), cached.resplit(2)
    assert triples(one) == triples(cached) == triples(other)
    assert (len(one.train), len(one.test)) == (len(cached.train), len(cached.test))
    for name, column in columns(one).items():
        np.testing.assert_array_equal(columns(again)[name], column, name)
    assert not np.array_equal(one.train.features["user_id"], other.train.features["user_id"])
    assert one.candidates is cached.candidates and one.vocab == cached.vocab
    assert cached.split_seed == 42  # the original is untouched


def test_a_dataset_without_a_recorded_seed_resplits_its_own_row_order() -> None:
    data = make_dataset(n_train=40, n_test=10)
    assert data.split_seed is None and data.resplit(None) is data
    got = data.resplit(3)
    whole = columns(data)
    order = np.random.default_rng(3).permutation(50)
    for name, column in columns(got).items():
        np.testing.assert_array_equal(column, whole[name][order], name)
    assert (len(got.train), len(got.test)) == (40, 10)

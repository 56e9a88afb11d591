"""Synthetic data, the exact answer, tie-aware recall and the numpy searchers (no frameworks)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.retrieval import synth
from bench.retrieval.backends.numpy_search import NumpySearcher
from bench.retrieval.recall import recall_at_k


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> synth.SettingFiles:
    files = synth.generate(2000, 16, 64, seed=3, folder=tmp_path_factory.mktemp("data"))
    synth.write_truth(files, 20)
    return files


def test_same_seed_same_bytes_other_seed_differs(tmp_path, setting) -> None:
    again = synth.generate(2000, 16, 64, seed=3, folder=tmp_path / "a")
    other = synth.generate(2000, 16, 64, seed=4, folder=tmp_path / "b")
    assert again.content_hash == setting.content_hash
    assert np.array_equal(np.load(again.candidates), np.load(setting.candidates))
    assert other.content_hash != setting.content_hash


def test_embeddings_are_clustered_with_varying_norms(setting) -> None:
    cand = np.load(setting.candidates)
    assert cand.dtype == np.float32 and cand.shape == (2000, 16)
    norms = np.linalg.norm(cand, axis=1)
    assert norms.std() / norms.mean() > 0.1  # log-normal norms, not unit vectors
    unit = cand / norms[:, None]
    # Clustered: a point's nearest neighbour is far closer than a random pair.
    sims = unit[:200] @ unit.T
    np.fill_diagonal(sims[:, :200], -1)
    assert np.median(sims.max(axis=1)) > 0.8
    assert abs(np.median(unit[:200] @ unit[200:400].T)) < 0.5


def test_exact_answer_matches_full_sort(setting) -> None:
    cand, queries = np.load(setting.candidates), np.load(setting.queries)
    ids, scores = np.load(setting.truth_ids), np.load(setting.truth_scores)
    full = queries @ cand.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :20]
    assert np.array_equal(ids, expected)
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1))


@pytest.mark.parametrize("block", [None, 300, 2000, 5000])
def test_numpy_searcher_blocked_equals_unblocked_equals_truth(setting, block) -> None:
    cand, queries = np.load(setting.candidates), np.load(setting.queries)
    searcher = NumpySearcher(block=block)
    searcher.build(cand)
    assert np.array_equal(searcher.search(queries, 20), np.load(setting.truth_ids))


def test_recall_exact_wrong_and_duplicates(setting) -> None:
    cand, queries = np.load(setting.candidates), np.load(setting.queries)
    truth = np.load(setting.truth_ids)
    assert recall_at_k(truth[:, :10], truth, queries, cand, 10)["recall"] == 1.0
    worst = np.argsort(queries @ cand.T, axis=1)[:, :10]  # the lowest scores
    r = recall_at_k(worst, truth, queries, cand, 10)
    assert r["recall"] == 0.0 and r["recall_ids"] == 0.0
    dup = truth[:, :10].copy()
    dup[:, 1] = dup[:, 0]  # one id twice: 9 distinct hits, not 10
    assert recall_at_k(dup, truth, queries, cand, 10)["recall"] == pytest.approx(0.9)
    missing = np.full_like(dup, -1)
    assert recall_at_k(missing, truth, queries, cand, 10)["recall"] == 0.0


def test_recall_counts_tied_ids_as_hits() -> None:
    rng = np.random.default_rng(0)
    cand = rng.standard_normal((50, 8)).astype(np.float32)
    cand[3] *= 10  # a long vector: the best match for a query along it
    cand[7] = cand[3]  # an exact duplicate: rows 3 and 7 always tie
    queries = cand[3:4] / 10
    truth, _ = synth.exact_top_k(queries, cand, 1)
    assert truth[0, 0] == 3  # ties go to the lower row
    r = recall_at_k(np.array([[7]]), truth, queries, cand, 1)
    assert r["recall_ids"] == 0.0 and r["recall"] == 1.0

"""Fidelity: the cache's columns equal what the reference's own keras FeatureSpace produces.

The reference pipeline runs for real (TensorFlow, Keras) in a child process on
the same ratings, in tfds record order; this process never imports a framework.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.data.cache import dataset_from_arrays
from bench.data.dataset import Dataset
from bench.data.preprocess import preprocess
from bench.data.raw import RawTables
from tests.data.helpers import movies_table, stream_ratings

CHILD = Path(__file__).with_name("reference_featurespace.py")


def run_reference(raw: RawTables, tmp_path: Path) -> tuple[dict, dict]:
    """Feed `raw` through the reference FeatureSpace in a child; returns (inputs, outputs)."""
    inputs = {**stream_ratings(raw), **movies_table(raw)}
    np.savez(tmp_path / "in.npz", **inputs)
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        [sys.executable, str(CHILD), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return inputs, dict(np.load(tmp_path / "out.npz", allow_pickle=False))


def build_in_memory(raw: RawTables) -> Dataset:
    """The Dataset the cache would hold, without touching disk."""
    done = preprocess(raw)
    meta = {"vocabulary": done.vocab.__dict__, "num_train": done.num_train}
    return dataset_from_arrays(
        {"dataset": "test", "content_hash": "-", "content_meta": meta}, done.arrays
    )


def _cache_rows(ds: Dataset) -> dict[str, np.ndarray]:
    return {
        k: np.concatenate([ds.train.features[k], ds.test.features[k]])
        for k in ds.train.features
    } | {"label": np.concatenate([ds.train.label, ds.test.label])}


def compare(raw: RawTables, tmp_path: Path) -> dict[str, float]:
    """Assert every column matches the reference; returns the measured age-bin difference."""
    inputs, ref = run_reference(raw, tmp_path)
    ds = build_in_memory(raw)
    rows = _cache_rows(ds)
    # Align cache rows with the reference's stream order on the unique (user, movie) key.
    key = lambda u, m: u.astype(np.int64) * 10**7 + m  # noqa: E731
    stream_key, cache_key = key(inputs["user_id"], inputs["movie_id"]), key(
        rows["user_id"], rows["movie_id"]
    )
    order = np.argsort(cache_key)
    at = order[np.searchsorted(cache_key, stream_key, sorter=order)]
    assert np.array_equal(cache_key[at], stream_key)
    for name in ("user_gender", "user_occupation_label", "movie_title_vector"):
        reference = ref[f"out.{name if name != 'movie_title_vector' else 'movie_title'}"]
        np.testing.assert_array_equal(rows[name][at], reference.reshape(rows[name][at].shape))
    np.testing.assert_array_equal(rows["label"][at], ref["out.user_rating"].reshape(-1))
    # Age bins and the cross: identical to Keras once its argsort ties are stable.
    for name in ("raw_user_age", "user_gender_X_raw_user_age"):
        np.testing.assert_array_equal(rows[name][at], ref[f"stable.{name}"].reshape(-1))
    np.testing.assert_array_equal(ds.candidates["movie_title_vector"], ref["movies_title_vector"])
    np.testing.assert_array_equal(ds.candidates["movie_genres"], ref["movies_genres"])
    v = ds.vocab
    assert [v.num_title_tokens, v.num_genders, v.num_occupations, v.num_genres,
            v.max_genres_per_movie] == ref["counts"].tolist()
    assert v.num_users == inputs["user_id"].max() and v.num_movies == len(inputs["movies_id"])
    return {
        name: float(np.mean(rows[name][at] != ref[f"out.{name}"].reshape(-1)))
        for name in ("raw_user_age", "user_gender_X_raw_user_age")
    }


def test_fidelity_synthetic(tmp_path: Path) -> None:
    """Small and quick: odd titles (non-ASCII, capitals, punctuation) included."""
    from bench.data.names import parse_dataset
    from bench.data.synthetic import generate

    raw = generate(parse_dataset("synthetic:users=80,movies=120,ratings=3000,seed=11"))
    raw.movies.loc[0, "title"] = "Á köldum KLAKA: (Cold-Fever) l'été\xa0deux  (1994) "
    raw.movies.loc[1, "title"] = "C'est arrivé près de chez vous (1992)"
    compare(raw, tmp_path)


def test_fidelity_ml100k(pypi_raw: RawTables, tmp_path: Path, record_property) -> None:
    """The real 100,000 ratings: every column equal to the reference's FeatureSpace."""
    diff = compare(pypi_raw, tmp_path)
    for name, fraction in diff.items():
        record_property(f"{name}_rows_differing_from_unpatched_keras", fraction)
    print(f"rows differing from unpatched Keras (argsort ties): {diff}")
    assert len(pypi_raw.ratings) == 100_000

"""The synthetic generator: seeded, MovieLens-shaped, power-law popularity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.data import cache, labels
from bench.data.names import parse_dataset
from bench.data.synthetic import generate
from bench.errors import UsageError

SPEC = "synthetic:users=200,movies=400,ratings=8000,seed=3"


def test_same_spec_same_tables_other_seed_other_tables() -> None:
    a, b = generate(parse_dataset(SPEC)), generate(parse_dataset(SPEC))
    assert a.ratings.equals(b.ratings) and a.movies.equals(b.movies) and a.users.equals(b.users)
    c = generate(parse_dataset(SPEC.replace("seed=3", "seed=4")))
    assert not a.ratings.equals(c.ratings)


def test_shape_of_the_data() -> None:
    raw = generate(parse_dataset(SPEC))
    r = raw.ratings
    assert len(r) == 8000 and not r.duplicated(["user_id", "movie_id"]).any()
    assert r["rating"].between(1, 5).all() and set(r["rating"]) == {1, 2, 3, 4, 5}
    assert r["user_id"].between(1, 200).all() and r["movie_id"].between(1, 400).all()
    assert raw.movies["movie_id"].tolist() == list(range(1, 401))
    assert all(1 <= len(g) <= 6 for g in raw.movies["genres"])


def test_titles_and_genres_look_like_ml1m() -> None:
    """ml-1m: 1-15 words and a year per title (mean 3.0 words), 1.7 genres, Drama first."""
    movies = generate(parse_dataset("synthetic:users=10,movies=4000,ratings=100")).movies
    words = np.array([len(t.split()) - 1 for t in movies["title"]])
    assert words.min() >= 1 and words.max() <= 15 and 2.6 < words.mean() < 3.4
    assert all(t.endswith(")") and 1919 <= int(t[-5:-1]) <= 2000 for t in movies["title"])
    genres = movies["genres"].tolist()
    assert 1.5 < np.mean([len(g) for g in genres]) < 1.9
    shares = np.bincount([g for gs in genres for g in gs], minlength=len(labels.TFDS_GENRES))
    assert labels.TFDS_GENRES[int(shares.argmax())] == "Drama"
    assert len({w for t in movies["title"] for w in t.split()[:-1]}) > 1000  # grows with movies


def test_every_requested_user_has_a_table_row(tmp_path: Path) -> None:
    """users=5000 with 1000 ratings: most users never rate, the table still has 5000 rows."""
    name = "synthetic:users=5000,movies=50,ratings=1000"
    data = cache.load_dataset(name, cache.ensure_dataset(name, cache_dir=tmp_path).parent)
    assert data.vocab.num_users == 5000 and data.vocab.num_movies == 50
    assert (len(data.train), len(data.test)) == (800, 200)
    users = np.concatenate([data.train.features["user_id"], data.test.features["user_id"]])
    assert users.min() >= 1 and users.max() <= 5000 and np.unique(users).size > 500


def test_popularity_is_heavy_tailed() -> None:
    counts = np.sort(generate(parse_dataset(SPEC)).ratings["movie_id"].value_counts().to_numpy())
    top_tenth = counts[::-1][: len(counts) // 10].sum() / counts.sum()
    assert top_tenth > 0.3  # uniform popularity would give about 0.1


@pytest.mark.parametrize("name", [
    "synthetic:users=10,movies=10",
    "synthetic:users=0,movies=10,ratings=20",
    "synthetic:users=10,movies=10,ratings=20,seed=x",
    "synthetic:users=10,movies=10,ratings=20,users=3",
])
def test_bad_specs_are_usage_errors(name: str) -> None:
    with pytest.raises(UsageError, match="synthetic"):
        parse_dataset(name)


def test_canonical_name_spells_the_seed() -> None:
    assert parse_dataset("synthetic:users=1,movies=30,ratings=10").name.endswith(",seed=0")

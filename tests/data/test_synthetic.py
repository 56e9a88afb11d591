"""The synthetic generator: seeded, MovieLens-shaped, power-law popularity."""

from __future__ import annotations

import numpy as np
import pytest

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
    assert all(1 <= len(g) <= 3 for g in raw.movies["genres"])


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

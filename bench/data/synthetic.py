"""A seeded MovieLens-shaped generator, for tests and scaling studies.

It produces RawTables like the real sources do, so its data goes through the
same preprocessing and cache format. Popularity follows a power law (a few
blockbusters, a long tail), as does user activity; ratings come from hidden
user and movie taste vectors, so they are learnable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data import labels
from bench.data.names import DatasetSpec
from bench.data.raw import RawTables, users_table

MOVIE_POPULARITY_EXPONENT = 1.0  # Zipf-like: the k-th most popular movie ~ 1/k
USER_ACTIVITY_EXPONENT = 0.7
UNIFORM_MIX = 0.05  # keeps every pair reachable, so sampling distinct pairs ends
# Share of 1..5 stars, roughly MovieLens 100k's.
STAR_SHARES = np.array([0.06, 0.11, 0.27, 0.34, 0.22])
_SYLLABLES = ("ka", "lo", "mi", "ne", "ro", "sa", "tu", "vi", "da", "en", "or", "ax", "el")


def generate(spec: DatasetSpec) -> RawTables:
    """Raw tables for `spec` (kind "synthetic"); identical for identical specs."""
    rng = np.random.default_rng(spec.seed)
    users, movies = _users(rng, spec.users), _movies(rng, spec.movies)
    user_idx, movie_idx = _pairs(rng, spec.users, spec.movies, spec.ratings)
    taste_u = rng.normal(size=(spec.users, 4))
    taste_m = rng.normal(size=(spec.movies, 4))
    affinity = np.einsum("nd,nd->n", taste_u[user_idx], taste_m[movie_idx])
    affinity += 0.5 * rng.normal(size=affinity.shape)
    cut = np.quantile(affinity, np.cumsum(STAR_SHARES)[:-1])
    ratings = pd.DataFrame({
        "user_id": user_idx.astype(np.int64) + 1,
        "movie_id": movie_idx.astype(np.int64) + 1,
        "rating": np.searchsorted(cut, affinity).astype(np.int64) + 1,
        "timestamp": 874_724_710 + np.sort(rng.integers(0, 10**7, spec.ratings)),
    })
    return RawTables(ratings, movies, users, source=f"synthetic:seed={spec.seed}")


def _weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    power = 1.0 / np.arange(1, n + 1) ** exponent
    power = rng.permutation(power / power.sum())  # popularity rank -> random id
    return (1 - UNIFORM_MIX) * power + UNIFORM_MIX / n


def _pairs(
    rng: np.random.Generator, num_users: int, num_movies: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct (user, movie) index pairs, in draw order."""
    pu = _weights(rng, num_users, USER_ACTIVITY_EXPONENT)
    pm = _weights(rng, num_movies, MOVIE_POPULARITY_EXPONENT)
    codes = np.empty(0, np.int64)
    while codes.size < count:
        draw = 2 * (count - codes.size) + 16
        new = rng.choice(num_users, draw, p=pu) * num_movies + rng.choice(num_movies, draw, p=pm)
        merged = np.concatenate([codes, new])
        _, first = np.unique(merged, return_index=True)
        codes = merged[np.sort(first)][:count]
    return codes // num_movies, codes % num_movies


def _users(rng: np.random.Generator, n: int) -> pd.DataFrame:
    # The labels ml-100k users carry, so synthetic data can be written in its format too.
    known = sorted({labels.occupation_id(o) for o in labels.ML100K_OCCUPATIONS.values()})
    occupations = rng.choice(known, size=n)
    return users_table(
        np.arange(1, n + 1), rng.integers(7, 74, n).astype(float), rng.random(n) < 0.71,
        occupations,
    )


def _movies(rng: np.random.Generator, n: int) -> pd.DataFrame:
    words = ["".join(rng.choice(_SYLLABLES, size=rng.integers(1, 4))).title() for _ in range(400)]
    word_p = 1.0 / np.arange(1, len(words) + 1)
    word_p /= word_p.sum()
    flag_ids = [labels.genre_id(g) for g in labels.ML100K_GENRE_FLAGS]
    titles, genres = [], []
    for _ in range(n):
        title = " ".join(rng.choice(words, size=rng.integers(1, 6), p=word_p))
        titles.append(f"{title} ({rng.integers(1920, 1999)})")
        picked = rng.choice(len(flag_ids), size=rng.integers(1, 4), replace=False)
        genres.append(tuple(flag_ids[i] for i in sorted(picked)))
    return pd.DataFrame({"movie_id": np.arange(1, n + 1, dtype=np.int64), "title": titles,
                         "genres": genres})

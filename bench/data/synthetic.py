"""A seeded MovieLens-shaped generator, for tests and scaling studies.

It produces RawTables like the real sources do, so its data goes through the
same preprocessing and cache format. Popularity follows a power law (a few
blockbusters, a long tail), as does user activity; ratings come from hidden
user and movie taste vectors, so they are learnable. Titles and genres follow
ml-1m's distributions: words per title, a Zipf vocabulary that grows with the
catalogue, genres per movie and each genre's share. Every table has the
requested size: `users=1000000` gives a 1,000,001-row user table even when
most users have no rating (the vocabulary follows the users table).

Vectorised and chunked throughout: 10 million ratings take seconds and a few
hundred MB beyond the output (bench/studies/cache_scale.py measures it).
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
# ml-1m's movies: titles with 1..15 words (before the year), 1..6 genres.
TITLE_WORDS = np.array([690, 1176, 863, 475, 297, 189, 79, 51, 34, 16, 6, 2, 2, 2, 1])
GENRES_PER_MOVIE = np.array([2025, 1322, 421, 100, 14, 1])
GENRE_MOVIES: dict[str, int] = {  # movies per genre in ml-1m
    "Drama": 1603, "Comedy": 1200, "Action": 503, "Thriller": 492, "Romance": 471,
    "Horror": 343, "Adventure": 283, "Sci-Fi": 276, "Children": 251, "Crime": 211, "War": 143,
    "Documentary": 127, "Musical": 114, "Mystery": 106, "Animation": 105, "Fantasy": 68,
    "Western": 68, "Film-Noir": 44,
}
WORDS_PER_MOVIE = 1.2  # ml-1m: 4,629 distinct tokens in 3,883 titles
_SYLLABLES = ("ka", "lo", "mi", "ne", "ro", "sa", "tu", "vi", "da", "en", "or", "ax", "el")
_CHUNK = 1 << 21  # ratings per chunk of the taste products: bounds the temporaries


def generate(spec: DatasetSpec) -> RawTables:
    """Raw tables for `spec` (kind "synthetic"); identical for identical specs.

    The ratings come in random order, which stands in for tfds's record order
    (`stream_ordered`): there is no reference stream to reproduce.
    """
    rng = np.random.default_rng(spec.seed)
    users, movies = _users(rng, spec.users), _movies(rng, spec.movies)
    user_idx, movie_idx = _pairs(rng, spec.users, spec.movies, spec.ratings)
    stars = _stars(rng, user_idx, movie_idx, spec.users, spec.movies)
    ratings = pd.DataFrame({
        "user_id": user_idx + 1,
        "movie_id": movie_idx + 1,
        "rating": stars,
        "timestamp": 874_724_710 + np.arange(spec.ratings, dtype=np.int64) * 10**7 // spec.ratings,
    }, copy=False)
    return RawTables(ratings, movies, users, source=f"synthetic:seed={spec.seed}",
                     stream_ordered=True)


def _weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    power = 1.0 / np.arange(1, n + 1) ** exponent
    power = rng.permutation(power / power.sum())  # popularity rank -> random id
    return (1 - UNIFORM_MIX) * power + UNIFORM_MIX / n


def _draw(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """`size` indices drawn with the probabilities whose cumulative sum is `cdf` (int64)."""
    return np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right").clip(0, len(cdf) - 1)


def _pairs(
    rng: np.random.Generator, num_users: int, num_movies: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct (user, movie) index pairs (int32), in random order.

    Each round draws how many ratings each user and each movie gets (one
    multinomial per table, not one search per rating), pairs the users with
    the movies shuffled, and keeps the distinct pairs (sorted codes). A last
    random permutation picks `count` of them and orders them.
    """
    user_p = _weights(rng, num_users, USER_ACTIVITY_EXPONENT)
    movie_p = _weights(rng, num_movies, MOVIE_POPULARITY_EXPONENT)
    codes = np.empty(0, np.int64)
    while codes.size < count:
        need = count - codes.size
        draws = need + need // 8 + 16
        users = np.repeat(np.arange(num_users, dtype=np.int32), rng.multinomial(draws, user_p))
        movies = np.repeat(np.arange(num_movies, dtype=np.int32), rng.multinomial(draws, movie_p))
        rng.shuffle(movies)
        new = users.astype(np.int64) * num_movies + movies
        del users, movies
        codes = _distinct_sorted(np.concatenate([codes, new]))
    codes = codes[rng.permutation(codes.size)[:count]]
    return (codes // num_movies).astype(np.int32), (codes % num_movies).astype(np.int32)


def _distinct_sorted(codes: np.ndarray) -> np.ndarray:
    """The distinct values of `codes`, ascending (sorts `codes` in place)."""
    codes.sort()
    keep = np.empty(codes.size, bool)
    keep[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def _stars(
    rng: np.random.Generator, user_idx: np.ndarray, movie_idx: np.ndarray,
    num_users: int, num_movies: int,
) -> np.ndarray:
    """1..5 stars (int8) from taste dot products plus noise, cut at STAR_SHARES' quantiles."""
    taste_u = rng.standard_normal((num_users, 4), np.float32)
    taste_m = rng.standard_normal((num_movies, 4), np.float32)
    affinity = rng.standard_normal(len(user_idx), np.float32) * np.float32(0.5)
    for start in range(0, len(user_idx), _CHUNK):
        part = slice(start, start + _CHUNK)
        affinity[part] += np.einsum("nd,nd->n", taste_u[user_idx[part]], taste_m[movie_idx[part]])
    cut = np.quantile(affinity, np.cumsum(STAR_SHARES)[:-1])
    return (np.searchsorted(cut, affinity) + 1).astype(np.int8)


def _users(rng: np.random.Generator, n: int) -> pd.DataFrame:
    # The labels ml-100k users carry, so synthetic data can be written in its format too.
    known = sorted({labels.occupation_id(o) for o in labels.ML100K_OCCUPATIONS.values()})
    occupations = rng.choice(known, size=n)
    return users_table(
        np.arange(1, n + 1), rng.integers(7, 74, n).astype(float), rng.random(n) < 0.71,
        occupations,
    )


def _movies(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """`n` movies: "Word Word (year)" titles and genre tuples shaped like ml-1m's."""
    vocabulary = np.array(_words(max(400, int(WORDS_PER_MOVIE * n))), dtype=object)
    word_p = 1.0 / np.arange(1, len(vocabulary) + 1)
    lengths = rng.choice(np.arange(1, len(TITLE_WORDS) + 1), n, p=TITLE_WORDS / TITLE_WORDS.sum())
    words = vocabulary[_draw(rng, np.cumsum(word_p), int(lengths.sum()))]
    years = rng.integers(1919, 2001, n)
    ends = np.cumsum(lengths)
    titles = [f"{' '.join(words[end - k : end])} ({year})"
              for end, k, year in zip(ends.tolist(), lengths.tolist(), years.tolist(), strict=True)]
    return pd.DataFrame({"movie_id": np.arange(1, n + 1, dtype=np.int64), "title": titles,
                         "genres": _genres(rng, n)})


def _words(n: int) -> list[str]:
    """`n` distinct pronounceable words: each index spelled in base len(_SYLLABLES)."""
    base, words = len(_SYLLABLES), []
    for index in range(n):
        parts, rest = [], index + 1
        while rest:
            rest, digit = divmod(rest, base)
            parts.append(_SYLLABLES[digit])
        words.append("".join(parts).title())
    return words


def _genres(rng: np.random.Generator, n: int) -> list[tuple[int, ...]]:
    """Genre tuples (tfds ids, ascending): ml-1m's counts per movie and shares per genre."""
    ids = np.array([labels.genre_id(g) for g in GENRE_MOVIES])
    share = np.array(list(GENRE_MOVIES.values()), float)
    counts = rng.choice(np.arange(1, len(GENRES_PER_MOVIE) + 1), n,
                        p=GENRES_PER_MOVIE / GENRES_PER_MOVIE.sum())
    # Weighted sampling without replacement: the k largest of log(share) + Gumbel noise.
    keys = np.log(share) + rng.gumbel(size=(n, len(ids)))
    ranked = ids[np.argsort(-keys, axis=1)]
    return [tuple(sorted(row[:k].tolist())) for row, k in zip(ranked, counts.tolist(), strict=True)]

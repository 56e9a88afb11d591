"""Small in-memory datasets for fast tests (no cache, no preprocessing).

They have the exact shapes and dtypes of a cache-loaded `Dataset`, with
random but learnable ratings: each user and movie has a hidden taste vector,
and the rating follows their dot product, so training loss must fall.
"""

from __future__ import annotations

import numpy as np

from bench.data.dataset import Dataset, Split, Vocabulary

TINY_VOCAB = Vocabulary(
    num_users=50,
    num_movies=80,
    num_genders=2,
    num_age_bins=10,
    num_crosses=20,
    num_occupations=21,
    num_title_tokens=60,
    num_genres=19,
    title_length=16,
    max_genres_per_movie=6,
)


def _candidates(vocab: Vocabulary, rng: np.random.Generator) -> dict[str, np.ndarray]:
    m = vocab.num_movies
    lengths = rng.integers(1, 6, size=m)
    titles = np.zeros((m, vocab.title_length), np.int32)
    for r, n in enumerate(lengths):
        titles[r, :n] = rng.integers(1, vocab.num_title_tokens, size=n)
    genre_counts = rng.integers(1, vocab.max_genres_per_movie + 1, size=m)
    genres = np.zeros((m, vocab.max_genres_per_movie), np.int32)
    for r, n in enumerate(genre_counts):
        genres[r, :n] = rng.choice(vocab.num_genres, size=n, replace=False) + 1
    return {
        "movie_id": np.arange(1, m + 1, dtype=np.int32),
        "movie_title_vector": titles,
        "movie_genres": genres,
    }


def _split(
    vocab: Vocabulary, cands: dict[str, np.ndarray], n: int, rng: np.random.Generator,
    user_taste: np.ndarray, movie_taste: np.ndarray,
) -> Split:
    users = rng.integers(1, vocab.num_users + 1, size=n)
    movies = rng.integers(1, vocab.num_movies + 1, size=n)
    gender = (users % vocab.num_genders).astype(np.int32)
    age = (users % vocab.num_age_bins).astype(np.int32)
    affinity = np.einsum("nd,nd->n", user_taste[users], movie_taste[movies])
    stars = np.clip(np.round(3 + 1.5 * affinity), 1, 5)
    rows = movies - 1
    features = {
        "user_id": users.astype(np.int32),
        "user_gender": gender,
        "raw_user_age": age,
        "user_gender_X_raw_user_age": ((gender * 7 + age * 3) % vocab.num_crosses).astype(np.int32),
        "user_occupation_label": (users % vocab.num_occupations).astype(np.int32),
        "movie_id": movies.astype(np.int32),
        "movie_title_vector": cands["movie_title_vector"][rows],
        "movie_genres": cands["movie_genres"][rows],
    }
    return Split(features=features, label=((stars - 1) / 4).astype(np.float32))


def make_dataset(
    n_train: int = 2000, n_test: int = 500, seed: int = 0, vocab: Vocabulary = TINY_VOCAB
) -> Dataset:
    """A tiny learnable dataset with cache-identical shapes, dtypes and feature names."""
    rng = np.random.default_rng(seed)
    cands = _candidates(vocab, rng)
    user_taste = rng.normal(size=(vocab.num_users + 1, 4))
    movie_taste = rng.normal(size=(vocab.num_movies + 1, 4))
    return Dataset(
        name=f"tiny-{seed}",
        content_hash=f"tiny-{n_train}-{n_test}-{seed}",
        vocab=vocab,
        train=_split(vocab, cands, n_train, rng, user_taste, movie_taste),
        test=_split(vocab, cands, n_test, rng, user_taste, movie_taste),
        candidates=cands,
    )
